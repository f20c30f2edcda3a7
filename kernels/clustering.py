"""Temporal box clustering: per-frame detections -> one steady spotlight box per frame.

METHOD.md "Temporal clustering", rule by rule, following the reference's
`cluster_temporal_boxes` (NJU-PCALab/MotionSight, eval/motionsight/eval_favorbench.py):

1. Per frame with boxes, the frame's box is the union of its boxes and its centre the mean of
   their centres. A frame without boxes reuses the last valid box and centre; before any box is
   seen, the whole frame is the box (centre: the frame centre). These filled frames vote in the
   clustering like any other (the reference does so), each adding one box.
2. A running cluster centre follows `c = momentum * c + (1 - momentum) * centre` (0.7 / 0.3);
   a new cluster starts from the current centre itself.
3. A new cluster starts when a frame's centre is more than `distance_ratio * min(W, H)` from the
   running centre AND the current cluster already holds `min_cluster_size` (3) boxes. Boxes,
   not frames: a frame with two objects adds two (as the reference counts them).
4. A cluster's box is the union of its boxes; a union narrower or shorter than `min_box_size`
   (10 px) grows to `grown_box_size` (100 px) around its centre (a side that is already larger
   keeps its size, as in the reference), clipped to the frame.
5. Every frame is covered: frames between two clusters take the union of both; frames before
   the first / after the last cluster take the nearest cluster's box. With the reference's
   filling (rule 1) every frame belongs to a cluster, so these rules only act when
   `fill_empty=False`: then frames without boxes do not vote and are covered by rule 5 alone.
   With no box in any frame, every frame's box is the whole frame (`fallback=True`).

Where the reference and METHOD.md/this module differ: the reference's empty frame reuses the
*first* box of the last frame with boxes (`current_boxes[0]`); here it reuses that frame's union
(METHOD.md: "the frame's box is the union of its boxes"). The reference also silently skips
all-zero boxes; here a caller filters its own invalid boxes (an empty `[0, 4]` frame).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ClusteredBoxes:
    """The result of `cluster_boxes`.

    boxes: `[N, 4]` float32 pixels, one spotlight box per frame. cluster_ids: `[N]` int64, the
    cluster a frame belongs to, or -1 for a frame between / outside clusters (only with
    `fill_empty=False`, or with `fallback`). fallback: True when no frame had any box (all
    boxes are the whole frame).
    """

    boxes: torch.Tensor
    cluster_ids: torch.Tensor
    fallback: bool


def whole_frame_box(height: int, width: int) -> torch.Tensor:
    """`[4]` float32 box `[0, 0, width, height]` covering the whole frame."""
    return torch.tensor([0.0, 0.0, float(width), float(height)])


def _union(boxes: torch.Tensor) -> torch.Tensor:
    return torch.cat([boxes[:, :2].min(dim=0).values, boxes[:, 2:].max(dim=0).values])


def _grow_small(
    box: torch.Tensor, min_size: float, grown: float, height: int, width: int
) -> torch.Tensor:
    size = box[2:] - box[:2]
    if float(size[0]) >= min_size and float(size[1]) >= min_size:
        return box
    centre = (box[:2] + box[2:]) / 2
    half = size.clamp(min=grown) / 2  # only the small side(s) grow, as in the reference
    limits = torch.tensor([width, height], dtype=box.dtype)
    return torch.cat([(centre - half).clamp(min=0), torch.minimum(centre + half, limits)])


def cluster_boxes(
    boxes_per_frame: Sequence[torch.Tensor],
    height: int,
    width: int,
    momentum: float = 0.7,
    distance_ratio: float = 0.3,
    min_cluster_size: int = 3,
    min_box_size: float = 10.0,
    grown_box_size: float = 100.0,
    fill_empty: bool = True,
) -> ClusteredBoxes:
    """Cluster per-frame boxes over time into one spotlight box per frame (rules in the module doc).

    Args:
        boxes_per_frame: N tensors `[K_i, 4]` (K_i may be 0) of `[x1, y1, x2, y2]` pixels.
        height, width: frame size in pixels.
        momentum: weight of the old running centre (0.7).
        distance_ratio: split distance as a fraction of `min(W, H)` (0.3).
        min_cluster_size: boxes a cluster must hold before it may split (3).
        min_box_size, grown_box_size: a cluster union smaller than the first (px) on a side is
            grown to the second around its centre (10, 100).
        fill_empty: True (the reference): frames without boxes reuse the last valid box, or the
            whole frame before any box, and vote. False: they do not vote and take the box of
            their cluster's span, the union of the neighbouring clusters, or the nearest one.

    Returns:
        `ClusteredBoxes` with `boxes` `[N, 4]` float32 and `cluster_ids` `[N]` on the CPU.
    """
    n = len(boxes_per_frame)
    if n == 0:
        raise ValueError("cluster_boxes needs at least one frame")
    if height < 1 or width < 1:
        raise ValueError(f"cluster_boxes needs a positive frame size, got {width}x{height}")
    whole = whole_frame_box(height, width).double()
    # per voting frame: (frame index, box [4], centre [2], number of boxes it adds)
    votes: list[tuple[int, torch.Tensor, torch.Tensor, int]] = []
    last: tuple[torch.Tensor, torch.Tensor] | None = None
    any_box = False
    for i, boxes in enumerate(boxes_per_frame):
        boxes = torch.as_tensor(boxes).detach().to("cpu", torch.float64)
        if boxes.numel() % 4:
            raise ValueError(f"frame {i}: boxes must be [K, 4], got shape {tuple(boxes.shape)}")
        boxes = boxes.reshape(-1, 4)
        if boxes.shape[0]:
            any_box = True
            last = (_union(boxes), ((boxes[:, :2] + boxes[:, 2:]) / 2).mean(dim=0))
            votes.append((i, *last, boxes.shape[0]))
        elif fill_empty and last is not None:
            votes.append((i, *last, 1))
        elif fill_empty:
            votes.append((i, whole, whole[2:] / 2, 1))
    if not any_box:
        return ClusteredBoxes(
            whole.float().expand(n, 4).clone(), torch.full((n,), -1, dtype=torch.long), True
        )

    # Sequential by nature: each decision depends on the running centre of the frames before it,
    # over at most a few dozen 4-number boxes, so a loop over frames is the clear form here.
    threshold = distance_ratio * min(height, width)
    clusters: list[list[int]] = []  # frame indices per cluster
    cluster_unions: list[torch.Tensor] = []
    held = 0  # boxes in the current cluster
    centre = None
    for i, box, current, count in votes:
        far = centre is not None and float(torch.linalg.vector_norm(current - centre)) > threshold
        if centre is None or (far and held >= min_cluster_size):
            clusters.append([i])
            cluster_unions.append(box)
            held, centre = count, current
        else:
            clusters[-1].append(i)
            cluster_unions[-1] = _union(torch.stack([cluster_unions[-1], box]))
            held += count
            centre = momentum * centre + (1 - momentum) * current

    cluster_box = [
        _grow_small(u, min_box_size, grown_box_size, height, width) for u in cluster_unions
    ]
    out = torch.empty(n, 4, dtype=torch.float64)
    ids = torch.full((n,), -1, dtype=torch.long)
    for k, members in enumerate(clusters):  # a cluster's span includes its non-voting frames
        out[members[0] : members[-1] + 1] = cluster_box[k]
        ids[members[0] : members[-1] + 1] = k
    for k in range(len(clusters) - 1):  # gaps: union of the two neighbours
        gap = slice(clusters[k][-1] + 1, clusters[k + 1][0])
        out[gap] = _union(torch.stack([cluster_box[k], cluster_box[k + 1]]))
    out[: clusters[0][0]] = cluster_box[0]
    out[clusters[-1][-1] + 1 :] = cluster_box[-1]
    return ClusteredBoxes(out.float(), ids, False)


# --------------------------------------------------------------------------- robust (default)


def _link_tracks(
    boxes: list[torch.Tensor], max_gap: int, reach: float
) -> list[list[tuple[int, int]]]:
    """Greedy frame-to-frame linking of boxes into tracks of (frame, box index).

    Each open track (seen within `max_gap` frames) predicts its box in the current frame from
    its last box and its last velocity (constant motion across missed frames). A box joins the
    track whose prediction it overlaps most, or else whose predicted centre is nearest, within
    `reach` x the box's smaller side per elapsed frame.
    """
    tracks: list[list[tuple[int, int]]] = []
    centre = lambda b: (b[..., :2] + b[..., 2:]) / 2  # noqa: E731
    for f, frame in enumerate(boxes):
        open_ids = [t for t, tr in enumerate(tracks) if f - tr[-1][0] <= max_gap + 1]
        taken: set[int] = set()
        if frame.shape[0] and open_ids:
            predicted, steps = [], []
            for t in open_ids:
                (g, i) = tracks[t][-1]
                last = boxes[g][i]
                velocity = torch.zeros(2, dtype=last.dtype)
                if len(tracks[t]) > 1:
                    (g0, i0) = tracks[t][-2]
                    velocity = (centre(last) - centre(boxes[g0][i0])) / (g - g0)
                predicted.append(last + (f - g) * velocity.repeat(2))
                steps.append(f - g)
            last = torch.stack(predicted)
            lt = torch.maximum(frame[:, None, :2], last[None, :, :2])
            rb = torch.minimum(frame[:, None, 2:], last[None, :, 2:])
            inter = (rb - lt).clamp(min=0).prod(-1)
            area = lambda b: (b[:, 2:] - b[:, :2]).prod(-1)  # noqa: E731
            iou = inter / (area(frame)[:, None] + area(last)[None, :] - inter).clamp(min=1e-6)
            dist = torch.cdist(centre(frame), centre(last))
            limit = (
                reach * (last[:, 2:] - last[:, :2]).amin(1) * torch.tensor(steps, dtype=last.dtype)
            )
            score = torch.where(iou > 0.05, 1 + iou, 1 - dist / limit.clamp(min=1e-6))
            score = torch.where((iou > 0.05) | (dist <= limit), score, torch.full_like(score, -1))
            while score.numel() and float(score.max()) >= 0:
                i, j = divmod(int(score.argmax()), score.shape[1])
                tracks[open_ids[j]].append((f, i))
                taken.add(i)
                score[i, :] = -1
                score[:, j] = -1
        tracks += [[(f, i)] for i in range(frame.shape[0]) if i not in taken]
    return tracks


def _track_weight(
    track: list[tuple[int, int]], boxes: list[torch.Tensor], scores: list[torch.Tensor]
) -> float:
    """Evidence of a track: each box's score times (1 + its IoU with the track's previous box),
    so a steady actor outweighs flicker that wanders from place to place (ripples, dust)."""
    total, prev = 0.0, None
    for f, i in track:
        box = boxes[f][i]
        steady = 0.0
        if prev is not None:
            lt, rb = torch.maximum(box[:2], prev[:2]), torch.minimum(box[2:], prev[2:])
            inter = float((rb - lt).clamp(min=0).prod())
            union = float((box[2:] - box[:2]).prod() + (prev[2:] - prev[:2]).prod()) - inter
            steady = inter / max(union, 1e-6)
        total += float(scores[f][i]) * (1 + steady)
        prev = box
    return total


def robust_cluster_boxes(
    boxes_per_frame: Sequence[torch.Tensor],
    height: int,
    width: int,
    scores_per_frame: Sequence[torch.Tensor] | None = None,
    hold: int = 2,
    max_gap: int = 3,
    reach: float = 0.75,
    attach: float = 0.25,
    blowup: float = 3.0,
    resume: float = 0.1,
    margin: float = 0.15,
    min_box_size: float = 10.0,
    grown_box_size: float = 100.0,
) -> ClusteredBoxes:
    """One spotlight box per frame that one false box cannot blow up (the default chain).

    1. Boxes are linked over time into tracks: each track predicts its next box from its last
       velocity; a box joins the track whose prediction it overlaps, else whose predicted
       centre lies within `reach` x the box's smaller side per elapsed frame (gaps of up to
       `max_gap` frames).
    2. The *main track* has the largest evidence: the sum of its boxes' scores (1 each
       without scores), each counted up to twice as the box overlaps the track's previous
       one, so a persistent, steady actor beats flicker that comes, goes and wanders. An
       actor that moves fast breaks its track: the heaviest tracks (at least a quarter of the
       main one's evidence) that start after it ends, or end before it starts, continue it;
       down to `resume` x the main one's evidence where the track resumes near the chain's
       end (a box of about the end box's size, within 4x, touching it grown by its own size:
       an actor that paused, unseen, and moves on).
    3. Per frame, the main track's box is kept unless its area exceeds `blowup` x the largest
       of the track's boxes in the two frames either side (a box inconsistent with its track);
       other boxes are kept when they touch the kept box grown by `attach` x its size on each
       side (parts of the same actor: a mower and its pusher).
    4. A frame without a kept box borrows its neighbours' boxes (the union of the nearest kept
       box before and after; at the ends, the nearest one, and for an actor that travels
       further than its size also that box carried on at the track's mean velocity): never
       the whole frame.
    5. Each frame's box is the union over frames `t - hold .. t + hold` (absorbs a part missed
       in one frame), grown by `margin` x its size on each side (what moves is often only part
       of the actor: arms, not the legs); a box narrower or shorter than `min_box_size` grows to
       `grown_box_size`.
    With no box in any frame, every frame is the whole frame (`fallback=True`).

    Args:
        boxes_per_frame: N tensors `[K_i, 4]` of `[x1, y1, x2, y2]` pixels.
        height, width: frame size in pixels.
        scores_per_frame: optional N tensors `[K_i]` of confidences (0..1).

    Returns:
        `ClusteredBoxes`: `boxes` `[N, 4]` float32; `cluster_ids` `[N]`: 0 where the main
        track (or an attached box) was seen, -1 where the box was borrowed.
    """
    n = len(boxes_per_frame)
    if n == 0:
        raise ValueError("robust_cluster_boxes needs at least one frame")
    if height < 1 or width < 1:
        raise ValueError(f"robust_cluster_boxes needs a positive frame size, got {width}x{height}")
    boxes = []
    for i, b in enumerate(boxes_per_frame):
        b = torch.as_tensor(b).detach().to("cpu", torch.float64)
        if b.numel() % 4:
            raise ValueError(f"frame {i}: boxes must be [K, 4], got shape {tuple(b.shape)}")
        boxes.append(b.reshape(-1, 4))
    if scores_per_frame is None:
        scores = [torch.ones(b.shape[0], dtype=torch.float64) for b in boxes]
    else:
        scores = [
            torch.as_tensor(s).detach().to("cpu", torch.float64).reshape(-1)
            for s in scores_per_frame
        ]
        if len(scores) != n or any(
            s.shape[0] != b.shape[0] for s, b in zip(scores, boxes, strict=True)
        ):
            raise ValueError("robust_cluster_boxes: scores_per_frame must match boxes_per_frame")
    whole = whole_frame_box(height, width).double()
    if not any(b.shape[0] for b in boxes):
        return ClusteredBoxes(
            whole.float().expand(n, 4).clone(), torch.full((n,), -1, dtype=torch.long), True
        )

    tracks = _link_tracks(boxes, max_gap, reach)
    weight = [_track_weight(tr, boxes, scores) for tr in tracks]
    order = sorted(range(len(tracks)), key=weight.__getitem__, reverse=True)
    main = list(tracks[order[0]])
    # an actor that moves fast or leaves the frame breaks its track: the heaviest track that
    # starts after (ends before) the chain continues it, until no track is left on that side
    # (a weaker track, down to `resume` of the main one's evidence, where its near end box
    # touches the chain's end box grown by its own size and is of about its size, within 4x:
    # an actor that paused, unseen, and moves on from about where it was)
    for t in order[1:]:
        if weight[t] < resume * weight[order[0]]:
            break
        after, before = tracks[t][0][0] > main[-1][0], tracks[t][-1][0] < main[0][0]
        if not (after or before):
            continue
        if weight[t] < 0.25 * weight[order[0]]:
            (f, i), (g, j) = (main[-1], tracks[t][0]) if after else (main[0], tracks[t][-1])
            end, near = boxes[f][i], boxes[g][j]
            size = end[2:] - end[:2]
            ratio = float((near[2:] - near[:2]).prod() / size.prod().clamp(min=1e-6))
            touch = bool(((near[:2] < end[2:] + size) & (near[2:] > end[:2] - size)).all())
            if not (touch and 0.25 <= ratio <= 4):
                continue
        main = sorted(main + tracks[t])
    kept: list[torch.Tensor | None] = [None] * n
    areas = torch.tensor([float((boxes[f][i][2:] - boxes[f][i][:2]).prod()) for f, i in main])
    for k, (f, i) in enumerate(main):
        others = torch.cat([areas[max(0, k - 2) : k], areas[k + 1 : k + 3]])
        if others.numel() >= 2 and float(areas[k]) > blowup * float(others.max()):
            continue  # inconsistent with its track: drop before the union
        kept[f] = boxes[f][i]
    for f in range(n):
        anchor = kept[f]
        if anchor is None:
            continue
        grow = (anchor[2:] - anchor[:2]) * attach
        zone = torch.cat([anchor[:2] - grow, anchor[2:] + grow])
        touch = (boxes[f][:, :2] < zone[2:]).all(1) & (boxes[f][:, 2:] > zone[:2]).all(1)
        if bool(touch.any()):
            kept[f] = _union(torch.cat([anchor[None], boxes[f][touch]]))
    seen = [f for f in range(n) if kept[f] is not None]
    if not seen:  # every box of the main track was dropped: keep them after all
        for f, i in main:
            kept[f] = boxes[f][i]
        seen = [f for f, _ in main]
    ids = torch.tensor([0 if kept[f] is not None else -1 for f in range(n)], dtype=torch.long)
    # a small actor that travels further than its own size (a ball, a bird) keeps moving
    # before its first and after its last sighting: carry its box on at the track's mean
    # velocity (least squares over the kept box centres)
    velocity = torch.zeros(2, dtype=torch.float64)
    if len(seen) >= 3:
        t = torch.tensor(seen, dtype=torch.float64)
        centres = torch.stack([(kept[g][:2] + kept[g][2:]) / 2 for g in seen])
        sides = torch.stack([kept[g][2:] - kept[g][:2] for g in seen]).mean(0)
        t = t - t.mean()
        fitted = (t[:, None] * (centres - centres.mean(0))).sum(0) / (t * t).sum()
        if bool((fitted.abs() * (seen[-1] - seen[0]) > sides).any()):
            velocity = fitted
    filled: list[torch.Tensor] = []
    for f in range(n):
        if kept[f] is not None:
            filled.append(kept[f])
            continue
        before = [g for g in seen if g < f]
        after = [g for g in seen if g > f]
        near = ([kept[before[-1]]] if before else []) + ([kept[after[0]]] if after else [])
        if not (before and after):  # past an end: the nearest box and where it moves to
            g = before[-1] if before else after[0]
            near.append(kept[g] + (f - g) * velocity.repeat(2))
        filled.append(_union(torch.stack(near)))
    stacked = torch.stack(filled)
    out = torch.stack([_union(stacked[max(0, f - hold) : f + hold + 1]) for f in range(n)])
    grow = (out[:, 2:] - out[:, :2]) * margin
    out = torch.cat([out[:, :2] - grow, out[:, 2:] + grow], 1)
    out = torch.stack([_grow_small(b, min_box_size, grown_box_size, height, width) for b in out])
    limits = torch.tensor([width, height, width, height], dtype=out.dtype)
    out = torch.minimum(out.clamp(min=0), limits)
    return ClusteredBoxes(out.float(), ids, False)
