"""The `motionsight` command line: run workflow files headless (more subcommands plug in).

    motionsight run WORKFLOW.json [--set NODE.INPUT=VALUE ...] [--output DIR] [--input-dir DIR]
                                  [--json] [--quiet]

Exit status: 0 on success, 2 for a bad workflow / validation / `--set` error, 1 for an error
while a node runs. Errors print one message on stderr, without a Python traceback unless
`MOTIONSIGHT_DEBUG=1`.

Other subcommands live in `engine/cli_<name>.py`, each exposing `register(subparsers)` that adds
its subparser and sets `func=handler` (`handler(args) -> int`); list the module in
`_COMMAND_NAMES` below.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import comfy_bridge, trust
from .errors import NodeExecutionError, WorkflowError
from .executor import Executor, RunResult
from .run import default_node_classes, run_workflow

__all__ = ["build_parser", "main", "run_workflow"]

# Subcommands in their own modules: engine/cli_<name>.py exposing `register(subparsers)`.
# Add a new name here; a module that does not exist (yet) is skipped, one that fails to import
# is an error (never hidden).
_COMMAND_NAMES: tuple[str, ...] = ("ask", "eval", "export", "dataset")


def _command_modules() -> list:
    modules = []
    for name in _COMMAND_NAMES:
        module_name = f"{__package__}.cli_{name}"
        if importlib.util.find_spec(module_name) is not None:
            modules.append(importlib.import_module(module_name))
    return modules


EXIT_OK, EXIT_RUNTIME, EXIT_WORKFLOW = 0, 1, 2
MAX_ERROR_CHARS = 600  # one line on stderr; MOTIONSIGHT_DEBUG=1 prints everything


def add_consent_flags(parser: argparse.ArgumentParser) -> None:
    """The user's own permissions (a workflow file never grants them; see `trust.py`)."""
    parser.add_argument(
        "--trust-url",
        action="append",
        default=[],
        metavar="URL",
        help="let this OpenAI-compatible server receive frames and the API key (a workflow's "
        "base_url alone gets nothing; also MOTIONSIGHT_TRUSTED_URLS) (repeatable)",
    )
    parser.add_argument(
        "--allow-key-var",
        action="append",
        default=[],
        metavar="VAR",
        help="let a workflow's api_key_env read this variable (OPENAI_API_KEY always may; also "
        "MOTIONSIGHT_ALLOWED_KEY_VARS) (repeatable)",
    )
    parser.add_argument(
        "--allow-download",
        action="store_true",
        help="let nodes with allow_download fetch hub models (also MOTIONSIGHT_ALLOW_DOWNLOAD=1)",
    )


def apply_consent(args: argparse.Namespace) -> None:
    """Grant what the command line allows: the consent flags, `ask --base-url URL
    --api-key-env VAR`, and a `--set NODE.base_url=URL` / `--set NODE.api_key_env=VAR` typed
    by the user (values written in a workflow file are never consent)."""
    urls = list(getattr(args, "trust_url", None) or [])
    key_vars = list(getattr(args, "allow_key_var", None) or [])
    if getattr(args, "base_url", ""):  # `ask --base-url`: the user named this server
        urls.append(args.base_url)
        key_vars.append(getattr(args, "api_key_env", "") or "")
    for item in getattr(args, "overrides", None) or getattr(args, "set", None) or []:
        target, _, value = str(item).partition("=")
        if target.endswith(".base_url") and value.strip():
            urls.append(value.strip())
        elif target.endswith(".api_key_env"):
            key_vars.append(value)
    trust.grant(urls, key_vars, download=bool(getattr(args, "allow_download", False)))


def build_parser(node_classes: Mapping[str, type] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="motionsight",
        description="MotionSight for ComfyUI, headless: run workflow files and more.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    run = subparsers.add_parser(
        "run",
        help="run a ComfyUI workflow file (UI or API format)",
        description="Run a ComfyUI workflow file (UI or API format) headless and print what its output nodes produced.",
    )
    run.add_argument("workflow", help="the workflow .json file")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NODE.INPUT=VALUE",
        help="set an input; NODE is a node id, title or (unique) type, e.g. MotionSightLoadVideo.video=clip.mp4 (repeatable)",
    )
    run.add_argument(
        "--output",
        default="motionsight_output",
        metavar="DIR",
        help="folder save nodes write into (default: ./motionsight_output)",
    )
    run.add_argument(
        "--input-dir",
        default=None,
        metavar="DIR",
        help="folder in which bare file names are looked up",
    )
    run.add_argument(
        "--json", action="store_true", help="print one JSON object describing the outputs on stdout"
    )
    run.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_consent_flags(run)
    run.set_defaults(func=lambda args: _run_command(args, node_classes))
    for module in _command_modules():
        module.register(subparsers)
    return parser


