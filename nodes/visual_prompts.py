"""Visual-prompt nodes: motion trails, spotlight, crop and background blur (thin shells over kernels/)."""

from __future__ import annotations

import torch

from ..comfy_bridge import Progress, torch_device
from ..detect.bbox import bbox_to_tensor, tensor_to_bbox
from ..kernels import background_blur, crop_to_boxes, spotlight_boxes
from ..video import FrameBatch, Sampling, VideoClip, render_motion_trails
from ._layout import image_to_kernel, kernel_to_image, mask_to_kernel

CATEGORY = "MotionSight/visual prompts"


class MotionSightMotionTrails:
    DESCRIPTION = (
        "Motion trails (MotionSight's camera-motion prompt): blend each sampled frame with its 6 "
        "neighbours so a moving camera smears the static background while a static camera keeps it "
        "sharp. Decodes only the 7-frame windows around the samples."
    )
    CATEGORY = CATEGORY
    FUNCTION = "render"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("trails",)
    OUTPUT_TOOLTIPS = ("One blended frame per sampled frame [N, H, W, 3].",)
    SEARCH_ALIASES = ["motion blur", "camera motion"]

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "echoes": (
                    "INT",
                    {
                        "default": 7,
                        "min": 1,
                        "max": 64,
                        "tooltip": "Frames blended into each output (the paper: 7).",
                    },
                ),
                "decay": (
                    "FLOAT",
                    {
                        "default": 0.65,
                        "min": 0.01,
                        "max": 0.99,
                        "step": 0.01,
                        "tooltip": "Echo decay of the blending fold (the paper: 0.65).",
                    },
                ),
                "variant": (
                    ["trailing", "forward"],
                    {
                        "default": "trailing",
                        "tooltip": "trailing: frames t-6..t (the streaming reference). forward: frames t..t+6 (the accelerated reference).",
                    },
                ),
            },
            "optional": {
                "video": (
                    "MOTIONSIGHT_VIDEO",
                    {"tooltip": "Video handle from Load Video; its sampling is used."},
                ),
                "images": (
                    "IMAGE",
                    {
                        "tooltip": "Instead of a video handle: every frame of a video as an IMAGE batch (e.g. VideoHelperSuite)."
                    },
                ),
                "num_frames": (
                    "INT",
                    {
                        "default": 16,
                        "min": 1,
                        "max": 512,
                        "tooltip": "Frames to sample from `images` (segment midpoints). Ignored with `video`.",
                    },
                ),
            },
        }

    def render(
        self,
        echoes: int,
        decay: float,
        variant: str,
        video: VideoClip | None = None,
        images: torch.Tensor | None = None,
        num_frames: int = 16,
    ):
        if video is None:
            if images is None:
                raise ValueError(
                    "connect either `video` (from Load Video) or `images` (all frames of a video)"
                )
            source = FrameBatch(images)
            video = VideoClip(source, Sampling.segments(source.info, num_frames))
        progress = Progress(len(video.sampling.indices), "motion trails")
        trails = render_motion_trails(
            video,
            echoes=echoes,
            decay=decay,
            variant=variant,
            device=torch_device(),
            progress=progress.update,
        )
        return (trails,)


class MotionSightBox:
    DESCRIPTION = (
        "A fixed box for every frame, as a BBOX, in pixels or as fractions of the frame size."
    )
    CATEGORY = CATEGORY
    FUNCTION = "make"
    RETURN_TYPES = ("BBOX",)
    RETURN_NAMES = ("bbox",)

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        coord = {"min": 0.0, "max": 16384.0, "step": 0.01}
        return {
            "required": {
                "x1": ("FLOAT", {"default": 0.25, **coord, "tooltip": "Left edge."}),
                "y1": ("FLOAT", {"default": 0.25, **coord, "tooltip": "Top edge."}),
                "x2": ("FLOAT", {"default": 0.75, **coord, "tooltip": "Right edge."}),
                "y2": ("FLOAT", {"default": 0.75, **coord, "tooltip": "Bottom edge."}),
                "units": (
                    ["fraction", "pixels"],
                    {
                        "default": "fraction",
                        "tooltip": "fraction: 0..1 of the frame width/height (needs `images`). pixels: absolute.",
                    },
                ),
            },
            "optional": {
                "images": (
                    "IMAGE",
                    {"tooltip": "The frames the box is for (gives the size for fractions)."},
                )
            },
        }

    def make(
        self,
        x1: float,
        y1: float,
        x2: float,
        y2: float,
        units: str,
        images: torch.Tensor | None = None,
    ):
        box = torch.tensor([x1, y1, x2, y2], dtype=torch.float32)
        if units == "fraction":
            if images is None:
                raise ValueError("units 'fraction' needs the `images` input to know the frame size")
            if bool((box > 1).any()):
                raise ValueError(f"fractions must be within 0..1, got {box.tolist()}")
            height, width = images.shape[1:3]
            box = box * torch.tensor([width, height, width, height], dtype=torch.float32)
        return (tensor_to_bbox(bbox_to_tensor(box.tolist(), 1)),)


