"""Motion trails for a clip's sampled frames, decoding only the frames their windows need.

The reference blends every frame of the whole video with its predecessors and re-encodes the
result, then samples 16 frames of it. Here only the `echoes`-frame windows behind (or ahead of)
the sampled frames are decoded, a few windows at a time, already shrunk to the clip's size
(blending and area resizing are both linear, so shrinking first gives the same picture up to
8-bit rounding), and each group of windows is one weighted sum on the chosen device. Memory
holds a few windows' frames, never the video. A clip's first `frames()` renders the default trails in the same pass that
decodes its samples and keeps them (`VideoClip.cache`): asked with those settings, this returns
them without decoding again.

Measured and not taken (2-core CPU): blending the decoder's YUV planes and converting only the
blends to RGB (a quarter of the conversions) is off by up to 33 levels wherever a frame's
colours clip, which the reference's per-frame RGB does not allow; PyAV's decoder with its
faster colour conversion on the blend thread is no faster end to end than OpenCV here; 4-8
FFmpeg decoder threads instead of one per core gain 3-8% on the 640x480 clip and nothing on
the 720p ones. What is left is OpenCV converting each needed frame on the caller's thread
between grabs (`bench/bench_motion_trails.py`'s "+rgb" column) and the blend itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import cv2
import numpy as np
import torch

from ..kernels.trails import motion_trails_from_frames, trail_windows
from .source import VideoClip

__all__ = ["render_motion_trails"]


def _read_chunks(
    clip: VideoClip, chunks: list[list[int]], into: Iterator[torch.Tensor]
) -> Iterator[torch.Tensor]:
    """uint8 BGR `[len(chunk), H, W, 3]` per chunk, written into the buffers `into` yields.

    BGR, the decoder's order: frames go from the decoder to the blend without a colour pass;
    the blend writes its output as RGB."""
    iter_read = getattr(clip.source, "iter_read", None)
    if iter_read is not None:  # one decoder for all chunks
        yield from iter_read(chunks, clip.max_side, into=into, bgr=True)
    else:
        for chunk, buffer in zip(chunks, into, strict=False):
            frames = clip.source.read(chunk, clip.max_side).flip(-1)
            yield buffer[: len(chunk)].copy_(frames)


# Rows of float32 pixels folded at a time: a band this size stays in the CPU's L2 cache while
# all of its window's frames are added in, instead of going through memory once per frame.
_BAND_BYTES = 1 << 19
# Per pixel: RGB = this 3x3 matrix times BGR, with the 0..255 -> 0..1 scale folded in.
_BGR_TO_RGB_01 = np.fliplr(np.eye(3, dtype=np.float32)) / np.float32(255)


def _blend_cpu(
    frames: torch.Tensor, pick: torch.Tensor, weights: torch.Tensor, out: torch.Tensor
) -> None:
    """`out[n] = sum_t weights[n, t] * rgb(frames[pick[n, t]]) / 255`, clamped to 0..1, on the CPU.

    The same sum as `kernels.trails.motion_trails_from_frames`, computed as OpenCV's running
    average (`accumulateWeighted`, uint8 in, float32 out, SIMD): each step's alpha is chosen so
    the fold ends with exactly `weights`. Several times faster than a float matrix product over
    converted frames, and no float copy of the frames. The fold runs a band of rows at a time
    in a small cache-resident accumulator, which is then scaled into `out` (one write of it)
    with its channels put in RGB order in the same step.

    frames: uint8 BGR `[U, H, W, 3]`; pick: int `[N, T]`; weights: `[N, T]` summing to 1 per
    row; out: float32 RGB `[N, H, W, 3]`, contiguous, written in place.
    """
    source = frames.numpy()
    height, width = source.shape[1:3]
    band = max(1, min(height, _BAND_BYTES // (width * 3 * 4)))
    acc = np.zeros((band, width, 3), np.float32)
    for n, (picked, weighed) in enumerate(zip(pick.tolist(), weights.tolist(), strict=True)):
        row = [(i, w) for i, w in zip(picked, weighed, strict=True) if w > 0]
        alphas, remaining = [], 1.0
        for _, w in reversed(row):  # the last frame keeps its weight; earlier ones are scaled
            alphas.append(w / remaining if remaining > 1e-12 else 0.0)
            remaining -= w
        alphas[-1] = 1.0  # the first frame's (its weight over itself): starts the fold exactly
        steps = [(i, alpha) for (i, _), alpha in zip(row, reversed(alphas), strict=True)]
        dst = out[n].numpy()
        for top in range(0, height, band):
            rows = slice(top, min(top + band, height))
            part = acc[: rows.stop - top]
            part.fill(0)  # so alpha 1 copies the first frame exactly
            for i, alpha in steps:
                cv2.accumulateWeighted(source[i, rows], part, alpha)
            # weights >= 0 and summing to 1: only rounding can pass 255, nothing goes below 0;
            # clamped in the cached band, then BGR -> RGB and scaled into `out` in one pass
            cv2.threshold(part, 255.0, 255.0, cv2.THRESH_TRUNC, dst=part)
            cv2.transform(part, _BGR_TO_RGB_01, dst=dst[rows])


def _positions(order: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
    """Where each of `wanted` sits in `order` (distinct values, any order)."""
    values, perm = order.sort()
    return perm[torch.searchsorted(values, wanted)]


def render_motion_trails(
    clip: VideoClip,
    echoes: int = 7,
    decay: float = 0.65,
    variant: str = "trailing",
    device: torch.device | str = "cpu",
    chunk_size: int = 2,
    progress: Callable[[int], None] | None = None,
    samples_into: torch.Tensor | None = None,
) -> torch.Tensor:
    """Motion-trail frames for every sampled frame of `clip`.

    Args:
        clip: the video and its sampling; frames come out at `clip.size`.
        echoes: frames per window (7 in the paper).
        decay: the fold's decay (0.65 in the paper).
        variant: "trailing" (frames t-6..t) or "forward" (frames t..t+6), see kernels.trails.
        device: where the blending runs. On the CPU a chunk is blended on a worker thread
            while the next one decodes (OpenCV releases the GIL in both).
        chunk_size: windows blended per step; memory holds about `2 * chunk_size * echoes`
            frames, whatever the video's length.
        progress: called with the number of output frames finished after each step.
        samples_into: optional uint8 `[N, H, W, 3]`: receives the sampled frames themselves
            (each lies in its window), so one pass gives both.

    Returns:
        float32 `[N, H, W, 3]` in 0..1 on the CPU, N = number of sampled frames.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    if echoes < 1:
        raise ValueError(f"echoes must be at least 1, got {echoes}")
    cached = clip.cache.trails.get((echoes, float(decay), variant))
    if cached is not None and samples_into is None:
        if progress is not None:
            progress(cached.shape[0])
        return cached
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

    width, height = clip.size
    span = window_idx.shape[1]
    rows = min(chunk_size, n) * span
    out = torch.empty((n, height, width, 3), dtype=torch.float32)
    # Reused buffers: on a fresh multi-megabyte allocation the page faults cost more than the
    # arithmetic. Two uint8 buffers of distinct frames take turns (this chunk's, the previous
    # chunk's to carry frames over from).
    ring = [torch.empty((rows, height, width, 3), dtype=torch.uint8) for _ in range(2)]
    # Frames move between buffers one memcpy each, in numpy: torch's uint8 index_select and
    # copies run many times slower on the CPU (they also spin up threads for a few frames).
    ring_np = [r.numpy() for r in ring]
    samples_np = samples_into.numpy() if samples_into is not None else None
    reads = _read_chunks(
        clip, [f.tolist() for f in fresh], (ring[c % 2] for c in range(len(bounds)))
    )
    prev_order = torch.empty(0, dtype=torch.long)
    blender = ThreadPoolExecutor(max_workers=1) if device.type == "cpu" else None
    pending: tuple[Future, int] | None = None  # the previous chunk's blend, and its windows

    def finish_pending() -> None:
        nonlocal pending
        if pending is not None:
            (job, count), pending = pending, None
            job.result()  # its error, if any, is raised here
            if progress is not None:
                progress(count)

    try:
        for c, ((a, b), need, new) in enumerate(zip(bounds, needed, fresh, strict=True)):
            buffer, held, prev_held = ring[c % 2], ring_np[c % 2], ring_np[(c + 1) % 2]
            next(reads)  # decodes the new frames into buffer[:len(new)]
            carried = need[~torch.isin(need, new)]
            for row, src in enumerate(_positions(prev_order, carried).tolist(), len(new)):
                held[row] = prev_held[src]
            order = torch.cat([new, carried])  # the frame index held by each buffer row
            frames = buffer[: len(need)].to(device)
            prev_order = order

            if samples_np is not None:
                for row, src in enumerate(_positions(order, samples[a:b]).tolist(), a):
                    cv2.cvtColor(held[src], cv2.COLOR_BGR2RGB, dst=samples_np[row])
            pick = _positions(order, window_idx[a:b].flatten()).view(b - a, span)
            if blender is not None:
                # The previous chunk's blend read the other buffer, which the next chunk
                # decodes into: it must be done before this one is handed over.
                finish_pending()
                job = blender.submit(_blend_cpu, frames, pick, window_w[a:b], out[a:b])
                pending = (job, b - a)
            else:
                # one weighted sum over the distinct frames (a [windows x frames] mixing matrix);
                # 1/255 folded into the weights, so the blend lands in 0..1 without another pass
                weights = window_w[a:b].to(dtype=torch.float32) / 255
                trails = motion_trails_from_frames(frames, pick, weights).clamp_(0, 1)
                out[a:b] = trails.flip(-1).cpu()  # BGR -> RGB
                if progress is not None:
                    progress(b - a)
        finish_pending()
    finally:
        reads.close()  # an interrupt (progress raising) releases the capture at once
        if blender is not None:
            blender.shutdown(wait=True)  # nothing writes into `out` or reads the ring after this
    return out
