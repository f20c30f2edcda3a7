"""The weight-free detectors on the real sample clips.

How the checks work (hand labels in clip_truth.py, made by viewing the sampled frames):
- lawn_mowing.mp4: the mowing person's torso centre was hand-labelled on each of the 16 sampled
  frames (1280x720 pixels). The spotlight box (detections -> temporal clustering) must contain
  a 40x40 patch around it in at least 14 of 16 frames. HOG, an independent detector, must find
  a person overlapping the weight-free boxes where the person is small and upright.
- desert_train.mp4: the centre line of the near part of the train was hand-labelled as a
  polyline (512x512 pixels; the drone follows the train, so it stays in place in the image).
  A detected box lies on the train when its centre is within 40 px of that line and it holds
  at least 30% of the points sampled along it (about 160 px of train): at least 12 of 16
  frames need one. The spotlight must hold 60% of the line in every frame. The train moves about
  0.3 px per sampled frame against the ground at the working resolution, so this is the
  slow-object case; the camera's parallax also boxes the near embankment in some frames,
  which the check counts and bounds.
"""

from __future__ import annotations

import pytest
import synthetic
import torch
from clip_truth import (
    LAWN_TORSO,
    TRAIN_LINE,
    line_points,
    share_of_points_inside,
    train_box_counts,
)

from motionsight.detect import detect_and_track, load_detector, spotlight_boxes_from_detections
from motionsight.detect.detections import box_iou


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


def test_desert_train_boxes_lie_on_the_train(sample_videos_dir):
    frames = synthetic.sampled_frames(sample_videos_dir / "desert_train.mp4")
    found = detect_and_track(frames, "train", load_detector("motion"))
    on_train, off_train = train_box_counts(found.boxes)
    assert on_train >= 12, (on_train, found.boxes)
    assert off_train <= 8, (off_train, found.boxes)
    # the spotlight (temporal clustering of those boxes) holds most of the train in every frame
    # (the reference clustering's cluster union; the robust default is scored against whole-train
    # labels in test_spotlight_quality.py)
    spot = spotlight_boxes_from_detections(found, mode="reference").boxes
    held = share_of_points_inside(spot, line_points(TRAIN_LINE))
    assert bool((held >= 0.6).all()), (held, spot)
