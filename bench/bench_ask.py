"""`motionsight ask` (dry run, no model) on one clip: this tree vs an older commit, side by side.

    python bench/bench_ask.py [--old 19793fa] [--runs 3] [--video stairs_pet.mp4] [--question Q]
    python bench/bench_ask.py --minutes 1,10 [--runs 3] [--video stairs_pet.mp4]

The old commit is checked out with `git worktree add --detach /tmp/old COMMIT` (made when
missing). Each run is a fresh process (`python -c ...` calling the CLI's `main`, imports
included) with the tree put first on `sys.path` as `motionsight`; runs alternate old/new.
Reported: median wall time, median peak RSS (the child's `ru_maxrss`), and the frames the
video's decoder produced (`VideoFile.frames_decoded`, every file the run opened) against the
frames one forward pass to the last needed frame must decode. Then `motionsight --help`'s wall
time for both.

`--minutes 1,10`: instead, this tree only, on clips of those lengths made in a temporary folder
by looping `--video`'s frames (OpenCV's mp4v writer, streamed, never committed): median wall
time and peak RSS of the ask dry run per length (is memory flat in the video's length?).
`--one-pass` adds a row per length where the decoder never seeks (every frame to the last
sample decoded, as on a clip with one keyframe).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "videos"

# Runs the CLI in the child; counts decoded frames of every video file opened.
CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from motionsight.video import source
opened = []
_open = source.VideoFile.open.__func__
def counting_open(cls, path):
    video = _open(cls, path)
    opened.append(video)
    return video
source.VideoFile.open = classmethod(counting_open)
from motionsight.engine.cli import main
code = main(sys.argv[1:])
import motionsight
print("BENCH " + json.dumps({
    "code": code,
    "seconds": time.perf_counter() - t0,
    "decoded": sum(v.frames_decoded for v in opened),
    "package": motionsight.__file__,
}))
"""


# Prepended to CHILD for `--one-pass`: the decoder never seeks, it walks forward through every
# frame to the last sample, as it must on a clip with a single keyframe (the worst case).
ONE_PASS = r"""
from motionsight.video import source
source._Decoder._landing = lambda self, target: None
source._SEEK_GAP_UNKNOWN_GOP = 1 << 62
"""

HELP = (
    "import sys\nfrom motionsight.engine.cli import main\nmain(sys.argv[1:])\nprint('BENCH {}')\n"
)


def shim(tree: Path, name: str) -> Path:
    """A folder holding `motionsight` -> `tree` (so that tree is what `import motionsight` gets)."""
    folder = Path(tempfile.gettempdir()) / f"bench_ask_{name}"
    folder.mkdir(exist_ok=True)
    link = folder / "motionsight"
    if link.is_symlink() and link.resolve() != tree.resolve():
        link.unlink()
    if not link.exists():
        link.symlink_to(tree.resolve(), target_is_directory=True)
    return folder


