"""The OpenAI-compatible backend against a real HTTP server on loopback (tests/openai_server.py)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from openai_server import OpenAITestServer, allow, content_text, image_urls

import motionsight
from motionsight.engine import Executor, run_workflow
from motionsight.engine.cli import main
from motionsight.engine.workflow import to_ui_workflow
from motionsight.mllm import GenerationOptions, MLLMError, Stream, final_prompt, load_mllm
from motionsight.mllm.base import message_content
from motionsight.mllm.openai_backend import OpenAIMLLM
from motionsight.mllm.protocol import HEADINGS

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"
KEY_ENV = "MOTIONSIGHT_TEST_API_KEY"
SECRET = "sk-test-0123456789abcdef"
MC_QUESTION = "How does the camera move?\nA. pans left\nB. static\nC. zooms in"


@pytest.fixture
def server(monkeypatch):
    with OpenAITestServer() as running:
        allow(monkeypatch, running.base_url, KEY_ENV)  # the user's --trust-url
        yield running


def _backend(server: OpenAITestServer, **kwargs) -> OpenAIMLLM:
    settings = dict(timeout=2.0, max_retries=2, backoff=0.01, retry_after_cap=0.05)
    return OpenAIMLLM(server.base_url, "test-model", **{**settings, **kwargs})


def _decode(url: str) -> np.ndarray:
    assert url.startswith("data:image/jpeg;base64,")
    data = np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8)
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]


def test_both_backends_get_the_same_message_structure(server):
    prompt = final_prompt("What moves?", [Stream("spotlight", torch.rand(3, 32, 32, 3))], [0, 1, 2])
    _backend(server).generate(prompt, GenerationOptions())
    sent = server.requests[0]["body"]["messages"][0]["content"]
    shared = message_content(prompt)  # what the transformers backend turns into its chat turn
    assert [item["type"] for item in sent] == [
        "text" if kind == "text" else "image_url" for kind, _ in shared
    ]
    assert [item["text"] for item in sent if item["type"] == "text"] == [
        value for kind, value in shared if kind == "text"
    ]


@pytest.mark.parametrize("value", [SECRET, "not a name"])
def test_a_key_given_instead_of_a_variable_name_is_refused(value, server):
    with pytest.raises(MLLMError, match="NAME of an environment variable"):
        _backend(server, api_key_env=value)


def _responder(objects: list[str]):
    """Action-object questions get JSON naming `objects`; every other question gets "B"."""

    def reply(body: dict) -> str:
        return (
            json.dumps({"action_objects": objects})
            if "action_objects" in content_text(body)
            else "B"
        )

    return reply


def _openai_sets(server: OpenAITestServer, video: Path) -> dict:
    return {
        "MotionSightLoadVideo.video": str(video),
        "MotionSightLoadVideo.max_side": 128,
        "MotionSightLoadMLLM.backend": "openai",
        "MotionSightLoadMLLM.base_url": server.base_url,
        "MotionSightLoadMLLM.model": "served-model",
        "MotionSightLoadMLLM.api_key_env": KEY_ENV,
        "MotionSightLoadMLLM.retries": 0,
    }


def test_routed_workflow_through_the_server_and_the_saved_workflow_has_no_key(
    server, sample_videos_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv(KEY_ENV, SECRET)
    server.responder = _responder(["person", "lawn mower"])
    sets = _openai_sets(server, sample_videos_dir / "lawn_mowing.mp4")
    result = run_workflow(
        WORKFLOWS / "Ask about motion - auto routed.json",
        {**sets, "MotionSightQuestion.question": "What does the man push?"},
        output_dir=tmp_path,
    )
    answer, info, shown = result.output("MotionSightAsk").result
    info = json.loads(info)
    assert (
        answer == "B" and info["route"]["branch"] == "object" and info["streams"] == ["spotlight"]
    )
    assert all(r["headers"]["Authorization"] == f"Bearer {SECRET}" for r in server.requests)
    # one request each: routing (text only), action objects (16 originals), the final question
    bodies = [r["body"] for r in server.requests]
    assert len(bodies) == 3
    route = next(b for b in bodies if "camera or object" in content_text(b))
    extract = next(b for b in bodies if "action_objects" in content_text(b))
    final = bodies[-1]
    assert len(image_urls(extract)) == 16 and "What does the man push?" in content_text(extract)
    assert image_urls(route) == [] and "camera or object" in content_text(route)
    assert content_text(final) == info["prompt_text"] and len(image_urls(final)) == 16
    assert content_text(final).startswith("Spotlight video:\nFrame0: <image>\nFrame1: <image>")
    assert info["num_images"] == 16 and info["errors"] == [] and shown.shape[0] == 16
    saved = json.dumps(to_ui_workflow(result.prompt, motionsight.NODE_CLASS_MAPPINGS))
    assert SECRET not in saved and KEY_ENV in saved and server.base_url in saved


def test_object_branch_new_question_reruns_mllm_steps_and_detection_only_for_new_objects(
    server, sample_videos_dir, tmp_path
):
    executor = Executor(motionsight.NODE_CLASS_MAPPINGS, quiet=True)
    sets = _openai_sets(server, sample_videos_dir / "lawn_mowing.mp4")
    workflow = WORKFLOWS / "Ask about object motion.json"

    def run(question: str, objects: list[str]) -> set[str]:
        server.responder = _responder(objects)
        result = run_workflow(
            workflow,
            {**sets, "MotionSightQuestion.question": question},
            executor=executor,
            output_dir=tmp_path,
        )
        return {result.prompt[n]["class_type"] for n in result.executed}

    run("What does the man push?", ["person", "lawn mower"])
    # same action objects for the new question: detection and visual prompts come from the cache
    assert run("Where does the man walk?", ["person", "lawn mower"]) == {
        "MotionSightQuestion",
        "MotionSightExtractActionObjects",
        "MotionSightAsk",
    }
    # other objects: detection re-runs (the spotlight too when the boxes change: the default
    # weight-free motion detector ignores names, so here its boxes stay and the rest is cached)
    rerun = run("What does the dog do?", ["dog"])
    assert {"MotionSightExtractActionObjects", "MotionSightDetectAndTrack"} <= rerun
    assert "MotionSightLoadVideo" not in rerun and "MotionSightLoadMLLM" not in rerun
    assert executor.execution_counts["MotionSightLoadVideo"] == 1


def test_ask_command_with_a_server(server, sample_videos_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    server.responder = _responder(["train"])
    code = main(
        [
            "ask",
            str(sample_videos_dir / "desert_train.mp4"),
            MC_QUESTION,
            "--base-url",
            server.base_url,
            "--model-name",
            "served-model",
            "--api-key-env",
            KEY_ENV,
            "--max-side",
            "128",
            "--output",
            str(tmp_path),
            "--json",
            "--quiet",
        ]  # fmt: skip
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["answer"] == "B" and out["info"]["route"]["branch"] == "camera"
    # the server routed it ("B" is neither word: keyword rules decided); objects were not asked for
    assert len(server.requests) == 2 and out["info"]["route"]["source"] == "rules"
    assert not any("action_objects" in content_text(r["body"]) for r in server.requests)
    assert out["info"]["prompt_text"].startswith(HEADINGS["motion_trails"])
    assert SECRET not in json.dumps(out)


def test_ask_command_with_a_dead_server_still_writes_the_prompts_and_fails(
    sample_videos_dir, tmp_path, capsys
):
    with OpenAITestServer() as gone:
        url = gone.base_url
    code = main(
        [
            "ask",
            str(sample_videos_dir / "desert_train.mp4"),
            "What moves?",
            "--base-url",
            url,
            "--model-name",
            "m",
            "--set",
            "MotionSightLoadMLLM.retries=0",
            "--max-side",
            "128",
            "--output",
            str(tmp_path),
            "--quiet",
        ]  # fmt: skip
    )
    out, err = capsys.readouterr()
    assert code != 0 and url in err and "connection failed" in err and "Traceback" not in err
    assert "Request (16 images):" in out and 'Here is the question: "What moves?".' in out
    assert len(list(tmp_path.rglob("contact_sheet.png"))) == 1  # the branch taken only


def test_loader_needs_a_model_name_for_a_server(server):
    with pytest.raises(ValueError, match=re.escape(server.base_url)):
        load_mllm("openai", "", server.base_url)
    assert load_mllm("openai", "m", "").model is None  # no URL: dry run


@pytest.mark.parametrize(
    "question, label, requests, heading",
    [
        ("What does the man do?", "Camera Motion", 1, HEADINGS["motion_trails"]),
        ("How many times does the man push the mower?", "auto", 3, "Spotlight video:"),
    ],
)
def test_one_node_answer_runs_the_whole_method(
    question, label, requests, heading, server, sample_videos_dir
):
    from motionsight.nodes.mllm import MotionSightAnswer
    from motionsight.video import Sampling, VideoClip, open_video

    server.responder = _responder(["person", "lawn mower"])
    source = open_video(sample_videos_dir / "lawn_mowing.mp4")
    clip = VideoClip(source, Sampling.segments(source.info, 16), 128)
    handle = load_mllm("openai", "served-model", server.base_url, retries=0)
    out = MotionSightAnswer().answer(handle, clip, question, label)
    answer, info = out["result"]
    info = json.loads(info)
    assert answer == "B" and out["ui"]["text"] == ["B"] and len(server.requests) == requests
    final = server.requests[-1]["body"]
    assert (
        content_text(final).startswith(heading + "\nFrame0: <image>")
        and len(image_urls(final)) == 16
    )
    times = ", ".join(f"{t:.1f}" for t in clip.sampling.timestamps)
    assert f"The video contains 16 frames sampled at {times} seconds." in content_text(final)
    if label == "auto":  # a repetition count: the crop, with the objects the server named
        assert info["streams"] == ["crop"] and info["action_objects"] == ["person", "lawn mower"]
