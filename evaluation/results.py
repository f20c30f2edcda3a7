"""Durable, resumable JSONL results: one line per finished question.

Durability rules (a run may be killed with ``kill -9`` at any moment):

* each record is one complete line written with a single ``os.write`` on an ``O_APPEND``
  descriptor, so a killed process leaves either the whole line or none of it (the kernel's page
  cache keeps what was written; ``fsync`` every ``fsync_interval`` seconds, and at close, covers
  power loss);
* on load, a torn last line (no final newline: power loss, full disk) is ignored and cut off
  before anything is appended, so it can never glue itself to the next record;
* per uid the loader keeps the first *successful* record, else the latest failed one (a
  ``--retry-failed`` run appends the new attempt after the old failure);
* the file is compacted to exactly one line per uid -- through a temporary file and
  ``os.replace``, so it is never half-written -- when a run opens it with duplicates or a torn
  tail, and when a run closes after retrying.
* an advisory lock (``<file>.lock``) stops two runs from appending to the same file.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "LoadedResults",
    "ResultRecord",
    "ResultsFileError",
    "ResultsStore",
    "load_results",
    "write_results",
]


class ResultsFileError(ValueError):
    """A results file that cannot be read (names the file and line) or is locked by another run."""


@dataclass
class ResultRecord:
    """One question's outcome, one JSON line of the results file.

    ``answer`` is the correct answer (letter or option text), ``output`` the model's raw text,
    ``parsed`` what the official rule read from it, ``time_s`` the seconds the answer took,
    ``error`` the failure message (``None`` when the model answered). ``provenance`` names
    what produced it: the run's model, backend, base URL, workflow (file and hash), settings
    (``--set`` values, labels) and their hash, and per question the route, the action
    objects and a hash of the exact prompt.
    """

    uid: str
    benchmark: str
    category: str
    question: str
    prompt: str
    video: str
    answer: str
    output: str | None
    parsed: str | None
    correct: bool
    time_s: float
    error: str | None = None
    options: list[str] = field(default_factory=list)
    finished_at: float = 0.0
    provenance: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_line(self) -> bytes:
        """The record as one UTF-8 JSON line, newline included (newlines in text are escaped)."""
        return (json.dumps(asdict(self), ensure_ascii=False) + "\n").encode("utf-8")

    @classmethod
    def from_dict(cls, data: dict, where: str) -> ResultRecord:
        try:
            return cls(
                **{k: data[k] for k in _REQUIRED}, **{k: data[k] for k in _OPTIONAL if k in data}
            )
        except KeyError as exc:
            raise ResultsFileError(f"{where}: results record lacks field {exc.args[0]!r}") from None


_REQUIRED = ("uid", "benchmark", "category", "question", "prompt", "video", "answer", "output",
             "parsed", "correct", "time_s")  # fmt: skip
_OPTIONAL = ("error", "options", "finished_at", "provenance")


@dataclass
class LoadedResults:
    """What :func:`load_results` found: the kept record per uid, in first-seen order."""

    records: dict[str, ResultRecord]
    lines: int = 0
    torn_tail: bool = False
    valid_bytes: int = 0

    @property
    def needs_compaction(self) -> bool:
        return self.torn_tail or self.lines != len(self.records)


def load_results(path: str | Path, record_type: type = ResultRecord) -> LoadedResults:
    """Read a results file (missing file -> empty), applying the keep-first-success rule.

    ``record_type`` builds each line (``record_type.from_dict(obj, where)``) and needs ``uid``,
    ``ok`` and ``to_line()``: :class:`ResultRecord` for benchmarks, other JSONL stores reuse
    the same durability (the dataset's scan and annotation files).

    Raises:
        ResultsFileError: a complete line that is not a results record (hand edits), naming
            the line. A torn *last* line is not an error: it is reported as ``torn_tail``.
    """
    path = Path(path)
    if not path.exists():
        return LoadedResults(records={})
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1  # everything after the last newline is a torn write
    loaded = LoadedResults(records={}, torn_tail=end < len(data), valid_bytes=end)
    records = loaded.records
    for line_no, raw in enumerate(data[:end].split(b"\n")[:-1], start=1):
        if not raw.strip():
            continue
        where = f"{path}:{line_no}"
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ResultsFileError(
                f"{where}: not a JSON results record; fix or delete that line"
            ) from None
        if not isinstance(obj, dict):
            raise ResultsFileError(f"{where}: expected a JSON object")
        record = record_type.from_dict(obj, where)
        loaded.lines += 1
        old = records.get(record.uid)
        if old is None or (not old.ok):  # first success wins; among failures the latest
            records[record.uid] = record
    return loaded


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not possible on some platforms (Windows): the replace is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_results(path: str | Path, records: Iterable[ResultRecord]) -> None:
    """Atomically replace ``path`` with ``records`` (temp file in the same folder + ``os.replace``)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        for record in records:
            handle.write(record.to_line())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class ResultsStore:
    """An open results file: the kept records plus an append-only, lock-protected writer.

    Use as a context manager::

        with ResultsStore("run.jsonl") as store:
            if uid not in store.records: store.append(record)
    """

    def __init__(
        self, path: str | Path, *, fsync_interval: float = 1.0, record_type: type = ResultRecord
    ) -> None:
        self.path = Path(path)
        self.record_type = record_type
        self.fsync_interval = float(fsync_interval)
        self.records: dict[str, Any] = {}
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._last_sync = 0.0
        self._dirty = False
        self._replaced = False  # appended a record for a uid that already had a line

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> ResultsStore:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock()
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            stale.unlink(missing_ok=True)  # a compaction killed half-way (the original is intact)
        loaded = load_results(self.path, self.record_type)
        self.records = loaded.records
        if loaded.needs_compaction:
            write_results(self.path, self.records.values())
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._last_sync = time.monotonic()
        return self

    def close(self) -> None:
        if self._fd is not None:
            if self._dirty:
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
            if self._replaced:  # a retried uid now has two lines: keep one
                write_results(self.path, self.records.values())
        self._unlock()

    def __enter__(self) -> ResultsStore:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------------
    def append(self, record: Any) -> None:
        """Write ``record`` as one line (one ``os.write``) and keep it per the loader's rule."""
        if self._fd is None:
            raise RuntimeError(f"results file {self.path} is not open")
        line = record.to_line()
        written = os.write(self._fd, line)
        while written < len(line):  # regular files write fully; loop only for odd filesystems
            written += os.write(self._fd, line[written:])
        self._dirty = True
        now = time.monotonic()
        if now - self._last_sync >= self.fsync_interval:
            os.fsync(self._fd)
            self._last_sync = now
            self._dirty = False
        old = self.records.get(record.uid)
        if old is not None:
            self._replaced = True
        if old is None or not old.ok:
            self.records[record.uid] = record

    # -- locking -----------------------------------------------------------------------------
    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory lock, single runs are the user's job
            return
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ResultsFileError(
                f"{self.path} is being written by another run (lock {lock_path} is held)"
            ) from None
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock (so does process death)
            self._lock_fd = None
