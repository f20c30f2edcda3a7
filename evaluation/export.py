"""Turn finished benchmark results into MotionVid-QA-style training data.

* SFT records, in the layout Qwen-VL fine-tuning tools read::

      {"id", "video": "<path>", "conversations": [{"from": "human", "value": "<video>\\n<prompt>"},
                                                  {"from": "gpt", "value": "<answer>"}]}

* preference records like ``motionvid_samples.json``: ``{"question", "video", "chosen",
  "rejected"}``.

Rules (each file is consistent, and no correct answer is ever rejected):

* **one answer format per file**: MotionBench answers are written ``"(B) <option text>"`` when
  every exported record has its options parsed, else the bare letter ``"B"`` for all; FAVOR-Bench
  answers are the option text;
* **chosen** is the correct answer in that format;
* **rejected** is the option the model picked when it picked a wrong one -- read leniently (``"The
  answer is B."``, ``"(B) ..."``, or an option's text), so a correct reply in a form the strict
  official rule rejects is recognised as correct and never becomes the rejected side -- else a
  wrong option *of the same question* chosen deterministically from the uid.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .results import ResultRecord
from .scoring import favor_parse

__all__ = [
    "EXPORT_FORMATS",
    "export_results",
    "lenient_choice",
    "preference_record",
    "sft_record",
    "write_json",
]


def write_json(path: str | Path, data: Any, *, jsonl: bool) -> Path:
    """Atomically write ``data``: JSON lines (one item per line) or one indented JSON value.

    A temporary file beside ``path`` is renamed over it, so a killed run never leaves half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        if jsonl:
            for row in data:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            json.dump(data, handle, ensure_ascii=False, indent=2)
            handle.write("\n")
    os.replace(tmp, path)
    return path

EXPORT_FORMATS = ("sft", "preference")
_LETTER = re.compile(
    r"(?:answer|option|choice)\s*(?:is|:)?\s*\(?([A-H])\b|\(([A-H])\)|^\s*([A-H])(?:[\s).:,]|$)",
    re.I | re.M,
)


def _video(record: ResultRecord, video_root: str | Path | None) -> str:
    if video_root is None:
        return record.video
    try:
        return os.path.relpath(record.video, video_root)
    except ValueError:  # another drive on Windows
        return record.video


def _letters(record: ResultRecord) -> list[str]:
    count = len(record.options) or 4  # MotionBench questions have 4 options when unparsed
    return [chr(ord("A") + i) for i in range(count)]


def lenient_choice(record: ResultRecord) -> str:
    """The option a reply names, read leniently: a letter for MotionBench (``"The answer is
    B."``, ``"(B) ..."``, ``"B"``, or an option's text), an option text for FAVOR; ``""`` if none.
    """
    text = (record.output or "").strip()
    if not text:
        return ""
    if record.benchmark == "favor":
        return favor_parse(text, record.options)
    letters = _letters(record)
    found = {next(g for g in m.groups() if g).upper() for m in _LETTER.finditer(text)}
    found &= set(letters)
    if len(found) == 1:
        return found.pop()
    if record.options:  # an option's text instead of its letter
        named = favor_parse(text, record.options)
        if named:
            return letters[record.options.index(named)]
    return ""


def _format(record: ResultRecord, choice: str, with_text: bool) -> str:
    """A MotionBench letter as ``"(B) text"`` (``with_text``) or ``"B"``; FAVOR text as is."""
    if record.benchmark != "motionbench" or not with_text:
        return choice
    index = ord(choice) - ord("A")
    return f"({choice}) {record.options[index]}" if 0 <= index < len(record.options) else choice


def _with_text(records: Sequence[ResultRecord]) -> bool:
    return all(r.options for r in records if r.benchmark == "motionbench")


def sft_record(
    record: ResultRecord,
    *,
    target: str = "gold",
    video_root: str | Path | None = None,
    with_text: bool = False,
) -> dict | None:
    """One SFT record, or ``None`` when the record has nothing to teach.

    Args:
        record: a finished result.
        target: ``"gold"`` -- the assistant turn is the correct answer; ``"model"`` -- the
            model's own output, only where it was judged correct (self-distillation).
        video_root: write video paths relative to this folder (default: as recorded).
        with_text: MotionBench answers as ``"(B) text"`` instead of ``"B"``.
    """
    if target == "gold":
        reply = _format(record, record.answer, with_text)
    elif target == "model":
        if not (record.ok and record.correct and record.output):
            return None
        reply = record.output
    else:
        raise ValueError(f"unknown SFT target {target!r}; choose 'gold' or 'model'")
    return {
        "id": record.uid,
        "video": _video(record, video_root),
        "conversations": [
            {"from": "human", "value": "<video>\n" + record.prompt},
            {"from": "gpt", "value": reply},
        ],
    }


def preference_record(
    record: ResultRecord, *, video_root: str | Path | None = None, with_text: bool = False
) -> dict | None:
    """One ``{question, video, chosen, rejected}`` record, or ``None`` for failed questions and
    questions without a wrong option."""
    if not record.ok:
        return None
    wrong = [c for c in (_letters(record) if record.benchmark == "motionbench" else record.options)
             if c != record.answer]  # fmt: skip
    if not wrong:
        return None
    picked = lenient_choice(record)
    if picked and picked != record.answer and picked in wrong:
        rejected = picked  # the model's own mistake is the most useful negative
    else:  # right (even if the strict rule said wrong), or unreadable: a distractor
        rejected = wrong[zlib.crc32(record.uid.encode()) % len(wrong)]
    return {
        "question": record.prompt,
        "video": _video(record, video_root),
        "chosen": _format(record, record.answer, with_text),
        "rejected": _format(record, rejected, with_text),
    }


def export_results(
    records: Iterable[ResultRecord],
    out: str | Path,
    fmt: str,
    *,
    target: str = "gold",
    video_root: str | Path | None = None,
) -> int:
    """Write ``records`` as SFT (JSON list) or preference records (JSON list); return the count.

    ``out`` ending in ``.jsonl`` gets one record per line instead of a list.
    """
    records = list(records)
    with_text = _with_text(records)
    if fmt == "sft":
        rows = [sft_record(r, target=target, video_root=video_root, with_text=with_text) for r in records]
    elif fmt == "preference":
        rows = [preference_record(r, video_root=video_root, with_text=with_text) for r in records]
    else:
        raise ValueError(
            f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}"
        )
    kept = [r for r in rows if r is not None]
    write_json(out, kept, jsonl=Path(out).suffix == ".jsonl")
    return len(kept)
