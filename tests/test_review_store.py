"""The review's pairs reader, decisions file and export: real files, real processes."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from motionsight.dataset.review import DecisionStore, ReviewError, load_pairs, reviewed_records
from motionsight.dataset.review.cli import main
from motionsight.dataset.review.pairs import Candidate, Pair
from motionsight.dataset.review.store import DecisionConflict, agreement


def _pairs(n: int, folder: Path) -> list[Pair]:
    return [
        Pair(
            id=f"p{i}",
            index=i,
            video=folder / f"v{i}.mp4",
            video_field=f"v{i}.mp4",
            question=f"How does thing {i} move?",
            kind="object",
            candidates=(
                Candidate(f"it moves left {i}", "motionsight"),
                Candidate(f"it stays {i}", "tarsier"),
            ),
        )
        for i in range(n)
    ]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_sample_preference_records_become_pairs(sample_videos_dir):
    pairs = load_pairs(sample_videos_dir / "motionvid_samples.json")
    records = json.loads((sample_videos_dir / "motionvid_samples.json").read_text())
    assert [p.video for p in pairs] == [sample_videos_dir / r["video"] for r in records]
    assert [p.candidates[0].text for p in pairs] == [r["chosen"] for r in records]
    assert [p.candidates[1].source for p in pairs] == ["rejected"] * len(records)
    assert pairs[0].id.startswith("desert_train-") and len({p.id for p in pairs}) == len(pairs)
    assert [p.id for p in load_pairs(sample_videos_dir / "motionvid_samples.json")] == [
        p.id for p in pairs
    ]  # stable
    # sides are random per pair and reviewer, but the same on every look
    sides = {(p.id, r): p.sides(r) for p in pairs for r in ("ana", "ben", "cy")}
    assert set(sides.values()) == {(0, 1), (1, 0)}
    assert sides == {(p.id, r): p.sides(r) for p in pairs for r in ("ana", "ben", "cy")}


def test_pairs_jsonl_with_candidates_and_given_prompts(tmp_path, sample_videos_dir):
    frames = tmp_path / "trails_frames"
    frames.mkdir()
    (frames / "frame_000.png").write_bytes(b"png")
    record = {
        "id": "a1",
        "video": str(sample_videos_dir / "diving_board.mp4"),
        "question": "What does the diver do?",
        "kind": "object",
        "candidates": [
            {"text": "bounces", "source": "motionsight"},
            {"text": "stands", "source": "tarsier"},
        ],
        "visual_prompts": {"spotlight": None, "trails": "trails_frames"},
        "chosen": None,
        "choice_by": None,
        "provenance": {"model": "x"},
    }
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(record) + "\n\n")
    (pair,) = load_pairs(path)
    assert pair.id == "a1" and pair.prior_choice is None
    assert pair.visual_prompts == {"spotlight": None, "trails": frames}
    assert [c.source for c in pair.candidates] == ["motionsight", "tarsier"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"video": "missing.mp4"}, "missing.mp4 does not exist"),
        ({"video": "notes.txt"}, "is not a video file"),
        ({"video": "link.mp4"}, "(really"),  # a symlink to a text file
        ({"video": "../../../../etc/passwd"}, "not a video file"),
        ({"question": ""}, "`question` must be a non-empty string"),
        ({"rejected": None}, "`rejected` must be a non-empty string"),
        ({"candidates": [{"text": "a"}]}, "list of two"),
        ({"visual_prompts": {"gaze": None}}, "unknown visual prompt 'gaze'"),
    ],
)
def test_bad_pairs_are_refused_naming_the_line(tmp_path, sample_videos_dir, change, message):
    (tmp_path / "notes.txt").write_text("secret")
    (tmp_path / "link.mp4").symlink_to(tmp_path / "notes.txt")
    good = {
        "question": "q?",
        "video": str(sample_videos_dir / "desert_train.mp4"),
        "chosen": "a",
        "rejected": "b",
    }
    bad = {**good, **change}
    if "candidates" in change:
        bad.pop("chosen")
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(ReviewError) as info:
        load_pairs(path)
    assert message in str(info.value) and f"{path}:2" in str(info.value)


def test_duplicate_ids_and_empty_files_are_refused(tmp_path, sample_videos_dir):
    rec = {
        "id": "x",
        "question": "q?",
        "video": str(sample_videos_dir / "desert_train.mp4"),
        "chosen": "a",
        "rejected": "b",
    }
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps([rec, rec]))
    with pytest.raises(ReviewError, match=r"item 1: duplicate pair id 'x' \(first at .*item 0\)"):
        load_pairs(path)
    path.write_text("[]")
    with pytest.raises(ReviewError, match="holds no pairs"):
        load_pairs(path)


def test_decisions_replay_undo_and_supersede(tmp_path):
    pairs = _pairs(3, tmp_path)
    path = tmp_path / "d.jsonl"
    with DecisionStore(path) as store:
        store.decide(pairs[0], "ana", 1, "left")
        store.decide(pairs[1], "ana", None)
        store.decide(pairs[0], "ben", 0, "right")
        with pytest.raises(DecisionConflict, match="ana has already decided pair 'p0'"):
            store.decide(pairs[0], "ana", 0)
        undo = store.undo("ana")  # undoes the skip of p1
        assert undo["undoes"] == _lines(path)[1]["uid"] and undo["pair"] == "p1"
        store.undo("ana")  # and then the choice on p0
        with pytest.raises(DecisionConflict, match="ana has nothing to undo"):
            store.undo("ana")
        store.decide(pairs[2], "ana", 0)
    assert [line["action"] for line in _lines(path)] == [
        "choose",
        "skip",
        "choose",
        "undo",
        "undo",
        "choose",
    ]
    with DecisionStore(path) as again:  # a fresh process sees the same state
        assert sorted(again.effective) == [("p0", "ben"), ("p2", "ana")]
        assert again.last_undoable("ana")["pair"] == "p2"
        valid, stale = again.decisions(pairs[:2])  # p2 no longer in the pairs file
        assert list(valid) == [("p0", "ben")] and stale == 1
        # p2's text changed: the old decision is stale, cannot be undone, and can be redone
        changed = [*pairs[:2], Pair(**{**pairs[2].__dict__, "question": "Where does it go?"})]
        assert again.last_undoable("ana", changed) is None
        with pytest.raises(DecisionConflict, match="nothing to undo"):
            again.undo("ana", changed)
        again.decide(changed[2], "ana", 1)
        assert again.decisions(changed) == (
            {**valid, ("p2", "ana"): again.effective[("p2", "ana")]},
            0,
        )


def test_a_torn_line_is_reported_and_the_next_append_starts_fresh(tmp_path):
    pairs = _pairs(2, tmp_path)
    path = tmp_path / "d.jsonl"
    with DecisionStore(path) as store:
        store.decide(pairs[0], "ana", 0)
    with open(path, "ab") as f:
        f.write(b'{"v": 1, "uid": "dead", "reviewer": "ana", "pa')  # killed mid-write
    with DecisionStore(path) as store:
        assert store.bad_lines == [] and len(store.effective) == 1  # not a line yet
        store.decide(pairs[1], "ana", 1)
        assert store.bad_lines == [2]
        assert sorted(store.effective) == [("p0", "ana"), ("p1", "ana")]
    text = path.read_text().splitlines()
    assert len(text) == 3 and text[1].endswith('"pa') and json.loads(text[2])["pair"] == "p1"


def _append_many(path: str, reviewer: str, count: int, folder: str) -> None:
    pairs = _pairs(count, Path(folder))
    with DecisionStore(path) as store:
        for pair in pairs:
            store.decide(pair, reviewer, pair.index % 2)


def test_two_writers_on_one_file_lose_no_line(tmp_path):
    path = tmp_path / "d.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_append_many, args=(str(path), name, 60, str(tmp_path)))
        for name in ("ana", "ben")
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = _lines(path)  # every line parses: no interleaved writes
    assert len(lines) == 120
    assert sorted((x["reviewer"], x["pair"]) for x in lines) == sorted(
        (r, f"p{i}") for r in ("ana", "ben") for i in range(60)
    )


def test_agreement_counts_and_kappa(tmp_path):
    def line(reviewer, pair, choice):
        action = "skip" if choice is None else "choose"
        return (pair, reviewer), {"action": action, "choice": choice}

    decisions = dict(
        [
            line("ana", "a", 0), line("ben", "a", 0),
            line("ana", "b", 1), line("ben", "b", 1),
            line("ana", "c", 0), line("ben", "c", 1),
            line("ana", "d", 1), line("ben", "d", 1),
            line("ana", "e", None), line("ben", "e", 0),
            line("cy", "z", 0),
        ]
    )  # fmt: skip
    (result,) = agreement(decisions)
    # po = 3/4; ana chose 1 on 2/4, ben on 3/4: pe = .5*.75 + .5*.25 = .5 -> kappa .5
    assert result == {
        "reviewers": ["ana", "ben"],
        "both": 4,
        "agree": 3,
        "percent": 75.0,
        "kappa": 0.5,
        "skip_vs_choice": 1,
    }


def test_export_takes_majorities_and_leaves_skips_and_ties_out(tmp_path, sample_videos_dir, capsys):
    samples = sample_videos_dir / "motionvid_samples.json"
    pairs = load_pairs(samples)
    out = tmp_path / "d.jsonl"
    with DecisionStore(out) as store:
        store.decide(pairs[0], "ana", 1)  # pair 0: both choose candidate 1
        store.decide(pairs[0], "ben", 1)
        store.decide(pairs[1], "ana", None)  # pair 1: skipped by all -> out
        store.decide(pairs[2], "ana", 0)  # pair 2: tie -> out
        store.decide(pairs[2], "ben", 1)
        store.decide(pairs[3], "ana", 0)  # pair 3: one skip, one choice -> in
        store.decide(pairs[3], "ben", None)
        records, report = reviewed_records(pairs, store)  # pair 4 undecided
    assert [r["id"] for r in records] == [pairs[0].id, pairs[3].id]
    assert records[0]["chosen"] == pairs[0].candidates[1].text
    assert records[0]["rejected"] == pairs[0].candidates[0].text
    assert records[0]["reviewers"] == ["ana", "ben"] and records[0]["choice_by"] == "person"
    assert Path(records[0]["video"]) == sample_videos_dir / "desert_train.mp4"
    assert (report.exported, report.skipped, report.undecided, report.ties) == (
        2,
        1,
        1,
        [pairs[2].id],
    )

    assert main([str(samples), "--out", str(out), "--export", str(tmp_path / "reviewed")]) == 0
    printed = capsys.readouterr().out
    assert "2 reviewed pairs exported; left out: 1 skipped, 1 undecided, 1 tied" in printed
    assert (
        "agreement ana / ben: 1 of 2 pairs (50.0 %)" in printed
        and "1 skipped by one only" in printed
    )
    written = _lines(tmp_path / "reviewed" / "reviewed_pairs.jsonl")
    assert written == records


def test_export_writes_the_trainer_formats(tmp_path, sample_videos_dir, capsys):
    samples = sample_videos_dir / "motionvid_samples.json"
    pairs = load_pairs(samples)
    out = tmp_path / "d.jsonl"
    with DecisionStore(out) as store:
        store.decide(pairs[4], "ana", 1)
        store.decide(pairs[1], "ana", None)
    args = [str(samples), "--out", str(out), "--export", str(tmp_path / "r")]
    assert (
        main([*args, "--trainer", "qwen2vl-finetune", "--media-root", str(sample_videos_dir)]) == 0
    )
    assert "qwen2vl-finetune: " in capsys.readouterr().out
    (row,) = json.loads((tmp_path / "r" / "qwen2vl-finetune" / "motion_dpo.json").read_text())
    assert row == {
        "id": pairs[4].id,
        "video": "stairs_pet.mp4",
        "prompt": "<video>\n" + pairs[4].question,
        "chosen": pairs[4].candidates[1].text,
        "rejected": pairs[4].candidates[0].text,
    }
    assert main([*args, "--trainer", "gpt"]) == 2
    assert "invalid choice: 'gpt'" in capsys.readouterr().err


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "d.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"motionsight dataset review: error: pairs file {tmp_path / 'nope.jsonl'} does not exist"
    )
    from motionsight.engine.cli import main as motionsight_main  # `motionsight dataset review`

    assert (
        motionsight_main(["dataset", "review", str(tmp_path / "nope.jsonl"), "--out", "d.jsonl"])
        == 2
    )
    assert capsys.readouterr().err.strip() == err
    assert main(["x.jsonl"]) == 2  # --out is required
    assert "--out" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []
