"""An OpenAI-compatible chat-completions server (vLLM, SGLang, lmdeploy, Ollama, hosted services).

Frames go as base64 JPEG data URLs in the same order and with the same `Frame{i}:` text around
them as the local backend gets (`base.message_content`), resized by the same
`resize_to_max_pixels`, so both backends see the same pixels before JPEG.
The API key is read at request time from the environment variable *named* in the settings, so
it never sits in a workflow, a cache key, a repr or a pickled handle (which server may get which
key is decided before, by `trust.check_server`, when a workflow builds the backend).

Only the standard library talks HTTP (`urllib`). Every request has ONE deadline, `timeout`
seconds for connecting, sending and the whole reply: a timer shuts the socket down when it
passes, so a server that never answers or drips one byte a second ends on time. Replies are
read in chunks up to `max_reply_bytes` (a larger one is refused, not retried). Bounded retries
with exponential backoff on 429, 5xx, timeouts, refused/reset/dropped connections, malformed
and empty replies (honouring `Retry-After` up to a cap), no retry on other 4xx; the whole call
takes at most `max_seconds` (a total budget, 300 s by default; stated in the error). `Authorization` never follows a redirect to
another origin. A semaphore per instance bounds the requests in flight (batch use calls
`generate` from many threads).
"""

from __future__ import annotations

import base64
import functools
import http.client
import json
import math
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
MAX_REPLY_BYTES = 10 * 1024 * 1024
_CHUNK = 64 * 1024


