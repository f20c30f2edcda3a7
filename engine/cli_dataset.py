"""`motionsight dataset`: MotionVid-QA-style training data from a folder of videos.

    motionsight dataset scan VIDEOS/ --out work/scan.jsonl          # probe, score, filter
    motionsight dataset annotate --scan work/scan.jsonl --out work/annotations.jsonl \\
        --base-url http://127.0.0.1:8000/v1 --model-name Qwen/Qwen2.5-VL-7B-Instruct
    motionsight dataset questions --annotations work/annotations.jsonl --out work/questions.jsonl
    motionsight dataset pairs --annotations work/annotations.jsonl --out work/pairs.jsonl
    motionsight dataset export --questions work/questions.jsonl --pairs work/pairs.jsonl \\
        --trainer all --out export/ [--media-root VIDEOS/]

scan and annotate are resumable (re-run with the same --out) and survive kill -9; annotate
runs on threads or Ray (`--executor ray`) like `eval`.
"""

from __future__ import annotations

import argparse
import collections
import functools
import importlib
import importlib.util
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..dataset.records import Record, clip_id, load_records, read_jsonl, write_jsonl
from ..evaluation.results import ResultsStore, write_results
from ..evaluation.runner import EXECUTORS
from .cli import CliError, guard

__all__ = ["Scanner", "register"]


# ---------------------------------------------------------------------------------- scan
class Scanner:
    """``scan(job) -> JSON text`` for one worker (the yes-probability model loads once)."""

    def __init__(self, options: Any, mllm: dict[str, Any] | None) -> None:
        self.options = options
        self.mllm = mllm
        self._model: Any = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_model": None}

    def __call__(self, job: Any) -> str:
        import torch

        from ..dataset.scan import scan_video

        torch.set_num_threads(1)  # clips run in parallel threads instead
        if self.mllm and self._model is None:
            from ..mllm.loader import load_mllm

            self._model = load_mllm(**self.mllm).model
        return json.dumps(scan_video(job.video, self.options, self._model))


def _mllm_settings(args: argparse.Namespace, prefix: str = "") -> dict[str, Any] | None:
    model_dir = getattr(args, f"{prefix}model")
    base_url = getattr(args, f"{prefix}base_url")
    name = getattr(args, f"{prefix}model_name")
    if model_dir and base_url:
        raise CliError(f"give either --{prefix}model (local folder) or --{prefix}base-url, not both")
    if base_url:
        if not name:
            raise CliError(f"--{prefix}base-url needs --{prefix}model-name")
        return {"backend": "openai", "model": name, "base_url": base_url,
                "api_key_env": args.api_key_env}  # fmt: skip
    if model_dir:
        return {"backend": "transformers", "model": model_dir}
    return None


