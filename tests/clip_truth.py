"""Hand-labelled ground truth for the real sample clips, and the checks against it.

Labels were made by viewing the 16 segment-midpoint frames of each clip (pixels of the clip):
- `LAWN_TORSO`: the mowing person's torso centre in each sampled frame of lawn_mowing.mp4.
- `TRAIN_LINE`: the centre line of the near part of the train in desert_train.mp4 (the drone
  follows the train, so one polyline serves every frame).
"""

from __future__ import annotations

import torch

LAWN_TORSO = [
    (623, 105), (605, 98), (595, 105), (567, 113), (553, 123), (503, 123), (486, 158), (422, 176),
    (299, 194), (109, 176), (88, 211), (81, 211), (211, 299), (690, 299), (1133, 264), (1225, 299),
]  # fmt: skip
TRAIN_LINE = torch.tensor(
    [(20, 240), (64, 268), (128, 295), (192, 315), (256, 333), (320, 350), (384, 365), (448, 378), (512, 392)],
    dtype=torch.float32,
)  # fmt: skip


def line_points(line: torch.Tensor, per_segment: int = 20) -> torch.Tensor:
    """Points `[P, 2]` spread along a polyline `[L, 2]`."""
    steps = torch.linspace(0, 1, per_segment)[:, None]
    return torch.cat([torch.lerp(line[k], line[k + 1], steps) for k in range(len(line) - 1)])


def distance_to_line(points: torch.Tensor, line: torch.Tensor) -> torch.Tensor:
    """Distance of each point `[P, 2]` to the polyline `[L, 2]` -> `[P]`."""
    a, ab = line[:-1], line[1:] - line[:-1]
    t = (((points[:, None] - a[None]) * ab[None]).sum(-1) / (ab * ab).sum(-1)).clamp(0, 1)
    return (points[:, None] - (a[None] + t[..., None] * ab[None])).norm(dim=-1).amin(1)


def share_of_points_inside(boxes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """For each box `[K, 4]` (xyxy), the share of `points` `[P, 2]` inside it -> `[K]`."""
    inside = (points[None] >= boxes[:, None, :2]) & (points[None] < boxes[:, None, 2:])
    return inside.all(-1).float().mean(1)


def train_box_counts(boxes_per_frame: list[torch.Tensor]) -> tuple[int, int]:
    """(frames with a box on the train, frames with a box far off it) in desert_train.mp4.

    On the train: the box centre lies within 40 px of `TRAIN_LINE` and the box holds at least
    30% of the points along it (about 160 px of train). Far off: a box centre more than 60 px
    from the line.
    """
    points = line_points(TRAIN_LINE)
    on_train = off_train = 0
    for boxes in boxes_per_frame:
        near = distance_to_line((boxes[:, :2] + boxes[:, 2:]) / 2, TRAIN_LINE)
        holds = share_of_points_inside(boxes, points)
        on_train += int(((near < 40) & (holds >= 0.3)).any())
        off_train += int((near > 60).any())
    return on_train, off_train
