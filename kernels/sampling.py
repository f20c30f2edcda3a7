"""Which frames MotionSight looks at: the paper's segment midpoints, or a fixed rate."""

from __future__ import annotations

import torch


def segment_midpoint_indices(frame_count: int, num_samples: int = 16) -> torch.Tensor:
    """Indices of the midpoints of `num_samples` equal segments of `[0, frame_count)`.

    With `s = frame_count / num_samples`, index i is `int(s/2 + round(s*i))` (round half to even,
    as the reference's numpy), clamped to the last frame. Videos shorter than `num_samples`
    frames repeat indices.

    Returns:
        int64 tensor `[num_samples]`, non-decreasing, within `[0, frame_count - 1]`.
    """
    if frame_count < 1:
        raise ValueError(f"frame_count must be >= 1, got {frame_count}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    segment = torch.tensor(frame_count / num_samples, dtype=torch.float64)
    steps = torch.arange(num_samples, dtype=torch.float64)
    indices = (segment / 2 + torch.round(segment * steps)).floor().long()
    return indices.clamp(0, frame_count - 1)


def fixed_rate_indices(frame_count: int, fps: float, rate: float = 1.0) -> torch.Tensor:
    """Every `max(1, int(fps / rate))`-th frame from frame 0 (the reference's 1 fps mode).

    Returns:
        int64 tensor `[ceil(frame_count / step)]`.
    """
    if frame_count < 1:
        raise ValueError(f"frame_count must be >= 1, got {frame_count}")
    if fps <= 0 or rate <= 0:
        raise ValueError(f"fps and rate must be positive, got fps={fps}, rate={rate}")
    step = max(1, int(fps / rate))
    return torch.arange(0, frame_count, step, dtype=torch.long)


def sample_timestamps(indices: torch.Tensor, fps: float) -> torch.Tensor:
    """Seconds of each frame index: `indices / fps`, float64 `[N]`."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return indices.to(torch.float64) / fps
