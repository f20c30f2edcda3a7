"""Build an MLLM backend from plain settings (what the loader node and the CLI pass)."""

from __future__ import annotations

from ..trust import check_server
from .answering import MLLMHandle
from .base import GenerationOptions

BACKENDS = ("transformers", "openai")


def load_mllm(
    backend: str = "transformers",
    model: str = "",
    base_url: str = "",
    api_key_env: str = "OPENAI_API_KEY",
    dtype: str = "auto",
    device: str = "auto",
    attention: str = "auto",
    max_pixels: int = 360 * 420,
    frames_as: str = "images",
    keep_loaded: bool = True,
    allow_download: bool = False,
    timeout: float = 120.0,
    retries: int = 3,
    concurrency: int = 4,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    seed: int = 0,
) -> MLLMHandle:
    """A configured backend. No model (transformers with an empty folder, or openai without a
    base URL) gives a dry-run handle: workflows still produce their visual prompts.

    These settings come from a workflow, which is not the user's consent: an openai server
    must be one the user allowed and `api_key_env` an allowed variable (`trust.check_server`),
    and a hub id downloads only with the user's consent (`trust.require_download`); else
    `trust.TrustError` says how to allow it."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    options = GenerationOptions(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    if backend == "transformers":
        if not model.strip():
            return MLLMHandle(None, options)
        from .transformers_backend import TransformersMLLM

        return MLLMHandle(
            TransformersMLLM(
                model,
                device=device,
                dtype=dtype,
                attn_implementation=attention,
                max_pixels=max_pixels,
                frames_as=frames_as,
                keep_loaded=keep_loaded,
                allow_download=allow_download,
            ),
            options,
        )
    if not base_url.strip():
        return MLLMHandle(None, options)
    if not model.strip():
        raise ValueError(f"the openai backend needs a model name for {base_url[:80]}")
    check_server(base_url, api_key_env)
    from .openai_backend import OpenAIMLLM

    return MLLMHandle(
        OpenAIMLLM(
            base_url,
            model,
            api_key_env=api_key_env,
            timeout=timeout,
            max_retries=retries,
            max_pixels=max_pixels,
            concurrency=concurrency,
        ),
        options,
    )
