"""Detection nodes: load a detector, detect and track the action objects, spotlight boxes, preview."""

from __future__ import annotations

import json

import cv2
import numpy as np
import torch

from ..comfy_bridge import Progress, torch_device
from ..detect.bbox import tensor_to_bbox
from ..detect.detections import Detections
from ..detect.detectors import DETECTORS, load_detector
from ..detect.tracking import Sam2Tracker, detect_and_track, spotlight_boxes_from_detections

CATEGORY = "MotionSight/detection"
DEVICES = ["auto", "cpu", "cuda"]


def _device(choice: str) -> torch.device:
    return torch_device() if choice == "auto" else torch.device(choice)


class MotionSightLoadDetector:
    DESCRIPTION = (
        "Choose the detector that finds the action objects. 'motion' needs no weights (it boxes what "
        "moves after compensating the camera's motion, grown over the connected parts of its own rare colours "
        "so a long train's still far cars join its moving near ones, plus OpenCV's HOG people boxes when the "
        "objects name a person, so a person whose legs stand still is boxed whole); 'grounding_dino' and 'owlv2' are open-vocabulary "
        "transformers models loaded from a folder (or a name under models/<kind>); 'hog_people' is "
        "OpenCV's built-in people detector."
    )
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = ("MOTIONSIGHT_DETECTOR",)
    RETURN_NAMES = ("detector",)
    OUTPUT_TOOLTIPS = ("The detector, for Detect And Track.",)
    SEARCH_ALIASES = ["grounding dino", "owlv2", "object detector"]

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "kind": (
                    list(DETECTORS),
                    {
                        "default": "motion",
                        "tooltip": "Which detector. 'motion' and 'hog_people' need no model.",
                    },
                ),
                "model": (
                    "STRING",
                    {
                        "default": "",
                        "tooltip": "Model folder (save_pretrained layout), or a name under ComfyUI's models/grounding-dino or "
                        "models/owlv2. Ignored by 'motion' and 'hog_people'.",
                    },
                ),
                "device": (
                    DEVICES,
                    {"default": "auto", "tooltip": "auto: ComfyUI's device (honours --cpu)."},
                ),
                "box_threshold": (
                    "FLOAT",
                    {
                        "default": 0.25,
                        "min": 0.0,
                        "max": 1.0,
                        "step": 0.01,
                        "tooltip": "Minimum box score (the paper: 0.25).",
                    },
                ),
                "text_threshold": (
                    "FLOAT",
                    {
                        "default": 0.25,
                        "min": 0.0,
                        "max": 1.0,
                        "step": 0.01,
                        "tooltip": "GroundingDINO's text-token threshold (the paper: 0.25).",
                    },
                ),
            },
            "optional": {
                "allow_download": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Allow `model` to be a hub id that is downloaded (off: local folders only).",
                    },
                ),
                "motion_baseline": (
                    "INT",
                    {
                        "default": 2,
                        "min": 1,
                        "max": 8,
                        "tooltip": "'motion' only: how many sampled frames apart motion is measured. "
                        "2 finds slow objects (a distant train); 1 suits very fast motion.",
                    },
                ),
            },
        }

    def load(
        self,
        kind: str,
        model: str,
        device: str,
        box_threshold: float,
        text_threshold: float,
        allow_download: bool = False,
        motion_baseline: int = 2,
    ):
        if kind == "motion":
            options: dict = {"baseline": motion_baseline}
        else:
            options = {"threshold": box_threshold}
            if kind == "grounding_dino":
                options["text_threshold"] = text_threshold
        return (
            load_detector(
                kind,
                model.strip() or None,
                device=_device(device),
                allow_download=allow_download,
                **options,
            ),
        )


