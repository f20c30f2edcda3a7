"""Motion trails for the 16 sampled frames: this project vs the reference's whole-video approach.

    python bench/bench_motion_trails.py [--videos DIR] [--repeat N] [--memory-clip NAME]

Reference (what NJU-PCALab/MotionSight does): decode every frame of the video with OpenCV, blend
each with its 6 predecessors by the reference's sequential fold (`cv2.addWeighted`, uint8 after
every step, a deque of 7 frames), write the whole blurred video as mp4v (streaming), re-read it
and pick the 16 sampled frames.
Ours: `render_motion_trails` on a fresh `VideoClip` from `open_video` (full resolution,
trailing). All run side by side in this process, medians of `--repeat` interleaved runs;
"floor" is the time merely to decode (grab) every frame up to the last one the trails need;
"+rgb" also converts the frames the windows need to BGR (OpenCV's `retrieve`, one call per
frame between grabs): what decoding alone costs any OpenCV-based path, before any blending.

Memory: a 10x longer video (one clip's frames written 10 times, mp4v) against the same clip
written once; each measurement runs in a fresh spawned child that reports its peak RSS growth
(peak RSS at the end minus peak RSS right after imports).
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import resource
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEOS = ROOT.parent / "shared" / "videos"
CLIPS = [
    "desert_train.mp4",
    "desert_vehicles_aerial.mp4",
    "diving_board.mp4",
    "lawn_mowing.mp4",
    "stairs_pet.mp4",
]
ECHOES, DECAY, SAMPLES = 7, 0.65, 16


def baseline_trails(path: str, sample_indices: list[int]) -> np.ndarray:
    """The reference approach, faithfully; returns the sampled blended frames, uint8 RGB `[16, H, W, 3]`.

    Decode every frame, blend it with its 6 predecessors by the reference's sequential fold
    (`cv2.addWeighted`, uint8 after every step, a deque of 7 frames), write each blended frame
    to an mp4v video as it comes (streaming: memory holds the window, not the video), then
    re-read that video and take the 16 sampled frames (the reference re-reads with moviepy;
    OpenCV grabbing up to the last sample is, if anything, faster). The frames taken are the
    re-encoded ones, as the MLLM gets them there.
    """
    cap = cv2.VideoCapture(path)
    fps = cap.get(cv2.CAP_PROP_FPS) or 24.0
    window: collections.deque = collections.deque(maxlen=ECHOES)
    with tempfile.TemporaryDirectory() as tmp:
        blurred_path = f"{tmp}/blurred.mp4"
        writer = None
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(blurred_path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            window.append(frame)
            out = frame.copy()
            for k, past in enumerate(reversed(window)):  # k = 0 is the frame itself
                d = DECAY ** (k + 1)
                out = cv2.addWeighted(past, d, out, 1 - d, 0)
            writer.write(out)
        cap.release()
        writer.release()
        reread = cv2.VideoCapture(blurred_path)
        picked, wanted, index = {}, set(sample_indices), 0
        last = max(sample_indices)
        while index <= last and reread.grab():
            if index in wanted:
                picked[index] = cv2.cvtColor(reread.retrieve()[1], cv2.COLOR_BGR2RGB)
            index += 1
        reread.release()
    return np.stack([picked[i] for i in sample_indices])


def ours_trails(path: str):
    """This project's path; returns (float `[16, H, W, 3]` 0..1, sample indices, VideoFile)."""
    from motionsight.video import Sampling, VideoClip, open_video, render_motion_trails

    video = open_video(path)
    clip = VideoClip(video, Sampling.segments(video.info, SAMPLES))
    return render_motion_trails(clip, ECHOES, DECAY, "trailing"), list(clip.sampling.indices), video


def needed_frames(indices: list[int], frame_count: int) -> frozenset[int]:
    """The frames the trailing windows of the sampled `indices` blend."""
    import torch

    from motionsight.kernels.trails import trail_windows

    windows, _ = trail_windows(torch.tensor(indices), frame_count, ECHOES, DECAY, "trailing")
    return frozenset(windows.flatten().tolist())


