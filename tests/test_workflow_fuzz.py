"""A seeded workflow fuzzer: every mangled workflow ends in success or a clean error.

"Clean" means a `WorkflowError` naming the file (exit 2 on the CLI) or a `NodeExecutionError`
whose cause is a user-facing error, each printed on one bounded line; never an internal
exception (AttributeError, TypeError, KeyError, RecursionError, ...) escaping or raised inside a
node. The shipped workflows (UI format and their API-format form) are mutated at random:
values anywhere in the tree replaced by junk (NaN, infinities, huge numbers, 100 kB strings,
wrong containers, link-shaped lists), keys and list items deleted, nodes duplicated.

    MOTIONSIGHT_FUZZ_CASES=5000 MOTIONSIGHT_FUZZ_SEED=7 pytest tests/test_workflow_fuzz.py
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import random
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

import motionsight
from motionsight.engine import Executor, run_workflow
from motionsight.engine.cli import main, one_line
from motionsight.engine.errors import NodeExecutionError, WorkflowError

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"
CASES = int(os.environ.get("MOTIONSIGHT_FUZZ_CASES", "300"))
SEED = int(os.environ.get("MOTIONSIGHT_FUZZ_SEED", "20261201"))
MAX_RUNS = max(6, CASES // 50)  # cases that validate are run for real up to this many (~2 s each)
INTERNAL = (AttributeError, TypeError, KeyError, IndexError, RecursionError, NameError,
            UnboundLocalError, ZeroDivisionError, AssertionError, OverflowError)  # fmt: skip
JUNK: list[Any] = [
    None, True, False, 0, -1, 1.5, 2**63, 10**300, 1e308, float("nan"), float("inf"),
    float("-inf"), "", "nan", "-inf", "x" * 100_000, ".", "./.", "../escape", "/abs",
    [], {}, [1], [1, 2], ["1", 0], [[1], 0], ["999", 0], ["1", 99], [None, None, None],
    {"a": 1}, {"__value__": [1, 2]}, {"value": 3}, "MotionSightLoadVideo", "Reroute",
    "PrimitiveNode", "IMAGE", [0, 1, 0, 2, 0, "IMAGE"],
]  # fmt: skip


def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys / indices) into a JSON tree, the root excluded."""
    found = []
    items = (
        tree.items()
        if isinstance(tree, dict)
        else enumerate(tree)
        if isinstance(tree, list)
        else ()
    )
    for key, value in items:
        found.append((*prefix, key))
        found += _paths(value, (*prefix, key))
    return found


def _mutate(tree: Any, rng: random.Random) -> str:
    """One random change in place; returns what it did (for the failure message)."""
    paths = _paths(tree)
    if not paths:
        return "nothing to mutate"
    path = rng.choice(paths)
    parent = tree
    for key in path[:-1]:
        parent = parent[key]
    key, op = path[-1], rng.random()
    if op < 0.6:
        junk = copy.deepcopy(rng.choice(JUNK))
        parent[key] = junk
        return f"set {list(path)} = {repr(junk)[:40]}"
    if op < 0.8:
        del parent[key]
        return f"delete {list(path)}"
    if op < 0.9 and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[key]))  # e.g. a duplicated node, link or slot
        return f"duplicate {list(path)}"
    if isinstance(parent, dict):
        parent[rng.choice(["inputs", "type", "class_type", "links", "definitions", "mode",
                           "widgets_values", "link", "name", "id"])] = copy.deepcopy(rng.choice(JUNK))  # fmt: skip
        return f"add a key beside {list(path)}"
    return "no-op"