def _cmd_scan(args: argparse.Namespace) -> int:
    from ..dataset.annotate import ClipJob, run_clips
    from ..dataset.scan import (
        ScanOptions,
        apply_thresholds,
        find_videos,
        save_histograms,
        thresholds_from,
    )

    try:
        videos = find_videos(args.inputs)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    root = Path(args.inputs[0]).resolve() if len(args.inputs) == 1 and Path(args.inputs[0]).is_dir() else None
    options = ScanOptions(num_frames=args.num_frames, work_side=args.work_side)
    thresholds = thresholds_from({k: None if isinstance(v, (int, float)) and v < 0 else v
                                  for k, v in vars(args).items()})  # fmt: skip
    mllm = _mllm_settings(args, prefix="yes_")
    settings = asdict(options)
    provenance = {
        "model": (mllm or {}).get("model"), "backend": (mllm or {}).get("backend"),
        "base_url": (mllm or {}).get("base_url"), "workflow": "motionsight-scan-v1",
        "workflow_hash": "motionsight-scan-v1", "settings": settings,
        "settings_hash": json.dumps(settings, sort_keys=True),
    }  # fmt: skip
    jobs = [ClipJob(clip_id(v, root), str(v)) for v in videos]
    out = Path(args.out)
    import torch

    threads = torch.get_num_threads()  # each scan sets one thread; restored for the caller
    try:
        report = run_clips(
            jobs, functools.partial(Scanner, options, mllm), out, provenance,
            concurrency=args.concurrency, retry_failed=args.retry_failed,
            allow_mixed=args.allow_mixed, fsync_interval=args.fsync_interval, abort_after=None,
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    # verdicts from the thresholds of this run, for every line (no rescoring)
    with ResultsStore(out, record_type=Record) as store:
        records = store.records
        for record in records.values():
            if record.ok and "scores" not in record:
                record["error"] = "scan record without scores"
        apply_thresholds(records, thresholds)
        for record in records.values():
            record["thresholds"] = {k: getattr(thresholds, k) for k in thresholds.names()}
        write_results(out, records.values())
    hist_dir = Path(args.hist_dir) if args.hist_dir else out.with_name(out.stem + "_hist")
    written = save_histograms(list(records.values()), hist_dir, thresholds)
    kept = [r for r in records.values() if r.get("keep")]
    reasons = collections.Counter(
        "motion" if why.startswith("too little motion") else why.split(" ")[0]
        for r in records.values() for why in r.get("reasons", [])
    )  # fmt: skip
    splits = collections.Counter(r["split"] for r in kept)
    print(f"scanned {report.ran} ({report.failed} not decodable), skipped {report.skipped} already "
          f"scanned; kept {len(kept)} of {len(records)} (preference {splits.get('preference', 0)}, "
          f"sft {splits.get('sft', 0)}); {out}; histograms in {hist_dir} ({len(written)})")  # fmt: skip
    if reasons:
        print("dropped for: " + ", ".join(f"{k} {v}" for k, v in reasons.most_common()), file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------- annotate
def _cmd_annotate(args: argparse.Namespace) -> int:
    from ..dataset.annotate import (
        AnnotateSettings,
        ClipJob,
        annotator_factory,
        load_annotator,
        run_clips,
    )

    scan = Path(args.scan)
    if not scan.is_file():
        raise CliError(f"--scan {scan}: file not found (run `motionsight dataset scan` first)")
    scanned = load_records(scan)
    chosen = [r for r in scanned.values() if r.ok and (r.get("keep") or args.all)]
    if args.split != "all":
        chosen = [r for r in chosen if r.get("split") == args.split]
    if args.limit:
        chosen = chosen[: args.limit]
    if not chosen:
        raise CliError(f"{scan}: no clips selected (kept clips: {sum(bool(r.get('keep')) for r in scanned.values())})")
    jobs = [ClipJob(r.uid, r["video"], r.get("split")) for r in chosen]
    out = Path(args.out)
    if args.annotator:
        factory = load_annotator(args.annotator)
        provenance = {"model": args.annotator, "backend": "custom", "base_url": None,
                      "workflow": args.annotator, "workflow_hash": args.annotator,
                      "settings": {}, "settings_hash": None}  # fmt: skip
    else:
        mllm = _mllm_settings(args)
        if mllm is None:
            raise CliError("annotate needs a model: --model FOLDER or --base-url URL --model-name NAME")
        settings = AnnotateSettings(
            **mllm, max_new_tokens=args.max_new_tokens, num_frames=args.num_frames,
            max_side=args.max_side, max_pixels=args.max_pixels,
        )  # fmt: skip
        prompts_dir = None if args.no_visual_prompts else str(out.with_name(out.stem + "_prompts").resolve())
        factory = annotator_factory(settings, prompts_dir)
        provenance = settings.provenance()
    ray_kwargs = {"num_cpus": args.ray_num_cpus} if args.ray_num_cpus else None
    report = run_clips(
        jobs, factory, out, provenance, executor=args.executor, concurrency=args.concurrency,
        retry_failed=args.retry_failed, allow_mixed=args.allow_mixed,
        ray_address=args.ray_address, ray_init_kwargs=ray_kwargs,
        gpus_per_worker=args.gpus_per_worker, fsync_interval=args.fsync_interval,
    )  # fmt: skip
    print(f"annotated {report.ran} clips ({report.failed} failed), skipped {report.skipped} already "
          f"done in {report.wall_s:.1f} s; {out}")  # fmt: skip
    return 0


# ---------------------------------------------------------------------------------- questions, pairs
def _annotations(path: str, split: str) -> list[Record]:
    p = Path(path)
    if not p.is_file():
        raise CliError(f"--annotations {p}: file not found (run `motionsight dataset annotate`)")
    rows = [r for r in load_records(p).values() if r.ok]
    if split != "all":
        rows = [r for r in rows if r.get("split") == split]
    if not rows:
        raise CliError(f"{p}: no successful annotations{'' if split == 'all' else f' in split {split!r}'}")
    return rows


def _templates(path: str | None) -> dict[str, list[str]] | None:
    from ..dataset.questions import load_templates

    if path is None:
        return None
    try:
        return load_templates(path)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _cmd_questions(args: argparse.Namespace) -> int:
    from ..dataset.questions import build_questions, mcq_prompt, mcq_record, parse_mcq, validate_mcq

    annotations = _annotations(args.annotations, args.split)
    rows = build_questions(annotations, _templates(args.templates), per_kind=args.per_kind)
    summary = f"{len(rows)} template QAs"
    if args.mcq_base_url:
        if not args.mcq_model_name:
            raise CliError("--mcq-base-url needs --mcq-model-name")
        from ..mllm.base import GenerationOptions, Prompt
        from ..mllm.openai_backend import OpenAIMLLM

        model = OpenAIMLLM(args.mcq_base_url, args.mcq_model_name, api_key_env=args.api_key_env)
        kept, why = [], collections.Counter()
        for row in rows:
            if row["kind"] == "mixed":
                continue
            reply = model.generate(Prompt((mcq_prompt(row["kind"], row["answer"]),)),
                                   GenerationOptions(max_new_tokens=400))  # fmt: skip
            data = parse_mcq(reply.text)
            problem = validate_mcq(data, row["answer"])
            if problem is None:
                record = mcq_record(row, data, 0)
                record["provenance"] = {**(row.get("provenance") or {}),
                                        "mcq_model": args.mcq_model_name, "mcq_base_url": args.mcq_base_url}  # fmt: skip
                kept.append(record)
            else:
                why[problem] += 1
        rows += kept
        summary += f", {len(kept)} multiple-choice QAs kept" + (
            f" ({sum(why.values())} rejected: " + ", ".join(f"{k} {v}" for k, v in why.items()) + ")" if why else ""
        )
    write_jsonl(args.out, rows)
    print(f"wrote {summary} to {args.out}")
    return 0


def _cmd_pairs(args: argparse.Namespace) -> int:
    from ..dataset.pairs import build_pairs

    annotations = _annotations(args.annotations, args.split)
    rows = build_pairs(annotations, args.out, _templates(args.templates), rule=args.rule)
    write_jsonl(args.out, rows)
    decided = sum(r["chosen"] is not None for r in rows)
    print(f"wrote {len(rows)} pairs ({decided} chosen by rule {args.rule!r}, "
          f"{len(rows) - decided} left for review) to {args.out}")  # fmt: skip
    return 0


# ---------------------------------------------------------------------------------- export
def _cmd_export(args: argparse.Namespace) -> int:
    from ..dataset.export import PREFERENCE_TRAINERS, SFT_TRAINERS, export_preference, export_sft
    from ..dataset.pairs import preference_records

    if not args.questions and not args.pairs:
        raise CliError("export needs --questions and/or --pairs")
    trainers = list(PREFERENCE_TRAINERS) if args.trainer == "all" else [args.trainer]
    out = Path(args.out)
    written: list[Path] = []
    if args.questions:
        sft = read_jsonl(args.questions)
        base = Path(args.questions).resolve().parent
        for trainer in trainers:
            if trainer in SFT_TRAINERS:
                written += export_sft(sft, trainer, out / trainer, args.media_root, base_dir=base)
    if args.pairs:
        pairs = read_jsonl(args.pairs)
        records, undecided = preference_records(pairs, args.pairs)
        if undecided:
            print(f"note: {undecided} pairs have no choice yet (review them with "
                  "`motionsight dataset review`); left out", file=sys.stderr)  # fmt: skip
        if not records:
            raise CliError(f"{args.pairs}: no decided pairs to export")
        base = Path(args.pairs).resolve().parent
        for trainer in trainers:
            written += export_preference(records, trainer, out / trainer, args.media_root, base_dir=base)
    for path in written:
        print(path)
    return 0


# ---------------------------------------------------------------------------------- parser
def _guard(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    return guard(handler, lambda args: f"dataset {args.dataset_command}")



def _mllm_flags(parser: argparse.ArgumentParser, prefix: str = "", what: str = "the MLLM") -> None:
    parser.add_argument(f"--{prefix}model", metavar="FOLDER", help=f"{what}: a local transformers model folder")
    parser.add_argument(f"--{prefix}base-url", metavar="URL", help=f"{what}: an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument(f"--{prefix}model-name", metavar="NAME", help="the model name on that server")


def _run_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, metavar="N", help="threads (default 1) or Ray workers")
    parser.add_argument("--retry-failed", action="store_true", help="re-run clips that failed")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="resume an --out made with another configuration (each line keeps its own provenance)")  # fmt: skip
    parser.add_argument("--fsync-interval", type=float, default=1.0, metavar="S", help="seconds between fsyncs (0: every line)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dataset`` and its subcommands (and ``dataset review`` when that module exists)."""
    from ..dataset.export import PREFERENCE_TRAINERS
    from ..dataset.pairs import RULES
    from ..dataset.thresholds import Thresholds

    ds = subparsers.add_parser("dataset", help="build MotionVid-QA-style SFT and preference data from videos",
                               description=__doc__.split("\n")[0])  # fmt: skip
    sub = ds.add_subparsers(dest="dataset_command", metavar="STEP")
    sub.required = True

    sc = sub.add_parser("scan", help="probe and score videos, keep the usable clips")
    sc.add_argument("inputs", nargs="+", metavar="VIDEOS", help="folders (searched recursively) or files")
    sc.add_argument("--out", required=True, metavar="SCAN.jsonl")
    sc.add_argument("--hist-dir", metavar="DIR", help="PNG histograms per score (default: <out>_hist/)")
    sc.add_argument("--num-frames", type=int, default=16)
    sc.add_argument("--work-side", type=int, default=160, help="px; motion scores are computed at this size")
    defaults = Thresholds()
    for name in Thresholds.names():
        value = getattr(defaults, name)
        kind = int if name == "min_side" else float
        sc.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, default=value,
                        help=f"threshold (default {value}; negative: none)" if name != "preference_share"
                        else f"share of kept clips for the preference split (default {value})")  # fmt: skip
    _mllm_flags(sc, "yes-", "optional yes-probability model")
    sc.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="VAR")
    _run_flags(sc)
    sc.set_defaults(func=_guard(_cmd_scan), command="dataset")

    an = sub.add_parser("annotate", help="describe object and camera motion, with MotionSight and plainly")
    an.add_argument("--scan", required=True, metavar="SCAN.jsonl")
    an.add_argument("--out", required=True, metavar="ANNOTATIONS.jsonl")
    an.add_argument("--all", action="store_true", help="every decodable clip, not only the kept ones")
    an.add_argument("--split", choices=("all", "sft", "preference"), default="all")
    an.add_argument("--limit", type=int, metavar="N")
    _mllm_flags(an)
    an.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="VAR", help="NAME of the key's environment variable")
    an.add_argument("--max-new-tokens", type=int, default=256)
    an.add_argument("--max-pixels", type=int, default=360 * 420)
    an.add_argument("--num-frames", type=int, default=16)
    an.add_argument("--max-side", type=int, default=448, help="frames are decoded at most this size (px)")
    an.add_argument("--no-visual-prompts", action="store_true", help="do not save spotlight/trail frames for review")
    an.add_argument("--annotator", metavar="MODULE:FACTORY", help="a custom annotate(job) -> JSON factory")
    an.add_argument("--executor", choices=EXECUTORS, default="local")
    an.add_argument("--ray-address", metavar="ADDR")
    an.add_argument("--ray-num-cpus", type=int, metavar="N")
    an.add_argument("--gpus-per-worker", type=float, metavar="G")
    _run_flags(an)
    an.set_defaults(func=_guard(_cmd_annotate), command="dataset")

    qu = sub.add_parser("questions", help="template questions (and optional validated multiple-choice QAs)")
    qu.add_argument("--annotations", required=True, metavar="ANNOTATIONS.jsonl")
    qu.add_argument("--out", required=True, metavar="QUESTIONS.jsonl")
    qu.add_argument("--templates", metavar="FILE.json", help='{"object": [...], "camera": [...], "mixed": [...]} replacing the built-in ones')
    qu.add_argument("--per-kind", type=int, default=1, help="questions per kind and clip")
    qu.add_argument("--split", choices=("all", "sft", "preference"), default="all")
    qu.add_argument("--mcq-base-url", metavar="URL", help="OpenAI-compatible text model writing multiple-choice QAs")
    qu.add_argument("--mcq-model-name", metavar="NAME")
    qu.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="VAR")
    qu.set_defaults(func=_guard(_cmd_questions), command="dataset")

    pa = sub.add_parser("pairs", help="preference candidates: MotionSight vs plain descriptions")
    pa.add_argument("--annotations", required=True, metavar="ANNOTATIONS.jsonl")
    pa.add_argument("--out", required=True, metavar="PAIRS.jsonl")
    pa.add_argument("--rule", choices=RULES, default="motionsight",
                    help="which side is chosen by rule; none: leave the choice to people (dataset review)")  # fmt: skip
    pa.add_argument("--templates", metavar="FILE.json")
    pa.add_argument("--split", choices=("all", "sft", "preference"), default="all")
    pa.set_defaults(func=_guard(_cmd_pairs), command="dataset")

    ex = sub.add_parser("export", help="write trainer-ready SFT and preference files")
    ex.add_argument("--questions", metavar="QUESTIONS.jsonl")
    ex.add_argument("--pairs", metavar="PAIRS.jsonl")
    ex.add_argument("--trainer", choices=("all", *PREFERENCE_TRAINERS), default="all")
    ex.add_argument("--out", required=True, metavar="DIR", help="one folder per trainer inside")
    ex.add_argument("--media-root", metavar="DIR", help="write video paths relative to DIR (the trainer's media folder); default absolute")
    ex.set_defaults(func=_guard(_cmd_export), command="dataset")

    review = f"{__package__.rsplit('.', 1)[0]}.dataset.review"
    if importlib.util.find_spec(review) is not None and importlib.util.find_spec(review + ".cli"):
        importlib.import_module(review + ".cli").register(sub)
