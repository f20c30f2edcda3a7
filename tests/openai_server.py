"""A loopback OpenAI-compatible chat-completions server for tests and benches (real HTTP).

    with OpenAITestServer(latency=0.2) as server:
        server.script = ["500", "429", "drop"]      # the next requests fail like this, in order
        backend = OpenAIMLLM(server.base_url, "test-model")
        ...
        server.requests[0]["body"]["messages"]      # what the client sent

Runs `http.server.ThreadingHTTPServer` on 127.0.0.1 with a free port in a daemon thread.
Every POST is recorded (path, headers, JSON body) before its scripted behaviour:

- "500" / "503" / any status code as a string: that status with a JSON error body;
- "429": Too Many Requests with `Retry-After: <retry_after>`;
- "hang": no reply for `hang_seconds` (a client timeout), then the connection closes;
- "malformed": 200 with a body that is not JSON;
- "drop": the connection closes without any reply.

Unscripted requests wait `latency` seconds and answer `responder(body)` (default "A").
`max_in_flight` is the largest number of requests handled at the same time. With
`parse_bodies=False` (benches) the body is read but not decoded: `{"bytes": n}` is recorded.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class OpenAITestServer:
    def __init__(
        self,
        latency: float = 0.0,
        responder: Callable[[dict], str] | None = None,
        retry_after: float = 0.05,
        hang_seconds: float = 5.0,
        parse_bodies: bool = True,
    ) -> None:
        self.latency = latency
        self.responder = responder or (lambda body: "A")
        self.retry_after = retry_after
        self.hang_seconds = hang_seconds
        self.parse_bodies = parse_bodies  # False: a bench's server spends no CPU on the JSON
        self.script: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # ------------------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> OpenAITestServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # wakes hanging handlers
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OpenAITestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------- behaviour

    def _next_action(self) -> str | None:
        with self._lock:
            return self.script.pop(0) if self.script else None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _send_json(self, status: int, payload: dict, headers: dict | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw) if server.parse_bodies else {"bytes": len(raw)}
                except ValueError:
                    body = None
                with server._lock:
                    server.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                    server._in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server._in_flight)
                try:
                    self._respond(body)
                finally:
                    with server._lock:
                        server._in_flight -= 1

            def _respond(self, body: Any) -> None:
                action = server._next_action()
                if action == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if action == "hang":
                    server._closing.wait(server.hang_seconds)
                    self.close_connection = True
                    return
                if action == "malformed":
                    data = b"<html>this is not JSON"
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if action == "429":
                    self._send_json(
                        429,
                        {"error": {"message": "rate limited"}},
                        {"Retry-After": f"{server.retry_after:g}"},
                    )
                    return
                if action is not None:
                    self._send_json(int(action), {"error": {"message": f"scripted {action}"}})
                    return
                if not self.path.endswith("/chat/completions") or not isinstance(body, dict):
                    self._send_json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                if server.latency:
                    server._closing.wait(server.latency)
                text = server.responder(body)
                self._send_json(
                    200,
                    {
                        "id": f"chatcmpl-{len(server.requests)}",
                        "object": "chat.completion",
                        "model": body.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    },
                )

        return Handler


def image_urls(body: dict) -> list[str]:
    """The image data URLs of a recorded chat-completions body, in order."""
    return [
        item["image_url"]["url"]
        for message in body["messages"]
        for item in message["content"]
        if isinstance(message["content"], list) and item.get("type") == "image_url"
    ]


def content_text(body: dict, image: str = "<image>") -> str:
    """The user content as text, each image written as `image` (compare with `Prompt.text`)."""
    return "".join(
        item["text"] if item["type"] == "text" else image
        for message in body["messages"]
        for item in message["content"]
    )
