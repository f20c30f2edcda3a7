"""The headless engine: workflow loading (UI/API), validation, execution + cache, and the CLI.

Built against small V1-API node classes defined here, then checked against the pack's real
`NODE_CLASS_MAPPINGS` and every shipped `workflows/*.json`.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from motionsight import comfy_bridge
from motionsight.engine import (
    Executor,
    NodeExecutionError,
    WorkflowError,
    apply_overrides,
    load_workflow,
    run_workflow,
    save_workflow,
    to_ui_workflow,
    validate_prompt,
)
from motionsight.engine.cli import main

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------
# Small node classes (the classic V1 API)


class MakeNumber:
    CATEGORY = "test"
    RETURN_TYPES = ("NUMBER",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "value": ("INT", {"default": 1, "min": 0, "max": 100}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**32}),
            },
            "optional": {"scale": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0})},
        }

    def make(self, value, seed, scale=1.0):
        return (value * scale,)


class Add:
    RETURN_TYPES = ("NUMBER",)
    FUNCTION = "add"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"a": ("NUMBER",), "b": ("NUMBER",)}, "optional": {"c": ("NUMBER",)}}

    def add(self, a, b, c=None):
        return (a + b + (c or 0),)


class Double:
    RETURN_TYPES = ("NUMBER",)
    FUNCTION = "double"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"number": ("NUMBER",)}}

    def double(self, number):
        return (2 * number,)


class Format:
    RETURN_TYPES = ("STRING",)
    FUNCTION = "format"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "number": ("NUMBER",),
                "style": (["plain", "fancy"],),
                "prefix": ("STRING", {"default": "n="}),
            },
            "optional": {"suffix": ("STRING", {"forceInput": True})},
        }

    def format(self, number, style, prefix, suffix=""):
        text = f"{prefix}{number}{suffix}"
        return (f"*{text}*" if style == "fancy" else text,)


class Show:
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING",)
    FUNCTION = "show"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"text": ("STRING", {"forceInput": True})},
            "hidden": {"unique_id": "UNIQUE_ID", "prompt": "PROMPT"},
        }

    def show(self, text, unique_id, prompt):
        return {
            "ui": {"text": [text], "node": [unique_id], "nodes_in_prompt": [len(prompt)]},
            "result": (text,),
        }


class Volatile:
    RETURN_TYPES = ("NUMBER",)
    FUNCTION = "get"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"x": ("INT", {"default": 1})}}

    @classmethod
    def IS_CHANGED(cls, x):
        return float("nan")

    def get(self, x):
        return (x,)


class Stable(Volatile):
    @classmethod
    def IS_CHANGED(cls, x):
        return "same"


class Boom:
    RETURN_TYPES = ("NUMBER",)
    FUNCTION = "explode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"number": ("NUMBER",)}}

    def explode(self, number):
        raise ValueError(f"cannot handle {number}")


class CheckedText:
    RETURN_TYPES = ("STRING",)
    FUNCTION = "get"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "path": ("STRING", {"default": "a.txt"}),
                "count": ("INT", {"default": 1, "min": 1, "max": 3}),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, path):
        return True if ".." not in path else f"path {path!r} must not contain '..'"

    def get(self, path, count):
        return (path * count,)


class MakeImage:
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def make(self):
        return ("pixels",)


class Range:
    RETURN_TYPES = ("NUMBER",)
    OUTPUT_IS_LIST = (True,)
    FUNCTION = "range"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"n": ("INT", {"default": 3, "min": 0})}}

    def range(self, n):
        return (list(range(n)),)


class Sum:
    RETURN_TYPES = ("NUMBER",)
    INPUT_IS_LIST = True
    FUNCTION = "sum"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"numbers": ("NUMBER",)}}

    def sum(self, numbers):
        return (sum(numbers),)


NODES = {
    cls.__name__: cls
    for cls in (
        MakeNumber,
        Add,
        Double,
        Format,
        Show,
        Volatile,
        Stable,
        Boom,
        CheckedText,
        MakeImage,
        Range,
        Sum,
    )
}


@pytest.fixture(autouse=True)
def _reset_bridge_folders():
    yield
    comfy_bridge.set_output_directory(None)
    comfy_bridge.set_input_directory(None)


def api_prompt() -> dict:
    """(5 * 2.0) + 3 -> "n=13.0" shown: the API prompt the UI workflow below converts to."""
    return {
        "1": {
            "class_type": "MakeNumber",
            "inputs": {"value": 5, "seed": 42, "scale": 2.0},
            "_meta": {"title": "First number"},
        },
        "2": {
            "class_type": "MakeNumber",
            "inputs": {"value": 3, "seed": 0, "scale": 1.0},
            "_meta": {"title": "MakeNumber"},
        },
        "3": {
            "class_type": "Add",
            "inputs": {"a": ["1", 0], "b": ["2", 0]},
            "_meta": {"title": "Add"},
        },
        "4": {
            "class_type": "Format",
            "inputs": {"number": ["3", 0], "style": "plain", "prefix": "n="},
            "_meta": {"title": "Format"},
        },
        "6": {"class_type": "Show", "inputs": {"text": ["4", 0]}, "_meta": {"title": "Show"}},
    }


def ui_workflow() -> dict:
    """As the editor saves it: a seed control value, a Reroute, a bypassed and a muted node, a
    PrimitiveNode driving a combo widget, a Note."""

    def node(id, type, inputs=(), outputs=(), widgets=None, mode=0, **extra):
        return {
            "id": id,
            "type": type,
            "pos": [0, 0],
            "size": [300, 100],
            "flags": {},
            "order": 0,
            "mode": mode,
            "inputs": list(inputs),
            "outputs": list(outputs),
            "properties": {},
            "widgets_values": widgets if widgets is not None else [],
            **extra,
        }

    num = lambda links: {"name": "NUMBER", "type": "NUMBER", "links": links, "slot_index": 0}  # noqa: E731
    return {
        "last_node_id": 11,
        "last_link_id": 8,
        "nodes": [
            node(
                1,
                "MakeNumber",
                outputs=[num([1])],
                widgets=[5, 42, "randomize", 2.0],
                title="First number",
            ),
            node(2, "MakeNumber", outputs=[num([2])], widgets=[3, 0, "fixed", 1.0]),
            node(
                10,
                "Reroute",
                inputs=[{"name": "", "type": "*", "link": 2}],
                outputs=[{"name": "", "type": "NUMBER", "links": [3]}],
            ),
            node(
                3,
                "Add",
                inputs=[
                    {"name": "a", "type": "NUMBER", "link": 1},
                    {"name": "b", "type": "NUMBER", "link": 3},
                    {"name": "c", "type": "NUMBER", "link": None},
                ],
                outputs=[num([4, 8])],
            ),
            node(
                5,
                "Double",
                inputs=[{"name": "number", "type": "NUMBER", "link": 4}],
                outputs=[num([5])],
                mode=4,
            ),
            node(
                4,
                "Format",
                inputs=[
                    {"name": "number", "type": "NUMBER", "link": 5},
                    {"name": "style", "type": "COMBO", "widget": {"name": "style"}, "link": 7},
                ],
                outputs=[{"name": "STRING", "type": "STRING", "links": [6], "slot_index": 0}],
                widgets=["fancy", "n="],
            ),
            node(
                7,
                "PrimitiveNode",
                outputs=[
                    {"name": "COMBO", "type": "COMBO", "links": [7], "widget": {"name": "style"}}
                ],
                widgets=["plain"],
            ),
            node(
                6,
                "Show",
                inputs=[{"name": "text", "type": "STRING", "link": 6}],
                outputs=[{"name": "STRING", "type": "STRING", "links": None}],
            ),
            node(
                9,
                "Boom",
                inputs=[{"name": "number", "type": "NUMBER", "link": 8}],
                outputs=[num([])],
                mode=2,
            ),
            node(11, "Note", widgets=["remember to set the seed"]),
        ],
        "links": [
            [1, 1, 0, 3, 0, "NUMBER"],
            [2, 2, 0, 10, 0, "NUMBER"],
            [3, 10, 0, 3, 1, "NUMBER"],
            [4, 3, 0, 5, 0, "NUMBER"],
            [5, 5, 0, 4, 0, "NUMBER"],
            [6, 4, 0, 6, 0, "STRING"],
            [7, 7, 0, 4, 1, "COMBO"],
            [8, 3, 0, 9, 0, "NUMBER"],
        ],
        "groups": [],
        "config": {},
        "extra": {},
        "version": 0.4,
    }


def kinds(errors) -> list[str]:
    return [e.kind for e in errors]


# --------------------------------------------------------------------------------------------
# Loading


def test_ui_format_converts_like_the_editor():
    assert load_workflow(ui_workflow(), NODES) == api_prompt()


def test_api_format_loads_from_file_and_normalises_ids(tmp_path):
    prompt = api_prompt()
    prompt["3"]["inputs"]["a"] = [1, 0]  # ids as numbers are accepted
    path = tmp_path / "api.json"
    path.write_text(json.dumps(prompt))
    assert load_workflow(path, NODES) == api_prompt()
    assert load_workflow(str(path), NODES) == api_prompt()


def test_ui_default_titles_come_from_display_names():
    prompt = load_workflow(ui_workflow(), NODES, display_names={"MakeNumber": "Make a number"})
    assert prompt["1"]["_meta"]["title"] == "First number"  # saved title wins
    assert prompt["2"]["_meta"]["title"] == "Make a number"


def test_seed_without_control_value_and_widgets_by_name():
    ui = ui_workflow()
    ui["nodes"][1]["widgets_values"] = [3, 0, 1.0]  # an older file: no control value stored
    ui["nodes"][0]["widgets_values"] = {"value": 5, "seed": 42, "scale": 2.0}
    assert load_workflow(ui, NODES) == api_prompt()


def test_legacy_values_for_force_input_widgets_are_skipped():
    ui = ui_workflow()
    format_node = next(n for n in ui["nodes"] if n["id"] == 4)
    format_node["widgets_values"] = [
        "fancy",
        "n=",
        "ignored suffix",
    ]  # style, prefix, suffix (forceInput)
    assert load_workflow(ui, NODES) == api_prompt()


def test_linked_widget_keeps_its_slot_but_the_link_wins():
    ui = ui_workflow()
    # Format's style widget slot still holds "fancy"; prefix comes right after it.
    prompt = load_workflow(ui, NODES)
    assert prompt["4"]["inputs"]["style"] == "plain" and prompt["4"]["inputs"]["prefix"] == "n="


def test_bypass_without_matching_input_and_muted_source_drop_the_input():
    ui = ui_workflow()
    for n in ui["nodes"]:
        if n["id"] == 10:
            n["mode"] = 2  # mute the Reroute's source path: Add.b loses its link
        if n["id"] == 2:
            n["mode"] = 2
    prompt = load_workflow(ui, NODES)
    assert "b" not in prompt["3"]["inputs"] and "2" not in prompt
    assert kinds(validate_prompt(prompt, NODES)) == ["required_input_missing"]
    # Bypassing Format: it has no STRING input to pass through, so Show.text is left unconnected.
    ui = ui_workflow()
    next(n for n in ui["nodes"] if n["id"] == 4)["mode"] = 4
    prompt = load_workflow(ui, NODES)
    assert "4" not in prompt and prompt["6"]["inputs"] == {}
    errors = validate_prompt(prompt, NODES)
    assert kinds(errors) == ["required_input_missing"] and errors[0].node_id == "6"


@pytest.mark.parametrize(
    "checked_inputs, prefix",
    [
        ([], None),
        ([{"name": "path", "type": "STRING", "widget": {"name": "path"}, "link": None}], "n="),
    ],
)
def test_bypassed_widget_source(checked_inputs, prefix):
    """A bypassed source with no STRING input drops Format.prefix; with an unconnected one the widget value stays."""
    ui = ui_workflow()
    ui["nodes"].append(
        {
            "id": 12,
            "type": "CheckedText",
            "mode": 4,
            "inputs": checked_inputs,
            "outputs": [{"name": "STRING", "type": "STRING", "links": [9]}],
            "widgets_values": ["x", 1],
        }
    )
    fmt = next(n for n in ui["nodes"] if n["id"] == 4)
    fmt["inputs"].append(
        {"name": "prefix", "type": "STRING", "widget": {"name": "prefix"}, "link": 9}
    )
    ui["links"].append([9, 12, 0, 4, 2, "STRING"])
    assert load_workflow(ui, NODES)["4"]["inputs"].get("prefix") == prefix


def test_round_trip_api_ui_api_is_identity(tmp_path):
    prompt = api_prompt()
    ui = to_ui_workflow(prompt, NODES)
    assert ui["version"] == 0.4 and ui["last_node_id"] == 6 and ui["last_link_id"] == 4
    by_id = {n["id"]: n for n in ui["nodes"]}
    assert by_id[1]["widgets_values"] == [5, 42, "fixed", 2.0]
    assert by_id[4]["widgets_values"] == ["plain", "n="]
    assert [s["name"] for s in by_id[3]["inputs"]] == ["a", "b", "c"]
    assert by_id[3]["inputs"][2]["link"] is None
    assert by_id[3]["pos"][0] > by_id[1]["pos"][0]  # a later topological column
    for link_id, src, src_slot, dst, dst_slot, ltype in ui["links"]:
        assert link_id in by_id[src]["outputs"][src_slot]["links"]
        assert by_id[dst]["inputs"][dst_slot]["link"] == link_id
        assert by_id[dst]["inputs"][dst_slot]["type"] == ltype
    assert load_workflow(ui, NODES) == prompt
    # UI -> API -> UI -> API, through files
    path = save_workflow(tmp_path / "wf.json", load_workflow(ui_workflow(), NODES), NODES)
    assert load_workflow(path, NODES) == api_prompt()


def test_non_numeric_ids_are_renumbered_consistently():
    prompt = {k.replace("1", "first").replace("3", "add"): v for k, v in api_prompt().items()}
    prompt["add"]["inputs"]["a"] = ["first", 0]
    prompt["4"]["inputs"]["number"] = ["add", 0]
    back = load_workflow(to_ui_workflow(prompt, NODES), NODES)
    assert sorted(back) == ["1", "2", "3", "4", "5"]
    assert Executor(NODES, quiet=True).run(back).output("Show").result == ("n=13.0",)


def test_round_trip_keeps_a_linked_widget_input():
    prompt = api_prompt()
    prompt["7"] = {
        "class_type": "CheckedText",
        "inputs": {"path": "x", "count": 2},
        "_meta": {"title": "Checked"},
    }
    prompt["4"]["inputs"]["prefix"] = ["7", 0]  # a widget input driven by a link
    ui = to_ui_workflow(prompt, NODES)
    slot = next(
        s for n in ui["nodes"] if n["id"] == 4 for s in n["inputs"] if s["name"] == "prefix"
    )
    assert slot["widget"] == {"name": "prefix"} and slot["link"] is not None
    assert load_workflow(ui, NODES) == prompt


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (
            lambda ui: ui["nodes"].append({"id": 20, "type": "NoSuchNode", "mode": 0}),
            "unknown node type 'NoSuchNode'",
        ),
        (lambda ui: ui["nodes"][3]["inputs"][0].update(link=99), "refers to link 99"),
        (lambda ui: ui["links"].append([30, 77, 0, 3, 2, "NUMBER"]), "link 30 connects node 77"),
        (lambda ui: ui["links"].append("oops"), "link #8 is malformed"),
        (lambda ui: ui.pop("links"), "no 'links'"),
        (lambda ui: ui["nodes"].append({"type": "Add"}), "node #10 is malformed"),
    ],
)
def test_malformed_ui_workflows_name_the_problem(mutate, needle, tmp_path):
    ui = ui_workflow()
    mutate(ui)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(ui))
    with pytest.raises(WorkflowError) as info:
        load_workflow(path, NODES)
    assert info.value.kinds == ["invalid_prompt"]
    assert needle in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"1": {"inputs": {}}}', "has no 'class_type'"),
        ('{"1": {"class_type": "Nope", "inputs": {}}}', "unknown node type 'Nope'"),
        ("{}", "not a ComfyUI workflow"),
    ],
)
def test_malformed_files_are_invalid_prompt(text, needle, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(WorkflowError) as info:
        load_workflow(path, NODES)
    assert info.value.kinds == ["invalid_prompt"] and needle in str(info.value)
    with pytest.raises(WorkflowError, match="file not found"):
        load_workflow(tmp_path / "missing.json", NODES)


# --------------------------------------------------------------------------------------------
# Validation


def _with(changes: dict) -> dict:
    prompt = api_prompt()
    for node_id, node in changes.items():
        if node is None:
            del prompt[node_id]
        elif "class_type" in node:
            prompt[node_id] = {"_meta": {"title": node["class_type"]}, **node}
        else:
            prompt[node_id]["inputs"].update(node)
    return prompt


def test_valid_prompt_has_no_errors():
    assert validate_prompt(api_prompt(), NODES) == []


@pytest.mark.parametrize(
    "changes, kind, node, input_name",
    [
        ({"9": {"class_type": "Nope", "inputs": {}}}, "invalid_prompt", "9", None),
        (
            {"3": {"class_type": "Add", "inputs": {"a": ["1", 0]}}},
            "required_input_missing",
            "3",
            "b",
        ),
        (
            {"8": {"class_type": "MakeImage", "inputs": {}}, "4": {"number": ["8", 0]}},
            "return_type_mismatch",
            "4",
            "number",
        ),
        ({"1": {"value": 101}}, "value_bigger_than_max", "1", "value"),
        ({"1": {"scale": -0.5}}, "value_smaller_than_min", "1", "scale"),
        ({"4": {"style": "bold"}}, "value_not_in_list", "4", "style"),
        ({"1": {"value": "five"}}, "invalid_input_type", "1", "value"),
        ({"3": {"b": ["99", 0]}}, "bad_linked_input", "3", "b"),
        ({"3": {"b": ["2", 3]}}, "bad_linked_input", "3", "b"),
        ({"3": {"b": ["2", 0, 1]}}, "bad_linked_input", "3", "b"),
        (
            {
                "7": {"class_type": "CheckedText", "inputs": {"path": "../etc", "count": 1}},
                "6": {"text": ["7", 0]},
            },
            "custom_validation_failed",
            "7",
            None,
        ),
    ],
)
def test_validation_error_kinds(changes, kind, node, input_name):
    errors = validate_prompt(_with(changes), NODES)
    assert kinds(errors) == [kind], errors
    assert errors[0].node_id == node and errors[0].input_name == input_name
    assert errors[0].class_type and errors[0].message


def test_literals_are_coerced_and_custom_validation_sees_only_literals():
    prompt = _with(
        {
            "1": {"value": "7", "scale": "0.5"},
            "7": {"class_type": "CheckedText", "inputs": {"path": 12, "count": "2"}},
            "6": {"text": ["7", 0]},
        }
    )
    assert validate_prompt(prompt, NODES) == []
    result = Executor(NODES, quiet=True).run(prompt)
    assert result.output("6").ui["text"] == ["1212"]
    # count is checked by the engine (not named by VALIDATE_INPUTS), path by the node itself
    assert kinds(
        validate_prompt(
            _with(
                {
                    "7": {"class_type": "CheckedText", "inputs": {"path": "a", "count": 9}},
                    "6": {"text": ["7", 0]},
                }
            ),
            NODES,
        )
    ) == ["value_bigger_than_max"]


def test_validate_inputs_with_kwargs_takes_over_every_builtin_check():
    class Lenient(CheckedText):
        @classmethod
        def VALIDATE_INPUTS(cls, **kwargs):
            return True if kwargs["count"] < 10 else "count must stay below 10"

    nodes = {**NODES, "Lenient": Lenient}
    prompt = _with(
        {
            "7": {"class_type": "Lenient", "inputs": {"path": "a", "count": 5}},
            "6": {"text": ["7", 0]},
        }
    )
    assert validate_prompt(prompt, nodes) == []  # max 3 is not enforced, as in ComfyUI
    prompt["7"]["inputs"]["count"] = 10
    errors = validate_prompt(prompt, nodes)
    assert (
        kinds(errors) == ["custom_validation_failed"]
        and errors[0].message == "count must stay below 10"
    )


def test_cycle_is_reported_with_its_nodes():
    prompt = _with(
        {"3": {"b": ["5", 0]}, "5": {"class_type": "Double", "inputs": {"number": ["3", 0]}}}
    )
    errors = validate_prompt(prompt, NODES)
    assert kinds(errors) == ["dependency_cycle"]
    assert (
        sorted(errors[0].details["nodes"]) == ["3", "5"]
        and "3" in errors[0].message
        and "5" in errors[0].message
    )


def test_no_output_node_and_errors_outside_the_output_branch():
    assert kinds(validate_prompt(_with({"6": None}), NODES)) == ["prompt_no_outputs"]
    # A broken node that feeds no output is not validated (ComfyUI semantics) and never runs.
    assert (
        validate_prompt(_with({"8": {"class_type": "Add", "inputs": {"a": ["1", 0]}}}), NODES) == []
    )


def test_workflow_error_lists_every_problem():
    prompt = _with({"1": {"value": 500}, "4": {"style": "bold"}})
    with pytest.raises(WorkflowError) as info:
        Executor(NODES, quiet=True).run(prompt)
    text = str(info.value)
    assert info.value.kinds == ["value_bigger_than_max", "value_not_in_list"]
    assert (
        "2 problems" in text and "node 1 (MakeNumber), input 'value'" in text and "'bold'" in text
    )


# --------------------------------------------------------------------------------------------
# Execution


def test_runs_in_topological_order_and_prunes_nodes_that_feed_no_output():
    prompt = _with(
        {"8": {"class_type": "MakeNumber", "inputs": {"value": 1, "seed": 0}}}
    )  # feeds nothing
    executor = Executor(NODES, quiet=True)
    result = executor.run(prompt)
    assert sorted(result.executed) == ["1", "2", "3", "4", "6"] and "8" not in result.executed
    pos = {n: result.executed.index(n) for n in result.executed}
    assert pos["1"] < pos["3"] and pos["2"] < pos["3"] < pos["4"] < pos["6"]
    out = result.output("Show")
    assert (out.node_id, out.class_type, out.title) == ("6", "Show", "Show")
    assert out.ui == {
        "text": ["n=13.0"],
        "node": ["6"],
        "nodes_in_prompt": [6],
    }  # hidden UNIQUE_ID, PROMPT
    assert out.result == ("n=13.0",)


def test_cache_reruns_only_the_changed_node_and_its_dependents():
    executor = Executor(NODES, quiet=True)
    assert len(executor.run(api_prompt()).executed) == 5
    assert executor.run(api_prompt()).executed == []  # nothing changed
    changed = _with({"2": {"value": 4}})
    result = executor.run(changed)
    assert result.executed == ["2", "3", "4", "6"] and "1" in result.cached
    assert result.output("6").ui["text"] == ["n=14.0"]
    assert executor.execution_counts["MakeNumber"] == 3 and executor.execution_counts["Add"] == 2
    # a changed widget downstream leaves the upstream cached
    assert executor.run(_with({"2": {"value": 4}, "4": {"prefix": "v="}})).executed == ["4", "6"]


def test_identical_nodes_run_once():
    prompt = _with({"2": {"value": 5, "seed": 42, "scale": 2.0}})  # node 2 now equals node 1
    result = Executor(NODES, quiet=True).run(prompt)
    assert result.executed == ["1", "3", "4", "6"] and result.cached == ["2"]
    assert result.output("6").result == ("n=20.0",)


def test_cache_keeps_only_the_latest_run():
    executor = Executor(NODES, quiet=True)
    executor.run(api_prompt())
    executor.run(_with({"2": {"value": 4}}))
    # the value-3 entry was dropped: going back recomputes node 2 (and its dependents)
    assert executor.run(api_prompt()).executed == ["2", "3", "4", "6"]


def test_early_cutoff_dependents_of_a_rerun_node_rerun_only_when_its_value_changed():
    executor = Executor(NODES, quiet=True)
    executor.run(api_prompt())
    # node 2 with another literal re-runs; node 3 gets a new number, so it and what follows re-run
    assert executor.run(_with({"2": {"value": 4}})).executed == ["2", "3", "4", "6"]


def test_is_changed_nan_forces_a_rerun():
    prompt = {
        "1": {"class_type": "Volatile", "inputs": {"x": 2}, "_meta": {"title": "v"}},
        "2": {
            "class_type": "Format",
            "inputs": {"number": ["1", 0], "style": "plain", "prefix": ""},
            "_meta": {"title": "f"},
        },
        "3": {"class_type": "Show", "inputs": {"text": ["2", 0]}, "_meta": {"title": "s"}},
    }
    executor = Executor(NODES, quiet=True)
    executor.run(prompt)
    # the volatile node re-runs; it returned the same plain value, so its dependents stay cached
    assert executor.run(prompt).executed == ["1"]
    prompt["1"]["class_type"] = "Stable"
    executor.run(prompt)
    assert executor.run(prompt).executed == []
    assert executor.execution_counts["Volatile"] == 2 and executor.execution_counts["Stable"] == 1


def test_list_outputs_map_over_downstream_nodes():
    prompt = {
        "1": {"class_type": "Range", "inputs": {"n": 3}, "_meta": {"title": "r"}},
        "2": {"class_type": "Double", "inputs": {"number": ["1", 0]}, "_meta": {"title": "d"}},
        "3": {
            "class_type": "Format",
            "inputs": {"number": ["2", 0], "style": "plain", "prefix": "#"},
            "_meta": {"title": "f"},
        },
        "4": {"class_type": "Show", "inputs": {"text": ["3", 0]}, "_meta": {"title": "s"}},
        "5": {"class_type": "Sum", "inputs": {"numbers": ["2", 0]}, "_meta": {"title": "sum"}},
        "6": {
            "class_type": "Format",
            "inputs": {"number": ["5", 0], "style": "plain", "prefix": "sum="},
            "_meta": {"title": "f2"},
        },
        "7": {"class_type": "Show", "inputs": {"text": ["6", 0]}, "_meta": {"title": "s2"}},
    }
    executor = Executor(NODES, quiet=True)
    result = executor.run(prompt)
    assert result.output("4").ui["text"] == ["#0", "#2", "#4"]  # ui lists merged over 3 calls
    assert result.output("4").result == (["#0", "#2", "#4"],)
    assert result.output("7").ui["text"] == ["sum=6"]  # INPUT_IS_LIST: one call with the list
    assert executor.execution_counts["Double"] == 1  # one node execution, three calls
    prompt["1"]["inputs"]["n"] = 0  # an empty list: mapped nodes run zero times
    assert executor.run(prompt).output("4").ui == {}


def test_runtime_error_names_the_node_and_keeps_the_cause():
    prompt = _with(
        {"5": {"class_type": "Boom", "inputs": {"number": ["3", 0]}}, "4": {"number": ["5", 0]}}
    )
    prompt["5"]["_meta"]["title"] = "Exploder"
    executor = Executor(NODES, quiet=True)
    with pytest.raises(NodeExecutionError) as info:
        executor.run(prompt)
    err = info.value
    assert (err.node_id, err.class_type, err.exception_type) == ("5", "Boom", "ValueError")
    assert str(err) == "node 5 'Exploder' (Boom) failed: ValueError: cannot handle 13.0"
    assert isinstance(err.__cause__, ValueError)
    # what ran before the failure stays cached
    assert executor.run(api_prompt()).executed == ["4", "6"]


def test_bad_return_value_is_a_node_error():
    class Broken(Double):
        def double(self, number):
            return 2 * number  # not a tuple

    nodes = {**NODES, "Broken": Broken}
    prompt = _with(
        {"5": {"class_type": "Broken", "inputs": {"number": ["3", 0]}}, "4": {"number": ["5", 0]}}
    )
    with pytest.raises(
        NodeExecutionError, match=r"node 5 .*\(Broken\) failed: TypeError: must return a tuple"
    ):
        Executor(nodes, quiet=True).run(prompt)


def test_progress_lines_and_listener_relay(capsys):
    class Slow(Double):
        def double(self, number):
            bar = comfy_bridge.Progress(4, "doubling")
            for _ in range(4):
                bar.update(1)
            return (2 * number,)

    nodes = {**NODES, "Slow": Slow}
    prompt = _with(
        {"5": {"class_type": "Slow", "inputs": {"number": ["3", 0]}}, "4": {"number": ["5", 0]}}
    )
    Executor(nodes).run(prompt)
    err = capsys.readouterr().err
    assert "[1/6] First number (MakeNumber)" in err and "[6/6] Show (Show)" in err
    assert "doubling [" in err and "4/4" in err
    assert comfy_bridge.progress_listener() is None  # restored after the run
    Executor(nodes, quiet=True).run(prompt)
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------------------------
# Overrides and the CLI


def test_overrides_by_id_title_and_unique_type():
    prompt = load_workflow(ui_workflow(), NODES)
    out = apply_overrides(prompt, ["1.value=7", "Format.style=fancy", "Format.prefix=v=1"], NODES)
    assert out["1"]["inputs"]["value"] == 7 and out["4"]["inputs"]["style"] == "fancy"
    assert out["4"]["inputs"]["prefix"] == "v=1"  # only the first '=' separates the value
    assert prompt["1"]["inputs"]["value"] == 5  # the original is untouched
    out = apply_overrides(prompt, {"First number.scale": "0.5", "Show.text": "hello"}, NODES)
    assert out["1"]["inputs"]["scale"] == 0.5 and out["6"]["inputs"]["text"] == "hello"


@pytest.mark.parametrize(
    "override, needle",
    [
        (
            "MakeNumber.value=1",
            "title or node type of 2 nodes; name one by id: 1 'First number' (MakeNumber), 2 'MakeNumber' (MakeNumber)",
        ),
        ("Nobody.value=1", "no node is called 'Nobody'"),
        ("1.nope=1", "no input 'nope'; its inputs: value (INT), seed (INT), scale (FLOAT)"),
        ("1.value=abc", "'abc' is not an integer"),
        ("1.scale=big", "'big' is not a number"),
        ("4.style=bold", "not one of the choices: 'plain', 'fancy'"),
        ("3.a=5", "takes a link of type NUMBER"),
        ("1value", "expected NODE.INPUT=VALUE"),
    ],
)
def test_bad_overrides_through_the_cli(override, needle, tmp_path, capsys):
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(ui_workflow()))
    code = main(["run", str(path), "--quiet", "--set", override], node_classes=NODES)
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err and "invalid_override" in err


def test_boolean_override_parsing():
    class Flag(MakeImage):
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"on": ("BOOLEAN", {"default": False})}}

    prompt = {"1": {"class_type": "Flag", "inputs": {"on": False}, "_meta": {"title": "f"}}}
    for text, expected in [
        ("true", True),
        ("yes", True),
        ("1", True),
        ("False", False),
        ("no", False),
        ("0", False),
    ]:
        assert (
            apply_overrides(prompt, [f"1.on={text}"], {"Flag": Flag})["1"]["inputs"]["on"]
            is expected
        )
    with pytest.raises(WorkflowError, match="not a boolean"):
        apply_overrides(prompt, ["1.on=maybe"], {"Flag": Flag})


def test_cli_run_prints_outputs_and_sets_the_output_folder(tmp_path, capsys):
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(ui_workflow()))
    out_dir = tmp_path / "out"
    code = main(
        ["run", str(path), "--set", "1.value=7", "--output", str(out_dir)], node_classes=NODES
    )
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out.splitlines()[:2] == ["Show (Show, node 6)", "  text: n=17.0"]
    assert "[5/5] Show (Show)" in captured.err
    assert comfy_bridge.output_directory() == out_dir.resolve()


def test_cli_json_output(tmp_path, capsys):
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(api_prompt()))
    assert main(["run", str(path), "--json", "--quiet"], node_classes=NODES) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert captured.err == ""
    assert data["outputs"] == [
        {
            "node_id": "6",
            "class_type": "Show",
            "title": "Show",
            "ui": {"text": ["n=13.0"], "node": ["6"], "nodes_in_prompt": [5]},
            "result": ["n=13.0"],
        }
    ]
    assert sorted(data["executed"]) == ["1", "2", "3", "4", "6"]


@pytest.mark.parametrize(
    "prompt_changes, needle",
    [
        ({"9": {"class_type": "Nope", "inputs": {}}}, "unknown node type 'Nope'"),
        (
            {"3": {"class_type": "Add", "inputs": {"a": ["1", 0]}}},
            "required input 'b' (NUMBER) is missing",
        ),
        (
            {"8": {"class_type": "MakeImage", "inputs": {}}, "4": {"number": ["8", 0]}},
            "expects NUMBER but is linked to output 0 of node 8 (MakeImage), which gives IMAGE",
        ),
        ({"1": {"value": 101}}, "value 101 is bigger than the maximum 100"),
        ({"4": {"style": "bold"}}, "value 'bold' is not one of the choices"),
        (
            {"3": {"b": ["5", 0]}, "5": {"class_type": "Double", "inputs": {"number": ["3", 0]}}},
            "depend on each other (a cycle)",
        ),
        ({"3": {"b": ["99", 0]}}, "linked to node 99, which is not in the workflow"),
    ],
)
def test_cli_invalid_workflows_exit_2_with_a_message(prompt_changes, needle, tmp_path, capsys):
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(_with(prompt_changes)))
    code = main(["run", str(path), "--quiet"], node_classes=NODES)
    err = capsys.readouterr().err
    assert (
        code == 2
        and err.startswith(f"error: workflow {path} is invalid")
        and needle in err
        and "Traceback" not in err
    )


def test_cli_unreadable_workflows_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("nodes: []")
    assert main(["run", str(bad), "--quiet"], node_classes=NODES) == 2
    assert (
        f"error: workflow {bad} is invalid: [invalid_prompt] not valid JSON"
        in capsys.readouterr().err
    )
    ui = ui_workflow()
    ui["links"] = ui["links"][1:]  # link 1 (node 1 -> Add.a) is gone
    bad.write_text(json.dumps(ui))
    assert main(["run", str(bad), "--quiet"], node_classes=NODES) == 2
    err = capsys.readouterr().err
    assert (
        "node 3 (Add), input 'a': input 'a' refers to link 1, which does not exist" in err
        and "Traceback" not in err
    )
    assert main(["run", str(tmp_path / "none.json"), "--quiet"], node_classes=NODES) == 2
    assert "file not found" in capsys.readouterr().err


def test_cli_runtime_error_exits_1_naming_the_node(tmp_path, capsys):
    path = tmp_path / "wf.json"
    path.write_text(
        json.dumps(
            _with(
                {
                    "5": {"class_type": "Boom", "inputs": {"number": ["3", 0]}},
                    "4": {"number": ["5", 0]},
                }
            )
        )
    )
    code = main(["run", str(path), "--quiet"], node_classes=NODES)
    err = capsys.readouterr().err
    assert (
        code == 1
        and "node 5 (Boom) failed: ValueError: cannot handle 13.0" in err
        and "Traceback" not in err
    )


def test_cli_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    path = tmp_path / "wf.json"
    path.write_text(
        json.dumps(
            _with(
                {
                    "5": {"class_type": "Boom", "inputs": {"number": ["3", 0]}},
                    "4": {"number": ["5", 0]},
                }
            )
        )
    )
    monkeypatch.setenv("MOTIONSIGHT_DEBUG", "1")
    assert main(["run", str(path), "--quiet"], node_classes=NODES) == 1
    assert "Traceback" in capsys.readouterr().err


def test_cli_usage_errors(capsys):
    assert main([], node_classes=NODES) == 2
    assert main(["run", "--help"], node_classes=NODES) == 0
    assert "--set NODE.INPUT=VALUE" in capsys.readouterr().out


def test_subcommand_modules_plug_in(tmp_path, monkeypatch, capsys):
    import motionsight.engine
    import motionsight.engine.cli as cli

    (tmp_path / "cli_hello.py").write_text(
        "def register(subparsers):\n"
        "    p = subparsers.add_parser('hello')\n"
        "    p.add_argument('name')\n"
        "    p.set_defaults(func=lambda args: print(f'hello {args.name}') or 3)\n"
    )
    monkeypatch.setattr(
        motionsight.engine, "__path__", [*motionsight.engine.__path__, str(tmp_path)]
    )
    monkeypatch.setattr(cli, "_COMMAND_NAMES", ("hello", "not_written_yet"))
    assert main(["hello", "you"], node_classes=NODES) == 3
    assert capsys.readouterr().out == "hello you\n"
    sys.modules.pop("motionsight.engine.cli_hello", None)


def test_run_workflow_library_call_reuses_an_executor(tmp_path):
    executor = Executor(NODES, quiet=True)
    first = run_workflow(ui_workflow(), {"1.value": 7}, executor=executor, output_dir=tmp_path)
    again = run_workflow(ui_workflow(), {"1.value": 8}, executor=executor)
    assert first.output("Show").result == ("n=17.0",) and again.output("Show").result == ("n=19.0",)
    assert again.executed == ["1", "3", "4", "6"]


def test_subprocess_not_json_exits_2_without_traceback(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{ this is not json")
    env = {**os.environ, "MOTIONSIGHT_DEBUG": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "motionsight.engine.cli", "run", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"workflow {path} is invalid" in proc.stderr and "not valid JSON" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


# --------------------------------------------------------------------------------------------
# The real pack: its node classes and shipped workflows

WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))


def test_real_node_classes_are_readable_by_the_engine():
    from motionsight import NODE_CLASS_MAPPINGS
    from motionsight.engine.spec import input_specs, return_types

    assert NODE_CLASS_MAPPINGS, "the pack maps no node classes"
    for name, cls in NODE_CLASS_MAPPINGS.items():
        input_specs(cls, name)
        assert isinstance(return_types(cls), tuple) and callable(getattr(cls, cls.FUNCTION))


@pytest.mark.skipif(not WORKFLOWS, reason="workflows/ holds no .json files yet")
@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_shipped_workflow_loads_validates_and_round_trips(workflow):
    from motionsight import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    prompt = load_workflow(workflow, NODE_CLASS_MAPPINGS, display_names=NODE_DISPLAY_NAME_MAPPINGS)
    assert load_workflow(to_ui_workflow(prompt, NODE_CLASS_MAPPINGS), NODE_CLASS_MAPPINGS) == prompt
    samples = REPO.parent / "shared" / "videos"
    video_inputs = {
        f"{n}.video": str(samples / "desert_train.mp4")
        for n, node in prompt.items()
        if isinstance(node["inputs"].get("video"), str)
    }
    if video_inputs and (samples / "desert_train.mp4").exists():
        prompt = apply_overrides(prompt, video_inputs, NODE_CLASS_MAPPINGS)
        assert validate_prompt(prompt, NODE_CLASS_MAPPINGS) == []
    else:  # without the clips only a video path check may fail
        errors = validate_prompt(copy.deepcopy(prompt), NODE_CLASS_MAPPINGS)
        assert all(e.kind == "custom_validation_failed" for e in errors), errors
