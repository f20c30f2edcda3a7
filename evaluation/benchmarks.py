"""Readers for the motion benchmarks' own files, as their users download them.

Two formats (see ``BENCHMARKS.md``):

* MotionBench ``video_info.meta.jsonl`` -- one JSON object per line (per video) with
  ``key``, ``video_path``, ``question_type`` and ``qa: [{uid, question, answer, start, end}]``.
  The options are lettered lines inside ``question``; ``answer`` is a letter, or ``"NA"``
  (hidden test answers, skipped).
* FAVOR-Bench ``video_perspective.json`` -- a list of ``{video_name, questions: [{question,
  options: [5 texts], correct_answer: <option text>, task_type}]}``; ``video_name`` comes with
  and without ``.mp4``.

Both become a flat list of :class:`BenchmarkQuestion`, the unit every other part of the
evaluation (runner, scoring, export) works on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "BENCHMARKS",
    "FAVOR_PROMPT",
    "FAVOR_TASK_TYPES",
    "MOTIONBENCH_CATEGORIES",
    "MOTIONBENCH_LETTER_INSTRUCTION",
    "BenchmarkFormatError",
    "BenchmarkQuestion",
    "filter_questions",
    "load_benchmark",
    "parse_lettered_options",
    "read_favor",
    "read_motionbench",
]

BENCHMARKS = ("motionbench", "favor")

MOTIONBENCH_CATEGORIES = (
    "Motion Recognition",
    "Location-related Motion",
    "Camera Motion",
    "Motion-related Objects",
    "Action Order",
    "Repetition Count",
)
FAVOR_TASK_TYPES = ("AS", "HAC", "SAD", "MAD", "CM", "NSM")

# MotionBench's files carry the options inside the question, and MotionSight's final prompt adds
# the method's own "Answer only the answer letter" instruction, so by default the question goes
# as published. Answer functions that do not add an instruction can append this one.
MOTIONBENCH_LETTER_INSTRUCTION = (
    "\nAnswer with the option's letter from the given choices directly."
)

# The prompt of FAVOR-Bench's reference inference script (inference_qa_qwen.py), so the model
# answers with an option's text, which is what the official judge looks for. The options are
# shown as a Python list, exactly as the reference formats them.
FAVOR_PROMPT = (
    "Carefully watch the video and pay attention to temporal dynamics in this video, focusing "
    "on the camera motions, actions, activities, and interactions. Based on your observations, "
    "select the best option that accurately addresses the question.\n{question}\n"
    "You can only response with the answer among {options}"
)

# "(A) text", "A. text", "A) text", "A: text" at the start of a line.
_OPTION_LINE = re.compile(r"^\s*\(?([A-Z])\s*[).:]\s*(.*?)\s*$")


class BenchmarkFormatError(ValueError):
    """A benchmark file that does not have the published shape; the message names file and line."""


@dataclass(frozen=True)
class BenchmarkQuestion:
    """One multiple-choice question of a benchmark, ready to send to a model.

    Attributes:
        uid: unique id within the benchmark (MotionBench's own ``uid``; FAVOR has none, so
            ``"<video stem>#<question index>"``, stable for a given file).
        benchmark: ``"motionbench"`` or ``"favor"``.
        category: MotionBench ``question_type`` or FAVOR ``task_type``.
        question: the text as it goes to the model (options included, plus the answer
            instruction).
        video: absolute path of the video file (may not exist; see :attr:`video_exists`).
        answer: the correct answer: a letter for MotionBench, the option text for FAVOR.
        options: the option texts in order (MotionBench: parsed from the lettered lines;
            empty when they cannot be parsed).
        raw_question: the question exactly as written in the benchmark file.
        start, end: MotionBench's clip bounds in seconds when given, else ``None``.
        source: ``"<file>:<line>"`` where the question was read, for error messages.
    """

    uid: str
    benchmark: str
    category: str
    question: str
    video: str
    answer: str
    options: tuple[str, ...] = ()
    raw_question: str = ""
    start: float | None = None
    end: float | None = None
    source: str = field(default="", compare=False)

    @property
    def video_exists(self) -> bool:
        return Path(self.video).is_file()

    @property
    def answer_text(self) -> str:
        """The correct answer as text (MotionBench: ``"A. <option>"`` when options parsed)."""
        if self.benchmark == "motionbench" and self.options:
            index = ord(self.answer) - ord("A")
            if 0 <= index < len(self.options):
                return f"{self.answer}. {self.options[index]}"
        return self.answer

    def option_letter(self, text: str) -> str:
        """The letter of option ``text`` (``""`` if it is not one of :attr:`options`)."""
        try:
            return chr(ord("A") + self.options.index(text))
        except ValueError:
            return ""


def parse_lettered_options(question: str) -> tuple[str, ...]:
    """Option texts of a question whose options are lettered lines ``(A) ...``, ``B. ...``.

    Returns the texts in order only when the letters run A, B, C... without gaps, else ``()``
    (the question is still usable; only export and display use the texts).
    """
    found: list[tuple[str, str]] = []
    for line in question.splitlines():
        match = _OPTION_LINE.match(line)
        if match and match.group(2):
            found.append((match.group(1), match.group(2)))
    # The stem may itself start with "A ..." -- keep the longest run that starts at "A".
    for start in range(len(found)):
        if found[start][0] != "A":
            continue
        run = [found[start][1]]
        for letter, text in found[start + 1 :]:
            if ord(letter) != ord("A") + len(run):
                break
            run.append(text)
        if len(run) >= 2:
            return tuple(run)
    return ()


def _resolve_video(videos_dir: Path, name: str, candidates: Iterable[str]) -> Path:
    """First existing path among ``videos_dir / c`` for the candidates, else the first one."""
    paths = [videos_dir / c for c in candidates]
    for path in paths:
        if path.is_file():
            return path.absolute()  # keep the dataset's layout (no symlink resolution)
    return paths[0].absolute() if paths else (videos_dir / name).absolute()


def _require(obj: dict, key: str, kind: type | tuple[type, ...], where: str) -> object:
    if not isinstance(obj, dict):
        raise BenchmarkFormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if key not in obj:
        raise BenchmarkFormatError(f"{where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise BenchmarkFormatError(
            f"{where}: field {key!r} should be {names}, got {type(value).__name__}"
        )
    return value


def _optional_float(value: object, where: str, key: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BenchmarkFormatError(f"{where}: field {key!r} is not a number: {value!r}") from None


def read_motionbench(
    path: str | Path, videos_dir: str | Path, *, prompt_suffix: str = ""
) -> list[BenchmarkQuestion]:
    """Read MotionBench's ``video_info.meta.jsonl``; questions whose answer is ``"NA"`` are skipped.

    Args:
        path: the ``.jsonl`` file.
        videos_dir: the dataset root; ``video_path`` is relative to it (files sit under
            ``self-collected/`` or ``public-dataset/``; a bare file name is looked up there too).
        prompt_suffix: appended to each question (e.g. :data:`MOTIONBENCH_LETTER_INSTRUCTION`).

    Raises:
        BenchmarkFormatError: invalid JSON or a missing/mistyped field, naming file and line;
            also a uid that appears twice.
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    videos_dir = Path(videos_dir)
    if not path.is_file():
        raise FileNotFoundError(f"MotionBench questions file not found: {path}")
    questions: list[BenchmarkQuestion] = []
    seen: dict[str, str] = {}
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BenchmarkFormatError(f"{where}: invalid JSON ({exc.msg})") from None
            video_path = str(_require(record, "video_path", str, where))
            category = str(_require(record, "question_type", str, where))
            qa_list = _require(record, "qa", list, where)
            video = _resolve_video(
                videos_dir,
                video_path,
                [
                    video_path,
                    f"self-collected/{video_path}",
                    f"public-dataset/{video_path}",
                ],
            )
            for index, qa in enumerate(qa_list):  # type: ignore[arg-type]
                qwhere = f"{where} (qa[{index}])"
                uid = _require(qa, "uid", (str, int), qwhere)
                text = str(_require(qa, "question", str, qwhere))
                answer = str(_require(qa, "answer", str, qwhere)).strip()
                if answer == "NA":  # hidden answer (test split)
                    continue
                if len(answer) != 1 or not answer.isalpha():
                    raise BenchmarkFormatError(
                        f"{qwhere}: answer should be one letter or 'NA', got {answer!r}"
                    )
                uid = str(uid)
                if uid in seen:
                    raise BenchmarkFormatError(f"{qwhere}: uid {uid!r} already used at {seen[uid]}")
                seen[uid] = qwhere
                questions.append(
                    BenchmarkQuestion(
                        uid=uid,
                        benchmark="motionbench",
                        category=category,
                        question=text + prompt_suffix,
                        video=str(video),
                        answer=answer,
                        options=parse_lettered_options(text),
                        raw_question=text,
                        start=_optional_float(qa.get("start"), qwhere, "start"),
                        end=_optional_float(qa.get("end"), qwhere, "end"),
                        source=qwhere,
                    )
                )
    return questions