class MotionSightDetectAndTrack:
    DESCRIPTION = (
        "Find the named action objects in the sampled frames and keep their identities across frames. "
        "Without a detector it uses the weight-free moving-object detector. Outputs the detections, a MASK "
        "and a BBOX (union box per frame) for other packs, and an info JSON."
    )
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("MOTIONSIGHT_DETECTIONS", "MASK", "BBOX", "STRING")
    RETURN_NAMES = ("detections", "mask", "bbox", "info")
    OUTPUT_TOOLTIPS = (
        "Per-frame boxes, scores, labels and track ids.",
        "Union of the objects' masks (or boxes) per frame [N, H, W].",
        "Per frame the union box of the objects; the whole frame where none was found.",
        "JSON: detector, counts, labels, track ids.",
    )
    SEARCH_ALIASES = ["track objects", "sam2", "action objects"]

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The sampled frames [N, H, W, 3]."}),
                "objects": (
                    "STRING",
                    {
                        "default": "",
                        "multiline": False,
                        "tooltip": "Objects to find: 'train, person' or 'train. person.' Needed by text detectors; the motion "
                        "detector ignores it.",
                    },
                ),
                "mode": (
                    ["every", "first"],
                    {
                        "default": "every",
                        "tooltip": "every: detect on every frame and associate. first: detect on the first frame and track "
                        "(as the reference does; with SAM2 when a tracker model is set).",
                    },
                ),
            },
            "optional": {
                "detector": (
                    "MOTIONSIGHT_DETECTOR",
                    {"tooltip": "From Load Detector; default: the weight-free motion detector."},
                ),
                "tracker_model": (
                    "STRING",
                    {
                        "default": "",
                        "tooltip": "SAM2 video model folder (or name under models/sam2); empty: IoU association.",
                    },
                ),
            },
        }

    def run(
        self, images: torch.Tensor, objects: str, mode: str, detector=None, tracker_model: str = ""
    ):
        detector = detector if detector is not None else load_detector("motion")
        tracker = (
            Sam2Tracker(tracker_model.strip(), device=torch_device())
            if tracker_model.strip()
            else "iou"
        )
        progress = Progress(images.shape[0], "detect and track")
        found = detect_and_track(
            images, objects, detector, mode=mode, tracker=tracker, progress=progress.update
        )
        return (found, found.to_mask(), found.to_bbox(), json.dumps(found.summary(), default=str))


class MotionSightSpotlightBoxes:
    DESCRIPTION = (
        "Turn per-frame object boxes into one spotlight box per frame. Default 'robust': the main track "
        "(the steadiest, most confident mover), boxes inconsistent with it dropped, frames without a box "
        "borrowing their neighbours' box; 'reference': MotionSight's temporal clustering rule for rule "
        "(METHOD.md), where one false box can widen a whole cluster. With no detections at all every "
        "frame is the whole frame, reported as fallback in the info."
    )
    CATEGORY = CATEGORY
    FUNCTION = "cluster"
    RETURN_TYPES = ("BBOX", "STRING")
    RETURN_NAMES = ("bbox", "info")
    OUTPUT_TOOLTIPS = (
        "One [x1, y1, x2, y2] per frame, for Spotlight.",
        "JSON: cluster ids, fallback.",
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "detections": ("MOTIONSIGHT_DETECTIONS", {"tooltip": "From Detect And Track."}),
                "momentum": (
                    "FLOAT",
                    {
                        "default": 0.7,
                        "min": 0.0,
                        "max": 0.99,
                        "step": 0.01,
                        "tooltip": "Running cluster centre: c = m*c + (1-m)*current (0.7).",
                    },
                ),
                "distance_ratio": (
                    "FLOAT",
                    {
                        "default": 0.3,
                        "min": 0.01,
                        "max": 2.0,
                        "step": 0.01,
                        "tooltip": "New cluster when the centre jumps more than this x min(W, H) (0.3).",
                    },
                ),
                "min_cluster_size": (
                    "INT",
                    {
                        "default": 3,
                        "min": 1,
                        "max": 64,
                        "tooltip": "Boxes a cluster holds before a new one may start (3).",
                    },
                ),
                "min_box_size": (
                    "INT",
                    {
                        "default": 10,
                        "min": 1,
                        "max": 4096,
                        "tooltip": "A union narrower or shorter than this (px) is grown (10).",
                    },
                ),
                "grown_box_size": (
                    "INT",
                    {
                        "default": 100,
                        "min": 1,
                        "max": 8192,
                        "tooltip": "Size (px) such small boxes grow to (100).",
                    },
                ),
            },
            "optional": {
                "clustering": (
                    ["robust", "reference"],
                    {
                        "default": "robust",
                        "tooltip": "robust (default, measures better on real clips: smaller spotlight, "
                        "one false box cannot blow it up): main track, outliers dropped, empty frames "
                        "borrow neighbours. reference: the paper's rules (momentum, distance ratio and "
                        "cluster size apply only here).",
                    },
                )
            },
        }

    def cluster(
        self,
        detections: Detections,
        momentum,
        distance_ratio,
        min_cluster_size,
        min_box_size,
        grown_box_size,
        clustering: str = "robust",
    ):
        result = spotlight_boxes_from_detections(
            detections,
            mode=clustering,
            momentum=momentum,
            distance_ratio=distance_ratio,
            min_cluster_size=min_cluster_size,
            min_box_size=min_box_size,
            grown_box_size=grown_box_size,
        )
        info = {
            "fallback": bool(result.fallback),
            "reason": "no detections in any frame: whole frame" if result.fallback else "",
            "clustering": clustering,
            "cluster_ids": [int(c) for c in result.cluster_ids.tolist()],
            "detector": detections.info.get("detector"),
        }
        return (tensor_to_bbox(result.boxes), json.dumps(info))


