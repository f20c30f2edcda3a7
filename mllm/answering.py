"""Asking the question: choose the streams for the route, build the final prompt, generate.

`ask` is what the Ask node runs; `answer_video` runs MotionSight's whole method on a video
(the one-node "MotionSight answer"): route, visual prompts of the branch, final question.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from .. import comfy_bridge
from .base import MLLM, Answer, GenerationOptions
from .protocol import (
    Route,
    Stream,
    extract_action_objects,
    final_prompt,
    route_frames,
    route_question,
)

DRY_RUN_HINT = (
    "No MLLM configured: set a model folder (--model PATH) or an OpenAI-compatible server "
    "(--base-url URL --model-name NAME) to get an answer (`motionsight run`: --set "
    "MotionSightLoadMLLM.model=PATH)."
)
DRY_RUN_HINT_COMFYUI = (
    "No MLLM configured: on the Load MLLM node set `model` to a model folder (or a folder name "
    "in models/LLM) with backend transformers, or choose backend openai and set `base_url` and "
    "`model` (the served model name) to get an answer."
)


def dry_run_hint() -> str:
    """What to set to get an answer: Load MLLM's inputs inside ComfyUI, the CLI flags headless."""
    return DRY_RUN_HINT_COMFYUI if comfy_bridge.in_comfyui() else DRY_RUN_HINT


@dataclass(frozen=True)
class MLLMHandle:
    """The `MOTIONSIGHT_MLLM` value: a backend (None = dry run) and its decoding options."""

    model: MLLM | None
    options: GenerationOptions = field(default_factory=GenerationOptions)

    @property
    def name(self) -> str:
        return self.model.name if self.model is not None else "none (dry run)"


def choose_streams(route: Route, available: Mapping[str, torch.Tensor]) -> list[Stream]:
    """The streams of the route's branch: camera -> motion trails; object -> spotlight, or the
    crop for repetition counting; the original frames when the branch's stream is missing."""
    wanted = stream_preference(route)
    for kind in wanted:
        if available.get(kind) is not None:
            return [Stream(kind, available[kind])]
    raise ValueError(
        f"no frames to show for the {route.branch} branch: connect {wanted[0]} or original"
    )


def stream_preference(route: Route) -> list[str]:
    """The stream kinds `choose_streams` takes for this route, best first (original last)."""
    if route.branch == "camera":
        return ["motion_trails", "original"]
    if route.repetition:
        return ["crop", "spotlight", "original"]
    return ["spotlight", "background_blur", "original"]


def ask(
    handle: MLLMHandle,
    question: str,
    streams: list[Stream],
    timestamps: list[float] | None = None,
) -> Answer:
    """Send the final prompt; without a model, return the exact request as a dry-run answer."""
    prompt = final_prompt(question, streams, timestamps)
    if handle.model is None:
        text = f"[dry run] {dry_run_hint()}\nRequest ({len(prompt.images)} images):\n{prompt.text}"
        return Answer(text, prompt.text, len(prompt.images), handle.name, dry_run=True)
    return handle.model.generate(prompt, handle.options)


def answer_info(answer: Answer, route: Route, streams: list[Stream], **more: object) -> str:
    """A JSON summary of how the answer was produced (for the editor, logs and eval records)."""
    info = {
        "answer": answer.text,
        "route": {
            "branch": route.branch,
            "repetition": route.repetition,
            "source": route.source,
            "label": route.label,
            "fallback": route.fallback,
        },
        "streams": [s.kind for s in streams],
        **answer.to_dict(),
        **more,
    }
    info.pop("text", None)
    return json.dumps(info, ensure_ascii=False)


def answer_video(
    handle: MLLMHandle,
    clip,
    question: str,
    label: str = "",
    detector=None,
    padding: float = 20.0,
    darken: float = 0.9,
    route_frame_count: int = 0,
) -> tuple[Answer, str]:
    """MotionSight end to end on a `VideoClip`: returns the answer and its JSON info.

    `route_frame_count` frames (spread over the sampled ones) go with the routing request when
    the MLLM routes an unlabelled question; 0 sends the question alone.
    """
    from ..detect import load_detector
    from ..detect.tracking import detect_and_track, spotlight_boxes_from_detections
    from ..kernels import crop_to_boxes, spotlight_boxes
    from ..video import render_motion_trails

    frames = clip.frames()
    route = route_question(question, label, handle.model, route_frames(frames, route_frame_count))
    more: dict[str, object] = {}
    if route.branch == "camera":
        streams = [Stream("motion_trails", render_motion_trails(clip))]
    else:
        objects = extract_action_objects(handle.model, question, frames, options=handle.options)
        detections = detect_and_track(frames, objects.objects, detector or load_detector("motion"))
        boxes = spotlight_boxes_from_detections(detections).boxes
        chw = frames.permute(0, 3, 1, 2)
        if route.repetition:
            stream = Stream(
                "crop",
                crop_to_boxes(chw, boxes, padding=2 * padding).permute(0, 2, 3, 1).contiguous(),
            )
        else:
            stream = Stream(
                "spotlight",
                spotlight_boxes(chw, boxes, padding, darken).permute(0, 2, 3, 1).contiguous(),
            )
        streams = [stream]
        more = {"action_objects": objects.objects, "action_objects_fallback": objects.fallback}
    answer = ask(handle, question, streams, list(clip.sampling.timestamps))
    return answer, answer_info(answer, route, streams, **more)
