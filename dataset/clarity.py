"""Clarity of sampled frames: sharpness (Laplacian spread) and blockiness (8x8 codec blocks).

Pure tensor operations (torch and kornia only), Kornia style: a function with the shapes in its
docstring. They stand in for the technical-quality predictor the paper filtered with (its model
and thresholds were not published).
"""

from __future__ import annotations

import kornia
import torch

__all__ = ["blockiness", "sharpness"]


def sharpness(gray: torch.Tensor) -> torch.Tensor:
    """Standard deviation of the Laplacian of luma: blur and low detail score low.

    Args:
        gray: `[N, 1, H, W]` float luma in 0..1.

    Returns:
        `[N]` float, about 0.005 (blurred) to 0.1 (crisp detail).
    """
    if gray.ndim != 4 or gray.shape[1] != 1:
        raise ValueError(f"sharpness expects [N, 1, H, W] luma, got {tuple(gray.shape)}")
    lap = kornia.filters.laplacian(gray, kernel_size=3, normalized=True)
    return lap.flatten(1).std(dim=1)


def blockiness(gray: torch.Tensor, block: int = 8) -> torch.Tensor:
    """How much stronger the luma steps are across `block`-pixel grid lines than inside blocks.

    Compression blocking puts edges on the codec's grid; natural content does not prefer it.
    Measured at the decoded resolution (a resize smears the grid away).

    Args:
        gray: `[N, 1, H, W]` float luma in 0..1, `H, W >= 2 * block`.
        block: the codec block size (8 for MPEG-family codecs).

    Returns:
        `[N]` float: 1.0 for no blocking, larger for visible blocks.
    """
    if gray.ndim != 4 or gray.shape[1] != 1:
        raise ValueError(f"blockiness expects [N, 1, H, W] luma, got {tuple(gray.shape)}")
    h, w = gray.shape[-2:]
    if h < 2 * block or w < 2 * block:
        return torch.ones(gray.shape[0], dtype=gray.dtype, device=gray.device)
    dx = (gray[..., :, 1:] - gray[..., :, :-1]).abs()[:, 0]  # [N, H, W-1]: step x -> x+1
    dy = (gray[..., 1:, :] - gray[..., :-1, :]).abs()[:, 0]  # [N, H-1, W]
    on_x = torch.zeros(w - 1, dtype=torch.bool, device=gray.device)
    on_x[block - 1 :: block] = True
    on_y = torch.zeros(h - 1, dtype=torch.bool, device=gray.device)
    on_y[block - 1 :: block] = True
    eps = 1e-6
    grid = dx[..., on_x].mean(dim=(1, 2)) + dy[:, on_y, :].mean(dim=(1, 2))
    inside = dx[..., ~on_x].mean(dim=(1, 2)) + dy[:, ~on_y, :].mean(dim=(1, 2))
    return (grid + eps) / (inside + eps)


def luma(frames: torch.Tensor) -> torch.Tensor:
    """`[N, H, W, 3]` uint8 or float RGB -> `[N, 1, H, W]` float luma in 0..1."""
    x = frames.permute(0, 3, 1, 2).float()
    if frames.dtype == torch.uint8:
        x = x / 255
    return kornia.color.rgb_to_grayscale(x)
