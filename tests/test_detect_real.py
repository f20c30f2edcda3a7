"""The weight-free detectors on the real sample clips.

How the checks work (approximate ground truth, verified by viewing the sampled frames):
- lawn_mowing.mp4: the mowing person's torso centre was hand-labelled on each of the 16 sampled
  frames (1280x720 pixels). The spotlight box (detections -> temporal clustering) must contain
  a 40x40 patch around it in at least 14 of 16 frames. HOG, an independent detector, must find
  a person overlapping the weight-free boxes where the person is small and upright.
- desert_train.mp4: the train's centre line was hand-labelled as a polyline (512x512 pixels;
  the train barely moves in the image over the clip). A frame counts as covered when the
  detected boxes hold at least half of the points sampled along that line.
"""

from __future__ import annotations

import pytest
import synthetic
import torch

from motionsight.detect import detect_and_track, load_detector, spotlight_boxes_from_detections
from motionsight.detect.detections import box_iou

LAWN_TORSO = [
    (623, 105), (605, 98), (595, 105), (567, 113), (553, 123), (503, 123), (486, 158), (422, 176),
    (299, 194), (109, 176), (88, 211), (81, 211), (211, 299), (690, 299), (1133, 264), (1225, 299),
]  # fmt: skip
TRAIN_LINE = [
    (20, 240),
    (64, 268),
    (128, 295),
    (192, 315),
    (256, 333),
    (320, 350),
    (384, 365),
    (448, 378),
    (512, 392),
]


@pytest.fixture(scope="session")
def lawn(sample_videos_dir) -> torch.Tensor:
    return synthetic.sampled_frames(sample_videos_dir / "lawn_mowing.mp4")


def test_lawn_mowing_spotlight_contains_the_person(lawn):
    found = detect_and_track(lawn, "person, lawn mower", load_detector("motion"))
    spot = spotlight_boxes_from_detections(found)
    assert not spot.fallback
    patch = torch.tensor(
        [[x - 20, y - 20, x + 20, y + 20] for x, y in LAWN_TORSO], dtype=torch.float32
    )
    inside = ((patch[:, :2] >= spot.boxes[:, :2]) & (patch[:, 2:] <= spot.boxes[:, 2:])).all(1)
    assert int(inside.sum()) >= 14, (inside.tolist(), spot.boxes.tolist())


def test_lawn_mowing_hog_agrees_with_the_motion_boxes(lawn):
    hog = load_detector("hog_people", threshold=0.0)
    people = hog.detect(lawn[:4], ["person"])  # far away and upright: HOG's home ground
    motion = load_detector("motion").detect(lawn, [])
    agree = 0
    for f in range(4):
        if people.boxes[f].shape[0] and motion.boxes[f].shape[0]:
            agree += int(box_iou(people.boxes[f], motion.boxes[f]).max() > 0.2)
    assert agree >= 2, (people.boxes, motion.boxes[:4])
    # HOG answers only prompts that name people
    assert hog.detect(lawn[:2], ["train"]).is_empty


@pytest.mark.xfail(
    strict=True,
    reason="known limit: in desert_train the camera orbits and the long train moves under 1 px per "
    "sampled frame relative to the ground, below the terrain's parallax; the motion detector boxes "
    "the foreground instead (see report)",
)
def test_desert_train_boxes_cover_the_train(sample_videos_dir):
    frames = synthetic.sampled_frames(sample_videos_dir / "desert_train.mp4")
    found = load_detector("motion").detect(frames, ["train"])
    line = torch.tensor(TRAIN_LINE, dtype=torch.float32)
    points = torch.cat(
        [
            torch.lerp(line[k], line[k + 1], torch.linspace(0, 1, 20)[:, None])
            for k in range(len(line) - 1)
        ]
    )
    covered = 0
    for boxes in found.boxes:
        inside = (
            ((points[:, None, :] >= boxes[None, :, :2]) & (points[:, None, :] < boxes[None, :, 2:]))
            .all(-1)
            .any(1)
        )
        covered += int(inside.float().mean() >= 0.5)
    assert covered >= 9, covered
