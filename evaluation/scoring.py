"""The benchmarks' official scoring rules and the accuracy tables both papers report.

* MotionBench (``motionbench/utils/answer_util.py:polish_answer`` of the official repository):
  strip the output, cut at the first ``)``, take what follows ``(`` if there is one, take the
  first space-separated word, then its first character; it must equal the answer letter
  (case-sensitive). ``"A man walks"`` therefore reads as ``A``. The paper's own code used
  ``answer in response`` instead, which is wrong for such answers.
* FAVOR-Bench (the judge of the official ``inference_qa_qwen.py``): correct when the correct
  option's text appears in the output (case-insensitive) and no *longer* option containing the
  correct text also appears.
* Accuracy per category divides by the category's full question count: a question with no
  answer (failed, or not run yet) counts as wrong. Overall accuracy is over all questions, the
  category average is the mean of the per-category accuracies.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .benchmarks import FAVOR_TASK_TYPES, MOTIONBENCH_CATEGORIES, BenchmarkQuestion
from .results import ResultRecord

__all__ = [
    "CategoryScore",
    "ScoreTable",
    "compare_tables",
    "compute_table",
    "favor_correct",
    "favor_parse",
    "format_table",
    "motionbench_normalize",
    "save_table",
    "score_output",
    "summary_paths",
]


def motionbench_normalize(output: str | None) -> str:
    """MotionBench's official answer normaliser: the letter a raw model output stands for.

    ``"(B) walking"`` -> ``"B"``, ``"B) walking"`` -> ``"B"``, ``"The answer is (C)."`` -> ``"C"``,
    ``"A man walks"`` -> ``"A"``, ``"  D"`` -> ``"D"``, ``""`` -> ``""``.
    """
    answer = (output or "").strip()
    answer = answer.split(")")[0].strip()
    if "(" in answer:
        answer = answer.split("(")[1].strip()
    answer = answer.split(" ")[0]
    return answer[:1]


def favor_correct(output: str | None, correct_answer: str, options: Sequence[str]) -> bool:
    """FAVOR-Bench's official judge.

    Args:
        output: the model's raw text.
        correct_answer: the correct option's text.
        options: all option texts (the longer ones containing ``correct_answer`` matter).
    """
    text = (output or "").lower()
    if correct_answer.lower() not in text:
        return False
    # The reference finds the containing options case-sensitively, then looks for them
    # case-insensitively in the output.
    containing = [o for o in options if o != correct_answer and correct_answer in o]
    return not any(o.lower() in text for o in containing)


def favor_parse(output: str | None, options: Sequence[str]) -> str:
    """The option an output names: the longest option text found in it (``""`` if none)."""
    text = (output or "").lower()
    found = [o for o in options if o.lower() in text]
    return max(found, key=len) if found else ""


def score_output(question: BenchmarkQuestion, output: str | None) -> tuple[str, bool]:
    """``(parsed answer, correct)`` of a raw output under the question's benchmark rule."""
    if question.benchmark == "motionbench":
        parsed = motionbench_normalize(output)
        return parsed, parsed == question.answer
    if question.benchmark == "favor":
        correct = favor_correct(output, question.answer, question.options)
        return (question.answer if correct else favor_parse(output, question.options)), correct
    raise ValueError(f"question {question.uid}: unknown benchmark {question.benchmark!r}")


@dataclass
class CategoryScore:
    """Counts of one category: ``correct`` of ``total`` (``answered`` ran without error)."""

    name: str
    total: int = 0
    answered: int = 0
    correct: int = 0
    failed: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


