"""What every MLLM backend shares: the prompt (text and images in order), options, the answer.

A `Prompt` is built once by the protocol (`mllm/protocol.py`) and given unchanged to either
backend, so a local transformers model and an HTTP server see the same labelled frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np
import torch

IMAGE_PLACEHOLDER = "<image>"


class MLLMError(RuntimeError):
    """A model or server that could not answer: the message names which and why."""


@dataclass(frozen=True)
class Prompt:
    """The user turn: text strings and images `[H, W, 3]` float 0..1, in the order shown."""

    parts: tuple[str | torch.Tensor, ...]

    def __post_init__(self) -> None:
        for part in self.parts:
            if isinstance(part, torch.Tensor) and (part.ndim != 3 or part.shape[-1] != 3):
                raise ValueError(f"prompt images must be [H, W, 3], got {tuple(part.shape)}")
            if not isinstance(part, (str, torch.Tensor)):
                raise TypeError(f"prompt parts are str or image tensors, got {type(part).__name__}")

    @property
    def images(self) -> list[torch.Tensor]:
        return [p for p in self.parts if isinstance(p, torch.Tensor)]

    @property
    def text(self) -> str:
        """The prompt as text, each image written as `<image>` (what a dry run prints)."""
        return "".join(p if isinstance(p, str) else IMAGE_PLACEHOLDER for p in self.parts)


@dataclass(frozen=True)
class GenerationOptions:
    """Decoding settings. Greedy by default (the paper uses temperature ~0.01)."""

    max_new_tokens: int = 128
    temperature: float = 0.0
    seed: int = 0


@dataclass
class Answer:
    """An MLLM's reply and what produced it."""

    text: str
    prompt_text: str
    num_images: int
    model: str
    seconds: float = 0.0
    attempts: int = 1
    dry_run: bool = False
    errors: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "prompt_text": self.prompt_text,
            "num_images": self.num_images,
            "model": self.model,
            "seconds": round(self.seconds, 3),
            "attempts": self.attempts,
            "dry_run": self.dry_run,
            "errors": list(self.errors),
            **self.extra,
        }


@runtime_checkable
class MLLM(Protocol):
    """A multimodal LLM: one prompt in, one answer out."""

    name: str

    def generate(self, prompt: Prompt, options: GenerationOptions) -> Answer: ...


class PromptedMLLM:
    """Shared by the backends: `ask` builds MotionSight's final prompt and generates."""

    name: str

    def generate(self, prompt: Prompt, options: GenerationOptions) -> Answer:
        raise NotImplementedError

    def ask(
        self,
        streams: Sequence[Any],
        question: str,
        options: GenerationOptions | None = None,
        timestamps: Sequence[float] | None = None,
    ) -> Answer:
        """`streams` (`protocol.Stream`: kind + frames `[N, H, W, 3]` float 0..1) under their
        headings, each frame labelled `Frame{i}:`, then the sample times and the question."""
        from .protocol import final_prompt  # the protocol builds on this module

        return self.generate(
            final_prompt(question, streams, timestamps), options or GenerationOptions()
        )


def message_content(prompt: Prompt) -> list[tuple[str, str | torch.Tensor]]:
    """The user turn as ordered `("text", str)` / `("image", [H, W, 3])` items, adjacent text
    merged. Both backends send exactly this sequence, so they see the same conversation."""
    content: list[tuple[str, str | torch.Tensor]] = []
    for part in prompt.parts:
        if isinstance(part, str):
            if content and content[-1][0] == "text":
                content[-1] = ("text", str(content[-1][1]) + part)
            else:
                content.append(("text", part))
        else:
            content.append(("image", part))
    return content


def fit_max_pixels(height: int, width: int, max_pixels: int) -> tuple[int, int]:
    """The largest `(height, width)` with the same aspect and at most `max_pixels` pixels."""
    if max_pixels <= 0 or height * width <= max_pixels:
        return height, width
    scale = math.sqrt(max_pixels / (height * width))
    return max(1, int(height * scale)), max(1, int(width * scale))


def resize_to_max_pixels(image: torch.Tensor, max_pixels: int) -> torch.Tensor:
    """`[H, W, 3]` float -> the same image with at most `max_pixels` pixels (area filter)."""
    h, w = image.shape[:2]
    size = fit_max_pixels(h, w, max_pixels)
    if size == (h, w):
        return image
    chw = image.permute(2, 0, 1).unsqueeze(0)
    return torch.nn.functional.interpolate(chw, size=size, mode="area")[0].permute(1, 2, 0)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """`[H, W, C]` float (0..1, clipped) -> uint8 `[H, W, C]` numpy, rounding half to even as
    `(x.clamp(0, 1) * 255).round()` does. Both backends use it, so they send the same pixels.

    Two single-threaded OpenCV passes: torch would split these small element-wise ops over
    its intra-op threads, which costs many request threads at once twice the CPU.
    """
    array = np.ascontiguousarray(image.detach().to("cpu", torch.float32).numpy())
    _, positive = cv2.threshold(array, 0, 0, cv2.THRESH_TOZERO)
    return cv2.convertScaleAbs(positive, alpha=255.0)  # saturates above 255
