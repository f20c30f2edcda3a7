"""Read a V1 node class the way ComfyUI does: its inputs, widgets, outputs and type matching."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ValidationError, WorkflowError

# Input types the editor shows as widgets (a combo is a list of options or "COMBO").
PRIMITIVE_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN"})
# The values the editor stores after a seed-like INT widget (its "control after generate").
CONTROL_VALUES = frozenset({"fixed", "increment", "decrement", "randomize"})
SEED_NAMES = frozenset({"seed", "noise_seed"})
HIDDEN_KINDS = frozenset({"UNIQUE_ID", "PROMPT", "EXTRA_PNGINFO"})


@dataclass(frozen=True)
class InputSpec:
    """One declared input: `type` is a type name, or "COMBO" with `choices` for a dropdown."""

    name: str
    type: str
    options: Mapping[str, Any]
    required: bool
    choices: tuple | None = None

    @property
    def is_combo(self) -> bool:
        return self.choices is not None

    @property
    def is_primitive(self) -> bool:
        """INT/FLOAT/STRING/BOOLEAN or a combo: a value can be typed in (a literal)."""
        return self.is_combo or self.type in PRIMITIVE_TYPES

    @property
    def is_widget(self) -> bool:
        """Shown as a widget in the editor, so it owns a slot in `widgets_values`."""
        return self.is_primitive and not self.options.get("forceInput", False)

    @property
    def has_control_value(self) -> bool:
        """A seed-like INT widget: the editor stores one extra "control after generate" value."""
        return self.type == "INT" and bool(
            self.options.get("control_after_generate", self.name in SEED_NAMES)
        )

    def default(self) -> Any:
        if "default" in self.options:
            return self.options["default"]
        if self.is_combo:
            return self.choices[0] if self.choices else ""
        return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}.get(self.type)


def _input_types(cls: type, class_type: str) -> dict:
    try:
        declared = cls.INPUT_TYPES()
    except Exception as exc:  # a broken node class is reported like a bad workflow, not a crash
        raise WorkflowError(
            ValidationError(
                "invalid_prompt",
                f"INPUT_TYPES() of node type {class_type} failed: {exc}",
                class_type=class_type,
            )
        ) from exc
    if not isinstance(declared, Mapping):
        raise WorkflowError(
            ValidationError(
                "invalid_prompt",
                f"INPUT_TYPES() of node type {class_type} is not a dict",
                class_type=class_type,
            )
        )
    return dict(declared)


def input_specs(cls: type, class_type: str = "") -> dict[str, InputSpec]:
    """Required then optional inputs, in declaration order (the order of the editor's widgets)."""
    declared = _input_types(cls, class_type or getattr(cls, "__name__", "?"))
    specs: dict[str, InputSpec] = {}
    for category in ("required", "optional"):
        for name, info in (declared.get(category) or {}).items():
            if isinstance(info, (list, tuple)) and info and not isinstance(info, str):
                raw_type, options = (
                    info[0],
                    (info[1] if len(info) > 1 and isinstance(info[1], Mapping) else {}),
                )
            else:
                raw_type, options = info, {}
            choices = None
            if isinstance(raw_type, (list, tuple)):
                choices, type_name = tuple(raw_type), "COMBO"
            elif raw_type == "COMBO":  # newer spelling: ("COMBO", {"options": [...]})
                choices, type_name = tuple(options.get("options", ())), "COMBO"
            else:
                type_name = str(raw_type)
            specs[name] = InputSpec(name, type_name, dict(options), category == "required", choices)
    return specs


def hidden_inputs(cls: type, class_type: str = "") -> dict[str, str]:
    """`{argument name: "UNIQUE_ID" | "PROMPT" | "EXTRA_PNGINFO" | ...}`."""
    hidden = _input_types(cls, class_type or getattr(cls, "__name__", "?")).get("hidden") or {}
    return {
        name: (kind[0] if isinstance(kind, (list, tuple)) else kind)
        for name, kind in hidden.items()
    }


def widget_specs(specs: Mapping[str, InputSpec]) -> list[InputSpec]:
    return [s for s in specs.values() if s.is_widget]


def return_types(cls: type) -> tuple:
    return tuple(getattr(cls, "RETURN_TYPES", ()) or ())


def output_type_name(t: Any) -> str:
    """A RETURN_TYPES entry as a type name: a list (combo values) is "COMBO"."""
    return "COMBO" if isinstance(t, (list, tuple)) else str(t)


def types_match(output_type: Any, input_type: str) -> bool:
    """ComfyUI's loose link check: "*" matches anything, "A,B" is a union, else equal names."""
    out = output_type_name(output_type)
    if out == "*" or input_type == "*":
        return True
    if out == input_type:
        return True
    outs = {t.strip() for t in out.split(",")}
    ins = {t.strip() for t in input_type.split(",")}
    return bool(outs & ins)


def is_output_node(cls: type) -> bool:
    return bool(getattr(cls, "OUTPUT_NODE", False))


def call_filtered(func: Callable, kwargs: dict[str, Any]) -> Any:
    """Call `func` with the keyword arguments it accepts (all of them when it takes **kwargs)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return func(**kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return func(**kwargs)
    names = {
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    return func(**{k: v for k, v in kwargs.items() if k in names})


def accepted_argument_names(func: Callable) -> tuple[set[str], bool]:
    """(named parameters, takes **kwargs) of a VALIDATE_INPUTS / IS_CHANGED function."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return set(), True
    names = {
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    return names, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def is_link(value: Any) -> bool:
    """API format: an input value that is a list is a link `[source node id, output index]`."""
    return isinstance(value, (list, tuple))
