"""`motionsight ask VIDEO "QUESTION"`: MotionSight on one video, through the routed workflow.

It runs `workflows/Ask about motion - auto routed.json` (the same file users open in ComfyUI) with the
video, the question and the model set by overrides. With no model configured it still writes
the visual prompts and contact sheets, prints the exact request it would send and one line on
how to point it to a model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..mllm import MLLMError
from .cli import EXIT_OK, add_consent_flags, print_result, result_to_json
from .errors import NodeExecutionError
from .executor import Executor
from .run import default_node_classes, run_workflow

WORKFLOW = Path(__file__).resolve().parents[1] / "workflows" / "Ask about motion - auto routed.json"


def register(subparsers: argparse._SubParsersAction) -> None:
    ask = subparsers.add_parser(
        "ask",
        help="answer a question about a video with MotionSight",
        description="Answer a question about a video with MotionSight's visual prompts (the routed workflow).",
    )
    ask.add_argument("video", help="the video file")
    ask.add_argument("question", help="the question (put lettered options on their own lines)")
    model = ask.add_mutually_exclusive_group()
    model.add_argument(
        "--model",
        default="",
        metavar="PATH",
        help="local transformers model folder (e.g. Qwen2.5-VL-7B-Instruct)",
    )
    model.add_argument(
        "--base-url",
        default="",
        metavar="URL",
        help="OpenAI-compatible server, e.g. http://localhost:8000/v1",
    )
    ask.add_argument(
        "--model-name",
        default="",
        metavar="NAME",
        help="model name on the server (with --base-url)",
    )
    ask.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        metavar="VAR",
        help="environment variable holding the API key",
    )
    ask.add_argument(
        "--label",
        default="auto",
        help="camera, object, repetition, a benchmark label, or auto (default)",
    )
    ask.add_argument(
        "--max-side",
        type=int,
        default=0,
        help="resize frames so the longer side is at most this (0: keep)",
    )
    ask.add_argument(
        "--workflow",
        default=str(WORKFLOW),
        help="the workflow to run (default: the shipped routed one)",
    )
    ask.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NODE.INPUT=VALUE",
        help="any other input (repeatable)",
    )
    ask.add_argument(
        "--output",
        default="motionsight_output",
        metavar="DIR",
        help="folder for the visual prompts and contact sheets",
    )
    ask.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    ask.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_consent_flags(ask)  # --base-url above is consent for that server and --api-key-env
    ask.set_defaults(func=run_ask)


def ask_overrides(args: argparse.Namespace) -> list[str]:
    overrides = [
        f"MotionSightLoadVideo.video={args.video}",
        f"MotionSightLoadVideo.max_side={args.max_side}",
        f"MotionSightQuestion.question={args.question}",
        f"MotionSightQuestion.label={args.label}",
    ]
    if args.base_url:
        if not args.model_name:
            raise SystemExit(
                "error: --base-url needs --model-name (the model's name on the server)"
            )
        overrides += [
            "MotionSightLoadMLLM.backend=openai",
            f"MotionSightLoadMLLM.base_url={args.base_url}",
            f"MotionSightLoadMLLM.model={args.model_name}",
            f"MotionSightLoadMLLM.api_key_env={args.api_key_env}",
        ]
    elif args.model:
        overrides += [
            "MotionSightLoadMLLM.backend=transformers",
            f"MotionSightLoadMLLM.model={args.model}",
        ]
    return overrides + list(args.overrides)


DRY_RUN_SETS = ["MotionSightLoadMLLM.model=", "MotionSightLoadMLLM.base_url="]


def run_ask(args: argparse.Namespace) -> int:
    """Run the routed workflow and print the answer. A configured model that fails (bad folder,
    server down) still leaves the visual prompts and the request on disk/stdout: the workflow is
    re-run as a dry run, then the model's error is raised (non-zero exit)."""
    node_classes, display_names = default_node_classes()
    executor = Executor(node_classes, quiet=args.quiet)
    overrides = ask_overrides(args)
    failure: NodeExecutionError | None = None

    def run(sets: list[str]):
        return run_workflow(
            args.workflow,
            sets,
            output_dir=Path(args.output),
            executor=executor,
            display_names=display_names,
        )

    try:
        result = run(overrides)
    except NodeExecutionError as exc:
        if not isinstance(exc.__cause__, MLLMError):
            raise
        failure = exc
        result = run(overrides + DRY_RUN_SETS)  # same executor: decoded frames are reused
    answer, info = result.output("MotionSightAsk").result
    details = json.loads(info)
    if args.json:
        payload = result_to_json(result, workflow=args.workflow)
        payload["answer"], payload["info"] = answer, details
        if failure is not None:
            payload["error"] = str(failure)
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for o in result.outputs:
            for sheet in o.ui.get("contact_sheet", []):
                print(f"{o.title}: {sheet}", file=sys.stderr)
        if not details.get("dry_run"):
            route = details["route"]
            print(
                f"[{route['branch']} branch ({route['source']}), {details['num_images']} frames, {details['model']}]",
                file=sys.stderr,
            )
        print(answer)
    if failure is not None:
        print(
            "the configured model failed (below); the visual prompts were saved and the request "
            "above is what it would have been sent",
            file=sys.stderr,
        )
        raise failure  # main() prints it in one line and exits non-zero
    return EXIT_OK


__all__ = ["register", "ask_overrides", "run_ask", "print_result"]
