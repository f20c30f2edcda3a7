"""video/: probing, sampling and on-demand decoding of the real sample clips, and motion trails."""

from __future__ import annotations

import hashlib
import pickle
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from motionsight.kernels.trails import trail_windows
from motionsight.video import (
    FrameBatch,
    FrameSource,
    Sampling,
    VideoClip,
    VideoError,
    VideoFile,
    VideoInfo,
    open_video,
    render_motion_trails,
)

# name: (width, height, fps, frames), as the sample folder's README lists them
CLIPS = {
    "desert_train.mp4": (512, 512, 24.0, 64),
    "desert_vehicles_aerial.mp4": (512, 512, 24.0, 64),
    "diving_board.mp4": (640, 480, 29.97, 166),
    "lawn_mowing.mp4": (1280, 720, 29.97, 300),
    "stairs_pet.mp4": (1280, 720, 29.97, 793),
}


def sequential_rgb(path: Path, max_side_size: tuple[int, int] | None = None):
    """Every frame by plain sequential cv2 decoding (RGB), one at a time."""
    cap = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            if max_side_size is not None:
                frame = cv2.resize(frame, max_side_size, interpolation=cv2.INTER_AREA)
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


def reference_fold(frames_bgr: list[np.ndarray], decay: float = 0.65) -> np.ndarray:
    """The streaming reference: uint8 `cv2.addWeighted` fold, newest frame last in the list."""
    out = frames_bgr[-1].copy()
    for k, frame in enumerate(reversed(frames_bgr)):
        d = decay ** (k + 1)
        out = cv2.addWeighted(frame, d, out, 1 - d, 0)
    return out


@pytest.fixture(scope="module")
def train(sample_videos_dir) -> VideoFile:
    return open_video(sample_videos_dir / "desert_train.mp4")


# --- probing and sampling ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_probe_matches_the_readme_table(sample_videos_dir, name):
    width, height, fps, frames = CLIPS[name]
    video = open_video(sample_videos_dir / name)
    info = video.info
    assert isinstance(video, FrameSource)
    assert (info.width, info.height, info.frame_count) == (width, height, frames)
    assert info.fps == pytest.approx(fps, abs=0.01)
    assert info.duration == pytest.approx(frames / fps, abs=0.01)
    assert (
        Path(info.path).is_absolute()
        and Path(info.path).resolve() == (sample_videos_dir / name).resolve()
    )
    assert video.keyframes and video.keyframes[0] == 0


def test_segment_sampling_is_the_papers_midpoint_rule(sample_videos_dir):
    for name, (_, _, _, frames) in CLIPS.items():
        info = open_video(sample_videos_dir / name).info
        sampling = Sampling.segments(info, 16)
        s = frames / 16
        assert sampling.indices == tuple(int(s / 2 + round(s * i)) for i in range(16)), name
        assert sampling.timestamps == pytest.approx([i / info.fps for i in sampling.indices])
    info = open_video(sample_videos_dir / "desert_train.mp4").info
    assert Sampling.segments(info).indices == tuple(range(2, 64, 4))
    assert Sampling.segments(info, 4).indices == (8, 24, 40, 56)


def test_fixed_rate_sampling_takes_every_int_fps_th_frame(sample_videos_dir):
    info = open_video(sample_videos_dir / "lawn_mowing.mp4").info
    sampling = Sampling.fixed_rate(info, 1.0)
    assert sampling.indices == tuple(range(0, 300, 29))
    assert sampling.timestamps[1] == pytest.approx(29 / info.fps)
    assert Sampling.fixed_rate(info, 2.0).indices[:3] == (0, 14, 28)