def decode_floor(path: str, last: int, convert: frozenset[int] = frozenset()) -> float:
    """Seconds to merely decode (grab) every frame up to `last`, the last one the trails need,
    also converting the frames in `convert` to BGR (`retrieve`) when given."""
    start = time.perf_counter()
    cap = cv2.VideoCapture(path)
    frame = None
    for index in range(last + 1):
        if not cap.grab():
            break
        if index in convert:
            _, frame = cap.retrieve(frame)
    cap.release()
    return time.perf_counter() - start


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def peak_rss_mib() -> float:
    """This process's peak resident memory, MiB.

    Linux's `ru_maxrss` survives `execve`, so a freshly spawned child would start with the
    parent's peak (the parent ran the baselines); the kernel's per-process high-water mark
    `VmHWM` starts afresh and is read instead where it exists.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(kind: str, path: str, queue) -> None:
    """Runs in a spawned process: peak RSS growth (MiB) of one approach on one video."""
    from motionsight.video import Sampling, open_video

    start_rss = peak_rss_mib()  # after imports
    start = time.perf_counter()
    if kind == "ours":
        ours_trails(path)
    else:
        info = open_video(path).info
        baseline_trails(path, list(Sampling.segments(info, SAMPLES).indices))
    elapsed = time.perf_counter() - start
    queue.put((peak_rss_mib() - start_rss, elapsed))


def measure(kind: str, path: str) -> tuple[float, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(kind, path, queue))
    proc.start()
    result = queue.get(timeout=600)
    proc.join()
    return result


def write_repeated(src: str, dst: str, times: int) -> int:
    """Write `src`'s frames `times` times over into `dst` (mp4v); returns the frame count."""
    cap = cv2.VideoCapture(src)
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(dst, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for _ in range(times):
        for frame in frames:
            writer.write(frame)
    writer.release()
    return len(frames) * times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=Path, default=DEFAULT_VIDEOS)
    parser.add_argument("--repeat", type=int, default=3, help="runs per approach (medians)")
    parser.add_argument("--memory-clip", default="desert_train.mp4")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()

    missing = [c for c in CLIPS if not (args.videos / c).exists()]
    if missing:
        print(f"sample videos missing in {args.videos}: {missing}")
        return 1

    print(
        f"motion trails, {SAMPLES} samples x {ECHOES} echoes, full resolution, CPU, cv2 {cv2.__version__}"
    )
    header = (
        f"{'video':28} {'frames':>6} {'reference s':>11} {'ours s':>8} {'speed-up':>8} "
        f"{'floor s':>8} {'ours/floor':>10} {'+rgb/floor':>10} {'decoded':>8} {'mean diff':>9}"
    )
    print(header)
    # Warm both paths up (library loading, thread pools) before timing anything.
    warm = str(args.videos / CLIPS[0])
    _, indices, _ = ours_trails(warm)
    baseline_trails(warm, indices)
    total_base = total_ours = 0.0
    for name in CLIPS:
        path = str(args.videos / name)
        # Interleaved runs, medians: a burst of load on the shared machine hits every path.
        runs_ours, runs_base, runs_floor, runs_rgb = [], [], [], []
        for _ in range(args.repeat):
            t, (trails, indices, video) = timed(lambda p=path: ours_trails(p))
            runs_ours.append(t)
            t, reference = timed(lambda p=path, i=indices: baseline_trails(p, i))
            runs_base.append(t)
            runs_floor.append(decode_floor(path, max(indices)))
            needed = needed_frames(indices, video.info.frame_count)
            runs_rgb.append(decode_floor(path, max(indices), convert=needed))
        t_ours, t_base, floor, rgb = (
            statistics.median(r) for r in (runs_ours, runs_base, runs_floor, runs_rgb)
        )
        # The reference rounds to uint8 after every step and re-encodes; a float blend differs.
        diff = np.abs(trails.mul(255).numpy() - reference.astype(np.float32)).mean()
        total_base += t_base
        total_ours += t_ours
        print(
            f"{name:28} {video.info.frame_count:6d} {t_base:11.3f} {t_ours:8.3f} "
            f"{t_base / t_ours:7.1f}x {floor:8.3f} {t_ours / floor:9.2f}x {rgb / floor:9.2f}x "
            f"{video.frames_decoded:8d} {diff:8.2f}"
        )
    print(
        f"{'total':28} {'':6} {total_base:11.3f} {total_ours:8.3f} {total_base / total_ours:7.1f}x"
    )

    if args.skip_memory:
        return 0
    print(
        f"\npeak memory (RSS growth in a fresh process), {args.memory_clip} written 1x and 10x (mp4v)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        src = str(args.videos / args.memory_clip)
        lengths = {}
        for times in (1, 10):
            lengths[times] = write_repeated(src, f"{tmp}/x{times}.mp4", times)
        print(
            f"{'approach':10} {'length':>8} {'frames':>7} {'peak RSS MiB':>13} {'cold run s':>10}"
        )
        for kind in ("ours", "baseline"):
            for times in (1, 10):
                mib, elapsed = measure(kind, f"{tmp}/x{times}.mp4")
                print(f"{kind:10} {times:7d}x {lengths[times]:7d} {mib:13.1f} {elapsed:10.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
