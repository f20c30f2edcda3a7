"""`motionsight ask VIDEO "QUESTION"`: MotionSight on one video, through the routed workflow.

It runs `workflows/Ask about motion - auto routed.json` (the same file users open in ComfyUI) with the
video, the question and the model set by overrides. Only the branch the question takes is
computed (lazy inputs); `--output DIR` saves that branch's visual prompts and contact sheet.
With no model configured it prints the exact request it would send and one line on how to
point it to a model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .cli import EXIT_OK, add_consent_flags, print_result, result_to_json
from .errors import NodeExecutionError
from .executor import Executor
from .run import default_node_classes, run_workflow
from .workflow import load_workflow

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
        default="",
        metavar="DIR",
        help="save the visual prompts and contact sheets of the question's branch in this folder "
        "(default: save nothing)",
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


# The node classes whose frames belong to one branch: a Save node fed by one of them saves that
# branch, and runs only when the question takes that branch. A Save node fed by the Ask node's
# `shown_frames` (the shipped routed workflow) saves whichever branch was taken.
BRANCH_OF = {
    "MotionSightMotionTrails": "camera",
    "MotionSightSpotlight": "object",
    "MotionSightCrop": "object",
    "MotionSightBackgroundBlur": "object",
}


def ask_plan(prompt: dict) -> tuple[str, list[tuple[str, str | None]]]:
    """The Ask node's id and the save nodes as `(id, branch or None)` (None: saved on any branch)."""
    asks = [n for n, node in prompt.items() if node["class_type"] == "MotionSightAsk"]
    if len(asks) != 1:
        raise SystemExit(
            f"error: the workflow needs exactly one MotionSightAsk node, it has {len(asks)}"
        )
    saves = []
    for node_id, node in prompt.items():
        if node["class_type"] != "MotionSightSaveFrames":
            continue
        images = node["inputs"].get("images")
        source = prompt.get(str(images[0])) if isinstance(images, list) and images else None
        saves.append((node_id, BRANCH_OF.get(source["class_type"]) if source else None))
    return asks[0], saves


def run_ask(args: argparse.Namespace) -> int:
    """Run the routed workflow and print the answer. Only the Ask node and the branch it takes
    run (lazy inputs); with `--output`, the save nodes of that branch then write the visual
    prompts. A configured model that fails (bad folder, server down) still leaves the visual
    prompts and the request on disk/stdout: the workflow is re-run as a dry run, then the
    model's error is raised (non-zero exit)."""
    from ..mllm import MLLMError  # torch: imported once there is work to do, not for --help

    node_classes, display_names = default_node_classes()
    executor = Executor(node_classes, quiet=args.quiet)
    overrides = ask_overrides(args)
    failure: NodeExecutionError | None = None
    ask_id, saves = ask_plan(load_workflow(args.workflow, node_classes))
    output_dir = Path(args.output) if args.output else None

    def run(sets: list[str], nodes: list[str]):
        return run_workflow(
            args.workflow,
            sets,
            output_dir=output_dir,
            executor=executor,
            display_names=display_names,
            output_nodes=nodes,
        )

    sets = overrides
    try:
        result = run(sets, [ask_id])
    except NodeExecutionError as exc:
        if not isinstance(exc.__cause__, MLLMError):
            raise
        failure = exc
        sets = overrides + DRY_RUN_SETS
        result = run(sets, [ask_id])  # same executor: decoded frames are reused
    answer, info = result.output(ask_id).result[:2]
    details = json.loads(info)

    def save() -> list[dict]:
        """Run the save nodes of the route's branch (JSON-ready outputs)."""
        branch = details["route"]["branch"]
        chosen = [n for n, b in saves if b in (None, branch)]
        if output_dir is None or not chosen:
            return []
        saved = run(sets, [ask_id, *chosen])  # the Ask node and its branch come from the cache
        return [o for o in result_to_json(saved)["outputs"] if o["node_id"] != ask_id]

    if args.json:
        saved = save()
        payload = result_to_json(result, workflow=args.workflow)
        payload["outputs"] += saved
        payload["answer"], payload["info"] = answer, details
        if failure is not None:
            payload["error"] = str(failure)
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        if not details.get("dry_run"):
            route = details["route"]
            print(
                f"[{route['branch']} branch ({route['source']}), {details['num_images']} frames, {details['model']}]",
                file=sys.stderr,
            )
        print(answer, flush=True)  # the answer first, then the visual prompts are written
        for o in save():
            for sheet in o["ui"].get("contact_sheet", []):
                print(f"{o['title']}: {sheet}", file=sys.stderr)
    if failure is not None:
        print(
            "the configured model failed (below); the visual prompts were saved and the request "
            "above is what it would have been sent",
            file=sys.stderr,
        )
        raise failure  # main() prints it in one line and exits non-zero
    return EXIT_OK


__all__ = ["register", "ask_overrides", "ask_plan", "run_ask", "print_result"]
