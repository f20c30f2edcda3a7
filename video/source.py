"""Videos as frame sources: probe a file, sample frame indices, decode only the frames asked for.

`VideoFile` decodes on demand with OpenCV (FFmpeg backend) and never holds the video in memory:
every `read` opens its own capture, walks forward through the wanted frames (grabbing small
gaps, seeking over big ones) and closes it again, so the object is cheap to keep, to share
between threads and to pickle (the engine caches it, Ray ships it to workers). The first read
after opening reuses the capture that probed the file (and the first frame it decoded).
`FrameBatch` wraps an in-memory ComfyUI IMAGE batch (e.g. VideoHelperSuite's Load Video) with
the same interface. `VideoClip` (a source, its `Sampling` and a size limit) is the
`MOTIONSIGHT_VIDEO` value nodes pass to each other.
"""

from __future__ import annotations

import bisect
import math
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
import torch

from ..kernels.sampling import fixed_rate_indices, segment_midpoint_indices
from .mp4_index import read_mp4_index

# FFmpeg's and OpenCV's own messages ("moov atom not found", "backend ... can't be used to
# capture by name") would print before the one-line error: every failure to open or decode is
# reported by a VideoError naming the file. A user's own setting of either is kept.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read at FFmpeg's first use
if "OPENCV_LOG_LEVEL" not in os.environ:
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

__all__ = [
    "FrameBatch",
    "FrameSource",
    "Sampling",
    "VideoClip",
    "VideoError",
    "VideoFile",
    "VideoInfo",
    "fit_size",
    "open_video",
]


class VideoError(ValueError):
    """A video that cannot be used: missing, empty, not a video, no frames, truncated, ..."""


# ---------------------------------------------------------------------------------------------
# Info and sampling


@dataclass(frozen=True)
class VideoInfo:
    """What a frame source holds: `frame_count` frames of `width` x `height` pixels at `fps`."""

    path: str
    fps: float
    frame_count: int
    width: int
    height: int

    @property
    def duration(self) -> float:
        """Length in seconds (`frame_count / fps`)."""
        return self.frame_count / self.fps

    def to_vhs(
        self,
        sampling: Sampling | None = None,
        loaded_width: int | None = None,
        loaded_height: int | None = None,
    ) -> dict:
        """VideoHelperSuite's `VHS_VIDEOINFO` dict for this source and (optionally) a sampling.

        As VHS reports it: `loaded_fps` is the rate of the loaded frames (for 16 segment
        midpoints about `16 / duration`), `loaded_duration = loaded_frame_count / loaded_fps`.
        Without a sampling every frame counts as loaded.
        """
        if sampling is None:
            loaded_fps, loaded_count = self.fps, self.frame_count
        else:
            loaded_fps, loaded_count = sampling.rate, len(sampling.indices)
        return {
            "source_fps": self.fps,
            "source_frame_count": self.frame_count,
            "source_duration": self.duration,
            "source_width": self.width,
            "source_height": self.height,
            "loaded_fps": loaded_fps,
            "loaded_frame_count": loaded_count,
            "loaded_duration": loaded_count / loaded_fps,
            "loaded_width": self.width if loaded_width is None else int(loaded_width),
            "loaded_height": self.height if loaded_height is None else int(loaded_height),
        }