def _tiny_video(path: Path) -> Path:
    """A real 24-frame 48x64 MP4 (a square crossing a gradient): decoded for real, quickly."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 12.0, (64, 48))
    ramp = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (48, 1))
    for i in range(24):
        frame = np.dstack([ramp, ramp[::-1], np.full_like(ramp, 90)])
        frame[16:32, 2 * i : 2 * i + 16] = (250, 30, 30)
        writer.write(frame)
    writer.release()
    return path


def _bases(video: Path) -> list[dict]:
    """The shipped workflows in UI format and as API prompts, reading `video`."""
    from motionsight.engine.workflow import load_workflow

    bases = []
    for path in sorted(WORKFLOWS.glob("*.json")):
        ui = json.loads(path.read_text())
        for node in ui["nodes"]:
            if node["type"] == "MotionSightLoadVideo":
                node["widgets_values"][0] = str(video)
        bases += [ui, load_workflow(ui, motionsight.NODE_CLASS_MAPPINGS)]
    return bases


def _base(video: Path, name: str) -> dict:
    """One shipped workflow (UI format, by file stem) reading `video`."""
    ui = json.loads((WORKFLOWS / f"{name}.json").read_text())
    for node in ui["nodes"]:
        if node["type"] == "MotionSightLoadVideo":
            node["widgets_values"][0] = str(video)
    return ui


# The shapes the issue lists, each by name (plus a few more): (file text, what must be named)
SHAPES = {
    "definitions not an object": lambda ui: {**ui, "definitions": [1, 2]},
    "link id is a list": lambda ui: _set_first_link(ui, [1, 2]),
    "primitive with dict widgets_values": lambda ui: _add_primitive(ui, {"x": 1}),
    "literal for an IMAGE input": lambda ui: _api_literal(ui, "IMAGE", 0.5),
    "literal for a MOTIONSIGHT_VIDEO input": lambda ui: _api_literal(
        ui, "MOTIONSIGHT_VIDEO", "a.mp4"
    ),
    "literal for a BBOX input": lambda ui: _api_literal(ui, "BBOX", {"__value__": [0, 0, 1, 1]}),
}


def _set_first_link(ui: dict, value: Any) -> dict:
    ui = copy.deepcopy(ui)
    slot = next(s for n in ui["nodes"] for s in n.get("inputs") or [] if s.get("link") is not None)
    slot["link"] = value
    return ui


def _add_primitive(ui: dict, widgets_values: Any) -> dict:
    ui = copy.deepcopy(ui)
    link = ui["links"][0]
    ui["nodes"].append({"id": 999, "type": "PrimitiveNode", "inputs": [], "widgets_values": widgets_values,
                        "outputs": [{"name": "x", "type": link[5], "links": [link[0]]}]})  # fmt: skip
    link[1] = 999
    return ui


def _api_literal(ui: dict, type_name: str, value: Any) -> dict:
    """The workflow as an API prompt with a literal where a `type_name` link was."""
    from motionsight.engine.spec import input_specs
    from motionsight.engine.workflow import load_workflow

    classes = motionsight.NODE_CLASS_MAPPINGS
    prompt = load_workflow(ui, classes)
    node, name = next(
        (n, s.name)
        for n in prompt.values()
        for s in input_specs(classes[n["class_type"]]).values()
        if s.type == type_name and s.name in n["inputs"]
    )
    node["inputs"][name] = value
    return prompt


def _check_outcome(
    path: Path, executor: Executor, out: Path, case: str, runs: set[str] | None = None
) -> str:
    """Run one file, or (when `runs` is full, or an earlier case ran the same prompt: most
    changes to a UI file touch only its layout) only load and validate it; assert the outcome
    is clean; return its kind."""
    from motionsight.engine.validate import plan_prompt
    from motionsight.engine.workflow import load_workflow

    try:
        if runs is not None:
            prompt = load_workflow(path, executor.node_classes)
            key = json.dumps(
                {k: v["inputs"] for k, v in prompt.items()}, sort_keys=True, default=str
            )
            if key in runs or len(runs) >= MAX_RUNS:
                plan_prompt(prompt, executor.node_classes, source=str(path))
                return "validated"
            runs.add(key)
        run_workflow(path, output_dir=out, executor=executor)
    except WorkflowError as exc:
        text = str(exc)
        assert str(path) in text, f"{case}: the error does not name the file: {text[:200]}"
        assert all("\n" not in str(e) and len(str(e)) < 700 for e in exc.errors), case
        assert len(one_line(text)) <= 600, case
        return "invalid"
    except NodeExecutionError as exc:
        cause = exc.__cause__
        assert not isinstance(cause, INTERNAL), f"{case}: internal error in a node: {exc}"
        assert "\n" not in str(exc) and len(str(exc)) < 700, case
        return "node error"
    return "ran"


def test_fuzzed_workflows_end_cleanly(tmp_path):
    rng = random.Random(SEED)
    bases = _bases(_tiny_video(tmp_path / "tiny.mp4"))
    executor = Executor(motionsight.NODE_CLASS_MAPPINGS, quiet=True)
    kinds: dict[str, int] = {}
    runs: set[str] = set()
    for i in range(CASES):
        tree = copy.deepcopy(rng.choice(bases))
        done = [_mutate(tree, rng) for _ in range(rng.randint(1, 3))]
        path = tmp_path / f"case_{i}.json"
        path.write_text(json.dumps(tree))
        case = f"seed {SEED} case {i}: {'; '.join(done)}"
        try:
            kind = _check_outcome(path, executor, tmp_path / "out", case, runs)
        except AssertionError:
            raise
        except Exception as exc:  # anything else escaping is exactly what this test hunts
            pytest.fail(f"{case}: {type(exc).__name__}: {str(exc)[:300]}")
        kinds[kind] = kinds.get(kind, 0) + 1
    assert sum(kinds.values()) == CASES
    assert kinds.get("invalid", 0) > CASES // 4 and kinds.get("ran", 0) > 0, kinds
    print(f"fuzz seed {SEED}: {kinds}")


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"nodes": [], "links": [], "x": ' + "9" * 5000 + "}", "not a usable workflow"),
        ("", "not valid JSON"),
        ("null", "must be a JSON object"),
        ('{"nodes": 3}', "'nodes' must be a list"),
    ],
    ids=["deep JSON", "huge integer", "empty file", "null", "nodes not a list"],
)
def test_malformed_files_are_named_with_exit_2(text, needle, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(text)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["run", str(path), "--quiet", "--output", str(tmp_path / "out")])
    line = err.getvalue()
    assert code == 2 and line.count("\n") == 1 and str(path) in line and needle in line
    assert "[invalid_prompt]" in line and len(line) < 700


@pytest.mark.parametrize("shape", list(SHAPES))
def test_each_listed_shape_is_a_clean_error_naming_the_file(shape, tmp_path):
    ui = _base(_tiny_video(tmp_path / "tiny.mp4"), "Ask about motion - auto routed")
    path = tmp_path / "shape.json"
    path.write_text(json.dumps(SHAPES[shape](ui)))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["run", str(path), "--quiet", "--output", str(tmp_path / "out")])
    line = err.getvalue()
    assert code == 2 and line.count("\n") == 1 and str(path) in line, line
    expected = "invalid_input_type" if shape.startswith("literal") else "invalid_prompt"
    assert f"[{expected}]" in line, line
    if shape.startswith("literal"):
        assert "takes a link from another node's output" in line


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999"])
def test_non_finite_numbers_are_rejected_for_every_number_input(value, tmp_path):
    """Every INT/FLOAT input of every node in the shipped workflows, set to a non-finite value
    in the file (JSON's NaN/Infinity) or by --set, is a `value_not_finite` error naming it."""
    from motionsight.engine.run import default_node_classes
    from motionsight.engine.spec import input_specs
    from motionsight.engine.validate import validate_prompt
    from motionsight.engine.workflow import load_workflow

    classes, _ = default_node_classes()
    checked = 0
    for wf in sorted(WORKFLOWS.glob("*.json")):
        prompt = load_workflow(wf, classes)
        for node_id, node in prompt.items():
            for spec in input_specs(classes[node["class_type"]]).values():
                if spec.type not in ("INT", "FLOAT") or not spec.is_widget:
                    continue
                broken = copy.deepcopy(prompt)
                broken[node_id]["inputs"][spec.name] = float(value)
                errors = validate_prompt(broken, classes)
                mine = [(e.kind, e.input_name) for e in errors if e.node_id == node_id]
                assert mine == [("value_not_finite", spec.name)], (wf.name, spec.name, errors)
                checked += 1
    assert checked > 30
    # and from the command line, e.g. the issue's `--set MotionSightBox.x1=nan`
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["run", str(WORKFLOWS / "Spotlight on a fixed box.json"), "--set",
                     f"MotionSightBox.x1={value}", "--quiet", "--output", str(tmp_path)])  # fmt: skip
    assert code == 2 and "[value_not_finite]" in err.getvalue() and "'x1'" in err.getvalue()
    assert not any(tmp_path.iterdir())  # nothing was written


