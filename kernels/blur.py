"""Background blur: keep the objects sharp and blur the rest (an optional third visual prompt)."""

from __future__ import annotations

import torch
from kornia.filters import gaussian_blur2d


def background_blur(
    images: torch.Tensor,
    masks: torch.Tensor,
    kernel_size: int = 99,
    sigma: float = 33.0,
    passes: int = 2,
) -> torch.Tensor:
    """`out = m * x + (1 - m) * blur(x)`, blur being a Gaussian applied `passes` times.

    The defaults are the reference's 99x99 kernel with sigma 33, applied twice. A kernel larger
    than the image is clamped to the largest odd size that fits (reflect padding needs that).

    Args:
        images: `[N, C, H, W]` float.
        masks: `[N, 1, H, W]` (or `[1, 1, H, W]`) float in 0..1, 1 = keep sharp.

    Returns:
        `[N, C, H, W]`, same dtype and device as `images`.
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}")
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    _, _, h, w = images.shape
    limit = min(h, w) - 1 if min(h, w) % 2 == 0 else min(h, w)
    size = max(1, min(kernel_size, limit))
    blurred = images
    for _ in range(passes):  # a handful of passes, each a separable convolution of the batch
        blurred = gaussian_blur2d(blurred, (size, size), (sigma, sigma), border_type="reflect")
    masks = masks.to(images.dtype)
    return masks * images + (1.0 - masks) * blurred