@dataclass(frozen=True)
class Sampling:
    """Which frames of a video are looked at: `indices[i]` is shown at `timestamps[i]` seconds.

    `fps` is the source frame rate that maps indices to times (`timestamp = index / fps`).
    Indices may repeat (a short video sampled at more points than it has frames).
    """

    indices: tuple[int, ...]
    timestamps: tuple[float, ...]
    fps: float

    def __post_init__(self) -> None:
        indices = tuple(int(i) for i in self.indices)
        timestamps = tuple(float(t) for t in self.timestamps)
        object.__setattr__(self, "indices", indices)
        object.__setattr__(self, "timestamps", timestamps)
        object.__setattr__(self, "fps", float(self.fps))
        if not indices:
            raise VideoError("a sampling needs at least one frame index")
        if len(indices) != len(timestamps):
            raise VideoError(
                f"sampling has {len(indices)} indices but {len(timestamps)} timestamps"
            )
        if min(indices) < 0:
            raise VideoError(f"sampling has a negative frame index: {min(indices)}")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise VideoError(f"sampling fps must be a positive number, got {self.fps}")

    @classmethod
    def from_indices(cls, indices: Iterable[int] | torch.Tensor, fps: float) -> Sampling:
        """Given frame indices; timestamps are `index / fps`."""
        if isinstance(indices, torch.Tensor):
            indices = indices.flatten().tolist()
        indices = tuple(int(i) for i in indices)
        fps = float(fps)
        if not (math.isfinite(fps) and fps > 0):
            raise VideoError(f"sampling fps must be a positive number, got {fps}")
        return cls(indices, tuple(i / fps for i in indices), fps)

    @classmethod
    def segments(cls, info: VideoInfo, num_frames: int = 16) -> Sampling:
        """The paper's rule: the midpoints of `num_frames` equal segments of the video."""
        if num_frames < 1:
            raise VideoError(f"num_frames must be at least 1, got {num_frames}")
        indices = segment_midpoint_indices(info.frame_count, num_frames)
        return cls.from_indices(indices, info.fps).checked(info)

    @classmethod
    def fixed_rate(cls, info: VideoInfo, rate: float = 1.0) -> Sampling:
        """One frame every `1 / rate` seconds (the reference's 1 fps mode: every `int(fps)`-th)."""
        if not (math.isfinite(rate) and rate > 0):
            raise VideoError(f"sampling rate must be a positive number of frames/s, got {rate}")
        indices = fixed_rate_indices(info.frame_count, info.fps, rate)
        return cls.from_indices(indices, info.fps).checked(info)

    def checked(self, info: VideoInfo) -> Sampling:
        """This sampling, after checking every index lies inside `info`'s video."""
        if max(self.indices) >= info.frame_count:
            raise VideoError(
                f"frame index {max(self.indices)} is outside {info.path} "
                f"({info.frame_count} frames)"
            )
        return self

    @property
    def rate(self) -> float:
        """Frames per second of the sampled sequence (mean spacing; `fps` for a single frame)."""
        span = (max(self.indices) - min(self.indices)) / self.fps
        if len(self.indices) < 2 or span <= 0:
            return self.fps
        return (len(self.indices) - 1) / span


# ---------------------------------------------------------------------------------------------
# Frame sources


@runtime_checkable
class FrameSource(Protocol):
    """Anything that yields RGB frames by index."""

    info: VideoInfo

    def read(self, indices: Sequence[int], max_side: int = 0) -> torch.Tensor:
        """Frames `indices` (in that order, repeats allowed) as uint8 `[N, H, W, 3]` RGB.

        With `max_side > 0` frames are shrunk (INTER_AREA, aspect kept) so that the longer
        side is at most `max_side`.
        """
        ...


def fit_size(width: int, height: int, max_side: int = 0) -> tuple[int, int]:
    """`(width, height)` shrunk so the longer side is at most `max_side` (0: unchanged)."""
    if max_side <= 0 or max(width, height) <= max_side:
        return int(width), int(height)
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _index_list(indices: Sequence[int] | torch.Tensor, info: VideoInfo) -> list[int]:
    if isinstance(indices, torch.Tensor):
        indices = indices.flatten().tolist()
    out = [int(i) for i in indices]
    for i in out:
        if not 0 <= i < info.frame_count:
            raise VideoError(
                f"frame index {i} is outside {info.path} (valid: 0..{info.frame_count - 1})"
            )
    return out


def _put_frame(bgr: np.ndarray, size: tuple[int, int], slot: np.ndarray, rgb: bool = True) -> None:
    """Resize a decoded BGR frame to `size` (w, h) and write it into `slot` [h, w, 3], as RGB
    (or left BGR with `rgb=False`; nothing to do when it was decoded into `slot` itself)."""
    if (bgr.shape[1], bgr.shape[0]) != size:
        cv2.resize(bgr, size, dst=slot, interpolation=cv2.INTER_AREA)
        if rgb:
            cv2.cvtColor(slot, cv2.COLOR_BGR2RGB, dst=slot)
    elif rgb:
        cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=slot)
    elif bgr.ctypes.data != slot.ctypes.data:
        np.copyto(slot, bgr)


