"""Describe Motion: object- and camera-motion descriptions of a clip (the dataset's annotation)."""

from __future__ import annotations

import json

import torch

from ..dataset.annotate import describe_motion
from ..mllm import MLLMHandle
from ..video import VideoClip

CATEGORY = "MotionSight/MLLM"


class MotionSightDescribeMotion:
    DESCRIPTION = (
        "Describe how the objects move (from the spotlight frames, else the original ones) and how the "
        "camera moves (from the motion trails, else the original frames): the two texts MotionVid-QA-style "
        "training data is made of. Without the visual prompts connected it gives the plain descriptions."
    )
    CATEGORY = CATEGORY
    FUNCTION = "describe"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING", "STRING", "STRING")
    RETURN_NAMES = ("object_motion", "camera_motion", "info")

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        stream = {"tooltip": "Frames of this visual prompt (same count as the sampled frames)."}
        return {
            "required": {
                "mllm": ("MOTIONSIGHT_MLLM", {"tooltip": "The model to ask."}),
                "frames": ("IMAGE", {"tooltip": "The original sampled frames."}),
            },
            "optional": {
                "video": (
                    "MOTIONSIGHT_VIDEO",
                    {"tooltip": "The video handle: gives the sample times stated in the prompt."},
                ),
                "spotlight": ("IMAGE", stream),
                "motion_trails": ("IMAGE", stream),
            },
        }

    def describe(
        self,
        mllm: MLLMHandle,
        frames: torch.Tensor,
        video: VideoClip | None = None,
        spotlight: torch.Tensor | None = None,
        motion_trails: torch.Tensor | None = None,
    ):
        for name, images in (("spotlight", spotlight), ("motion_trails", motion_trails)):
            if images is not None and images.shape[0] != frames.shape[0]:
                raise ValueError(
                    f"Describe Motion: {name} has {images.shape[0]} frames but frames has "
                    f"{frames.shape[0]}; connect the visual prompt made from the same samples"
                )
        times = list(video.sampling.timestamps) if video is not None else None
        found = describe_motion(mllm, frames, times, spotlight=spotlight, motion_trails=motion_trails)
        info = json.dumps(
            {"streams": found.streams, "prompt_hashes": found.prompt_hashes, "model": mllm.name,
             **found.info},  # fmt: skip
            ensure_ascii=False,
        )
        return {
            "ui": {"text": [f"Object motion: {found.object_motion}\nCamera motion: {found.camera_motion}"]},
            "result": (found.object_motion, found.camera_motion, info),
        }


NODE_CLASS_MAPPINGS = {"MotionSightDescribeMotion": MotionSightDescribeMotion}
NODE_DISPLAY_NAME_MAPPINGS = {"MotionSightDescribeMotion": "Describe Motion (MotionSight)"}
