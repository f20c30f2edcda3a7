"""Detections (the common currency), detectors, tracking and spotlight boxes."""

from .detections import Detections, box_iou
from .detectors import DETECTORS, Detector, load_detector, parse_prompts
from .motion import MotionDetector, MotionOptions
from .tracking import Sam2Tracker, associate_iou, detect_and_track, spotlight_boxes_from_detections

__all__ = [
    "DETECTORS",
    "Detections",
    "Detector",
    "MotionDetector",
    "MotionOptions",
    "Sam2Tracker",
    "associate_iou",
    "box_iou",
    "detect_and_track",
    "load_detector",
    "parse_prompts",
    "spotlight_boxes_from_detections",
]
