"""Who may receive what: the one place that decides which server gets frames and keys, which
key variables may be read, and whether a model may be downloaded.

Workflow files are shared by strangers, so nothing in a workflow is consent. A workflow may
*name* a server, a key variable and a hub id; the pack uses them only when the user allowed
them outside the workflow, in one of:

- the environment: `MOTIONSIGHT_TRUSTED_URLS` (servers, comma or space separated),
  `MOTIONSIGHT_ALLOWED_KEY_VARS` (variables that may hold an API key; `OPENAI_API_KEY` is
  always allowed), `MOTIONSIGHT_ALLOW_DOWNLOAD=1`;
- command-line flags, which set those variables for this process and its workers
  (`motionsight ask --base-url URL [--api-key-env VAR]`, `--trust-url URL`, `--allow-download`);
- a settings file the user edits (never shipped, never in a workflow): `motionsight_settings.json`
  in the pack folder, `motionsight.json` in ComfyUI's `user/` folder, or the file named by
  `MOTIONSIGHT_SETTINGS`: `{"trusted_urls": [...], "allowed_key_vars": [...], "allow_download": true}`.

A server is matched by origin (scheme, host, port): frames and the key go to a trusted origin
only. A server the user did not allow gets nothing, not even frames without a key (an
attacker's server on this very machine would otherwise receive the user's video).
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

URLS_ENV = "MOTIONSIGHT_TRUSTED_URLS"
KEY_VARS_ENV = "MOTIONSIGHT_ALLOWED_KEY_VARS"
DOWNLOAD_ENV = "MOTIONSIGHT_ALLOW_DOWNLOAD"
SETTINGS_ENV = "MOTIONSIGHT_SETTINGS"
DEFAULT_KEY_VARS = ("OPENAI_API_KEY",)
PACK_SETTINGS = Path(__file__).resolve().parent / "motionsight_settings.json"
_SPLIT = re.compile(r"[,\s]+")
_TRUE = {"1", "true", "yes", "on"}
_UPPER_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


class TrustError(RuntimeError):
    """A workflow asked for something the user did not allow; the message says how to allow it."""


@dataclass(frozen=True)
class Consent:
    """What the user allowed: server origins, key variable names, downloads."""

    origins: frozenset[tuple[str, str, int]]
    key_vars: frozenset[str]
    download: bool


def origin(url: str) -> tuple[str, str, int]:
    """`(scheme, host, port)` of an http(s) URL, the port defaulted (ValueError otherwise)."""
    parts = urllib.parse.urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http:// or https:// URL: {url[:80]!r}")
    port = parts.port or (443 if scheme == "https" else 80)  # ValueError on a bad port
    return scheme, parts.hostname.lower(), port


def origin_text(url: str) -> str:
    """`scheme://host:port` of `url` (what to put on an allow-list)."""
    scheme, host, port = origin(url)
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}"


def settings_files() -> list[Path]:
    """The settings files read, in order: `$MOTIONSIGHT_SETTINGS`, the pack's, ComfyUI's user one."""
    from .comfy_bridge import user_directory

    files = []
    if os.environ.get(SETTINGS_ENV):
        files.append(Path(os.environ[SETTINGS_ENV]).expanduser())
    files.append(PACK_SETTINGS)
    user = user_directory()
    if user is not None:
        files.append(user / "motionsight.json")
    return files


def _read_settings(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise TrustError(f"settings file {path} cannot be read as JSON: {exc}") from None
    if not isinstance(data, dict):
        raise TrustError(f"settings file {path} must hold a JSON object")
    for key in ("trusted_urls", "allowed_key_vars"):
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TrustError(f"settings file {path}: {key!r} must be a list of strings")
    return data


def _words(text: str | None) -> list[str]:
    return [w for w in _SPLIT.split(text or "") if w]


def consent() -> Consent:
    """What the user allowed right now (environment and settings files are read on every call,
    so an edit takes effect without a restart)."""
    urls = _words(os.environ.get(URLS_ENV))
    key_vars = [*DEFAULT_KEY_VARS, *_words(os.environ.get(KEY_VARS_ENV))]
    download = os.environ.get(DOWNLOAD_ENV, "").strip().lower() in _TRUE
    for path in settings_files():
        data = _read_settings(path)
        urls += data.get("trusted_urls", [])
        key_vars += data.get("allowed_key_vars", [])
        download = download or data.get("allow_download") is True
    origins = set()
    for url in urls:
        try:
            origins.add(origin(url))
        except ValueError:
            raise TrustError(
                f"trusted URL {url[:80]!r} (from {URLS_ENV} or a settings file) is not an "
                "http:// or https:// URL"
            ) from None
    return Consent(frozenset(origins), frozenset(key_vars), download)


def _how(env: str, flag: str, key: str) -> str:
    return f"{flag}, {env}=..., or {key!r} in {PACK_SETTINGS.name} / ComfyUI user/motionsight.json"


def check_server(base_url: str, api_key_env: str, what: str = "Load MLLM") -> None:
    """Raise `TrustError` unless the user allowed `base_url`'s origin and (when one is named)
    the key variable `api_key_env`. `what` names the asking node in the message."""
    allowed = consent()
    try:
        server = origin(base_url)
    except ValueError as exc:
        raise TrustError(f"{what}: base_url {exc}") from None
    shown = origin_text(base_url)
    if server not in allowed.origins:
        raise TrustError(
            f"{what}: server {shown} is named by the workflow but not allowed by you, so no "
            f"frames or keys are sent to it; allow it with "
            + _how(URLS_ENV, f"--trust-url {shown} (ask: --base-url)", "trusted_urls")
        )
    name = api_key_env.strip()
    if name and name not in allowed.key_vars:
        # a conventional variable name is shown; anything else may be a pasted key: never echoed
        named = repr(name[:80]) if _UPPER_NAME.fullmatch(name) else "(not shown: not a NAME)"
        raise TrustError(
            f"{what}: api_key_env {named} for {shown} is not a key variable you allowed "
            f"(allowed: {', '.join(sorted(allowed.key_vars))}); allow it with "
            + _how(KEY_VARS_ENV, "ask --api-key-env VAR / --allow-key-var VAR", "allowed_key_vars")
        )


def download_allowed() -> bool:
    """True when the user consented to downloads (flag, environment or settings)."""
    return consent().download


def require_download(what: str) -> None:
    """Raise `TrustError` unless downloads are allowed; `what` names the model and the asker."""
    if not download_allowed():
        raise TrustError(
            f"{what} would be downloaded from the hub, but a workflow's allow_download is not "
            f"your consent; allow downloads with "
            + _how(DOWNLOAD_ENV, "--allow-download", "allow_download")
        )


def grant(urls: Iterable[str] = (), key_vars: Iterable[str] = (), download: bool = False) -> None:
    """The user's command-line consent: add it to this process's environment (so local worker
    processes inherit it). Raises `TrustError` for a URL that is not http(s)."""
    urls, key_vars = [u for u in urls if u], [k.strip() for k in key_vars if k.strip()]
    for url in urls:
        try:
            origin(url)
        except ValueError as exc:
            raise TrustError(f"a server to allow must be an http(s) URL; {exc}") from None
    if urls:
        os.environ[URLS_ENV] = " ".join([*_words(os.environ.get(URLS_ENV)), *urls])
    if key_vars:
        os.environ[KEY_VARS_ENV] = " ".join([*_words(os.environ.get(KEY_VARS_ENV)), *key_vars])
    if download:
        os.environ[DOWNLOAD_ENV] = "1"
