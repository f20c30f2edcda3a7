"""Errors the engine raises: one for a bad workflow (many problems listed), one for a failing node."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# ComfyUI's validation error kinds (execution.py), plus the engine's own structural ones.
ERROR_KINDS = (
    "invalid_prompt",
    "prompt_no_outputs",
    "required_input_missing",
    "bad_linked_input",
    "return_type_mismatch",
    "invalid_input_type",
    "value_smaller_than_min",
    "value_bigger_than_max",
    "value_not_in_list",
    "custom_validation_failed",
    "dependency_cycle",
    "invalid_override",
    "value_not_finite",
)
MAX_VALUE_CHARS = 80  # a value quoted in a message is cut to this
MAX_MESSAGE_CHARS = 400


def cut(text: Any, limit: int = MAX_VALUE_CHARS) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """`repr(value)` cut to `limit` characters (a 1 MB widget value must not flood an error);
    safe for anything JSON holds (a 5000-digit integer, deep nesting)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"<an integer of {value.bit_length()} bits>"
    if isinstance(value, (list, tuple, dict)):
        text = _shallow(value, limit)
    else:
        try:
            text = repr(value)
        except (ValueError, RecursionError):
            text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shallow(value: Any, limit: int) -> str:
    """repr of a container without descending further than needed for `limit` characters."""
    if isinstance(value, dict):
        items = [
            f"{short(k, limit)}: {short(v, limit) if not isinstance(v, (list, tuple, dict)) else '...'}"
            for k, v in list(value.items())[:8]
        ]
        return "{" + ", ".join(items) + (", ...}" if len(value) > 8 else "}")
    items = [
        short(v, limit) if not isinstance(v, (list, tuple, dict)) else "[...]"
        for v in list(value)[:8]
    ]
    return "[" + ", ".join(items) + (", ...]" if len(value) > 8 else "]")


@dataclass
class ValidationError:
    """One problem in a workflow, located as precisely as known.

    `kind` is one of `ERROR_KINDS`; `node_id`, `class_type` and `input_name` are None when the
    problem is not about one node / input (e.g. `prompt_no_outputs`).
    """

    kind: str
    message: str
    node_id: str | None = None
    class_type: str | None = None
    input_name: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # One line, bounded: a workflow's values (names, titles, a 1 MB widget) are quoted in
        # messages; the CLI prints messages on one line.
        self.message = " ".join(str(self.message).splitlines())
        if len(self.message) > MAX_MESSAGE_CHARS:
            self.message = self.message[: MAX_MESSAGE_CHARS - 3] + "..."

    def where(self) -> str:
        parts = []
        if self.node_id is not None:
            node = f"node {cut(self.node_id)}"
            if self.class_type:
                node += f" ({cut(self.class_type)})"
            parts.append(node)
        if self.input_name is not None:
            parts.append(f"input '{cut(self.input_name)}'")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        return f"[{self.kind}] {where + ': ' if where else ''}{self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "node_id": self.node_id,
            "class_type": self.class_type,
            "input_name": self.input_name,
        }


class WorkflowError(Exception):
    """A workflow that cannot run: it carries every `ValidationError` found.

    `source` names the file (or "<workflow>" for an in-memory dict).
    """

    def __init__(self, errors: list[ValidationError] | ValidationError, source: str | None = None):
        self.errors = [errors] if isinstance(errors, ValidationError) else list(errors)
        if not self.errors:
            raise ValueError("WorkflowError needs at least one ValidationError")
        self.source = source
        super().__init__(self._format())

    @property
    def kinds(self) -> list[str]:
        return [e.kind for e in self.errors]

    def _format(self) -> str:
        head = f"workflow {self.source}" if self.source else "workflow"
        if len(self.errors) == 1:
            return f"{head} is invalid: {self.errors[0]}"
        lines = [f"{head} is invalid ({len(self.errors)} problems):"]
        lines += [f"  - {e}" for e in self.errors]
        return "\n".join(lines)

    def with_source(self, source: str) -> WorkflowError:
        """The same errors, attributed to `source` (when the caller knows the file name)."""
        return self if self.source else WorkflowError(self.errors, source)


class NodeExecutionError(Exception):
    """A node raised while running. The original exception is the `__cause__`."""

    def __init__(self, node_id: str, class_type: str, title: str | None, exc: BaseException):
        self.node_id = node_id
        self.class_type = class_type
        self.title = title
        self.exception_type = _full_type_name(type(exc))
        self.exception_message = str(exc)
        name = f" '{cut(title)}'" if title and title != class_type else ""
        shown = cut(" ".join(self.exception_message.splitlines()), MAX_MESSAGE_CHARS)
        super().__init__(
            f"node {cut(node_id)}{name} ({class_type}) failed: {self.exception_type}: {shown}"
        )


def _full_type_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module in (None, "builtins") else f"{module}.{cls.__qualname__}"
