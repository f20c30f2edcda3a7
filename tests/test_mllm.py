"""The MLLM step with real (tiny, offline) transformers models: protocol, backend, nodes, workflows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import pytest
import torch
from tiny_models import build_tiny_qwen2_vl, build_tiny_qwen25_vl

import motionsight
from motionsight.engine import Executor, load_workflow, run_workflow
from motionsight.engine.cli import main
from motionsight.mllm import (
    GenerationOptions,
    MLLMError,
    Stream,
    extract_action_objects,
    final_prompt,
    load_mllm,
    parse_action_objects,
    route_question,
    sample_times_sentence,
)
from motionsight.mllm.protocol import HEADINGS, MULTIPLE_CHOICE_INSTRUCTION

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"
MC_QUESTION = "How does the camera move?\nA. pans left\nB. follows the cars\nC. static\nD. zooms in"


@pytest.fixture(scope="session")
def qwen25(tmp_path_factory) -> Path:
    return build_tiny_qwen25_vl(tmp_path_factory.mktemp("qwen25_vl"))


@pytest.fixture(scope="session")
def qwen2(tmp_path_factory) -> Path:
    return build_tiny_qwen2_vl(tmp_path_factory.mktemp("qwen2_vl"))


# ----------------------------------------------------------------------------- protocol


def test_final_prompt_matches_method_word_for_word():
    frames = torch.rand(3, 8, 8, 3)
    prompt = final_prompt(MC_QUESTION, [Stream("motion_trails", frames)], [0.21, 0.64, 1.0])
    assert prompt.text == (
        HEADINGS["motion_trails"] + "\n"
        "Frame0: <image>\nFrame1: <image>\nFrame2: <image>\n"
        "The video contains 3 frames sampled at 0.2, 0.6, 1.0 seconds.\n"
        f'Here is the question: "{MC_QUESTION}".\n' + MULTIPLE_CHOICE_INSTRUCTION
    )
    assert HEADINGS["spotlight"] == "Spotlight video:" and HEADINGS["original"] == "Original video:"
    assert HEADINGS["motion_trails"].endswith("there is a good chance that the camera is moving!):")
    assert [torch.equal(a, b) for a, b in zip(prompt.images, frames, strict=True)] == [True] * 3
    open_prompt = final_prompt("What does the dog do?", [Stream("spotlight", frames)])
    assert open_prompt.text.endswith("Reply based on the above information.")


def test_sample_times_sentence_rounds_to_tenths():
    assert (
        sample_times_sentence([0.16, 0.55, 12.04])
        == "The video contains 3 frames sampled at 0.2, 0.6, 12.0 seconds."
    )


@pytest.mark.parametrize(
    "reply, objects",
    [
        ('{"action_objects": ["man", "dog"]}', ["man", "dog"]),
        (
            'Sure!\n```json\n{"action_objects": ["person\'s hands", "ball"]}\n```',
            ["person's hands", "ball"],
        ),
        ('The objects are {"action_objects": ["train"]} as requested.', ["train"]),
        ('{"action_objects": []}', None),
        ("no json here", None),
        ('{"objects": ["x"]}', None),
    ],
)
def test_parse_action_objects(reply, objects):
    assert parse_action_objects(reply) == objects


@pytest.mark.parametrize(
    "question, label, branch, repetition, source",
    [
        ("What does the man do?", "Camera Motion", "camera", False, "label"),
        ("What does the man do?", "CM", "camera", False, "label"),
        ("How does the camera move?", "AS", "object", False, "label"),
        ("How many times does he jump?", "Repetition Count", "object", True, "label"),
        ("Is the camera panning or static?", "", "camera", False, "rules"),
        ("How many times does the girl wave?", "auto", "object", True, "rules"),
        ("Which way does the dog run?", "auto", "object", False, "rules"),
    ],
)
def test_routing_label_wins_then_rules(question, label, branch, repetition, source):
    route = route_question(question, label)
    assert (route.branch, route.repetition, route.source) == (branch, repetition, source)


# ----------------------------------------------------------------------------- backend


@pytest.mark.parametrize("family", ["qwen25", "qwen2"])
def test_local_model_receives_every_labelled_frame_in_order(family, request):
    handle = load_mllm("transformers", str(request.getfixturevalue(family)), max_new_tokens=4)
    frames = torch.stack([torch.full((40, 56, 3), i / 10) for i in range(5)])
    answer = handle.model.generate(
        final_prompt("What moves?", [Stream("spotlight", frames)]), GenerationOptions(4)
    )
    text = answer.extra["templated_text"]
    assert answer.num_images == 5 and text.count("<|image_pad|>") == 5
    labels = re.findall(r"Frame(\d+): <\|vision_start\|><\|image_pad\|><\|vision_end\|>", text)
    assert labels == ["0", "1", "2", "3", "4"]
    assert answer.extra["image_means"] == pytest.approx([i / 10 for i in range(5)], abs=0.01)
    assert isinstance(answer.text, str) and not answer.dry_run


def test_images_are_limited_to_max_pixels(qwen25):
    handle = load_mllm("transformers", str(qwen25), max_pixels=32 * 32, max_new_tokens=2)
    answer = handle.model.generate(
        final_prompt("q", [Stream("original", torch.rand(2, 120, 160, 3))]), GenerationOptions(2)
    )
    assert all(h * w <= 32 * 32 for h, w in answer.extra["image_sizes"])


def test_video_mode_sends_one_video_per_stream(qwen25):
    handle = load_mllm("transformers", str(qwen25), frames_as="video", max_new_tokens=2)
    streams = [
        Stream("original", torch.rand(4, 56, 56, 3)),
        Stream("spotlight", torch.rand(4, 56, 56, 3)),
    ]
    text = handle.model.generate(final_prompt("q", streams), GenerationOptions(2)).extra[
        "templated_text"
    ]
    assert text.count("<|video_pad|>") == 2 and "<|image_pad|>" not in text and "Frame0" not in text


def test_action_objects_retry_a_bounded_number_of_times_then_fall_back(qwen25):
    handle = load_mllm("transformers", str(qwen25), max_new_tokens=6)
    found = extract_action_objects(
        handle.model, "What moves?", torch.rand(2, 56, 56, 3), attempts=2
    )
    # a random model never writes valid JSON: two replies, then the recorded fallback
    assert len(found.raw) == 2 and found.fallback and found.objects == ["moving object"]


@pytest.mark.parametrize("make", ["missing", "no_config", "not_multimodal"])
def test_a_folder_that_is_not_a_model_gives_a_clear_error(make, tmp_path):
    folder = tmp_path / "model"
    if make != "missing":
        folder.mkdir()
    if make == "not_multimodal":
        (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(MLLMError, match=re.escape(str(folder))):
        load_mllm("transformers", str(folder))


# ----------------------------------------------------------------------------- workflows


def _ask_info(result) -> dict:
    return json.loads(result.output("MotionSightAsk").result[1])


@pytest.mark.parametrize(
    "video, question, branch",
    [
        ("desert_vehicles_aerial.mp4", MC_QUESTION, "camera"),
        ("lawn_mowing.mp4", "What does the man push?", "object"),
    ],
)
def test_routed_workflow_runs_with_a_local_model(
    video, question, branch, qwen25, sample_videos_dir, tmp_path
):
    result = run_workflow(
        WORKFLOWS / "Ask about motion - auto routed.json",
        {
            "MotionSightLoadVideo.video": str(sample_videos_dir / video),
            "MotionSightLoadVideo.max_side": 224,
            "MotionSightLoadMLLM.model": str(qwen25),
            "MotionSightLoadMLLM.max_new_tokens": 4,
            "MotionSightQuestion.question": question,
        },
        output_dir=tmp_path,
    )
    info = _ask_info(result)
    assert info["route"]["branch"] == branch and not info["dry_run"]
    stream = "motion_trails" if branch == "camera" else "spotlight"
    assert info["streams"] == [stream] and info["num_images"] == 16
    assert info["prompt_text"].startswith(HEADINGS[stream] + "\nFrame0: <image>\nFrame1: <image>")
    assert "The video contains 16 frames sampled at" in info["prompt_text"]
    labels = re.findall(r"Frame(\d+): <\|vision_start\|>", info["templated_text"])
    assert labels == [str(i) for i in range(16)]
    # the images that reached the processor are the saved frames (Ask's shown_frames), in order
    (save,) = [o for o in result.outputs if o.ui.get("frames")]
    saved_means = [float(cv2.imread(p).mean()) / 255 for p in save.ui["frames"]]
    assert info["image_means"] == pytest.approx(saved_means, abs=0.02)


def test_changing_only_the_question_reruns_only_the_mllm_steps(qwen25, sample_videos_dir, tmp_path):
    executor = Executor(motionsight.NODE_CLASS_MAPPINGS, quiet=True)
    settings = {
        "MotionSightLoadVideo.video": str(sample_videos_dir / "desert_train.mp4"),
        "MotionSightLoadVideo.max_side": 160,
        "MotionSightLoadMLLM.model": str(qwen25),
        "MotionSightLoadMLLM.max_new_tokens": 2,
    }
    workflow = WORKFLOWS / "Ask about camera motion.json"
    run_workflow(
        workflow,
        {**settings, "MotionSightQuestion.question": "Is the camera moving?"},
        executor=executor,
        output_dir=tmp_path,
    )
    counts = dict(executor.execution_counts)
    second = run_workflow(
        workflow,
        {**settings, "MotionSightQuestion.question": "Does the camera pan?"},
        executor=executor,
        output_dir=tmp_path,
    )
    ran = {second.prompt[n]["class_type"] for n in second.executed}
    assert ran == {"MotionSightQuestion", "MotionSightAsk"}
    for cls in (
        "MotionSightLoadVideo",
        "MotionSightMotionTrails",
        "MotionSightLoadMLLM",
        "MotionSightSaveFrames",
    ):
        assert executor.execution_counts[cls] == counts[cls] == 1


def test_without_a_model_the_workflow_dry_runs_and_still_saves_the_prompts(
    sample_videos_dir, tmp_path, capsys
):
    code = main(
        [
            "ask",
            str(sample_videos_dir / "desert_train.mp4"),
            "What moves?",
            "--max-side",
            "128",
            "--output",
            str(tmp_path),
            "--quiet",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    assert out.startswith("[dry run] No MLLM configured: set a model folder (--model PATH)")
    assert "Request (16 images):" in out and 'Here is the question: "What moves?".' in out
    assert len(list(tmp_path.rglob("contact_sheet.png"))) == 1  # the branch taken only


def test_ask_command_reports_a_bad_model_folder_without_traceback(
    sample_videos_dir, tmp_path, capsys
):
    code = main(
        [
            "ask",
            str(sample_videos_dir / "desert_train.mp4"),
            "q",
            "--model",
            str(tmp_path),
            "--output",
            str(tmp_path),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code != 0 and "no config.json" in err and str(tmp_path) in err and "Traceback" not in err


def test_shipped_mllm_workflows_store_no_model_or_key(repo_root):
    for name in (
        "Ask about motion - auto routed",
        "Ask about object motion",
        "Ask about camera motion",
    ):
        prompt = load_workflow(WORKFLOWS / f"{name}.json", motionsight.NODE_CLASS_MAPPINGS)
        loader = next(n for n in prompt.values() if n["class_type"] == "MotionSightLoadMLLM")
        assert (
            loader["inputs"]["api_key_env"] == "OPENAI_API_KEY"
            and "api_key" not in loader["inputs"]
        )


class _RecordingProcessor:
    """Wraps a loaded processor: records what each call receives, then delegates."""

    def __init__(self, processor):
        self._processor = processor
        self.calls: list[dict] = []

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return self._processor(**kwargs)

    def __getattr__(self, name):
        return getattr(self._processor, name)


@pytest.mark.parametrize("family", ["qwen25", "qwen2"])
def test_processor_receives_the_labelled_frames_of_each_stream_in_order(family, request):
    handle = load_mllm("transformers", str(request.getfixturevalue(family)), max_new_tokens=2)
    handle.model.load()
    recorder = handle.model._processor = _RecordingProcessor(handle.model._processor)
    original = torch.stack([torch.full((28, 56, 3), 0.1 * i) for i in range(3)])
    spotlight = torch.stack([torch.full((28, 56, 3), 0.5 + 0.1 * i) for i in range(3)])
    streams = [Stream("spotlight", spotlight), Stream("original", original)]  # order is fixed
    answer = handle.model.ask(streams, MC_QUESTION, GenerationOptions(2), [0.5, 1.5, 2.5])
    (call,) = recorder.calls
    means = [float(image.mean()) / 255 for image in call["images"]]
    assert means == pytest.approx([0.0, 0.1, 0.2, 0.5, 0.6, 0.7], abs=0.01)
    (text,) = call["text"]
    image = "<|vision_start|><|image_pad|><|vision_end|>"
    assert text.count(image) == 6
    assert (
        f"Original video:\nFrame0: {image}\nFrame1: {image}\nFrame2: {image}\n"
        f"Spotlight video:\nFrame0: {image}\nFrame1: {image}\nFrame2: {image}\n"
        "The video contains 3 frames sampled at 0.5, 1.5, 2.5 seconds.\n"
        f'Here is the question: "{MC_QUESTION}".\n{MULTIPLE_CHOICE_INSTRUCTION}'
    ) in text
    assert answer.num_images == 6 and answer.prompt_text.count("<image>") == 6
