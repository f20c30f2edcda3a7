"""`motionsight --help` and argument errors answer before any heavy import (no torch)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
from motionsight.engine.cli import main
code = main({argv!r})
heavy = sorted(m for m in ("torch", "cv2", "transformers", "motionsight.nodes", "motionsight.mllm") if m in sys.modules)
print(code, ",".join(heavy))
"""


@pytest.mark.parametrize(
    "argv, code",
    [
        (["--help"], 0),
        (["ask", "--help"], 0),
        (["eval", "--help"], 0),
        (["ask"], 2),  # missing arguments
        (["ask", "clip.mp4", "q", "--max-side", "big"], 2),
        (["nonsense"], 2),
    ],
)
def test_help_and_argument_errors_import_no_torch(argv, code):
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.split("\n")[-2] == f"{code} ", done.stdout + done.stderr
