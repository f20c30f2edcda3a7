"""`motionsight dataset review`: serve the review page, or export what was reviewed.

    motionsight dataset review PAIRS.jsonl --out decisions.jsonl [--reviewer NAME]
        [--host 127.0.0.1] [--port 0] [--no-browser]
    motionsight dataset review PAIRS.jsonl --out decisions.jsonl --export DIR [--trainer T]
        [--media-root DIR]

`register(subparsers)` adds the `review` subcommand to a `dataset` command's subparsers;
`main(argv)` runs it on its own (argv with or without the leading "review").
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import re
import sys
import webbrowser
from collections.abc import Sequence
from pathlib import Path

from ..export import PREFERENCE_TRAINERS, ExportError, export_preference
from .pairs import ReviewError, load_pairs
from .store import DecisionStore, check_reviewer, reviewed_records

__all__ = ["export_reviewed", "main", "register", "run_review"]

RECORDS_NAME = "reviewed_pairs.jsonl"


def _default_reviewer() -> str:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = ""
    name = re.sub(r"[^\w.@-]", "_", name)[:64]
    return name or "reviewer"


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `review` subcommand (sets `func`, returning the exit status)."""
    parser = subparsers.add_parser(
        "review",
        help="choose between two motion descriptions in a local web page",
        description=(
            "Serve a page on loopback that shows each pair's clip (original, spotlight, trails), "
            "its question and the two descriptions on randomised sides; keys: left/right choose, "
            "s skip, u undo, ? help. Decisions are appended to --out; rerunning resumes. "
            "With --export, write the reviewed pairs instead of serving."
        ),
    )
    parser.add_argument(
        "pairs", help="pairs JSONL (dataset pairs) or preference records (JSON list or JSONL)"
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="DECISIONS.jsonl",
        help="decisions file (appended, shared by reviewers)",
    )
    parser.add_argument(
        "--reviewer",
        default=None,
        metavar="NAME",
        help="who reviews (default: the login name); the page also takes ?reviewer=NAME",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1); any other address requires the token printed in the URL",
    )
    parser.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    parser.add_argument(
        "--no-browser", action="store_true", help="do not open the page in a browser"
    )
    parser.add_argument(
        "--export",
        metavar="DIR",
        default=None,
        help="write the reviewed pairs into DIR and print agreement, instead of serving",
    )
    parser.add_argument(
        "--trainer",
        choices=("all", "none", *PREFERENCE_TRAINERS),
        default="all",
        help="with --export: the trainer formats written, one folder per trainer inside DIR "
        "(default all; none: only DIR/reviewed_pairs.jsonl)",
    )
    parser.add_argument(
        "--media-root",
        default=None,
        metavar="DIR",
        help="with --export: video paths relative to this folder (the trainer's media folder); default absolute",
    )
    parser.set_defaults(func=_handle)
    return parser


def _handle(args: argparse.Namespace) -> int:
    """`run_review` with bad input reported in one line (exit 2), whoever calls it."""
    try:
        return run_review(args)
    except (ReviewError, ExportError) as exc:
        print(f"motionsight dataset review: error: {exc}", file=sys.stderr)
        return 2


def export_reviewed(
    pairs_path: str | os.PathLike,
    decisions: str | os.PathLike,
    out_dir: str | os.PathLike,
    trainer: str = "all",
    media_root: str | os.PathLike | None = None,
) -> tuple[Path, list[str]]:
    """Write the reviewed pairs as `out_dir/reviewed_pairs.jsonl` and in the trainer formats of
    `motionsight.dataset.export` (`trainer`: one of them, "all", or "none"), one folder each.

    Returns the records file and the report lines (counts, agreement between reviewers, files).
    """
    pairs = load_pairs(pairs_path)
    if not Path(decisions).is_file():
        raise ReviewError(f"decisions file {decisions} does not exist: nothing was reviewed")
    with DecisionStore(decisions) as store:
        records, report = reviewed_records(pairs, store)
        bad = list(store.bad_lines)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReviewError(f"cannot create export folder {out}: {exc.strerror or exc}") from None
    path = out / RECORDS_NAME
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    lines = report.lines()
    if bad:
        lines.append(
            f"{len(bad)} unreadable lines in {decisions} skipped (line {', '.join(map(str, bad[:5]))})"
        )
    lines.append(f"reviewed pairs: {path}")
    trainers = {"all": list(PREFERENCE_TRAINERS), "none": []}.get(trainer, [trainer])
    for name in trainers:
        for written in export_preference(records, name, out / name, media_root):
            lines.append(f"{name}: {written}")
    return path, lines


def _open_browser(url: str) -> bool:
    """Open `url` when a graphical browser is there (never a console browser in the terminal)."""
    graphical = (
        sys.platform in ("darwin", "win32")
        or os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
    )
    if not graphical:
        return False
    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False


def run_review(args: argparse.Namespace) -> int:
    """The `review` handler: export with `--export`, else serve until interrupted."""
    if args.export is not None:
        _path, lines = export_reviewed(
            args.pairs, args.out, args.export, args.trainer, args.media_root
        )
        print("\n".join(lines))
        return 0
    from .server import ReviewServer

    reviewer = check_reviewer(args.reviewer or _default_reviewer())
    pairs = load_pairs(args.pairs)
    out = Path(args.out)
    if not out.parent.is_dir():
        raise ReviewError(f"--out {out}: folder {out.parent} does not exist")
    store = DecisionStore(out)
    try:
        server = ReviewServer(pairs, Path(args.pairs), store, reviewer, args.host, args.port)
        decisions, stale = store.decisions(pairs)
        done = sum(1 for _p, r in decisions if r == reviewer)
        print(f"{len(pairs)} pairs from {args.pairs}; decisions in {out} ({reviewer}: {done} done)")
        if store.bad_lines:
            print(
                f"warning: {len(store.bad_lines)} unreadable lines in {out} skipped (line {store.bad_lines[0]}...)",
                file=sys.stderr,
            )
        if stale:
            print(
                f"warning: {stale} decisions in {out} are about pairs that changed or are gone; ignored",
                file=sys.stderr,
            )
        if server.config.token:
            print(f"listening on {args.host}: the token in the URL is required", file=sys.stderr)
        print(f"review at {server.url}", flush=True)
        if not args.no_browser:
            _open_browser(server.url)
        try:
            asyncio.run(server.serve_forever())
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)
    finally:
        store.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run `review` on its own; returns the exit status (2 for bad input, one line on stderr)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "review":
        argv = ["review", *argv]
    parser = argparse.ArgumentParser(prog="motionsight dataset")
    register(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
