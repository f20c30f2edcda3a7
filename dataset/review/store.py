"""The decisions file: one JSON line per decision, appended durably, replayed on open.

A line is a choice, a skip, or an undo of an earlier line (undo is appended too, nothing is
ever rewritten)::

    {"v": 1, "uid": "…", "time": "…", "reviewer": "ana", "pair": "p1", "action": "choose",
     "choice": 1, "side": "left", "source": "motionsight", "digest": "…"}
    {"v": 1, "uid": "…", "time": "…", "reviewer": "ana", "pair": "p2", "action": "skip", "digest": "…"}
    {"v": 1, "uid": "…", "time": "…", "reviewer": "ana", "pair": "p2", "action": "undo", "undoes": "…"}

Every append takes an exclusive `flock` on the file, first reads the lines other writers added
(so a check such as "already decided" sees them), writes the line in one `write` and
`fsync`s before it returns: once a request has been answered its decision is on disk, and
two servers (two reviewers) appending to one file never lose each other's lines. A line torn
by a crash is reported and skipped; the next append starts on a fresh line.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path
from typing import Any

from .pairs import Pair, ReviewError

try:  # POSIX; elsewhere appends rely on O_APPEND alone
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = [
    "ACTIONS",
    "DecisionConflict",
    "DecisionStore",
    "ReviewReport",
    "agreement",
    "check_reviewer",
    "reviewed_records",
]

ACTIONS = ("choose", "skip", "undo")
_REVIEWER = re.compile(r"^[\w.@-]{1,64}$")


class DecisionConflict(ReviewError):
    """The decision contradicts the file's state (decided in another tab, nothing to undo)."""


def check_reviewer(name: str) -> str:
    if not isinstance(name, str) or not _REVIEWER.match(name):
        raise ReviewError(
            f"reviewer name {name!r} is not valid: use 1-64 letters, digits, '.', '_', '-' or '@'"
        )
    return name


