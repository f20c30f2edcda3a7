"""Speed of `motionsight dataset scan`: clips per minute, and the share spent decoding.

Measured side by side in this process (medians of ``--repeats`` runs):

* a 10 s 1280x720 clip made here from a shared clip (its first 10 s re-encoded with OpenCV's
  mp4v): decoding its 16 segment-midpoint samples alone (``VideoFile.open`` + ``read``, the
  baseline) against scanning it (the same decode + clarity + motion scores); target: the scan
  costs at most 1.5x the decode;
* the five shared clips: clips per minute through ``scan_video`` and the share of that time
  spent decoding (the rest is the scores).

Torch runs one thread per scan (what the CLI does: clips go to threads instead).

    .venv/bin/python bench/bench_dataset_scan.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import torch

from motionsight.dataset.scan import scan_video
from motionsight.video.source import Sampling, VideoFile

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "videos"
CLIPS = ["desert_train", "desert_vehicles_aerial", "diving_board", "lawn_mowing", "stairs_pet"]


def make_720p_clip(source: Path, out: Path, seconds: float = 10.0) -> Path:
    """The first `seconds` of `source` at 1280x720 (resized if needed), mp4v, same fps."""
    cap = cv2.VideoCapture(str(source))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (1280, 720))
    frames = 0
    while frames < round(seconds * fps):
        ok, frame = cap.read()
        if not ok:
            cap.release()
            cap = cv2.VideoCapture(str(source))  # loop a short source
            continue
        if frame.shape[:2] != (720, 1280):
            frame = cv2.resize(frame, (1280, 720), interpolation=cv2.INTER_AREA)
        writer.write(frame)
        frames += 1
    cap.release()
    writer.release()
    return out


def decode_only(path: Path) -> float:
    t0 = time.perf_counter()
    video = VideoFile.open(path)
    video.read(Sampling.segments(video.info, 16).indices)
    return time.perf_counter() - t0


def scan_once(path: Path) -> tuple[float, dict[str, float]]:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    scan_video(path, timings=timings)
    return time.perf_counter() - t0, timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_720p_clip(VIDEOS / "stairs_pet.mp4", Path(tmp) / "ten_s_720p.mp4")
        info = VideoFile.open(clip).info
        scan_once(clip)  # warm-up (imports, first allocations)
        decode, scan, ratios, phases = [], [], [], []
        for _ in range(args.repeats):  # interleaved: both see the same machine load
            decode.append(decode_only(clip))
            seconds, timings = scan_once(clip)
            scan.append(seconds)
            ratios.append(scan[-1] / decode[-1])
            phases.append(timings)
        d, s = statistics.median(decode), statistics.median(scan)
        parts = ", ".join(f"{k} {statistics.median(p[k] for p in phases):.3f} s"
                          for k in ("decode", "clarity", "motion"))  # fmt: skip
        print(f"10 s 720p clip ({info.width}x{info.height}, {info.frame_count} frames @ "
              f"{info.fps:g} fps): decode 16 samples {d:.3f} s, scan {s:.3f} s ({parts}), "
              f"ratio {statistics.median(ratios):.2f}x (median of per-run ratios; target <= 1.5x)")  # fmt: skip

    totals, decodes = [], []
    for _ in range(args.repeats):
        total = dec = 0.0
        for name in CLIPS:
            seconds, timings = scan_once(VIDEOS / f"{name}.mp4")
            total += seconds
            dec += timings["decode"]
        totals.append(total)
        decodes.append(dec / total)
    t = statistics.median(totals)
    print(f"five shared clips: {t:.2f} s per pass -> {60 * len(CLIPS) / t:.0f} clips/min on this "
          f"CPU (1 thread), decoding {100 * statistics.median(decodes):.0f} % of the scan")  # fmt: skip


if __name__ == "__main__":
    main()