def _buffer_rows(buffer: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    """The leading `shape[0]` rows of a uint8 CPU buffer, as a numpy view to write into."""
    if (
        buffer.dtype != torch.uint8
        or buffer.device.type != "cpu"
        or tuple(buffer.shape[1:]) != shape[1:]
        or buffer.shape[0] < shape[0]
        or not buffer.is_contiguous()
    ):
        raise ValueError(
            f"buffer must be a contiguous uint8 CPU tensor of at least {shape}, "
            f"got {buffer.dtype} {tuple(buffer.shape)} on {buffer.device}"
        )
    return buffer[: shape[0]].numpy()


# --- OpenCV plumbing --------------------------------------------------------------------------

# Still images FFmpeg would happily open as a one-frame "video".
_IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
# OpenCV's FFmpeg seek aims 16 frames before the target, lands on the keyframe at or before
# that, and decodes forward: a seek costs about `target - keyframe` decodes plus some overhead.
_CV_SEEK_BACKOFF = 16
_SEEK_OVERHEAD_FRAMES = 8
# Without a keyframe index: seek over gaps longer than x264's default GOP.
_SEEK_GAP_UNKNOWN_GOP = 250
# A header frame count is an estimate in some containers (duration * fps): tolerate that much.
_COUNT_SLACK = 2


def _open_capture(path: str, raw: bool = False) -> cv2.VideoCapture:
    if raw:
        # Demux only: `grab()` reads one packet and decodes nothing.
        return cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_FORMAT, -1])
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap = cv2.VideoCapture(path)  # a build without FFmpeg: whatever backend reads it
    return cap


def _scan_packets(path: str) -> tuple[int, tuple[int, ...]] | None:
    """Count the video packets (= frames) and note the keyframes, without decoding.

    For files whose container lists no trusted sample index (`read_mp4_index` covers plain
    MP4/MOV). Opens a second capture (an FFmpeg stream probe: 6-30 ms for the shared clips)
    and reads through the file once (I/O bound, a few ms for a 4 MB clip); memory stays flat.
    Keyframe positions are in decode order, which is all the seek cost model needs.
    None when the backend cannot demux raw packets.
    """
    if not hasattr(cv2, "CAP_PROP_LRF_HAS_KEY_FRAME"):  # OpenCV before 4.7
        return None
    try:
        cap = _open_capture(path, raw=True)
    except cv2.error:
        return None
    try:
        if not cap.isOpened():
            return None
        count, keyframes = 0, []
        while cap.grab():
            if cap.get(cv2.CAP_PROP_LRF_HAS_KEY_FRAME):
                keyframes.append(count)
            count += 1
        return count, tuple(keyframes)
    finally:
        cap.release()


@dataclass
class _Warm:
    """The probe's capture, just past frame 0, and that frame (BGR): the first read goes on
    from there instead of opening the file again."""

    cap: cv2.VideoCapture
    first: np.ndarray


def _probe(path: str) -> tuple[VideoInfo, tuple[int, ...] | None, _Warm]:
    """Validate a video file and read its info (decodes its first frame); also returns the
    open capture, positioned after that frame."""
    if not os.path.exists(path):
        raise VideoError(f"video file not found: {path}")
    if not os.path.isfile(path):
        raise VideoError(f"not a file (a video file is needed): {path}")
    if os.path.getsize(path) == 0:
        raise VideoError(f"video file is empty (0 bytes): {path}")
    with open(path, "rb") as handle:
        head = handle.read(16)
    for signature, kind in _IMAGE_SIGNATURES:
        if head.startswith(signature):
            raise VideoError(f"{path} is a {kind} image, not a video")

    cap = _open_capture(path)
    try:
        info, keyframes, first = _check_capture(path, cap)
    except BaseException:
        cap.release()
        raise
    return info, keyframes, _Warm(cap, first)


