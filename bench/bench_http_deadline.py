"""What the per-request deadline costs: a loopback server answering at once (latency 0), a
text-only prompt, 200 requests per run; the same backend with the deadline timer replaced by a
no-op, alternated in one process, medians of 5 runs.

    .venv/bin/python bench/bench_http_deadline.py [--requests 200] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the loopback server lives with the tests

from openai_server import OpenAITestServer  # noqa: E402

from motionsight.mllm import GenerationOptions  # noqa: E402
from motionsight.mllm import openai_backend as backend_module  # noqa: E402
from motionsight.mllm.base import Prompt  # noqa: E402


class _NoDeadline:
    """The baseline: no timer, no socket watch (only the per-call budget arithmetic)."""

    expired = False

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.001, self.end - time.monotonic())

    def attach(self, sock):  # noqa: ANN001, ANN201
        return sock

    def cancel(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    real = backend_module._Deadline
    prompt, options = Prompt(("What moves?",)), GenerationOptions()
    times: dict[str, list[float]] = {"deadline": [], "no deadline": []}
    with OpenAITestServer() as server:
        backend = backend_module.OpenAIMLLM(server.base_url, "m", timeout=5)
        try:
            for _ in range(args.runs):
                for name, cls in (("deadline", real), ("no deadline", _NoDeadline)):
                    backend_module._Deadline = cls
                    started = time.perf_counter()
                    for _ in range(args.requests):
                        backend.generate(prompt, options)
                    times[name].append((time.perf_counter() - started) / args.requests * 1e3)
        finally:
            backend_module._Deadline = real
    for name, values in times.items():
        print(f"{name:12s} {statistics.median(values):.3f} ms per request (median of {args.runs})")


if __name__ == "__main__":
    main()
