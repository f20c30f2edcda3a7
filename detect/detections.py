"""`Detections`: the one detection type every detector and tracker returns and every consumer takes.

In the spirit of supervision's `Detections`, but per frame: a video of N sampled frames holds N
lists of boxes. Boxes are `[x1, y1, x2, y2]` float pixels (ARCHITECTURE.md), scores 0..1, one
text label per box, one integer track id per box (-1 = not tracked), and optionally one mask per
box. Validation runs on construction, so a malformed value fails where it was made.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .bbox import bbox_to_tensor, tensor_to_bbox


def _empty_boxes() -> torch.Tensor:
    return torch.zeros(0, 4, dtype=torch.float32)


@dataclass
class Detections:
    """Per-frame detections of a video of `num_frames` frames of `height` x `width` pixels.

    Attributes:
        boxes: per frame, float `[K_i, 4]` boxes `[x1, y1, x2, y2]` in pixels, `x2 > x1`, `y2 > y1`.
        scores: per frame, float `[K_i]` confidences 0..1.
        labels: per frame, `K_i` text labels (the prompt a box answers, or e.g. "moving").
        track_ids: per frame, int64 `[K_i]` identities stable across frames (-1: untracked).
        height, width: frame size in pixels.
        masks: optional, per frame, bool/float `[K_i, height, width]` object masks.
        info: free-form facts for reports (detector kind, fallback reason, ...).
    """

    boxes: list[torch.Tensor]
    scores: list[torch.Tensor]
    labels: list[list[str]]
    track_ids: list[torch.Tensor]
    height: int
    width: int
    masks: list[torch.Tensor] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.height, self.width = int(self.height), int(self.width)
        if self.height <= 0 or self.width <= 0:
            raise ValueError(
                f"Detections: frame size must be positive, got {self.width}x{self.height}"
            )
        n = len(self.boxes)
        for name in ("scores", "labels", "track_ids"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"Detections: {name} has {len(getattr(self, name))} frames, boxes has {n}"
                )
        if self.masks is not None and len(self.masks) != n:
            raise ValueError(f"Detections: masks has {len(self.masks)} frames, boxes has {n}")
        self.boxes = [
            torch.as_tensor(b, dtype=torch.float32).reshape(-1, 4) if len(b) else _empty_boxes()
            for b in self.boxes
        ]
        self.scores = [torch.as_tensor(s, dtype=torch.float32).reshape(-1) for s in self.scores]
        self.track_ids = [torch.as_tensor(t, dtype=torch.int64).reshape(-1) for t in self.track_ids]
        self.labels = [[str(label) for label in frame] for frame in self.labels]
        for i, (b, s, lab, t) in enumerate(
            zip(self.boxes, self.scores, self.labels, self.track_ids, strict=True)
        ):
            k = b.shape[0]
            if s.shape[0] != k or len(lab) != k or t.shape[0] != k:
                raise ValueError(
                    f"Detections: frame {i} has {k} boxes but {s.shape[0]} scores, {len(lab)} labels, {t.shape[0]} track ids"
                )
            if k == 0:
                continue
            if not bool(torch.isfinite(b).all()) or not bool(torch.isfinite(s).all()):
                raise ValueError(f"Detections: frame {i} has non-finite boxes or scores")
            if bool(((b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])).any()):
                raise ValueError(
                    f"Detections: frame {i} has a box without x2 > x1 and y2 > y1: {b.tolist()}"
                )
            if self.masks is not None:
                m = self.masks[i]
                if (
                    m.ndim != 3
                    or m.shape[0] != k
                    or tuple(m.shape[1:]) != (self.height, self.width)
                ):
                    raise ValueError(
                        f"Detections: frame {i} masks have shape {tuple(m.shape)}, expected ({k}, {self.height}, {self.width})"
                    )

    # ------------------------------------------------------------------ basics
    @property
    def num_frames(self) -> int:
        return len(self.boxes)

    def __len__(self) -> int:
        """Total number of boxes over all frames."""
        return sum(b.shape[0] for b in self.boxes)

    @property
    def is_empty(self) -> bool:
        """True when no frame holds a box."""
        return len(self) == 0

    @classmethod
    def empty(
        cls, num_frames: int, height: int, width: int, info: dict | None = None
    ) -> Detections:
        """`num_frames` frames without any box."""
        return cls(
            boxes=[_empty_boxes() for _ in range(num_frames)],
            scores=[torch.zeros(0) for _ in range(num_frames)],
            labels=[[] for _ in range(num_frames)],
            track_ids=[torch.zeros(0, dtype=torch.int64) for _ in range(num_frames)],
            height=height,
            width=width,
            info=dict(info or {}),
        )

    def filter(
        self,
        keep: Callable[[int, torch.Tensor, torch.Tensor, list[str], torch.Tensor], torch.Tensor],
    ) -> Detections:
        """Keep the boxes for which `keep(frame, boxes, scores, labels, track_ids) -> bool [K_i]` holds."""
        out = {
            "boxes": [],
            "scores": [],
            "labels": [],
            "track_ids": [],
            "masks": [] if self.masks is not None else None,
        }
        for i in range(self.num_frames):
            sel = torch.as_tensor(
                keep(i, self.boxes[i], self.scores[i], self.labels[i], self.track_ids[i]),
                dtype=torch.bool,
            )
            out["boxes"].append(self.boxes[i][sel])
            out["scores"].append(self.scores[i][sel])
            out["labels"].append(
                [lab for lab, k in zip(self.labels[i], sel.tolist(), strict=True) if k]
            )
            out["track_ids"].append(self.track_ids[i][sel])
            if self.masks is not None:
                out["masks"].append(self.masks[i][sel])
        return Detections(height=self.height, width=self.width, info=dict(self.info), **out)

    def filter_scores(self, threshold: float) -> Detections:
        """Keep boxes with score >= threshold."""
        return self.filter(lambda _i, _b, s, _l, _t: s >= threshold)

    def select_frames(self, indices: Sequence[int]) -> Detections:
        """The detections of the given frames, in that order."""
        return Detections(
            boxes=[self.boxes[i] for i in indices],
            scores=[self.scores[i] for i in indices],
            labels=[self.labels[i] for i in indices],
            track_ids=[self.track_ids[i] for i in indices],
            masks=[self.masks[i] for i in indices] if self.masks is not None else None,
            height=self.height,
            width=self.width,
            info=dict(self.info),
        )

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly summary (counts, labels, ids) for node info outputs."""
        ids = sorted({int(t) for frame in self.track_ids for t in frame.tolist() if t >= 0})
        labels = sorted({lab for frame in self.labels for lab in frame})
        return {
            "frames": self.num_frames,
            "size": [self.width, self.height],
            "boxes": len(self),
            "frames_with_boxes": sum(1 for b in self.boxes if b.shape[0]),
            "labels": labels,
            "track_ids": ids,
            **self.info,
        }

    # ------------------------------------------------------------ BBOX interop
    @classmethod
    def from_bbox(
        cls, bbox: Sequence, num_frames: int, height: int, width: int, label: str = "box"
    ) -> Detections:
        """A `BBOX` (one box for all frames, or one per frame) -> one box per frame, track id 0."""
        boxes = bbox_to_tensor(bbox, num_frames)
        return cls(
            boxes=[b.unsqueeze(0) for b in boxes],
            scores=[torch.ones(1) for _ in range(num_frames)],
            labels=[[label] for _ in range(num_frames)],
            track_ids=[torch.zeros(1, dtype=torch.int64) for _ in range(num_frames)],
            height=height,
            width=width,
            info={"source": "bbox"},
        )

    def union_boxes(self) -> torch.Tensor:
        """Per frame the union box of that frame's boxes; the whole frame where a frame is empty.

        Returns:
            float `[N, 4]`, clipped to the frame.
        """
        whole = torch.tensor([0.0, 0.0, float(self.width), float(self.height)])
        rows = []
        for b in self.boxes:
            if b.shape[0] == 0:
                rows.append(whole)
            else:
                rows.append(torch.cat([b[:, :2].amin(0), b[:, 2:].amax(0)]))
        out = torch.stack(rows) if rows else torch.zeros(0, 4)
        limit = torch.tensor([float(self.width), float(self.height)] * 2)
        return torch.minimum(out.clamp(min=0), limit)

    def to_bbox(self) -> list[list[float]]:
        """`BBOX`: one `[x1, y1, x2, y2]` per frame, the union of the frame's boxes.

        A frame without boxes gives the whole frame `[0, 0, W, H]` (nothing found: show everything,
        as METHOD.md's clustering does before any box is seen).
        """
        return tensor_to_bbox(self.union_boxes())

    # ------------------------------------------------------------ MASK interop
    def to_mask(self) -> torch.Tensor:
        """`MASK` float `[N, H, W]` 0/1: per frame the union of the masks, or of the boxes without masks."""
        n, h, w = self.num_frames, self.height, self.width
        if self.masks is not None:
            return (
                torch.stack(
                    [m.float().amax(0) if m.shape[0] else torch.zeros(h, w) for m in self.masks]
                )
                if n
                else torch.zeros(0, h, w)
            )
        if n == 0:
            return torch.zeros(0, h, w)
        ys = torch.arange(h, dtype=torch.float32) + 0.5
        xs = torch.arange(w, dtype=torch.float32) + 0.5
        out = torch.zeros(n, h, w)
        for i, b in enumerate(self.boxes):
            if b.shape[0] == 0:
                continue
            # [K, H, 1] & [K, 1, W]: pixel centres inside x1 <= x < x2 (ARCHITECTURE.md)
            in_y = (ys[None, :] >= b[:, 1:2]) & (ys[None, :] < b[:, 3:4])
            in_x = (xs[None, :] >= b[:, 0:1]) & (xs[None, :] < b[:, 2:3])
            out[i] = (in_y[:, :, None] & in_x[:, None, :]).any(0).float()
        return out

    @classmethod
    def from_mask(
        cls,
        mask: torch.Tensor,
        threshold: float = 0.5,
        min_area: int = 16,
        max_objects: int = 8,
        label: str = "mask",
    ) -> Detections:
        """`MASK` `[N, H, W]` (or `[H, W]`) -> boxes of its connected components (8-connected).

        Components smaller than `min_area` pixels are dropped; at most `max_objects` largest per
        frame are kept. Each box carries its component's mask; score is 1, track ids -1.
        """
        import cv2  # OpenCV's connected components: one C call per frame
        import numpy as np

        if mask.ndim == 2:
            mask = mask.unsqueeze(0)
        if mask.ndim != 3:
            raise ValueError(f"from_mask expects a MASK [N, H, W], got shape {tuple(mask.shape)}")
        n, h, w = mask.shape
        binary = (mask.detach().float().cpu() > threshold).numpy().astype(np.uint8)
        boxes, masks = [], []
        for i in range(n):
            count, comp, stats, _ = cv2.connectedComponentsWithStats(binary[i], connectivity=8)
            order = [
                j
                for j in np.argsort(-stats[1:, cv2.CC_STAT_AREA]) + 1
                if stats[j, cv2.CC_STAT_AREA] >= min_area
            ][:max_objects]
            st = stats[order] if order else np.zeros((0, 5), dtype=np.int64)
            xyxy = (
                np.stack([st[:, 0], st[:, 1], st[:, 0] + st[:, 2], st[:, 1] + st[:, 3]], 1)
                if order
                else np.zeros((0, 4))
            )
            boxes.append(torch.as_tensor(xyxy, dtype=torch.float32))
            comp_t = torch.from_numpy(comp)
            masks.append(
                torch.stack([comp_t == j for j in order])
                if order
                else torch.zeros(0, h, w, dtype=torch.bool)
            )
        return cls(
            boxes=boxes,
            scores=[torch.ones(b.shape[0]) for b in boxes],
            labels=[[label] * b.shape[0] for b in boxes],
            track_ids=[torch.full((b.shape[0],), -1, dtype=torch.int64) for b in boxes],
            masks=masks,
            height=h,
            width=w,
            info={"source": "mask"},
        )

    # ------------------------------------------------------ transformers interop
    @classmethod
    def from_transformers(
        cls,
        results: Sequence[dict[str, Any]],
        height: int,
        width: int,
        label_names: Sequence[str] | None = None,
        info: dict | None = None,
    ) -> Detections:
        """Per-frame results of a transformers `post_process_*object_detection` -> Detections.

        Each result has `boxes` `[K, 4]` (xyxy pixels), `scores` `[K]` and either `text_labels`
        / `labels` as strings, or integer `labels` indexing `label_names`. Boxes are clipped to
        the frame; boxes that clip to nothing are dropped.
        """
        boxes, scores, labels = [], [], []
        whole = torch.tensor([width, height, width, height], dtype=torch.float32)
        for r in results:
            b = torch.as_tensor(r["boxes"], dtype=torch.float32).reshape(-1, 4).cpu()
            b = torch.minimum(b.clamp(min=0), whole)
            s = torch.as_tensor(r["scores"], dtype=torch.float32).reshape(-1).cpu()
            names = r.get("text_labels")
            if names is None:
                raw = r.get("labels", [])
                if isinstance(raw, torch.Tensor):
                    raw = raw.tolist()
                names = [
                    label_names[int(x)]
                    if label_names is not None and not isinstance(x, str)
                    else str(x)
                    for x in raw
                ]
            names = [str(x) for x in names]
            ok = (
                (b[:, 2] > b[:, 0])
                & (b[:, 3] > b[:, 1])
                & torch.isfinite(b).all(1)
                & torch.isfinite(s)
            )
            boxes.append(b[ok])
            scores.append(s[ok])
            labels.append([name for name, k in zip(names, ok.tolist(), strict=True) if k])
        return cls(
            boxes=boxes,
            scores=scores,
            labels=labels,
            track_ids=[torch.full((b.shape[0],), -1, dtype=torch.int64) for b in boxes],
            height=height,
            width=width,
            info=dict(info or {}),
        )


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of boxes `a [A, 4]` and `b [B, 4]` (xyxy) -> `[A, B]` in 0..1."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return inter / union.clamp(min=1e-6)
