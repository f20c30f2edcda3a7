"""Run benchmark questions through an answer function, durably, on threads or a Ray cluster.

The per-question work is pluggable: an *answer factory* is called once per worker (thread or
Ray actor) and returns ``answer(question) -> str``. A long-lived worker therefore keeps its model
(or workflow executor) loaded across questions. The driver alone scores and writes results, one
line per finished question, as they complete.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .benchmarks import BenchmarkQuestion
from .results import ResultRecord, ResultsFileError, ResultsStore
from .scoring import ScoreTable, compute_table, format_table, save_table, score_output

__all__ = [
    "CONFIG_KEYS",
    "EXECUTORS",
    "AnswerFactory",
    "AnswerFn",
    "EvalReport",
    "Outcome",
    "answer_question",
    "check_configuration",
    "execute",
    "make_record",
    "run_eval",
]

AnswerFn = Callable[[BenchmarkQuestion], str]
AnswerFactory = Callable[[], AnswerFn]
EXECUTORS = ("local", "ray")


@dataclass
class Outcome:
    """What a worker sends back for one question (scoring happens on the driver)."""

    uid: str
    output: str | None
    error: str | None
    time_s: float
    info: dict | None = None  # per-question provenance (route, action objects, prompt hash)


@dataclass
class EvalReport:
    """The result of :func:`run_eval`."""

    table: ScoreTable
    results_path: Path
    summary_paths: tuple[Path, Path]
    ran: int
    skipped: int
    failed: int
    wall_s: float
    records: dict[str, ResultRecord] = field(repr=False, default_factory=dict)


def answer_question(answer: AnswerFn, question: BenchmarkQuestion) -> Outcome:
    """Call ``answer`` on one question, timing it; any exception becomes the recorded error.

    A missing video is reported here, per question, without calling the model.
    """
    start = time.perf_counter()
    if not question.video_exists:
        return Outcome(question.uid, None, f"video file not found: {question.video}", 0.0)
    info = None
    try:
        output = answer(question)
        if isinstance(output, tuple) and len(output) == 2 and isinstance(output[1], dict):
            output, info = output  # (text, how it was produced)
        if not isinstance(output, str):
            raise TypeError(f"answer function returned {type(output).__name__}, expected str")
        error = None
    except Exception as exc:  # noqa: BLE001 -- recorded; the run goes on
        output, error = None, f"{type(exc).__name__}: {exc}"
    return Outcome(question.uid, output, error, time.perf_counter() - start, info)


def make_record(
    question: BenchmarkQuestion, outcome: Outcome, provenance: Mapping[str, Any] | None = None
) -> ResultRecord:
    """Score an outcome into the line that goes to the results file; ``provenance`` (the
    run's) and the outcome's per-question ``info`` become the record's provenance."""
    if outcome.error is None:
        parsed, correct = score_output(question, outcome.output)
    else:
        parsed, correct = None, False
    return ResultRecord(
        uid=question.uid,
        benchmark=question.benchmark,
        category=question.category,
        question=question.raw_question,
        prompt=question.question,
        video=question.video,
        answer=question.answer,
        output=outcome.output,
        parsed=parsed,
        correct=correct,
        time_s=round(outcome.time_s, 4),
        error=outcome.error,
        options=list(question.options),
        finished_at=round(time.time(), 3),
        provenance={**(provenance or {}), **(outcome.info or {})},
    )


CONFIG_KEYS = ("model", "backend", "base_url", "workflow_hash", "settings_hash", "answerer")


def check_configuration(
    records: Iterable[Any], provenance: Mapping[str, Any], out: str | Path
) -> None:
    """Refuse to resume ``out`` when its records were made with another configuration.

    Raises:
        ResultsFileError: names the first differing record and each differing key
            (old -> new), and the way out (another --out, or --allow-mixed).
    """
    for record in records:
        old = getattr(record, "provenance", None)
        if old is None and isinstance(record, Mapping):
            old = record.get("provenance")
        old = old or {}
        if not old:
            raise ResultsFileError(
                f"{out} holds results without provenance (made before it was recorded, e.g. "
                f"{record.uid}); choose another --out, or pass --allow-mixed to add to it"
            )
        differ = [k for k in CONFIG_KEYS if old.get(k) != provenance.get(k)]
        if differ:
            shown = "; ".join(f"{k}: {old.get(k)!r} -> {provenance.get(k)!r}" for k in differ)
            raise ResultsFileError(
                f"{out} was made with another configuration ({shown}; first: {record.uid}); "
                "choose another --out, or pass --allow-mixed to mix them"
            )


# -- executors ----------------------------------------------------------------------------------
Emit = Callable[[BenchmarkQuestion, Outcome], None]


def _run_inline(pending: Sequence[BenchmarkQuestion], factory: AnswerFactory, emit: Emit) -> None:
    answer = factory()
    for question in pending:
        emit(question, answer_question(answer, question))


def _run_threads(
    pending: Sequence[BenchmarkQuestion], factory: AnswerFactory, emit: Emit, concurrency: int
) -> None:
    local = threading.local()  # one answer function (one workflow executor) per thread

    def work(question: BenchmarkQuestion) -> Outcome:
        answer = getattr(local, "answer", None)
        if answer is None:
            answer = local.answer = factory()
        return answer_question(answer, question)

    queue: Iterator[BenchmarkQuestion] = iter(pending)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="motionsight-eval")
    try:
        # A bounded window: a kill loses at most these, and memory stays flat on big runs.
        inflight = {}
        for question in queue:
            inflight[pool.submit(work, question)] = question
            if len(inflight) >= 2 * concurrency:
                break
        while inflight:
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for future in done:
                question = inflight.pop(future)
                emit(question, future.result())
                nxt = next(queue, None)
                if nxt is not None:
                    inflight[pool.submit(work, nxt)] = nxt
    finally:
        # On an error or Ctrl-C, queued questions are dropped (not run, not written).
        pool.shutdown(wait=True, cancel_futures=True)


