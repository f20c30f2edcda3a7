"""Load ComfyUI workflow files (UI or API format) into an API prompt, and lay a prompt out as a UI workflow.

The UI -> API conversion follows what ComfyUI's editor does when it queues a graph
(`graphToPrompt` in the frontend):

- widget values are positional, in the order of the node's widget inputs (INPUT_TYPES required
  then optional; INT, FLOAT, STRING, BOOLEAN and combos, minus `forceInput` ones); a seed-like INT
  widget (`control_after_generate`, or named `seed` / `noise_seed`) is followed by its control value
  ("fixed", "randomize", ...) which is skipped; `widgets_values` given as an object is read by name;
- a linked input wins over its widget value;
- mode 2 (muted) nodes are dropped, and so are the inputs of other nodes linked to them;
- mode 4 (bypassed) nodes are dropped and each consumer of one of their outputs is wired to the
  bypassed node's input of the same type (the input at the same index as the output first,
  then the first input of exactly that type); with none, the consumer's input is dropped; when
  that input is unconnected, the consumer keeps its own widget value;
- `Reroute` passes its input through, `PrimitiveNode` feeds its widget value to its targets,
  `Note` / `MarkdownNote` are ignored;
- links are `[link id, from node, from slot, to node, to slot, type]` (or the newer object form).

Nothing in a file is evaluated: it is JSON, and only class names present in the node mapping
become nodes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ValidationError, WorkflowError, short
from .spec import CONTROL_VALUES, input_specs, is_link, output_type_name, return_types, widget_specs
from .validate import node_sort_key

UI_ONLY_TYPES = frozenset({"Reroute", "PrimitiveNode", "Note", "MarkdownNote"})
_IGNORED_TYPES = frozenset({"Note", "MarkdownNote"})
MODE_MUTED = 2
MODE_BYPASSED = 4

__all__ = ["load_workflow", "read_workflow", "save_workflow", "to_ui_workflow", "workflow_format"]


def _fail(
    source: str,
    message: str,
    node_id: Any = None,
    class_type: str | None = None,
    input_name: str | None = None,
) -> WorkflowError:
    node = None if node_id is None else str(node_id)
    return WorkflowError(
        ValidationError(
            "invalid_prompt", message, node_id=node, class_type=class_type, input_name=input_name
        ),
        source,
    )


def read_workflow(source: str | os.PathLike | Mapping) -> tuple[dict, str]:
    """Parse a workflow file (or take a dict): returns `(data, source name)`; never evaluates anything."""
    if isinstance(source, Mapping):
        return dict(source), "<workflow>"
    if isinstance(source, str) and source.lstrip().startswith("{"):
        text, name = source, "<workflow text>"
    else:
        path = Path(source)
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise _fail(name, "file not found") from None
        except IsADirectoryError:
            raise _fail(name, "is a folder, not a workflow file") from None
        except UnicodeDecodeError:
            raise _fail(name, "not valid JSON (not UTF-8 text)") from None
        except OSError as exc:
            raise _fail(name, f"cannot be read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(
            name, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise _fail(name, f"not a usable workflow: {short(str(exc), 120)}") from None
    except RecursionError:
        raise _fail(name, "not a usable workflow: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise _fail(name, f"a workflow must be a JSON object, got {type(data).__name__}")
    return data, name


def workflow_format(data: Mapping) -> str:
    """ "ui" (editor format: nodes + links), "api" (node id -> {class_type, inputs}) or "unknown"."""
    if "nodes" in data and isinstance(data.get("nodes"), list):
        return "ui"
    if data and all(isinstance(v, Mapping) and "class_type" in v for v in data.values()):
        return "api"
    return "unknown"


def load_workflow(
    source: str | os.PathLike | Mapping,
    node_classes: Mapping[str, type],
    *,
    display_names: Mapping[str, str] | None = None,
) -> dict:
    """Read a workflow in either format and return an API-format prompt.

    Returns `{node_id: {"class_type", "inputs", "_meta": {"title"}}}` (ids are strings, links
    `[source id, output index]`). `display_names` gives default titles for nodes the editor saved
    without one. Raises `WorkflowError` (kind `invalid_prompt`) naming the file and the node or
    link for anything malformed: not JSON, not an object, missing keys, dangling links, unknown
    node types.
    """
    data, name = read_workflow(source)
    kind = workflow_format(data)
    if kind == "ui":
        return _ui_to_api(data, name, node_classes, display_names or {})
    if kind == "api":
        return _normalise_api(data, name, node_classes, display_names or {})
    if "nodes" in data:
        raise _fail(name, "'nodes' must be a list of nodes")
    if data and any(isinstance(v, Mapping) for v in data.values()):
        bad = next(k for k, v in data.items() if not (isinstance(v, Mapping) and "class_type" in v))
        raise _fail(
            name,
            f"not a workflow: entry {bad!r} has no 'class_type' (API format) and there is no 'nodes' list (UI format)",
            node_id=bad,
        )
    raise _fail(
        name,
        "not a ComfyUI workflow: expected 'nodes' and 'links' (UI format) or node ids mapping to {'class_type', 'inputs'} (API format)",
    )


def _normalise_api(
    data: Mapping, name: str, node_classes: Mapping[str, type], display_names: Mapping[str, str]
) -> dict:
    prompt: dict[str, dict] = {}
    errors = []
    for node_id, node in data.items():
        node_id = str(node_id)
        class_type = node.get("class_type")
        if not isinstance(class_type, str) or class_type not in node_classes:
            errors.append(
                ValidationError(
                    "invalid_prompt",
                    f"unknown node type {class_type!r}",
                    node_id=node_id,
                    class_type=str(class_type),
                )
            )
            continue
        inputs = node.get("inputs", {})
        if not isinstance(inputs, Mapping):
            errors.append(
                ValidationError(
                    "invalid_prompt",
                    "'inputs' must be an object",
                    node_id=node_id,
                    class_type=class_type,
                )
            )
            continue
        clean = {}
        for key, value in inputs.items():
            if is_link(value) and len(value) == 2:
                value = [str(value[0]), value[1]]
            clean[str(key)] = value
        meta = node.get("_meta") if isinstance(node.get("_meta"), Mapping) else {}
        title = meta.get("title") or display_names.get(class_type) or class_type
        prompt[node_id] = {
            "class_type": class_type,
            "inputs": clean,
            "_meta": {"title": str(title)},
        }
    if errors:
        raise WorkflowError(errors, name)
    return prompt


# ---------------------------------------------------------------------------------------------
# UI format -> API format


@dataclass(frozen=True)
class _Link:
    id: int
    origin: str
    origin_slot: int
    target: str
    target_slot: int
    type: str


@dataclass(frozen=True)
class _Literal:
    value: Any


_KEEP = object()  # a link that resolves to nothing, leaving the consumer's widget value in place


def _parse_links(raw: Any, name: str) -> dict[int, _Link]:
    if not isinstance(raw, list):
        raise _fail(name, "'links' must be a list")
    links: dict[int, _Link] = {}
    for i, entry in enumerate(raw):
        try:
            if isinstance(entry, Mapping):  # newer serialisation
                fields = (
                    entry["id"],
                    entry["origin_id"],
                    entry["origin_slot"],
                    entry["target_id"],
                    entry["target_slot"],
                    entry.get("type", "*"),
                )
            elif isinstance(entry, list) and len(entry) >= 5:
                fields = (*entry[:5], entry[5] if len(entry) > 5 else "*")
            else:
                raise ValueError
            link_id, origin, origin_slot, target, target_slot, ltype = fields
            if not all(
                isinstance(v, int) and not isinstance(v, bool)
                for v in (link_id, origin_slot, target_slot)
            ):
                raise ValueError
            links[link_id] = _Link(
                link_id, str(origin), origin_slot, str(target), target_slot, output_type_name(ltype)
            )
        except (KeyError, ValueError, TypeError):
            raise _fail(
                name,
                f"link #{i} is malformed: {json.dumps(entry)[:120]} (expected [link_id, from_node, from_slot, to_node, to_slot, type])",
            ) from None
    return links


def _ui_to_api(
    data: Mapping, name: str, node_classes: Mapping[str, type], display_names: Mapping[str, str]
) -> dict:
    if "links" not in data:
        raise _fail(name, "UI-format workflow has no 'links' list")
    definitions = data.get("definitions")
    if definitions is not None and not isinstance(definitions, Mapping):
        raise _fail(name, f"'definitions' must be an object, got {type(definitions).__name__}")
    if definitions and definitions.get("subgraphs"):
        raise _fail(
            name, "subgraphs are not supported headless: convert them back to nodes in the editor"
        )
    links = _parse_links(data["links"], name)

    nodes: dict[str, Mapping] = {}
    errors: list[ValidationError] = []
    for i, node in enumerate(data["nodes"]):
        if (
            not isinstance(node, Mapping)
            or "id" not in node
            or not isinstance(node.get("type"), str)
        ):
            raise _fail(name, f"node #{i} is malformed: every node needs an 'id' and a 'type'")
        node_id = str(node["id"])
        if node_id in nodes:
            raise _fail(name, "two nodes have this id", node_id=node_id)
        nodes[node_id] = node
        if not isinstance(node.get("inputs", []) or [], list) or not isinstance(
            node.get("outputs", []) or [], list
        ):
            raise _fail(
                name,
                "'inputs' and 'outputs' must be lists",
                node_id=node_id,
                class_type=node["type"],
            )
        mode = node.get("mode", 0)
        # A muted or bypassed node never runs, so an unknown type there is harmless.
        if (
            node["type"] not in node_classes
            and node["type"] not in UI_ONLY_TYPES
            and mode not in (MODE_MUTED, MODE_BYPASSED)
        ):
            title = f" ('{node['title']}')" if node.get("title") else ""
            errors.append(
                ValidationError(
                    "invalid_prompt",
                    f"unknown node type {node['type']!r}{title}: not provided by the installed node classes",
                    node_id=node_id,
                    class_type=node["type"],
                )
            )
    if errors:
        raise WorkflowError(errors, name)
    for link in links.values():
        for end in (link.origin, link.target):
            if end not in nodes:
                raise _fail(name, f"link {link.id} connects node {end}, which does not exist")

    prompt: dict[str, dict] = {}
    for node_id in sorted(nodes, key=node_sort_key):
        node = nodes[node_id]
        class_type = node["type"]
        if class_type in UI_ONLY_TYPES or node.get("mode", 0) in (MODE_MUTED, MODE_BYPASSED):
            continue
        specs = input_specs(node_classes[class_type], class_type)
        inputs = _widget_inputs(node, specs, name)
        for slot in node.get("inputs") or []:
            if not isinstance(slot, Mapping) or "name" not in slot:
                raise _fail(
                    name,
                    f"malformed input slot {json.dumps(slot)[:80]}",
                    node_id=node_id,
                    class_type=class_type,
                )
            if not isinstance(slot["name"], str):
                raise _fail(
                    name,
                    f"input slot name {short(slot['name'])} is not text",
                    node_id=node_id,
                    class_type=class_type,
                )
            link_id = slot.get("link")
            if link_id is None:
                continue
            if not _is_link_id(link_id) or link_id not in links:
                raise _fail(
                    name,
                    f"input '{slot['name']}' refers to link {short(link_id)}, which does not exist",
                    node_id,
                    class_type,
                    slot["name"],
                )
            want = slot.get("type")
            if want is None and slot["name"] in specs:
                want = specs[slot["name"]].type
            resolved = _resolve(
                links[link_id], output_type_name(want or links[link_id].type), nodes, links, name
            )
            if resolved is _KEEP:
                continue
            if resolved is None:
                inputs.pop(slot["name"], None)  # fed by a muted node: dropped, as the editor does
            elif isinstance(resolved, _Literal):
                inputs[slot["name"]] = resolved.value
            else:
                inputs[slot["name"]] = [resolved.origin, resolved.origin_slot]
        title = node.get("title") or display_names.get(class_type) or class_type
        prompt[node_id] = {
            "class_type": class_type,
            "inputs": inputs,
            "_meta": {"title": str(title)},
        }
    return prompt


def _widget_inputs(node: Mapping, specs: Mapping, name: str) -> dict[str, Any]:
    """Pair the node's `widgets_values` with its widget inputs (positional, skipping control values)."""
    values = node.get("widgets_values")
    widgets = widget_specs(specs)
    inputs: dict[str, Any] = {}
    if values is None:
        values = []
    if isinstance(values, Mapping):  # some packs save widgets by name
        for spec in widgets:
            inputs[spec.name] = values[spec.name] if spec.name in values else spec.default()
        return inputs
    if not isinstance(values, list):
        raise _fail(
            name, "'widgets_values' must be a list", node_id=node["id"], class_type=node["type"]
        )
    # Files from older editors also hold a value for each `forceInput` primitive (the frontend
    # recognises them by the count and drops those values); read them the same way.
    legacy = [
        s for s in specs.values() if s.is_widget or (s.is_primitive and s.options.get("forceInput"))
    ]
    if len(legacy) > len(widgets) and len(values) == sum(
        2 if s.has_control_value else 1 for s in legacy
    ):
        widgets = legacy
    index = 0
    for spec in widgets:
        if index < len(values):
            if spec.is_widget:
                inputs[spec.name] = values[index]
            index += 1
            # The editor stores "fixed"/"randomize"/... after a seed widget; older files may not.
            if (
                spec.has_control_value
                and index < len(values)
                and isinstance(values[index], str)
                and values[index] in CONTROL_VALUES
            ):
                index += 1
        elif "default" in spec.options or spec.is_combo:
            inputs[spec.name] = spec.default()  # saved by an older version of the node
    return inputs


