"""Routing without benchmark labels: keyword rules on a written question set, wrappers stripped,
and the MLLM's route (through a real loopback HTTP server) taken, or the rules on failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from openai_server import OpenAITestServer, content_text, image_urls

from motionsight.evaluation.benchmarks import FAVOR_PROMPT, MOTIONBENCH_LETTER_INSTRUCTION
from motionsight.mllm.answering import MLLMHandle, answer_video
from motionsight.mllm.openai_backend import OpenAIMLLM
from motionsight.mllm.protocol import (
    route_by_rules,
    route_frames,
    route_question,
    strip_benchmark_wrappers,
)

QUESTIONS = json.loads(
    (Path(__file__).resolve().parent / "data" / "routing_questions.json").read_text()
)["questions"]


def lettered(q: dict) -> str:
    options = "\n".join(f"{chr(65 + i)}. {o}" for i, o in enumerate(q["options"]))
    return f"{q['question']}\n{options}{MOTIONBENCH_LETTER_INSTRUCTION}"


def favor(q: dict) -> str:
    return FAVOR_PROMPT.format(question=q["question"], options=q["options"])


def test_question_set_covers_both_benchmarks_styles():
    styles = {q["style"] for q in QUESTIONS}
    assert len(QUESTIONS) >= 120 and {q["route"] for q in QUESTIONS} == {"camera", "object"}
    assert sum(s.startswith("MotionBench") for s in styles) == 6
    assert sum(s.startswith("FAVOR-Bench") for s in styles) == 6


@pytest.mark.parametrize(
    "form", [lettered, favor, lambda q: q["question"]], ids=["lettered", "favor", "stem"]
)
def test_keyword_rules_route_at_least_95_percent_right(form):
    wrong = [q["question"] for q in QUESTIONS if route_by_rules(form(q)).branch != q["route"]]
    assert 1 - len(wrong) / len(QUESTIONS) >= 0.95, wrong


def test_favor_wrapper_is_stripped_but_the_options_stay():
    core = strip_benchmark_wrappers(
        FAVOR_PROMPT.format(question="What does the truck do?", options=["Turns left", "Stops"])
    )
    assert core == "What does the truck do?\nA. Turns left\nB. Stops"
    assert strip_benchmark_wrappers("Where does he go?" + MOTIONBENCH_LETTER_INSTRUCTION) == (
        "Where does he go?"
    )


@pytest.mark.parametrize(
    "question, branch",
    [
        ("What does the truck do after it stops?", "object"),  # a vehicle, not "truck left"
        ("The camera trucks left past the shop.", "camera"),
        ("What does the woman do with the pan?", "object"),
        ("Does the camera pan right?", "camera"),
        ("How does the man tilt his head?", "object"),
        ("Does the player make the shot?", "object"),
        ("Does the girl walk towards the camera?", "object"),
        ("Is the shot static?", "camera"),
    ],
)
def test_words_with_two_senses(question, branch):
    assert route_by_rules(question).branch == branch


@pytest.fixture
def server():
    with OpenAITestServer() as running:
        yield running


def _model(server: OpenAITestServer) -> OpenAIMLLM:
    return OpenAIMLLM(server.base_url, "router", timeout=2.0, max_retries=0, backoff=0.01)


@pytest.mark.parametrize("reply, branch", [("camera", "camera"), ("Object.", "object")])
def test_the_servers_route_is_the_one_taken(server, reply, branch):
    # the rules would say the opposite of what the server says
    question = "How does the camera move?" if branch == "object" else "What does the dog do?"
    server.reply = reply
    route = route_question(
        favor({"question": question, "options": ["a", "b"]}), "auto", _model(server)
    )
    assert (route.branch, route.source, route.fallback) == (branch, "mllm", "")
    sent = content_text(server.requests[0]["body"])
    assert question in sent and "focusing on the camera motions" not in sent


def test_routing_request_can_carry_a_few_frames(server):
    server.reply = "object"
    frames = torch.rand(16, 32, 48, 3)
    route_question("What does the dog do?", "", _model(server), route_frames(frames, 4))
    assert len(image_urls(server.requests[0]["body"])) == 4


@pytest.mark.parametrize("failure", ["500", "drop", "reply"])
def test_a_failed_routing_call_falls_back_to_the_rules(server, failure):
    if failure == "reply":
        server.reply = "I am not sure."
    else:
        server.fail_next(failure)
    route = route_question("Does the camera zoom in?", "auto", _model(server))
    assert (route.branch, route.source) == ("camera", "rules") and route.fallback


def test_the_fallback_is_recorded_in_the_answer_info(server, sample_videos_dir):
    from motionsight.video import Sampling, VideoClip, open_video

    source = open_video(sample_videos_dir / "desert_vehicles_aerial.mp4")
    clip = VideoClip(source, Sampling.segments(source.info, 16), 96)
    server.fail_next("500")  # the routing call; the final question is answered "A"
    answer, info = answer_video(MLLMHandle(_model(server)), clip, "Does the camera pan left?")
    route = json.loads(info)["route"]
    assert answer.text == "A" and route["branch"] == "camera" and route["source"] == "rules"
    assert "500" in route["fallback"]
