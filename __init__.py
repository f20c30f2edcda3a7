"""MotionSight for ComfyUI: training-free visual prompts for fine-grained motion understanding.

ComfyUI imports this folder as a package and reads `NODE_CLASS_MAPPINGS` and
`NODE_DISPLAY_NAME_MAPPINGS`, and serves `web/` (the extension that shows answers on the nodes)
through `WEB_DIRECTORY`. `pip install -e .` makes the same folder importable as `motionsight`.
The mappings load on first access (PEP 562), so `import motionsight.kernels` and the CLI do not
import every node and its dependencies.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
WEB_DIRECTORY = "./web"
__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]


def __getattr__(name: str) -> Any:
    if name in ("NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"):
        from . import nodes

        return getattr(nodes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
