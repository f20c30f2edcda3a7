"""Pure tensor operations of MotionSight's visual prompts: tensors in, tensors out (torch, kornia).

No files, no models, no ComfyUI. Images are `[N, C, H, W]` float; boxes `[x1, y1, x2, y2]` pixels.
"""

from .blur import background_blur
from .clustering import ClusteredBoxes, cluster_boxes, whole_frame_box
from .sampling import fixed_rate_indices, sample_timestamps, segment_midpoint_indices
from .spotlight import box_masks, crop_to_boxes, pad_boxes, spotlight, spotlight_boxes
from .trails import (
    MotionTrails,
    motion_trails,
    motion_trails_from_frames,
    trail_weights,
    trail_windows,
)

__all__ = [
    "ClusteredBoxes",
    "MotionTrails",
    "background_blur",
    "box_masks",
    "cluster_boxes",
    "crop_to_boxes",
    "fixed_rate_indices",
    "motion_trails",
    "motion_trails_from_frames",
    "pad_boxes",
    "sample_timestamps",
    "segment_midpoint_indices",
    "spotlight",
    "spotlight_boxes",
    "trail_weights",
    "trail_windows",
    "whole_frame_box",
]
