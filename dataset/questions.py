"""Template questions paired with the descriptions, and optional validated multiple-choice QAs.

The paper's kinds: object motion (10 templates), camera motion (8), mixed object + camera (4),
each answered by the clip's MotionSight description. A user's template file replaces them: JSON
``{"object": [...], "camera": [...], "mixed": [...]}`` whose items are strings or the paper's
``{"instruction": "<video>\\n...", "output": "", "system": "..."}`` objects (kinds left out get
no questions). Multiple-choice QAs come from an OpenAI-compatible *text* model reading the
description; one is kept only when it validates: four distinct options, exactly one correct
letter, and the correct option grounded in the description.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "KINDS",
    "TEMPLATES",
    "answer_for",
    "build_questions",
    "load_templates",
    "mcq_prompt",
    "parse_mcq",
    "validate_mcq",
]

KINDS = ("object", "camera", "mixed")
TEMPLATES: dict[str, list[str]] = {
    "object": [
        "How are the objects moving in this video?",
        "What actions are being performed by the objects in this video?",
        "How do the objects interact with each other in this video?",
        "Describe the movements of the main subjects in this video.",
        "In what order do the objects in this video move?",
        "Which objects move in this video, and how?",
        "Describe the direction and speed of the moving objects in this video.",
        "What motions does the main subject perform from start to end?",
        "How does the position of the moving objects change over the video?",
        "Describe the fine-grained actions of the people or animals in this video.",
    ],
    "camera": [
        "How does the camera move in this video?",
        "Describe the camera motion in this video.",
        "How does the camera movement contribute to the viewing experience?",
        "Is the camera static or moving in this video? Describe its motion.",
        "What kind of camera movement (pan, tilt, zoom, tracking) is used in this video?",
        "How does the viewpoint change over the course of this video?",
        "Describe how the shot is framed and how the framing changes.",
        "In which direction does the camera move, and when?",
    ],
    "mixed": [
        "Describe both how the objects move and how the camera moves in this video.",
        "How do the subjects move, and how does the camera follow or frame them?",
        "Give a detailed account of the motion in this video: the objects' actions and the "
        "camera's movement.",
        "Describe the video's dynamics: what moves in the scene, and how the camera moves "
        "relative to it.",
    ],
}


def load_templates(path: str | Path) -> dict[str, list[str]]:
    """A user's template file (replaces the built-in templates).

    Raises:
        ValueError: not JSON, not an object of kind -> list, an unknown kind, or an empty
            template (names the file and the entry).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"template file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError(f'{path}: expected {{"object": [...], "camera": [...], "mixed": [...]}}')
    templates: dict[str, list[str]] = {}
    for kind, items in data.items():
        if kind not in KINDS:
            raise ValueError(f"{path}: unknown kind {kind!r}; kinds are {', '.join(KINDS)}")
        if not isinstance(items, list):
            raise ValueError(f"{path}: {kind!r} must be a list of templates")
        texts = []
        for i, item in enumerate(items):
            text = item.get("instruction") if isinstance(item, dict) else item
            if not isinstance(text, str) or not re.sub(r"<video>", "", text).strip():
                raise ValueError(f"{path}: {kind}[{i}] is not a non-empty template text")
            texts.append(re.sub(r"\s*<video>\s*", " ", text).strip())
        templates[kind] = texts
    if not any(templates.values()):
        raise ValueError(f"{path}: no templates")
    return templates


def answer_for(kind: str, annotation: Mapping[str, Any], source: str = "motionsight") -> str:
    """The description answering a ``kind`` question: MotionSight's (``object_motion``...) or the
    plain one (``original_...``); ``mixed`` joins object and camera motion."""
    prefix = "" if source == "motionsight" else "original_"
    obj = str(annotation.get(f"{prefix}object_motion") or "").strip()
    cam = str(annotation.get(f"{prefix}camera_motion") or "").strip()
    if kind == "object":
        return obj
    if kind == "camera":
        return cam
    return f"{obj}\n\nCamera: {cam}" if obj and cam else obj or cam