def test_vhs_info_reports_source_and_loaded_frames(train):
    sampling = Sampling.segments(train.info)
    vhs = train.info.to_vhs(sampling, loaded_width=128, loaded_height=128)
    assert set(vhs) == {
        *(f"source_{k}" for k in ("fps", "frame_count", "duration", "width", "height")),
        *(f"loaded_{k}" for k in ("fps", "frame_count", "duration", "width", "height")),
    }
    assert (vhs["source_fps"], vhs["source_frame_count"], vhs["source_width"]) == (24.0, 64, 512)
    assert vhs["source_duration"] == pytest.approx(64 / 24)
    # 16 frames 4 source frames apart: 6 fps, lasting as long as the video
    assert vhs["loaded_fps"] == pytest.approx(6.0) and vhs["loaded_frame_count"] == 16
    assert vhs["loaded_duration"] == pytest.approx(64 / 24)
    assert (vhs["loaded_width"], vhs["loaded_height"]) == (128, 128)
    assert train.info.to_vhs()["loaded_frame_count"] == 64


def test_sampling_is_validated(train):
    with pytest.raises(VideoError, match="2 indices but 1 timestamps"):
        Sampling((1, 2), (0.1,), 24.0)
    with pytest.raises(VideoError, match="negative"):
        Sampling.from_indices([-1, 3], 24.0)
    with pytest.raises(VideoError, match="fps"):
        Sampling.from_indices([1], 0.0)
    with pytest.raises(VideoError, match="frame index 64 is outside .*desert_train.mp4"):
        VideoClip(train, Sampling.from_indices([0, 64], 24.0))
    with pytest.raises(VideoError, match="frame index 70 is outside .*desert_train.mp4"):
        train.read([3, 70])
    with pytest.raises(VideoError, match="frame index -1"):
        train.read([-1])


# --- decoding ---------------------------------------------------------------------------------


def test_read_keeps_order_and_duplicates_and_resizes(sample_videos_dir):
    video = open_video(sample_videos_dir / "lawn_mowing.mp4")
    frames = video.read([120, 7, 120, 0])
    assert frames.shape == (4, 720, 1280, 3) and frames.dtype == torch.uint8
    assert torch.equal(frames[0], frames[2]) and not torch.equal(frames[0], frames[1])
    assert torch.equal(frames[3], video.read([0])[0])
    small = video.read([120, 7], max_side=320)
    assert small.shape == (2, 180, 320, 3)
    expected = cv2.resize(frames[0].numpy(), (320, 180), interpolation=cv2.INTER_AREA)
    assert np.array_equal(small[0].numpy(), expected)
    assert video.read([7], max_side=4000).shape == (1, 720, 1280, 3)  # never enlarged
    assert video.read([], max_side=320).shape == (0, 180, 320, 3)
    # decoding straight into caller-owned buffers (what motion trails do to reuse memory)
    buffers = [torch.zeros(3, 180, 320, 3, dtype=torch.uint8) for _ in range(2)]
    views = list(video.iter_read([[120, 7], [0]], max_side=320, into=buffers))
    assert views[0].data_ptr() == buffers[0].data_ptr() and torch.equal(buffers[0][:2], small)
    assert torch.equal(buffers[1][0], video.read([0], max_side=320)[0])
    with pytest.raises(ValueError, match="uint8 CPU tensor"):
        list(video.iter_read([[1]], max_side=320, into=[torch.zeros(1, 180, 320, 3)]))
    clip = VideoClip(video, Sampling.segments(video.info), max_side=320)
    images = clip.frames()
    assert images.shape == (16, 180, 320, 3) and images.dtype == torch.float32
    assert 0 <= float(images.min()) and float(images.max()) <= 1


@pytest.mark.parametrize("name", ["diving_board.mp4", "lawn_mowing.mp4", "stairs_pet.mp4"])
def test_seeking_reads_the_same_bytes_as_sequential_decoding(sample_videos_dir, name):
    path = sample_videos_dir / name
    digests = [hashlib.sha1(f.tobytes()).hexdigest() for f in sequential_rgb(path)]
    video = open_video(path)
    assert len(digests) == video.info.frame_count
    rng = random.Random(0)
    wanted = rng.sample(range(len(digests)), 12) + [len(digests) - 1, 0, 0]
    rng.shuffle(wanted)  # out of order, with a repeat
    frames = video.read(wanted)
    got = [hashlib.sha1(f.numpy().tobytes()).hexdigest() for f in frames]
    assert got == [digests[i] for i in wanted]
    # The last frame alone: a fresh capture seeks to the last keyframe instead of stepping.
    last = video.read([len(digests) - 1])[0]
    assert hashlib.sha1(last.numpy().tobytes()).hexdigest() == digests[-1]
    assert video.seeks >= (1 if len(video.keyframes) > 1 else 0)


