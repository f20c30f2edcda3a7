"""The review page's server (aiohttp, what ComfyUI ships): a page, a small JSON API, the media.

Routes (nothing else answers; no route takes a path, so `../`, absolute paths, encoded slashes
and symlinks outside the pairs file cannot name a file):

    GET  /                          the page (static/index.html)
    GET  /static/{app.js,style.css}
    GET  /api/state?reviewer=NAME   the reviewer's current pair (sides randomised), progress
    POST /api/decide                {"reviewer", "pair", "action": "choose"|"skip", "side": "left"|"right"}
    POST /api/undo                  {"reviewer"}
    GET  /media/{i}/{view}          view original|spotlight|trails of pair number i

Bound to loopback by default, where the Host header must name the loopback address (no DNS
rebinding). On any other address every request must carry the token printed in the URL
(`?token=` or the `X-Review-Token` header). POSTs must be JSON from the page's own origin.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import secrets
import shlex
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from .pairs import PROMPT_KINDS, Pair, ReviewError
from .store import DecisionConflict, DecisionStore, check_reviewer

__all__ = ["VIEWS", "ReviewServer", "build_app", "is_loopback"]

STATIC = Path(__file__).with_name("static")
STATIC_FILES = {
    "app.js": "text/javascript",
    "style.css": "text/css",
}
VIEWS = ("original", *PROMPT_KINDS)
TOKEN_COOKIE = "motionsight_review_token"
PLAYABLE = {".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".mov": "video/mp4"}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'",
}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class ReviewConfig:
    pairs: list[Pair]
    pairs_path: Path
    store: DecisionStore
    reviewer: str
    cache: Path
    token: str | None = None  # required on every request when set
    allowed_hosts: set[str] = field(default_factory=set)  # Host headers accepted (loopback)

    def export_command(self) -> str:
        out = self.store.path
        return (
            f"motionsight dataset review {shlex.quote(str(self.pairs_path))} "
            f"--out {shlex.quote(str(out))} --export {shlex.quote(str(out.parent / 'reviewed'))}"
            " --trainer all"
        )


CONFIG = web.AppKey("config", ReviewConfig)
RENDER_POOL = web.AppKey("render_pool", ThreadPoolExecutor)
IO_POOL = web.AppKey("io_pool", ThreadPoolExecutor)
RENDER_LOCKS = web.AppKey("render_locks", dict)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def _guard(request: web.Request, handler):
    config: ReviewConfig = request.app[CONFIG]
    if config.token is not None:
        given = (
            request.query.get("token")
            or request.headers.get("X-Review-Token")
            or request.cookies.get(TOKEN_COOKIE, "")
        )
        if not hmac.compare_digest(given.encode(), config.token.encode()):
            return _error(403, "missing or wrong token: open the URL the server printed")
    elif config.allowed_hosts and request.host not in config.allowed_hosts:
        return _error(421, f"unexpected Host {request.host!r}: open the URL the server printed")
    if request.method not in ("GET", "HEAD", "POST"):
        return _error(405, f"method {request.method} not allowed")
    if request.method == "POST":
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            return _error(403, f"cross-origin request from {origin} refused")
        if request.content_type != "application/json":
            return _error(415, "send JSON (Content-Type: application/json)")
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400:
            response = _error(exc.status, exc.reason)
        else:
            raise
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    if request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"
    if config.token is not None and request.path == "/" and response.status == 200:
        # the page's own requests (script, style, media) then carry the token too
        response.set_cookie(TOKEN_COOKIE, config.token, httponly=True, samesite="Strict", path="/")
    return response


def _reviewer(config: ReviewConfig, value: Any) -> str:
    name = value if isinstance(value, str) and value else config.reviewer
    return check_reviewer(name)


def state(config: ReviewConfig, reviewer: str, token: str | None = None) -> dict[str, Any]:
    """What the page shows `reviewer` now: the first pair they have not decided, and progress."""
    store = config.store
    store.refresh()
    decisions, stale = store.decisions(config.pairs)
    mine = {pair_id for pair_id, r in decisions if r == reviewer}
    skipped = sum(
        1 for (_p, r), line in decisions.items() if r == reviewer and line["action"] == "skip"
    )
    per_reviewer: dict[str, int] = {}
    for _pair_id, r in decisions:
        per_reviewer[r] = per_reviewer.get(r, 0) + 1
    current = next((p for p in config.pairs if p.id not in mine), None)
    suffix = f"?token={token}" if token else ""
    shown = None
    if current is not None:
        left, right = current.sides(reviewer)
        shown = {
            "id": current.id,
            "index": current.index,
            "question": current.question,
            "kind": current.kind,
            "video": current.video.name,
            "left": current.candidates[left].text,
            "right": current.candidates[right].text,
            "media": {view: f"/media/{current.index}/{view}{suffix}" for view in VIEWS},
            "given": [k for k in PROMPT_KINDS if current.visual_prompts.get(k) is not None],
        }
    last = store.last_undoable(reviewer, config.pairs)
    return {
        "reviewer": reviewer,
        "total": len(config.pairs),
        "done": len(mine),
        "skipped": skipped,
        "left": len(config.pairs) - len(mine),
        "per_reviewer": dict(sorted(per_reviewer.items())),
        "decided_by_anyone": len({pair_id for pair_id, _r in decisions}),
        "pair": shown,
        "can_undo": last is not None,
        "finished": current is None,
        "export_command": config.export_command(),
        "stale": stale,
        "bad_lines": len(store.bad_lines),
    }


async def _json_body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPBadRequest(reason="the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(reason="the body must be a JSON object")
    return body


async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(
        STATIC / "index.html",
        headers={"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"},
    )


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        raise web.HTTPNotFound(reason=f"no static file {name!r}")
    return web.FileResponse(
        STATIC / name, headers={"Content-Type": STATIC_FILES[name], "Cache-Control": "no-store"}
    )


async def _state(request: web.Request) -> web.Response:
    config: ReviewConfig = request.app[CONFIG]
    try:
        reviewer = _reviewer(config, request.query.get("reviewer"))
    except ReviewError as exc:
        return _error(400, str(exc))
    return web.json_response(state(config, reviewer, config.token))


async def _decide(request: web.Request) -> web.Response:
    config: ReviewConfig = request.app[CONFIG]
    body = await _json_body(request)
    try:
        reviewer = _reviewer(config, body.get("reviewer"))
    except ReviewError as exc:
        return _error(400, str(exc))
    pair = next((p for p in config.pairs if p.id == body.get("pair")), None)
    if pair is None:
        return _error(404, f"no pair {body.get('pair')!r} in {config.pairs_path.name}")
    action = body.get("action")
    if action == "skip":
        choice, side = None, ""
    elif action == "choose" and body.get("side") in ("left", "right"):
        side = body["side"]
        choice = pair.sides(reviewer)[0 if side == "left" else 1]
    else:
        return _error(400, "action must be 'skip', or 'choose' with side 'left' or 'right'")
    loop = asyncio.get_running_loop()
    try:  # the fsync happens off the event loop
        await loop.run_in_executor(
            request.app[IO_POOL], config.store.decide, pair, reviewer, choice, side
        )
    except DecisionConflict as exc:
        return _error(409, str(exc))
    return web.json_response(state(config, reviewer, config.token))


async def _undo(request: web.Request) -> web.Response:
    config: ReviewConfig = request.app[CONFIG]
    body = await _json_body(request)
    try:
        reviewer = _reviewer(config, body.get("reviewer"))
    except ReviewError as exc:
        return _error(400, str(exc))
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(request.app[IO_POOL], config.store.undo, reviewer, config.pairs)
    except DecisionConflict as exc:
        return _error(409, str(exc))
    return web.json_response(state(config, reviewer, config.token))


def _cache_path(config: ReviewConfig, pair: Pair, view: str, source: Path) -> Path:
    st = source.stat()
    key = hashlib.sha1(f"{source.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0{view}".encode())
    return config.cache / f"{pair.index:05d}-{view}-{key.hexdigest()[:12]}.webm"


async def _media(request: web.Request) -> web.StreamResponse:
    config: ReviewConfig = request.app[CONFIG]
    index, view = int(request.match_info["index"]), request.match_info["view"]
    if index >= len(config.pairs):
        raise web.HTTPNotFound(reason=f"no pair number {index}")
    pair = config.pairs[index]
    given = pair.video if view == "original" else pair.visual_prompts.get(view)
    real = given.resolve() if given is not None else None  # checked again: links can change
    if real is not None and real.is_file() and real.suffix.lower() in PLAYABLE:
        return web.FileResponse(real, headers={"Content-Type": PLAYABLE[real.suffix.lower()]})
    # drawn here: a prompt the pairs file does not give, a folder of frames, an unplayable file
    source = given if given is not None else pair.video
    out = _cache_path(config, pair, view, source)
    if not out.exists():
        locks: dict[Path, asyncio.Lock] = request.app[RENDER_LOCKS]
        async with locks.setdefault(out, asyncio.Lock()):
            if not out.exists():
                from . import render

                loop = asyncio.get_running_loop()
                try:
                    await loop.run_in_executor(
                        request.app[RENDER_POOL], render.draw_view, pair.video, view, given, out
                    )
                except (ReviewError, ValueError, OSError) as exc:
                    return _error(500, f"cannot draw {view} for pair {pair.id!r}: {exc}")
    return web.FileResponse(out, headers={"Content-Type": "video/webm"})


def build_app(config: ReviewConfig) -> web.Application:
    """The aiohttp application serving `config`'s pairs and decisions."""
    app = web.Application(middlewares=[_guard], client_max_size=64 * 1024)
    app[CONFIG] = config
    app[RENDER_POOL] = ThreadPoolExecutor(1, thread_name_prefix="review-render")
    app[IO_POOL] = ThreadPoolExecutor(2, thread_name_prefix="review-io")
    app[RENDER_LOCKS] = {}
    views = "|".join(VIEWS)
    app.router.add_get("/", _index)
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/api/state", _state)
    app.router.add_post("/api/decide", _decide)
    app.router.add_post("/api/undo", _undo)
    app.router.add_get(r"/media/{index:\d{1,9}}/{view:" + views + "}", _media)

    async def _shutdown(app: web.Application) -> None:
        app[RENDER_POOL].shutdown(wait=False, cancel_futures=True)
        app[IO_POOL].shutdown(wait=True)

    app.on_cleanup.append(_shutdown)
    return app


