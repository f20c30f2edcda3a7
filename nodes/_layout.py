"""Conversions between ComfyUI's layouts and the kernels' layout (one place for both ways)."""

from __future__ import annotations

import torch
from einops import rearrange

from ..comfy_bridge import torch_device


def image_to_kernel(images: torch.Tensor) -> torch.Tensor:
    """ComfyUI IMAGE `[N, H, W, 3]` (CPU) -> `[N, 3, H, W]` float32 on the compute device."""
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an IMAGE batch [N, H, W, 3], got shape {tuple(images.shape)}")
    return rearrange(images[..., :3], "n h w c -> n c h w").to(torch_device(), torch.float32)


def kernel_to_image(images: torch.Tensor) -> torch.Tensor:
    """`[N, C, H, W]` -> ComfyUI IMAGE `[N, H, W, C]` float32 0..1 on the CPU."""
    return rearrange(images, "n c h w -> n h w c").clamp(0, 1).to("cpu", torch.float32).contiguous()


def mask_to_kernel(mask: torch.Tensor, num_frames: int, height: int, width: int) -> torch.Tensor:
    """ComfyUI MASK `[B, H', W']` or `[H', W']` -> `[N, 1, H, W]` on the compute device.

    One mask broadcasts to every frame; a mask of another size is resized (bilinear).
    """
    mask = mask.to(torch_device(), torch.float32)
    if mask.ndim == 2:
        mask = mask.unsqueeze(0)
    if mask.ndim != 3:
        raise ValueError(f"expected a MASK [B, H, W], got shape {tuple(mask.shape)}")
    if mask.shape[0] not in (1, num_frames):
        raise ValueError(
            f"MASK has {mask.shape[0]} frames for {num_frames} images; give one or one per frame"
        )
    mask = mask.unsqueeze(1)
    if mask.shape[-2:] != (height, width):
        mask = torch.nn.functional.interpolate(
            mask, size=(height, width), mode="bilinear", align_corners=False
        )
    return mask.expand(num_frames, 1, height, width)
