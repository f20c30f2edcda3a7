"""An OpenAI-compatible chat-completions server (vLLM, SGLang, lmdeploy, Ollama, hosted services).

Frames go as base64 JPEG data URLs in the same order and with the same `Frame{i}:` text around
them as the local backend gets (`base.message_content`), resized by the same
`resize_to_max_pixels`, so both backends see the same pixels before JPEG.
The API key is read at request time from the environment variable *named* in the settings, so
it never sits in a workflow, a cache key, a repr or a pickled handle. Only the standard library
talks HTTP (`urllib`): a socket timeout per request, bounded retries with exponential backoff on
429, 5xx, timeouts, refused/reset/dropped connections and malformed replies (honouring
`Retry-After` up to a cap), no retry on other 4xx, and a semaphore per instance that bounds the
requests in flight (batch use calls `generate` from many threads).
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
import torch

from .base import (
    Answer,
    GenerationOptions,
    MLLMError,
    Prompt,
    PromptedMLLM,
    message_content,
    resize_to_max_pixels,
    to_uint8,
)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# 408 is a timeout and 409/425 are "try again": the official OpenAI client retries them too
RETRY_STATUS = frozenset({408, 409, 425, 429})  # plus every 5xx
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


class _Retryable(Exception):
    """One failed attempt worth retrying; `wait` is the server's Retry-After (s), if any."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


def encode_jpeg(image: torch.Tensor, max_pixels: int, quality: int = 85) -> tuple[str, list[int]]:
    """`[H, W, 3]` float 0..1 RGB -> (`data:image/jpeg;base64,...` URL, `[height, width]` sent).

    Resized with `resize_to_max_pixels` (area filter, aspect kept, at most `max_pixels` pixels;
    `max_pixels <= 0` keeps the size) and quantised to uint8 exactly as the transformers backend
    does, then JPEG-encoded by OpenCV at `quality` (1..100).
    """
    if image.ndim != 3 or image.shape[-1] != 3:
        raise MLLMError(f"images must be [H, W, 3], got {tuple(image.shape)}")
    rgb = to_uint8(resize_to_max_pixels(image.detach().to("cpu", torch.float32), max_pixels))
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)  # OpenCV writes BGR
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise MLLMError(f"could not JPEG-encode an image of shape {tuple(image.shape)}")
    url = "data:image/jpeg;base64," + base64.b64encode(buffer.tobytes()).decode("ascii")
    return url, [int(rgb.shape[0]), int(rgb.shape[1])]