class ReviewServer:
    """Serve the review of `pairs` into the decisions file `store` on `host:port`.

    `port` 0 picks a free port. Any host other than loopback gets a random token that every
    request must carry; `url` includes it.
    """

    def __init__(
        self,
        pairs: list[Pair],
        pairs_path: Path,
        store: DecisionStore,
        reviewer: str,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        check_reviewer(reviewer)
        self.host = host
        family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host.strip("[]"), port))
        except OSError as exc:
            self._sock.close()
            raise ReviewError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        loopback = is_loopback(host)
        token = None if loopback else secrets.token_urlsafe(18)
        shown = f"[{host.strip('[]')}]" if family == socket.AF_INET6 else host
        allowed = set()
        if loopback:
            allowed = {f"{h}:{self.port}" for h in ("127.0.0.1", "localhost", "[::1]", shown)}
        cache = store.path.with_name(store.path.stem + "_cache")
        self.config = ReviewConfig(
            pairs=pairs,
            pairs_path=pairs_path,
            store=store,
            reviewer=reviewer,
            cache=cache,
            token=token,
            allowed_hosts=allowed,
        )
        self.url = f"http://{shown}:{self.port}/" + (f"?token={token}" if token else "")
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(build_app(self.config), access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._sock.close()

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    @contextmanager
    def running(self) -> Iterator[ReviewServer]:
        """Run in a background thread (tests, notebooks); stops on leaving the `with`."""
        loop = asyncio.new_event_loop()
        started = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # reported to the caller below
                errors.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        thread = threading.Thread(target=run, name="review-server", daemon=True)
        thread.start()
        started.wait(30)
        if errors:
            raise errors[0]
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(30)
