"""Video nodes: open a file (or take an IMAGE batch) and sample the frames MotionSight looks at."""

from __future__ import annotations

import os

import torch

from .. import comfy_bridge
from ..comfy_bridge import resolve_input_file
from ..video import FrameBatch, Sampling, VideoClip, open_video

SAMPLING_MODES = ["segments", "fixed_rate"]
EXAMPLE_VIDEO = "motionsight_example.mp4"  # shipped in workflows/, found by bare name

_SAMPLING_INPUTS = {
    "sampling": (
        SAMPLING_MODES,
        {
            "default": "segments",
            "tooltip": "segments: the paper's rule, the midpoint of each of num_frames equal segments. "
            "fixed_rate: one frame every 1/rate seconds.",
        },
    ),
    "num_frames": (
        "INT",
        {
            "default": 16,
            "min": 1,
            "max": 512,
            "tooltip": "How many frames to sample (segments mode). The paper uses 16.",
        },
    ),
    "rate": (
        "FLOAT",
        {
            "default": 1.0,
            "min": 0.01,
            "max": 120.0,
            "step": 0.01,
            "tooltip": "Frames per second to sample (fixed_rate mode).",
        },
    ),
    "max_side": (
        "INT",
        {
            "default": 0,
            "min": 0,
            "max": 8192,
            "step": 8,
            "tooltip": "Resize so the longer side is at most this many pixels (0 keeps the original size). "
            "Boxes given later are in the pixels of the resized frames.",
        },
    ),
}


def _sampling(info, sampling: str, num_frames: int, rate: float) -> Sampling:
    if sampling == "segments":
        return Sampling.segments(info, num_frames)
    return Sampling.fixed_rate(info, rate)


def _outputs(clip: VideoClip) -> tuple[torch.Tensor, VideoClip, dict]:
    frames = clip.frames()
    info = clip.info.to_vhs(
        clip.sampling, loaded_width=frames.shape[2], loaded_height=frames.shape[1]
    )
    return frames, clip, info


class MotionSightLoadVideo:
    DESCRIPTION = (
        "Open a video file and sample the frames MotionSight shows the MLLM (16 segment midpoints by "
        "default). Outputs the sampled frames, a video handle that later nodes decode motion-trail "
        "windows from (without loading the whole video), and VideoHelperSuite-style info."
    )
    CATEGORY = "MotionSight/video"
    FUNCTION = "load"
    RETURN_TYPES = ("IMAGE", "MOTIONSIGHT_VIDEO", "VHS_VIDEOINFO")
    RETURN_NAMES = ("frames", "video", "info")
    OUTPUT_TOOLTIPS = (
        "The sampled frames [N, H, W, 3].",
        "Handle to the opened video and its sampling; motion trails decode their windows from it.",
        "fps, frame count, duration and sizes (VHS_VIDEOINFO keys).",
    )
    SEARCH_ALIASES = ["load video", "sample frames"]

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        comfy_bridge.copy_examples_to_input()
        return {
            "required": {
                "video": (
                    comfy_bridge.input_videos(),
                    {
                        "default": EXAMPLE_VIDEO,
                        "video_upload": True,
                        "tooltip": "A video in ComfyUI's input folder (pick one or upload). A typed "
                        "path also works in API workflows and with `motionsight run --set`.",
                    },
                ),
                **_SAMPLING_INPUTS,
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, video: str) -> bool | str:
        if not isinstance(video, str) or not video.strip():
            return "no video given: pick or upload a video, or set the `video` input to a file path"
        path = resolve_input_file(video)
        if not path.is_file():
            return f"video file not found: {path}"
        return True

    @classmethod
    def IS_CHANGED(cls, video: str = "", **_: object) -> str:
        # Re-run when the file changes on disk, not only when the name changes.
        path = resolve_input_file(video)
        try:
            stat = os.stat(path)
        except OSError:
            return f"{path}:missing"
        return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"

    def load(self, video: str, sampling: str, num_frames: int, rate: float, max_side: int):
        with comfy_bridge.naming_input("video"):
            source = open_video(resolve_input_file(video))
        clip = VideoClip(source, _sampling(source.info, sampling, num_frames, rate), max_side)
        return _outputs(clip)


class MotionSightSampleImages:
    DESCRIPTION = (
        "Use an IMAGE batch holding every frame of a video (e.g. from VideoHelperSuite's Load Video) "
        "as a MotionSight video: samples frames the same way as Load Video."
    )
    CATEGORY = "MotionSight/video"
    FUNCTION = "sample"
    RETURN_TYPES = ("IMAGE", "MOTIONSIGHT_VIDEO", "VHS_VIDEOINFO")
    RETURN_NAMES = ("frames", "video", "info")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "All frames of the video, in order."}),
                "fps": (
                    "FLOAT",
                    {
                        "default": 24.0,
                        "min": 0.1,
                        "max": 1000.0,
                        "step": 0.01,
                        "tooltip": "Frame rate of the batch.",
                    },
                ),
                **_SAMPLING_INPUTS,
            },
            "optional": {
                "video_info": (
                    "VHS_VIDEOINFO",
                    {
                        "tooltip": "VideoHelperSuite's video info for these images: its loaded_fps "
                        "replaces `fps`, and its source_* values are passed on in `info`.",
                    },
                ),
            },
        }

    def sample(
        self,
        images: torch.Tensor,
        fps: float,
        sampling: str,
        num_frames: int,
        rate: float,
        max_side: int,
        video_info: dict | None = None,
    ):
        if video_info is None:
            source = FrameBatch(images, fps=fps)
        else:
            source = FrameBatch.from_vhs(images, video_info)
        clip = VideoClip(source, _sampling(source.info, sampling, num_frames, rate), max_side)
        frames, clip, info = _outputs(clip)
        if video_info is not None:  # the file's own figures, as VHS read them
            info.update({k: v for k, v in video_info.items() if k.startswith("source_")})
        return frames, clip, info


NODE_CLASS_MAPPINGS = {
    "MotionSightLoadVideo": MotionSightLoadVideo,
    "MotionSightSampleImages": MotionSightSampleImages,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "MotionSightLoadVideo": "Load Video (MotionSight)",
    "MotionSightSampleImages": "Video from Images (MotionSight)",
}
