"""The dataset's parts on their own: clarity and motion scores, thresholds, templates, MCQ
validation, pairs, trainer exports' rules, the fixed eval export and eval provenance."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch

from motionsight.dataset.clarity import blockiness, luma, sharpness
from motionsight.dataset.export import ExportError, export_preference, export_sft, video_prompt
from motionsight.dataset.pairs import build_pairs, preference_records
from motionsight.dataset.questions import TEMPLATES, build_questions, load_templates, validate_mcq
from motionsight.dataset.scan import Thresholds, apply_thresholds, scan_video
from motionsight.dataset.vqascore import parse_top_logprobs
from motionsight.evaluation.export import export_results, lenient_choice
from motionsight.evaluation.results import ResultRecord, ResultsFileError
from motionsight.evaluation.runner import run_eval


# -- clarity ------------------------------------------------------------------------------------
def test_sharpness_drops_with_blur_and_blockiness_rises_with_8px_blocks() -> None:
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 1, 128, 128, generator=g)
    image = torch.nn.functional.avg_pool2d(image, 3, 1, 1)  # natural-ish texture
    blurred = torch.nn.functional.avg_pool2d(image, 9, 1, 4)
    assert sharpness(blurred) < 0.3 * sharpness(image)
    blocks = torch.nn.functional.interpolate(  # one value per 8x8 block: codec blocking
        torch.nn.functional.avg_pool2d(image, 8), scale_factor=8, mode="nearest"
    )
    assert blockiness(blocks).item() > 3.0
    assert 0.8 < blockiness(image).item() < 1.2
    with pytest.raises(ValueError, match=r"\[N, 1, H, W\]"):
        sharpness(torch.rand(2, 3, 8, 8))
    assert luma(torch.full((1, 4, 4, 3), 255, dtype=torch.uint8)).allclose(torch.ones(1, 1, 4, 4))


# -- scan -------------------------------------------------------------------------------------
def test_scan_scores_tell_camera_from_object_motion(sample_videos_dir: Path) -> None:
    aerial = scan_video(sample_videos_dir / "desert_vehicles_aerial.mp4")  # the camera follows
    lawn = scan_video(sample_videos_dir / "lawn_mowing.mp4")  # static camera, a man walks
    assert aerial["probe"] == {"duration": 2.667, "fps": 24.0, "frame_count": 64, "width": 512,
                               "height": 512}  # fmt: skip
    assert aerial["scores"]["camera_motion"] > 20 * lawn["scores"]["camera_motion"]
    assert lawn["scores"]["object_motion"] > 0 and lawn["scores"]["moving_share"] > 0.02
    assert all(math.isfinite(v) for v in lawn["scores"].values())


def test_scan_records_an_undecodable_file_and_thresholds_explain_drops(tmp_path: Path) -> None:
    from motionsight.engine.cli import main

    bad = tmp_path / "videos" / "broken.mp4"
    bad.parent.mkdir()
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    code = main(["dataset", "scan", str(bad.parent), "--out", str(tmp_path / "scan.jsonl")])
    assert code == 0
    (record,) = [json.loads(x) for x in (tmp_path / "scan.jsonl").read_text().splitlines()]
    assert record["keep"] is False and record["reasons"] == ["not decodable"]
    assert "broken.mp4" in record["error"]
    records = {
        "a": {"error": None, "probe": {"duration": 5.0, "width": 640, "height": 480},
              "scores": {"clarity": 0.02, "blockiness": 1.0, "object_motion": 0.01, "camera_motion": 0.0}},
        "b": {"error": None, "probe": {"duration": 0.5, "width": 640, "height": 480},
              "scores": {"clarity": 0.02, "blockiness": 1.0, "object_motion": 0.01, "camera_motion": 0.0}},
        "c": {"error": None, "probe": {"duration": 5.0, "width": 640, "height": 480},
              "scores": {"clarity": 0.02, "blockiness": 1.0, "object_motion": 0.0, "camera_motion": 0.001}},
    }  # fmt: skip
    apply_thresholds(records, Thresholds(preference_share=1.0))
    assert [records[k]["keep"] for k in "abc"] == [True, False, False]
    assert records["b"]["reasons"] == ["duration 0.5s < 1.0"]
    assert records["c"]["reasons"][0].startswith("too little motion")
    assert records["a"]["split"] == "preference"
    code = main(["dataset", "scan", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.jsonl")])
    assert code == 2


def test_yes_probability_from_openai_top_logprobs() -> None:
    reply = {"choices": [{"message": {"content": "Yes"}, "logprobs": {"content": [
        {"token": "Yes", "logprob": math.log(0.6), "top_logprobs": [
            {"token": "Yes", "logprob": math.log(0.6)}, {"token": "No", "logprob": math.log(0.2)},
            {"token": " yes", "logprob": math.log(0.1)}, {"token": "Maybe", "logprob": math.log(0.1)}]}]}}]}  # fmt: skip
    assert parse_top_logprobs(reply) == pytest.approx(0.7 / 0.9)
    assert parse_top_logprobs({"choices": [{"message": {"content": "Yes"}}]}) is None


# -- questions, pairs ---------------------------------------------------------------------------
ANN = {"uid": "clip-1", "video": "/v/clip.mp4", "object_motion": "A man walks left.",
       "camera_motion": "The camera pans.", "original_object_motion": "A man moves.",
       "original_camera_motion": "Static camera.", "split": "sft", "provenance": {"model": "m"}}  # fmt: skip


def test_templates_questions_and_pairs(tmp_path: Path) -> None:
    assert [len(TEMPLATES[k]) for k in ("object", "camera", "mixed")] == [10, 8, 4]  # the paper's
    rows = build_questions([ANN])
    assert [r["kind"] for r in rows] == ["object", "camera", "mixed"]
    assert rows[2]["answer"] == "A man walks left.\n\nCamera: The camera pans."
    assert build_questions([ANN]) == rows  # deterministic template choice
    own = tmp_path / "t.json"
    own.write_text(json.dumps({"camera": [{"instruction": "<video>\nWhere does the lens go?",
                                           "output": "", "system": "x"}]}))  # fmt: skip
    rows = build_questions([ANN], load_templates(own))
    assert [(r["kind"], r["question"]) for r in rows] == [("camera", "Where does the lens go?")]
    own.write_text(json.dumps({"sound": ["x"]}))
    with pytest.raises(ValueError, match="t.json: unknown kind 'sound'"):
        load_templates(own)

    pairs = build_pairs([ANN, {**ANN, "uid": "same", "original_camera_motion": "The camera pans."}],
                        tmp_path / "sub" / "pairs.jsonl")  # fmt: skip
    assert [p["id"] for p in pairs] == ["clip-1-object", "clip-1-camera", "clip-1-mixed",
                                        "same-object", "same-mixed"]  # identical sides: no pair
    assert pairs[0]["video"] == os.path.relpath("/v/clip.mp4", tmp_path / "sub")
    records, undecided = preference_records([*pairs, {**pairs[0], "id": "open", "chosen": None}])
    assert undecided == 1 and records[0]["chosen"] == "A man walks left."
    assert records[0]["rejected"] == "A man moves." and records[0]["choice_by"] == "rule"
    with pytest.raises(ValueError, match="pair 0 .*'clip-1-object'.*chosen 2"):
        preference_records([{**pairs[0], "chosen": 2}])


def test_multiple_choice_validation() -> None:
    text = "A woman stands on a diving board, bends her knees and straightens up."
    good = {"question": "What does she do?", "answer": "C",
            "options": ["She dives", "She swims", "She bends her knees", "She runs"]}  # fmt: skip
    assert validate_mcq(good, text) is None
    assert validate_mcq({**good, "answer": "C and D"}, text).startswith("answer")
    assert validate_mcq({**good, "options": ["a", "a", "b", "c"]}, text) == "options are not distinct"
    assert validate_mcq({**good, "answer": "A"}, text) == "the correct option is not grounded in the description"
    assert validate_mcq({**good, "options": good["options"][:3]}, text) == "options must be four texts"
    assert validate_mcq(None, text) == "no JSON object"


# -- trainer exports ----------------------------------------------------------------------------
def test_export_rules_and_errors(tmp_path: Path) -> None:
    assert video_prompt("<video> How? <video>") == "<video>\nHow?"
    rec = {"id": "a", "video": "clips/a.mp4", "question": "How?", "chosen": "x", "rejected": "y"}
    (out,) = export_preference([rec], "qwen2vl-finetune", tmp_path, media_root=tmp_path / "clips",
                               base_dir=tmp_path)  # fmt: skip
    assert json.loads(out.read_text())[0]["video"] == "a.mp4"
    (out,) = export_preference([rec], "ms-swift", tmp_path / "abs", base_dir=tmp_path)
    assert json.loads(out.read_text())["videos"] == [str(tmp_path / "clips" / "a.mp4")]
    with pytest.raises(ExportError, match=r"record 0 \(id 'a'\): chosen and rejected are the same"):
        export_preference([{**rec, "rejected": "x"}], "trl", tmp_path)
    with pytest.raises(ExportError, match=r"record 1 \(id 'a'\): duplicate id"):
        export_preference([rec, rec], "trl", tmp_path)
    with pytest.raises(ExportError, match="field 'answer' must be non-empty text"):
        export_sft([{**rec, "answer": " "}], "trl", tmp_path)
    with pytest.raises(ExportError, match="unknown SFT trainer 'motionvid'"):
        export_sft([rec], "motionvid", tmp_path)
    # LLaMA-Factory's dataset_info.json keeps the user's other entries
    info = tmp_path / "lf" / "dataset_info.json"
    info.parent.mkdir()
    info.write_text(json.dumps({"mine": {"file_name": "mine.json"}}))
    export_preference([rec], "llamafactory", tmp_path / "lf")
    assert set(json.loads(info.read_text())) == {"mine", "motion_dpo"}


# -- the eval-derived export (fixed) and eval provenance ------------------------------------------
def _mb(uid: str, answer: str, output: str, correct: bool, options=("walks", "runs", "sits", "jumps")) -> ResultRecord:  # noqa: ANN001
    return ResultRecord(uid=uid, benchmark="motionbench", category="Motion Recognition",
                        question="Q", prompt="Q\n(A) walks\n(B) runs\n(C) sits\n(D) jumps",
                        video="v.mp4", answer=answer, output=output, parsed=output[:1],
                        correct=correct, time_s=0.1, options=list(options))  # fmt: skip


def test_eval_export_one_format_never_rejects_a_correct_answer(tmp_path: Path) -> None:
    records = [
        _mb("q1", "B", "The answer is B.", False),  # right, but the strict rule read "T"
        _mb("q2", "B", "(C) sits", False),  # wrong: its own mistake is the negative
        _mb("q3", "A", "A", True),
    ]
    assert [lenient_choice(r) for r in records] == ["B", "C", "A"]
    export_results(records, tmp_path / "p.json", "preference")
    rows = json.loads((tmp_path / "p.json").read_text())
    assert [r["chosen"] for r in rows] == ["(B) runs", "(B) runs", "(A) walks"]
    assert rows[0]["rejected"] != "(B) runs" and rows[0]["rejected"].startswith("(")
    assert rows[1]["rejected"] == "(C) sits"
    assert all(r["rejected"] in {"(A) walks", "(B) runs", "(C) sits", "(D) jumps"} for r in rows)
    # one record without parsed options: every answer of the file becomes a bare letter
    export_results([*records, _mb("q4", "D", "x", False, options=())], tmp_path / "l.json", "preference")
    rows = json.loads((tmp_path / "l.json").read_text())
    assert all(len(r["chosen"]) == 1 and len(r["rejected"]) == 1 for r in rows)


def test_eval_resume_with_another_configuration_is_refused(tmp_path: Path, sample_videos_dir: Path) -> None:
    from test_eval_run import build_favor, canned_answer

    from motionsight.evaluation.benchmarks import load_benchmark

    _, fav = build_favor(tmp_path, sample_videos_dir, per_video=1)
    qs = load_benchmark("favor", fav, sample_videos_dir)
    a = {"model": "model-a", "backend": "openai", "workflow_hash": "sha256:1", "settings_hash": "s"}
    out = tmp_path / "r.jsonl"
    run_eval(qs, lambda: lambda q: (canned_answer(q), {"route": {"branch": "object"}, "prompt_hash": "sha256:p"}),
             out, provenance=a, print_table=False)  # fmt: skip
    first = json.loads(out.read_text().splitlines()[0])
    assert first["provenance"] == {**a, "route": {"branch": "object"}, "prompt_hash": "sha256:p"}
    report = run_eval(qs, lambda: canned_answer, out, provenance=a, print_table=False)
    assert report.skipped == len(qs)  # the same configuration resumes
    with pytest.raises(ResultsFileError, match="model: 'model-a' -> 'model-b'.*--allow-mixed"):
        run_eval(qs, lambda: canned_answer, out, provenance={**a, "model": "model-b"}, print_table=False)
    report = run_eval(qs, lambda: canned_answer, out, provenance={**a, "model": "model-b"},
                      allow_mixed=True, print_table=False)  # fmt: skip
    assert report.skipped == len(qs)