def test_reading_sparse_frames_of_the_long_clip_seeks_instead_of_decoding_everything(
    sample_videos_dir,
):
    video = open_video(sample_videos_dir / "stairs_pet.mp4")  # keyframes every 160 frames
    assert video.keyframes == (0, 160, 320, 480, 640)
    video.read([5, 400, 700])
    # 0..5, then seeks landing on keyframes 320 and 640 instead of stepping through 6..699
    assert video.seeks == 2
    assert video.frames_decoded < 6 + (400 - 320 + 1) + (700 - 640 + 1) + 2
    before = video.frames_decoded
    video.read(Sampling.segments(video.info).indices)
    assert video.seeks > 2 and video.frames_decoded - before < video.info.frame_count


def test_decoding_work_does_not_grow_with_the_videos_length(sample_videos_dir, tmp_path):
    """10x and 30x longer videos (12-frame GOPs, as mp4v writes them): the same work for 16 frames."""
    small = [f for f in sequential_rgb(sample_videos_dir / "desert_train.mp4", (64, 64))]
    work = {}
    for times in (10, 30):
        path = tmp_path / f"x{times}.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 24, (64, 64))
        for _ in range(times):
            for frame in small:
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
        video = open_video(path)
        assert video.info.frame_count == 64 * times
        trails = render_motion_trails(VideoClip(video, Sampling.segments(video.info)))
        assert trails.shape == (16, 64, 64, 3)
        assert video.seeks >= 8
        work[times] = video.frames_decoded
    # Per sample: OpenCV's seek lands on the keyframe at least 16 frames before the window,
    # then decodes up to it: at most 16 + 12 + 7 frames, whatever the length.
    assert work[30] <= 16 * (16 + 12 + 7)
    assert work[30] < 1.25 * work[10]
    assert work[30] < (64 * 30) / 3


def test_frame_batch_and_video_file_give_the_same_frames(train):
    every = train.read(range(train.info.frame_count))
    batch = FrameBatch(every.float() / 255, fps=train.info.fps)
    assert batch.info == VideoInfo("<IMAGE batch>", 24.0, 64, 512, 512)
    wanted = [63, 2, 2, 40]
    assert torch.equal(batch.read(wanted), train.read(wanted))
    assert torch.equal(batch.read(wanted, max_side=100), train.read(wanted, max_side=100))
    assert torch.equal(FrameBatch(every).read([5]), every[5:6])  # uint8 batches too
    sampling = Sampling.segments(batch.info)
    assert sampling == Sampling.segments(train.info)
    assert torch.equal(VideoClip(batch, sampling).frames(), VideoClip(train, sampling).frames())
    with pytest.raises(VideoError, match=r"\[N, H, W, 3\]"):
        FrameBatch(torch.zeros(4, 3, 8, 8))
    with pytest.raises(VideoError, match="no frames"):
        FrameBatch(torch.zeros(0, 8, 8, 3))


def test_video_file_pickles_and_reads_from_several_threads(train):
    clone = pickle.loads(pickle.dumps(train))
    assert clone == train and clone.info == train.info
    assert torch.equal(clone.read([10, 50]), train.read([10, 50]))
    clip = VideoClip(train, Sampling.segments(train.info), max_side=64)
    assert pickle.loads(pickle.dumps(clip)) == clip
    groups = [[3, 30], [60, 1], [17, 17, 40], [8]]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda g: train.read(g, max_side=64), groups))
    for group, frames in zip(groups, together, strict=True):
        assert torch.equal(frames, train.read(group, max_side=64))


# --- motion trails ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def train_trails(train):
    clip = VideoClip(train, Sampling.segments(train.info), max_side=128)
    calls = []
    trails = render_motion_trails(clip, chunk_size=3, progress=calls.append)
    return clip, trails, calls


