"""The `BBOX` interop type (SAM2/Florence2 packs): a list of `[x1, y1, x2, y2]` pixel boxes.

Either one box per frame, or a single box meaning "the same box on every frame".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def bbox_to_tensor(bbox: Sequence, num_frames: int) -> torch.Tensor:
    """Parse a BBOX value into float boxes `[num_frames, 4]`.

    Accepts `[x1, y1, x2, y2]` (one box for all frames), `[[x1, y1, x2, y2]]` (likewise) or one
    box per frame. Raises ValueError naming what is wrong.
    """
    boxes = torch.as_tensor(bbox, dtype=torch.float32) if len(bbox) else torch.empty(0)
    if boxes.ndim == 1:
        boxes = boxes.unsqueeze(0)
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ValueError(
            f"BBOX must be [x1, y1, x2, y2] or a list of such boxes, got shape {tuple(boxes.shape)}"
        )
    if boxes.shape[0] == 1:
        boxes = boxes.expand(num_frames, 4)
    elif boxes.shape[0] != num_frames:
        raise ValueError(
            f"BBOX has {boxes.shape[0]} boxes for {num_frames} frames; give one box or one per frame"
        )
    if bool(((boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])).any()):
        raise ValueError("BBOX boxes need x2 > x1 and y2 > y1")
    return boxes.clone()


def tensor_to_bbox(boxes: torch.Tensor) -> list[list[float]]:
    """Float boxes `[N, 4]` -> BBOX (one `[x1, y1, x2, y2]` list per frame)."""
    return [[round(float(v), 2) for v in box] for box in boxes.reshape(-1, 4)]
