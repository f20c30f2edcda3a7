"""Benchmark of the weight-free moving-object detector.

Prints, per synthetic scenario (tests/synthetic.py: textured background, static / panning /
zooming / parallax camera, one or two objects on known paths), for the default detector and,
side by side, for the single-step detector without parallax, two-way or hysteresis steps
(`SINGLE_STEP`, the previous default):
- median per-frame IoU of the best detected box with the true box of object 0,
- share of frames where the spotlight box (after temporal clustering) holds >= 90% of the
  object's area, and the median share of the frame the spotlight covers;
then, on the real desert_train.mp4 (a slow train filmed from a drone), in how many of the 16
frames a box lies on the train (tests/test_detect_real.py's check); then the time to detect on
16 frames of 1280x720 (the real lawn_mowing.mp4 clip when present, else a synthetic clip at
that size): median of several runs at the default working resolution,
against the same detector at full resolution (the baseline), measured side by side.

Run: .venv/bin/python bench/bench_detection.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from clip_truth import train_box_counts  # noqa: E402
from synthetic import box_iou_one, covered_fraction, make_video, sampled_frames  # noqa: E402

from motionsight.detect import detect_and_track, load_detector, spotlight_boxes_from_detections  # noqa: E402

SCENARIOS = [("static", 1), ("pan", 1), ("zoom", 1), ("parallax", 1), ("static", 2), ("pan", 2)]
SINGLE_STEP = {"baseline": 1, "parallax_window": 0.0, "bidirectional": False, "hysteresis": 1.0}


def scenario_figures(camera: str, objects: int, seeds: range, **options) -> dict[str, float]:
    detector = load_detector("motion", **options)
    ious, held, area = [], [], []
    for seed in seeds:
        video = make_video(camera=camera, num_objects=objects, seed=seed)
        found = detect_and_track(video.frames, "", detector)
        truth = video.boxes[:, 0]
        ious += [
            max((box_iou_one(b, t) for b in boxes), default=0.0)
            for boxes, t in zip(found.boxes, truth, strict=True)
        ]
        spot = spotlight_boxes_from_detections(found).boxes
        held += [covered_fraction(t, s) >= 0.9 for t, s in zip(truth, spot, strict=True)]
        h, w = video.frames.shape[1:3]
        area.append(float(((spot[:, 2:] - spot[:, :2]).prod(1) / (h * w)).median()))
    return {
        "median_iou": statistics.median(ious),
        "held_90": sum(held) / len(held),
        "spot_area": statistics.median(area),
    }


def timing(frames: torch.Tensor, runs: int, **options) -> float:
    detector = load_detector("motion", **options)
    detector.detect(frames, [])  # warm-up (OpenCV / torch kernels)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        detector.detect(frames, [])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3, help="synthetic clips per scenario")
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")
    print(
        f"{'scenario':<12}{'median IoU':>12}{'held>=90%':>12}{'spot area':>12}"
        f"   single-step: {'IoU':>6}{'held':>7}{'area':>7}   (object 0, {args.seeds} clips each)"
    )
    for camera, objects in SCENARIOS:
        f = scenario_figures(camera, objects, range(args.seeds))
        b = scenario_figures(camera, objects, range(args.seeds), **SINGLE_STEP)
        print(
            f"{camera + ' x' + str(objects):<12}{f['median_iou']:>12.3f}{f['held_90']:>12.3f}"
            f"{f['spot_area']:>12.3f}   {'':13}{b['median_iou']:>6.3f}{b['held_90']:>7.3f}"
            f"{b['spot_area']:>7.3f}"
        )

    train = ROOT.parent / "shared" / "videos" / "desert_train.mp4"
    if train.exists():
        frames = sampled_frames(train)
        print(
            "\ndesert_train.mp4 (slow train, drone camera), frames of 16 with a box on / off the train:"
        )
        for name, options in (("default", {}), ("single-step", SINGLE_STEP)):
            on, off = train_box_counts(load_detector("motion", **options).detect(frames, []).boxes)
            print(f"  {name:<12} on {on:>2}   off {off:>2}")

    clip = ROOT.parent / "shared" / "videos" / "lawn_mowing.mp4"
    if clip.exists():
        frames, source = sampled_frames(clip), clip.name
    else:
        frames, source = make_video(height=720, width=1280).frames, "synthetic"
    assert tuple(frames.shape) == (16, 720, 1280, 3), frames.shape
    fast = timing(frames, args.runs)
    single = timing(frames, args.runs, **SINGLE_STEP)
    full = timing(frames, max(1, args.runs // 2), work_side=1280)
    print(f"\nmotion detector, 16 frames 1280x720 ({source}), median of {args.runs} runs:")
    print(f"  working side 320 (default): {fast:.3f} s   (target < 2 s)")
    print(f"  single-step, side 320:      {single:.3f} s   (half the flows)")
    print(f"  full resolution (baseline): {full:.3f} s")
    print(f"  speed-up vs full resolution: {full / fast:.1f}x")


if __name__ == "__main__":
    main()