def test_trails_shape_range_and_progress(train_trails):
    clip, trails, calls = train_trails
    assert trails.shape == (16, 128, 128, 3) and trails.dtype == torch.float32
    assert trails.device.type == "cpu"
    assert 0 <= float(trails.min()) and float(trails.max()) <= 1
    assert calls == [3, 3, 3, 3, 3, 1]


def test_trails_equal_a_per_window_computation_and_the_reference_fold(train_trails, train):
    clip, trails, _ = train_trails
    every = train.read(range(train.info.frame_count), max_side=128)  # RGB uint8
    idx, w = trail_windows(torch.tensor(clip.sampling.indices), train.info.frame_count, 7, 0.65)
    for i in (0, 1, 7, 15):  # the first windows are cut short by the start of the video
        expected = (w[i].view(-1, 1, 1, 1) * every[idx[i]].float()).sum(0) / 255
        torch.testing.assert_close(trails[i], expected, atol=1e-5, rtol=0)
        # the reference's uint8 fold over frames t-6..t: at most a few levels apart
        t = clip.sampling.indices[i]
        window = [np.ascontiguousarray(f[..., ::-1]) for f in every[max(t - 6, 0) : t + 1].numpy()]
        folded = np.ascontiguousarray(reference_fold(window)[..., ::-1])
        assert (trails[i] * 255 - torch.from_numpy(folded).float()).abs().max() <= 3


def test_trails_keep_static_parts_sharp_and_smear_motion(train_trails):
    clip, trails, _ = train_trails
    frames = clip.frames()
    diff = (trails - frames).abs().mean(dim=(0, 3)) * 255  # [H, W], in levels
    sky, ground = diff[:24], diff[-32:]  # the sky does not move; the foreground slides by
    assert float(sky.mean()) < 1.0
    assert float(ground.mean()) > 3.0


def test_an_interrupt_during_trails_propagates_and_leaves_the_video_usable(train):
    clip = VideoClip(train, Sampling.segments(train.info), max_side=32)

    def interrupt(done: int) -> None:
        raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt):
        render_motion_trails(clip, chunk_size=2, progress=interrupt)
    assert render_motion_trails(clip).shape == (16, 32, 32, 3)


def test_trails_same_on_any_chunking_and_forward_variant_reads_ahead(train):
    clip = VideoClip(train, Sampling.segments(train.info, 5), max_side=48)
    one = render_motion_trails(clip, chunk_size=1)
    assert torch.allclose(one, render_motion_trails(clip, chunk_size=16), atol=1e-6)
    forward = render_motion_trails(clip, variant="forward", chunk_size=2)
    assert forward.shape == one.shape and not torch.allclose(forward, one, atol=1e-3)
    # samples in any order (and repeated): each output is its own window's blend
    order = [4, 0, 2, 0, 3]
    shuffled = VideoClip(
        train, Sampling.from_indices([clip.sampling.indices[i] for i in order], 24)
    )
    shuffled = VideoClip(shuffled.source, shuffled.sampling, max_side=48)
    torch.testing.assert_close(render_motion_trails(shuffled, chunk_size=2), one[order])
    # the same trails from an IMAGE batch holding the same (already resized) frames
    batch = FrameBatch(train.read(range(64), max_side=48).float() / 255, fps=24.0)
    from_batch = render_motion_trails(VideoClip(batch, clip.sampling), chunk_size=3)
    torch.testing.assert_close(from_batch, one, atol=1e-6, rtol=0)


# --- bad inputs -------------------------------------------------------------------------------


def _raises_naming(path: Path, match: str = "") -> VideoError:
    with pytest.raises(VideoError) as caught:
        open_video(path)
    assert str(path) in str(caught.value)
    assert match.lower() in str(caught.value).lower()
    return caught.value


def test_missing_and_empty_files(tmp_path):
    _raises_naming(tmp_path / "nope.mp4", "not found")
    (tmp_path / "empty.mp4").write_bytes(b"")
    _raises_naming(tmp_path / "empty.mp4", "empty")
    _raises_naming(tmp_path, "not a file")


