"""Object-centric spotlight and crop: keep the padded box of the acting objects, darken the rest."""

from __future__ import annotations

import torch
from kornia.filters import gaussian_blur2d


def _as_frame_boxes(boxes: torch.Tensor, num_frames: int) -> torch.Tensor:
    boxes = boxes.reshape(-1, 4)
    if boxes.shape[0] == 1:
        return boxes.expand(num_frames, 4)
    if boxes.shape[0] != num_frames:
        raise ValueError(
            f"got {boxes.shape[0]} boxes for {num_frames} frames; give one box or one per frame"
        )
    return boxes


def pad_boxes(boxes: torch.Tensor, padding: float, height: int, width: int) -> torch.Tensor:
    """Grow boxes by `padding` pixels on every side, clipped to the frame.

    Args:
        boxes: `[N, 4]` float `[x1, y1, x2, y2]` in pixels.

    Returns:
        `[N, 4]` float, `0 <= x1 <= x2 <= width`, `0 <= y1 <= y2 <= height`.
    """
    pad = torch.tensor(
        [-padding, -padding, padding, padding], dtype=boxes.dtype, device=boxes.device
    )
    limits = torch.tensor([width, height, width, height], dtype=boxes.dtype, device=boxes.device)
    return torch.minimum((boxes + pad).clamp(min=0), limits)


def box_masks(boxes: torch.Tensor, height: int, width: int, soft_edge: float = 0.0) -> torch.Tensor:
    """Masks that are 1 on the pixels whose centre lies inside each box, 0 elsewhere.

    Args:
        boxes: `[N, 4]` float pixels.
        soft_edge: sigma (px) of a Gaussian that feathers the edge; 0 keeps it hard.

    Returns:
        `[N, 1, H, W]` float in 0..1 on the boxes' device.
    """
    boxes = boxes.float()
    ys = torch.arange(height, device=boxes.device, dtype=torch.float32) + 0.5
    xs = torch.arange(width, device=boxes.device, dtype=torch.float32) + 0.5
    x1, y1, x2, y2 = (boxes[:, i, None] for i in range(4))
    inside_x = (xs >= x1) & (xs < x2)  # [N, W]
    inside_y = (ys >= y1) & (ys < y2)  # [N, H]
    masks = (inside_y[:, :, None] & inside_x[:, None, :]).unsqueeze(1).float()
    if soft_edge > 0:
        radius = max(1, int(3 * soft_edge))
        masks = gaussian_blur2d(
            masks, (2 * radius + 1, 2 * radius + 1), (soft_edge, soft_edge), border_type="replicate"
        )
    return masks


def spotlight(images: torch.Tensor, masks: torch.Tensor, darken: float = 0.9) -> torch.Tensor:
    """Keep the masked pixels, scale the rest by `1 - darken`: `out = x * (m + (1 - m) * (1 - darken))`.

    Args:
        images: `[N, C, H, W]` float.
        masks: `[N, 1, H, W]` or `[1, 1, H, W]` float in 0..1.
        darken: 0..1; the reference's 0.9 leaves 10 % brightness outside.

    Returns:
        `[N, C, H, W]`, same dtype and device as `images`.
    """
    if not 0.0 <= darken <= 1.0:
        raise ValueError(f"darken must be within 0..1, got {darken}")
    masks = masks.to(images.dtype)
    return images * (masks + (1.0 - masks) * (1.0 - darken))


def spotlight_boxes(
    images: torch.Tensor,
    boxes: torch.Tensor,
    padding: float = 20.0,
    darken: float = 0.9,
    soft_edge: float = 0.0,
) -> torch.Tensor:
    """Spotlight the padded box of each frame (the paper's object-centric visual prompt).

    Args:
        images: `[N, C, H, W]` float.
        boxes: `[N, 4]` (one per frame) or `[4]` (the same for all) float pixels.

    Returns:
        `[N, C, H, W]`.
    """
    n, _, h, w = images.shape
    padded = pad_boxes(_as_frame_boxes(boxes.to(images.device, torch.float32), n), padding, h, w)
    return spotlight(images, box_masks(padded, h, w, soft_edge), darken)


def crop_to_boxes(
    images: torch.Tensor,
    boxes: torch.Tensor,
    padding: float = 40.0,
    per_frame: bool = False,
    size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Crop frames to their padded boxes (the reference's prompt for repetition counting).

    By default every frame is cropped to the union of all padded boxes: one slice, so the
    repeated motion fills the image and the view does not jump between frames. With
    `per_frame`, each frame is cropped to its own padded box and resized to `size`
    (default: the largest padded box) with kornia's `crop_and_resize`.

    Args:
        images: `[N, C, H, W]` float.
        boxes: `[N, 4]` or `[4]` float pixels.
        size: `(height, width)` of the per-frame crops.

    Returns:
        `[N, C, h, w]` with the crop's size.
    """
    n, _, h, w = images.shape
    padded = pad_boxes(_as_frame_boxes(boxes.to(images.device, torch.float32), n), padding, h, w)
    if not per_frame:
        x1, y1 = padded[:, :2].min(dim=0).values.floor().long().tolist()
        x2, y2 = padded[:, 2:].max(dim=0).values.ceil().long().tolist()
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"the padded boxes cover no pixels: {padded.tolist()}")
        return images[:, :, y1:y2, x1:x2]
    from kornia.geometry.transform import crop_and_resize

    if size is None:
        extent = (padded[:, 2:] - padded[:, :2]).max(dim=0).values.ceil().long()
        size = (max(1, int(extent[1])), max(1, int(extent[0])))
    x1, y1, x2, y2 = padded.unbind(-1)
    corners = torch.stack(
        [
            torch.stack([x1, y1], -1),
            torch.stack([x2 - 1, y1], -1),
            torch.stack([x2 - 1, y2 - 1], -1),
            torch.stack([x1, y2 - 1], -1),
        ],
        dim=1,
    )
    return crop_and_resize(images, corners, size)
