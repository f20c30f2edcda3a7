"""Visual prompts for the review page, drawn with the pack's own library when a pair has none.

The page plays each view as a small WebM (VP8, which every browser plays): the clip's 16 sampled
frames at the rate that spans the clip's duration, so the prompt runs as long as the video.
`spotlight` darkens everything outside the moving objects found by the weight-free motion
detector (METHOD.md's object prompt, with the detector that needs no weights); `trails` is the
camera prompt. A folder of frames (what Save Visual Prompt writes) is encoded the same way.
Files are written to a temporary name and renamed, so a cache never holds half a video.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .pairs import FRAME_SUFFIXES, ReviewError

__all__ = [
    "MAX_SIDE",
    "NUM_FRAMES",
    "draw_view",
    "encode_webm",
    "frames_from_folder",
    "render_prompt",
]

NUM_FRAMES = 16  # MotionSight samples 16 segment midpoints
MAX_SIDE = 480  # frames are shrunk to this longest side for the page


def encode_webm(frames: np.ndarray, fps: float, out: Path) -> Path:
    """Write uint8 RGB `[N, H, W, 3]` frames as a VP8 WebM at `out` (atomically)."""
    import cv2

    if frames.ndim != 4 or frames.shape[0] == 0 or frames.shape[-1] != 3:
        raise ReviewError(
            f"cannot encode {out.name}: expected frames [N, H, W, 3], got {frames.shape}"
        )
    n, h, w = frames.shape[:3]
    if h % 2 or w % 2:  # VP8 wants even sizes
        frames = frames[:, : h - h % 2, : w - w % 2]
        h, w = h - h % 2, w - w % 2
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.webm")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"VP80"), float(fps), (w, h))
    if not writer.isOpened():
        raise ReviewError(f"cannot encode {out}: this OpenCV build has no VP8/WebM writer")
    try:
        for frame in frames:
            writer.write(np.ascontiguousarray(frame[..., ::-1]))
    finally:
        writer.release()
    os.replace(tmp, out)
    return out


def frames_from_folder(folder: Path, max_side: int = MAX_SIDE) -> np.ndarray:
    """The image files of `folder`, in name order, as uint8 RGB `[N, H, W, 3]` (first's size)."""
    import cv2

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
    files = [p for p in files if p.name != "contact_sheet.png"]
    frames = []
    size = None
    for path in files:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ReviewError(f"cannot read frame {path}")
        if size is None:
            h, w = bgr.shape[:2]
            scale = min(1.0, max_side / max(h, w))
            size = (max(2, round(w * scale)), max(2, round(h * scale)))
        frames.append(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)[..., ::-1])
    if not frames:
        raise ReviewError(f"folder {folder} holds no frames")
    return np.stack(frames)


def _to_uint8(images) -> np.ndarray:
    return (images.clamp(0, 1) * 255).round().to(dtype=__import__("torch").uint8).numpy()


def render_prompt(
    video: Path, kind: str, out: Path, num_frames: int = NUM_FRAMES, max_side: int = MAX_SIDE
) -> Path:
    """Draw the `kind` ("spotlight", "trails" or "original") visual prompt of `video` into `out`.

    Returns `out`, a WebM of the clip's `num_frames` segment-midpoint frames.
    """
    import torch

    from ...detect import load_detector
    from ...detect.tracking import detect_and_track, spotlight_boxes_from_detections
    from ...kernels import spotlight_boxes
    from ...video import render_motion_trails
    from ...video.source import Sampling, VideoClip, open_video

    source = open_video(video)
    info = source.info
    clip = VideoClip(source, Sampling.segments(info, min(num_frames, info.frame_count)), max_side)
    with torch.inference_mode():
        if kind == "trails":
            images = render_motion_trails(clip)
        elif kind in ("spotlight", "original"):
            images = clip.frames()
            if kind == "spotlight":
                found = detect_and_track(
                    images, "moving object", load_detector("motion", device="cpu")
                )
                boxes = spotlight_boxes_from_detections(found).boxes
                chw = images.permute(0, 3, 1, 2)
                images = spotlight_boxes(chw, boxes, 20.0, 0.9).permute(0, 2, 3, 1)
        else:
            raise ReviewError(f"unknown view {kind!r}; choose original, spotlight or trails")
    return encode_webm(_to_uint8(images), _rate(len(clip.sampling.indices), info.duration), out)


def draw_view(video: Path, view: str, given: Path | None, out: Path) -> Path:
    """The page's `view` of a pair as a WebM at `out`: the frames of a `given` folder, else
    drawn from `video` (the original, or a prompt the pairs file gives no file for)."""
    if given is not None and given.resolve().is_dir():
        frames = frames_from_folder(given.resolve())
        return encode_webm(frames, _rate(len(frames), _duration(video)), out)
    return render_prompt(video, view, out)


def _duration(video: Path) -> float:
    """The clip's duration in seconds (0 when it cannot be probed)."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    try:
        fps, count = cap.get(cv2.CAP_PROP_FPS), cap.get(cv2.CAP_PROP_FRAME_COUNT)
    finally:
        cap.release()
    return count / fps if fps > 0 and count > 0 else 0.0


def _rate(frames: int, duration: float) -> float:
    """Frames per second that spread `frames` over `duration` (1..30; 4 when unknown)."""
    return min(max(frames / duration, 1.0), 30.0) if duration > 0 else 4.0
