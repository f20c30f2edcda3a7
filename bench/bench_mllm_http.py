"""Questions per minute through the OpenAI-compatible backend at concurrency 1, 4 and 16.

A loopback server (tests/openai_server.py, real HTTP) answers every request after a fixed
artificial latency (default 200 ms), standing in for a model server. Each question is one
`OpenAIMLLM.generate` call with a MotionSight final prompt of 16 labelled 360x420 frames
(the default max_pixels, so no resize), JPEG-encoded and base64'd by the client on every call
(nothing is cached). Frames come from the real sample clips (../shared/videos) when present,
else from smooth synthetic gradients. A thread pool of `concurrency` workers calls one backend
built with the same `concurrency`. The baseline is concurrency 1, measured in the same
process; the ratio 16 vs 1 shows how well the backend overlaps server latency (target >= 10x).

    .venv/bin/python bench/bench_mllm_http.py [--latency 0.2] [--questions 64] [--levels 1,4,16]
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

from motionsight.mllm import GenerationOptions, Stream, final_prompt  # noqa: E402
from motionsight.mllm.base import Prompt  # noqa: E402
from motionsight.mllm.openai_backend import OpenAIMLLM  # noqa: E402


def run_level(
    server: OpenAITestServer, concurrency: int, prompts: list[Prompt]
) -> tuple[float, float, float, int]:
    """Answer every prompt with `concurrency` in flight -> (questions/min, seconds, client CPU
    ms per question, most requests the server saw at once)."""
    backend = OpenAIMLLM(server.base_url, "bench-model", concurrency=concurrency, max_retries=0)
    options = GenerationOptions(max_new_tokens=1)
    server.max_in_flight = 0
    started, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        answers = [a.text for a in pool.map(lambda p: backend.generate(p, options), prompts)]
    seconds = time.perf_counter() - started
    cpu_ms = 1000 * (time.process_time() - cpu) / len(prompts)
    assert answers == ["A"] * len(prompts), "the server's answers did not come back"
    return 60.0 * len(prompts) / seconds, seconds, cpu_ms, server.max_in_flight


def sample_clip_frames(num_frames: int, height: int, width: int) -> list[torch.Tensor]:
    """`num_frames` frames `[N, height, width, 3]` of each real sample clip, if present."""
    from motionsight.video import Sampling, VideoClip, open_video

    clips = []
    for path in sorted((ROOT.parent / "shared" / "videos").glob("*.mp4")):
        source = open_video(path)
        frames = VideoClip(source, Sampling.segments(source.info, num_frames), 640).frames()
        chw = frames.permute(0, 3, 1, 2)  # bench setup: stretch to the asked size once
        clips.append(
            torch.nn.functional.interpolate(chw, size=(height, width), mode="area")
            .permute(0, 2, 3, 1)
            .contiguous()
        )
    return clips


def synthetic_frames(num_frames: int, height: int, width: int, seed: int) -> torch.Tensor:
    """Smooth moving gradients (JPEG sizes like real footage; noise would be 10x larger)."""
    y = torch.linspace(0, 1, height)[:, None, None]
    x = torch.linspace(0, 1, width)[None, :, None]
    shift = torch.arange(num_frames)[:, None, None, None] / num_frames
    phase = torch.tensor([0.0, 2.0, 4.0]) + seed
    frames = 0.5 + 0.5 * torch.sin(6.28 * (x + y + shift) + phase)
    return frames.expand(-1, height, width, 3).contiguous()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.2, help="server latency per request (s)")
    parser.add_argument("--questions", type=int, default=64, help="questions per concurrency level")
    parser.add_argument("--frames", type=int, default=16, help="frames per question")
    parser.add_argument("--size", default="360x420", help="frame HxW")
    parser.add_argument("--levels", default="1,4,16", help="concurrency levels")
    parser.add_argument("--synthetic", action="store_true", help="ignore the sample clips")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))
    levels = [int(v) for v in args.levels.split(",")]
    clips = [] if args.synthetic else sample_clip_frames(args.frames, height, width)
    what = f"{len(clips)} sample clips" if clips else "synthetic frames"
    clips = clips or [synthetic_frames(args.frames, height, width, seed) for seed in range(4)]
    timestamps = [0.2 + 0.4 * i for i in range(args.frames)]
    prompts = [
        final_prompt("What does the man do?", [Stream("spotlight", clip)], timestamps)
        for clip in clips
    ]
    questions = [prompts[i % len(prompts)] for i in range(args.questions)]
    print(
        f"{args.questions} questions x {args.frames} frames {height}x{width} from {what}, "
        f"server latency {args.latency * 1000:.0f} ms, {os.cpu_count()} CPU cores"
    )
    print(
        f"{'concurrency':>11} {'q/min':>9} {'seconds':>8} {'vs 1':>7} {'max in flight':>14} "
        f"{'cpu ms/q':>9}"
    )
    with OpenAITestServer(latency=args.latency, parse_bodies=False) as server:
        run_level(server, 2, questions[:4])  # warm up (imports, first connections)
        rates = {}
        for level in levels:
            qpm, seconds, cpu_ms, in_flight = run_level(server, level, questions)
            rates[level] = qpm
            print(
                f"{level:>11} {qpm:>9.1f} {seconds:>8.2f} {qpm / rates[levels[0]]:>6.1f}x "
                f"{in_flight:>14} {cpu_ms:>9.1f}"
            )
    first, last = levels[0], levels[-1]
    print(
        f"ratio concurrency {last} vs {first}: {rates[last] / rates[first]:.1f}x "
        f"(target >= 10x; ideal {last / first:.0f}x, {60 / args.latency:.0f} q/min per request "
        f"in flight). Each question costs the client the CPU above (JPEG, base64, JSON of "
        f"{args.frames} frames): once that CPU x concurrency exceeds cores x latency, the "
        f"client's CPU is the limit, not the backend."
    )


if __name__ == "__main__":
    main()
