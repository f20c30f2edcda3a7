"""Motion trails for a clip's sampled frames, decoding only the frames their windows need.

The reference blends every frame of the whole video with its predecessors and re-encodes the
result, then samples 16 frames of it. Here only the `echoes`-frame windows behind (or ahead of)
the sampled frames are decoded, a few windows at a time, already shrunk to the clip's size
(blending is linear, so shrinking first gives the same picture), and each group of windows is
one weighted sum on the chosen device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from ..kernels.trails import motion_trails, trail_windows
from .source import VideoClip

__all__ = ["render_motion_trails"]


def _read_chunks(clip: VideoClip, chunks: list[list[int]]) -> Iterator[torch.Tensor]:
    """uint8 `[len(chunk), H, W, 3]` per chunk, through one open decoder when the source has one."""
    iter_read = getattr(clip.source, "iter_read", None)
    if iter_read is not None:
        yield from iter_read(chunks, clip.max_side)
    else:
        for chunk in chunks:
            yield clip.source.read(chunk, clip.max_side)


def render_motion_trails(
    clip: VideoClip,
    echoes: int = 7,
    decay: float = 0.65,
    variant: str = "trailing",
    device: torch.device | str = "cpu",
    chunk_size: int = 4,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Motion-trail frames for every sampled frame of `clip`.

    Args:
        clip: the video and its sampling; frames come out at `clip.size`.
        echoes: frames per window (7 in the paper).
        decay: the fold's decay (0.65 in the paper).
        variant: "trailing" (frames t-6..t) or "forward" (frames t..t+6), see kernels.trails.
        device: where the blending runs.
        chunk_size: windows blended per step; memory holds about `chunk_size * echoes` frames,
            whatever the video's length.
        progress: called with the number of output frames finished after each step.

    Returns:
        float32 `[N, H, W, 3]` in 0..1 on the CPU, N = number of sampled frames.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    if echoes < 1:
        raise ValueError(f"echoes must be at least 1, got {echoes}")
    device = torch.device(device)
    info = clip.info
    samples = torch.tensor(clip.sampling.indices, dtype=torch.long)
    window_idx, window_w = trail_windows(samples, info.frame_count, echoes, decay, variant)
    n = window_idx.shape[0]

    # Distinct frames per chunk; frames the previous chunk already decoded are carried over,
    # so the decoder only ever moves forward for increasing samples.
    bounds = [(a, min(a + chunk_size, n)) for a in range(0, n, chunk_size)]
    needed = [torch.unique(window_idx[a:b]) for a, b in bounds]  # sorted
    fresh = [
        need[~torch.isin(need, prev)] if prev is not None else need
        for need, prev in zip(needed, [None, *needed[:-1]], strict=True)
    ]
    reads = _read_chunks(clip, [f.tolist() for f in fresh])

    width, height = clip.size
    span = window_idx.shape[1]
    out = torch.empty((n, height, width, 3), dtype=torch.float32)
    # Reused buffers: fresh multi-megabyte allocations per chunk cost more (page faults) than
    # the arithmetic. Gather the windows as uint8, then widen them in place.
    rows = min(chunk_size, n) * span
    win_u8 = torch.empty((rows, height, width, 3), dtype=torch.uint8, device=device)
    win_f = torch.empty((rows, height, width, 3), dtype=torch.float32, device=device)
    prev_need: torch.Tensor | None = None
    prev_frames: torch.Tensor | None = None
    try:
        for (a, b), need, new in zip(bounds, needed, fresh, strict=True):
            decoded = next(reads)
            if prev_need is None or len(new) == len(need):
                frames = decoded
            else:  # splice in the frames the previous chunk already decoded
                frames = torch.empty((len(need), height, width, 3), dtype=torch.uint8)
                is_new = torch.isin(need, new)
                frames[is_new] = decoded
                frames[~is_new] = prev_frames[torch.searchsorted(prev_need, need[~is_new])]
            prev_need, prev_frames = need, frames

            # [n, T, H, W, 3] windows gathered from the distinct frames, then one weighted sum.
            pick = torch.searchsorted(need, window_idx[a:b].flatten()).to(device)
            k = pick.numel()
            torch.index_select(frames.to(device), 0, pick, out=win_u8[:k])
            windows = win_f[:k].copy_(win_u8[:k]).view(b - a, span, height, width, 3)
            # 1/255 folded into the weights: the blend lands in 0..1 without another pass.
            weights = window_w[a:b].to(device=device, dtype=torch.float32) / 255
            out[a:b] = motion_trails(windows, weights).clamp_(0, 1)
            if progress is not None:
                progress(b - a)
    finally:
        reads.close()  # an interrupt (progress raising) releases the capture at once
    return out
