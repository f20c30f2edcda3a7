"""Motion trails (MotionSight's camera-motion prompt) as one weighted sum over a stacked window.

The reference folds the window frame by frame (`out = frame * d + out * (1 - d)`), rounding to
8 bits after every blend. That fold is linear, so its effective per-frame weights can be
computed once from scalars, and the whole batch of windows blended with a single einsum.
"""

from __future__ import annotations

import torch
from torch import nn

VARIANTS = ("trailing", "forward")


def trail_weights(length: int = 7, decay: float = 0.65, variant: str = "trailing") -> torch.Tensor:
    """Effective weights of the reference's blending fold over a window of `length` frames.

    - trailing (window t-length+1..t): `out = f[t]`, then for k = 0..length-1
      `out = f[t-k] * d_k + out * (1 - d_k)` with `d_k = decay**(k+1)`.
    - forward (window t..t+length-1): `out = f[last]`, then for k = 1..length-1
      `out = f[last-k] * d_k + out * (1 - d_k)` with `d_k = decay**k`.

    Returns:
        float64 tensor `[length]` ordered oldest to newest (trailing) or t to t+length-1
        (forward); it sums to 1. For 7 frames and decay 0.65: trailing 0.049, 0.072, 0.102,
        0.139, 0.175, 0.196, 0.267; forward 0.075, 0.107, 0.146, 0.184, 0.206, 0.183, 0.098.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    if not 0.0 < decay < 1.0:
        raise ValueError(f"decay must be in (0, 1), got {decay}")
    # weights[j] belongs to the frame `j` steps back from the newest (trailing) / last (forward)
    weights = torch.zeros(length, dtype=torch.float64)
    weights[0] = 1.0
    first_k = 0 if variant == "trailing" else 1
    for k in range(first_k, length):  # a fold over <= `length` scalars, not over pixels
        d = decay ** (k + 1) if variant == "trailing" else decay**k
        weights *= 1.0 - d
        weights[k] += d
    return weights.flip(0)


def trail_windows(
    sample_indices: torch.Tensor,
    frame_count: int,
    echoes: int = 7,
    decay: float = 0.65,
    variant: str = "trailing",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame indices and blending weights of the window around each sampled frame.

    trailing: frames t-echoes+1..t; near the start the window is shorter, its weights are those
    of the shorter fold, and the missing slots repeat frame 0 with weight 0. forward: frames
    t..t+echoes-1, shifted back to fit inside the video; a video shorter than `echoes` uses the
    fold over all its frames (the missing slots repeat the last frame with weight 0).

    Args:
        sample_indices: int tensor `[N]` of frame indices in `[0, frame_count)`.

    Returns:
        `(indices, weights)`: int64 `[N, echoes]` and float32 `[N, echoes]`, each row summing to 1.
    """
    t = sample_indices.long().reshape(-1)
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= frame_count):
        raise ValueError(f"sample indices must lie in [0, {frame_count}), got {t.tolist()}")
    offsets = torch.arange(echoes, device=t.device)
    # one weight table row per possible window length; row L holds the fold over L frames
    table = torch.zeros(echoes + 1, echoes, dtype=torch.float64)
    for length in range(1, echoes + 1):
        w = trail_weights(length, decay, variant)
        if variant == "trailing":
            table[length, echoes - length :] = w  # right-aligned: newest frame last
        else:
            table[length, :length] = w
    if variant == "trailing":
        indices = t[:, None] - (echoes - 1) + offsets
        lengths = torch.clamp(t + 1, max=echoes)
        indices = indices.clamp(min=0)
    elif variant == "forward":
        length = min(echoes, frame_count)
        start = t.clamp(max=frame_count - length)
        indices = (start[:, None] + offsets).clamp(max=frame_count - 1)
        lengths = torch.full_like(t, length)
    else:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    weights = table.to(t.device)[lengths].to(torch.float32)
    return indices, weights


def motion_trails(windows: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Blend each stacked window into one frame: `out[n] = sum_t weights[n, t] * windows[n, t]`.

    Args:
        windows: `[N, T, *]` frames of any trailing layout (`C, H, W` or `H, W, C`); float, or
            uint8 (then computed in float32, result in the same 0..255 scale).
        weights: `[T]` (shared) or `[N, T]` (per window), e.g. from `trail_windows`.

    Returns:
        float tensor `[N, *]` on the windows' device.
    """
    if windows.ndim < 2:
        raise ValueError(f"windows must be [N, T, ...], got shape {tuple(windows.shape)}")
    dtype = windows.dtype if windows.is_floating_point() else torch.float32
    weights = weights.to(windows.device, dtype)
    if weights.ndim == 1:
        weights = weights.expand(windows.shape[0], -1)
    if weights.shape != windows.shape[:2]:
        raise ValueError(
            f"weights {tuple(weights.shape)} do not match windows {tuple(windows.shape[:2])}"
        )
    flat = windows.reshape(*windows.shape[:2], -1).to(dtype)
    return torch.einsum("nt,ntp->np", weights, flat).reshape(windows.shape[0], *windows.shape[2:])


def motion_trails_from_frames(
    frames: torch.Tensor, indices: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Trails straight from distinct frames: `out[n] = sum_t weights[n, t] * frames[indices[n, t]]`.

    Overlapping windows share frames; folding the windows into an `[N, U]` mixing matrix and
    taking one matrix product reads each frame once instead of once per window, and needs no
    gathered copy of the windows.

    Args:
        frames: `[U, *]` distinct frames (float, or uint8 computed in float32).
        indices: int `[N, T]` rows of `frames` in each window.
        weights: `[N, T]` blending weights (e.g. from `trail_windows`).

    Returns:
        float tensor `[N, *]` on the frames' device.
    """
    if indices.shape != weights.shape or indices.ndim != 2:
        raise ValueError(
            f"indices {tuple(indices.shape)} and weights {tuple(weights.shape)} must both be [N, T]"
        )
    dtype = frames.dtype if frames.is_floating_point() else torch.float32
    mixing = torch.zeros(indices.shape[0], frames.shape[0], dtype=dtype, device=frames.device)
    mixing.scatter_add_(1, indices.to(frames.device), weights.to(frames.device, dtype))
    flat = frames.reshape(frames.shape[0], -1)
    if flat.dtype == dtype:
        return (mixing @ flat).reshape(indices.shape[0], *frames.shape[1:])
    # uint8 frames: converted to float a slice of pixels at a time (memory: the output plus a
    # slice, not a float copy of every frame)
    out = torch.empty(indices.shape[0], flat.shape[1], dtype=dtype, device=frames.device)
    step = 1 << 18
    for start in range(0, flat.shape[1], step):
        out[:, start : start + step] = mixing @ flat[:, start : start + step].to(dtype)
    return out.reshape(indices.shape[0], *frames.shape[1:])


class MotionTrails(nn.Module):
    """Module wrapper of `motion_trails` with fixed `trail_weights(length, decay, variant)`."""

    def __init__(self, length: int = 7, decay: float = 0.65, variant: str = "trailing") -> None:
        super().__init__()
        self.register_buffer(
            "weights", trail_weights(length, decay, variant).float(), persistent=False
        )

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return motion_trails(windows, self.weights)
