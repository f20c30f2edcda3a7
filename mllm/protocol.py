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

# --- benchmark wrappers: text that a benchmark's script puts around every question, whatever it
# asks. FAVOR-Bench's reference prompt names "the camera motions" for every task type, so a router
# that reads it sends every FAVOR question to the camera branch.
_WRAPPERS = (
    re.compile(  # FAVOR-Bench (inference_qa_qwen.py), tolerant of spacing and a missing word
        r"carefully watch the video and pay attention to [^.]*?\.\s*based on your observations,?"
        r"\s*select the best option that accurately addresses the question\.?",
        re.I | re.S,
    ),
    re.compile(r"you can only respon(?:se|d) with the answer among\s*\[.*?\]\s*$", re.I | re.S),
    re.compile(  # MotionBench / lmms-eval style answer instructions
        r"answer with the option'?s letter from the given choices directly\.?", re.I
    ),
    re.compile(r"(?:please\s+)?answer only the answer letter[^.\n]*\.?", re.I),
)
_FAVOR_OPTIONS = re.compile(r"answer among\s*(\[.*?\])\s*$", re.I | re.S)


def strip_benchmark_wrappers(question: str) -> str:
    """The question without the instructions a benchmark wraps around every question.

    FAVOR-Bench's "Carefully watch the video ... focusing on the camera motions, actions ...
    select the best option that accurately addresses the question." and "You can only response
    with the answer among [...]" (its options, which are kept as lettered lines), and
    MotionBench-style "Answer with the option's letter ..." lines. What remains is the question
    (and its options) as a person would ask it.
    """
    text = question
    options: list[str] = []
    found = _FAVOR_OPTIONS.search(text)
    if found:
        try:
            import ast

            parsed = ast.literal_eval(found.group(1))  # a list of strings, never code
            options = [str(o) for o in parsed] if isinstance(parsed, list | tuple) else []
        except (ValueError, SyntaxError):
            options = []
    for wrapper in _WRAPPERS:
        text = wrapper.sub(" ", text)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    lines += [f"{chr(ord('A') + k)}. {o}" for k, o in enumerate(options)]
    return "\n".join(lines)


