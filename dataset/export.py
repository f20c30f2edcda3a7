"""Write SFT and preference records in the layouts the common trainers load unchanged.

Input records (plain dicts):

* SFT: ``{"id", "video", "question", "answer"}`` (optional ``"system"``);
* preference: ``{"id", "video", "question", "chosen", "rejected"}`` (``chosen`` and ``rejected``
  are texts; optional ``"choice_by"``, ``"system"``).

``video`` is a path; a relative one resolves against ``base_dir`` (default: the current folder).
Written paths are relative to ``media_root`` when given (the trainer's ``--image_folder`` /
``media_dir``), else absolute. Every question carries exactly one ``<video>`` token, first.

| trainer | SFT | preference | documented at |
|---|---|---|---|
| ``qwen2vl-finetune`` (2U1/Qwen2-VL-Finetune, the paper's) | JSON list, ``conversations`` from/value | JSON list, ``prompt``/``chosen``/``rejected`` | ``src/dataset/{sft,dpo}_dataset.py`` |
| ``llamafactory`` | sharegpt ``conversations`` + ``videos`` | sharegpt ranking: ``chosen``/``rejected`` messages | ``data/README.md``; plus ``dataset_info.json`` |
| ``ms-swift`` | JSONL ``messages`` + ``videos`` | + ``rejected_response`` | "Custom Dataset" docs |
| ``trl`` | JSONL conversational ``messages`` + ``videos`` | conversational ``prompt``/``chosen``/``rejected`` + ``videos`` | dataset formats docs (no documented video DPO) |
| ``motionvid`` | -- | ``{"question", "video", "chosen", "rejected"}`` like MotionVid-QA's samples | the released ``show.json`` |
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..evaluation.export import write_json

__all__ = [
    "PREFERENCE_TRAINERS",
    "SFT_TRAINERS",
    "SYSTEM_PROMPT",
    "TRAINERS",
    "ExportError",
    "export_preference",
    "export_sft",
    "video_prompt",
]

TRAINERS = ("qwen2vl-finetune", "llamafactory", "ms-swift", "trl")
SFT_TRAINERS = TRAINERS
PREFERENCE_TRAINERS = (*TRAINERS, "motionvid")
SYSTEM_PROMPT = "You are an AI assistant for fine-grained motion analysis."  # the paper's templates
VIDEO_TOKEN = "<video>"
_VIDEO_TOKEN = re.compile(r"\s*<video>\s*")


class ExportError(ValueError):
    """A record that cannot be exported (names the record and the field) or a bad trainer."""


def video_prompt(question: str) -> str:
    """``question`` with exactly one ``<video>`` token, on its own first line."""
    return f"{VIDEO_TOKEN}\n{_VIDEO_TOKEN.sub(' ', question).strip()}"


def _text(record: Mapping[str, Any], key: str, where: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ExportError(f"{where}: field {key!r} must be non-empty text, got {value!r}")
    return value.strip()


def _where(record: Mapping[str, Any], index: int) -> str:
    return f"record {index} (id {record.get('id')!r})" if "id" in record else f"record {index}"


def _video_path(
    video: str, base_dir: Path | None, media_root: Path | None, where: str
) -> str:
    path = Path(video).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    path = Path(os.path.abspath(path))
    if media_root is None:
        return str(path)
    try:
        return os.path.relpath(path, media_root)
    except ValueError:  # another drive (Windows)
        raise ExportError(f"{where}: video {path} cannot be made relative to {media_root}") from None


def _prepare(
    records: Iterable[Mapping[str, Any]],
    fields: tuple[str, ...],
    base_dir: str | Path | None,
    media_root: str | Path | None,
) -> list[dict[str, Any]]:
    base = Path(base_dir).resolve() if base_dir is not None else None
    media = Path(os.path.abspath(Path(media_root).expanduser())) if media_root is not None else None
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise ExportError(f"record {index}: expected an object, got {type(record).__name__}")
        where = _where(record, index)
        row = {key: _text(record, key, where) for key in fields}
        row["id"] = str(record.get("id") or f"{index:06d}")
        if row["id"] in seen:
            raise ExportError(f"{where}: duplicate id {row['id']!r}")
        seen.add(row["id"])
        if "chosen" in row and row["chosen"] == row["rejected"]:
            raise ExportError(f"{where}: chosen and rejected are the same text")
        row["video"] = _video_path(_text(record, "video", where), base, media, where)
        row["system"] = str(record.get("system") or SYSTEM_PROMPT)
        row["question"] = _VIDEO_TOKEN.sub(" ", row["question"]).strip()
        row["prompt"] = video_prompt(row["question"])
        rows.append(row)
    return rows


def _dataset_info(out_dir: Path, name: str, entry: dict[str, Any]) -> Path:
    """Add (or replace) ``name`` in ``out_dir/dataset_info.json``, keeping other entries."""
    path = out_dir / "dataset_info.json"
    info: dict[str, Any] = {}
    if path.exists():
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ExportError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg}); fix or remove it") from None
        if not isinstance(info, dict):
            raise ExportError(f"{path}: expected a JSON object of dataset entries")
    info[name] = entry
    return write_json(path, info, jsonl=False)


def _check_trainer(trainer: str, allowed: tuple[str, ...], kind: str) -> None:
    if trainer not in allowed:
        raise ExportError(f"unknown {kind} trainer {trainer!r}; choose one of {', '.join(allowed)}")


def export_sft(
    records: Iterable[Mapping[str, Any]],
    trainer: str,
    out_dir: str | Path,
    media_root: str | Path | None = None,
    *,
    base_dir: str | Path | None = None,
    name: str = "motion_sft",
) -> list[Path]:
    """Write SFT ``records`` for ``trainer`` into ``out_dir``; return the files written.

    Raises:
        ExportError: an unknown trainer, or a record lacking text (names the record and field).
    """
    _check_trainer(trainer, SFT_TRAINERS, "SFT")
    rows = _prepare(records, ("question", "answer"), base_dir, media_root)
    out = Path(out_dir)
    if trainer == "qwen2vl-finetune":
        data = [
            {"id": r["id"], "video": r["video"], "conversations": [
                {"from": "human", "value": r["prompt"]}, {"from": "gpt", "value": r["answer"]}]}
            for r in rows
        ]  # fmt: skip
        return [write_json(out / f"{name}.json", data, jsonl=False)]
    if trainer == "llamafactory":
        data = [
            {"conversations": [{"from": "human", "value": r["prompt"]},
                               {"from": "gpt", "value": r["answer"]}],
             "system": r["system"], "videos": [r["video"]]}
            for r in rows
        ]  # fmt: skip
        entry = {
            "file_name": f"{name}.json",
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system", "videos": "videos"},
        }
        return [write_json(out / f"{name}.json", data, jsonl=False), _dataset_info(out, name, entry)]
    if trainer == "ms-swift":
        data = [
            {"messages": [{"role": "system", "content": r["system"]},
                          {"role": "user", "content": r["prompt"]},
                          {"role": "assistant", "content": r["answer"]}],
             "videos": [r["video"]]}
            for r in rows
        ]  # fmt: skip
        return [write_json(out / f"{name}.jsonl", data, jsonl=True)]
    data = [  # trl: conversational language modeling, structured content, a videos column
        {"messages": [_trl_user(r), _trl_assistant(r["answer"])], "videos": [r["video"]]}
        for r in rows
    ]
    return [write_json(out / f"{name}.jsonl", data, jsonl=True)]


def _trl_user(row: Mapping[str, str]) -> dict[str, Any]:
    question = row["prompt"][len(VIDEO_TOKEN) + 1 :]
    return {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}


def _trl_assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def export_preference(
    records: Iterable[Mapping[str, Any]],
    trainer: str,
    out_dir: str | Path,
    media_root: str | Path | None = None,
    *,
    base_dir: str | Path | None = None,
    name: str = "motion_dpo",
) -> list[Path]:
    """Write preference ``records`` (chosen/rejected texts) for ``trainer``; return the files.

    Raises:
        ExportError: an unknown trainer, a record lacking text, or chosen == rejected.
    """
    _check_trainer(trainer, PREFERENCE_TRAINERS, "preference")
    rows = _prepare(records, ("question", "chosen", "rejected"), base_dir, media_root)
    out = Path(out_dir)
    if trainer == "qwen2vl-finetune":
        data = [
            {"id": r["id"], "video": r["video"], "prompt": r["prompt"], "chosen": r["chosen"],
             "rejected": r["rejected"]}
            for r in rows
        ]  # fmt: skip
        return [write_json(out / f"{name}.json", data, jsonl=False)]
    if trainer == "llamafactory":
        data = [
            {"conversations": [{"from": "human", "value": r["prompt"]}],
             "chosen": {"from": "gpt", "value": r["chosen"]},
             "rejected": {"from": "gpt", "value": r["rejected"]},
             "system": r["system"], "videos": [r["video"]]}
            for r in rows
        ]  # fmt: skip
        entry = {
            "file_name": f"{name}.json",
            "formatting": "sharegpt",
            "ranking": True,
            "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected",
                        "system": "system", "videos": "videos"},
        }  # fmt: skip
        return [write_json(out / f"{name}.json", data, jsonl=False), _dataset_info(out, name, entry)]
    if trainer == "ms-swift":
        data = [
            {"messages": [{"role": "system", "content": r["system"]},
                          {"role": "user", "content": r["prompt"]},
                          {"role": "assistant", "content": r["chosen"]}],
             "rejected_response": r["rejected"], "videos": [r["video"]]}
            for r in rows
        ]  # fmt: skip
        return [write_json(out / f"{name}.jsonl", data, jsonl=True)]
    if trainer == "trl":
        data = [
            {"prompt": [_trl_user(r)], "chosen": [_trl_assistant(r["chosen"])],
             "rejected": [_trl_assistant(r["rejected"])], "videos": [r["video"]]}
            for r in rows
        ]  # fmt: skip
        return [write_json(out / f"{name}.jsonl", data, jsonl=True)]
    data = [  # motionvid: the released MotionVid-QA layout (bare question, no token)
        {"question": r["question"], "video": r["video"], "chosen": r["chosen"],
         "rejected": r["rejected"]}
        for r in rows
    ]  # fmt: skip
    return [write_json(out / f"{name}.json", data, jsonl=False)]