def _check_capture(
    path: str, cap: cv2.VideoCapture
) -> tuple[VideoInfo, tuple[int, ...] | None, np.ndarray]:
    """`_probe`'s checks on its open capture; returns the info, keyframes and first frame."""
    if not cap.isOpened():
        raise VideoError(
            f"{path} cannot be opened as a video: not a video file, or truncated/corrupt "
            "so that its container cannot be read"
        )
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    claimed = float(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, first = cap.read()
    claimed_count = int(round(claimed)) if math.isfinite(claimed) and 0 < claimed < 2**40 else 0
    if not ok or first is None:
        said = f" (its header claims {claimed_count} frames)" if claimed_count else ""
        raise VideoError(f"{path} has no decodable video frames{said}")
    if not (math.isfinite(fps) and fps > 0):
        raise VideoError(f"{path} has no valid frame rate (OpenCV reports {fps})")

    # the container's own index where it can be trusted, else a count of the packets
    scan = read_mp4_index(path) or _scan_packets(path)
    if scan is None:
        if claimed_count <= 0:
            raise VideoError(f"{path}: cannot tell how many frames the video has")
        frame_count, keyframes = claimed_count, None
    else:
        frame_count, keyframes = scan
        if claimed_count and frame_count < claimed_count - max(_COUNT_SLACK, claimed_count // 100):
            raise VideoError(
                f"{path} is truncated: its header claims {claimed_count} frames but the file "
                f"holds only {frame_count} (frame {frame_count} onwards is missing)"
            )
    height, width = first.shape[:2]
    return VideoInfo(path, fps, frame_count, int(width), int(height)), keyframes, first


class _Decoder:
    """One open capture walking forward through a video; grabs small gaps, seeks big ones."""

    def __init__(self, video: VideoFile) -> None:
        self.info = video.info
        self.keyframes = video.keyframes
        warm = video._take_warm()
        # The probe's frame 0, already decoded (the probe's capture goes on from frame 1).
        self.first = warm.first if warm is not None else None
        self.cap = warm.cap if warm is not None else _open_capture(video.info.path)
        if not self.cap.isOpened():
            raise VideoError(f"{video.info.path} can no longer be opened as a video")
        self.pos = 1 if warm is not None else 0  # index of the frame the next grab() returns
        # Decoded frames land in one reused buffer: a fresh array per frame costs page faults.
        self.scratch: np.ndarray | None = None
        self.grabs = self.seeks = self.seek_decodes = 0

    def close(self) -> None:
        self.cap.release()

    def _landing(self, target: int) -> int | None:
        """The keyframe OpenCV's seek to `target` starts decoding from (None: unknown)."""
        if self.keyframes is None or not self.keyframes:
            return None
        aim = max(target - _CV_SEEK_BACKOFF, 0)
        return self.keyframes[max(bisect.bisect_right(self.keyframes, aim) - 1, 0)]

    def _truncated(self, index: int) -> VideoError:
        return VideoError(
            f"{self.info.path}: frame {index} cannot be decoded: the video ends or is corrupt "
            f"before its reported {self.info.frame_count} frames (a truncated file, or a wrong "
            "frame count in its header)"
        )

    def frame(self, index: int, into: np.ndarray | None = None) -> np.ndarray:
        """Decode frame `index` (BGR `[H, W, 3]` uint8, valid until the next call); `into`: a
        contiguous array of the frame's shape to decode into (else a reused scratch array)."""
        if index == 0 and self.first is not None:
            first, self.first = self.first, None
            self.grabs += 1  # decoded once, by the probe
            return first
        landing = self._landing(index)
        if index < self.pos:
            seek = True
        elif landing is None:
            seek = index - self.pos > _SEEK_GAP_UNKNOWN_GOP
        else:
            seek = landing > self.pos + _SEEK_OVERHEAD_FRAMES
        if seek:
            if not self.cap.set(cv2.CAP_PROP_POS_FRAMES, index):
                raise self._truncated(index)
            self.seeks += 1
            self.seek_decodes += index - landing if landing is not None else 0
            self.pos = index
        while self.pos <= index:
            if not self.cap.grab():
                raise self._truncated(self.pos)
            self.pos += 1
            self.grabs += 1
        ok, bgr = self.cap.retrieve(self.scratch if into is None else into)
        if not ok or bgr is None:
            raise self._truncated(index)
        if into is None:
            self.scratch = bgr
        return bgr


class VideoFile:
    """A video file as a `FrameSource`: decodes on demand, never the whole video.

    Open with `VideoFile.open(path)` (or `open_video(path)`), which validates the file.
    Counters for tests and benchmarks: `grabs` (frames decoded by stepping), `seeks`, and
    `frames_decoded` (grabs plus the frames each seek decodes from its keyframe, estimated
    from the keyframe index).
    """

    def __init__(self, info: VideoInfo, keyframes: Sequence[int] | None = None) -> None:
        self.info = info
        self.keyframes = tuple(keyframes) if keyframes is not None else None
        self.grabs = 0
        self.seeks = 0
        self.seek_decodes = 0
        self._lock = threading.Lock()
        self._warm: _Warm | None = None

    @classmethod
    def open(cls, path: str | os.PathLike) -> VideoFile:
        """Probe and validate `path`; raises `VideoError` naming the file when unusable.

        The probe's capture stays open for the first read (one open of the file for the
        probe and the first decode); it is closed by that read, or with the object."""
        info, keyframes, warm = _probe(os.path.abspath(os.fspath(path)))
        video = cls(info, keyframes)
        video._warm = warm
        return video

    def _take_warm(self) -> _Warm | None:
        """The probe's open capture, to the one caller that asks first."""
        with self._lock:
            warm, self._warm = self._warm, None
        return warm

    @property
    def frames_decoded(self) -> int:
        return self.grabs + self.seek_decodes

    def __repr__(self) -> str:
        i = self.info
        return (
            f"VideoFile({i.path!r}, {i.width}x{i.height}, {i.frame_count} frames @ {i.fps:g} fps)"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VideoFile):
            return NotImplemented
        return (self.info, self.keyframes) == (other.info, other.keyframes)

    def __hash__(self) -> int:
        return hash((self.info, self.keyframes))

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_lock"]  # locks do not pickle; counters travel as they are
        state["_warm"] = None  # nor do open captures: a copy opens its own
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def read(self, indices: Sequence[int] | torch.Tensor, max_side: int = 0) -> torch.Tensor:
        """Frames `indices` as uint8 `[N, H, W, 3]` RGB (see `FrameSource.read`)."""
        reader = self.iter_read([indices], max_side)
        try:
            return next(reader)
        finally:
            reader.close()  # releases the capture now, not whenever the generator is collected

    def iter_read(
        self,
        chunks: Iterable[Sequence[int] | torch.Tensor],
        max_side: int = 0,
        into: Iterable[torch.Tensor] | None = None,
        bgr: bool = False,
    ) -> Iterator[torch.Tensor]:
        """`read` for several index lists in turn, through one capture kept open between them.

        Chunks whose indices increase from one to the next are decoded in a single forward
        pass. Each chunk's distinct frames are decoded once; memory holds one chunk at a time.
        `into`: optional uint8 CPU buffers, one per chunk, each with at least as many rows as
        its chunk; frames are decoded straight into their leading rows (reused buffers spare
        the page faults of fresh ones) and the yielded tensors are views of them.
        `bgr`: frames in the decoder's BGR order (spares a pass over each frame; at full size
        they are decoded straight into place).
        """
        size = fit_size(self.info.width, self.info.height, max_side)
        direct = bgr and size == (self.info.width, self.info.height)
        buffers = iter(into) if into is not None else None
        decoder: _Decoder | None = None
        try:
            for chunk in chunks:
                wanted = _index_list(chunk, self.info)
                shape = (len(wanted), size[1], size[0], 3)
                if buffers is None:
                    out = np.empty(shape, dtype=np.uint8)
                else:
                    out = _buffer_rows(next(buffers), shape)
                slots: dict[int, list[int]] = {}
                for slot, index in enumerate(wanted):
                    slots.setdefault(index, []).append(slot)
                for index in sorted(slots):
                    decoder = decoder or _Decoder(self)
                    first, *repeats = slots[index]
                    target = out[first]
                    frame = decoder.frame(index, target if direct else None)
                    _put_frame(frame, size, target, rgb=not bgr)
                    for slot in repeats:
                        out[slot] = out[first]
                yield torch.from_numpy(out)
        finally:
            if decoder is not None:
                decoder.close()
                with self._lock:
                    self.grabs += decoder.grabs
                    self.seeks += decoder.seeks
                    self.seek_decodes += decoder.seek_decodes


def open_video(path: str | os.PathLike) -> VideoFile:
    """Open and validate a video file (see `VideoFile.open`)."""
    return VideoFile.open(path)


class FrameBatch:
    """An in-memory ComfyUI IMAGE batch `[N, H, W, 3]` (float 0..1, or uint8) as a `FrameSource`.

    Every frame of a video, in order, as VideoHelperSuite's Load Video gives it; `fps` is the
    batch's frame rate.
    """

    def __init__(self, images: torch.Tensor, fps: float = 24.0) -> None:
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[-1] != 3:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)
            raise VideoError(f"an IMAGE batch must be a [N, H, W, 3] tensor, got {shape}")
        if images.shape[0] == 0:
            raise VideoError("the IMAGE batch holds no frames")
        if not (math.isfinite(fps) and fps > 0):
            raise VideoError(f"the IMAGE batch's fps must be a positive number, got {fps}")
        self.images = images
        n, h, w, _ = images.shape
        self.info = VideoInfo("<IMAGE batch>", float(fps), int(n), int(w), int(h))

    @classmethod
    def from_vhs(cls, images: torch.Tensor, video_info: Mapping) -> FrameBatch:
        """The batch at the rate VideoHelperSuite's `VHS_VIDEOINFO` gives for it.

        `loaded_fps` is the rate of the frames VHS loaded (its `source_fps` when it kept every
        frame); a batch whose length is not `loaded_frame_count` (when given) came from another
        loader or was cut, and is refused rather than timed wrongly.
        """
        if not isinstance(video_info, Mapping):
            raise VideoError(
                f"video_info must be a VHS_VIDEOINFO dict, got {type(video_info).__name__}"
            )
        fps = video_info.get("loaded_fps", video_info.get("source_fps"))
        if not isinstance(fps, (int, float)) or not (math.isfinite(fps) and fps > 0):
            raise VideoError(f"video_info has no usable loaded_fps/source_fps (got {fps!r})")
        loaded = video_info.get("loaded_frame_count")
        n = images.shape[0] if isinstance(images, torch.Tensor) and images.ndim else None
        if isinstance(loaded, int) and n is not None and loaded != n:
            raise VideoError(
                f"the IMAGE batch holds {n} frames but video_info says {loaded} were loaded: "
                "connect the images and the info of the same loader"
            )
        return cls(images, fps=float(fps))

    def __repr__(self) -> str:
        i = self.info
        return f"FrameBatch({i.frame_count} frames {i.width}x{i.height} @ {i.fps:g} fps)"

    def _uint8(self, index: list[int]) -> torch.Tensor:
        frames = self.images[index].detach().cpu()
        if frames.dtype == torch.uint8:
            return frames.contiguous()
        return frames.float().mul(255).round_().clamp_(0, 255).to(torch.uint8)

    def read(self, indices: Sequence[int] | torch.Tensor, max_side: int = 0) -> torch.Tensor:
        """Frames `indices` as uint8 `[N, H, W, 3]` RGB (see `FrameSource.read`)."""
        wanted = _index_list(indices, self.info)
        frames = self._uint8(wanted)
        size = fit_size(self.info.width, self.info.height, max_side)
        if size == (self.info.width, self.info.height) or not wanted:
            return frames.reshape(len(wanted), size[1], size[0], 3)
        # The same resize as VideoFile, so both sources give the same pixels.
        array = frames.numpy()
        return torch.from_numpy(
            np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in array])
        )

    def iter_read(
        self,
        chunks: Iterable[Sequence[int] | torch.Tensor],
        max_side: int = 0,
        into: Iterable[torch.Tensor] | None = None,
        bgr: bool = False,
    ) -> Iterator[torch.Tensor]:
        """`read` for several index lists in turn (`into`, `bgr` as in `VideoFile.iter_read`)."""
        buffers = iter(into) if into is not None else None
        for chunk in chunks:
            frames = self.read(chunk, max_side)
            if bgr:
                frames = frames.flip(-1)
            if buffers is not None:
                rows = torch.from_numpy(_buffer_rows(next(buffers), tuple(frames.shape)))
                frames = rows.copy_(frames)
            yield frames


