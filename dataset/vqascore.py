"""VQAScore-style yes-probability: P("yes") to 'Does this video show "object motion"?'.

The paper scored clips with VQAScore (`clip-flant5-xxl`, 6 evenly spaced frames) against the
texts "object motion" and "camera motion". Here the configured MLLM answers one token; the score
is P(yes) / (P(yes) + P(no)) from its log-probabilities: the next-token distribution of a local
transformers model, or `logprobs`/`top_logprobs` of an OpenAI-compatible server. A server that
returns no log-probabilities gives 1.0 / 0.0 from the answer text (recorded as `"text"`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import torch

from ..mllm.base import GenerationOptions, MLLMError, Prompt

__all__ = ["VQA_TEXTS", "parse_top_logprobs", "vqa_prompt", "yes_probability"]

VQA_TEXTS = {"object": "object motion", "camera": "camera motion"}
QUESTION = 'Does this video show "{text}"? Please answer yes or no.'


def vqa_prompt(frames: torch.Tensor, text: str) -> Prompt:
    """`Frame{i}:` labelled frames `[N, H, W, 3]` then the yes/no question about `text`."""
    parts: list[str | torch.Tensor] = []
    for i, frame in enumerate(frames):
        parts += [f"Frame{i}: ", frame, "\n"]
    parts.append(QUESTION.format(text=text))
    return Prompt(tuple(parts))


def _yes_no(probs: Mapping[str, float]) -> float | None:
    yes = sum(p for t, p in probs.items() if t.strip().lower().lstrip("▁Ġ") == "yes")
    no = sum(p for t, p in probs.items() if t.strip().lower().lstrip("▁Ġ") == "no")
    return yes / (yes + no) if yes + no > 0 else None


def parse_top_logprobs(reply: Mapping[str, Any]) -> float | None:
    """P(yes)/(P(yes)+P(no)) from a chat-completion reply's first-token `top_logprobs`
    (OpenAI's documented layout; vLLM and SGLang follow it); None when absent."""
    try:
        content = reply["choices"][0]["logprobs"]["content"]
        first = content[0]
    except (KeyError, IndexError, TypeError):
        return None
    candidates = list(first.get("top_logprobs") or []) + [first]
    probs: dict[str, float] = {}
    for item in candidates:
        token, logprob = item.get("token"), item.get("logprob")
        if isinstance(token, str) and isinstance(logprob, (int, float)):
            probs.setdefault(token, math.exp(logprob))
    return _yes_no(probs)


def _from_text(text: str) -> float | None:
    word = text.strip().lower().lstrip("\"'(").split()[:1]
    if not word:
        return None
    first = word[0].strip(".,!:;\"')")
    return 1.0 if first == "yes" else 0.0 if first == "no" else None


def _openai(model: Any, prompt: Prompt) -> tuple[float | None, str]:
    body, _ = model.payload(prompt, GenerationOptions(max_new_tokens=1, temperature=0.0))
    body.update(logprobs=True, top_logprobs=10)
    data = json.dumps(body).encode("utf-8")
    last = ""
    for _attempt in range(model.max_retries + 1):
        try:
            reply = model._post_once(data)  # the backend's own request, retries done here
        except MLLMError:  # a server refusing `logprobs` (4xx): ask for the word instead
            answer = model.generate(prompt, GenerationOptions(max_new_tokens=2))
            return _from_text(answer.text), "text"
        except Exception as exc:  # noqa: BLE001 -- a retryable failure of one attempt
            last = str(exc)
            continue
        score = parse_top_logprobs(reply)
        if score is not None:
            return score, "logprobs"
        return _from_text(reply["choices"][0]["message"]["content"]), "text"
    raise MLLMError(f"{model.url} gave no yes/no answer: {last}")


def _transformers(model: Any, prompt: Prompt) -> tuple[float | None, str]:
    with model._lock:
        model.load()
        messages, images = model._messages_and_media(prompt)
        processor = model._processor
        text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = processor(text=[text], return_tensors="pt", images=images).to(model.device)
        with torch.inference_mode():
            logits = model._model.to(model.device)(**inputs).logits[0, -1].float()
        probs = logits.softmax(-1)
        tokenizer = processor.tokenizer
        words = {}
        for word in ("yes", "Yes", " yes", " Yes", "no", "No", " no", " No"):
            ids = tokenizer.encode(word, add_special_tokens=False)
            if ids:
                words[word] = words.get(word, 0.0) + float(probs[ids[0]])
        return _yes_no(words), "logprobs"


def yes_probability(model: Any, frames: torch.Tensor, text: str) -> tuple[float | None, str]:
    """(score in 0..1 or None when the reply was neither yes nor no, how it was read).

    Args:
        model: a `TransformersMLLM` or `OpenAIMLLM` (another backend answers in text).
        frames: `[N, H, W, 3]` float 0..1 (6 evenly spaced frames in the paper).
        text: the motion text, e.g. "object motion".
    """
    prompt = vqa_prompt(frames, text)
    kind = type(model).__name__
    if kind == "OpenAIMLLM":
        return _openai(model, prompt)
    if kind == "TransformersMLLM":
        return _transformers(model, prompt)
    answer = model.generate(prompt, GenerationOptions(max_new_tokens=2))
    return _from_text(answer.text), "text"
