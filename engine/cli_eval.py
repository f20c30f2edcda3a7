"""`motionsight eval` and `motionsight export`: benchmark runs of a workflow, and training data.

    motionsight eval --benchmark motionbench --questions video_info.meta.jsonl \\
        --videos MotionBench/ --workflow "workflows/Ask about motion - auto routed.json" --out run.jsonl
    motionsight eval --compare baseline.jsonl motionsight.jsonl
    motionsight export --results run.jsonl --format sft --out sft.json

Each question enters the workflow through overrides: the video into ``MotionSightLoadVideo``,
the question text and its category (the routing label, overridable) into
``MotionSightQuestion``; the answer is the text of the output node (``MotionSightAsk``).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..evaluation.benchmarks import BENCHMARKS, BenchmarkQuestion, load_benchmark
from ..evaluation.export import EXPORT_FORMATS, export_results
from ..evaluation.results import load_results
from ..evaluation.runner import EXECUTORS, run_eval
from ..evaluation.scoring import compare_tables, compute_table
from .cli import CliError, guard
from .errors import WorkflowError

__all__ = ["WorkflowAnswerer", "main", "parse_label_overrides", "parse_sets", "register"]

VIDEO_INPUT = "MotionSightLoadVideo.video"
QUESTION_INPUT = "MotionSightQuestion.question"
LABEL_INPUT = "MotionSightQuestion.label"
ANSWER_CLASS = "MotionSightAsk"
EXTRACT_CLASS = "MotionSightExtractActionObjects"
LOADER_CLASS = "MotionSightLoadMLLM"


# -- argument helpers --------------------------------------------------------------------------
def parse_sets(items: Sequence[str] | None) -> dict[str, str]:
    """``["node.input=value", ...]`` -> overrides (text: the engine converts it to the input's type)."""
    overrides: dict[str, str] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        node, dot, name = key.strip().rpartition(".")
        if not sep or not dot or not node or not name:
            raise CliError(f"--set {item!r}: expected NODE.INPUT=VALUE")
        overrides[key.strip()] = raw
    return overrides


def parse_label_overrides(items: Sequence[str] | None) -> tuple[str | None, dict[str, str]]:
    """``--label-override`` values: ``LABEL`` (all questions) or ``CATEGORY=LABEL``.

    Returns ``(label for all or None, {category: label})``.
    """
    default: str | None = None
    per_category: dict[str, str] = {}
    for item in items or ():
        category, sep, label = item.partition("=")
        if sep:
            if not category.strip():
                raise CliError(f"--label-override {item!r}: empty category")
            per_category[category.strip()] = label.strip()
        else:
            default = item.strip()
    return default, per_category


def _split_categories(values: Sequence[str] | None) -> list[str] | None:
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


# -- the workflow answer function ----------------------------------------------------------------
class WorkflowAnswerer:
    """``answer(question) -> str`` running a workflow file with per-question overrides.

    One instance per worker (thread or Ray actor): it owns one engine ``Executor``, whose node
    cache keeps the model loaded across questions. Picklable before first use (for Ray).

    Args:
        workflow: path of a workflow JSON (UI or API format) or the loaded dict.
        sets: fixed overrides applied to every question (``--set``).
        label: routing label for every question (``None``: the question's category).
        labels: per-category routing labels, ``{category: label}``.
        output_node: id or title of the node whose ``ui["text"]`` is the answer (default: the
            ``MotionSightAsk`` node, or the only output node with text).
    """

    def __init__(
        self,
        workflow: str | Path | Mapping[str, Any],
        sets: Mapping[str, object] | None = None,
        label: str | None = None,
        labels: Mapping[str, str] | None = None,
        output_node: str | None = None,
    ) -> None:
        self.workflow = workflow if isinstance(workflow, Mapping) else str(workflow)
        self.sets = dict(sets or {})
        self.label = label
        self.labels = dict(labels or {})
        self.output_node = output_node
        self._executor: Any = None
        self._prompt: dict | None = None
        self._answer_id: str | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.update(_executor=None, _prompt=None, _answer_id=None)  # each actor builds its own
        return state

    def label_for(self, question: BenchmarkQuestion) -> str:
        if question.category in self.labels:
            return self.labels[question.category]
        return self.label if self.label is not None else question.category

    def overrides(self, question: BenchmarkQuestion) -> dict[str, object]:
        return {
            **self.sets,
            VIDEO_INPUT: question.video,
            QUESTION_INPUT: question.question,
            LABEL_INPUT: self.label_for(question),
        }

    def _prepare(self) -> None:
        """Load the workflow once (API format) and find its answer node; build the executor."""
        from .executor import Executor
        from .run import default_node_classes
        from .workflow import load_workflow

        node_classes, names = default_node_classes()
        self._prompt = load_workflow(self.workflow, node_classes, display_names=names)
        self._answer_id = _answer_node(self._prompt, self.output_node)
        self._executor = Executor(node_classes, quiet=True)

    def __call__(self, question: BenchmarkQuestion) -> str:
        from .run import apply_overrides

        if self._executor is None:
            self._prepare()
        executor = self._executor
        prompt = apply_overrides(self._prompt, self.overrides(question), executor.node_classes)
        # Only the answer node and what feeds it: no preview/save nodes per question.
        extract = _upstream_of_class(self._prompt, self._answer_id, EXTRACT_CLASS)
        result = executor.run(prompt, output_nodes=[self._answer_id, *extract])
        output = result.output(self._answer_id)
        text = _answer_text(output)
        return text, _question_provenance(output, [result.output(n) for n in extract])

    def check(self, question: BenchmarkQuestion) -> None:
        """Validate the workflow with ``question``'s overrides, running nothing.

        Raises:
            WorkflowError: the workflow lacks the nodes/inputs the overrides name, or is invalid.
        """
        from .run import apply_overrides, default_node_classes
        from .validate import plan_prompt
        from .workflow import load_workflow

        node_classes, names = default_node_classes()
        prompt = load_workflow(self.workflow, node_classes, display_names=names)
        answer_id = _answer_node(prompt, self.output_node)
        prompt = apply_overrides(prompt, self.overrides(question), node_classes)
        plan_prompt(prompt, node_classes, output_nodes=[answer_id])


def _upstream_of_class(prompt: Mapping[str, Any], node_id: str, class_type: str) -> list[str]:
    """Ids of the ``class_type`` nodes that feed ``node_id`` (directly or not)."""
    seen: set[str] = set()
    stack = [node_id]
    while stack:
        current = stack.pop()
        for value in (prompt.get(current, {}).get("inputs") or {}).values():
            if isinstance(value, list) and len(value) == 2 and str(value[0]) in prompt:
                if str(value[0]) not in seen:
                    seen.add(str(value[0]))
                    stack.append(str(value[0]))
    return sorted(n for n in seen if prompt[n].get("class_type") == class_type)


def _json_info(output: Any, index: int = 1) -> dict:
    info = output.result[index] if len(output.result) > index else None
    info = info[0] if isinstance(info, list) and info else info
    try:
        data = json.loads(info) if isinstance(info, str) else None
    except json.JSONDecodeError:
        data = None
    return data if isinstance(data, dict) else {}


def _question_provenance(answer: Any, extracts: Sequence[Any]) -> dict[str, Any]:
    """Per question: the route, the streams shown, the action objects and the prompt's hash."""
    from ..dataset.records import text_hash

    info = _json_info(answer)
    prompt_text = info.get("prompt_text")
    route = info.get("route")
    camera = isinstance(route, dict) and route.get("branch") == "camera"
    objects = [] if camera else [o for e in extracts for o in _json_info(e).get("objects", [])]
    return {
        "route": route,
        "streams": info.get("streams"),
        "action_objects": objects or None,
        "prompt_hash": text_hash(prompt_text) if isinstance(prompt_text, str) else None,
        "answered_by": info.get("model"),
    }


def _hash(obj: Any) -> str:
    raw = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:16]


