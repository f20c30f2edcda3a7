"""One decode per video: Load Video's samples and Motion Trails' windows share one pass."""

from __future__ import annotations

import pytest
import torch

from motionsight.nodes.video import MotionSightLoadVideo
from motionsight.nodes.visual_prompts import MotionSightMotionTrails
from motionsight.video import VideoClip, open_video, render_motion_trails


def test_samples_and_trail_windows_are_decoded_once(sample_videos_dir):
    path = sample_videos_dir / "diving_board.mp4"
    frames, clip, _ = MotionSightLoadVideo().load(str(path), "segments", 16, 1.0, 96)
    video = clip.source
    decoded = video.frames_decoded
    # one forward pass up to the last sample, each frame once
    assert 0 < decoded <= max(clip.sampling.indices) + 1
    (trails,) = MotionSightMotionTrails().render(7, 0.65, "trailing", video=clip)
    assert video.frames_decoded == decoded  # the trails decoded nothing more
    assert clip.frames() is frames and video.frames_decoded == decoded

    # the same pixels as a fresh decode of the samples and of the windows
    fresh_video = open_video(path)
    fresh = VideoClip(fresh_video, clip.sampling, 96)
    assert torch.equal(fresh_video.read(clip.sampling.indices, 96).float() / 255, frames)
    assert torch.allclose(render_motion_trails(fresh), trails, atol=1e-6)
    # other trail settings decode what they need
    (forward,) = MotionSightMotionTrails().render(7, 0.65, "forward", video=clip)
    assert video.frames_decoded > decoded and forward.shape == trails.shape
    assert not torch.allclose(forward, trails)


@pytest.mark.parametrize("band_rows", [2, 0], ids=["bands of 2 rows", "one band"])
def test_the_cpu_blend_equals_the_kernel(band_rows, monkeypatch):
    from motionsight.kernels.trails import motion_trails_from_frames, trail_windows
    from motionsight.video import trails
    from motionsight.video.trails import _blend_cpu

    if band_rows:  # the fold runs band by band (5 rows: 2 + 2 + 1)
        monkeypatch.setattr(trails, "_BAND_BYTES", band_rows * 6 * 3 * 4)

    frames = torch.randint(
        0, 256, (9, 5, 6, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    pick, weights = trail_windows(
        torch.tensor([0, 2, 8]), 9, 7, 0.65, "trailing"
    )  # short windows too
    out = torch.empty(3, 5, 6, 3)
    _blend_cpu(frames, pick, weights, out)  # BGR frames in (as decoded), RGB out
    expected = motion_trails_from_frames(frames.flip(-1), pick, weights / 255).clamp(0, 1)
    assert torch.allclose(out, expected, atol=1e-6)


def test_the_probes_capture_and_first_frame_serve_the_first_read(sample_videos_dir, monkeypatch):
    import pickle

    from motionsight.video import source

    opened: list[bool] = []
    real = source._open_capture

    def counting(path: str, raw: bool = False):
        opened.append(raw)
        return real(path, raw)

    monkeypatch.setattr(source, "_open_capture", counting)
    video = open_video(sample_videos_dir / "desert_train.mp4")
    assert pickle.loads(pickle.dumps(video))._warm is None  # a copy opens its own capture
    first = video.read([0, 3])
    # the probe's capture, kept for this read; no second capture to count packets (the MP4's
    # own index gives the frame count)
    assert opened == [False]
    again = video.read([3, 0])
    assert opened == [False, False] and torch.equal(first, again.flip(0))
    assert video.frames_decoded == 4 + 4  # frames 0..3 each time (0 by the probe the first)
