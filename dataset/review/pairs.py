"""The pairs to review: read, checked, and given stable ids and randomised sides.

Two inputs are accepted:

* the dataset's pairs JSONL (`motionsight dataset pairs`): one object per line with `id`,
  `video`, `question`, `kind`, `candidates` (two `{"text", "source"}`), optional
  `visual_prompts` (`{"spotlight": path|null, "trails": path|null}`), `chosen`, `choice_by`,
  `provenance`;
* preference records (`motionsight export --format preference`, MotionVid-QA's `show.json`):
  a JSON list, or JSONL, of `{"question", "video", "chosen", "rejected"}`. They become pairs
  whose candidates are the record's chosen and rejected text (sources "chosen" / "rejected").

Relative paths are relative to the pairs file's folder. Every video (and visual-prompt file)
is checked when the file is read, so the server only ever serves files the pairs file names,
and only those whose real target (after symlinks) is a media file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "FRAME_SUFFIXES",
    "PROMPT_KINDS",
    "VIDEO_SUFFIXES",
    "Candidate",
    "Pair",
    "ReviewError",
    "load_pairs",
]

VIDEO_SUFFIXES = (".mp4", ".m4v", ".webm", ".mov", ".mkv", ".ogv", ".avi")
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg")
PROMPT_KINDS = ("spotlight", "trails")  # the visual prompts besides the original video


class ReviewError(ValueError):
    """A problem with the review's input or state; the message names the file and the place."""


@dataclass(frozen=True)
class Candidate:
    text: str
    source: str


@dataclass(frozen=True)
class Pair:
    """One pair to review: a clip, a question and two descriptions of its motion."""

    id: str
    index: int  # position in the pairs file (the review order)
    video: Path  # absolute, as named (symlinks not resolved)
    video_field: str  # the `video` value as written in the pairs file
    question: str
    kind: str
    candidates: tuple[Candidate, Candidate]
    visual_prompts: dict[str, Path | None] = field(default_factory=dict)
    prior_choice: int | None = None  # `chosen` of the input (not shown to reviewers)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """Fingerprint of what a reviewer judged; a decision whose digest differs is stale."""
        text = "\0".join([self.question, self.candidates[0].text, self.candidates[1].text])
        return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]

    def sides(self, reviewer: str) -> tuple[int, int]:
        """(candidate on the left, candidate on the right): random per pair and reviewer, stable."""
        flip = hashlib.sha256(f"{self.id}\0{reviewer}".encode()).digest()[0] & 1
        return (1, 0) if flip else (0, 1)


def _media_target(path: Path, suffixes: tuple[str, ...], where: str, allow_dir: bool) -> Path:
    """`path` made absolute after checking that its real target is a media file (or folder)."""
    if not path.exists():
        raise ReviewError(f"{where}: {path} does not exist")
    real = path.resolve()
    if allow_dir and real.is_dir():
        if not any(p.suffix.lower() in FRAME_SUFFIXES for p in real.iterdir() if p.is_file()):
            raise ReviewError(
                f"{where}: folder {path} holds no frames ({', '.join(FRAME_SUFFIXES)})"
            )
        return path
    if not real.is_file():
        raise ReviewError(f"{where}: {path} is not a regular file")
    if real.suffix.lower() not in suffixes:
        raise ReviewError(
            f"{where}: {path} (really {real}) is not a video file ({', '.join(suffixes)})"
        )
    return path