# --- keyword rules. The camera is the subject of the motion (not "towards the camera"), or a
# camera-only term (zoom in, dolly, tracking shot); words that name objects too ("truck", "pan",
# "shot", "tilt his head") count only in a camera sense.
_TOWARDS_CAMERA = re.compile(
    r"\bcamera (?:operator|crew|person|people|bag|phone)s?\b|"
    r"\b(?:at|to|toward|towards|into|away from|facing|from|past|behind|in front of|"
    r"closer to|near|with)\s+(?:the\s+)?(?:camera|lens|viewer)\b",
    re.I,
)
_CAMERA_PATTERNS = re.compile(
    r"\b(?:camera|cameraman|camerawork|videographer|lens|viewpoint|point of view|perspective|"
    r"field of view|framing)\b"
    r"|\b(?:shooting|filming) (?:angle|direction|technique|style)\b"
    r"|\b(?:shot|footage|view|frame|scene|picture|image)s? (?:move|moves|moved|moving|pan|pans|"
    r"panning|tilt|tilts|tilting|zoom|zooms|zooming|rotate|rotates|rotating|shift|shifts|"
    r"shifting|change|changes|changing|shake|shakes|shaking|track|tracks|tracking|follow|"
    r"follows|following)\b"
    r"|\b(?:zoom|zooms|zoomed|zooming) (?:in|out|into|away)\b|\bzoom(?:s|ed|ing)?\b"
    r"|\b(?:pan|pans|panned|panning|tilt|tilts|tilted|tilting|truck|trucks|trucked|trucking|"
    r"dolly|dollies|dollying|pedestal|pedestals|crane|cranes|craning|boom|booms|booming)"
    r"(?:\s+(?:the\s+)?(?:shot|view|camera))?\s+(?:left|right|up|down|upward|upwards|downward|"
    r"downwards|in|out|forward|forwards|backward|backwards|across|around|leftward|rightward|"
    r"clockwise|counterclockwise|counter-clockwise)\b"
    r"|\b(?:panning|dolly|tracking|crane|aerial|handheld|hand-held|static|fixed|steady|"
    r"stationary|still|locked-off|drone|establishing|follow|following|orbit|orbiting|"
    r"pov|first-person|close-up|wide|long|medium|overhead|bird's-eye|low-angle|high-angle) "
    r"(?:shot|shots|camera|view|footage|angle)\b"
    r"|\b(?:orbit|orbits|orbiting|arc|arcs|arcing) (?:around|round|shot)\b"
    r"|\b(?:filmed|filming|shot|recorded|captured) (?:from|with|by|using|in a)\b"
    r"|\bshot (?:type|size|scale|composition|transition)\b"
    r"|\b(?:cinematograph\w*|camera movement|camera motion|shooting method|drone)\b"
    r"|\b(?:is|was) (?:the|this) shot\b|\b(?:kind|type|sort) of shot\b"
    r"|\bshot (?:is |was )?(?:static|moving|still|fixed|steady|stable|shaky)\b"
    r"|\b(?:footage|scene|video|clip|sequence) (?:is |was )?(?:filmed|shot|recorded|captured)\b"
    r"|\bhow does the view\b|\bthe view (?:of|from) [\w ]{1,30}? (?:change|changes|move|moves|"
    r"shift|shifts|rotate|rotates)\b",
    re.I,
)
_SHORT_CAMERA_OPTION = re.compile(  # "Static", "Pan left", "Zoom in" as a whole option
    r"^\W*(?:the camera )?(?:is |remains |stays )?(?:static|stationary|still|fixed|no movement|"
    r"pan\w*|tilt\w*|zoom\w*|dolly\w*|truck\w*|orbit\w*|rotat\w*|push\w* in|pull\w* (?:out|back))\b",
    re.I,
)
_REPETITION_WORDS = re.compile(
    r"\b(?:how many times|how often|number of times|times does|times did|repetitions?|"
    r"count the|how many (?:jumps|steps|claps|laps|push-?ups|squats|swings|kicks|rotations|"
    r"turns|reps|strokes|bounces|nods|waves|spins|flips|hops|punches|taps)|repeated(?:ly)? "
    r"how many)\b",
    re.I,
)

ROUTE_INSTRUCTION = (
    "Does answering this question need the motion of the camera (how the camera or viewpoint "
    "moves) or the motion of objects in the scene? Reply with one word: camera or object.\n"
    'Question: "{question}"'
)


# a stem that asks about a person, animal or thing (the options' camera words then describe it)
_OBJECT_SUBJECT = re.compile(
    r"\b(?:man|woman|person|people|boy|girl|child|he|she|they|player|dog|cat|bird|car|truck|"
    r"vehicle|ball|hand|hands|arm|head|animal|horse|someone|who)\b",
    re.I,
)


@dataclass(frozen=True)
class Route:
    """The branch for a question: "camera" (motion trails) or "object" (spotlight).

    source: "label", "mllm" or "rules"; fallback: why the MLLM's judgement was not used when it
    was asked (a failed call, or a reply that named neither branch), else "".
    """

    branch: str
    repetition: bool
    source: str  # "label", "mllm" or "rules"
    label: str = ""
    fallback: str = ""


def _stem_and_options(question: str) -> tuple[str, list[str]]:
    stem, options = [], []
    for line in question.splitlines():
        match = re.match(r"^\s*\(?([A-H])\s*[\).:]\s*(.*)$", line)
        if match:
            options.append(match.group(2))
        else:
            stem.append(line)
    return " ".join(stem), options