def test_files_that_are_not_videos(tmp_path):
    (tmp_path / "notes.mp4").write_text("this is not a video\n" * 20)
    _raises_naming(tmp_path / "notes.mp4", "cannot be opened as a video")
    image = np.full((32, 48, 3), 200, np.uint8)
    cv2.imwrite(str(tmp_path / "still.png"), image)
    _raises_naming(tmp_path / "still.png", "PNG image")
    (tmp_path / "still.mp4").write_bytes((tmp_path / "still.png").read_bytes())
    _raises_naming(tmp_path / "still.mp4", "PNG image")


def test_video_without_frames(tmp_path):
    path = tmp_path / "zero.avi"
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 24, (64, 64)).release()
    assert path.stat().st_size > 0
    _raises_naming(path, "no decodable video frames")


def _within_seconds(fn, seconds: float = 60.0):
    """Run fn in a thread; fail (instead of hanging the suite) if it does not finish in time."""
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # handed back to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "decoding a truncated file hung"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def test_mp4_cut_in_half_is_refused(sample_videos_dir, tmp_path):
    data = (sample_videos_dir / "lawn_mowing.mp4").read_bytes()
    path = tmp_path / "half.mp4"
    path.write_bytes(data[: len(data) // 2])
    error = _within_seconds(lambda: pytest.raises(VideoError, open_video, path).value)
    assert str(path) in str(error) and "truncated" in str(error)


def test_mp4_index_gives_what_the_packet_scan_counts(sample_videos_dir, train, tmp_path):
    from motionsight.video.mp4_index import read_mp4_index
    from motionsight.video.source import _scan_packets

    written = tmp_path / "written.mp4"  # OpenCV's own MP4 (mp4v, no B-frames, no edit shift)
    writer = cv2.VideoWriter(str(written), cv2.VideoWriter_fourcc(*"mp4v"), 24, (128, 128))
    for frame in train.read(range(30), max_side=128).numpy():
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    paths = [sample_videos_dir / name for name in CLIPS] + [written]
    for path in paths:  # H.264 with B-frames (an edit list shifting by the reorder delay), mp4v
        index = read_mp4_index(path)
        assert index is not None and index == _scan_packets(str(path)), path.name
    assert read_mp4_index(written)[0] == 30
    wide = tmp_path / "co64.mp4"  # 64-bit chunk offsets, as files over 4 GB have them
    wide.write_bytes(_with_64bit_chunk_offsets((sample_videos_dir / "stairs_pet.mp4").read_bytes()))
    assert b"co64" in wide.read_bytes() and b"stco" not in wide.read_bytes()
    assert read_mp4_index(wide) == read_mp4_index(sample_videos_dir / "stairs_pet.mp4")
    assert read_mp4_index(wide) == _scan_packets(str(wide))
    assert read_mp4_index(sample_videos_dir / "stairs_pet.mp4")[1] == (0, 160, 320, 480, 640)


def _with_64bit_chunk_offsets(data: bytes) -> bytes:
    """The same MP4 (its `moov` after `mdat`) with every `stco` rewritten as `co64`: the media
    data does not move, only the index grows."""
    import struct

    containers = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}

    def rebuild(start: int, end: int) -> bytes:
        out, pos = b"", start
        while pos < end:
            size, kind = struct.unpack_from(">I4s", data, pos)
            body = data[pos + 8 : pos + size]
            if kind in containers:
                body = rebuild(pos + 8, pos + size)
            elif kind == b"stco":
                (count,) = struct.unpack_from(">I", body, 4)
                offsets = struct.unpack_from(f">{count}I", body, 8)
                kind, body = b"co64", body[:8] + struct.pack(f">{count}Q", *offsets)
            out += struct.pack(">I4s", 8 + len(body), kind) + body
            pos += size
        return out

    moov = data.index(b"moov") - 4
    assert data.index(b"mdat") < moov
    return data[:moov] + rebuild(moov, len(data))


def test_mp4_index_declines_what_it_cannot_trust(sample_videos_dir, train, tmp_path):
    """Anything but the plain case falls back to counting packets (the probe still works)."""
    import struct

    from motionsight.video.mp4_index import read_mp4_index

    data = (sample_videos_dir / "desert_train.mp4").read_bytes()
    variants = {
        # a box that claims more bytes than the file holds: a cut-off file
        "cut.mp4": data + struct.pack(">I4s", 1 << 20, b"mdat"),
        # no media data box at all (the index points at nothing in this file)
        "no_media.mp4": data.replace(b"mdat", b"skip", 1),
        # a fragment box: the samples are listed in the fragments, not in the index
        "fragmented.mp4": data + struct.pack(">I4s", 8, b"moof"),
    }
    # an edit list that starts 100 frames into the media: FFmpeg drops the samples before it
    at = data.index(b"elst") + 4 + 4 + 4 + 4  # type, version+flags, entry count, duration
    variants["trimmed.mp4"] = data[:at] + struct.pack(">i", 100 * 512) + data[at + 4 :]
    # another track's chunk pointing past the media data: FFmpeg stops reading there
    both = (sample_videos_dir / "stairs_pet.mp4").read_bytes()  # video and audio tracks
    at_other = both.index(b"stco", both.index(b"stco") + 4) + 4 + 4 + 4  # its first chunk
    variants["lost_audio.mp4"] = (
        both[:at_other] + struct.pack(">I", len(both) - 4) + both[at_other + 4 :]
    )
    no_shift = tmp_path / "no_shift.mp4"  # the same edit starting at 0 keeps every sample
    no_shift.write_bytes(data[:at] + struct.pack(">i", 0) + data[at + 4 :])
    assert read_mp4_index(no_shift) == (64, (0,))
    avi = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 24, (64, 64))
    for frame in train.read(range(5), max_side=64).numpy():
        writer.write(frame)
    writer.release()
    assert read_mp4_index(avi) is None
    assert open_video(avi).info.frame_count == 5  # counted from its packets
    for name, content in variants.items():
        path = tmp_path / name
        path.write_bytes(content)
        assert read_mp4_index(path) is None, name
    assert read_mp4_index(tmp_path / "missing.mp4") is None
    assert open_video(tmp_path / "cut.mp4").info.frame_count == 64  # counted from its packets


