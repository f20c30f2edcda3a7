"""The headless engine: load ComfyUI workflow files, validate and run them with the pack's nodes.

It knows nodes only through a `{class_type: node class}` mapping, as ComfyUI does. The CLI is
`engine.cli` (not imported here, so `python -m motionsight.engine.cli` runs cleanly).
"""

from .errors import NodeExecutionError, ValidationError, WorkflowError
from .executor import Executor, NodeOutput, RunResult
from .run import apply_overrides, run_workflow
from .validate import validate_prompt
from .workflow import load_workflow, save_workflow, to_ui_workflow

__all__ = [
    "Executor",
    "NodeExecutionError",
    "NodeOutput",
    "RunResult",
    "ValidationError",
    "WorkflowError",
    "apply_overrides",
    "load_workflow",
    "run_workflow",
    "save_workflow",
    "to_ui_workflow",
    "validate_prompt",
]