def main(
    argv: Sequence[str] | None = None, *, node_classes: Mapping[str, type] | None = None
) -> int:
    """Entry point of the `motionsight` console script; returns the exit status.

    `node_classes` replaces the pack's `NODE_CLASS_MAPPINGS` (tests, other packs).
    """
    debug = os.environ.get("MOTIONSIGHT_DEBUG", "") not in ("", "0")
    parser = build_parser(node_classes)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage / help
        return exc.code if isinstance(exc.code, int) else EXIT_WORKFLOW
    try:
        apply_consent(args)
        return int(args.func(args) or 0)
    except WorkflowError as exc:
        return _fail(exc, EXIT_WORKFLOW, debug)
    except (NodeExecutionError, trust.TrustError) as exc:
        return _fail(exc, EXIT_RUNTIME, debug)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # anything else: one line, the traceback only when debugging
        return _fail(exc, EXIT_RUNTIME, debug, prefix=f"{type(exc).__name__}: ")


class CliError(Exception):
    """A user error in a subcommand's arguments: one line on stderr, exit status 2."""


def guard(
    handler: Callable[[argparse.Namespace], int],
    label: Callable[[argparse.Namespace], str] = lambda args: args.command,
) -> Callable[[argparse.Namespace], int]:
    """A subcommand handler whose user errors end as one line `motionsight LABEL: error: ...` on
    stderr and an exit status (2: arguments or workflow, 1: while running, 130: interrupted;
    the durable commands resume when re-run), without a traceback."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        name = f"motionsight {label(args)}"
        try:
            return handler(args)
        except (CliError, WorkflowError) as exc:
            print(f"{name}: error: {one_line(str(exc))}", file=sys.stderr)
            return EXIT_WORKFLOW
        except (ValueError, OSError, RuntimeError, NodeExecutionError) as exc:
            print(f"{name}: error: {one_line(str(exc))}", file=sys.stderr)
            return EXIT_RUNTIME
        except KeyboardInterrupt:
            print(f"{name}: interrupted; re-run to resume", file=sys.stderr)
            return 130

    return run


def one_line(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """An error message on one line (a list of problems joined by "; "), at most `limit` chars."""
    text = text.replace("\n  - ", " ").replace("\r", " ").replace("\n", " ")
    if len(text) > limit:
        tail = f"... (cut from {len(text)} chars; MOTIONSIGHT_DEBUG=1 shows all)"
        text = text[: max(0, limit - len(tail))] + tail
    return text


def _fail(exc: BaseException, code: int, debug: bool, prefix: str = "") -> int:
    if debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        print(f"error: {prefix}{exc}", file=sys.stderr)
    else:
        print(f"error: {one_line(prefix + str(exc))}", file=sys.stderr)
    return code


def _run_command(args: argparse.Namespace, node_classes: Mapping[str, type] | None) -> int:
    display_names = None
    if node_classes is None:
        node_classes, display_names = default_node_classes()
    output_dir = Path(args.output)
    executor = Executor(node_classes, quiet=args.quiet)
    result = run_workflow(
        args.workflow,
        args.overrides,
        output_dir=output_dir,
        input_dir=args.input_dir,
        executor=executor,
        display_names=display_names,
    )
    if args.json:
        json.dump(result_to_json(result, workflow=args.workflow), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_result(result)
    return EXIT_OK


def result_to_json(result: RunResult, workflow: str | None = None) -> dict[str, Any]:
    """A JSON-ready description of a run: the output nodes' ui and results, which nodes ran."""
    return {
        "workflow": workflow,
        "output_dir": str(comfy_bridge.output_directory()),
        "executed": result.executed,
        "cached": result.cached,
        "outputs": [
            {
                "node_id": o.node_id,
                "class_type": o.class_type,
                "title": o.title,
                "ui": to_jsonable(o.ui),
                "result": to_jsonable(list(o.result)),
            }
            for o in result.outputs
        ],
    }


def print_result(result: RunResult, stream: Any = None) -> None:
    """Human-readable: each output node's title, then every ui key and its values."""
    out = stream or sys.stdout
    for o in result.outputs:
        print(f"{o.title} ({o.class_type}, node {o.node_id})", file=out)
        if not o.ui and not o.result:
            print("  (no output)", file=out)
        items = list(o.ui.items()) or [(f"output {i}", v) for i, v in enumerate(o.result)]
        for key, value in items:
            values = value if isinstance(value, (list, tuple)) else [value]
            if len(values) == 1 and "\n" not in _show(values[0]):
                print(f"  {key}: {_show(values[0])}", file=out)
            else:
                print(f"  {key}:", file=out)
                for v in values:
                    print("    " + _show(v).replace("\n", "\n    "), file=out)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    jsonable = to_jsonable(value)
    return json.dumps(jsonable) if isinstance(jsonable, (dict, list)) else str(jsonable)


def to_jsonable(value: Any) -> Any:
    """Plain JSON types; paths become strings, tensors/arrays a short description."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    shape = getattr(value, "shape", None)
    if shape is not None:
        return {
            "type": type(value).__name__,
            "shape": list(shape),
            "dtype": str(getattr(value, "dtype", "")),
        }
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
