"""A loopback OpenAI-compatible chat-completions server for tests and benches (real HTTP).

    with OpenAITestServer(latency=0.2, reply="B") as server:
        server.fail_next("500", times=2)            # the next two requests fail like this
        backend = OpenAIMLLM(server.base_url, "test-model")
        ...
        server.requests[0]["body"]["messages"]      # what the client sent

Runs `http.server.ThreadingHTTPServer` on 127.0.0.1 with a free port in a daemon thread, and
never touches any other network. Every request is recorded in `.requests` (method, path,
headers, JSON body) before its scripted behaviour. Failure kinds (`fail_next`, or appended
to `.script`), consumed in order by the next POSTs:

- "500" / "503" / any status code as a string: that status with a JSON error body;
- "429": Too Many Requests with `Retry-After: <retry_after>` (default 0);
- "timeout" (alias "hang"): no reply for `hang_seconds` (bounded, longer than a test client's
  timeout; cut short when the server closes), then the connection closes;
- "malformed": 200 with a body that is not JSON;
- "drop": the connection closes without any reply;
- "truncate": 200 headers promising a body, half of it, then the connection closes;
- "drip": a whole valid reply (status line, headers, body) sent one byte every
  `drip_interval` seconds (a slow-loris reply; stops when the client goes or the server closes);
- "huge" / "huge_unannounced": 200 with a 100 MB body (`huge_bytes`), with or without a
  Content-Length header (without: the body ends when the connection closes);
- "empty": 200 with a chat completion whose content is "";
- "redirect": 302 to `redirect_to` (another server's URL).

Other POSTs to `.../chat/completions` wait `latency` seconds and answer `reply` (a string, or a
callable taking the parsed body and returning one). `GET /v1/models` lists `model`.
`max_in_flight` is the largest number of POSTs handled at the same time. With
`parse_bodies=False` (benches) a body is read but not decoded: `{"bytes": n}` is recorded.
`close()` (or leaving the `with`) wakes sleeping handlers, closes open connections and joins
every handler thread, so no thread outlives a test.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAILURES = (
    "500", "429", "timeout", "hang", "malformed", "drop", "truncate",
    "drip", "huge", "huge_unannounced", "empty", "redirect",
)  # fmt: skip


class OpenAITestServer:
    def __init__(
        self,
        latency: float = 0.0,
        reply: str | Callable[[dict], str] = "A",
        retry_after: float = 0.0,
        hang_seconds: float = 5.0,
        parse_bodies: bool = True,
        model: str = "test-model",
        responder: Callable[[dict], str] | None = None,
    ) -> None:
        self.latency = latency
        self.reply: str | Callable[[dict], str] = responder or reply
        self.retry_after = retry_after
        self.hang_seconds = hang_seconds
        self.parse_bodies = parse_bodies  # False: a bench's server spends no CPU on the JSON
        self.model = model
        self.script: list[str] = []
        self.drip_interval = 1.0
        self.huge_bytes = 100 * 1024 * 1024
        self.redirect_to = ""
        self.requests: list[dict[str, Any]] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._handlers: set[threading.Thread] = set()
        self._connections: set[socket.socket] = set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True  # never blocks interpreter exit; close() joins them
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},  # shutdown() waits up to one poll
            name="openai-test-server",
            daemon=True,
        )

    # ------------------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def responder(self) -> str | Callable[[dict], str]:
        """Older name of `reply`."""
        return self.reply

    @responder.setter
    def responder(self, value: str | Callable[[dict], str]) -> None:
        self.reply = value

    def fail_next(self, kind: str, times: int = 1) -> OpenAITestServer:
        """The next `times` POSTs (after those already scripted) fail as `kind`."""
        if kind not in FAILURES and not (kind.isdigit() and 100 <= int(kind) <= 599):
            raise ValueError(f"unknown failure kind {kind!r}: one of {FAILURES} or a status code")
        with self._lock:
            self.script.extend([kind] * times)
        return self

    def start(self) -> OpenAITestServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # wakes handlers sleeping on latency or a scripted timeout
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        with self._lock:
            connections, handlers = list(self._connections), list(self._handlers)
        for connection in connections:  # a client keeping a connection open must not block
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for handler in handlers:
            handler.join(timeout=5)

    def __enter__(self) -> OpenAITestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------- behaviour

    def _next_action(self) -> str | None:
        with self._lock:
            return self.script.pop(0) if self.script else None

    def _answer(self, body: dict) -> str:
        return self.reply(body) if callable(self.reply) else str(self.reply)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 30  # an idle keep-alive connection cannot hold a thread for ever

            def setup(self) -> None:
                super().setup()
                with server._lock:
                    server._handlers.add(threading.current_thread())
                    server._connections.add(self.connection)

            def finish(self) -> None:
                try:
                    super().finish()
                finally:
                    with server._lock:
                        server._handlers.discard(threading.current_thread())
                        server._connections.discard(self.connection)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, data: bytes, headers: dict | None = None) -> None:
                # The request stops counting as in flight before the reply goes out: once the
                # client has read it, it may (rightly) send the next one at once.
                self._leave()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _send_json(self, status: int, payload: dict, headers: dict | None = None) -> None:
                self._send(status, json.dumps(payload).encode(), headers)

            def _record(self, body: Any) -> None:
                with server._lock:
                    server.requests.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": body,
                        }
                    )

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                self._record(None)
                if self.path.rstrip("/").endswith("/models"):
                    data = [{"id": server.model, "object": "model", "owned_by": "test"}]
                    self._send_json(200, {"object": "list", "data": data})
                else:
                    self._send_json(404, {"error": {"message": f"no route GET {self.path}"}})

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw) if server.parse_bodies else {"bytes": len(raw)}
                except ValueError:
                    body = None
                self._record(body)
                with server._lock:
                    server._in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server._in_flight)
                self._counted = True
                try:
                    self._respond(body)
                finally:
                    self._leave()

            def _leave(self) -> None:
                if getattr(self, "_counted", False):
                    self._counted = False
                    with server._lock:
                        server._in_flight -= 1

            def _respond(self, body: Any) -> None:
                action = server._next_action()
                if action == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if action in ("timeout", "hang"):
                    server._closing.wait(server.hang_seconds)
                    self.close_connection = True
                    return
                if action == "malformed":
                    self._send(200, b"<html>this is not JSON")
                    return
                if action == "truncate":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    self.wfile.write(b'{"choices": [{"mess')
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if action == "drip":
                    reply = (
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        + f"Content-Length: {len(self._completion(body, 'A'))}\r\n\r\n".encode()
                        + self._completion(body, "A")
                    )
                    self.close_connection = True
                    for i in range(len(reply)):
                        try:
                            self.wfile.write(reply[i : i + 1])
                            self.wfile.flush()
                        except OSError:
                            return  # the client gave up
                        if server._closing.wait(server.drip_interval):
                            return
                    return
                if action in ("huge", "huge_unannounced"):
                    self._leave()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    if action == "huge":
                        self.send_header("Content-Length", str(server.huge_bytes))
                    self.end_headers()
                    self.close_connection = True
                    block = b" " * (1024 * 1024)
                    try:
                        for _ in range(server.huge_bytes // len(block)):
                            self.wfile.write(block)
                    except OSError:
                        pass  # the client stopped reading
                    return
                if action == "empty":
                    self._send(200, self._completion(body, ""))
                    return
                if action == "redirect":
                    self._send_json(302, {}, {"Location": server.redirect_to})
                    return
                if action == "429":
                    self._send_json(
                        429,
                        {"error": {"message": "rate limited", "type": "rate_limit"}},
                        {"Retry-After": f"{server.retry_after:g}"},
                    )
                    return
                if action is not None:
                    self._send_json(int(action), {"error": {"message": f"scripted {action}"}})
                    return
                if not self.path.endswith("/chat/completions") or not isinstance(body, dict):
                    self._send_json(404, {"error": {"message": f"no route POST {self.path}"}})
                    return
                if server.latency:
                    server._closing.wait(server.latency)
                self._send(200, self._completion(body, server._answer(body)))

            def _completion(self, body: Any, text: str) -> bytes:
                with server._lock:
                    number = len(server.requests)
                model = body.get("model") if isinstance(body, dict) else None
                return json.dumps(
                    {
                        "id": f"chatcmpl-{number}",
                        "object": "chat.completion",
                        "model": model,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                ).encode()

        return Handler


def allow(monkeypatch: Any, url: str, *key_vars: str) -> None:
    """The user's consent (as `--trust-url URL` gives it): `url` may get frames and keys, and
    workflows may name `key_vars`. Undone by `monkeypatch` after the test."""
    from motionsight import trust

    monkeypatch.setenv(trust.URLS_ENV, url)
    monkeypatch.setenv(trust.KEY_VARS_ENV, " ".join(key_vars))


def image_urls(body: dict) -> list[str]:
    """The image data URLs of a recorded chat-completions body, in order."""
    return [
        item["image_url"]["url"]
        for message in body["messages"]
        if isinstance(message["content"], list)
        for item in message["content"]
        if item.get("type") == "image_url"
    ]


def content_text(body: dict, image: str = "<image>") -> str:
    """The user content as text, each image written as `image` (compare with `Prompt.text`)."""
    return "".join(
        item["text"] if item["type"] == "text" else image
        for message in body["messages"]
        for item in message["content"]
    )