def _is_link_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _resolve(
    link: _Link, want_type: str, nodes: Mapping[str, Mapping], links: Mapping[int, _Link], name: str
) -> _Link | _Literal | object | None:
    """Follow a link back through Reroutes, bypassed nodes and PrimitiveNodes to its real source.

    Returns the real link, a `_Literal` (a PrimitiveNode's value), `_KEEP` (the path ends at an
    unconnected input: the consumer keeps its widget value, if any) or None (it ends at a muted
    node or at a bypassed node with no input of the type: the consumer's input is dropped).
    """
    seen: set[int] = set()
    while True:
        if link.id in seen:
            raise _fail(
                name,
                f"links {sorted(seen)} loop through Reroute or bypassed nodes",
                node_id=link.target,
            )
        seen.add(link.id)
        source = nodes[link.origin]
        stype, mode = source["type"], source.get("mode", 0)
        if stype == "PrimitiveNode":
            values = source.get("widgets_values")
            if values is not None and not isinstance(values, list):
                raise _fail(
                    name,
                    f"PrimitiveNode's 'widgets_values' must be a list, got {short(values)}",
                    source["id"],
                    stype,
                )
            return _Literal(values[0]) if values else _KEEP
        if stype in _IGNORED_TYPES or mode == MODE_MUTED:
            return None
        if stype == "Reroute" or mode == MODE_BYPASSED:
            slots = source.get("inputs") or []
            if stype == "Reroute":
                candidates = [0]
            else:  # the input at the output's index first, then any input of exactly that type
                candidates = [link.origin_slot, *range(len(slots))]
            chosen = None
            for index in candidates:
                if (
                    0 <= index < len(slots)
                    and isinstance(slots[index], Mapping)
                    and (
                        stype == "Reroute"
                        or output_type_name(slots[index].get("type")) == want_type
                    )
                ):
                    chosen = slots[index]
                    break
            if chosen is None:
                return None
            if chosen.get("link") is None:
                return _KEEP
            if not _is_link_id(chosen["link"]) or chosen["link"] not in links:
                raise _fail(
                    name,
                    f"input {short(chosen.get('name'))} refers to link {short(chosen['link'])}, "
                    "which does not exist",
                    source["id"],
                    stype,
                )
            link = links[chosen["link"]]
            continue
        return link