def test_corrupt_sample_size_in_an_intact_index_fails_on_reading(sample_videos_dir, tmp_path):
    """A wrong size that keeps every sample inside the file passes the index checks; decoding
    then stops early, and the read names the file and the frame instead of returning less."""
    import struct

    data = bytearray((sample_videos_dir / "desert_train.mp4").read_bytes())
    at = data.index(b"stsz") + 4 + 4 + 4 + 4 + 4 * 20  # type, flags, constant size, count
    struct.pack_into(">I", data, at, struct.unpack_from(">I", data, at)[0] // 3)  # sample 20
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(bytes(data))
    video = open_video(path)
    assert video.info.frame_count == 64  # believed from the index
    with pytest.raises(VideoError, match=r"corrupt\.mp4: frame \d+ cannot be decoded"):
        _within_seconds(lambda: video.read(range(64)))


def test_truncated_file_whose_header_claims_more_frames(train, tmp_path):
    whole = tmp_path / "whole.avi"  # AVI keeps its frame count in the header, its index at the end
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 24, (128, 128))
    for frame in train.read(range(64), max_side=128).numpy():
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    data = whole.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    error = _within_seconds(lambda: pytest.raises(VideoError, open_video, cut).value)
    assert str(cut) in str(error) and "claims 64 frames" in str(error)

    # When a wrong count gets past the probe (e.g. a header estimate), reading past the real
    # end raises and names the file and the frame that is not there.
    video = open_video(whole)
    liar = VideoFile(replace(video.info, path=str(cut)), video.keyframes)
    assert liar.read([3]).shape == (1, 128, 128, 3)
    with pytest.raises(VideoError, match=r"cut\.avi: frame \d+ cannot be decoded"):
        _within_seconds(lambda: liar.read([2, 50]))