class ClipCache:
    """What one decode pass of a clip produced: its sampled frames (float IMAGE) and the motion
    trails rendered from the same pass, by `(echoes, decay, variant)`. Never the windows."""

    def __init__(self) -> None:
        self.frames: torch.Tensor | None = None
        self.trails: dict[tuple[int, float, str], torch.Tensor] = {}

    def __getstate__(self) -> dict:
        return {}  # a copy starts empty

    def __setstate__(self, state: dict) -> None:
        self.__init__()


# The trails rendered with the samples: the Motion Trails node's defaults (the paper's).
CACHED_TRAILS = (7, 0.65, "trailing")
# Windows blended per step in that pass (memory: about 2 * 7 * CACHED_CHUNK uint8 frames).
CACHED_CHUNK = 2


@dataclass(frozen=True)
class VideoClip:
    """A frame source plus the frames sampled from it: the `MOTIONSIGHT_VIDEO` value.

    `max_side` (0: original size) is the size limit every frame taken from the clip obeys.
    For a video file, the first `frames()` decodes, in the same forward pass, the trail window
    of each sample (`CACHED_ECHOES` frames ending at it) and keeps them in `cache` (uint8,
    never more than those windows), so motion trails, detection and the answer share one
    decode of the frames they need.
    """

    source: FrameSource
    sampling: Sampling
    max_side: int = 0
    cache: ClipCache = field(
        default_factory=ClipCache, init=False, compare=False, repr=False, hash=False
    )

    def __post_init__(self) -> None:
        if self.max_side < 0:
            raise VideoError(f"max_side must be 0 (no limit) or positive, got {self.max_side}")
        self.sampling.checked(self.source.info)

    @property
    def info(self) -> VideoInfo:
        return self.source.info

    @property
    def size(self) -> tuple[int, int]:
        """`(width, height)` of the frames this clip yields."""
        return fit_size(self.info.width, self.info.height, self.max_side)

    def frames(self) -> torch.Tensor:
        """The sampled frames as a ComfyUI IMAGE: float32 `[N, H, W, 3]` in 0..1.

        For a video file, the first call decodes the default trail windows (`CACHED_TRAILS`),
        which hold the samples, in one forward pass, and keeps the samples and those trails in
        `cache`: Motion Trails with those settings then decodes nothing. Later calls return
        the same tensor (treat it as read-only, as ComfyUI does with IMAGE values).
        """
        if self.cache.frames is not None:
            return self.cache.frames
        if not isinstance(self.source, VideoFile):
            return self.source.read(self.sampling.indices, self.max_side).float().div_(255)
        from .trails import render_motion_trails  # trails.py imports this module

        width, height = self.size
        samples = torch.empty((len(self.sampling.indices), height, width, 3), dtype=torch.uint8)
        echoes, decay, variant = CACHED_TRAILS
        trails = render_motion_trails(
            self, echoes, decay, variant, chunk_size=CACHED_CHUNK, samples_into=samples
        )
        self.cache.trails[CACHED_TRAILS] = trails
        self.cache.frames = samples.float().div_(255)
        return self.cache.frames