def run_provenance(
    workflow: Mapping[str, Any],
    workflow_file: str,
    sets: Mapping[str, object],
    label: str | None,
    labels: Mapping[str, str],
) -> dict[str, Any]:
    """What produces a run's answers: the workflow (file, hash), its MLLM (model, backend,
    base URL, decoding settings after ``--set``) and the labels. API keys are never read: only
    the *name* of their environment variable is in the workflow."""
    from .run import apply_overrides, default_node_classes
    from .workflow import load_workflow

    node_classes, names = default_node_classes()
    prompt = apply_overrides(load_workflow(workflow, node_classes, display_names=names), sets,
                             node_classes)  # fmt: skip
    loaders = [n["inputs"] for _, n in sorted(prompt.items()) if n.get("class_type") == LOADER_CLASS]
    mllm = {k: v for k, v in (loaders[0] if loaders else {}).items()
            if isinstance(v, (str, int, float, bool))}  # fmt: skip
    settings = {"sets": {k: str(v) for k, v in sets.items()}, "label": label,
                "labels": dict(labels), "mllm": mllm}  # fmt: skip
    return {
        "model": mllm.get("model") or None,
        "backend": mllm.get("backend"),
        "base_url": mllm.get("base_url") or None,
        "workflow": workflow_file,
        "workflow_hash": _hash(workflow),
        "settings": settings,
        "settings_hash": _hash(settings),
    }


