"""An OpenAI-compatible chat-completions server (vLLM, SGLang, lmdeploy, Ollama, hosted services).

Frames go as base64 JPEG data URLs, at most `max_pixels` pixels each, in the same order and
with the same `Frame{i}:` text around them as the local backend gets (`base.message_content`).
The API key is read at request time from the environment variable *named* in the settings, so
it never sits in a workflow, a cache key or a pickled handle. Only the standard library talks
HTTP (`urllib`), with a timeout per request, bounded retries with exponential backoff on 429,
5xx, timeouts, dropped connections and malformed replies (honouring `Retry-After` up to a cap),
and a semaphore that bounds the requests in flight per backend instance (batch use).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import cv2
import numpy as np
import torch

from .base import (
    Answer,
    GenerationOptions,
    MLLMError,
    Prompt,
    PromptedMLLM,
    fit_max_pixels,
    message_content,
)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RETRY_STATUS = {408, 409, 425, 429}  # plus every 5xx


class _Retryable(Exception):
    """One failed attempt worth retrying; `wait` is the server's Retry-After (s), if any."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


def encode_jpeg(image: torch.Tensor, max_pixels: int, quality: int = 90) -> tuple[str, list[int]]:
    """`[H, W, 3]` float 0..1 -> (a `data:image/jpeg;base64,...` URL, `[height, width]` sent).

    The image is area-resized to at most `max_pixels` pixels (aspect kept). OpenCV does the
    resize, the 8-bit conversion and the encoding without holding the GIL, so requests encoded
    in parallel threads (the concurrency limit) overlap.
    """
    if image.ndim != 3 or image.shape[-1] != 3:
        raise MLLMError(f"images must be [H, W, 3], got {tuple(image.shape)}")
    array = image.detach().to("cpu", torch.float32).numpy()
    height, width = fit_max_pixels(array.shape[0], array.shape[1], max_pixels)
    if (height, width) != array.shape[:2]:
        array = cv2.resize(array, (width, height), interpolation=cv2.INTER_AREA)
    array = np.clip(array, 0.0, 1.0)
    bgr = cv2.cvtColor(cv2.convertScaleAbs(array, alpha=255.0), cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise MLLMError(f"could not JPEG-encode an image of shape {tuple(image.shape)}")
    url = "data:image/jpeg;base64," + base64.b64encode(buffer.tobytes()).decode("ascii")
    return url, [height, width]


def chat_completions_url(base_url: str) -> str:
    """`http://host:8000/v1` -> `http://host:8000/v1/chat/completions` (a full URL is kept)."""
    url = base_url.strip().rstrip("/")
    if not re.match(r"https?://", url):
        raise MLLMError(f"base_url must start with http:// or https://, got {base_url!r}")
    return url if url.endswith("/chat/completions") else url + "/chat/completions"


def check_env_name(api_key_env: str) -> str:
    """The name of the API-key variable; refuses something that looks like a key itself."""
    name = api_key_env.strip()
    if name and (not _ENV_NAME.fullmatch(name) or name.startswith(("sk-", "sk_"))):
        raise MLLMError(
            "api_key_env must be the NAME of an environment variable holding the key (e.g. "
            "OPENAI_API_KEY), not the key itself: workflows must never contain keys"
        )
    return name


class OpenAIMLLM(PromptedMLLM):
    """A model behind an OpenAI-compatible `/chat/completions` endpoint."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 120.0,
        max_retries: int = 3,
        max_pixels: int = 360 * 420,
        concurrency: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        retry_after_cap: float = 30.0,
        jpeg_quality: int = 90,
    ) -> None:
        if not model.strip():
            raise MLLMError(f"the OpenAI-compatible server {base_url} needs a model name")
        if timeout <= 0 or max_retries < 0 or concurrency < 1:
            raise ValueError(
                f"need timeout > 0, retries >= 0, concurrency >= 1; got {timeout}, {max_retries}, {concurrency}"
            )
        self.url = chat_completions_url(base_url)
        self.model = model.strip()
        self.name = self.model
        self.api_key_env = check_env_name(api_key_env)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.max_pixels = int(max_pixels)
        self.concurrency = int(concurrency)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.retry_after_cap = float(retry_after_cap)
        self.jpeg_quality = int(jpeg_quality)
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._opener = self._build_opener()

    def _build_opener(self) -> urllib.request.OpenerDirector:
        # a proxy from the environment must not capture a server on this machine
        host = urllib.parse.urlsplit(self.url).hostname or ""
        if host in ("localhost", "127.0.0.1", "::1"):
            return urllib.request.build_opener(urllib.request.ProxyHandler({}))
        return urllib.request.build_opener()

    def __repr__(self) -> str:
        return f"OpenAIMLLM({self.url!r}, model={self.model!r})"

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_slots", "_opener")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._opener = self._build_opener()

    # ----------------------------------------------------------------------------- request

    def payload(self, prompt: Prompt, options: GenerationOptions) -> tuple[dict, list[list[int]]]:
        """The JSON body for `prompt` and the `[height, width]` of every image sent."""
        content: list[dict[str, Any]] = []
        sizes: list[list[int]] = []
        for kind, value in message_content(prompt):
            if kind == "text":
                content.append({"type": "text", "text": value})
            else:
                url, size = encode_jpeg(value, self.max_pixels, self.jpeg_quality)
                content.append({"type": "image_url", "image_url": {"url": url}})
                sizes.append(size)
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": options.max_new_tokens,
            "temperature": options.temperature,  # 0: greedy on every common server
            "seed": options.seed,
        }
        return body, sizes

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _post_once(self, data: bytes) -> dict:
        request = urllib.request.Request(
            self.url, data=data, headers=self._headers(), method="POST"
        )
        try:
            with self._slots, self._opener.open(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace").strip()
            status = f"HTTP {exc.code} {exc.reason}" + (f": {detail}" if detail else "")
            if exc.code in RETRY_STATUS or exc.code >= 500:
                raise _Retryable(status, _retry_after(exc.headers.get("Retry-After"))) from exc
            raise MLLMError(f"{self.url} refused the request: {status}") from exc
        except TimeoutError as exc:
            raise _Retryable(f"timed out after {self.timeout:g} s") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                raise _Retryable(f"timed out after {self.timeout:g} s") from exc
            raise _Retryable(f"connection failed: {exc.reason}") from exc
        except (http.client.HTTPException, ConnectionError, OSError) as exc:
            # RemoteDisconnected, IncompleteRead, reset: the server dropped the connection
            raise _Retryable(f"connection dropped: {type(exc).__name__}: {exc}") from exc
        try:
            reply = json.loads(raw)
            text = reply["choices"][0]["message"]["content"]
            if not isinstance(text, str):
                raise TypeError(f"content is {type(text).__name__}")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            excerpt = raw[:200].decode("utf-8", "replace")
            raise _Retryable(
                f"malformed reply (not chat-completion JSON: {exc}): {excerpt!r}"
            ) from exc
        return reply

    def generate(self, prompt: Prompt, options: GenerationOptions) -> Answer:
        started = time.perf_counter()
        body, sizes = self.payload(prompt, options)
        data = json.dumps(body).encode("utf-8")
        errors: list[str] = []
        waits: list[float] = []
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            try:
                reply = self._post_once(data)
            except _Retryable as failure:
                errors.append(str(failure))
                if attempt + 1 == attempts:
                    break
                wait = min(self.backoff * 2**attempt, self.max_backoff)
                if failure.wait is not None:
                    wait = min(max(wait, failure.wait), self.retry_after_cap)
                waits.append(wait)
                time.sleep(wait)
                continue
            return Answer(
                text=reply["choices"][0]["message"]["content"].strip(),
                prompt_text=prompt.text,
                num_images=len(sizes),
                model=self.model,
                seconds=time.perf_counter() - started,
                attempts=attempt + 1,
                errors=errors,
                extra={
                    "url": self.url,
                    "image_sizes": sizes,
                    "waits": waits,
                    "usage": reply.get("usage"),
                },  # fmt: skip
            )
        raise MLLMError(
            f"{self.url} (model {self.model!r}) gave no answer after {attempts} attempt(s); "
            f"last: {errors[-1]}. Check that the server is running and serves this model."
        )


def _retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (a number; an HTTP date is ignored)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
