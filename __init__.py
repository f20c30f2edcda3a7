"""MotionSight for ComfyUI: training-free visual prompts for fine-grained motion understanding.

ComfyUI imports this folder as a package and reads `NODE_CLASS_MAPPINGS` and
`NODE_DISPLAY_NAME_MAPPINGS`. `pip install -e .` makes the same folder importable as `motionsight`.
The mappings load on first access (PEP 562), so `import motionsight.kernels` and the CLI do not
import every node and its dependencies.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import nodes

        return getattr(nodes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
