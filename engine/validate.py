"""Validate an API-format prompt the way ComfyUI does, before anything runs.

Semantics follow ComfyUI's `execution.validate_prompt` / `validate_inputs`:

- every node needs a known `class_type` (else `invalid_prompt`); no output node ->
  `prompt_no_outputs`;
- only nodes that feed an output node are checked (as ComfyUI does), in id order;
- a required input that is absent -> `required_input_missing`; inputs not declared by the node
  are ignored;
- a link must be `[existing node id, output index in range]` (`bad_linked_input`) of a type the
  input accepts (`return_type_mismatch`; "*" and "A,B" unions match loosely), unless the node's
  `VALIDATE_INPUTS` takes `input_types` (then the node checks types itself);
- a literal is converted to the declared type (INT -> int, FLOAT -> float, STRING -> str,
  BOOLEAN -> bool; `invalid_input_type` when impossible), then checked against `min`/`max` and
  combo choices — except for inputs named in `VALIDATE_INPUTS`'s signature, which the node
  validates itself (ComfyUI skips its built-in checks for those, and for every input when
  `VALIDATE_INPUTS` takes `**kwargs`); BOOLEAN is stricter than ComfyUI's `bool(value)`:
  only booleans, 0/1 and "true"/"false"/"yes"/"no"/"on"/"off" are accepted;
- `VALIDATE_INPUTS` is called on the class with the literal inputs only (linked ones are not
  known yet), plus `input_types` when it asks for it; anything but `True` ->
  `custom_validation_failed`;
- a cycle among the nodes that would run -> `dependency_cycle` naming them (ComfyUI finds this
  while executing; headless it is a validation error).

Unlike the ComfyUI server, which answers 200 and skips the failing branch, the headless engine
treats every error as fatal.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import NodeExecutionError, ValidationError, WorkflowError, cut, short
from .spec import (
    InputSpec,
    accepted_argument_names,
    input_specs,
    is_link,
    is_output_node,
    output_type_name,
    return_types,
    types_match,
)

__all__ = [
    "NodeExecutionError",
    "Plan",
    "ValidationError",
    "WorkflowError",
    "coerce_literal",
    "node_sort_key",
    "plan_prompt",
    "validate_prompt",
]

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _non_finite(value: Any) -> bool:
    """NaN or an infinity, as a number or as text ("nan", "inf", "-Infinity", "1e999")."""
    if isinstance(value, Mapping) and set(value) == {"__value__"}:
        value = value["__value__"]
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str) and len(value) < 100:
        try:
            return not math.isfinite(float(value))
        except ValueError:
            return False
    return False


def node_sort_key(node_id: str) -> tuple:
    """Numeric ids in numeric order, then the others alphabetically."""
    return (0, int(node_id), "") if str(node_id).isdigit() else (1, 0, str(node_id))


def coerce_literal(spec: InputSpec, value: Any) -> Any:
    """Convert a literal to the input's declared type, as ComfyUI does; raise ValueError if impossible.

    INT -> int, FLOAT -> float, STRING -> str, BOOLEAN -> bool (also from "true"/"false"/
    "yes"/"no"/"1"/"0"); combo and custom types are returned unchanged. The API format's
    `{"__value__": [...]}` wrapper for list literals is unwrapped.
    """
    if isinstance(value, Mapping) and set(value) == {"__value__"}:
        value = value["__value__"]
    if spec.is_combo:
        return value
    if value is None and spec.type in ("INT", "FLOAT", "STRING", "BOOLEAN"):
        raise ValueError(f"None is not a {spec.type}")
    if spec.type == "INT":
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{value} is not an integer")
        if isinstance(value, str) and len(value) > 100:
            raise ValueError("a text of more than 100 characters is not an integer")
        return int(value)
    if spec.type == "FLOAT":
        try:
            return float(value)
        except OverflowError:
            raise ValueError("too large for a FLOAT") from None
    if spec.type == "STRING":
        return value if isinstance(value, str) else str(value)
    if spec.type == "BOOLEAN":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        raise ValueError(f"{value!r} is not a boolean")
    return value


@dataclass
class Plan:
    """What the executor needs from a valid prompt.

    `order`: the node ids to run, topologically sorted (ties in id order);
    `outputs`: the output node ids; `literals[node][input]`: coerced literal values;
    `links[node][input]`: `(source node id, output index)`.
    """

    prompt: dict
    order: list[str]
    outputs: list[str]
    literals: dict[str, dict[str, Any]] = field(default_factory=dict)
    links: dict[str, dict[str, tuple[str, int]]] = field(default_factory=dict)


def validate_prompt(
    prompt: Any, node_classes: Mapping[str, type], *, output_nodes: Iterable[str] | None = None
) -> list[ValidationError]:
    """Every problem in an API-format prompt (empty list when it can run).

    `output_nodes` restricts the run to these node ids (default: every `OUTPUT_NODE`).
    """
    try:
        errors, _ = _check(prompt, node_classes, output_nodes)
    except WorkflowError as exc:  # a node class whose INPUT_TYPES() fails
        return exc.errors
    return errors


def plan_prompt(
    prompt: Any,
    node_classes: Mapping[str, type],
    *,
    output_nodes: Iterable[str] | None = None,
    source: str | None = None,
) -> Plan:
    """Validate and return the execution plan; raise `WorkflowError` listing every problem."""
    errors, plan = _check(prompt, node_classes, output_nodes)
    if errors or plan is None:
        raise WorkflowError(errors, source)
    return plan


def _check(
    prompt: Any, node_classes: Mapping[str, type], output_nodes: Iterable[str] | None
) -> tuple[list[ValidationError], Plan | None]:
    errors = _check_structure(prompt, node_classes)
    if errors:
        return errors, None

    if output_nodes is not None:
        outputs = [str(n) for n in output_nodes]
        missing = [n for n in outputs if n not in prompt]
        if missing:
            return [
                ValidationError(
                    "invalid_prompt",
                    f"requested output node(s) {', '.join(missing)} not in the workflow",
                )
            ], None
    else:
        outputs = [n for n in prompt if is_output_node(node_classes[prompt[n]["class_type"]])]
    outputs.sort(key=node_sort_key)
    if not outputs:
        return [
            ValidationError(
                "prompt_no_outputs",
                "the workflow has no output node (a node with OUTPUT_NODE = True), so nothing would run",
            )
        ], None

    needed = _reachable(prompt, outputs)
    plan = Plan(prompt=prompt, order=[], outputs=outputs)
    for node_id in sorted(needed, key=node_sort_key):
        errors += _check_node(prompt, node_id, node_classes, plan)

    cycles = _find_cycles(prompt, needed)
    for cycle in cycles:
        first = cycle[0]
        errors.append(
            ValidationError(
                "dependency_cycle",
                f"nodes {' -> '.join(cycle + [first])} depend on each other (a cycle), so none of them can run",
                node_id=first,
                class_type=prompt[first]["class_type"],
                details={"nodes": cycle},
            )
        )
    if errors:
        return errors, None
    plan.order = _topological_order(prompt, needed)
    return [], plan


def _check_structure(prompt: Any, node_classes: Mapping[str, type]) -> list[ValidationError]:
    if not isinstance(prompt, Mapping):
        return [
            ValidationError(
                "invalid_prompt",
                f"a prompt must be a JSON object of nodes, got {type(prompt).__name__}",
            )
        ]
    if not prompt:
        return [ValidationError("invalid_prompt", "the workflow has no nodes")]
    errors = []
    for node_id, node in prompt.items():
        node_id = str(node_id)
        if not isinstance(node, Mapping):
            errors.append(
                ValidationError(
                    "invalid_prompt", f"node {node_id} is not an object", node_id=node_id
                )
            )
            continue
        class_type = node.get("class_type")
        if not isinstance(class_type, str) or not class_type:
            errors.append(
                ValidationError("invalid_prompt", "node has no class_type", node_id=node_id)
            )
            continue
        if class_type not in node_classes:
            errors.append(
                ValidationError(
                    "invalid_prompt",
                    f"unknown node type {class_type!r} (not provided by the installed node classes)",
                    node_id=node_id,
                    class_type=class_type,
                )
            )
            continue
        if not isinstance(node.get("inputs", {}), Mapping):
            errors.append(
                ValidationError(
                    "invalid_prompt",
                    "'inputs' must be an object",
                    node_id=node_id,
                    class_type=class_type,
                )
            )
    return errors


def _links_of(prompt: Mapping, node_id: str) -> list[tuple[str, str, int]]:
    """(input name, source id, output index) of every well-formed link into an existing node."""
    found = []
    for name, value in (prompt[node_id].get("inputs") or {}).items():
        if (
            is_link(value)
            and len(value) == 2
            and str(value[0]) in prompt
            and isinstance(value[1], int)
        ):
            found.append((name, str(value[0]), value[1]))
    return found


def _reachable(prompt: Mapping, outputs: list[str]) -> set[str]:
    seen: set[str] = set()
    stack = list(outputs)
    while stack:
        node_id = stack.pop()
        if node_id in seen:
            continue
        seen.add(node_id)
        stack.extend(src for _, src, _ in _links_of(prompt, node_id))
    return seen


def _find_cycles(prompt: Mapping, nodes: set[str]) -> list[list[str]]:
    """Each distinct cycle (as a node list) found by an iterative depth-first search."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(nodes, white)
    cycles: list[list[str]] = []
    for root in sorted(nodes, key=node_sort_key):
        if colour[root] != white:
            continue
        path: list[str] = []
        stack: list[tuple[str, list[str]]] = [
            (root, sorted({s for _, s, _ in _links_of(prompt, root)}, key=node_sort_key))
        ]
        colour[root] = grey
        path.append(root)
        while stack:
            node, pending = stack[-1]
            if not pending:
                stack.pop()
                path.pop()
                colour[node] = black
                continue
            nxt = pending.pop()
            if colour.get(nxt) == grey:
                cycles.append(path[path.index(nxt) :])
            elif colour.get(nxt) == white:
                colour[nxt] = grey
                path.append(nxt)
                stack.append(
                    (nxt, sorted({s for _, s, _ in _links_of(prompt, nxt)}, key=node_sort_key))
                )
    return cycles


