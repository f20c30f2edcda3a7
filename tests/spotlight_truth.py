"""Spotlight quality against ground-truth boxes of the acting subject (hand labels or synthetic).

The measure (issue 13): the spotlight is the clustered box padded by 20 px (clipped), as the
default `object_spotlight` chain draws it; a frame *holds* the actor when at least 90% of the
labelled box lies inside the spotlight. The *oracle* is the same clustering and padding applied
to the labelled boxes themselves: the smallest spotlight the chain could draw.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch

from motionsight.detect.detections import Detections
from motionsight.detect.tracking import spotlight_boxes_from_detections
from motionsight.kernels.spotlight import pad_boxes

LABELS = Path(__file__).resolve().parent / "data" / "spotlight_labels.json"
PADDING = 20.0
HOLD = 0.9


def load_labels() -> dict[str, torch.Tensor]:
    """Clip name -> hand-labelled boxes `[16, 4]` (pixels of the clip)."""
    clips = json.loads(LABELS.read_text())["clips"]
    return {name: torch.tensor(c["boxes"], dtype=torch.float32) for name, c in clips.items()}


def held_share(truth: torch.Tensor, spot: torch.Tensor) -> torch.Tensor:
    """Per frame the share of the true box `[N, 4]` inside the spotlight box `[N, 4]` -> `[N]`."""
    lt = torch.maximum(truth[:, :2], spot[:, :2])
    rb = torch.minimum(truth[:, 2:], spot[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    return inter / (truth[:, 2:] - truth[:, :2]).prod(1).clamp(min=1e-6)


@dataclass
class SpotlightScore:
    held: int  # frames whose spotlight holds >= 90% of the actor
    frames: int
    area: float  # median spotlight area, share of the frame
    oracle: float  # median oracle area
    shares: list[float]

    def row(self) -> str:
        return (
            f"{self.held:>3}/{self.frames:<3}{self.area:>10.2f}{self.oracle:>10.2f}"
            f"{self.area / max(self.oracle, 1e-6):>9.2f}x"
        )


def score_spotlight(
    spot: torch.Tensor, truth: torch.Tensor, height: int, width: int, mode: str = "robust"
) -> SpotlightScore:
    """Score clustered spotlight boxes `[N, 4]` (unpadded) against true boxes `[N, 4]`; the
    oracle clusters the true boxes with the same `mode` ("robust" or "reference")."""
    padded = pad_boxes(spot.float(), PADDING, height, width)
    truth_detections = Detections.from_bbox(truth.tolist(), truth.shape[0], height, width)
    oracle_boxes = spotlight_boxes_from_detections(truth_detections, mode=mode).boxes
    oracle = pad_boxes(oracle_boxes, PADDING, height, width)
    shares = held_share(truth, padded)
    area = lambda b: (b[:, 2:] - b[:, :2]).prod(1) / (height * width)  # noqa: E731
    return SpotlightScore(
        held=int((shares >= HOLD).sum()),
        frames=truth.shape[0],
        area=statistics.median(area(padded).tolist()),
        oracle=statistics.median(area(oracle).tolist()),
        shares=[round(float(s), 3) for s in shares],
    )