@dataclass
class ScoreTable:
    """Overall accuracy, category average and per-category scores of one run."""

    benchmark: str
    categories: dict[str, CategoryScore] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(c.total for c in self.categories.values())

    @property
    def correct(self) -> int:
        return sum(c.correct for c in self.categories.values())

    @property
    def answered(self) -> int:
        return sum(c.answered for c in self.categories.values())

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self.categories.values())

    @property
    def overall(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def category_average(self) -> float:
        cats = [c for c in self.categories.values() if c.total]
        return sum(c.accuracy for c in cats) / len(cats) if cats else 0.0

    def to_dict(self) -> dict:
        return {
            "benchmark": self.benchmark,
            "total": self.total,
            "answered": self.answered,
            "failed": self.failed,
            "missing": self.total - self.answered - self.failed,
            "correct": self.correct,
            "overall": self.overall,
            "category_average": self.category_average,
            "categories": {
                name: {**asdict(c), "accuracy": c.accuracy} for name, c in self.categories.items()
            },
        }


def _category_order(benchmark: str, names: Iterable[str]) -> list[str]:
    canonical = {"motionbench": MOTIONBENCH_CATEGORIES, "favor": FAVOR_TASK_TYPES}.get(
        benchmark, ()
    )
    names = set(names)
    return [c for c in canonical if c in names] + sorted(names - set(canonical))


def compute_table(
    questions: Sequence[BenchmarkQuestion] | Sequence[tuple[str, str]],
    records: Mapping[str, ResultRecord],
    benchmark: str | None = None,
) -> ScoreTable:
    """Score ``records`` against the full question list (missing or failed = wrong).

    Args:
        questions: the questions of the run, or ``(uid, category)`` pairs.
        records: kept result per uid (extra uids are ignored).
        benchmark: name for the table (default: the first question's).
    """
    pairs = [(q.uid, q.category) if isinstance(q, BenchmarkQuestion) else q for q in questions]
    if benchmark is None:
        first = questions[0] if questions else None
        benchmark = first.benchmark if isinstance(first, BenchmarkQuestion) else "unknown"
    counts: dict[str, CategoryScore] = {}
    for uid, category in pairs:
        score = counts.setdefault(category, CategoryScore(category))
        score.total += 1
        record = records.get(uid)
        if record is None:
            continue
        if record.ok:
            score.answered += 1
            score.correct += bool(record.correct)
        else:
            score.failed += 1
    table = ScoreTable(benchmark)
    for name in _category_order(benchmark, counts):
        table.categories[name] = counts[name]
    return table


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def format_table(table: ScoreTable, title: str | None = None) -> str:
    """A markdown table: overall, category average, then each category with its counts."""
    missing = table.total - table.answered - table.failed
    head = title or f"{table.benchmark}"
    lines = [
        f"## {head}",
        "",
        f"{table.total} questions: {table.answered} answered, {table.failed} failed, "
        f"{missing} not run (failed and not run count as wrong).",
        "",
        "| category | correct | total | accuracy % |",
        "|---|---:|---:|---:|",
        f"| **overall** | {table.correct} | {table.total} | {_pct(table.overall)} |",
        f"| **category average** | | {len(table.categories)} categories | "
        f"{_pct(table.category_average)} |",
    ]
    for c in table.categories.values():
        lines.append(f"| {c.name} | {c.correct} | {c.total} | {_pct(c.accuracy)} |")
    return "\n".join(lines) + "\n"


def summary_paths(results_path: str | Path) -> tuple[Path, Path]:
    """``(RESULTS.summary.json, RESULTS.summary.md)`` next to the results file."""
    path = Path(results_path)
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return path.with_name(stem + ".summary.json"), path.with_name(stem + ".summary.md")


def save_table(
    table: ScoreTable, results_path: str | Path, title: str | None = None
) -> tuple[Path, Path]:
    """Write the table as JSON and markdown next to ``results_path``; return both paths."""
    json_path, md_path = summary_paths(results_path)
    _write_atomic(json_path, json.dumps(table.to_dict(), indent=2, ensure_ascii=False) + "\n")
    _write_atomic(md_path, format_table(table, title))
    return json_path, md_path


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def compare_tables(a: ScoreTable, b: ScoreTable, name_a: str = "A", name_b: str = "B") -> str:
    """Per-category accuracy of two runs side by side with the difference ``B - A`` (points)."""
    names = _category_order(a.benchmark, set(a.categories) | set(b.categories))
    lines = [
        f"| category | n | {name_a} % | {name_b} % | diff |",
        "|---|---:|---:|---:|---:|",
    ]

    def row(label: str, n: int | str, x: float, y: float) -> str:
        return f"| {label} | {n} | {_pct(x)} | {_pct(y)} | {100 * (y - x):+.1f} |"

    lines.append(row("**overall**", max(a.total, b.total), a.overall, b.overall))
    lines.append(row("**category average**", "", a.category_average, b.category_average))
    empty = CategoryScore("")
    for name in names:
        ca, cb = a.categories.get(name, empty), b.categories.get(name, empty)
        lines.append(row(name, max(ca.total, cb.total), ca.accuracy, cb.accuracy))
    return "\n".join(lines) + "\n"
