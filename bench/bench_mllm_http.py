"""Questions per minute through the OpenAI-compatible backend at concurrency 1, 4 and 16.

A loopback server (tests/openai_server.py, real HTTP) answers every request after a fixed
artificial latency (default 200 ms), standing in for a model server. Each question is a full
MotionSight final prompt: 16 labelled frames (JPEG-encoded and base64'd by the client per
request) plus the text. The baseline is concurrency 1, measured in the same process; the
ratios show how well the backend's concurrency limit overlaps server latency (target: >= 10x
from 1 to 16).

    .venv/bin/python bench/bench_mllm_http.py [--latency 0.2] [--questions 32] [--size 360x420]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the loopback server lives with the tests

from openai_server import OpenAITestServer  # noqa: E402

from motionsight.mllm import GenerationOptions, Stream  # noqa: E402
from motionsight.mllm.openai_backend import OpenAIMLLM  # noqa: E402


def questions_per_minute(
    server: OpenAITestServer,
    concurrency: int,
    questions: list[torch.Tensor],
    timestamps: list[float],
) -> tuple[float, float, float]:
    """(questions per minute, seconds, CPU ms per question of this process) for answering every question with `concurrency` in flight."""
    backend = OpenAIMLLM(server.base_url, "bench-model", concurrency=concurrency, max_retries=0)
    options = GenerationOptions(max_new_tokens=1)

    def one(frames: torch.Tensor) -> str:
        return backend.ask(
            [Stream("spotlight", frames)], "What does the man do?", options, timestamps
        ).text

    started, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        answers = list(pool.map(one, questions))
    seconds = time.perf_counter() - started
    cpu_ms = 1000 * (time.process_time() - cpu) / len(questions)
    assert answers == ["A"] * len(questions)
    return 60.0 * len(questions) / seconds, seconds, cpu_ms


def sample_clip_frames(num_frames: int, max_side: int) -> list[torch.Tensor]:
    """The 16 sampled frames of each real sample clip (../shared/videos), if present."""
    from motionsight.video import Sampling, VideoClip, open_video

    folder = ROOT.parent / "shared" / "videos"
    clips = []
    for path in sorted(folder.glob("*.mp4")):
        source = open_video(path)
        clip = VideoClip(source, Sampling.segments(source.info, num_frames), max_side)
        clips.append(clip.frames())
    return clips


def synthetic_frames(num_frames: int, height: int, width: int, seed: int) -> torch.Tensor:
    """Smooth moving gradients (JPEG sizes like real footage; noise would be 10x larger)."""
    y = torch.linspace(0, 1, height)[:, None, None]
    x = torch.linspace(0, 1, width)[None, :, None]
    shift = torch.arange(num_frames)[:, None, None, None] / num_frames
    phase = torch.tensor([0.0, 2.0, 4.0]) + seed
    return (0.5 + 0.5 * torch.sin(6.28 * (x + y + shift) + phase)).expand(-1, height, width, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.2, help="server latency per request (s)")
    parser.add_argument("--questions", type=int, default=64, help="questions per concurrency level")
    parser.add_argument("--frames", type=int, default=16, help="frames per question")
    parser.add_argument(
        "--size",
        default="360x640",
        help="frame HxW of synthetic frames; the "
        "longer side bounds sample-clip frames (the backend then fits max_pixels)",
    )
    parser.add_argument("--levels", default="1,4,16", help="concurrency levels")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))
    levels = [int(v) for v in args.levels.split(",")]
    clips = sample_clip_frames(args.frames, max(height, width))
    what = f"sample clips ({len(clips)})" if clips else "synthetic frames"
    clips = clips or [synthetic_frames(args.frames, height, width, seed) for seed in range(4)]
    # the backend caches nothing: every question is resized, JPEG-encoded and sent in full
    questions = [clips[i % len(clips)] for i in range(args.questions)]
    timestamps = [0.2 + 0.4 * i for i in range(args.frames)]
    with OpenAITestServer(latency=args.latency, parse_bodies=False) as server:
        questions_per_minute(server, 1, questions[:2], timestamps)  # warm up
        server.requests.clear()
        print(
            f"{args.questions} questions x {args.frames} frames from {what}, "
            f"server latency {args.latency * 1000:.0f} ms"
        )
        print(
            f"{'concurrency':>11} {'q/min':>9} {'seconds':>8} {'vs 1':>7} {'max in flight':>14} "
            f"{'cpu ms/q':>9}"
        )
        baseline = None
        for level in levels:
            server.max_in_flight = 0
            qpm, seconds, cpu_ms = questions_per_minute(server, level, questions, timestamps)
            baseline = baseline or qpm
            print(
                f"{level:>11} {qpm:>9.1f} {seconds:>8.2f} {qpm / baseline:>6.1f}x {server.max_in_flight:>14} {cpu_ms:>9.1f}"
            )
        ideal = 60.0 / args.latency
        print(
            f"(ideal at concurrency 1: {ideal:.0f} q/min. Each question costs the client the CPU "
            f"above (JPEG/base64/JSON of {args.frames} frames); once concurrency x that exceeds "
            f"the cores x latency ({os.cpu_count()} cores), the client's CPU is the limit.)"
        )


if __name__ == "__main__":
    main()