class MotionSightSpotlight:
    DESCRIPTION = (
        "Object-centric spotlight (MotionSight's object-motion prompt): keep the padded box of the "
        "acting objects as it is and darken the rest (by 0.9, i.e. to 10% brightness, by default)."
    )
    CATEGORY = CATEGORY
    FUNCTION = "apply"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("spotlight",)

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The sampled frames."}),
                "bbox": (
                    "BBOX",
                    {
                        "tooltip": "One box for all frames or one per frame, [x1, y1, x2, y2] in pixels of `images`."
                    },
                ),
                "padding": (
                    "FLOAT",
                    {
                        "default": 20.0,
                        "min": 0.0,
                        "max": 4096.0,
                        "step": 1.0,
                        "tooltip": "Pixels added around the box (the paper: 20).",
                    },
                ),
                "darken": (
                    "FLOAT",
                    {
                        "default": 0.9,
                        "min": 0.0,
                        "max": 1.0,
                        "step": 0.01,
                        "tooltip": "How much to darken outside the box: 0.9 keeps 10% brightness.",
                    },
                ),
                "soft_edge": (
                    "FLOAT",
                    {
                        "default": 0.0,
                        "min": 0.0,
                        "max": 256.0,
                        "step": 0.5,
                        "tooltip": "Feather the box edge with a Gaussian of this sigma (px); 0 is a hard edge.",
                    },
                ),
            }
        }

    def apply(self, images: torch.Tensor, bbox, padding: float, darken: float, soft_edge: float):
        boxes = bbox_to_tensor(bbox, images.shape[0]).to(torch_device())
        out = spotlight_boxes(
            image_to_kernel(images), boxes, padding=padding, darken=darken, soft_edge=soft_edge
        )
        return (kernel_to_image(out),)


class MotionSightCrop:
    DESCRIPTION = (
        "Crop the frames to the padded box so a repeated motion fills the image (the reference's "
        "prompt for repetition-count questions)."
    )
    CATEGORY = CATEGORY
    FUNCTION = "crop"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("crop",)

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The sampled frames."}),
                "bbox": (
                    "BBOX",
                    {"tooltip": "One box for all frames or one per frame, in pixels of `images`."},
                ),
                "padding": (
                    "FLOAT",
                    {
                        "default": 40.0,
                        "min": 0.0,
                        "max": 4096.0,
                        "step": 1.0,
                        "tooltip": "Pixels added around the box (the reference pads 20 px twice).",
                    },
                ),
                "per_frame": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Off: one crop (the union of all boxes) for every frame, so the view is steady. On: each frame cropped to its own box and resized.",
                    },
                ),
            }
        }

    def crop(self, images: torch.Tensor, bbox, padding: float, per_frame: bool):
        boxes = bbox_to_tensor(bbox, images.shape[0]).to(torch_device())
        return (
            kernel_to_image(
                crop_to_boxes(image_to_kernel(images), boxes, padding=padding, per_frame=per_frame)
            ),
        )


class MotionSightBackgroundBlur:
    DESCRIPTION = (
        "Keep the masked objects sharp and blur the background (99x99 Gaussian, sigma 33, twice, as the "
        "reference). The paper found the spotlight better; this stays available as an option."
    )
    CATEGORY = CATEGORY
    FUNCTION = "apply"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("blurred",)

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The sampled frames."}),
                "mask": (
                    "MASK",
                    {"tooltip": "1 on the objects to keep sharp; one mask or one per frame."},
                ),
                "kernel_size": (
                    "INT",
                    {
                        "default": 99,
                        "min": 3,
                        "max": 301,
                        "step": 2,
                        "tooltip": "Gaussian kernel size (odd).",
                    },
                ),
                "sigma": (
                    "FLOAT",
                    {
                        "default": 33.0,
                        "min": 0.1,
                        "max": 200.0,
                        "step": 0.1,
                        "tooltip": "Gaussian sigma in pixels.",
                    },
                ),
                "passes": (
                    "INT",
                    {
                        "default": 2,
                        "min": 1,
                        "max": 8,
                        "tooltip": "How many times the blur is applied.",
                    },
                ),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, kernel_size: int) -> bool | str:
        return True if int(kernel_size) % 2 == 1 else f"kernel_size must be odd, got {kernel_size}"

    def apply(
        self, images: torch.Tensor, mask: torch.Tensor, kernel_size: int, sigma: float, passes: int
    ):
        frames = image_to_kernel(images)
        masks = mask_to_kernel(mask, *frames.shape[:1], *frames.shape[2:])
        return (
            kernel_to_image(
                background_blur(frames, masks, kernel_size=kernel_size, sigma=sigma, passes=passes)
            ),
        )


NODE_CLASS_MAPPINGS = {
    "MotionSightMotionTrails": MotionSightMotionTrails,
    "MotionSightBox": MotionSightBox,
    "MotionSightSpotlight": MotionSightSpotlight,
    "MotionSightCrop": MotionSightCrop,
    "MotionSightBackgroundBlur": MotionSightBackgroundBlur,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "MotionSightMotionTrails": "Motion Trails (MotionSight)",
    "MotionSightBox": "Fixed Box (MotionSight)",
    "MotionSightSpotlight": "Spotlight (MotionSight)",
    "MotionSightCrop": "Crop to Box (MotionSight)",
    "MotionSightBackgroundBlur": "Background Blur (MotionSight)",
}
