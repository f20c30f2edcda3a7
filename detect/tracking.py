"""Keep object identities across the sampled frames, then one spotlight box per frame.

`detect_and_track` detects on every frame ("every") or on the first frame ("first", as the
reference does) and gives each box a stable `track_id`:
- tracker "iou": frame-to-frame association, greedy by IoU, then by centre distance;
- a `Sam2Tracker` (transformers' SAM2 video model, when the user configures one): the first
  frame's boxes prompt SAM2, which propagates masks through the frames; masks -> boxes.
`spotlight_boxes_from_detections` then runs the temporal clustering kernel (METHOD.md 3.3).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ..comfy_bridge import torch_device
from .detections import Detections, box_iou
from .detectors import Detector, check_frames, parse_prompts, resolve_model

MERGE_IOU = 0.8  # METHOD.md: masks of one object found twice overlap by more than this


def associate_iou(
    detections: Detections,
    iou_threshold: float = 0.3,
    distance_ratio: float = 1.0,
    max_gap: int = 2,
) -> Detections:
    """Give every box a track id by greedy frame-to-frame association.

    A box continues the open track with the highest IoU above `iou_threshold` (same label);
    failing that, the nearest track whose last centre lies within `distance_ratio` x the track
    box's larger side. Tracks unseen for more than `max_gap` frames close. Returns a copy.
    """
    tracks: list[dict[str, Any]] = []  # id, box, label, last frame
    next_id = 0
    ids_per_frame: list[torch.Tensor] = []
    for f in range(detections.num_frames):
        boxes, labels = detections.boxes[f], detections.labels[f]
        ids = torch.full((boxes.shape[0],), -1, dtype=torch.int64)
        open_tracks = [t for t in tracks if f - t["frame"] <= max_gap + 1]
        if open_tracks and boxes.shape[0]:
            prev = torch.stack([t["box"] for t in open_tracks])
            same = torch.tensor([[lab == t["label"] for t in open_tracks] for lab in labels])
            iou = torch.where(same, box_iou(boxes, prev), torch.zeros(()))
            centres = (boxes[:, :2] + boxes[:, 2:]) / 2
            prev_c = (prev[:, :2] + prev[:, 2:]) / 2
            dist = torch.cdist(centres, prev_c)
            reach = distance_ratio * (prev[:, 2:] - prev[:, :2]).amax(1)
            # score: IoU matches first (1 + IoU), then near centres (below 1)
            score = torch.where(
                iou >= iou_threshold,
                1 + iou,
                torch.where(same & (dist <= reach), 1 - dist / (reach + 1e-6), -torch.ones(())),
            )
            while True:
                best = score.max() if score.numel() else torch.tensor(-1.0)
                if best < 0:
                    break
                i, j = divmod(int(score.argmax()), score.shape[1])
                ids[i] = open_tracks[j]["id"]
                open_tracks[j]["box"], open_tracks[j]["frame"] = boxes[i], f
                score[i, :] = -1
                score[:, j] = -1
        for i in range(boxes.shape[0]):
            if ids[i] < 0:
                tracks.append({"id": next_id, "box": boxes[i], "label": labels[i], "frame": f})
                ids[i] = next_id
                next_id += 1
        ids_per_frame.append(ids)
    return Detections(
        boxes=detections.boxes,
        scores=detections.scores,
        labels=detections.labels,
        track_ids=ids_per_frame,
        masks=detections.masks,
        height=detections.height,
        width=detections.width,
        info={**detections.info, "tracker": "iou"},
    )


def merge_duplicates(
    boxes: torch.Tensor, masks: torch.Tensor | None = None, threshold: float = MERGE_IOU
) -> torch.Tensor:
    """Indices of the boxes to keep after dropping duplicates (mask or box IoU > threshold).

    Args:
        boxes: `[K, 4]`, in order of preference (e.g. sorted by score).
        masks: optional `[K, H, W]`; their IoU decides when given.
    """
    if boxes.shape[0] < 2:
        return torch.arange(boxes.shape[0])
    if masks is not None:
        flat = masks.flatten(1).float()
        inter = flat @ flat.T
        area = flat.sum(1)
        iou = inter / (area[:, None] + area[None, :] - inter).clamp(min=1)
    else:
        iou = box_iou(boxes, boxes)
    keep: list[int] = []
    for i in range(boxes.shape[0]):
        if all(float(iou[i, j]) <= threshold for j in keep):
            keep.append(i)
    return torch.tensor(keep, dtype=torch.int64)


class Sam2Tracker:
    """Transformers' SAM2 video model: propagate first-frame boxes to masks on every frame."""

    kind = "sam2"

    def __init__(
        self,
        model: str | Path,
        device: torch.device | str | None = None,
        allow_download: bool = False,
        mask_threshold: float = 0.0,
    ) -> None:
        from transformers import Sam2VideoModel, Sam2VideoProcessor

        where, local = resolve_model("sam2_video", model, allow_download)
        self.device = torch.device(device) if device not in (None, "auto") else torch_device()
        self.processor = Sam2VideoProcessor.from_pretrained(
            where, local_files_only=local, trust_remote_code=False
        )
        self.model = (
            Sam2VideoModel.from_pretrained(where, local_files_only=local, trust_remote_code=False)
            .to(self.device)
            .eval()
        )
        self.source = where
        self.mask_threshold = mask_threshold

    def track(self, frames: torch.Tensor, first: Detections) -> Detections:
        """Propagate the boxes of `first` (frame 0) through `frames` `[N, H, W, 3]`.

        Returns Detections with one box and mask per object per frame where the mask is not
        empty; track ids are the first frame's box order after duplicate merging.
        """
        n, height, width = frames.shape[:3]
        boxes0 = first.boxes[0]
        order = torch.argsort(first.scores[0], descending=True)
        boxes0, labels0 = boxes0[order], [first.labels[0][int(i)] for i in order]
        empty = Detections.empty(
            n, height, width, info={**first.info, "tracker": "sam2", "tracker_model": self.source}
        )
        if boxes0.shape[0] == 0:
            return empty
        keep = merge_duplicates(boxes0)
        boxes0, labels0 = boxes0[keep], [labels0[int(i)] for i in keep]
        video = list((frames[..., :3].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy())
        with torch.inference_mode():
            session = self.processor.init_video_session(video=video, inference_device=self.device)
            ids = list(range(boxes0.shape[0]))
            self.processor.add_inputs_to_inference_session(
                inference_session=session,
                frame_idx=0,
                obj_ids=list(ids),
                input_boxes=[boxes0.tolist()],
            )
            masks = torch.zeros(n, len(ids), height, width, dtype=torch.bool)
            for out in self.model.propagate_in_video_iterator(session, start_frame_idx=0):
                m = self.processor.post_process_masks(
                    [out.pred_masks],
                    original_sizes=[[height, width]],
                    binarize=True,
                    mask_threshold=self.mask_threshold,
                )[0]
                masks[out.frame_idx] = m.reshape(len(ids), height, width).cpu().bool()
        return _masks_to_detections(masks, labels0, empty.info)


def _masks_to_detections(masks: torch.Tensor, labels: Sequence[str], info: dict) -> Detections:
    """bool `[N, K, H, W]` per-object masks -> Detections (empty masks dropped; ids = object index).

    Objects whose masks overlap by IoU > 0.8 on a frame are merged into the first (METHOD.md).
    """
    n, k, height, width = masks.shape
    ys = torch.arange(height)
    xs = torch.arange(width)
    rows_any = masks.any(-1)  # [N, K, H]
    cols_any = masks.any(-2)  # [N, K, W]
    present = rows_any.any(-1)  # [N, K]
    big = torch.tensor(10**9)
    y1 = torch.where(rows_any, ys, big).amin(-1)
    y2 = torch.where(rows_any, ys, -1).amax(-1) + 1
    x1 = torch.where(cols_any, xs, big).amin(-1)
    x2 = torch.where(cols_any, xs, -1).amax(-1) + 1
    all_boxes = torch.stack([x1, y1, x2, y2], -1).float()  # [N, K, 4]
    boxes, scores, labs, ids, mask_list = [], [], [], [], []
    for f in range(n):
        sel = torch.nonzero(present[f]).flatten()
        keep = sel[merge_duplicates(all_boxes[f, sel], masks[f, sel])]
        merged = masks[f, keep].clone()
        for a, obj in enumerate(keep.tolist()):
            for other in sel.tolist():
                if other not in keep.tolist():
                    inter = (masks[f, obj] & masks[f, other]).sum()
                    union = (masks[f, obj] | masks[f, other]).sum().clamp(min=1)
                    if inter / union > MERGE_IOU:
                        merged[a] |= masks[f, other]
        boxes.append(all_boxes[f, keep])
        scores.append(torch.ones(keep.shape[0]))
        labs.append([labels[int(i)] for i in keep])
        ids.append(keep.clone())
        mask_list.append(merged)
    return Detections(
        boxes=boxes,
        scores=scores,
        labels=labs,
        track_ids=ids,
        masks=mask_list,
        height=height,
        width=width,
        info=info,
    )


MAX_ASPECT = 32  # a thinner frame is under 10 px across at a detector's working size


def detect_and_track(
    frames: torch.Tensor,
    prompts: str | Sequence[str],
    detector: Detector,
    mode: str = "every",
    tracker: str | Sam2Tracker | None = "iou",
    progress: Callable[[int], None] | None = None,
) -> Detections:
    """Detect the prompted objects and give them stable identities across `frames`.

    Args:
        frames: `[N, H, W, 3]` float 0..1 (the sampled frames).
        prompts: object names ("train, person", "train. person." or a list).
        mode: "every": detect on every frame; "first": detect on the first frame only and
            let the tracker carry the objects (METHOD.md). With tracker "iou" (no video model)
            "first" still detects on every frame but keeps only the tracks that start on the
            first frame.
        tracker: "iou" (default), a `Sam2Tracker`, or None (no identities: ids stay -1).
        progress: called with the number of frames done.

    Returns:
        Detections with `track_ids`; `info` tells detector, mode and tracker.
    """
    check_frames(frames, "detect_and_track")
    height, width = int(frames.shape[1]), int(frames.shape[2])
    if max(height, width) > MAX_ASPECT * max(1, min(height, width)):
        raise ValueError(
            f"detect_and_track: frames of {width}x{height} are too thin to find objects in "
            f"(aspect ratio over {MAX_ASPECT}:1; detectors work on a downscaled copy); crop the "
            "video, or use a fixed box"
        )
    if mode not in ("every", "first"):
        raise ValueError(f"detect_and_track: mode must be 'every' or 'first', got {mode!r}")
    words = parse_prompts(prompts)
    n = frames.shape[0]
    if isinstance(tracker, Sam2Tracker):
        # the motion detector needs neighbours to see motion: it looks at all frames either way
        on_first = mode == "first" and getattr(detector, "kind", "") != "motion"
        first = detector.detect(
            frames[:1] if on_first else frames, words, progress=progress
        ).select_frames([0])
        out = tracker.track(frames, first)
        if progress is not None:
            progress(n)
    else:
        if tracker not in ("iou", None):
            raise ValueError(
                f"detect_and_track: tracker must be 'iou', None or a Sam2Tracker, got {tracker!r}"
            )
        found = detector.detect(frames, words, progress=progress)
        out = associate_iou(found) if tracker == "iou" else found
        if mode == "first" and tracker == "iou":
            starters = {int(t) for t in out.track_ids[0].tolist()} if n else set()
            out = out.filter(
                lambda _i, _b, _s, _l, t: torch.tensor(
                    [int(x) in starters for x in t.tolist()], dtype=torch.bool
                )
            )
    out.info.update(
        {"mode": mode, "tracker": getattr(tracker, "kind", tracker) or "none", "frames": n}
    )
    return out


def spotlight_boxes_from_detections(
    detections: Detections, mode: str = "robust", **clustering: Any
):
    """One spotlight box per frame from the per-frame boxes.

    Args:
        detections: the tracked detections.
        mode: "robust" (default: `kernels.clustering.robust_cluster_boxes`, the main track
            with inconsistent boxes dropped, empty frames borrowing their neighbours' box) or
            "reference" (METHOD.md's temporal clustering, rule for rule).
        clustering: options of the chosen kernel; for "reference" `momentum`,
            `distance_ratio`, `min_cluster_size`, `min_box_size`, `grown_box_size` of
            `kernels.clustering.cluster_boxes`; for "robust" those of `robust_cluster_boxes`
            (the reference-only ones are ignored, so one node serves both).

    Returns:
        `ClusteredBoxes` (boxes `[N, 4]`, cluster ids `[N]`, `fallback` True when no frame had
        a box and every frame is the whole frame).
    """
    from ..kernels.clustering import cluster_boxes, robust_cluster_boxes

    if detections.num_frames == 0:
        raise ValueError("spotlight boxes: the detections hold zero frames")
    if mode == "reference":
        return cluster_boxes(detections.boxes, detections.height, detections.width, **clustering)
    if mode != "robust":
        raise ValueError(f"spotlight boxes: mode must be 'robust' or 'reference', got {mode!r}")
    for name in ("momentum", "distance_ratio", "min_cluster_size", "fill_empty"):
        clustering.pop(name, None)
    return robust_cluster_boxes(
        detections.boxes,
        detections.height,
        detections.width,
        scores_per_frame=detections.scores,
        **clustering,
    )