def chat_completions_url(base_url: str) -> str:
    """`http://host:8000/v1` -> `http://host:8000/v1/chat/completions` (a full URL is kept)."""
    url = base_url.strip().rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MLLMError(
            f"base_url must be an http:// or https:// URL such as http://127.0.0.1:8000/v1, "
            f"got {base_url!r}"
        )
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
    """A model behind an OpenAI-compatible `/chat/completions` endpoint.

    Args:
        base_url: the API root, e.g. `http://127.0.0.1:8000/v1` (`/chat/completions` is
            appended; a URL already ending in it is kept).
        model: the model name on the server.
        api_key_env: NAME of the environment variable holding the key, read at every request;
            unset or empty (local servers) sends no `Authorization` header. "" disables it.
        timeout: socket timeout per request (s): connecting and each read.
        max_retries: retries after the first try (so at most `1 + max_retries` requests).
        backoff: wait before retry `k` (0-based) is `backoff * 2**k` s, at most `max_backoff`.
        max_pixels: each image is resized to at most this many pixels (<= 0: unchanged).
        jpeg_quality: JPEG quality 1..100.
        concurrency: requests in flight at once through this instance (across threads).
        max_backoff: cap of the exponential backoff (s).
        retry_after_cap: a server's `Retry-After` (s) is honoured up to this.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff: float = 1.0,
        max_pixels: int = 360 * 420,
        jpeg_quality: int = 85,
        concurrency: int = 4,
        max_backoff: float = 30.0,
        retry_after_cap: float = 30.0,
    ) -> None:
        if not model.strip():
            raise MLLMError(f"the OpenAI-compatible server {base_url} needs a model name")
        if timeout <= 0 or max_retries < 0 or concurrency < 1 or backoff < 0:
            raise ValueError(
                "OpenAIMLLM needs timeout > 0, max_retries >= 0, concurrency >= 1, backoff >= 0; "
                f"got {timeout}, {max_retries}, {concurrency}, {backoff}"
            )
        if not 1 <= jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be 1..100, got {jpeg_quality}")
        self.url = chat_completions_url(base_url)
        self.base_url = base_url.strip().rstrip("/")
        self.model = model.strip()
        self.name = f"{self.model} @ {self.base_url}"
        self.api_key_env = check_env_name(api_key_env)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_pixels = int(max_pixels)
        self.jpeg_quality = int(jpeg_quality)
        self.concurrency = int(concurrency)
        self.max_backoff = float(max_backoff)
        self.retry_after_cap = float(retry_after_cap)
        self._init_runtime()

    def _init_runtime(self) -> None:
        """What cannot be pickled (Ray ships the backend): the semaphore and the opener."""
        self._slots = threading.BoundedSemaphore(self.concurrency)
        # a proxy from the environment must not capture a server on this machine
        host = urllib.parse.urlsplit(self.url).hostname or ""
        handlers = [urllib.request.ProxyHandler({})] if host in LOCAL_HOSTS else []
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:
        return f"OpenAIMLLM({self.url!r}, model={self.model!r}, api_key_env={self.api_key_env!r})"

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_slots", "_opener")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_runtime()

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
        key = os.environ.get(self.api_key_env, "").strip() if self.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _post_once(self, data: bytes) -> dict:
        """One request; a `_Retryable` for what may pass, `MLLMError` for what will not."""
        request = urllib.request.Request(
            self.url, data=data, headers=self._headers(), method="POST"
        )
        try:
            with self._slots, self._opener.open(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            status = f"HTTP {exc.code} {exc.reason}" + _error_detail(exc)
            if exc.code in RETRY_STATUS or exc.code >= 500:
                raise _Retryable(status, _retry_after(exc.headers.get("Retry-After"))) from exc
            raise MLLMError(
                f"{self.url} (model {self.model!r}) refused the request: {status}"
                + _client_error_hint(exc.code)
            ) from exc
        except TimeoutError as exc:
            raise _Retryable(f"timed out after {self.timeout:g} s") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                raise _Retryable(f"timed out after {self.timeout:g} s") from exc
            raise _Retryable(f"connection failed: {exc.reason}") from exc
        except (http.client.HTTPException, OSError) as exc:
            # RemoteDisconnected, IncompleteRead, reset: the server dropped the connection
            raise _Retryable(f"connection dropped: {type(exc).__name__}: {exc}") from exc
        try:
            reply = json.loads(raw)
            text = reply["choices"][0]["message"]["content"]
            if not isinstance(text, str):
                raise TypeError(f"content is {type(text).__name__}, not text")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            # a proxy's HTML page or a half-written reply: a server fault, worth another try
            excerpt = raw[:200].decode("utf-8", "replace")
            raise _Retryable(
                f"malformed reply (not chat-completion JSON: {type(exc).__name__}: {exc}): "
                f"{excerpt!r}"
            ) from exc
        return reply

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before retry `attempt` (0-based): capped exponential, or the server's
        `Retry-After` when longer (up to `retry_after_cap`)."""
        wait = min(self.backoff * 2**attempt, self.max_backoff)
        if retry_after is not None:
            wait = min(max(wait, retry_after), self.retry_after_cap)
        return wait

    def generate(self, prompt: Prompt, options: GenerationOptions) -> Answer:
        """POST the prompt; the answer's `attempts`, `errors` and `extra["waits"]` record the
        retries. Raises `MLLMError` naming the URL, the last failure and the attempt count."""
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
                waits.append(self._wait(attempt, failure.wait))
                time.sleep(waits[-1])
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


def _error_detail(exc: urllib.error.HTTPError) -> str:
    """The server's own message from an error reply (`{"error": {"message": ...}}` or text)."""
    try:
        raw = exc.read(4096)
    except (OSError, http.client.HTTPException):
        return ""
    text = raw.decode("utf-8", "replace").strip()
    try:
        error = json.loads(text).get("error", text)
        text = str(error.get("message", error) if isinstance(error, dict) else error)
    except (ValueError, AttributeError):
        pass
    return f": {text[:300]}" if text else ""


def _client_error_hint(code: int) -> str:
    if code in (401, 403):
        return " (check the API key in the environment variable named by api_key_env)"
    if code == 404:
        return " (check the base URL, usually ending in /v1, and the model name)"
    return ""


def _retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (a number; an HTTP date is ignored)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
