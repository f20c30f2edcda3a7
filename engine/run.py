"""Run a workflow file in one call, with `NODE.INPUT=VALUE` overrides (what `motionsight run` does)."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .. import comfy_bridge
from .errors import ValidationError, WorkflowError
from .executor import Executor, RunResult
from .spec import InputSpec, input_specs
from .validate import coerce_literal, node_sort_key
from .workflow import load_workflow

__all__ = ["apply_overrides", "default_node_classes", "find_node", "parse_value", "run_workflow"]

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def default_node_classes() -> tuple[Mapping[str, type], Mapping[str, str]]:
    """The pack's `NODE_CLASS_MAPPINGS` and `NODE_DISPLAY_NAME_MAPPINGS` (imported on first use)."""
    from .. import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    return NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS


def _describe(prompt: Mapping, node_id: str) -> str:
    node = prompt[node_id]
    return f"{node_id} '{node['_meta']['title']}' ({node['class_type']})"


def find_node(prompt: Mapping, key: str) -> str:
    """The node id that `key` names: a node id, else the one node whose title or class type it is.

    Raises `WorkflowError` (kind `invalid_override`) listing the candidates when `key` is
    ambiguous (several nodes have that title or type: name one by id) or matches nothing.
    """
    key = str(key)
    if key in prompt:
        return key
    ids = sorted(prompt, key=node_sort_key)
    # A default title is the type's display name (or the type), so titles and types are one pool.
    found = [
        n
        for n in ids
        if prompt[n].get("_meta", {}).get("title") == key or prompt[n]["class_type"] == key
    ]
    if len(found) == 1:
        return found[0]
    if found:
        raise WorkflowError(
            ValidationError(
                "invalid_override",
                f"{key!r} is the title or node type of {len(found)} nodes; name one by id: "
                + ", ".join(_describe(prompt, n) for n in found),
            )
        )
    raise WorkflowError(
        ValidationError(
            "invalid_override",
            f"no node is called {key!r} (by id, title or type); nodes: "
            + ", ".join(_describe(prompt, n) for n in ids),
        )
    )


_UPLOAD_OPTIONS = frozenset({"image_upload", "video_upload", "audio_upload"})


def parse_value(spec: InputSpec, value: Any) -> Any:
    """Turn command-line text into a value of the input's declared type (ValueError when impossible).

    INT, FLOAT, BOOLEAN (true/false, 1/0, yes/no, on/off), STRING as is, a combo must be one of
    its choices. Non-text values (from a Python dict of overrides) are converted the same way.
    """
    if spec.is_combo and isinstance(value, str) and _UPLOAD_OPTIONS & spec.options.keys():
        return value  # a file combo (upload widget) also takes a typed path; the node checks it
    if spec.is_combo:
        for choice in spec.choices:
            if choice == value or (isinstance(value, str) and str(choice) == value):
                return choice
        shown = ", ".join(repr(c) for c in spec.choices[:20]) + (
            ", ..." if len(spec.choices) > 20 else ""
        )
        raise ValueError(f"{value!r} is not one of the choices: {shown}")
    if not spec.is_primitive:
        raise ValueError(f"it takes a link of type {spec.type}, which cannot be set from a value")
    if not isinstance(value, str):
        try:
            return coerce_literal(spec, value)
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} is not a valid {spec.type}") from None
    text = value.strip()
    if spec.type == "INT":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{value!r} is not an integer") from None
    if spec.type == "FLOAT":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
    if spec.type == "BOOLEAN":
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValueError(f"{value!r} is not a boolean (use true/false, yes/no, 1/0)")
    return value  # STRING: exactly as given


def _split_override(text: str) -> tuple[str, str, str]:
    if "=" not in text:
        raise ValueError(f"--set {text!r}: expected NODE.INPUT=VALUE")
    target, value = text.split("=", 1)
    if "." not in target:
        raise ValueError(
            f"--set {text!r}: expected NODE.INPUT=VALUE (NODE is a node id, title or type)"
        )
    node, name = target.rsplit(".", 1)
    if not node or not name:
        raise ValueError(f"--set {text!r}: expected NODE.INPUT=VALUE")
    return node, name, value


