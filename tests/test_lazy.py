"""The engine honours ComfyUI's lazy inputs: only the branch a node asks for runs."""

from __future__ import annotations

import torch

from motionsight.engine import Executor


class Number:
    RETURN_TYPES = ("NUMBER",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 1})}}

    def make(self, value):
        return (value,)


class Pick:
    """Returns `a` or `b` by `which`; asks for `b` only once `a` is known (two rounds) when `which` is 'sum'."""

    OUTPUT_NODE = True
    RETURN_TYPES = ("NUMBER",)
    FUNCTION = "pick"
    asked: list = []

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"which": (["a", "b", "sum", "none"],)},
            "optional": {"a": ("NUMBER", {"lazy": True}), "b": ("NUMBER", {"lazy": True})},
        }

    def check_lazy_status(self, which, a=None, b=None):
        Pick.asked.append((which, a, b))
        if which == "sum":
            return ["a"] if a is None else (["b"] if b is None else [])
        return [which] if which in ("a", "b") else []

    def pick(self, which, a=None, b=None):
        if which == "sum":
            return (a + b,)
        return ({"a": a, "b": b}.get(which),)


class NoCheck(Pick):
    check_lazy_status = None


class Echo:
    OUTPUT_NODE = True
    RETURN_TYPES = ("NUMBER",)
    FUNCTION = "echo"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"x": ("NUMBER",)}}

    def echo(self, x):
        return (x,)


NODES = {"Number": Number, "Pick": Pick, "NoCheck": NoCheck, "Echo": Echo}


def prompt(which: str, picker: str = "Pick") -> dict:
    return {
        "1": {"class_type": "Number", "inputs": {"value": 10}},
        "2": {"class_type": "Number", "inputs": {"value": 20}},
        "3": {"class_type": picker, "inputs": {"which": which, "a": ["1", 0], "b": ["2", 0]}},
    }


def test_only_the_asked_branch_runs_and_the_rest_stays_cached():
    ex = Executor(NODES, quiet=True)
    Pick.asked.clear()
    result = ex.run(prompt("b"))
    assert result.output("3").result == (20,)
    assert result.executed == ["2", "3"]
    # unevaluated lazy inputs arrive as None; asked again once `b` is there (as ComfyUI does)
    assert Pick.asked == [("b", None, None), ("b", None, 20)]
    again = ex.run(prompt("b"))
    assert again.executed == [] and again.cached == ["3"]  # its branch is not even looked up
    other = ex.run(prompt("a"))
    assert other.output("3").result == (10,) and other.executed == ["1", "3"]


def test_check_lazy_status_is_asked_again_until_it_needs_nothing_new():
    Pick.asked.clear()
    result = Executor(NODES, quiet=True).run(prompt("sum"))
    assert result.output("3").result == (30,)
    assert Pick.asked == [("sum", None, None), ("sum", 10, None), ("sum", 10, 20)]
    none = Executor(NODES, quiet=True).run(prompt("none"))
    assert none.output("3").result == (None,) and none.executed == ["3"]


def test_a_lazy_input_without_check_lazy_status_is_never_evaluated():
    result = Executor(NODES, quiet=True).run(prompt("a", "NoCheck"))
    assert result.executed == ["3"] and result.output("3").result == (None,)


def test_a_lazy_nodes_key_does_not_depend_on_its_branch_having_run_first():
    ex = Executor(NODES, quiet=True)
    ex.run(prompt("b"))
    both = prompt("b")
    both["0"] = {"class_type": "Echo", "inputs": {"x": ["2", 0]}}  # "2" now runs before "3"
    again = ex.run(both, output_nodes=["0", "3"])
    assert "3" in again.cached and "3" not in again.executed


