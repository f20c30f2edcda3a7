"""Running `motionsight` in a child process (for kill-and-resume tests): command, environment,
and how many complete lines a JSONL output holds."""

from __future__ import annotations

import os
import sys
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent


def cli(*args: str) -> list[str]:
    """The argv of `motionsight ARGS...` with this interpreter."""
    return [sys.executable, "-m", "motionsight.engine.cli", *args]


def cli_env(**extra: str) -> dict[str, str]:
    """This environment with tests/ importable in the child (test annotators, delays) and `extra`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def complete_lines(path: Path) -> int:
    """Lines ended by a newline in `path` (0 when it does not exist)."""
    return path.read_bytes().count(b"\n") if path.exists() else 0