class _RayWorker:
    """Body of a Ray actor: builds its answer function once, then answers questions."""

    def __init__(self, factory: AnswerFactory) -> None:
        self._answer = factory()

    def answer(self, question: BenchmarkQuestion) -> Outcome:
        return answer_question(self._answer, question)


def _import_ray():  # noqa: ANN202 -- the ray module
    try:
        import ray
    except ImportError:
        raise RuntimeError(
            "--executor ray needs Ray, which is not installed: pip install 'motionsight[ray]' "
            "(or pip install 'ray[default]')"
        ) from None
    return ray


def _run_ray(
    pending: Sequence[BenchmarkQuestion],
    factory: AnswerFactory,
    emit: Emit,
    *,
    concurrency: int | None,
    address: str | None,
    gpus_per_worker: float | None,
    cpus_per_worker: float,
    init_kwargs: dict | None,
) -> None:
    ray = _import_ray()
    started_here = False
    if not ray.is_initialized():
        kwargs = {"include_dashboard": False, "log_to_driver": True, **(init_kwargs or {})}
        ray.init(address=address, **kwargs)
        started_here = True
    actors: list = []
    try:
        resources = ray.cluster_resources()
        gpus = float(resources.get("GPU", 0.0))
        if gpus_per_worker is None:  # one model per GPU when there are GPUs
            gpus_per_worker = 1.0 if gpus >= 1 else 0.0
        if concurrency is None:
            if gpus_per_worker > 0:
                concurrency = max(1, int(gpus // gpus_per_worker))
            else:
                concurrency = max(
                    1, int(float(resources.get("CPU", 1.0)) // max(cpus_per_worker, 1e-6))
                )
        concurrency = max(1, min(concurrency, len(pending)))
        actor_cls = ray.remote(_RayWorker).options(
            num_cpus=cpus_per_worker, num_gpus=gpus_per_worker, max_restarts=1
        )
        actors = [actor_cls.remote(factory) for _ in range(concurrency)]
        queue: Iterator[BenchmarkQuestion] = iter(pending)
        inflight: dict = {}  # object ref -> (actor index, question)
        strikes = [0] * len(actors)  # consecutive actor deaths

        def submit(index: int) -> None:
            question = next(queue, None)
            if question is not None:
                inflight[actors[index].answer.remote(question)] = (index, question)

        for index in range(len(actors)):  # two per actor: the next is queued while one runs
            submit(index)
            submit(index)
        while inflight:
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=1.0)
            for ref in ready:
                index, question = inflight.pop(ref)
                try:
                    outcome = ray.get(ref)
                    strikes[index] = 0
                except ray.exceptions.RayError as exc:  # actor died or could not start
                    strikes[index] += 1
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    outcome = Outcome(question.uid, None, f"{type(exc).__name__}: {first}", 0.0)
                emit(question, outcome)
                if strikes[index] < 3:
                    submit(index)
        leftover = list(queue)
        if leftover:
            raise RuntimeError(
                f"all Ray workers failed; {len(leftover)} questions were not run "
                "(see the errors recorded in the results file)"
            )
    finally:
        for actor in actors:
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001 -- already gone
                pass
        if started_here:
            ray.shutdown()


def execute(
    pending: Sequence[Any],
    factory: Callable[[], Callable[[Any], str]],
    emit: Callable[[Any, Outcome], None],
    *,
    executor: str = "local",
    concurrency: int | None = None,
    ray_address: str | None = None,
    ray_init_kwargs: dict | None = None,
    gpus_per_worker: float | None = None,
    cpus_per_worker: float = 1.0,
) -> None:
    """Run ``factory()``'s function over ``pending`` jobs on the chosen executor, calling
    ``emit(job, outcome)`` on the driver as each finishes (the caller writes it durably).

    A job needs ``uid``, ``video`` and ``video_exists`` (a :class:`BenchmarkQuestion`, or the
    dataset's clip jobs); the function returns text. Same executors as :func:`run_eval`.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    if not pending:
        return
    if executor == "ray":
        _run_ray(
            pending,
            factory,
            emit,
            concurrency=concurrency,
            address=ray_address,
            gpus_per_worker=gpus_per_worker,
            cpus_per_worker=cpus_per_worker,
            init_kwargs=ray_init_kwargs,
        )
    elif (concurrency or 1) == 1:
        _run_inline(pending, factory, emit)
    else:
        _run_threads(pending, factory, emit, concurrency or 1)


def run_eval(
    questions: Sequence[BenchmarkQuestion],
    answer_factory: AnswerFactory,
    out: str | Path,
    *,
    executor: str = "local",
    concurrency: int | None = None,
    retry_failed: bool = False,
    ray_address: str | None = None,
    ray_init_kwargs: dict | None = None,
    gpus_per_worker: float | None = None,
    cpus_per_worker: float = 1.0,
    progress: bool | None = None,
    fsync_interval: float = 1.0,
    title: str | None = None,
    print_table: bool = True,
    abort_after: int | None = 20,
    provenance: Mapping[str, Any] | None = None,
    allow_mixed: bool = False,
) -> EvalReport:
    """Answer every question not yet finished in ``out``, write results, score, save the table.

    Args:
        questions: the (filtered) benchmark questions; their uids must be unique.
        answer_factory: called once per worker; returns ``answer(question) -> str``. For Ray it
            is pickled to the actors (use a module-level class or ``functools.partial``).
        out: the JSONL results file; existing finished questions are skipped (resume).
        executor: ``"local"`` (threads; ``concurrency`` 1 runs inline) or ``"ray"``.
        concurrency: local threads (default 1) or Ray actors (default: one per GPU, else
            one per ``cpus_per_worker`` CPUs of the cluster).
        retry_failed: also run the questions whose recorded result is an error.
        ray_address: passed to ``ray.init`` (``None``: ``RAY_ADDRESS`` or a new local instance).
        ray_init_kwargs: extra ``ray.init`` arguments (e.g. ``{"num_cpus": 2}``).
        gpus_per_worker: GPUs per Ray actor (default 1 when the cluster has GPUs, else 0).
        progress: show a tqdm bar on stderr (``None``: only when stderr is a terminal).
        fsync_interval: seconds between ``fsync`` calls (0: after every line).
        title: heading of the saved table.
        print_table: print the table to stdout at the end.
        abort_after: stop (``RuntimeError``) when the first this-many questions of the run all
            failed -- a broken workflow or backend, not bad luck (``None``: never). The failures
            stay recorded; fix the cause and re-run with ``retry_failed``.
        provenance: what produces the answers (model, backend, workflow hash, settings...),
            stored in every record. Resuming a file whose records name another configuration
            (:data:`CONFIG_KEYS`) raises ``ResultsFileError`` unless ``allow_mixed``.

    Returns:
        An :class:`EvalReport` with the table over all ``questions`` (missing = wrong).
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    if concurrency is not None and concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    uids = [q.uid for q in questions]
    if len(set(uids)) != len(uids):
        raise ValueError("question uids are not unique")
    out = Path(out)
    t0 = time.perf_counter()
    with ResultsStore(out, fsync_interval=fsync_interval) as store:
        if questions:
            others = {r.benchmark for r in store.records.values()} - {questions[0].benchmark}
            if others:
                raise ResultsFileError(
                    f"{out} holds {', '.join(sorted(others))} results, not "
                    f"{questions[0].benchmark}; choose another --out"
                )
        if provenance is not None and not allow_mixed:
            check_configuration(store.records.values(), provenance, out)
        pending = [
            q
            for q in questions
            if q.uid not in store.records or (retry_failed and not store.records[q.uid].ok)
        ]
        skipped = len(questions) - len(pending)
        counters = {"ran": 0, "failed": 0, "correct": 0}
        bar = _progress_bar(len(questions), skipped, progress)

        def emit(question: BenchmarkQuestion, outcome: Outcome) -> None:
            record = make_record(question, outcome, provenance)
            store.append(record)
            counters["ran"] += 1
            counters["failed"] += not record.ok
            counters["correct"] += record.correct
            if abort_after and counters["ran"] == abort_after == counters["failed"]:
                raise RuntimeError(
                    f"the first {abort_after} questions all failed (last: {record.uid}: "
                    f"{record.error}); fix the cause and re-run with --retry-failed"
                )
            if bar is not None:
                bar.update(1)
                bar.set_postfix(
                    acc=f"{counters['correct'] / counters['ran']:.1%}",
                    failed=counters["failed"],
                    refresh=False,
                )

        try:
            execute(
                pending,
                answer_factory,
                emit,
                executor=executor,
                concurrency=concurrency,
                ray_address=ray_address,
                ray_init_kwargs=ray_init_kwargs,
                gpus_per_worker=gpus_per_worker,
                cpus_per_worker=cpus_per_worker,
            )
        finally:
            if bar is not None:
                bar.close()
        records = dict(store.records)
    table = compute_table(questions, records, questions[0].benchmark if questions else "unknown")
    paths = save_table(table, out, title)
    if print_table:
        print(format_table(table, title), flush=True)
    return EvalReport(
        table=table,
        results_path=out,
        summary_paths=paths,
        ran=counters["ran"],
        skipped=skipped,
        failed=counters["failed"],
        wall_s=time.perf_counter() - t0,
        records=records,
    )


def _progress_bar(total: int, initial: int, progress: bool | None):  # noqa: ANN202 -- tqdm | None
    if progress is False:
        return None
    if progress is None and not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    # tqdm shows the rate (questions/s) and the ETA of the remaining questions.
    return tqdm(total=total, initial=initial, unit="q", file=sys.stderr, dynamic_ncols=True,
                desc="eval", smoothing=0.1)  # fmt: skip
