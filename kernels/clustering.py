"""Temporal box clustering: per-frame detections -> one steady spotlight box per frame.

METHOD.md "Temporal clustering", rule by rule:

1. Per frame with boxes, the frame's box is the union of its boxes and its centre the mean of
   their centres. Only such frames vote in the clustering.
2. A running cluster centre follows `c = momentum * c + (1 - momentum) * centre` (0.7 / 0.3).
3. A new cluster starts when a frame's centre is more than `distance_ratio * min(W, H)` from the
   running centre AND the current cluster already holds `min_cluster_size` (3) boxes.
4. A cluster's box is the union of its frames' boxes; a union narrower or shorter than
   `min_box_size` (10 px) grows to `grown_box_size` (100 px) around its centre, clipped.
5. Every frame is covered: frames inside a cluster's span (including frames without boxes,
   which reuse the last valid box, i.e. their cluster's) take the cluster's box; frames between
   two clusters take the union of both; frames before the first / after the last cluster take
   the nearest cluster's box. With no box in any frame, every frame's box is the whole frame
   (`fallback=True`), as before any box is seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ClusteredBoxes:
    """The result of `cluster_boxes`.

    boxes: `[N, 4]` float pixels, one spotlight box per frame. cluster_ids: `[N]` int64, the
    cluster a frame belongs to, or -1 for a frame between / outside clusters. fallback: True
    when no frame had any box (all boxes are the whole frame).
    """

    boxes: torch.Tensor
    cluster_ids: torch.Tensor
    fallback: bool


def whole_frame_box(height: int, width: int) -> torch.Tensor:
    """`[4]` float box covering the whole frame."""
    return torch.tensor([0.0, 0.0, float(width), float(height)])


def _union(boxes: torch.Tensor) -> torch.Tensor:
    return torch.cat([boxes[:, :2].min(dim=0).values, boxes[:, 2:].max(dim=0).values])


def _grow_small(
    box: torch.Tensor, min_size: float, grown: float, height: int, width: int
) -> torch.Tensor:
    if float(box[2] - box[0]) >= min_size and float(box[3] - box[1]) >= min_size:
        return box
    centre = (box[:2] + box[2:]) / 2
    half = grown / 2
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
) -> ClusteredBoxes:
    """Cluster per-frame boxes over time into one spotlight box per frame (rules in the module doc).

    Args:
        boxes_per_frame: N tensors `[K_i, 4]` (K_i may be 0) of `[x1, y1, x2, y2]` pixels.
        height, width: frame size in pixels.

    Returns:
        `ClusteredBoxes` with `boxes` `[N, 4]` on the CPU.
    """
    n = len(boxes_per_frame)
    if n == 0:
        raise ValueError("cluster_boxes needs at least one frame")
    frame_box: dict[int, torch.Tensor] = {}
    frame_centre: dict[int, torch.Tensor] = {}
    for i, boxes in enumerate(boxes_per_frame):
        boxes = boxes.detach().to("cpu", torch.float64).reshape(-1, 4)
        if boxes.shape[0]:
            frame_box[i] = _union(boxes)
            frame_centre[i] = ((boxes[:, :2] + boxes[:, 2:]) / 2).mean(dim=0)
    if not frame_box:
        return ClusteredBoxes(
            whole_frame_box(height, width).expand(n, 4).clone(), torch.full((n,), -1), True
        )

    # Sequential by nature: each decision depends on the running centre of the frames before it,
    # over at most a few dozen 4-number boxes, so a loop over frames is the clear form here.
    threshold = distance_ratio * min(height, width)
    clusters: list[list[int]] = []
    centre = None
    for i in sorted(frame_box):
        current = frame_centre[i]
        far = centre is not None and float(torch.linalg.vector_norm(current - centre)) > threshold
        if centre is None or (far and len(clusters[-1]) >= min_cluster_size):
            clusters.append([i])
            centre = current
        else:
            clusters[-1].append(i)
            centre = momentum * centre + (1 - momentum) * current

    cluster_box = [
        _grow_small(
            _union(torch.stack([frame_box[i] for i in members])),
            min_box_size,
            grown_box_size,
            height,
            width,
        )
        for members in clusters
    ]
    out = torch.empty(n, 4, dtype=torch.float64)
    ids = torch.full((n,), -1, dtype=torch.long)
    for k, members in enumerate(clusters):
        out[members[0] : members[-1] + 1] = cluster_box[k]
        ids[members[0] : members[-1] + 1] = k
    for k in range(len(clusters) - 1):  # gaps: union of the two neighbours
        gap = slice(clusters[k][-1] + 1, clusters[k + 1][0])
        out[gap] = _union(torch.stack([cluster_box[k], cluster_box[k + 1]]))
    out[: clusters[0][0]] = cluster_box[0]
    out[clusters[-1][-1] + 1 :] = cluster_box[-1]
    return ClusteredBoxes(out.float(), ids, False)