def apply_overrides(
    prompt: Mapping,
    overrides: Mapping[str, Any] | Iterable[str] | None,
    node_classes: Mapping[str, type],
) -> dict:
    """A copy of `prompt` with inputs set: `{"NODE.INPUT": value}` or `["NODE.INPUT=VALUE", ...]`.

    A value replaces whatever was there (also a link). Raises `WorkflowError` (kind
    `invalid_override`) listing every override that names no node / no input, or whose value does
    not fit the input's type.
    """
    prompt = copy.deepcopy(dict(prompt))
    if not overrides:
        return prompt
    if isinstance(overrides, Mapping):
        items = []
        for target, value in overrides.items():
            if "." not in str(target):
                items.append((None, None, value, f"{target!r}: expected 'NODE.INPUT' as the key"))
            else:
                node, name = str(target).rsplit(".", 1)
                items.append((node, name, value, None))
    elif isinstance(overrides, str):
        raise TypeError(
            "overrides must be a dict or a list of 'NODE.INPUT=VALUE' strings, not one string"
        )
    else:
        items = []
        for text in overrides:
            try:
                items.append((*_split_override(str(text)), None))
            except ValueError as exc:
                items.append((None, None, None, str(exc)))

    errors: list[ValidationError] = []
    for node_key, name, value, problem in items:
        if problem:
            errors.append(ValidationError("invalid_override", problem))
            continue
        try:
            node_id = find_node(prompt, node_key)
        except WorkflowError as exc:
            errors.extend(exc.errors)
            continue
        class_type = prompt[node_id]["class_type"]
        specs = input_specs(node_classes[class_type], class_type)
        where = {"node_id": node_id, "class_type": class_type, "input_name": name}
        if name not in specs:
            valid = ", ".join(f"{s.name} ({s.type})" for s in specs.values()) or "none"
            errors.append(
                ValidationError(
                    "invalid_override", f"node has no input {name!r}; its inputs: {valid}", **where
                )
            )
            continue
        try:
            prompt[node_id].setdefault("inputs", {})[name] = parse_value(specs[name], value)
        except ValueError as exc:
            errors.append(
                ValidationError("invalid_override", f"cannot set it to {value!r}: {exc}", **where)
            )
    if errors:
        raise WorkflowError(errors)
    return prompt


def run_workflow(
    path_or_dict: str | os.PathLike | Mapping,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    *,
    output_dir: str | os.PathLike | None = None,
    input_dir: str | os.PathLike | None = None,
    executor: Executor | None = None,
    node_classes: Mapping[str, type] | None = None,
    display_names: Mapping[str, str] | None = None,
    quiet: bool = True,
    output_nodes: Iterable[str] | None = None,
) -> RunResult:
    """Load a workflow (UI or API format), apply overrides, and run it.

    `output_dir` / `input_dir` set the process-wide folders in `comfy_bridge` (where save nodes
    write, where bare file names are looked up). Node classes come from `node_classes`, else
    the `executor`'s, else the pack's `NODE_CLASS_MAPPINGS` (then default titles are the pack's
    display names). `output_nodes`: run only these node ids (default: every output node). Raises `WorkflowError` or `NodeExecutionError`.
    """
    pack_classes, pack_names = default_node_classes()
    if node_classes is None:
        node_classes = executor.node_classes if executor is not None else pack_classes
    if display_names is None and node_classes is pack_classes:
        display_names = pack_names  # default titles as the editor shows them
    source = None if isinstance(path_or_dict, Mapping) else str(path_or_dict)
    prompt = load_workflow(path_or_dict, node_classes, display_names=display_names)
    try:
        prompt = apply_overrides(prompt, overrides, node_classes)
    except WorkflowError as exc:
        raise exc.with_source(source) if source else exc from None
    if output_dir is not None:
        comfy_bridge.set_output_directory(Path(output_dir))
    if input_dir is not None:
        comfy_bridge.set_input_directory(Path(input_dir))
    executor = executor or Executor(node_classes, quiet=quiet)
    return executor.run(prompt, source=source, output_nodes=output_nodes)