def test_the_routed_workflow_computes_only_the_branch_of_the_question(sample_videos_dir, tmp_path):
    import motionsight
    from motionsight.engine import load_workflow, run_workflow
    from motionsight.engine.cli_ask import WORKFLOW, ask_plan

    ask_id, _ = ask_plan(load_workflow(WORKFLOW, motionsight.NODE_CLASS_MAPPINGS))
    ex = Executor(motionsight.NODE_CLASS_MAPPINGS, quiet=True)

    def ask(question: str, label: str) -> dict:
        sets = {
            "MotionSightLoadVideo.video": str(sample_videos_dir / "desert_train.mp4"),
            "MotionSightLoadVideo.max_side": 96,
            "MotionSightQuestion.question": question,
            "MotionSightQuestion.label": label,
        }
        result = run_workflow(
            WORKFLOW, sets, executor=ex, output_dir=tmp_path, output_nodes=[ask_id]
        )
        return {result.prompt[n]["class_type"] for n in result.executed}

    camera = ask("How does the camera move?", "camera")
    assert "MotionSightMotionTrails" in camera
    assert not camera & {"MotionSightSpotlight", "MotionSightCrop", "MotionSightDetectAndTrack"}
    obj = ask("What does the train do?", "object")
    assert {"MotionSightSpotlight", "MotionSightDetectAndTrack"} <= obj
    assert "MotionSightMotionTrails" not in obj and "MotionSightCrop" not in obj
    assert ex.execution_counts["MotionSightLoadVideo"] == 1
    assert not list(tmp_path.rglob("*.png"))  # no save node ran


def test_a_reused_ask_instance_routes_each_question_anew():
    """ComfyUI keeps node instances across prompts: the route is not carried over."""
    from motionsight.mllm import load_mllm
    from motionsight.nodes.mllm import MotionSightAsk

    node, mllm = MotionSightAsk(), load_mllm("openai", "", "")  # no URL: dry run
    streams = {"motion_trails": None, "spotlight": None}
    assert node.check_lazy_status(mllm, "q", "camera", **streams) == ["motion_trails"]
    assert node.check_lazy_status(mllm, "q", "object", **streams) == ["spotlight"]
    assert node.check_lazy_status(mllm, "q", "object", spotlight=torch.zeros(1, 2, 2, 3)) == []


def test_motionsight_run_of_the_routed_workflow_runs_only_the_branch_it_saves(
    sample_videos_dir, tmp_path, capsys
):
    """All output nodes run (as in the editor): the one Save node is fed by Ask's shown frames,
    so the other branch's nodes never execute."""
    import json

    import motionsight
    from motionsight.engine import load_workflow
    from motionsight.engine.cli import main
    from motionsight.engine.cli_ask import WORKFLOW

    classes = {
        n: node["class_type"]
        for n, node in load_workflow(WORKFLOW, motionsight.NODE_CLASS_MAPPINGS).items()
    }
    trails = {"MotionSightMotionTrails"}
    spotlight = {
        "MotionSightExtractActionObjects",
        "MotionSightDetectAndTrack",
        "MotionSightSpotlightBoxes",
        "MotionSightSpotlight",
    }

    def run(question: str, label: str, out: str) -> tuple[list[str], dict]:
        code = main(
            [
                "run", str(WORKFLOW), "--json", "--quiet", "--output", str(tmp_path / out),
                "--set", f"MotionSightLoadVideo.video={sample_videos_dir / 'desert_train.mp4'}",
                "--set", "MotionSightLoadVideo.max_side=96",
                "--set", f"MotionSightQuestion.question={question}",
                "--set", f"MotionSightQuestion.label={label}",
            ]
        )  # fmt: skip
        report = json.loads(capsys.readouterr().out)
        assert code == 0
        ran = [classes[n] for n in report["executed"]]
        (save,) = [o for o in report["outputs"] if o["class_type"] == "MotionSightSaveFrames"]
        (ask,) = [o for o in report["outputs"] if o["class_type"] == "MotionSightAsk"]
        assert ask["result"][2]["shape"] == [16, 96, 96, 3]  # shown_frames: what was saved
        assert len(save["ui"]["frames"]) == 16 and len(list((tmp_path / out).rglob("*.png"))) == 17
        return ran, json.loads(ask["result"][1])

    camera, info = run("How does the camera move?", "camera", "camera")
    assert info["streams"] == ["motion_trails"] and trails <= set(camera)
    assert not set(camera) & (spotlight | {"MotionSightCrop"})
    obj, info = run("What does the train do?", "object", "object")
    assert info["streams"] == ["spotlight"] and spotlight <= set(obj)
    assert not set(obj) & (trails | {"MotionSightCrop"})
    for ran in (camera, obj):  # every node that ran, ran once
        assert len(ran) == len(set(ran)) and ran.count("MotionSightLoadVideo") == 1