# ---------------------------------------------------------------------------------------------
# API format -> UI format

_COLUMN_WIDTH = 400
_NODE_WIDTH = 320
_SLOT_HEIGHT = 22
_WIDGET_HEIGHT = 26
_TITLE_HEIGHT = 30
_GAP = 40


def to_ui_workflow(
    prompt: Mapping,
    node_classes: Mapping[str, type],
    *,
    display_names: Mapping[str, str] | None = None,
) -> dict:
    """Lay out an API prompt as a UI-format workflow the editor opens (format version 0.4).

    Nodes are placed in columns by topological depth; widget values are written positionally
    (a seed-like INT widget gets the control value "fixed"); a widget input that is linked gets an
    input slot (`"widget": {"name": ...}`). Numeric node ids are kept (others are renumbered), so
    `load_workflow(to_ui_workflow(p))` equals `p` for a prompt that sets every widget input.
    Raises `WorkflowError` for unknown node types, dangling links, cycles, or a literal given to
    an input that has no widget (the UI format cannot hold it).
    """
    display_names = display_names or {}
    errors: list[ValidationError] = []
    for node_id, node in prompt.items():
        if not isinstance(node, Mapping) or node.get("class_type") not in node_classes:
            ctype = node.get("class_type") if isinstance(node, Mapping) else None
            errors.append(
                ValidationError(
                    "invalid_prompt",
                    f"unknown node type {ctype!r}",
                    node_id=str(node_id),
                    class_type=ctype,
                )
            )
    if errors:
        raise WorkflowError(errors)

    ids = sorted((str(k) for k in prompt), key=node_sort_key)
    if all(i.isdigit() for i in ids):
        ui_id = {i: int(i) for i in ids}
    else:
        ui_id = {i: n for n, i in enumerate(ids, start=1)}

    def upstream(node_id: str) -> list[tuple[str, str, int]]:
        found = []
        for key, value in (prompt[node_id].get("inputs") or {}).items():
            if is_link(value):
                if len(value) != 2 or str(value[0]) not in prompt:
                    raise WorkflowError(
                        ValidationError(
                            "bad_linked_input",
                            f"link {value!r} points at no node",
                            node_id=node_id,
                            class_type=prompt[node_id]["class_type"],
                            input_name=key,
                        )
                    )
                found.append((key, str(value[0]), int(value[1])))
        return found

    depth: dict[str, int] = {}

    def depth_of(node_id: str, trail: tuple[str, ...] = ()) -> int:
        if node_id in depth:
            return depth[node_id]
        if node_id in trail:
            raise WorkflowError(
                ValidationError(
                    "dependency_cycle", f"nodes {' -> '.join(trail)} form a cycle", node_id=node_id
                )
            )
        depth[node_id] = 1 + max(
            (depth_of(src, (*trail, node_id)) for _, src, _ in upstream(node_id)), default=-1
        )
        return depth[node_id]

    for node_id in ids:
        depth_of(node_id)

    links: list[list] = []
    out_links: dict[tuple[str, int], list[int]] = {}
    ui_nodes: dict[str, dict] = {}
    for node_id in ids:
        node = prompt[node_id]
        class_type = node["class_type"]
        cls = node_classes[class_type]
        specs = input_specs(cls, class_type)
        inputs = node.get("inputs") or {}
        slots, widgets_values = [], []
        for spec in specs.values():
            value = inputs.get(spec.name)
            if spec.is_widget:
                widgets_values.append(
                    spec.default() if spec.name not in inputs or is_link(value) else value
                )
                if spec.has_control_value:
                    widgets_values.append("fixed")
            elif spec.name in inputs and not is_link(value):
                raise WorkflowError(
                    ValidationError(
                        "invalid_prompt",
                        f"a literal value cannot be stored for input '{spec.name}' ({spec.type}): it has no widget in the editor",
                        node_id=node_id,
                        class_type=class_type,
                        input_name=spec.name,
                    )
                )
            if is_link(value) or not spec.is_widget:
                slot: dict[str, Any] = {"name": spec.name, "type": spec.type, "link": None}
                if spec.is_widget:
                    slot["widget"] = {"name": spec.name}
                slots.append(slot)
        # Linked inputs the node does not declare (kept so nothing is lost).
        for key, value in inputs.items():
            if key not in specs and is_link(value):
                src = prompt[str(value[0])]
                outs = return_types(node_classes[src["class_type"]])
                ltype = output_type_name(outs[value[1]]) if 0 <= value[1] < len(outs) else "*"
                slots.append({"name": key, "type": ltype, "link": None})
        for target_slot, slot in enumerate(slots):
            value = inputs.get(slot["name"])
            if not is_link(value):
                continue
            src, src_slot = str(value[0]), int(value[1])
            link_id = len(links) + 1
            slot["link"] = link_id
            links.append([link_id, ui_id[src], src_slot, ui_id[node_id], target_slot, slot["type"]])
            out_links.setdefault((src, src_slot), []).append(link_id)
        outs = return_types(cls)
        names = tuple(getattr(cls, "RETURN_NAMES", ()) or ())
        outputs = [
            {
                "name": names[i] if i < len(names) else output_type_name(t),
                "type": output_type_name(t),
                "links": [],
                "slot_index": i,
            }
            for i, t in enumerate(outs)
        ]
        rows = max(len(slots), len(outputs))
        n_widgets = sum(1 for s in specs.values() if s.is_widget) + sum(
            1 for s in specs.values() if s.is_widget and s.has_control_value
        )
        title = (
            (node.get("_meta") or {}).get("title") or display_names.get(class_type) or class_type
        )
        ui_nodes[node_id] = {
            "id": ui_id[node_id],
            "type": class_type,
            "title": str(title),
            "pos": [0, 0],
            "size": [
                _NODE_WIDTH,
                _TITLE_HEIGHT + rows * _SLOT_HEIGHT + n_widgets * _WIDGET_HEIGHT + 10,
            ],
            "flags": {},
            "order": 0,
            "mode": 0,
            "inputs": slots,
            "outputs": outputs,
            "properties": {"Node name for S&R": class_type},
            "widgets_values": widgets_values,
        }
    for (src, src_slot), link_ids in out_links.items():
        outputs = ui_nodes[src]["outputs"]
        if not 0 <= src_slot < len(outputs):
            raise WorkflowError(
                ValidationError(
                    "bad_linked_input",
                    f"output {src_slot} does not exist on node {src}",
                    node_id=src,
                    class_type=prompt[src]["class_type"],
                )
            )
        outputs[src_slot]["links"] = link_ids

    # Columns by depth; within a column, stacked in id order. `order` is the execution order.
    column_y: dict[int, float] = {}
    for order, node_id in enumerate(sorted(ids, key=lambda i: (depth[i], node_sort_key(i)))):
        col = depth[node_id]
        y = column_y.get(col, 50.0)
        ui_nodes[node_id]["pos"] = [50 + col * _COLUMN_WIDTH, y]
        ui_nodes[node_id]["order"] = order
        column_y[col] = y + ui_nodes[node_id]["size"][1] + _GAP

    return {
        "last_node_id": max(ui_id.values(), default=0),
        "last_link_id": len(links),
        "nodes": [ui_nodes[i] for i in ids],
        "links": links,
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 1.0, "offset": [0, 0]}},
        "version": 0.4,
    }


def save_workflow(
    path: str | os.PathLike,
    workflow: Mapping,
    node_classes: Mapping[str, type] | None = None,
    *,
    display_names: Mapping[str, str] | None = None,
) -> Path:
    """Write a workflow as pretty JSON. An API prompt is laid out in UI format first (needs `node_classes`)."""
    data = dict(workflow)
    if workflow_format(data) == "api":
        if node_classes is None:
            raise ValueError(
                "save_workflow needs node_classes to lay out an API prompt as a UI workflow"
            )
        data = to_ui_workflow(data, node_classes, display_names=display_names)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path