class DecisionStore:
    """The decisions of one file, kept in step with other writers of the same file.

    `effective[(pair_id, reviewer)]` is the line that currently decides that pair for that
    reviewer (a choice or a skip); undone and superseded lines are not in it.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ReviewError(
                f"cannot open decisions file {self.path}: {exc.strerror or exc}"
            ) from None
        self._offset = 0
        self._lineno = 0
        self.effective: dict[tuple[str, str], dict] = {}
        self._stacks: dict[str, list[str]] = defaultdict(list)  # reviewer -> uids, oldest first
        self._by_uid: dict[str, dict] = {}
        self.bad_lines: list[int] = []
        self.refresh()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> DecisionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------
    def _lock(self, kind: int) -> None:
        if fcntl is not None:
            fcntl.flock(self._fd, kind)

    def _unlock(self) -> None:
        if fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _read_new(self) -> None:
        size = os.fstat(self._fd).st_size
        if size <= self._offset:
            return
        data = os.pread(self._fd, size - self._offset, self._offset)
        end = data.rfind(b"\n")
        if end < 0:  # a line still being written (or torn): wait for its newline
            return
        for raw in data[: end + 1].split(b"\n")[:-1]:
            self._lineno += 1
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
                self._apply(line)
            except (ValueError, KeyError, TypeError):
                self.bad_lines.append(self._lineno)
        self._offset += end + 1

    def refresh(self) -> None:
        """Take in the lines other writers appended since the last look."""
        if fcntl is not None:
            self._lock(fcntl.LOCK_SH)
        try:
            self._read_new()
        finally:
            self._unlock()

    def _apply(self, line: dict) -> None:
        action, reviewer, uid = line["action"], line["reviewer"], line["uid"]
        if action in ("choose", "skip"):
            if action == "choose" and line["choice"] not in (0, 1):
                raise ValueError("choice")
            key = (str(line["pair"]), reviewer)
            old = self.effective.get(key)
            if old is not None:
                self._stacks[reviewer].remove(old["uid"])
            self.effective[key] = line
            self._stacks[reviewer].append(uid)
            self._by_uid[uid] = line
        elif action == "undo":
            target = self._by_uid.get(line["undoes"])
            if target is None:
                return
            key = (str(target["pair"]), target["reviewer"])
            if self.effective.get(key) is target:
                del self.effective[key]
                self._stacks[target["reviewer"]].remove(target["uid"])
        else:
            raise ValueError(action)

    # -- writing -----------------------------------------------------------------------
    def _append(self, line: dict) -> dict:
        """Write `line` (lock held): on a fresh line, in one write, fsynced."""
        data = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
        size = os.fstat(self._fd).st_size
        if size and os.pread(self._fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # the last line was torn by a crash: leave it on its own
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        os.fsync(self._fd)
        self._read_new()
        return line

    def _locked(self, build) -> dict:
        if fcntl is not None:
            self._lock(fcntl.LOCK_EX)
        try:
            self._read_new()
            line = build()
            return self._append(line)
        finally:
            self._unlock()

    @staticmethod
    def _stamp(reviewer: str, pair_id: str, action: str) -> dict:
        return {
            "v": 1,
            "uid": uuid.uuid4().hex,
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "reviewer": reviewer,
            "pair": pair_id,
            "action": action,
        }

    def decide(self, pair: Pair, reviewer: str, choice: int | None, side: str = "") -> dict:
        """Append a choice (`choice` 0 or 1: the candidate index) or a skip (`choice` None).

        Raises:
            DecisionConflict: `reviewer` has already decided `pair` (e.g. in another tab).
        """
        check_reviewer(reviewer)
        if choice not in (0, 1, None):
            raise ReviewError(f"choice must be 0, 1 or None (skip), got {choice!r}")

        def build() -> dict:
            old = self.effective.get((pair.id, reviewer))
            if old is not None and old.get("digest") == pair.digest:  # a stale one is replaced
                raise DecisionConflict(
                    f"{reviewer} has already decided pair {pair.id!r} (in another tab?); reload"
                )
            line = self._stamp(reviewer, pair.id, "skip" if choice is None else "choose")
            if choice is not None:
                line.update(choice=choice, side=side, source=pair.candidates[choice].source)
            line["digest"] = pair.digest
            return line

        return self._locked(build)

    def undo(self, reviewer: str, pairs: Sequence[Pair] | None = None) -> dict:
        """Append an undo of `reviewer`'s latest decision still in force; returns the undo line.

        With `pairs`, only a decision about one of them as it is now can be undone (not a stale
        one the page does not show).

        Raises:
            DecisionConflict: `reviewer` has nothing left to undo.
        """
        check_reviewer(reviewer)
        digests = None if pairs is None else {p.id: p.digest for p in pairs}

        def build() -> dict:
            stack = [
                uid
                for uid in self._stacks.get(reviewer, [])
                if digests is None
                or digests.get(self._by_uid[uid]["pair"]) == self._by_uid[uid].get("digest")
            ]
            if not stack:
                raise DecisionConflict(f"{reviewer} has nothing to undo")
            target = self._by_uid[stack[-1]]
            line = self._stamp(reviewer, target["pair"], "undo")
            line["undoes"] = target["uid"]
            return line

        return self._locked(build)

    # -- views -------------------------------------------------------------------------
    def decisions(self, pairs: Sequence[Pair]) -> tuple[dict[tuple[str, str], dict], int]:
        """The effective decisions about `pairs` as they are now, and how many are stale
        (about a pair that is gone or whose question or descriptions changed since)."""
        by_id = {p.id: p for p in pairs}
        valid, stale = {}, 0
        for key, line in self.effective.items():
            pair = by_id.get(key[0])
            if pair is None or line.get("digest") != pair.digest:
                stale += 1
            else:
                valid[key] = line
        return valid, stale

    def last_undoable(self, reviewer: str, pairs: Sequence[Pair] | None = None) -> dict | None:
        """The decision `undo(reviewer, pairs)` would undo, or None."""
        digests = None if pairs is None else {p.id: p.digest for p in pairs}
        for uid in reversed(self._stacks.get(reviewer, [])):
            line = self._by_uid[uid]
            if digests is None or digests.get(line["pair"]) == line.get("digest"):
                return line
        return None


def agreement(decisions: dict[tuple[str, str], dict]) -> list[dict[str, Any]]:
    """Agreement between every two reviewers over the pairs both of them chose on.

    Returns one dict per reviewer pair with `reviewers`, `both` (pairs both chose on),
    `agree`, `percent`, `kappa` (Cohen's, None when undefined) and `skip_vs_choice` (pairs one
    skipped and the other chose on).
    """
    per_reviewer: dict[str, dict[str, dict]] = defaultdict(dict)
    for (pair_id, reviewer), line in decisions.items():
        per_reviewer[reviewer][pair_id] = line
    out = []
    for a, b in combinations(sorted(per_reviewer), 2):
        da, db = per_reviewer[a], per_reviewer[b]
        shared = sorted(set(da) & set(db))
        both = [p for p in shared if da[p]["action"] == db[p]["action"] == "choose"]
        mixed = sum(1 for p in shared if da[p]["action"] != db[p]["action"])
        if not both and not mixed:
            continue
        agree = sum(1 for p in both if da[p]["choice"] == db[p]["choice"])
        kappa = None
        if both:
            po = agree / len(both)
            fa = sum(da[p]["choice"] for p in both) / len(both)
            fb = sum(db[p]["choice"] for p in both) / len(both)
            pe = fa * fb + (1 - fa) * (1 - fb)
            kappa = round((po - pe) / (1 - pe), 3) if pe < 1 else None
        out.append(
            {
                "reviewers": [a, b],
                "both": len(both),
                "agree": agree,
                "percent": round(100 * agree / len(both), 1) if both else None,
                "kappa": kappa,
                "skip_vs_choice": mixed,
            }
        )
    return out


@dataclass
class ReviewReport:
    """What the export took and what it left out, and why."""

    exported: int = 0
    skipped: int = 0  # every reviewer who saw the pair skipped it
    undecided: int = 0
    ties: list[str] = field(default_factory=list)  # pair ids the reviewers split evenly on
    stale: int = 0
    per_reviewer: dict[str, int] = field(default_factory=dict)
    agreement: list[dict[str, Any]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"{self.exported} reviewed pairs exported; left out: {self.skipped} skipped, "
            f"{self.undecided} undecided, {len(self.ties)} tied"
            + (f" ({', '.join(self.ties)})" if self.ties else "")
        ]
        if self.per_reviewer:
            out.append(
                "decisions per reviewer: "
                + ", ".join(f"{r} {n}" for r, n in sorted(self.per_reviewer.items()))
            )
        if self.stale:
            out.append(f"{self.stale} decisions ignored: their pair changed or left the pairs file")
        for a in self.agreement:
            x, y = a["reviewers"]
            if a["both"]:
                kappa = "undefined" if a["kappa"] is None else f"{a['kappa']:.2f}"
                out.append(
                    f"agreement {x} / {y}: {a['agree']} of {a['both']} pairs ({a['percent']:.1f} %), "
                    f"Cohen's kappa {kappa}; {a['skip_vs_choice']} skipped by one only"
                )
            else:
                out.append(
                    f"agreement {x} / {y}: no pair chosen by both; {a['skip_vs_choice']} skipped by one only"
                )
        return out


def reviewed_records(
    pairs: Iterable[Pair], store: DecisionStore
) -> tuple[list[dict[str, Any]], ReviewReport]:
    """The reviewed pairs as preference records, in pairs-file order, and a report.

    A pair is taken when people chose on it and a strict majority of those choices name the
    same description; skips are abstentions, so a pair everyone skipped stays out, and so does
    a tie. Record: `{"id", "video", "question", "chosen", "rejected", "choice_by": "person",
    "reviewers", "kind", "chosen_source", "rejected_source"}` (`video` absolute).
    """
    pairs = list(pairs)
    store.refresh()
    decisions, stale = store.decisions(pairs)
    report = ReviewReport(stale=stale, agreement=agreement(decisions))
    report.per_reviewer = dict(Counter(r for _p, r in decisions))
    by_pair: dict[str, list[dict]] = defaultdict(list)
    for (pair_id, _reviewer), line in decisions.items():
        by_pair[pair_id].append(line)
    records = []
    for pair in pairs:
        lines = by_pair.get(pair.id, [])
        votes = Counter(line["choice"] for line in lines if line["action"] == "choose")
        if not lines:
            report.undecided += 1
            continue
        if not votes:
            report.skipped += 1
            continue
        if votes[0] == votes[1]:
            report.ties.append(pair.id)
            continue
        win = 0 if votes[0] > votes[1] else 1
        records.append(
            {
                "id": pair.id,
                "video": str(pair.video),
                "question": pair.question,
                "chosen": pair.candidates[win].text,
                "rejected": pair.candidates[1 - win].text,
                "choice_by": "person",
                "reviewers": sorted(
                    line["reviewer"]
                    for line in lines
                    if line["action"] == "choose" and line["choice"] == win
                ),
                "kind": pair.kind,
                "chosen_source": pair.candidates[win].source,
                "rejected_source": pair.candidates[1 - win].source,
            }
        )
    report.exported = len(records)
    return records, report