def _answer_node(prompt: Mapping[str, Any], output_node: str | None) -> str:
    """Id of the node whose text is the answer: ``output_node`` (id/title/type) or the Ask node."""
    from .errors import ValidationError
    from .run import find_node

    if output_node is not None:
        return find_node(prompt, output_node)
    found = [n for n, node in prompt.items() if node.get("class_type") == ANSWER_CLASS]
    if len(found) != 1:
        raise WorkflowError(
            ValidationError(
                "invalid_prompt",
                f"the workflow has {len(found)} {ANSWER_CLASS} nodes ({', '.join(found) or 'none'}); "
                "name the answer node with --output-node",
            )
        )
    return found[0]


def _answer_text(output: Any) -> str:
    """The answer of an output node (``ui["text"]``); a dry run (no model set) is an error."""
    text = (output.ui or {}).get("text")
    if isinstance(text, (list, tuple)):
        text = "".join(str(t) for t in text)
    if not isinstance(text, str):
        raise RuntimeError(f"output node {output.node_id} gave no text (ui = {output.ui!r})")
    info = output.result[1] if len(output.result) > 1 else None
    info = info[0] if isinstance(info, list) and info else info
    if isinstance(info, str) and info.startswith("{"):
        try:
            dry = json.loads(info).get("dry_run", False)
        except (json.JSONDecodeError, AttributeError):
            dry = False
        if dry:
            raise RuntimeError(
                "the workflow's MLLM is not configured (dry run); set the model, e.g. "
                "--set MotionSightLoadMLLM.model=/path/to/model"
            )
    return text