def _path(value: Any, base: Path, where: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ReviewError(f"{where}: expected a file path, got {value!r}")
    path = Path(value)
    return Path(os.path.abspath(path if path.is_absolute() else base / path))


def _text(record: dict, key: str, where: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ReviewError(f"{where}: `{key}` must be a non-empty string, got {value!r}")
    return value


def _pair(record: Any, index: int, base: Path, where: str) -> Pair:
    if not isinstance(record, dict):
        raise ReviewError(f"{where}: expected a JSON object, got {type(record).__name__}")
    video_field = _text(record, "video", where)
    video = _media_target(_path(video_field, base, where), VIDEO_SUFFIXES, where, allow_dir=False)
    question = _text(record, "question", where)
    if "candidates" in record:
        raw = record["candidates"]
        if not isinstance(raw, list) or len(raw) != 2:
            raise ReviewError(f"{where}: `candidates` must be a list of two {{text, source}}")
        candidates = []
        for i, c in enumerate(raw):
            if not isinstance(c, dict):
                raise ReviewError(f"{where}: candidates[{i}] must be an object")
            source = c.get("source", f"candidate {i}")
            candidates.append(Candidate(_text(c, "text", f"{where} candidates[{i}]"), str(source)))
        prior = record.get("chosen")
        if prior is not None and prior not in (0, 1):
            raise ReviewError(f"{where}: `chosen` must be 0, 1 or null, got {prior!r}")
        provenance = record.get("provenance") or {}
        pair_id = record.get("id")
        kind = str(record.get("kind") or "")
    elif "chosen" in record and "rejected" in record:
        candidates = [
            Candidate(_text(record, "chosen", where), "chosen"),
            Candidate(_text(record, "rejected", where), "rejected"),
        ]
        prior = 0
        provenance = {"format": "preference", "choice_by": record.get("choice_by", "record")}
        if "source_name" in record:
            provenance["source_name"] = record["source_name"]
        pair_id = record.get("id")
        kind = str(record.get("kind") or "")
    else:
        raise ReviewError(
            f"{where}: a pair needs `candidates` (pairs JSONL) or `chosen` and `rejected` "
            "(preference records)"
        )
    prompts: dict[str, Path | None] = dict.fromkeys(PROMPT_KINDS)
    given = record.get("visual_prompts") or {}
    if not isinstance(given, dict):
        raise ReviewError(f"{where}: `visual_prompts` must be an object")
    for kind, value in given.items():
        if kind not in PROMPT_KINDS:
            raise ReviewError(
                f"{where}: unknown visual prompt {kind!r}; known: {', '.join(PROMPT_KINDS)}"
            )
        if value is not None:
            prompts[kind] = _media_target(
                _path(value, base, f"{where} visual_prompts.{kind}"),
                VIDEO_SUFFIXES,
                f"{where} visual_prompts.{kind}",
                allow_dir=True,
            )
    if candidates[0].text == candidates[1].text:
        raise ReviewError(f"{where}: the two descriptions are the same text")
    if pair_id is None:  # stable across runs: the clip's name and a hash of what is judged
        h = hashlib.sha1("\0".join([question, candidates[0].text, candidates[1].text]).encode())
        pair_id = f"{Path(video_field).stem}-{h.hexdigest()[:8]}"
    if not isinstance(pair_id, str | int) or not str(pair_id).strip():
        raise ReviewError(f"{where}: `id` must be a non-empty string, got {pair_id!r}")
    return Pair(
        id=str(pair_id),
        index=index,
        video=video,
        video_field=video_field,
        question=question,
        kind=kind,
        candidates=(candidates[0], candidates[1]),
        visual_prompts=prompts,
        prior_choice=prior,
        provenance=provenance if isinstance(provenance, dict) else {"value": provenance},
    )


def _records(path: Path) -> list[tuple[Any, str]]:
    """(record, location) for each record of a JSON list or a JSONL file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReviewError(f"cannot read pairs file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ReviewError(f"pairs file {path} is not UTF-8 text") from None
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReviewError(f"{path}: not valid JSON at line {exc.lineno}: {exc.msg}") from None
        return [(record, f"{path} item {i}") for i, record in enumerate(data)]
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append((json.loads(line), f"{path}:{lineno}"))
        except json.JSONDecodeError as exc:
            raise ReviewError(f"{path}:{lineno}: not valid JSON: {exc.msg}") from None
    return out


def load_pairs(path: str | os.PathLike) -> list[Pair]:
    """Read and check every pair of `path` (pairs JSONL, or preference records as JSON/JSONL).

    Raises:
        ReviewError: naming the file and line (or item) of the first problem: a missing or
            non-video file, a missing field, a duplicate id, an empty file.
    """
    path = Path(path)
    if not path.is_file():
        raise ReviewError(f"pairs file {path} does not exist")
    base = Path(os.path.abspath(path)).parent
    pairs: list[Pair] = []
    seen: dict[str, str] = {}
    for record, where in _records(path):
        pair = _pair(record, len(pairs), base, where)
        if pair.id in seen:
            raise ReviewError(f"{where}: duplicate pair id {pair.id!r} (first at {seen[pair.id]})")
        seen[pair.id] = where
        pairs.append(pair)
    if not pairs:
        raise ReviewError(f"pairs file {path} holds no pairs")
    return pairs
