"""Throughput of `motionsight eval` against a loopback OpenAI-compatible server with fixed latency.

Measured side by side in this process:

* baseline: the answer function called in a plain loop (the backend's own time: latency + HTTP);
* the harness (``run_eval``) with the local executor, 1 thread: the difference to the baseline,
  per question, is the harness's own overhead (scoring, one JSON line, progress) -- target
  under 50 ms;
* the local executor with N threads, and the Ray executor with N actors (a local Ray instance;
  ``ray.init`` is excluded, actor start-up included), as questions per minute and as a ratio to
  the baseline.

    .venv/bin/python bench/bench_eval.py [--questions 120] [--latency 0.05] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from pathlib import Path

from motionsight.engine.cli_eval import WorkflowAnswerer
from motionsight.evaluation.benchmarks import BenchmarkQuestion
from motionsight.evaluation.runner import run_eval
from motionsight.mllm.base import GenerationOptions, Prompt
from motionsight.mllm.openai_backend import OpenAIMLLM

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the loopback server lives with the tests
from openai_server import OpenAITestServer, content_text  # noqa: E402

OPTIONS = GenerationOptions(max_new_tokens=8)
WORKFLOW = ROOT / "workflows" / "Ask about motion - auto routed.json"
CLIP = ROOT.parent / "shared" / "videos" / "desert_train.mp4"

LETTERS = "ABCD"


class DirectAnswerer:
    """The real OpenAI-compatible backend asked the question as text (one client per worker)."""

    def __init__(self, base_url: str) -> None:
        self.model = OpenAIMLLM(base_url, "bench-model", max_retries=0)

    def __call__(self, question: BenchmarkQuestion) -> str:
        return self.model.generate(Prompt((question.question,)), OPTIONS).text


def _reply(body: dict) -> str:
    if "action_objects" in content_text(body):  # the object branch's first request
        return json.dumps({"action_objects": ["train"]})
    return "(A)"


def make_questions(n: int, video: str) -> list[BenchmarkQuestion]:
    return [
        BenchmarkQuestion(
            uid=f"q{i}",
            benchmark="motionbench",
            category=["Camera Motion", "Action Order", "Motion Recognition"][i % 3],
            question=f"Question {i}?\n(A) a\n(B) b\n(C) c\n(D) d",
            video=video,
            answer=LETTERS[i % 4],
            options=("a", "b", "c", "d"),
            raw_question=f"Q{i}",
        )  # fmt: skip
        for i in range(n)
    ]


def _timed_loop(answer, qs: list[BenchmarkQuestion]) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    for q in qs:
        answer(q)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.05, help="server latency (s)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workflow-questions", type=int, default=10,
                        help="questions through the MotionSight workflow (0: skip)")  # fmt: skip
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()

    server = OpenAITestServer(latency=args.latency, responder=_reply).start()
    tmp = Path(tempfile.mkdtemp(prefix="bench_eval_"))
    video = CLIP if CLIP.exists() else tmp / "clip.mp4"
    if not video.exists():
        video.write_bytes(b"\0")  # the harness checks the file exists; the server ignores it
    qs = make_questions(args.questions, str(video))
    n = len(qs)
    rows: list[tuple[str, int, float, float]] = []  # name, questions, wall, steady-state q/min

    answer = DirectAnswerer(server.base_url)
    answer(qs[0])  # warm up
    base = _timed_loop(answer, qs)
    rows.append(("baseline: backend called in a loop", n, base, 60 * n / base))
    factory = functools.partial(DirectAnswerer, server.base_url)

    def harness(name: str, questions: list, fac, **kw: object) -> float:  # noqa: ANN001
        t = time.perf_counter()
        out = tmp / f"{len(rows)}.jsonl"
        report = run_eval(questions, fac, out, print_table=False, progress=False, **kw)
        wall = time.perf_counter() - t
        assert report.ran == len(questions) and report.failed == 0, report.records
        # steady state: first to last finished question (excludes worker start-up)
        done = sorted(r.finished_at for r in report.records.values())
        steady = 60 * (len(questions) - 1) / max(done[-1] - done[0], 1e-9)
        rows.append((name, len(questions), wall, steady))
        return wall

    h1 = harness("local, 1 thread (fsync every 1 s)", qs, factory, concurrency=1)
    h1s = harness(
        "local, 1 thread (fsync every line)", qs, factory, concurrency=1, fsync_interval=0
    )
    harness(f"local, {args.concurrency} threads", qs, factory, concurrency=args.concurrency)
    if not args.no_ray:
        try:
            import ray
        except ImportError:
            print("ray not installed: skipping the Ray rows", file=sys.stderr)
        else:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            try:
                for actors in (2, args.concurrency):
                    harness(f"ray, {actors} actors (start-up included)", qs, factory,
                            executor="ray", concurrency=actors, cpus_per_worker=2 / actors)  # fmt: skip
            finally:
                ray.shutdown()

    wf_rows = None
    if args.workflow_questions and CLIP.exists():
        wq = [BenchmarkQuestion(**{**q.__dict__, "category": "Camera Motion"})
              for q in qs[: args.workflow_questions]]  # fmt: skip
        sets = {"MotionSightLoadVideo.max_side": "128", "MotionSightLoadMLLM.backend": "openai",
                "MotionSightLoadMLLM.base_url": server.base_url,
                "MotionSightLoadMLLM.model": "bench-model"}  # fmt: skip
        wf_factory = functools.partial(WorkflowAnswerer, str(WORKFLOW), sets)
        wf = wf_factory()
        wf(wq[0])  # warm up: loads the workflow, decodes the clip once (cached after)
        wf_base = _timed_loop(wf, wq)
        rows.append(
            ("workflow baseline: answerer in a loop", len(wq), wf_base, 60 * len(wq) / wf_base)
        )
        before = len(rows)
        harness("workflow: local, 1 thread", wq, lambda: wf, concurrency=1)
        wf_rows = (wf_base, rows[before][2], len(wq))
    server.close()

    print(f"{n} questions, server latency {1000 * args.latency:.0f} ms (loopback HTTP)\n")
    print(f"{'run':44s} {'n':>4s} {'wall s':>7s} {'q/min':>7s} {'steady q/min':>13s}")
    for name, count, wall, steady in rows:
        print(f"{name:44s} {count:4d} {wall:7.2f} {60 * count / wall:7.0f} {steady:13.0f}")
    print(f"\nbackend time per question (baseline): {1000 * base / n:.1f} ms")
    print(
        f"harness overhead per question, fsync 1 s:      {1000 * (h1 - base) / n:+.2f} ms (target < 50)"
    )
    print(f"harness overhead per question, fsync per line: {1000 * (h1s - base) / n:+.2f} ms")
    if wf_rows:
        wf_base, wf_h, count = wf_rows
        print(f"workflow path: {1000 * wf_base / count:.0f} ms per question (video cached), harness "
              f"overhead {1000 * (wf_h - wf_base) / count:+.2f} ms per question")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