def run_child(
    path_dir: Path, argv: list[str], cwd: str, code: str = CHILD
) -> tuple[float, int, dict]:
    env = {**os.environ, "PYTHONPATH": str(path_dir), "MOTIONSIGHT_DEVICE": "cpu"}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out = proc.stdout.read()
    err = proc.stderr.read()
    line = next((x for x in out.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise SystemExit(f"the run failed (status {status}): {err.strip()[-500:]}")
    return wall, usage.ru_maxrss * 1024, json.loads(line[6:])


def write_looped(src: str, dst: str, minutes: float) -> int:
    """Write `src`'s frames over and over into `dst` (mp4v, `src`'s rate and size) until it
    lasts `minutes`; streams (one frame in memory). Returns the frame count. OpenCV's mp4v
    writer puts a keyframe every 12 frames (it ignores VIDEOWRITER_PROP_KEY_INTERVAL), so
    the ask seeks from window to window; the keyframes are reported."""
    import cv2

    cap = cv2.VideoCapture(src)
    fps = cap.get(cv2.CAP_PROP_FPS)
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer = cv2.VideoWriter(dst, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    total, wanted = 0, round(minutes * 60 * fps)
    while total < wanted:
        ok, frame = cap.read()
        if not ok:  # the end of the clip: loop
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = cap.read()
            if not ok:
                raise SystemExit(f"cannot read {src}")
        writer.write(frame)
        total += 1
    cap.release()
    writer.release()
    return total


def by_length(args: argparse.Namespace) -> None:
    """Ask dry run (this tree, fresh processes) on looped clips of `--minutes` lengths."""
    tree = shim(ROOT, "new")
    sys.path.insert(0, str(tree))
    from motionsight.video import open_video  # noqa: E402

    minutes = [float(m) for m in args.minutes.split(",")]
    print(
        f"motionsight ask (dry run) on {args.video} looped to {args.minutes} minutes (mp4v), "
        f"{args.runs} runs each"
    )
    print(
        f"{'minutes':>7} {'frames':>7} {'keyframes':>9} {'wall s':>8} {'peak RSS MiB':>13} "
        f"{'frames decoded':>15} decoder"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for length in minutes:
            clip = f"{tmp}/looped_{length:g}min.mp4"
            frames = write_looped(str(VIDEOS / args.video), clip, length)
            keyframes = len(open_video(clip).keyframes or ())
            for mode, code in (("seeks", CHILD), ("one pass", ONE_PASS + CHILD)):
                if mode == "one pass" and not args.one_pass:
                    continue
                rows = []
                for _ in range(args.runs):
                    argv = ["ask", clip, args.question, "--quiet"]
                    wall, rss, info = run_child(tree, argv, tmp, code)
                    assert info["code"] == 0, info
                    rows.append((wall, rss, info["decoded"]))
                wall, rss, decoded = (statistics.median(r[i] for r in rows) for i in range(3))
                print(
                    f"{length:7g} {frames:7d} {keyframes:9d} {wall:8.2f} {rss / 2**20:13.0f} "
                    f"{decoded:15.0f} {mode}",
                    flush=True,
                )


def needed_frames(video: str) -> int:
    """Frames one forward pass must decode: up to the last frame of the last trail window."""
    sys.path.insert(0, str(shim(ROOT, "new")))
    from motionsight.video import Sampling, open_video  # noqa: E402

    info = open_video(video).info
    return max(Sampling.segments(info, 16).indices) + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", default="19793fa", help="the older commit")
    parser.add_argument("--old-tree", default="/tmp/old", help="its git worktree")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--video", default="stairs_pet.mp4")
    parser.add_argument("--question", default="How does the camera move?")
    parser.add_argument(
        "--minutes", default="", help="e.g. 1,10: this tree on looped clips of these lengths"
    )
    parser.add_argument(
        "--one-pass",
        action="store_true",
        help="with --minutes: also with a decoder that never seeks",
    )
    args = parser.parse_args()
    if args.minutes:
        by_length(args)
        return
    old_tree = Path(args.old_tree)
    if not old_tree.exists():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old_tree), args.old],
            check=True,
            capture_output=True,
        )
    video = str(VIDEOS / args.video)
    trees = {"old": shim(old_tree, "old"), "new": shim(ROOT, "new")}
    results: dict[str, list] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory() as cwd:  # the old ask saves into ./motionsight_output
        for _ in range(args.runs):
            for name, path_dir in trees.items():
                wall, rss, info = run_child(path_dir, ["ask", video, args.question, "--quiet"], cwd)
                assert info["code"] == 0, info
                results[name].append((wall, rss, info["decoded"]))
        helps = {
            name: statistics.median(
                run_child(path_dir, ["--help"], cwd, HELP)[0] for _ in range(args.runs)
            )
            for name, path_dir in trees.items()
        }
    need = needed_frames(video)
    print(f"motionsight ask {args.video} {args.question!r} (dry run), {args.runs} runs each")
    print(f"{'':4} {'wall s':>8} {'peak RSS MiB':>13} {'frames decoded':>15} {'--help s':>9}")
    med = {}
    for name, rows in results.items():
        wall = statistics.median(r[0] for r in rows)
        rss = statistics.median(r[1] for r in rows) / 2**20
        decoded = statistics.median(r[2] for r in rows)
        med[name] = wall
        print(f"{name:4} {wall:8.2f} {rss:13.0f} {decoded:15.0f} {helps[name]:9.2f}")
    print(
        f"frames one forward pass needs: {need}; speed-up new vs old: {med['old'] / med['new']:.2f}x"
    )


if __name__ == "__main__":
    main()