def _load_factory(spec: str) -> Callable[[], Callable[[BenchmarkQuestion], str]]:
    """``module:callable`` (a factory returning ``answer(question) -> str``)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CliError(f"--answerer {spec!r}: expected MODULE:CALLABLE")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CliError(f"--answerer {spec!r}: cannot import {module_name}: {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise CliError(f"--answerer {spec!r}: {module_name} has no callable {attr!r}")
    return factory


# -- subcommands ---------------------------------------------------------------------------------
def _cmd_eval(args: argparse.Namespace) -> int:
    if args.compare:
        return _cmd_compare(args.compare)
    missing = [
        flag
        for flag, value in (
            ("--benchmark", args.benchmark),
            ("--questions", args.questions),
            ("--videos", args.videos),
            ("--out", args.out),
        )
        if value is None
    ]
    if args.workflow is None and args.answerer is None:
        missing.append("--workflow")
    if missing:
        raise CliError(f"eval needs {', '.join(missing)} (or --compare A.jsonl B.jsonl)")
    if args.workflow is not None and args.answerer is not None:
        raise CliError("give either --workflow or --answerer, not both")
    videos = Path(args.videos)
    if not videos.is_dir():
        raise CliError(f"--videos {videos}: not a folder")
    questions = load_benchmark(
        args.benchmark,
        args.questions,
        videos,
        categories=_split_categories(args.categories),
        limit=args.limit,
    )
    if not questions:
        raise CliError(f"no questions selected from {args.questions}")
    missing_videos = sum(not q.video_exists for q in questions)
    if missing_videos:
        print(
            f"warning: {missing_videos} of {len(questions)} questions have no video file under "
            f"{videos}; they are recorded as failed (see the 'error' field)",
            file=sys.stderr,
        )
    if args.answerer is not None:
        factory = _load_factory(args.answerer)
        provenance = {"answerer": args.answerer, "model": None, "backend": "custom",
                      "workflow": None, "workflow_hash": None, "settings": {},
                      "settings_hash": None}  # fmt: skip
    else:
        workflow_path = Path(args.workflow)
        if not workflow_path.is_file():
            raise CliError(f"--workflow {workflow_path}: file not found")
        try:
            workflow = json.loads(workflow_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise CliError(
                f"--workflow {workflow_path}:{exc.lineno}: invalid JSON ({exc.msg})"
            ) from None
        label, labels = parse_label_overrides(args.label_override)
        sets = parse_sets(args.set)
        factory = functools.partial(
            WorkflowAnswerer, workflow, sets, label, labels, args.output_node
        )
        provenance = run_provenance(workflow, str(workflow_path), sets, label, labels)
        # Fail now, not once per question, when the workflow cannot take the questions.
        probe = next((q for q in questions if q.video_exists), None)
        if probe is not None:
            factory().check(probe)
    ray_kwargs = {"num_cpus": args.ray_num_cpus} if args.ray_num_cpus else None
    report = run_eval(
        questions,
        factory,
        args.out,
        executor=args.executor,
        concurrency=args.concurrency,
        retry_failed=args.retry_failed,
        ray_address=args.ray_address,
        ray_init_kwargs=ray_kwargs,
        gpus_per_worker=args.gpus_per_worker,
        progress=args.progress,
        fsync_interval=args.fsync_interval,
        title=f"{args.benchmark}: {Path(args.out).name}",
        provenance=provenance,
        allow_mixed=args.allow_mixed,
    )
    print(
        f"ran {report.ran} ({report.failed} failed), skipped {report.skipped} already done "
        f"in {report.wall_s:.1f} s; results {report.results_path}, table "
        f"{report.summary_paths[1]}",
        file=sys.stderr,
    )
    return 0


def _cmd_compare(paths: Sequence[str]) -> int:
    loaded = []
    for path in paths:
        if not Path(path).is_file():
            raise CliError(f"--compare: results file not found: {path}")
        loaded.append(load_results(path).records)
    a, b = loaded
    benchmarks = {r.benchmark for r in [*a.values(), *b.values()]}
    if len(benchmarks) > 1:
        raise CliError(
            f"--compare: the files hold different benchmarks ({', '.join(sorted(benchmarks))})"
        )
    benchmark = benchmarks.pop() if benchmarks else "unknown"
    # Both are scored over the union of questions: one missing in a file counts as wrong there.
    pairs = {uid: r.category for uid, r in a.items()}
    for uid, r in b.items():
        pairs.setdefault(uid, r.category)
    if set(a) != set(b):
        print(
            f"warning: the files cover different questions ({len(a)} vs {len(b)}, "
            f"{len(set(a) & set(b))} in common); missing ones count as wrong",
            file=sys.stderr,
        )
    items = list(pairs.items())
    table_a = compute_table(items, a, benchmark)
    table_b = compute_table(items, b, benchmark)
    print(f"## {benchmark}: {Path(paths[0]).name} vs {Path(paths[1]).name}\n")
    print(compare_tables(table_a, table_b, Path(paths[0]).stem, Path(paths[1]).stem), end="")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    if not Path(args.results).is_file():
        raise CliError(f"--results {args.results}: file not found")
    records = load_results(args.results).records.values()
    count = export_results(
        records, args.out, args.format, target=args.target, video_root=args.video_root
    )
    print(f"wrote {count} {args.format} records to {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` and ``export`` subcommands."""
    ev = subparsers.add_parser(
        "eval",
        help="run a benchmark (MotionBench, FAVOR-Bench) through a workflow, resumably",
        description="Run benchmark questions through a workflow; re-run with the same --out "
        "to resume. Or compare two results files with --compare.",
    )
    ev.add_argument("--benchmark", choices=BENCHMARKS)
    ev.add_argument(
        "--questions", metavar="FILE", help="video_info.meta.jsonl or video_perspective.json"
    )
    ev.add_argument("--videos", metavar="DIR", help="the benchmark's video folder (dataset root)")
    ev.add_argument("--workflow", metavar="WF.json", help="workflow file answering one question")
    ev.add_argument("--answerer", metavar="MODULE:FACTORY",
                    help="instead of a workflow: a Python factory returning answer(question) -> str")  # fmt: skip
    ev.add_argument("--out", metavar="RESULTS.jsonl", help="results file (resumed if it exists)")
    ev.add_argument("--limit", type=int, metavar="N", help="only the first N selected questions")
    ev.add_argument(
        "--categories", nargs="+", metavar="CAT", help="only these categories (task types)"
    )
    ev.add_argument(
        "--set", action="append", metavar="NODE.INPUT=VALUE", help="override a workflow input"
    )
    ev.add_argument("--label-override", action="append", metavar="[CATEGORY=]LABEL",
                    help="routing label for all questions, or for one category")  # fmt: skip
    ev.add_argument("--output-node", metavar="ID_OR_TITLE", help="node whose text is the answer")
    ev.add_argument("--executor", choices=EXECUTORS, default="local")
    ev.add_argument("--concurrency", type=int, metavar="N",
                    help="local threads (default 1) or Ray workers (default one per GPU)")  # fmt: skip
    ev.add_argument(
        "--ray-address", metavar="ADDR", help="Ray cluster (default: RAY_ADDRESS or a local one)"
    )
    ev.add_argument("--ray-num-cpus", type=int, metavar="N", help="CPUs of a local Ray instance")
    ev.add_argument("--gpus-per-worker", type=float, metavar="G",
                    help="GPUs per Ray worker (default 1 when the cluster has GPUs)")  # fmt: skip
    ev.add_argument("--retry-failed", action="store_true", help="re-run questions that failed")
    ev.add_argument("--allow-mixed", action="store_true",
                    help="resume an --out made with another model/workflow/settings (refused otherwise)")  # fmt: skip
    from .cli import add_consent_flags  # cli imports this module's register lazily

    add_consent_flags(ev)
    ev.add_argument("--fsync-interval", type=float, default=1.0, metavar="S",
                    help="seconds between fsyncs of the results file (0: every line)")  # fmt: skip
    ev.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                    help="progress bar on stderr (default: when it is a terminal)")  # fmt: skip
    ev.add_argument("--compare", nargs=2, metavar=("A.jsonl", "B.jsonl"),
                    help="print per-category accuracy of two results files side by side")  # fmt: skip
    ev.set_defaults(func=guard(_cmd_eval), command="eval")

    ex = subparsers.add_parser("export", help="write results as SFT or preference training records")
    ex.add_argument("--results", required=True, metavar="R.jsonl")
    ex.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    ex.add_argument("--out", required=True, metavar="FILE", help=".json (a list) or .jsonl")
    ex.add_argument("--target", choices=("gold", "model"), default="gold",
                    help="SFT reply: the correct answer, or the model's own correct outputs")  # fmt: skip
    ex.add_argument("--video-root", metavar="DIR", help="write video paths relative to DIR")
    ex.set_defaults(func=guard(_cmd_export), command="export")


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry (``python -m motionsight.engine.cli_eval eval ...``)."""
    parser = argparse.ArgumentParser(prog="motionsight")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