def route_by_rules(question: str) -> Route:
    """Keyword rules on the question without benchmark wrappers.

    Camera when the stem names the camera (or its view) as what moves, or a camera-only
    movement ("zoom in", "pans left", "tracking shot"); when the stem says neither (e.g. "What
    happens in the video?"), camera when most options describe camera movement. Everything
    else is object motion. Repetition: "how many times", "count the ...", ...
    """
    core = strip_benchmark_wrappers(question)
    stem, options = _stem_and_options(core)
    text = _TOWARDS_CAMERA.sub(" ", stem)
    camera = bool(_CAMERA_PATTERNS.search(text))
    if not camera and options:
        camera_options = sum(
            bool(
                _CAMERA_PATTERNS.search(_TOWARDS_CAMERA.sub(" ", o))
                or _SHORT_CAMERA_OPTION.search(o)
            )
            for o in options
        )
        camera = camera_options * 2 > len(options) and not _OBJECT_SUBJECT.search(text)
    return Route("camera" if camera else "object", bool(_REPETITION_WORDS.search(stem)), "rules")


def _branch_word(text: str) -> str | None:
    """ "camera" or "object" from a routing reply (first of the two named), else None."""
    found = re.search(r"\b(camera|object|objects)\b", text.lower())
    if not found:
        return None
    return "camera" if found.group(1) == "camera" else "object"


def route_question(
    question: str,
    label: str = "",
    mllm: MLLM | None = None,
    frames: torch.Tensor | None = None,
) -> Route:
    """A given label wins (ours, MotionBench's `question_type` or FAVOR's `task_type`); "auto"
    or empty asks the MLLM (one short greedy reply) with the question stripped of benchmark
    wrappers and, when `frames` `[K, H, W, 3]` are given, those frames; a failed call or a
    reply naming neither branch falls back to the keyword rules, recorded in `fallback`."""
    clean = label.strip()
    key = clean.lower()
    rules = route_by_rules(question)
    if key and key != "auto":
        if key in CAMERA_LABELS:
            return Route("camera", False, "label", clean)
        return Route("object", key in REPETITION_LABELS, "label", clean)
    if mllm is None:
        return rules
    parts: list[str | torch.Tensor] = []
    for i, frame in enumerate(frames if frames is not None else []):
        parts += [f"Frame{i}: ", frame, "\n"]
    parts.append(ROUTE_INSTRUCTION.replace("{question}", strip_benchmark_wrappers(question)))
    try:
        reply = mllm.generate(Prompt(tuple(parts)), GenerationOptions(max_new_tokens=4))
    except Exception as exc:  # noqa: BLE001 - any failed routing call falls back to the rules
        reason = f"routing call failed ({type(exc).__name__}: {str(exc)[:200]}): keyword rules"
        return Route(rules.branch, rules.repetition, "rules", fallback=reason)
    word = _branch_word(reply.text)
    if word is None:
        reason = f"routing reply {reply.text.strip()[:40]!r} names neither branch: keyword rules"
        return Route(rules.branch, rules.repetition, "rules", fallback=reason)
    return Route(word, rules.repetition, "mllm")


def route_frames(frames: torch.Tensor, count: int) -> torch.Tensor | None:
    """`count` frames spread evenly over `frames` `[N, H, W, 3]` for the routing request (None for 0)."""
    if count <= 0 or frames.shape[0] == 0:
        return None
    index = torch.linspace(0, frames.shape[0] - 1, min(count, frames.shape[0])).round().long()
    return frames[index]


def parse_route(text: str) -> Route:
    """A Route from `json.dumps(route.__dict__)` (Route Question's `info`) or a bare branch word."""
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
            return Route(str(data["branch"]), bool(data.get("repetition", False)),
                         str(data.get("source", "given")), str(data.get("label", "")),
                         str(data.get("fallback", "")))  # fmt: skip
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"route input is not Route Question's info JSON: {text[:80]!r}"
            ) from exc
    if text.lower() not in ("camera", "object"):
        raise ValueError(f"route must be 'camera', 'object' or Route Question's info, got {text!r}")
    return Route(text.lower(), False, "given")
