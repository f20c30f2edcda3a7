"""Multimodal LLM backends (local transformers, OpenAI-compatible HTTP) and MotionSight's prompting.

The backends (`transformers_backend.TransformersMLLM`, `openai_backend.OpenAIMLLM`) load lazily
through `load_mllm`; both take the same `Prompt` and answer with an `Answer`.
"""

from .answering import MLLMHandle, answer_video, ask, choose_streams
from .base import MLLM, Answer, GenerationOptions, MLLMError, Prompt, PromptedMLLM, message_content
from .loader import load_mllm
from .protocol import (
    ActionObjects,
    Route,
    Stream,
    extract_action_objects,
    final_prompt,
    parse_action_objects,
    parse_route,
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
    "PromptedMLLM",
    "Route",
    "Stream",
    "answer_video",
    "ask",
    "choose_streams",
    "extract_action_objects",
    "load_mllm",
    "message_content",
    "final_prompt",
    "parse_action_objects",
    "parse_route",
    "route_question",
    "sample_times_sentence",
]
