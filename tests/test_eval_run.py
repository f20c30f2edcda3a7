"""Resumable benchmark runs: durability under SIGKILL, retries, executors, compare and export.

The answer function here is a small deterministic one (optionally slow), so these tests check
the harness itself; ``test_eval_workflow.py`` runs the same files through real workflows (and
holds the Ray test).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from cli_subprocess import cli, cli_env, complete_lines

from motionsight.evaluation.benchmarks import BenchmarkQuestion, load_benchmark
from motionsight.evaluation.export import export_results
from motionsight.evaluation.results import ResultsFileError, ResultsStore, load_results
from motionsight.evaluation.runner import Outcome, make_record, run_eval

CLIPS = ["desert_train", "desert_vehicles_aerial", "diving_board", "lawn_mowing", "stairs_pet"]
MB_CATEGORIES = ["Camera Motion", "Action Order", "Motion Recognition", "Repetition Count",
                 "Camera Motion"]  # fmt: skip


# -- benchmark files over the sample clips --------------------------------------------------------
def build_motionbench(tmp: Path, videos: Path, per_video: int = 4) -> tuple[Path, Path]:
    """A MotionBench-format dataset root (clips under self-collected/) and its meta file."""
    root = tmp / "motionbench"
    (root / "self-collected").mkdir(parents=True, exist_ok=True)
    lines = []
    for v, (clip, category) in enumerate(zip(CLIPS, MB_CATEGORIES, strict=True)):
        link = root / "self-collected" / f"{clip}.mp4"
        if not link.exists():
            link.symlink_to(videos / f"{clip}.mp4")
        qa = [
            {
                "uid": f"mb{v}_{i}",
                "answer": "ABCD"[(v + i) % 4],
                "start": 0,
                "end": 2,
                "question": f"How does the main object move? ({i})\n(A) A man moves left\n"
                "(B) Right\n(C) Up\n(D) It stays still",
            }  # fmt: skip
            for i in range(per_video)
        ]
        qa.append({"uid": f"mb{v}_hidden", "question": "Q\n(A) x\n(B) y", "answer": "NA"})
        lines.append(json.dumps({"key": clip, "video_path": f"{clip}.mp4", "video_type": "x",
                                 "question_type": category, "qa": qa}))  # fmt: skip
    meta = root / "video_info.meta.jsonl"
    meta.write_text("\n".join(lines) + "\n")
    return root, meta


FAVOR_TYPES = ["AS", "CM", "HAC", "SAD", "MAD"]


def build_favor(tmp: Path, videos: Path, per_video: int = 2) -> tuple[Path, Path]:
    """A FAVOR-format file over the sample clips (names with and without ``.mp4``)."""
    items = []
    for v, clip in enumerate(CLIPS):
        options = ["moves left", "moves left and stops", "moves right", "stays still", "turns"]
        questions = [
            {
                "question": f"How does it move? ({i})",
                "options": options,
                "correct_answer": options[(v + i) % 5],
                "task_type": FAVOR_TYPES[(v + i) % 5],
            }  # fmt: skip
            for i in range(per_video)
        ]
        items.append({"video_name": clip + (".mp4" if v % 2 else ""), "questions": questions})
    path = tmp / "video_perspective.json"
    path.write_text(json.dumps(items, indent=1))
    return videos, path


# -- a deterministic (optionally slow) answerer; also imported by the CLI subprocess -------------
def canned_answer(question: BenchmarkQuestion) -> str:
    """Right for about two thirds of the questions, in the answer styles models produce."""
    h = zlib.crc32(question.uid.encode())
    if question.benchmark == "favor":
        return f"The person {question.options[h % 5]}."
    if h % 3 == 0:
        return "A man moves left"  # read as "A" by the official rule
    return f"({question.answer}) it moves" if h % 3 == 1 else question.answer


def slow_answerer():  # noqa: ANN201 -- factory used by `--answerer test_eval_run:slow_answerer`
    delay = float(os.environ.get("MS_TEST_DELAY", "0.05"))

    def answer(question: BenchmarkQuestion) -> str:
        time.sleep(delay)
        if question.uid in os.environ.get("MS_TEST_FAIL", "").split(","):
            raise RuntimeError(f"backend refused {question.uid}")
        return canned_answer(question)

    return answer


def _expected(questions: list[BenchmarkQuestion]) -> dict[str, bool]:
    return {
        q.uid: make_record(q, Outcome(q.uid, canned_answer(q), None, 0.0)).correct
        for q in questions
    }


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- results file durability ----------------------------------------------------------------------
def test_torn_tail_and_duplicates_are_repaired(tmp_path: Path, sample_videos_dir: Path) -> None:
    _, meta = build_motionbench(tmp_path, sample_videos_dir, per_video=1)
    qs = load_benchmark("motionbench", meta, tmp_path / "motionbench")
    recs = [make_record(q, Outcome(q.uid, q.answer, None, 0.1)) for q in qs[:3]]
    failed = make_record(qs[1], Outcome(qs[1].uid, None, "TimeoutError: slow", 1.0))
    out = tmp_path / "r.jsonl"
    # first success wins over a later failure; a torn last line (no newline) is dropped
    out.write_bytes(recs[0].to_line() + failed.to_line() + recs[1].to_line() + recs[0].to_line()
                    + recs[2].to_line()[:25])  # fmt: skip
    loaded = load_results(out)
    assert loaded.torn_tail and loaded.needs_compaction
    assert list(loaded.records) == [qs[0].uid, qs[1].uid]
    assert loaded.records[qs[1].uid].ok
    with ResultsStore(out) as store:
        assert [r["uid"] for r in _lines(out)] == [qs[0].uid, qs[1].uid]  # compacted on open
        store.append(recs[2])
        with pytest.raises(ResultsFileError, match="being written by another run"):
            ResultsStore(out).open()
    assert [r["uid"] for r in _lines(out)] == [q.uid for q in qs[:3]]
    out.write_text(out.read_text() + "garbage\n" + recs[0].to_line().decode())
    with pytest.raises(ResultsFileError, match=r"r.jsonl:4: not a JSON results record"):
        load_results(out)


def test_failures_recorded_then_retried(
    tmp_path: Path, sample_videos_dir: Path, monkeypatch
) -> None:
    _, meta = build_motionbench(tmp_path, sample_videos_dir, per_video=2)
    qs = load_benchmark("motionbench", meta, tmp_path / "motionbench")
    # one question's video is missing: reported per question, the run goes on
    missing = BenchmarkQuestion(
        **{**qs[0].__dict__, "uid": "nofile", "video": str(tmp_path / "no.mp4")}
    )
    qs = [*qs, missing]
    monkeypatch.setenv("MS_TEST_DELAY", "0")
    monkeypatch.setenv("MS_TEST_FAIL", f"{qs[2].uid},{qs[5].uid}")
    out = tmp_path / "run.jsonl"
    report = run_eval(qs, slow_answerer, out, concurrency=2, print_table=False)
    assert (report.ran, report.failed) == (len(qs), 3)
    lines = _lines(out)
    errors = {r["uid"]: r["error"] for r in lines if r["error"]}
    assert errors[qs[2].uid] == f"RuntimeError: backend refused {qs[2].uid}"
    assert errors["nofile"].startswith("video file not found:")
    assert report.table.failed == 3 and report.table.total == len(qs)
    # re-run: everything is finished (failures included) -> nothing runs
    assert run_eval(qs, slow_answerer, out, print_table=False).ran == 0
    monkeypatch.setenv("MS_TEST_FAIL", "")
    report = run_eval(qs, slow_answerer, out, retry_failed=True, print_table=False)
    assert report.ran == 3 and report.failed == 1  # the missing video still fails
    lines = _lines(out)
    assert sorted(r["uid"] for r in lines) == sorted(q.uid for q in qs)  # replaced, not duplicated
    expected = _expected(qs[:-1])
    assert {r["uid"]: r["correct"] for r in lines if r["uid"] != "nofile"} == expected
    summary = json.loads((tmp_path / "run.summary.json").read_text())
    assert summary["correct"] == sum(expected.values()) and summary["failed"] == 1


def test_broken_answerer_aborts_early(tmp_path: Path, sample_videos_dir: Path) -> None:
    _, meta = build_motionbench(tmp_path, sample_videos_dir, per_video=6)
    qs = load_benchmark("motionbench", meta, tmp_path / "motionbench")

    def factory():  # noqa: ANN202
        def answer(question: BenchmarkQuestion) -> str:
            raise ConnectionError("connection refused")

        return answer

    with pytest.raises(RuntimeError, match="first 5 questions all failed.*connection refused"):
        run_eval(qs, factory, tmp_path / "r.jsonl", abort_after=5, print_table=False)
    assert len(_lines(tmp_path / "r.jsonl")) == 5


# -- SIGKILL at random points, then resume --------------------------------------------------------
def test_sigkill_at_random_points_then_resume(tmp_path: Path, sample_videos_dir: Path) -> None:
    root, meta = build_motionbench(tmp_path, sample_videos_dir, per_video=8)
    qs = load_benchmark("motionbench", meta, root)
    out = tmp_path / "killed.jsonl"
    args = cli("eval", "--benchmark", "motionbench", "--questions", str(meta), "--videos",
                str(root), "--answerer", "test_eval_run:slow_answerer", "--out", str(out),
                "--concurrency", "3", "--fsync-interval", "0", "--no-progress")  # fmt: skip
    env = cli_env(MS_TEST_DELAY="0.04")
    rng = random.Random(20250601)
    kills = 0
    for _ in range(4):
        before = complete_lines(out)
        target = before + rng.randint(1, 6)
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while complete_lines(out) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.06))  # land anywhere: mid-answer, mid-write, between
        if proc.poll() is None:
            proc.kill()
            kills += 1
        proc.wait()
        stderr = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.returncode in (0, -9), stderr
        data = out.read_bytes()
        lines = data.splitlines()
        uids = [json.loads(line)["uid"] for line in lines]  # every line is complete JSON
        assert len(uids) == len(set(uids)), "a killed run left a duplicate"
        assert len(uids) >= before, "finished work was lost"
    assert kills >= 3
    assert complete_lines(out) < len(qs), "the kills should leave work for the final run"
    done = subprocess.run(
        args, env=cli_env(MS_TEST_DELAY="0"), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "overall" in done.stdout
    records = _lines(out)
    assert len(records) == len(qs) == 40
    # same uids and verdicts as an uninterrupted run
    ref = run_eval(qs, lambda: canned_answer, tmp_path / "ref.jsonl", print_table=False)
    assert {r["uid"]: r["correct"] for r in records} == {
        u: r.correct for u, r in ref.records.items()
    }
    assert not any(r["error"] for r in records)


# -- compare and export ------------------------------------------------------------------------------
def test_compare_and_exportcli(tmp_path: Path, sample_videos_dir: Path) -> None:
    _, fav = build_favor(tmp_path, sample_videos_dir, per_video=2)
    qs = load_benchmark("favor", fav, sample_videos_dir)
    a = run_eval(qs, lambda: canned_answer, tmp_path / "a.jsonl", print_table=False)
    b = run_eval(qs, lambda: lambda q: q.answer, tmp_path / "b.jsonl", print_table=False)
    assert b.table.overall == 1.0 and a.table.overall < 1.0
    res = subprocess.run(cli("eval", "--compare", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")),
                         env=cli_env(), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stderr
    overall = next(line for line in res.stdout.splitlines() if "**overall**" in line)
    diff = 100 * (1.0 - a.table.overall)
    assert overall.endswith(f"| {100 * a.table.overall:.1f} | 100.0 | {diff:+.1f} |")

    sft = tmp_path / "sft.json"
    res = subprocess.run(cli("export", "--results", str(tmp_path / "a.jsonl"), "--format", "sft",
                              "--out", str(sft), "--video-root", str(sample_videos_dir)),
                         env=cli_env(), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = json.loads(sft.read_text())
    assert len(rows) == len(qs)
    first = rows[0]
    assert first["video"] == "desert_train.mp4"
    assert [t["from"] for t in first["conversations"]] == ["human", "gpt"]
    assert first["conversations"][0]["value"].startswith("<video>\n")
    assert first["conversations"][1]["value"] == qs[0].answer

    # the model's own correct answers as SFT targets (self-distillation of e.g. MotionSight)
    n = export_results(a.records.values(), tmp_path / "own.json", "sft", target="model")
    own = json.loads((tmp_path / "own.json").read_text())
    correct = [r for r in a.records.values() if r.correct]
    assert n == len(own) == len(correct) > 0
    assert [o["conversations"][1]["value"] for o in own] == [r.output for r in correct]

    n = export_results(a.records.values(), tmp_path / "pref.jsonl", "preference")
    prefs = [json.loads(line) for line in (tmp_path / "pref.jsonl").read_text().splitlines()]
    assert n == len(prefs) == len(qs)
    samples = json.loads((sample_videos_dir / "motionvid_samples.json").read_text())
    assert set(samples[0]) - {"source_name"} == set(prefs[0])  # same keys as MotionVid-QA
    for p, q in zip(prefs, qs, strict=True):
        record = a.records[q.uid]
        assert p["chosen"] == q.answer and p["rejected"] != q.answer
        assert p["rejected"] in q.options  # a distractor of the same question, same format
        if not record.correct:  # the option the model wrongly named
            assert p["rejected"].lower() in record.output.lower()

    res = subprocess.run(cli("eval", "--benchmark", "favor", "--questions", str(fav), "--videos",
                              str(tmp_path / "nope"), "--workflow", "x.json", "--out", "o.jsonl"),
                         env=cli_env(), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode == 2 and "--videos" in res.stderr and "Traceback" not in res.stderr


# -- the workflow answer function's plumbing ---------------------------------------------------------
def test_workflow_answerer_overrides_labels_and_answer_text(tmp_path: Path) -> None:
    import pickle

    from motionsight.engine.cli_eval import (
        CliError,
        WorkflowAnswerer,
        _answer_text,
        parse_label_overrides,
        parse_sets,
    )
    from motionsight.engine.executor import NodeOutput

    assert parse_sets(["MotionSightAsk.max_new_tokens=8", "3.seed=1=2"]) == {
        "MotionSightAsk.max_new_tokens": "8",
        "3.seed": "1=2",
    }
    with pytest.raises(CliError, match="NODE.INPUT=VALUE"):
        parse_sets(["novalue"])
    label, labels = parse_label_overrides(["CM=Camera Motion", "Motion Recognition"])
    assert (label, labels) == ("Motion Recognition", {"CM": "Camera Motion"})
    q = BenchmarkQuestion(uid="1", benchmark="favor", category="CM", question="Q?", video="/v.mp4",
                          answer="a", options=("a", "b"))  # fmt: skip
    answerer = WorkflowAnswerer({"1": {}}, parse_sets(["X.y=2"]), None, labels)
    assert answerer.overrides(q) == {"X.y": "2", "MotionSightLoadVideo.video": "/v.mp4",
                                     "MotionSightQuestion.question": "Q?",
                                     "MotionSightQuestion.label": "Camera Motion"}  # fmt: skip
    assert answerer.label_for(BenchmarkQuestion(**{**q.__dict__, "category": "AS"})) == "AS"
    answerer._executor = object()  # a live executor is not shipped to Ray actors
    assert pickle.loads(pickle.dumps(answerer))._executor is None

    ask = NodeOutput(node_id="9", class_type="MotionSightAsk", title="Ask", ui={"text": ["(B) left"]},
                     result=("(B) left", json.dumps({"route": {}, "dry_run": False})))  # fmt: skip
    assert _answer_text(ask) == "(B) left"
    dry = NodeOutput(**{**ask.__dict__, "result": ("x", json.dumps({"dry_run": True}))})
    with pytest.raises(
        RuntimeError, match=r"not configured \(dry run\).*MotionSightLoadMLLM.model"
    ):
        _answer_text(dry)
    with pytest.raises(RuntimeError, match="output node 4 gave no text"):
        _answer_text(
            NodeOutput(node_id="4", class_type="S", title="S", ui={"images": []}, result=())
        )


def test_ray_executor_without_ray_is_a_clear_error(
    tmp_path: Path, sample_videos_dir: Path, monkeypatch
) -> None:
    _, fav = build_favor(tmp_path, sample_videos_dir, per_video=1)
    qs = load_benchmark("favor", fav, sample_videos_dir)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(RuntimeError, match=r"needs Ray.*pip install 'motionsight\[ray\]'"):
        run_eval(qs, lambda: canned_answer, tmp_path / "r.jsonl", executor="ray", print_table=False)
    assert not (tmp_path / "r.jsonl").read_text()  # nothing ran, nothing written
