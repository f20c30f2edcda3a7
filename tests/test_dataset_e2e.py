"""`motionsight dataset` end to end on the five sample clips: scan, annotate, questions, pairs and
every export, with the loopback OpenAI-compatible server and with a tiny offline Qwen2.5-VL.

Every export is checked against its trainer's documented schema here (`check_exports`); the
trainers' own loaders are run on these files by `scripts/check_dataset_exports.py` where they
install (see the README's dataset section).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openai_server import OpenAITestServer, allow, content_text

from motionsight.dataset.export import SYSTEM_PROMPT
from motionsight.engine.cli import main

CLIPS = ["desert_train", "desert_vehicles_aerial", "diving_board", "lawn_mowing", "stairs_pet"]
SPOT_OBJECT = "The person moves forward steadily, then turns left."
PLAIN_OBJECT = "Something moves."
TRAIL_CAMERA = "The camera pans slowly to the right, following the subject."
PLAIN_CAMERA = "The camera is static."


def _reply(body: dict) -> str:
    """A scripted model: its answer depends on the stream it is shown, like a real one."""
    text = content_text(body)
    if "action_objects" in text:
        return json.dumps({"action_objects": ["person"]})
    if "Does this video show" in text:
        return "Yes"
    if "multiple-choice" in text:
        grounded = "camera" not in text.split("Description:")[0].split("about the")[1][:12]
        option = "It moves forward steadily" if grounded else "It flies to the moon"
        return json.dumps({"question": "How does it move?", "answer": "B",
                           "options": ["It spins", option, "It jumps", "It stays still"]})  # fmt: skip
    if "how the camera moves" in text:
        return TRAIL_CAMERA if "motion blur" in text else PLAIN_CAMERA
    return SPOT_OBJECT if "Spotlight video:" in text else PLAIN_OBJECT


def _run(capsys: pytest.CaptureFixture, *args: str) -> str:
    code = main(["dataset", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_exports(out: Path, videos: Path, n_sft: int, n_pref: int) -> None:
    """Each trainer's files against its documented schema (see dataset/export.py's table)."""
    names = {f"{c}.mp4" for c in CLIPS}
    # 2U1/Qwen2-VL-Finetune: JSON lists; "video" joined to --image_folder; one <video> first
    sft = json.loads((out / "qwen2vl-finetune" / "motion_sft.json").read_text())
    dpo = json.loads((out / "qwen2vl-finetune" / "motion_dpo.json").read_text())
    assert len(sft) == n_sft and len(dpo) == n_pref
    for row in sft:
        assert set(row) == {"id", "video", "conversations"} and row["video"] in names
        human, gpt = row["conversations"]
        assert (human["from"], gpt["from"]) == ("human", "gpt")
        assert human["value"].startswith("<video>\n") and human["value"].count("<video>") == 1
        assert gpt["value"].strip()
    for row in dpo:
        assert set(row) == {"id", "video", "prompt", "chosen", "rejected"}
        assert row["prompt"].startswith("<video>\n") and row["chosen"] != row["rejected"]
        assert (videos / row["video"]).is_file()
    # LLaMA-Factory: sharegpt + videos, <video> count == len(videos), dataset_info entries
    info = json.loads((out / "llamafactory" / "dataset_info.json").read_text())
    assert info["motion_sft"]["formatting"] == "sharegpt" and "ranking" not in info["motion_sft"]
    assert info["motion_dpo"]["ranking"] is True
    for entry in info.values():
        rows = json.loads((out / "llamafactory" / entry["file_name"]).read_text())
        columns = entry["columns"]
        for row in rows:
            turns = row[columns["messages"]]
            tokens = sum(t["value"].count("<video>") for t in turns)
            assert tokens == len(row[columns["videos"]]) == 1
            assert row[columns["system"]] == SYSTEM_PROMPT
            if entry.get("ranking"):
                assert len(turns) % 2 == 1 and turns[-1]["from"] == "human"
                assert row[columns["chosen"]]["from"] == row[columns["rejected"]]["from"] == "gpt"
            else:
                assert [t["from"] for t in turns] == ["human", "gpt"]
    # ms-swift: JSONL messages + videos; DPO adds rejected_response
    for file, n in (("motion_sft.jsonl", n_sft), ("motion_dpo.jsonl", n_pref)):
        rows = _lines(out / "ms-swift" / file)
        assert len(rows) == n
        for row in rows:
            roles = [m["role"] for m in row["messages"]]
            assert roles == ["system", "user", "assistant"]
            assert row["messages"][1]["content"].count("<video>") == len(row["videos"]) == 1
            if "dpo" in file:
                assert row["rejected_response"] != row["messages"][2]["content"]
    # TRL: conversational prompt/chosen/rejected (preference), messages (SFT), videos column
    for row in _lines(out / "trl" / "motion_dpo.jsonl"):
        assert set(row) == {"prompt", "chosen", "rejected", "videos"}
        assert row["prompt"][0]["role"] == "user" and row["chosen"][0]["role"] == "assistant"
        assert [c["type"] for c in row["prompt"][0]["content"]] == ["video", "text"]
    assert len(_lines(out / "trl" / "motion_sft.jsonl")) == n_sft
    # MotionVid-QA's released layout: the sample file's keys, bare file names
    samples = json.loads((videos / "motionvid_samples.json").read_text())
    mv = json.loads((out / "motionvid" / "motion_dpo.json").read_text())
    assert len(mv) == n_pref
    for row in mv:
        assert set(row) == set(samples[0]) - {"source_name"}
        assert row["video"] in {s["video"] for s in samples} and "<video>" not in row["question"]


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory, sample_videos_dir: Path) -> Path:
    work = tmp_path_factory.mktemp("dataset")
    code = main(["dataset", "scan", str(sample_videos_dir), "--out", str(work / "scan.jsonl"),
                 "--num-frames", "8", "--concurrency", "2", "--fsync-interval", "0"])  # fmt: skip
    assert code == 0
    return work / "scan.jsonl"


def test_scan_annotate_questions_pairs_export_with_the_loopback_server(
    scanned: Path, sample_videos_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    scan = _lines(scanned)
    assert sorted(Path(r["video"]).stem for r in scan) == CLIPS
    assert all(r["error"] is None and set(r["probe"]) >= {"duration", "fps", "width", "height"}
               for r in scan)  # fmt: skip
    assert (scanned.parent / "scan_hist" / "hist_camera_motion.png").is_file()
    ann, work = tmp_path / "annotations.jsonl", tmp_path
    with OpenAITestServer(responder=_reply) as server:
        _run(capsys, "annotate", "--scan", str(scanned), "--out", str(ann), "--all",
             "--base-url", server.base_url, "--model-name", "test-model", "--num-frames", "4",
             "--max-side", "160", "--concurrency", "2", "--fsync-interval", "0")  # fmt: skip
        # a re-run resumes: nothing is asked again
        asked = len(server.requests)
        out = _run(capsys, "annotate", "--scan", str(scanned), "--out", str(ann), "--all",
                   "--base-url", server.base_url, "--model-name", "test-model",
                   "--num-frames", "4", "--max-side", "160")  # fmt: skip
        assert "skipped 5 already done" in out and len(server.requests) == asked
        # the same file with other settings is refused, naming what differs
        code = main(["dataset", "annotate", "--scan", str(scanned), "--out", str(ann), "--all",
                     "--base-url", server.base_url, "--model-name", "other-model"])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 1 and "'test-model' -> 'other-model'" in err and "--allow-mixed" in err
        out = _run(capsys, "questions", "--annotations", str(ann), "--out", str(work / "q.jsonl"),
                   "--mcq-base-url", server.base_url, "--mcq-model-name", "text-model")  # fmt: skip
    assert "10 multiple-choice QAs kept" not in out  # camera QAs are ungrounded: rejected
    assert "5 multiple-choice QAs kept (5 rejected: the correct option is not grounded" in out

    records = _lines(ann)
    assert len(records) == 5
    for r in records:
        assert r["error"] is None
        assert (r["object_motion"], r["original_object_motion"]) == (SPOT_OBJECT, PLAIN_OBJECT)
        assert (r["camera_motion"], r["original_camera_motion"]) == (TRAIL_CAMERA, PLAIN_CAMERA)
        assert r["streams"]["object_motion"] == "spotlight"
        assert r["streams"]["camera_motion"] == "motion_trails"
        prov = r["provenance"]
        assert (prov["model"], prov["backend"]) == ("test-model", "openai")
        assert prov["workflow_hash"].startswith("sha256:") and prov["settings"]["num_frames"] == 4
        assert all(h.startswith("sha256:") for h in r["prompt_hashes"].values())
        assert len(set(r["prompt_hashes"].values())) == 4
        assert len(list(Path(r["visual_prompts"]["spotlight"]).glob("*.jpg"))) == 4

    questions = _lines(work / "q.jsonl")
    template = [q for q in questions if q["answer_source"] == "motionsight"]
    mcq = [q for q in questions if q["answer_source"] == "mcq"]
    assert len(template) == 15 and {q["kind"] for q in template} == {"object", "camera", "mixed"}
    assert all(q["answer"] == "B" and "\nB. It moves forward steadily\n" in q["question"] for q in mcq)

    _run(capsys, "pairs", "--annotations", str(ann), "--out", str(work / "pairs.jsonl"))
    pairs = _lines(work / "pairs.jsonl")
    assert len(pairs) == 15
    for p in pairs:
        assert [c["source"] for c in p["candidates"]] == ["motionsight", "plain"]
        assert p["chosen"] == 0 and p["choice_by"] == "rule"
        assert (work / p["video"]).resolve().is_file()  # relative to the pairs file's folder
        assert (work / p["visual_prompts"]["trails"]).is_dir()

    exported = tmp_path / "export"
    out = _run(capsys, "export", "--questions", str(work / "q.jsonl"), "--pairs",
               str(work / "pairs.jsonl"), "--trainer", "all", "--out", str(exported),
               "--media-root", str(sample_videos_dir))  # fmt: skip
    check_exports(exported, sample_videos_dir, n_sft=len(questions), n_pref=15)
    mv = json.loads((exported / "motionvid" / "motion_dpo.json").read_text())
    assert {(r["chosen"], r["rejected"]) for r in mv} == {
        (SPOT_OBJECT, PLAIN_OBJECT), (TRAIL_CAMERA, PLAIN_CAMERA),
        (f"{SPOT_OBJECT}\n\nCamera: {TRAIL_CAMERA}", f"{PLAIN_OBJECT}\n\nCamera: {PLAIN_CAMERA}"),
    }  # fmt: skip

    # pairs left for people are not exported until chosen
    _run(capsys, "pairs", "--annotations", str(ann), "--out", str(work / "open.jsonl"), "--rule", "none")
    assert all(p["chosen"] is None and p["choice_by"] is None for p in _lines(work / "open.jsonl"))
    code = main(["dataset", "export", "--pairs", str(work / "open.jsonl"), "--out", str(tmp_path / "x")])
    assert code == 2 and "no decided pairs" in capsys.readouterr().err


def test_end_to_end_with_a_tiny_offline_transformers_model(
    scanned: Path, sample_videos_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from tiny_models import build_tiny_qwen25_vl

    model = build_tiny_qwen25_vl(tmp_path / "tiny-qwen25vl")
    # the VQAScore-style yes-probability from the model's own next-token distribution
    scan2 = tmp_path / "scan.jsonl"
    _run(capsys, "scan", str(sample_videos_dir / "diving_board.mp4"), str(sample_videos_dir / "desert_train.mp4"),
         "--out", str(scan2), "--num-frames", "6", "--yes-model", str(model))  # fmt: skip
    for r in _lines(scan2):
        assert r["vqa_source"] == "logprobs"
        assert 0.0 < r["scores"]["yes_object_motion"] < 1.0
        assert 0.0 < r["scores"]["yes_camera_motion"] < 1.0
    ann = tmp_path / "annotations.jsonl"
    _run(capsys, "annotate", "--scan", str(scanned), "--out", str(ann), "--all", "--model",
         str(model), "--max-new-tokens", "6", "--num-frames", "4", "--max-side", "160",
         "--no-visual-prompts")  # fmt: skip
    records = _lines(ann)
    assert len(records) == 5 and all(r["error"] is None for r in records)
    assert all(r["provenance"]["backend"] == "transformers" for r in records)
    assert all(r["provenance"]["model"] == str(model) for r in records)
    _run(capsys, "questions", "--annotations", str(ann), "--out", str(tmp_path / "q.jsonl"))
    _run(capsys, "pairs", "--annotations", str(ann), "--out", str(tmp_path / "pairs.jsonl"))
    questions, pairs = _lines(tmp_path / "q.jsonl"), _lines(tmp_path / "pairs.jsonl")
    assert questions and pairs  # random weights: random but distinct texts
    _run(capsys, "export", "--questions", str(tmp_path / "q.jsonl"), "--pairs",
         str(tmp_path / "pairs.jsonl"), "--out", str(tmp_path / "export"), "--media-root",
         str(sample_videos_dir))  # fmt: skip
    check_exports(tmp_path / "export", sample_videos_dir, len(questions), len(pairs))


def test_describe_motion_workflow_with_the_loopback_server(
    sample_videos_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from motionsight.engine import run_workflow

    workflow = Path(__file__).resolve().parents[1] / "workflows" / "Describe motion.json"
    with OpenAITestServer(responder=_reply) as server:
        allow(monkeypatch, server.base_url)  # the user's consent, as --trust-url gives it
        result = run_workflow(workflow, {
            "MotionSightLoadVideo.video": str(sample_videos_dir / "diving_board.mp4"),
            "MotionSightLoadVideo.max_side": 160, "MotionSightLoadVideo.num_frames": 6,
            "MotionSightLoadMLLM.backend": "openai", "MotionSightLoadMLLM.base_url": server.base_url,
            "MotionSightLoadMLLM.model": "test-model",
        }, output_dir=tmp_path)  # fmt: skip
        shown = [content_text(r["body"]) for r in server.requests if r["method"] == "POST"]
    obj, cam, info = result.output("MotionSightDescribeMotion").result
    assert (obj, cam) == (SPOT_OBJECT, TRAIL_CAMERA)
    assert json.loads(info)["streams"] == {"object": "spotlight", "camera": "motion_trails"}
    assert len(shown) == 2 and shown[0].count("Frame") == 6
    assert "sampled at" in shown[0]  # the sample times from the video handle