class _Retryable(Exception):
    """One failed attempt worth retrying; `wait` is the server's Retry-After (s), if any."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


class _Deadline:
    """One request's deadline: when it passes, a timer shuts the connection's socket down, so no
    connect, send or read (status line, headers, body) outlives it."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds
        self.expired = False
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return max(0.001, self.end - time.monotonic())

    def attach(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._socket, expired = sock, self.expired
        if expired:
            _shutdown(sock)
        return sock

    def _expire(self) -> None:
        with self._lock:
            self.expired, sock = True, self._socket
        if sock is not None:
            _shutdown(sock)

    def cancel(self) -> None:
        self._timer.cancel()
        self._timer.join()  # at once: cancelled, it wakes and ends (no thread outlives a call)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv/send in another thread
    except OSError:
        pass  # already closed, or detached by TLS (then its own timeout bounds it)


def _deadline_connection(base: type) -> type:
    """`base` (HTTPConnection or HTTPSConnection) whose sockets are handed to a `_Deadline`."""

    class Connection(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, deadline: _Deadline | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._deadline = deadline
            if deadline is not None:
                create = self._create_connection
                self._create_connection = lambda *a, **k: deadline.attach(create(*a, **k))

        def connect(self) -> None:
            super().connect()
            if self._deadline is not None:
                self._deadline.attach(self.sock)  # the TLS socket once wrapped

    return Connection


_HTTPConnection = _deadline_connection(http.client.HTTPConnection)
_HTTPSConnection = _deadline_connection(http.client.HTTPSConnection)


class _DeadlineHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(_HTTPConnection, deadline=getattr(req, "deadline", None))
        return self.do_open(connection, req)


class _DeadlineHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(_HTTPSConnection, deadline=getattr(req, "deadline", None))
        return self.do_open(connection, req, context=self._context)


class _SameOriginAuthRedirect(urllib.request.HTTPRedirectHandler):
    """urllib's redirects, but `Authorization` is dropped when the new URL is another origin
    (scheme, host, port), and the request's deadline carries over."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            if _origin(req.full_url) != _origin(new.full_url):
                new.remove_header("Authorization")
            new.deadline = getattr(req, "deadline", None)
        return new


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    return (
        parts.scheme.lower(),
        (parts.hostname or "").lower(),
        port or (443 if parts.scheme.lower() == "https" else 80),
    )


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
        timeout: the deadline of one request (s): connecting, sending and the whole reply.
        max_retries: retries after the first try (so at most `1 + max_retries` requests).
        backoff: wait before retry `k` (0-based) is `backoff * 2**k` s, at most `max_backoff`.
        max_pixels: each image is resized to at most this many pixels (<= 0: unchanged).
        jpeg_quality: JPEG quality 1..100.
        concurrency: requests in flight at once through this instance (across threads).
        max_backoff: cap of the exponential backoff (s).
        retry_after_cap: a server's `Retry-After` (s) is honoured up to this.
        max_reply_bytes: a longer reply is refused (not retried); 10 MB by default.
        total_timeout: the budget of one `generate` call, all tries and waits included (s);
            None: `max(300, timeout)`. A try never runs past it (its deadline is shortened),
            and no retry starts when the wait before it would use up the budget.

    So one `generate` call takes at most `max_seconds`: the budget, or `1 + max_retries`
    deadlines plus the longest waits between them when that is less (defaults: 300 s).
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
        max_reply_bytes: int = MAX_REPLY_BYTES,
        total_timeout: float | None = None,
    ) -> None:
        if not model.strip():
            raise MLLMError(f"the OpenAI-compatible server {base_url} needs a model name")
        total_timeout = max(300.0, timeout) if total_timeout is None else total_timeout
        numbers = (timeout, backoff, max_backoff, retry_after_cap, total_timeout)
        if (
            not all(math.isfinite(x) for x in numbers)
            or timeout <= 0
            or max_retries < 0
            or concurrency < 1
            or backoff < 0
            or max_reply_bytes < 1
            or total_timeout <= 0
        ):
            raise ValueError(
                "OpenAIMLLM needs a finite timeout > 0, max_retries >= 0, concurrency >= 1, "
                f"backoff >= 0, max_reply_bytes >= 1; got {timeout}, {max_retries}, "
                f"{concurrency}, {backoff}, {max_reply_bytes}"
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
        self.max_reply_bytes = int(max_reply_bytes)
        self.total_timeout = float(total_timeout)
        self._init_runtime()

    @property
    def max_seconds(self) -> float:
        """The longest one `generate` can take: every attempt's deadline plus the longest wait
        before each retry (backoff, or a `Retry-After` up to its cap)."""
        waits = sum(
            max(min(self.backoff * 2**k, self.max_backoff), self.retry_after_cap)
            for k in range(self.max_retries)
        )
        return min(self.total_timeout, (self.max_retries + 1) * self.timeout + waits)

    def _init_runtime(self) -> None:
        """What cannot be pickled (Ray ships the backend): the semaphore and the opener."""
        self._slots = threading.BoundedSemaphore(self.concurrency)
        # a proxy from the environment must not capture a server on this machine
        host = urllib.parse.urlsplit(self.url).hostname or ""
        handlers: list[urllib.request.BaseHandler] = [
            _DeadlineHTTPHandler(),
            _DeadlineHTTPSHandler(),
            _SameOriginAuthRedirect(),
        ]
        if host in LOCAL_HOSTS:
            handlers.append(urllib.request.ProxyHandler({}))
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

    def _post_once(self, data: bytes, budget: list[float]) -> dict:
        """One request within one deadline (cut to what is left of the call's `budget`, whose
        end is set when the first request goes out); a `_Retryable` for what may pass,
        `MLLMError` for what will not."""
        request = urllib.request.Request(
            self.url, data=data, headers=self._headers(), method="POST"
        )
        with self._slots:  # the deadline starts when the request goes out, not while queued
            if not budget:
                budget.append(time.monotonic() + self.total_timeout)
            seconds = min(self.timeout, budget[0] - time.monotonic())
            if seconds <= 0:
                raise _Retryable(f"the total budget of {self.total_timeout:g} s is spent")
            deadline = _Deadline(seconds)
            request.deadline = deadline  # type: ignore[attr-defined]
            try:
                with self._opener.open(request, timeout=deadline.remaining()) as response:
                    raw = self._read_body(response)
            except urllib.error.HTTPError as exc:
                status = f"HTTP {exc.code} {exc.reason}" + _error_detail(exc)
                if exc.code in RETRY_STATUS or exc.code >= 500:
                    raise _Retryable(status, _retry_after(exc.headers.get("Retry-After"))) from exc
                raise MLLMError(
                    f"{self.url} (model {self.model!r}) refused the request: {status}"
                    + _client_error_hint(exc.code)
                ) from exc
            except (TimeoutError, urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                if deadline.expired or isinstance(reason, (TimeoutError, socket.timeout)):
                    raise _Retryable(
                        f"timed out after {seconds:g} s (the deadline for the whole reply)"
                    ) from exc
                if isinstance(exc, urllib.error.URLError):
                    raise _Retryable(f"connection failed: {exc.reason}") from exc
                # RemoteDisconnected, IncompleteRead, reset: the server dropped the connection
                raise _Retryable(f"connection dropped: {type(exc).__name__}: {exc}") from exc
            finally:
                deadline.cancel()
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
        if not text.strip():
            raise _Retryable("empty reply: the answer has no content")
        return reply

    def _read_body(self, response: http.client.HTTPResponse) -> bytes:
        """The reply body in chunks, refused (`MLLMError`) beyond `max_reply_bytes`."""
        length = response.headers.get("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > self.max_reply_bytes:
            raise MLLMError(self._too_large(f"announces {int(length)} bytes"))
        chunks, total = [], 0
        while chunk := response.read(_CHUNK):
            total += len(chunk)
            if total > self.max_reply_bytes:
                raise MLLMError(self._too_large(f"is longer than {self.max_reply_bytes} bytes"))
            chunks.append(chunk)
        body = b"".join(chunks)
        if length is not None and length.strip().isdigit() and total < int(length):
            raise http.client.IncompleteRead(body, int(length) - total)  # cut short
        return body

    def _too_large(self, what: str) -> str:
        return (
            f"{self.url} (model {self.model!r}): the reply {what}, over the cap of "
            f"{self.max_reply_bytes} bytes (max_reply_bytes); refused, not retried"
        )

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
        budget: list[float] = []  # the end of the total budget, once the first request is out
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            try:
                reply = self._post_once(data, budget)
            except _Retryable as failure:
                errors.append(str(failure))
                wait = self._wait(attempt, failure.wait)
                if attempt + 1 == attempts or time.monotonic() + wait >= budget[0]:
                    attempts = attempt + 1
                    break
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
            f"{self.url} (model {self.model!r}) gave no answer after {attempts} attempt(s) in "
            f"{time.perf_counter() - started:.1f} s (the limit: {self.max_seconds:g} s, "
            f"{self.timeout:g} s per try); last: {errors[-1][:300]}. Check that the server is "
            "running and serves this model."
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
