"""Scan and filter videos: probe each file, score its sampled frames, keep the usable clips.

Scores per clip (from the 16 segment-midpoint samples):

* ``camera_motion``: how far the camera's homography (what ``detect/motion.py`` fits to dense
  flow) moves the frame's corners and centre, in frame sides per second;
* ``object_motion``: residual flow (what the homography and the local parallax do not explain)
  on the pixels that move on their own, frame sides per second;
* ``moving_share``: the share of the frame that moves on its own;
* ``sharpness``, ``blockiness`` and ``clarity`` (= sharpness / blockiness): technical clarity;
* optionally ``yes_object_motion`` / ``yes_camera_motion``: the MLLM's VQAScore-style
  yes-probability for "object motion" / "camera motion" (6 frames).

The verdict (``keep``, ``reasons``) and the split (the best clips to ``preference``, the rest to
``sft``, as the paper did) come from :class:`Thresholds`, re-applied to every record at the end of
each run, so new thresholds need no rescoring.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ..detect.motion import MotionOptions, gray_u8, local_median, residual_flow
from ..video.source import Sampling, VideoFile
from .clarity import blockiness, luma, sharpness
from .thresholds import Thresholds

__all__ = [
    "SCORES",
    "VIDEO_SUFFIXES",
    "ScanOptions",
    "Thresholds",
    "apply_thresholds",
    "find_videos",
    "motion_scores",
    "save_histograms",
    "scan_video",
]

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
SCORES = ("camera_motion", "object_motion", "moving_share", "sharpness", "blockiness", "clarity",
          "yes_object_motion", "yes_camera_motion")  # fmt: skip


@dataclass(frozen=True)
class ScanOptions:
    """How a clip is scored.

    num_frames: segment-midpoint samples (16, as the MLLM sees them).
    work_side: longest side (px) the motion scores are computed at.
    clarity_frames: how many of the samples the clarity scores use (evenly spaced).
    vqa_frames: frames shown to the MLLM for the yes-probability (6 in the paper).
    clarity_crop: side (px) of the central window the clarity scores read, at decoded size.
    """

    num_frames: int = 16
    work_side: int = 160
    clarity_frames: int = 3
    vqa_frames: int = 6
    clarity_crop: int = 320

    def __post_init__(self) -> None:
        if self.num_frames < 2 or self.work_side < 32 or self.clarity_frames < 1:
            raise ValueError(f"scan needs num_frames >= 2, work_side >= 32, clarity_frames >= 1; got {self}")


def find_videos(inputs: Sequence[str | Path]) -> list[Path]:
    """Video files under the given folders (recursive, sorted) and files given directly.

    Raises:
        ValueError: a path that does not exist, or no video found at all.
    """
    found: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES
                            and p.is_file() and not p.name.startswith("."))  # fmt: skip
        elif path.is_file():
            found.append(path)
        else:
            raise ValueError(f"{path}: no such file or folder")
    if not found:
        raise ValueError(f"no video files ({', '.join(VIDEO_SUFFIXES)}) under {', '.join(map(str, inputs))}")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return unique


# ---------------------------------------------------------------------------------- scores
def motion_scores(
    frames: torch.Tensor,
    times: Sequence[float],
    options: MotionOptions | None = None,
    min_share: float = 0.002,
) -> dict[str, float]:
    """Camera motion, object motion and moving share of sampled frames.

    Uses the moving-object detector's own steps: dense flow between consecutive samples, the
    camera homography fitted to it with RANSAC, the residual after local-parallax removal, the
    noise-floor threshold of that residual.

    Args:
        frames: `[N, 3, h, w]` float 0..1 at working resolution, N >= 2.
        times: the N sample times (s).
        options: the detector's parameters (its `baseline`: flow spans that many samples).
        min_share: a pair whose moving area is below this share of the frame has no object
            motion (flow noise on a few pixels).

    Returns:
        {"camera_motion", "object_motion" (frame sides per second), "moving_share" (0..1)}.
    """
    options = options or MotionOptions()
    n, _, h, w = frames.shape
    b = min(options.baseline, n - 1)
    pairs = [(i, i + b) for i in range(n - b)]
    residual_np, homs, _ = residual_flow(gray_u8(frames), pairs, options)
    dt = torch.tensor([max(times[j] - times[i], 1e-3) for i, j in pairs])
    side = float(max(h, w))
    points = np.array([[[0, 0]], [[w, 0]], [[0, h]], [[w, h]], [[w / 2, h / 2]]], np.float32)
    camera = torch.tensor(
        [float(np.linalg.norm(cv2.perspectiveTransform(points, hm) - points, axis=-1).mean())
         for hm in homs]  # fmt: skip
    )
    residual = torch.from_numpy(residual_np)
    if options.parallax_window > 0:
        residual = residual - local_median(residual, options.parallax_window)
    magnitude = residual.norm(dim=-1)  # [P, h, w]
    flat = magnitude.flatten(1)
    med = flat.median(1).values
    mad = (flat - med[:, None]).abs().median(1).values
    thresh = torch.clamp(med + options.noise_factor * 1.4826 * mad, min=options.flow_threshold)
    moving = magnitude > thresh[:, None, None]
    share = moving.float().mean(dim=(1, 2))
    inside = (magnitude * moving).sum(dim=(1, 2)) / moving.sum(dim=(1, 2)).clamp(min=1)
    inside = torch.where(share >= min_share, inside, torch.zeros_like(inside))
    return {
        "camera_motion": float((camera / side / dt).median()),
        "object_motion": float((inside / side / dt).median()),
        "moving_share": float(share.mean()),
    }


def _round(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 5)


def scan_video(
    path: str | Path,
    options: ScanOptions | None = None,
    yes_model: Any = None,
    timings: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Probe and score one video.

    Args:
        path: the video file.
        options: sampling and working sizes.
        yes_model: an MLLM backend for the yes-probabilities (None: skipped).
        timings: when given, receives the seconds spent in "decode", "motion", "clarity", "vqa".

    Returns:
        {"probe": {duration, fps, frame_count, width, height}, "scores": {...}, "vqa_source"}.

    Raises:
        VideoError: the file is missing, not a video, or cannot be decoded (names the file).
    """
    options = options or ScanOptions()
    timings = timings if timings is not None else {}
    t0 = time.perf_counter()
    video = VideoFile.open(path)
    info = video.info
    sampling = Sampling.segments(info, options.num_frames)
    frames = video.read(sampling.indices)  # uint8 [N, H, W, 3] at the decoded size
    t1 = time.perf_counter()
    timings["decode"] = timings.get("decode", 0.0) + (t1 - t0)

    pick = np.linspace(0, len(frames) - 1, min(options.clarity_frames, len(frames))).round()
    gray = luma(_centre_crop(frames[torch.from_numpy(pick.astype(np.int64))], options.clarity_crop))
    sharp = float(sharpness(gray).mean())
    block = float(blockiness(gray).mean())
    t2 = time.perf_counter()
    timings["clarity"] = timings.get("clarity", 0.0) + (t2 - t1)

    scale = min(1.0, options.work_side / max(info.width, info.height))
    h, w = max(8, round(info.height * scale)), max(8, round(info.width * scale))
    small = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames.numpy()])
    small = torch.from_numpy(small).permute(0, 3, 1, 2).float().div_(255)
    scores: dict[str, float | None] = dict(
        motion_scores(small, sampling.timestamps) if len(frames) >= 2 else
        {"camera_motion": 0.0, "object_motion": 0.0, "moving_share": 0.0}  # fmt: skip
    )
    t3 = time.perf_counter()
    timings["motion"] = timings.get("motion", 0.0) + (t3 - t2)
    scores.update(sharpness=sharp, blockiness=block, clarity=sharp / max(block, 1.0))

    vqa_source = None
    if yes_model is not None:
        from .vqascore import VQA_TEXTS, yes_probability

        pick = np.linspace(0, len(frames) - 1, min(options.vqa_frames, len(frames))).round()
        shown = frames[torch.from_numpy(pick.astype(np.int64))].float().div_(255)
        for kind, text in VQA_TEXTS.items():
            scores[f"yes_{kind}_motion"], vqa_source = yes_probability(yes_model, shown, text)
        timings["vqa"] = timings.get("vqa", 0.0) + (time.perf_counter() - t3)
    return {
        "probe": {
            "duration": round(info.duration, 3),
            "fps": round(info.fps, 3),
            "frame_count": info.frame_count,
            "width": info.width,
            "height": info.height,
        },
        "scores": {k: _round(v) for k, v in scores.items()},
        "vqa_source": vqa_source,
    }