def pick(templates: Sequence[str], key: str, count: int = 1) -> list[str]:
    """``count`` templates chosen deterministically from ``key`` (stable across runs)."""
    if not templates:
        return []
    start = zlib.crc32(key.encode("utf-8")) % len(templates)
    return [templates[(start + i) % len(templates)] for i in range(min(count, len(templates)))]


def build_questions(
    annotations: Sequence[Mapping[str, Any]],
    templates: Mapping[str, Sequence[str]] | None = None,
    per_kind: int = 1,
) -> list[dict[str, Any]]:
    """SFT question records ``{"id", "video", "question", "kind", "answer", ...}`` per clip."""
    templates = templates or TEMPLATES
    rows = []
    for ann in annotations:
        for kind in KINDS:
            answer = answer_for(kind, ann)
            if not answer:
                continue
            for n, question in enumerate(pick(templates.get(kind, []), f"{ann['uid']}/{kind}", per_kind)):
                rows.append({
                    "id": f"{ann['uid']}-{kind}-{n}", "video": ann["video"], "question": question,
                    "kind": kind, "answer": answer, "answer_source": "motionsight",
                    "split": ann.get("split"), "provenance": ann.get("provenance"),
                })  # fmt: skip
    return rows


# ---------------------------------------------------------------------------------- multiple choice
MCQ_INSTRUCTION = (
    "Below is a description of the motion in a video. Write one multiple-choice question about "
    "the {kind} motion it describes, with four options A-D of which exactly one is correct "
    "according to the description, and three plausible but wrong ones. Reply with JSON only: "
    '{{"question": "...", "options": ["...", "...", "...", "..."], "answer": "A"}}\n'
    "Description: {description}"
)
_WORD = re.compile(r"[a-z]+")
_STOP = frozenset(
    "a an the and or of to in on at by for with from is are was were be been it its this that "
    "these those as into over under up down then than there their they them he she his her".split()
)


def mcq_prompt(kind: str, description: str) -> str:
    return MCQ_INSTRUCTION.format(kind="camera" if kind == "camera" else "object", description=description)


def parse_mcq(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text`` (bare or fenced), or None."""
    for candidate in re.findall(r"```(?:json)?\s*(.*?)```", text, re.S) + [text] + re.findall(r"\{.*\}", text, re.S):
        try:
            data = json.loads(candidate.strip())
        except ValueError:
            continue
        if isinstance(data, dict):
            return data
    return None


def validate_mcq(data: Mapping[str, Any] | None, description: str) -> str | None:
    """Why a multiple-choice QA is unusable, or None when it validates."""
    if data is None:
        return "no JSON object"
    question, options, answer = data.get("question"), data.get("options"), data.get("answer")
    if not isinstance(question, str) or not question.strip():
        return "no question"
    if not isinstance(options, list) or len(options) != 4 or not all(isinstance(o, str) and o.strip() for o in options):
        return "options must be four texts"
    norm = [re.sub(r"^\(?[A-Da-d][\).:]\s*", "", o).strip().lower() for o in options]
    if len(set(norm)) != 4:
        return "options are not distinct"
    letter = str(answer or "").strip().strip("().").upper()
    if len(letter) != 1 or letter not in "ABCD":
        return f"answer {answer!r} is not one letter A-D"
    correct = _WORD.findall(norm["ABCD".index(letter)])
    content = [w for w in correct if w not in _STOP] or correct
    known = set(_WORD.findall(description.lower()))
    if not content or sum(w in known for w in content) < 0.6 * len(content):
        return "the correct option is not grounded in the description"
    return None


def mcq_record(base: Mapping[str, Any], data: Mapping[str, Any], n: int) -> dict[str, Any]:
    """A validated QA as an SFT record: lettered options in the question, the letter as answer."""
    options = [re.sub(r"^\(?[A-Da-d][\).:]\s*", "", o).strip() for o in data["options"]]
    lines = "\n".join(f"{'ABCD'[i]}. {o}" for i, o in enumerate(options))
    question = f"{data['question'].strip()}\n{lines}\nAnswer with the option's letter."
    letter = str(data["answer"]).strip().strip("().").upper()
    return {**base, "id": f"{base['id']}-mcq{n}", "question": question, "answer": letter,
            "kind": base["kind"], "answer_source": "mcq", "options": options}  # fmt: skip