def draw_detections(
    images: torch.Tensor, detections: Detections, thickness: int = 2
) -> torch.Tensor:
    """Draw boxes, labels and track ids onto `images` `[N, H, W, 3]` float 0..1 (a copy)."""
    if images.shape[0] != detections.num_frames:
        raise ValueError(
            f"images have {images.shape[0]} frames, detections {detections.num_frames}"
        )
    if tuple(images.shape[1:3]) != (detections.height, detections.width):
        raise ValueError(
            f"images are {images.shape[2]}x{images.shape[1]}, detections {detections.width}x{detections.height}"
        )
    out = (images[..., :3].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy().copy()
    palette = [
        (230, 25, 75),
        (60, 180, 75),
        (255, 225, 25),
        (0, 130, 200),
        (245, 130, 48),
        (145, 30, 180),
        (70, 240, 240),
    ]
    for i in range(detections.num_frames):  # drawing text is per-frame OpenCV work
        frame = np.ascontiguousarray(out[i])
        for box, label, tid, score in zip(
            detections.boxes[i].round().int().tolist(),
            detections.labels[i],
            detections.track_ids[i].tolist(),
            detections.scores[i].tolist(),
            strict=True,
        ):
            colour = palette[tid % len(palette)] if tid >= 0 else (255, 255, 255)
            cv2.rectangle(frame, tuple(box[:2]), (box[2] - 1, box[3] - 1), colour, thickness)
            text = f"{label} #{tid} {score:.2f}" if tid >= 0 else f"{label} {score:.2f}"
            org = (box[0] + 2, max(box[1] - 4, 12))
            cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
        out[i] = frame
    return torch.from_numpy(out).float() / 255


class MotionSightDrawDetections:
    DESCRIPTION = "Preview: draw the detections' boxes, labels and track ids onto the frames."
    CATEGORY = CATEGORY
    FUNCTION = "draw"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("The frames with boxes drawn [N, H, W, 3].",)

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The frames the detections were made on."}),
                "detections": ("MOTIONSIGHT_DETECTIONS", {"tooltip": "From Detect And Track."}),
                "thickness": (
                    "INT",
                    {"default": 2, "min": 1, "max": 16, "tooltip": "Box line width (px)."},
                ),
            }
        }

    def draw(self, images: torch.Tensor, detections: Detections, thickness: int = 2):
        return (draw_detections(images, detections, thickness),)


NODE_CLASS_MAPPINGS = {
    "MotionSightLoadDetector": MotionSightLoadDetector,
    "MotionSightDetectAndTrack": MotionSightDetectAndTrack,
    "MotionSightSpotlightBoxes": MotionSightSpotlightBoxes,
    "MotionSightDrawDetections": MotionSightDrawDetections,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "MotionSightLoadDetector": "Load Detector (MotionSight)",
    "MotionSightDetectAndTrack": "Detect And Track (MotionSight)",
    "MotionSightSpotlightBoxes": "Spotlight Boxes (MotionSight)",
    "MotionSightDrawDetections": "Draw Detections (MotionSight)",
}
