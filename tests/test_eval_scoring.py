"""Benchmark readers and the official scoring rules, on constructed files and outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from motionsight.evaluation.benchmarks import (
    MOTIONBENCH_LETTER_INSTRUCTION,
    BenchmarkFormatError,
    filter_questions,
    load_benchmark,
    parse_lettered_options,
    read_favor,
    read_motionbench,
)
from motionsight.evaluation.results import ResultRecord
from motionsight.evaluation.scoring import (
    compare_tables,
    compute_table,
    favor_correct,
    format_table,
    motionbench_normalize,
    save_table,
    score_output,
)

MB_QUESTION = "What is the man doing?\n(A) A man walks up\n(B) Sitting\n(C) Running\n(D) Jumping"


def _mb_line(video_path: str, qtype: str, qa: list[dict]) -> str:
    return json.dumps({"key": video_path, "video_path": video_path, "video_type": "x",
                       "question_type": qtype, "qa": qa})  # fmt: skip


def _write_motionbench(root: Path) -> Path:
    (root / "self-collected").mkdir(parents=True)
    (root / "public-dataset").mkdir()
    (root / "self-collected" / "a.mp4").write_bytes(b"x")
    (root / "public-dataset" / "b.mp4").write_bytes(b"x")
    lines = [
        _mb_line("a.mp4", "Camera Motion", [
            {"uid": "u1", "question": MB_QUESTION, "answer": "A", "start": 0, "end": 2.5},
            {"uid": "u2", "question": MB_QUESTION, "answer": "NA"},
        ]),
        "",
        _mb_line("public-dataset/b.mp4", "Action Order", [
            {"uid": 3, "question": MB_QUESTION, "answer": "C"},
        ]),
        _mb_line("missing.mp4", "Action Order", [{"uid": "u4", "question": "Q?", "answer": "B"}]),
    ]  # fmt: skip
    path = root / "video_info.meta.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_motionbench_reader(tmp_path: Path) -> None:
    path = _write_motionbench(tmp_path)
    qs = read_motionbench(path, tmp_path)
    assert [q.uid for q in qs] == ["u1", "3", "u4"]  # "NA" skipped, int uid as text
    u1, u3, u4 = qs
    assert u1.category == "Camera Motion" and u1.answer == "A"
    assert Path(u1.video) == (tmp_path / "self-collected" / "a.mp4").absolute()
    assert Path(u3.video) == (tmp_path / "public-dataset" / "b.mp4").absolute()
    assert u1.video_exists and not u4.video_exists
    assert u1.options == ("A man walks up", "Sitting", "Running", "Jumping")
    assert u1.question == u1.raw_question == MB_QUESTION  # MotionSight adds the letter instruction
    suffixed = read_motionbench(path, tmp_path, prompt_suffix=MOTIONBENCH_LETTER_INSTRUCTION)[0]
    assert suffixed.question == MB_QUESTION + MOTIONBENCH_LETTER_INSTRUCTION
    assert (u1.start, u1.end) == (0.0, 2.5)
    assert u1.answer_text == "A. A man walks up"
    assert [
        q.uid for q in load_benchmark("motionbench", path, tmp_path, categories=["action order"])
    ] == ["3", "u4"]
    assert len(load_benchmark("motionbench", path, tmp_path, limit=2)) == 2
    with pytest.raises(ValueError, match="unknown categories.*Camera Motion"):
        filter_questions(qs, ["Camera Motoin"])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "invalid JSON"),
        (_mb_line("a.mp4", "CM", [{"uid": "x", "question": "q"}]), "missing field 'answer'"),
        (_mb_line("a.mp4", "CM", [{"uid": "x", "question": "q", "answer": "AB"}]), "one letter"),
        (
            json.dumps({"video_path": "a.mp4", "question_type": "CM", "qa": {}}),
            "'qa' should be list",
        ),
    ],
)
def test_motionbench_reader_errors_name_file_and_line(
    tmp_path: Path, line: str, message: str
) -> None:
    good = _mb_line("a.mp4", "CM", [{"uid": "ok", "question": "q", "answer": "A"}])
    path = tmp_path / "meta.jsonl"
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(BenchmarkFormatError, match=message) as info:
        read_motionbench(path, tmp_path)
    assert f"{path}:2" in str(info.value)


def test_motionbench_duplicate_uid(tmp_path: Path) -> None:
    line = _mb_line("a.mp4", "CM", [{"uid": "x", "question": "q", "answer": "A"}])
    path = tmp_path / "meta.jsonl"
    path.write_text(line + "\n" + line + "\n")
    with pytest.raises(BenchmarkFormatError, match=r"meta.jsonl:2.*already used at .*meta.jsonl:1"):
        read_motionbench(path, tmp_path)


FAVOR_OPTIONS = ["turns left", "turns left and waves", "runs", "sits down", "jumps"]


def _favor_data() -> list[dict]:
    q = {"question": "What does the man do?", "options": FAVOR_OPTIONS,
         "correct_answer": "turns left", "task_type": "AS"}  # fmt: skip
    q2 = {**q, "correct_answer": "runs", "task_type": "CM"}
    return [
        {"video_name": "clip1", "questions": [q, q2]},
        {"video_name": "clip2.mp4", "questions": [q2]},
    ]


def test_favor_reader(tmp_path: Path) -> None:
    (tmp_path / "clip1.mp4").write_bytes(b"x")
    (tmp_path / "clip2.mp4").write_bytes(b"x")
    path = tmp_path / "video_perspective.json"
    path.write_text(json.dumps(_favor_data(), indent=2))
    qs = read_favor(path, tmp_path)
    assert [q.uid for q in qs] == ["clip1#0", "clip1#1", "clip2#0"]
    assert all(q.video_exists for q in qs)  # with and without ".mp4"
    assert qs[0].options == tuple(FAVOR_OPTIONS) and qs[0].answer == "turns left"
    assert "What does the man do?" in qs[0].question and str(FAVOR_OPTIONS) in qs[0].question
    assert [q.category for q in qs] == ["AS", "CM", "CM"]


def test_favor_reader_errors(tmp_path: Path) -> None:
    data = _favor_data()
    data[1]["questions"][0] = {**data[1]["questions"][0], "correct_answer": "flies"}
    path = tmp_path / "v.json"
    path.write_text(json.dumps(data, indent=2))
    with pytest.raises(BenchmarkFormatError, match="not one of the options") as info:
        read_favor(path, tmp_path)
    openers = [i for i, text in enumerate(path.read_text().splitlines()) if text == "  {"]
    line = openers[1] + 1  # the second video's opening line
    assert f"{path}:{line} (video #1) questions[0]" in str(info.value)
    data[1]["questions"][0]["options"] = ["a", "b"]
    path.write_text(json.dumps(data))
    with pytest.raises(BenchmarkFormatError, match="list of 5 strings"):
        read_favor(path, tmp_path)
    path.write_text("[{]")
    with pytest.raises(BenchmarkFormatError, match="v.json:1: invalid JSON"):
        read_favor(path, tmp_path)


def test_parse_lettered_options() -> None:
    assert parse_lettered_options("Q\nA. up\nB. down\nC) left") == ("up", "down", "left")
    assert parse_lettered_options("A man walks. What?\n(A) x\n(B) y") == ("x", "y")
    assert parse_lettered_options("no options here") == ()


@pytest.mark.parametrize(
    ("output", "letter"),
    [
        ("A man walks up the stairs", "A"),  # the official rule reads the first character
        ("B", "B"),
        ("(C) Running", "C"),
        ("C) Running", "C"),
        ("The answer is (D).", "D"),
        ("  B. Sitting  ", "B"),
        ("Answer: B", "A"),  # "Answer:" -> first char "A": official, not "B"
        ("b", "b"),  # case is kept: "b" != "B"
        ("", ""),
    ],
)
def test_motionbench_normaliser(output: str, letter: str) -> None:
    assert motionbench_normalize(output) == letter


def test_motionbench_score_a_man(tmp_path: Path) -> None:
    qs = read_motionbench(_write_motionbench(tmp_path), tmp_path)
    u1, u3 = qs[0], qs[1]  # answers A and C
    assert score_output(u1, "A man walks up") == ("A", True)  # starts with A: letter A
    assert score_output(u3, "A man Climbs") == ("A", False)  # 'C in response' would say yes
    assert score_output(u3, "He runs, so (C)") == ("C", True)  # parentheses anywhere
    assert score_output(u3, "(C) Running") == ("C", True)
    assert score_output(u3, "c") == ("c", False)


def test_favor_judge_longer_option() -> None:
    # "turns left" is correct; "turns left and waves" contains it.
    assert favor_correct("He TURNS LEFT.", "turns left", FAVOR_OPTIONS)
    assert not favor_correct("turns left and waves", "turns left", FAVOR_OPTIONS)
    assert not favor_correct("He runs", "turns left", FAVOR_OPTIONS)
    # The longer option is correct: its text contains the shorter one, which is fine.
    assert favor_correct("turns left and waves", "turns left and waves", FAVOR_OPTIONS)
    assert not favor_correct(None, "runs", FAVOR_OPTIONS)


def _record(uid: str, category: str, correct: bool, error: str | None = None) -> ResultRecord:
    return ResultRecord(uid=uid, benchmark="favor", category=category, question="q", prompt="q",
                        video="v", answer="a", output=None if error else "a", parsed="a",
                        correct=correct, time_s=0.1, error=error)  # fmt: skip


def test_table_divides_by_full_count(tmp_path: Path) -> None:
    pairs = [("1", "AS"), ("2", "AS"), ("3", "AS"), ("4", "AS"), ("5", "CM"), ("6", "CM")]
    records = {
        "1": _record("1", "AS", True),
        "2": _record("2", "AS", True),
        "3": _record("3", "AS", False, error="boom"),  # failed = wrong
        # "4" missing = wrong
        "5": _record("5", "CM", True),
        "99": _record("99", "CM", True),  # not in the question list: ignored
    }
    table = compute_table(pairs, records, "favor")
    assert list(table.categories) == ["AS", "CM"]
    assert table.categories["AS"].accuracy == pytest.approx(0.5)
    assert table.categories["CM"].accuracy == pytest.approx(0.5)
    assert table.overall == pytest.approx(3 / 6)
    assert (table.answered, table.failed, table.total) == (3, 1, 6)
    # category average differs from overall when counts differ
    pairs.append(("7", "CM"))
    records["7"] = _record("7", "CM", True)
    table = compute_table(pairs, records, "favor")
    assert table.overall == pytest.approx(4 / 7)
    assert table.category_average == pytest.approx((0.5 + 2 / 3) / 2)
    text = format_table(table)
    assert "| AS | 2 | 4 | 50.0 |" in text and "| CM | 2 | 3 | 66.7 |" in text
    json_path, md_path = save_table(table, tmp_path / "run.jsonl")
    assert json_path.name == "run.summary.json" and md_path.name == "run.summary.md"
    saved = json.loads(json_path.read_text())
    assert saved["categories"]["CM"]["accuracy"] == pytest.approx(2 / 3)
    assert saved["missing"] == 2
    other = compute_table(pairs, {k: _record(k, c, True) for k, c in pairs}, "favor")
    cmp = compare_tables(table, other, "base", "ms")
    assert "| AS | 4 | 50.0 | 100.0 | +50.0 |" in cmp
