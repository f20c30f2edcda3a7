"""MotionSight's prompting protocol (METHOD.md steps 2, 3.1 and 5), backend-independent.

- `action_objects_prompt` / `parse_action_objects` / `extract_action_objects`: which entities
  take part in the motion the question asks about (bounded retries, then a recorded fallback).
- `route_question`: camera branch (motion trails) or object branch (spotlight); a given label
  wins, else the MLLM's own judgement, else rules.
- `final_prompt`: the labelled multi-stream prompt, word for word as the reference writes it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .base import MLLM, GenerationOptions, Prompt

# --------------------------------------------------------------------------- stream headings

HEADINGS = {
    "original": "Original video:",
    "spotlight": "Spotlight video:",
    "motion_trails": (
        "Original video with motion blur to more clearly determine the type of motion (such as "
        "whether the camera is moving, as one frame combines information from multiple frames. If "
        "static objects in the background appear noticeably blurry, there is a good chance that "
        "the camera is moving!):"
    ),
    "background_blur": "Video with blurred background to help focus on the main objects of interest:",
    "crop": "Spotlight video:",
}
STREAM_ORDER = ("original", "spotlight", "crop", "motion_trails", "background_blur")
MULTIPLE_CHOICE_INSTRUCTION = "Reply based on the above information. Answer only the answer letter without showing your process."
OPEN_INSTRUCTION = "Reply based on the above information."


@dataclass(frozen=True)
class Stream:
    """One visual-prompt stream: its kind (a key of HEADINGS) and frames `[N, H, W, 3]` float 0..1."""

    kind: str
    frames: torch.Tensor

    def __post_init__(self) -> None:
        if self.kind not in HEADINGS:
            raise ValueError(f"unknown stream kind {self.kind!r}; one of {sorted(HEADINGS)}")
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3:
            raise ValueError(
                f"stream {self.kind!r} frames must be [N, H, W, 3], got {tuple(self.frames.shape)}"
            )


def sample_times_sentence(timestamps: Sequence[float]) -> str:
    """ "The video contains 16 frames sampled at 0.2, 0.6, ... seconds." (0.1 s resolution)."""
    times = ", ".join(f"{t:.1f}" for t in timestamps)
    return f"The video contains {len(timestamps)} frames sampled at {times} seconds."


_OPTION_LINE = re.compile(r"(?m)^\s*\(?([A-H])[\).:]\s+\S")


def is_multiple_choice(question: str) -> bool:
    """True when the question lists lettered options (`A. ...`, `(B) ...`, `C: ...`)."""
    return len(_OPTION_LINE.findall(question)) >= 2


def final_prompt(
    question: str,
    streams: Sequence[Stream],
    timestamps: Sequence[float] | None = None,
    multiple_choice: bool | None = None,
) -> Prompt:
    """The final question: per stream its heading then `Frame{i}: <image>` lines, then the
    sample-times sentence, the question and the answer instruction."""
    if not streams:
        raise ValueError("the final prompt needs at least one stream of frames")
    if not question.strip():
        raise ValueError("the question is empty")
    parts: list[str | torch.Tensor] = []
    for stream in sorted(streams, key=lambda s: STREAM_ORDER.index(s.kind)):
        parts.append(HEADINGS[stream.kind] + "\n")
        for i, frame in enumerate(stream.frames):
            parts.append(f"Frame{i}: ")
            parts.append(frame)
            parts.append("\n")
    if timestamps is not None:
        parts.append(sample_times_sentence(timestamps) + "\n")
    parts.append(f'Here is the question: "{question.strip()}".\n')
    if multiple_choice is None:
        multiple_choice = is_multiple_choice(question)
    parts.append(MULTIPLE_CHOICE_INSTRUCTION if multiple_choice else OPEN_INSTRUCTION)
    return Prompt(tuple(parts))


# --------------------------------------------------------------------------- action objects

ACTION_OBJECTS_INSTRUCTION = (
    "Look at the video frames above and the question below. List the entities involved in the "
    "motion the question asks about: the moving objects and the objects they act on, optionally "
    'their parts (e.g. "person\'s hands"). Only physical entities, at least one, few background '
    'objects. Reply with JSON only, in this form: {"action_objects": ["...", "..."]}\n'
    'Question: "{question}"'
)


@dataclass
class ActionObjects:
    """The entities to detect, the model's raw replies, and the fallback used (if any)."""

    objects: list[str]
    raw: list[str] = field(default_factory=list)
    fallback: str | None = None

    @property
    def prompt(self) -> str:
        """The detector's text prompt: "obj1. obj2." """
        return " ".join(f"{o.rstrip('.')}." for o in self.objects)


def action_objects_prompt(question: str, frames: torch.Tensor) -> Prompt:
    parts: list[str | torch.Tensor] = []
    for i, frame in enumerate(frames):
        parts += [f"Frame{i}: ", frame, "\n"]
    parts.append(ACTION_OBJECTS_INSTRUCTION.replace("{question}", question.strip()))
    return Prompt(tuple(parts))


