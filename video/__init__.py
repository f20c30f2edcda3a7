"""Open, probe, sample and decode videos; motion trails over a clip's sampled frames."""

from .source import (
    FrameBatch,
    FrameSource,
    Sampling,
    VideoClip,
    VideoError,
    VideoFile,
    VideoInfo,
    fit_size,
    open_video,
)
from .trails import render_motion_trails

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
    "render_motion_trails",
]
