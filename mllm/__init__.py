"""Multimodal LLM backends (local transformers, OpenAI-compatible HTTP) and MotionSight's prompting."""

from .answering import MLLMHandle, answer_video, ask, choose_streams
from .base import MLLM, Answer, GenerationOptions, MLLMError, Prompt
from .loader import load_mllm
from .protocol import (
    ActionObjects,
    Route,
    Stream,
    extract_action_objects,
    final_prompt,
    parse_action_objects,
    route_question,
    sample_times_sentence,
)

__all__ = [
    "MLLM",
    "ActionObjects",
    "Answer",
    "GenerationOptions",
    "MLLMError",
    "MLLMHandle",
    "Prompt",
    "Route",
    "Stream",
    "answer_video",
    "ask",
    "choose_streams",
    "extract_action_objects",
    "load_mllm",
    "final_prompt",
    "parse_action_objects",
    "route_question",
    "sample_times_sentence",
]
