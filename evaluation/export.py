"""Turn finished results into MotionVid-QA-style training data.

* SFT records, in the layout Qwen-VL fine-tuning tools read::

      {"video": "<path>", "conversations": [{"from": "human", "value": "<video>\\n<prompt>"},
                                            {"from": "gpt", "value": "<answer>"}]}

* preference records like ``motionvid_samples.json``: ``{"question", "video", "chosen",
  "rejected"}`` -- chosen is the correct answer, rejected the model's wrong output, or (when the
  model was right) a wrong option picked deterministically from the uid.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterable
from pathlib import Path

from .results import ResultRecord

__all__ = ["EXPORT_FORMATS", "export_results", "preference_record", "sft_record"]

EXPORT_FORMATS = ("sft", "preference")


def _video(record: ResultRecord, video_root: str | Path | None) -> str:
    if video_root is None:
        return record.video
    try:
        return os.path.relpath(record.video, video_root)
    except ValueError:  # another drive on Windows
        return record.video


def _wrong_choices(record: ResultRecord) -> list[str]:
    """The answers that would be wrong, in the form the prompt asks for."""
    if record.benchmark == "motionbench":
        count = len(record.options) or 4  # MotionBench questions have 4 options when unparsed
        return [chr(ord("A") + i) for i in range(count) if chr(ord("A") + i) != record.answer]
    return [o for o in record.options if o != record.answer]


def sft_record(
    record: ResultRecord, *, target: str = "gold", video_root: str | Path | None = None
) -> dict | None:
    """One SFT record, or ``None`` when the record has nothing to teach.

    Args:
        record: a finished result.
        target: ``"gold"`` -- the assistant turn is the correct answer (every answered-or-not
            question); ``"model"`` -- the model's own output, only where it was judged correct
            (self-distillation of e.g. MotionSight answers).
        video_root: write video paths relative to this folder (default: as recorded).
    """
    if target == "gold":
        reply = record.answer
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


def preference_record(record: ResultRecord, *, video_root: str | Path | None = None) -> dict | None:
    """One ``{question, video, chosen, rejected}`` record, or ``None`` for failed questions."""
    if not record.ok:
        return None
    if not record.correct and record.output and record.output.strip():
        rejected = record.output  # the model's own mistake is the most useful negative
    else:
        wrong = _wrong_choices(record)
        if not wrong:
            return None
        rejected = wrong[zlib.crc32(record.uid.encode()) % len(wrong)]
    return {
        "question": record.prompt,
        "video": _video(record, video_root),
        "chosen": record.answer,
        "rejected": rejected,
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
    if fmt == "sft":
        rows = [sft_record(r, target=target, video_root=video_root) for r in records]
    elif fmt == "preference":
        rows = [preference_record(r, video_root=video_root) for r in records]
    else:
        raise ValueError(
            f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}"
        )
    kept = [r for r in rows if r is not None]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        if out.suffix == ".jsonl":
            for row in kept:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            json.dump(kept, handle, ensure_ascii=False, indent=2)
            handle.write("\n")
    os.replace(tmp, out)
    return len(kept)