def _topological_order(prompt: Mapping, nodes: set[str]) -> list[str]:
    """Kahn's algorithm; among ready nodes the smallest id goes first (stable, readable logs)."""
    deps = {n: {s for _, s, _ in _links_of(prompt, n)} & nodes for n in nodes}
    users: dict[str, set[str]] = {n: set() for n in nodes}
    for n, ds in deps.items():
        for d in ds:
            users[d].add(n)
    ready = [(node_sort_key(n), n) for n, ds in deps.items() if not ds]
    heapq.heapify(ready)
    order = []
    while ready:
        _, n = heapq.heappop(ready)
        order.append(n)
        for user in users[n]:
            deps[user].discard(n)
            if not deps[user]:
                heapq.heappush(ready, (node_sort_key(user), user))
    return order


def _check_node(
    prompt: Mapping, node_id: str, node_classes: Mapping[str, type], plan: Plan
) -> list[ValidationError]:
    node = prompt[node_id]
    class_type = node["class_type"]
    cls = node_classes[class_type]
    specs = input_specs(cls, class_type)
    inputs = node.get("inputs") or {}
    validate_fn = getattr(cls, "VALIDATE_INPUTS", None)
    validate_args, validate_kwargs = (
        accepted_argument_names(validate_fn) if validate_fn else (set(), False)
    )
    errors: list[ValidationError] = []
    literals: dict[str, Any] = {}
    links: dict[str, tuple[str, int]] = {}
    received_types: dict[str, str] = {}

    def err(kind: str, name: str | None, message: str, **details: Any) -> None:
        errors.append(
            ValidationError(
                kind,
                message,
                node_id=node_id,
                class_type=class_type,
                input_name=name,
                details=details,
            )
        )

    for name, spec in specs.items():
        if name not in inputs:
            if spec.required:
                err(
                    "required_input_missing",
                    name,
                    f"required input '{name}' ({spec.type}) is missing: connect it or give a value",
                )
            continue
        value = inputs[name]
        if is_link(value):
            if len(value) != 2 or not isinstance(value[1], int) or isinstance(value[1], bool):
                err(
                    "bad_linked_input",
                    name,
                    f"bad link {short(value)}: must be [source node id, output index]",
                )
                continue
            src, slot = str(value[0]), value[1]
            if src not in prompt:
                err(
                    "bad_linked_input",
                    name,
                    f"linked to node {cut(src)}, which is not in the workflow",
                )
                continue
            src_type = prompt[src].get("class_type")
            src_cls = node_classes.get(src_type)
            if src_cls is None:
                continue  # reported as invalid_prompt on that node
            outs = return_types(src_cls)
            if not 0 <= slot < len(outs):
                err(
                    "bad_linked_input",
                    name,
                    f"linked to output {slot} of node {src} ({src_type}), which has {len(outs)} output(s)",
                )
                continue
            received = output_type_name(outs[slot])
            received_types[name] = received
            if "input_types" not in validate_args and not types_match(outs[slot], spec.type):
                err(
                    "return_type_mismatch",
                    name,
                    f"expects {spec.type} but is linked to output {slot} of node {src} ({src_type}), which gives {received}",
                    received_type=received,
                    expected_type=spec.type,
                )
                continue
            links[name] = (src, slot)
            continue

        if not spec.is_primitive:
            err(
                "invalid_input_type",
                name,
                f"input '{name}' ({spec.type}) takes a link from another node's output, "
                f"not a value; got {short(value)}",
            )
            continue
        if spec.type in ("INT", "FLOAT") and _non_finite(value):
            err(
                "value_not_finite",
                name,
                f"value {short(value)} is not a finite number ({spec.type} inputs take finite "
                "numbers only)",
            )
            continue
        try:
            value = coerce_literal(spec, value)
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            err(
                "invalid_input_type",
                name,
                f"value {short(value)} cannot be converted to {spec.type} ({short(str(exc), 120)})",
            )
            continue
        literals[name] = value
        if name in validate_args or validate_kwargs:
            continue  # the node's own VALIDATE_INPUTS checks this one (ComfyUI semantics)
        if spec.type in ("INT", "FLOAT"):
            low, high = spec.options.get("min"), spec.options.get("max")
            if low is not None and value < low:
                err(
                    "value_smaller_than_min",
                    name,
                    f"value {short(value)} is smaller than the minimum {low}",
                    minimum=low,
                )
            elif high is not None and value > high:
                err(
                    "value_bigger_than_max",
                    name,
                    f"value {short(value)} is bigger than the maximum {high}",
                    maximum=high,
                )
        if spec.is_combo and value not in spec.choices:
            shown = ", ".join(repr(c) for c in spec.choices[:20]) + (
                ", ..." if len(spec.choices) > 20 else ""
            )
            err(
                "value_not_in_list",
                name,
                f"value {short(value)} is not one of the choices: {shown}",
                choices=list(spec.choices),
            )

    if validate_fn is not None and not errors:
        args = {k: v for k, v in literals.items() if validate_kwargs or k in validate_args}
        if "input_types" in validate_args:
            args["input_types"] = received_types
        try:
            verdict = validate_fn(**args)
        except Exception as exc:
            verdict = f"VALIDATE_INPUTS raised {type(exc).__name__}: {exc}"
        if verdict is not True:
            message = (
                str(verdict)
                if isinstance(verdict, str)
                else f"VALIDATE_INPUTS returned {verdict!r}"
            )
            err("custom_validation_failed", None, message)

    plan.literals[node_id] = literals
    plan.links[node_id] = links
    return errors