def _json_array_lines(text: str) -> list[int]:
    """1-based line number where each top-level element of a JSON array text starts (one pass)."""
    decoder = json.JSONDecoder()
    lines: list[int] = []
    pos = text.index("[") + 1
    line = text.count("\n", 0, pos) + 1
    while True:
        start = pos
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            return lines
        line += text.count("\n", start, pos)
        lines.append(line)
        start = pos
        _, pos = decoder.raw_decode(text, pos)
        line += text.count("\n", start, pos)


def read_favor(
    path: str | Path, videos_dir: str | Path, *, prompt: str = FAVOR_PROMPT
) -> list[BenchmarkQuestion]:
    """Read FAVOR-Bench's ``video_perspective.json``.

    Args:
        path: the ``.json`` file (a list of videos, each with its questions).
        videos_dir: folder holding ``<video_name>.mp4``.
        prompt: format string with ``{question}`` and ``{options}`` (the options list as the
            reference prints it); default: the reference's prompt.

    Raises:
        BenchmarkFormatError: invalid JSON, a missing/mistyped field, not 5 options, or a
            ``correct_answer`` that is not one of the options -- naming file and line.
    """
    path = Path(path)
    videos_dir = Path(videos_dir)
    if not path.is_file():
        raise FileNotFoundError(f"FAVOR-Bench questions file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchmarkFormatError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(data, list):
        raise BenchmarkFormatError(f"{path}:1: expected a JSON list of videos")
    element_lines = _json_array_lines(text)
    questions: list[BenchmarkQuestion] = []
    seen: set[str] = set()
    for v_index, item in enumerate(data):
        where = f"{path}:{element_lines[v_index]} (video #{v_index})"
        name = str(_require(item, "video_name", str, where))
        stem = name[:-4] if name.lower().endswith(".mp4") else name
        video = _resolve_video(videos_dir, name, [f"{stem}.mp4", name])
        q_list = _require(item, "questions", list, where)
        for q_index, q in enumerate(q_list):  # type: ignore[arg-type]
            qwhere = f"{where} questions[{q_index}]"
            question = str(_require(q, "question", str, qwhere))
            options = _require(q, "options", list, qwhere)
            if len(options) != 5 or not all(isinstance(o, str) for o in options):  # type: ignore[arg-type]
                raise BenchmarkFormatError(f"{qwhere}: 'options' should be a list of 5 strings")
            correct = str(_require(q, "correct_answer", str, qwhere))
            if correct not in options:  # type: ignore[operator]
                raise BenchmarkFormatError(
                    f"{qwhere}: correct_answer {correct!r} is not one of the options"
                )
            category = str(_require(q, "task_type", str, qwhere))
            uid = f"{stem}#{q_index}"
            if uid in seen:
                raise BenchmarkFormatError(f"{qwhere}: video {stem!r} listed twice")
            seen.add(uid)
            questions.append(
                BenchmarkQuestion(
                    uid=uid,
                    benchmark="favor",
                    category=category,
                    question=prompt.format(question=question, options=list(options)),  # type: ignore[arg-type]
                    video=str(video),
                    answer=correct,
                    options=tuple(options),  # type: ignore[arg-type]
                    raw_question=question,
                    source=qwhere,
                )
            )
    return questions


def filter_questions(
    questions: Sequence[BenchmarkQuestion],
    categories: Iterable[str] | None = None,
    limit: int | None = None,
) -> list[BenchmarkQuestion]:
    """Keep the questions of ``categories`` (case-insensitive; all when ``None``), then the first ``limit``.

    Raises:
        ValueError: a requested category that no question has (a typo would silently give an
            empty run), naming the categories present.
    """
    selected = list(questions)
    if categories:
        wanted = {c.strip().lower(): c for c in categories if c.strip()}
        present = {q.category.lower() for q in questions}
        unknown = [orig for low, orig in wanted.items() if low not in present]
        if unknown:
            names = ", ".join(sorted({q.category for q in questions}))
            raise ValueError(f"unknown categories {unknown}; the file has: {names}")
        selected = [q for q in selected if q.category.lower() in wanted]
    if limit is not None:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        selected = selected[:limit]
    return selected


def load_benchmark(
    benchmark: str,
    questions_file: str | Path,
    videos_dir: str | Path,
    *,
    categories: Iterable[str] | None = None,
    limit: int | None = None,
) -> list[BenchmarkQuestion]:
    """Read ``questions_file`` in the format of ``benchmark`` and apply the filters."""
    if benchmark == "motionbench":
        questions = read_motionbench(questions_file, videos_dir)
    elif benchmark == "favor":
        questions = read_favor(questions_file, videos_dir)
    else:
        raise ValueError(f"unknown benchmark {benchmark!r}; choose one of {', '.join(BENCHMARKS)}")
    return filter_questions(questions, categories, limit)