_FENCED = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def parse_action_objects(text: str) -> list[str] | None:
    """Objects from `{"action_objects": [...]}`, bare or in a fenced block; None if absent."""
    candidates = _FENCED.findall(text) + [text]
    candidates += re.findall(r"\{[^{}]*\}", text)
    for candidate in candidates:
        try:
            data = json.loads(candidate.strip())
        except (json.JSONDecodeError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("action_objects"), list):
            objects = [str(o).strip() for o in data["action_objects"] if str(o).strip()]
            if objects:
                return objects
    return None


FALLBACK_OBJECTS = ["moving object"]


def extract_action_objects(
    mllm: MLLM | None,
    question: str,
    frames: torch.Tensor,
    attempts: int = 3,
    options: GenerationOptions | None = None,
) -> ActionObjects:
    """Ask the MLLM for the action objects; at most `attempts` tries (the reference loops
    forever), then fall back to a generic object (the weight-free detector needs no names)."""
    if mllm is None:
        return ActionObjects(list(FALLBACK_OBJECTS), fallback="no MLLM configured")
    prompt = action_objects_prompt(question, frames)
    raw: list[str] = []
    for attempt in range(max(1, attempts)):
        opts = options or GenerationOptions(max_new_tokens=128)
        # a retry with the same greedy decoding would repeat itself: vary the seed
        opts = GenerationOptions(
            opts.max_new_tokens,
            opts.temperature if attempt == 0 else max(opts.temperature, 0.7),
            opts.seed + attempt,
        )
        answer = mllm.generate(prompt, opts)
        raw.append(answer.text)
        objects = parse_action_objects(answer.text)
        if objects:
            return ActionObjects(objects, raw)
    return ActionObjects(
        list(FALLBACK_OBJECTS), raw, fallback=f"no valid action-object JSON in {len(raw)} replies"
    )


# --------------------------------------------------------------------------- routing

CAMERA_LABELS = {"camera", "camera motion", "cm"}
REPETITION_LABELS = {"repetition", "repetition count", "rc"}
_CAMERA_WORDS = re.compile(
    r"\b(camera|cameraman|shot|lens|pan(s|ning|ned)?|tilt(s|ing|ed)?|zoom(s|ing|ed)?|dolly|"
    r"truck(ing)?|pedestal|orbit(s|ing)?|handheld|viewpoint|perspective|footage|filmed|filming)\b",
    re.I,
)
_REPETITION_WORDS = re.compile(
    r"\b(how many times|how often|number of times|repetitions?|count)\b", re.I
)

ROUTE_INSTRUCTION = (
    "Does answering this question need the motion of the camera (how the camera or viewpoint "
    "moves) or the motion of objects in the scene? Reply with one word: camera or object.\n"
    'Question: "{question}"'
)


@dataclass(frozen=True)
class Route:
    """The branch for a question: "camera" (motion trails) or "object" (spotlight)."""

    branch: str
    repetition: bool
    source: str  # "label", "mllm" or "rules"
    label: str = ""


def route_by_rules(question: str) -> Route:
    camera = bool(_CAMERA_WORDS.search(question))
    return Route(
        "camera" if camera else "object", bool(_REPETITION_WORDS.search(question)), "rules"
    )


def route_question(question: str, label: str = "", mllm: MLLM | None = None) -> Route:
    """A given label wins (ours, MotionBench's `question_type` or FAVOR's `task_type`); "auto" or
    empty asks the MLLM (one short greedy reply), falling back to keyword rules."""
    clean = label.strip()
    key = clean.lower()
    rules = route_by_rules(question)
    if key and key != "auto":
        if key in CAMERA_LABELS:
            return Route("camera", False, "label", clean)
        return Route("object", key in REPETITION_LABELS, "label", clean)
    if mllm is not None:
        reply = mllm.generate(
            Prompt((ROUTE_INSTRUCTION.replace("{question}", question.strip()),)),
            GenerationOptions(max_new_tokens=4),
        )
        word = reply.text.strip().lower()
        if word.startswith("camera") or word.startswith("object"):
            return Route(
                "camera" if word.startswith("camera") else "object", rules.repetition, "mllm"
            )
    return rules


def parse_route(text: str) -> Route:
    """A Route from `json.dumps(route.__dict__)` (Route Question's `info`) or a bare branch word."""
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
            return Route(str(data["branch"]), bool(data.get("repetition", False)),
                         str(data.get("source", "given")), str(data.get("label", "")))  # fmt: skip
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"route input is not Route Question's info JSON: {text[:80]!r}"
            ) from exc
    if text.lower() not in ("camera", "object"):
        raise ValueError(f"route must be 'camera', 'object' or Route Question's info, got {text!r}")
    return Route(text.lower(), False, "given")
