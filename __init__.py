"""MotionSight for ComfyUI: training-free visual prompts for fine-grained motion understanding.

ComfyUI imports this folder as a package and reads the two mappings below. `pip install -e .`
makes the same folder importable as `motionsight`.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__version__ = "0.1.0"
__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