def test_errors_are_one_line_without_ffmpeg_noise(tmp_path, sample_videos_dir):
    """A truncated video in a fresh process (FFmpeg and OpenCV write to the C-level stderr):
    exactly our one line, naming the node and the file."""
    import subprocess
    import sys

    clip = tmp_path / "truncated.mp4"
    clip.write_bytes((sample_videos_dir / "desert_train.mp4").read_bytes()[:30_000])
    done = subprocess.run(
        [sys.executable, "-m", "motionsight.engine.cli", "run",
         str(WORKFLOWS / "Camera motion trails.json"), "--set",
         f"MotionSightLoadVideo.video={clip}", "--output", str(tmp_path / "out"), "--quiet"],
        capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("OPENCV_")},
    )  # fmt: skip
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "node 1 'Load Video'" in done.stderr and str(clip) in done.stderr
    assert "moov" not in done.stderr and "WARN" not in done.stderr


def test_a_very_thin_video_is_a_clear_error_not_a_crash():
    """10000x16 frames: the detectors' downscaled copy would be 1 px high (cv2.resize asserted)."""
    import torch

    from motionsight.detect.detectors import load_detector
    from motionsight.detect.tracking import detect_and_track

    frames = torch.rand(4, 16, 10000, 3)
    with pytest.raises(ValueError, match="frames of 10000x16 are too thin"):
        detect_and_track(frames, "", load_detector("motion", None))
