"""Preference pairs: the MotionSight description against the plain one, sides recorded.

One record per clip and question kind, in the review page's format (``dataset review``)::

    {"id", "video" (relative to the pairs file's folder), "question", "kind",
     "candidates": [{"text", "source": "motionsight"}, {"text", "source": "plain"}],
     "visual_prompts": {"spotlight", "trails"}, "chosen": int | None,
     "choice_by": "rule" | "person" | None, "provenance": {...}}

``rule="motionsight"`` chooses the MotionSight side (the paper's finding: its descriptions were
preferred); ``rule=None`` leaves ``chosen`` empty for people to decide. Identical or empty
sides make no pair.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .questions import KINDS, TEMPLATES, answer_for, pick

__all__ = ["RULES", "build_pairs", "preference_records"]

RULES = ("motionsight", "plain", "none")


def _relative(path: str | None, folder: Path) -> str | None:
    if not path:
        return None
    try:
        return os.path.relpath(path, folder)
    except ValueError:  # another drive
        return path


def build_pairs(
    annotations: Sequence[Mapping[str, Any]],
    pairs_file: str | Path,
    templates: Mapping[str, Sequence[str]] | None = None,
    rule: str = "motionsight",
    kinds: Sequence[str] = KINDS,
) -> list[dict[str, Any]]:
    """Pair records for ``pairs_file`` (paths are written relative to its folder)."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}")
    templates = templates or TEMPLATES
    folder = Path(pairs_file).resolve().parent
    rows = []
    for ann in annotations:
        visual = ann.get("visual_prompts") or {}
        for kind in kinds:
            sight, plain = answer_for(kind, ann), answer_for(kind, ann, source="plain")
            if not sight or not plain or sight == plain:
                continue
            question = pick(templates.get(kind, []), f"{ann['uid']}/{kind}")
            if not question:
                continue
            chosen = {"motionsight": 0, "plain": 1, "none": None}[rule]
            rows.append({
                "id": f"{ann['uid']}-{kind}",
                "video": _relative(ann["video"], folder),
                "question": question[0],
                "kind": kind,
                "candidates": [{"text": sight, "source": "motionsight"},
                               {"text": plain, "source": "plain"}],
                "visual_prompts": {"spotlight": _relative(visual.get("spotlight"), folder),
                                   "trails": _relative(visual.get("trails"), folder)},
                "chosen": chosen,
                "choice_by": None if chosen is None else "rule",
                "provenance": {**(ann.get("provenance") or {}), "rule": rule if chosen is not None else None},
            })  # fmt: skip
    return rows


def preference_records(pairs: Sequence[Mapping[str, Any]], where: str = "pairs") -> tuple[list[dict[str, Any]], int]:
    """``(records for export_preference, how many pairs were skipped as undecided)``.

    Raises:
        ValueError: a ``chosen`` that is not an index of its candidates (names the pair).
    """
    records, undecided = [], 0
    for i, pair in enumerate(pairs):
        chosen = pair.get("chosen")
        candidates = pair.get("candidates") or []
        if chosen is None:
            undecided += 1
            continue
        if not isinstance(chosen, int) or not 0 <= chosen < len(candidates) or len(candidates) != 2:
            raise ValueError(f"{where}: pair {i} (id {pair.get('id')!r}): chosen {chosen!r} is not 0 or 1 of two candidates")
        records.append({
            "id": pair["id"], "video": pair["video"], "question": pair["question"],
            "chosen": candidates[chosen]["text"], "rejected": candidates[1 - chosen]["text"],
            "choice_by": pair.get("choice_by"),
            "chosen_source": candidates[chosen].get("source"),
        })  # fmt: skip
    return records, undecided
