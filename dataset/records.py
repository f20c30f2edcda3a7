"""The dataset's JSONL lines: plain JSON objects kept by evaluation's durable results store.

Every stage that calls a model or decodes video (scan, annotate) appends one line per clip
through :class:`motionsight.evaluation.results.ResultsStore` (one ``os.write`` per line, torn
tails cut, first success per uid kept, a lock against two runs), so a ``kill -9`` loses at most
the clips in flight and a re-run resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..evaluation.export import write_json
from ..evaluation.results import ResultsFileError, load_results

__all__ = ["Record", "clip_id", "load_records", "read_jsonl", "text_hash",
           "write_jsonl"]  # fmt: skip


class Record(dict):
    """One JSON object with a ``uid`` and an ``error`` (``None`` when the step succeeded)."""

    @property
    def uid(self) -> str:
        return self["uid"]

    @property
    def ok(self) -> bool:
        return self.get("error") is None

    def to_line(self) -> bytes:
        return (json.dumps(self, ensure_ascii=False) + "\n").encode("utf-8")

    @classmethod
    def from_dict(cls, data: dict, where: str) -> Record:
        if not isinstance(data.get("uid"), str):
            raise ResultsFileError(f"{where}: dataset record lacks a text 'uid'")
        return cls(data)


def load_records(path: str | Path) -> dict[str, Record]:
    """The kept record per uid of a scan/annotation file (missing file -> empty)."""
    return load_results(path, Record).records


def clip_id(path: str | Path, root: str | Path | None = None) -> str:
    """A stable id for a clip: its path relative to ``root`` (or its name), plus a short hash
    of that path so two ``a/x.mp4`` and ``b/x.mp4`` differ."""
    p = Path(path)
    rel = os.path.relpath(p, root) if root is not None else p.name
    digest = hashlib.sha1(rel.encode("utf-8")).hexdigest()[:8]
    return f"{Path(rel).stem}-{digest}"


def text_hash(text: str) -> str:
    """``sha256:<first 16 hex>`` of a prompt's exact text."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """A JSONL file as a list of objects; a bad line raises ``ValueError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    rows = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{line_no}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{path}:{line_no}: expected a JSON object")
        rows.append(obj)
    return rows


def write_jsonl(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Atomically write ``rows`` as JSON lines (temporary file + ``os.replace``)."""
    return write_json(path, rows, jsonl=True)