def _centre_crop(frames: torch.Tensor, side: int) -> torch.Tensor:
    """The central `side` x `side` window of `[N, H, W, C]`, its corner on the 8-px codec grid."""
    h, w = frames.shape[1:3]
    y = max(0, (h - side) // 2) // 8 * 8
    x = max(0, (w - side) // 2) // 8 * 8
    return frames[:, y : y + side, x : x + side]


# ---------------------------------------------------------------------------------- verdicts
def _reasons(record: Mapping[str, Any], t: Thresholds) -> list[str]:
    if record.get("error"):
        return ["not decodable"]
    probe, s = record["probe"], record["scores"]
    reasons = []
    checks: list[tuple[bool, str]] = [
        (t.min_duration is not None and probe["duration"] < t.min_duration,
         f"duration {probe['duration']:.1f}s < {t.min_duration}"),
        (t.max_duration is not None and probe["duration"] > t.max_duration,
         f"duration {probe['duration']:.1f}s > {t.max_duration}"),
        (t.min_side is not None and min(probe["width"], probe["height"]) < t.min_side,
         f"size {probe['width']}x{probe['height']} < {t.min_side}"),
        (t.min_clarity is not None and (s.get("clarity") or 0) < t.min_clarity,
         f"clarity {s.get('clarity')} < {t.min_clarity}"),
        (t.max_blockiness is not None and (s.get("blockiness") or 0) > t.max_blockiness,
         f"blockiness {s.get('blockiness')} > {t.max_blockiness}"),
        (t.min_moving_share is not None and (s.get("moving_share") or 0) < t.min_moving_share,
         f"moving share {s.get('moving_share')} < {t.min_moving_share}"),
    ]  # fmt: skip
    reasons = [why for failed, why in checks if failed]
    moves = [
        t.min_object_motion is not None and (s.get("object_motion") or 0) >= t.min_object_motion,
        t.min_camera_motion is not None and (s.get("camera_motion") or 0) >= t.min_camera_motion,
    ]
    if t.min_object_motion is None and t.min_camera_motion is None:
        moves.append(True)
    if t.min_yes is not None:
        yes = [s.get("yes_object_motion"), s.get("yes_camera_motion")]
        moves.append(any(y is not None and y >= t.min_yes for y in yes))
    if not any(moves):
        reasons.append(
            f"too little motion (object {s.get('object_motion')}, camera {s.get('camera_motion')})"
        )
    return reasons


def apply_thresholds(records: Mapping[str, dict[str, Any]], thresholds: Thresholds) -> None:
    """Set ``keep``, ``reasons`` and ``split`` on every record, in place.

    The kept clips are ranked by motion (the larger of object and camera motion, relative to its
    minimum) times clarity; the top ``preference_share`` go to "preference", the rest to "sft".
    """
    kept = []
    for record in records.values():
        reasons = _reasons(record, thresholds)
        record["keep"] = not reasons
        record["reasons"] = reasons
        record["split"] = None
        if not reasons:
            kept.append(record)

    def strength(record: Mapping[str, Any]) -> float:
        s = record["scores"]
        obj = (s.get("object_motion") or 0) / (thresholds.min_object_motion or 0.02)
        cam = (s.get("camera_motion") or 0) / (thresholds.min_camera_motion or 0.02)
        return max(obj, cam) * (s.get("clarity") or 0)

    kept.sort(key=strength, reverse=True)
    n_pref = int(round(len(kept) * thresholds.preference_share))
    for rank, record in enumerate(kept):
        record["split"] = "preference" if rank < n_pref else "sft"


# ---------------------------------------------------------------------------------- histograms
def save_histograms(
    records: Sequence[Mapping[str, Any]],
    folder: str | Path,
    thresholds: Thresholds | None = None,
    bins: int = 20,
) -> list[Path]:
    """One PNG histogram per score over the decodable clips, the threshold drawn in red.

    Returns the files written (``<folder>/hist_<score>.png``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    limits = {
        "object_motion": getattr(thresholds, "min_object_motion", None),
        "camera_motion": getattr(thresholds, "min_camera_motion", None),
        "moving_share": getattr(thresholds, "min_moving_share", None),
        "clarity": getattr(thresholds, "min_clarity", None),
        "blockiness": getattr(thresholds, "max_blockiness", None),
        "yes_object_motion": getattr(thresholds, "min_yes", None),
        "yes_camera_motion": getattr(thresholds, "min_yes", None),
    }
    written = []
    for name in SCORES:
        values = [r["scores"].get(name) for r in records if not r.get("error")]
        values = [v for v in values if v is not None]
        if not values:
            continue
        path = folder / f"hist_{name}.png"
        _draw_histogram(np.asarray(values, np.float64), name, limits.get(name), bins, path)
        written.append(path)
    return written


def _draw_histogram(values: np.ndarray, name: str, limit: float | None, bins: int, path: Path) -> None:
    width, height, margin = 640, 360, 48
    lo, hi = float(values.min()), float(values.max())
    if limit is not None:
        lo, hi = min(lo, limit), max(hi, limit)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    img = np.full((height, width, 3), 255, np.uint8)
    plot_w, plot_h = width - 2 * margin, height - 2 * margin
    top = max(int(counts.max()), 1)
    bar_w = plot_w / bins
    for i, c in enumerate(counts):
        x0 = int(margin + i * bar_w)
        x1 = int(margin + (i + 1) * bar_w) - 1
        y0 = int(height - margin - plot_h * c / top)
        cv2.rectangle(img, (x0, y0), (x1, height - margin), (180, 120, 60), -1)
    cv2.line(img, (margin, height - margin), (width - margin, height - margin), (0, 0, 0), 1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, f"{name}  (n={len(values)}, max count {top})", (margin, 30), font, 0.55,
                (0, 0, 0), 1, cv2.LINE_AA)  # fmt: skip
    for value, x in ((lo, margin), (hi, width - margin - 60)):
        cv2.putText(img, f"{value:.4g}", (x, height - margin + 20), font, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)  # fmt: skip
    if limit is not None:
        x = int(margin + plot_w * (limit - lo) / (hi - lo))
        cv2.line(img, (x, margin), (x, height - margin), (0, 0, 255), 2)
        cv2.putText(img, f"threshold {limit:g}", (min(x + 4, width - 150), margin + 14), font,
                    0.45, (0, 0, 255), 1, cv2.LINE_AA)  # fmt: skip
    if not cv2.imwrite(str(path), img):
        raise OSError(f"could not write {path}")


# ---------------------------------------------------------------------------------- settings
def thresholds_from(values: Mapping[str, Any]) -> Thresholds:
    """Thresholds from a mapping with (some of) its field names (CLI flags, JSON)."""
    known = set(Thresholds.names())
    return Thresholds(**{k: v for k, v in values.items() if k in known})
