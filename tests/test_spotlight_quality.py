"""Spotlight quality on the real clips against hand labels (tests/data/spotlight_labels.json) and
on synthetic scenarios: the default ("robust") chain against METHOD.md's reference clustering.

Detection runs once per clip (session cache); both clusterings score the same detections, so
the comparison isolates the clustering. The detector gets each clip's action
objects (what an MLLM names; a person there turns on HOG people boxes). Thresholds are the
issue's targets (every frame of every clip held, at most 2x the oracle's area; synthetic pan+zoom,
shake, 1% object, ripples), which bench/bench_spotlight.py meets.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from spotlight_truth import LABELS as LABELS_FILE
from spotlight_truth import load_labels, score_spotlight
from synthetic import make_video, sampled_frames

from motionsight.detect import detect_and_track, load_detector, spotlight_boxes_from_detections
from motionsight.kernels.clustering import robust_cluster_boxes

LABELS = load_labels()
ACTION_OBJECTS = {
    clip: c["action_objects"] for clip, c in json.loads(LABELS_FILE.read_text())["clips"].items()
}


@pytest.fixture(scope="session")
def clip_detections(sample_videos_dir):
    detector = load_detector("motion")
    return {
        clip: detect_and_track(
            sampled_frames(sample_videos_dir / f"{clip}.mp4"), ACTION_OBJECTS[clip], detector
        )
        for clip in LABELS
    }


def _score(detections, clip: str, mode: str):
    spot = spotlight_boxes_from_detections(detections, mode=mode).boxes
    return score_spotlight(spot, LABELS[clip], detections.height, detections.width, mode=mode)


def test_robust_spotlight_is_smaller_than_the_reference_where_detection_overreaches(
    clip_detections,
):
    # (desert_vehicles_aerial no longer: the relative threshold keeps its ground out of detection)
    for clip in ("stairs_pet", "diving_board"):
        robust = _score(clip_detections[clip], clip, "robust")
        reference = _score(clip_detections[clip], clip, "reference")
        assert robust.area < 0.75 * reference.area, (clip, robust, reference)


@pytest.mark.parametrize(
    "clip, held, ratio",
    [
        ("stairs_pet", 16, 2.0),
        ("lawn_mowing", 16, 2.0),
        ("diving_board", 16, 2.0),  # HOG boxes the standing diver whole
        ("desert_vehicles_aerial", 16, 2.0),  # the relative threshold drops the streaming ground
        ("desert_train", 16, 2.0),  # the actor's colours carry the box over the still far cars
    ],
)
def test_robust_spotlight_holds_the_actor(clip_detections, clip, held, ratio):
    score = _score(clip_detections[clip], clip, "robust")
    assert score.held >= held and score.area <= ratio * score.oracle, score


def test_the_relative_threshold_keeps_the_streaming_ground_out_of_the_jeeps_box(
    clip_detections, sample_videos_dir
):
    # the drone flies forward: the near ground streams at up to 30 px per 2 samples (working
    # resolution) and leaves residual flow that a fixed threshold counts as motion
    frames = sampled_frames(sample_videos_dir / "desert_vehicles_aerial.mp4")
    objects = ACTION_OBJECTS["desert_vehicles_aerial"]
    fixed = detect_and_track(frames, objects, load_detector("motion", relative_threshold=0.0))
    before = _score(fixed, "desert_vehicles_aerial", "robust")
    after = _score(clip_detections["desert_vehicles_aerial"], "desert_vehicles_aerial", "robust")
    assert before.area > 3 * before.oracle and after.area < 0.5 * before.area, (before, after)


@pytest.mark.parametrize(
    "scenario",
    [{"camera": "panzoom"}, {"camera": "shake"}, {"object_size": 0.113}],
    ids=["pan+zoom", "shake", "1% object"],  # ripples: in the persistence rule's test below
)
def test_synthetic_scenarios_hold_the_object_within_twice_the_oracle(scenario):
    detector = load_detector("motion")
    video = make_video(seed=0, **scenario)
    h, w = video.frames.shape[1:3]
    spot = spotlight_boxes_from_detections(detect_and_track(video.frames, "", detector)).boxes
    score = score_spotlight(spot, video.boxes[:, 0], h, w)
    assert score.held >= 15 and score.area <= 2 * score.oracle, score


def test_one_false_box_cannot_blow_up_the_spotlight_and_empty_frames_borrow():
    actor = [torch.tensor([[100.0 + 5 * i, 100, 160 + 5 * i, 200]]) for i in range(8)]
    actor[3] = torch.cat([actor[3], torch.tensor([[0.0, 0, 20, 20]])])  # a far false box
    actor[5] = torch.tensor([[0.0, 0, 640, 480]])  # the whole frame moved: a blow-up
    actor[0] = torch.zeros(0, 4)  # nothing found in the first frame
    out = robust_cluster_boxes(actor, 480, 640, margin=0.0, hold=0)
    assert not out.fallback
    for i in (1, 2, 3, 4, 6, 7):  # the actor's own box; the false box is not in the union
        assert out.boxes[i].tolist() == actor[i][0].tolist(), i
    assert float(out.boxes[5, 2] - out.boxes[5, 0]) < 100  # borrowed from frames 4 and 6
    assert out.boxes[0].tolist() == actor[1][0].tolist()  # borrowed, not the whole frame


def test_an_actor_that_pauses_unseen_is_picked_up_where_it_resumes():
    # a steady actor in frames 0-7, unseen in 8-11 (it moved with the background), then seen
    # again beside where it was: a weaker track (under a quarter of the main one's evidence)
    def box(x: float, score: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tensor([[x, 100.0, x + 60, 200]]), torch.tensor([score])

    for resumed_at, joins in ((170.0, True), (500.0, False)):  # beside it / far away
        frames = [box(100.0)] * 8 + [(torch.zeros(0, 4), torch.zeros(0))] * 4
        frames += [box(resumed_at, 0.5)] * 4
        out = robust_cluster_boxes(
            [b for b, _ in frames], 480, 640, [s for _, s in frames], margin=0.0, hold=0
        )
        expected = frames[12][0][0] if joins else frames[7][0][0]
        assert out.boxes[13].tolist() == expected.tolist(), (resumed_at, out.boxes[13])


def test_a_small_fast_actor_missed_at_the_ends_is_carried_on_at_its_velocity():
    truth = [torch.tensor([[10.0 + 30 * i, 200, 30 + 30 * i, 220]]) for i in range(16)]
    seen = [t if 3 <= i <= 12 else torch.zeros(0, 4) for i, t in enumerate(truth)]
    out = robust_cluster_boxes(seen, 480, 640, margin=0.0, hold=0)
    for i in (0, 1, 2, 13, 14, 15):  # where it was before it was first seen, and after
        box, true = out.boxes[i], truth[i][0]
        assert bool((box[:2] <= true[:2]).all() and (box[2:] >= true[2:]).all()), (i, box, true)
    # a large actor that barely moves is not extrapolated: it keeps the nearest box
    slow = [torch.tensor([[100.0 + i, 100, 300 + i, 400]]) for i in range(16)]
    slow[0] = torch.zeros(0, 4)
    out = robust_cluster_boxes(slow, 480, 640, margin=0.0, hold=0)
    assert out.boxes[0].tolist() == slow[1][0].tolist()


def test_colour_growth_or_the_slow_span_finds_the_distant_train_whole(
    clip_detections, sample_videos_dir
):
    # the far cars barely move over 2 samples: motion alone boxes the near half of the train.
    # Over 4 samples (steady camera) more of it moves; the default grows the moving cars over
    # the connected pixels of their colours
    frames = sampled_frames(sample_videos_dir / "desert_train.mp4")
    motion_only = detect_and_track(frames, "train", load_detector("motion", colour_growth=0))
    slow = detect_and_track(
        frames, "train", load_detector("motion", colour_growth=0, slow_baseline=4)
    )
    plain = _score(motion_only, "desert_train", "robust")
    with_slow = _score(slow, "desert_train", "robust")
    default = _score(clip_detections["desert_train"], "desert_train", "robust")
    assert plain.held <= 2 and with_slow.held >= 10 and default.held == 16, (
        plain,
        with_slow,
        default,
    )
    assert with_slow.area <= 1.2 * with_slow.oracle and default.area <= 1.2 * default.oracle
    # a fast-moving camera (the drone following the jeep) turns the slow span off
    aerial = sampled_frames(sample_videos_dir / "desert_vehicles_aerial.mp4")
    found = load_detector("motion", slow_baseline=4).detect(aerial, [])
    assert [b.tolist() for b in found.boxes] == [
        b.tolist() for b in load_detector("motion").detect(aerial, []).boxes
    ]


def test_person_prompts_add_people_boxes_and_small_frames_only_skip_them():
    detector = load_detector("motion")
    video = make_video(seed=0)
    found = detector.detect(
        torch.nn.functional.interpolate(video.frames.permute(0, 3, 1, 2), size=(72, 128)).permute(
            0, 2, 3, 1
        ),
        ["person"],
    )
    assert found.info["people"].startswith("skipped: hog_people: frames of 128x72")
    plain = detector.detect(video.frames, ["train"])
    assert "people" not in plain.info and {"moving"} >= {lab for f in plain.labels for lab in f}


def test_ripples_that_keep_moving_in_place_are_dropped_but_an_action_done_in_place_is_kept():
    """The persistence rule: without it the ripples join the object's box; with nothing else
    moving, motion that stays in place is the action and stays boxed."""
    video = make_video(seed=0, ripples=0.35)
    h, w = video.frames.shape[1:3]
    scores = {}
    for persistence in (0.0, 0.95):
        detector = load_detector("motion", flicker_persistence=persistence)
        found = detect_and_track(video.frames, "", detector)
        scores[persistence] = score_spotlight(
            spotlight_boxes_from_detections(found).boxes, video.boxes[:, 0], h, w
        )
    off, on = scores[0.0], scores[0.95]
    assert off.area > 2.5 * off.oracle and on.area <= 2 * on.oracle and on.held >= 15, scores

    # a textured square swaying in place over a still scene, nothing else moving
    still = make_video(seed=0).frames[0]
    patch = torch.rand(40, 40, 3, generator=torch.Generator().manual_seed(1))
    frames = still.repeat(16, 1, 1, 1)
    for t in range(16):
        x = 140 + round(10 * math.sin(t * 1.3))
        frames[t, 70:110, x : x + 40] = patch
    found = load_detector("motion").detect(frames, [])
    boxed = [b for b in found.boxes if b.shape[0]]
    assert len(boxed) >= 10, found.boxes
    assert all(130 <= float(b[0, 0]) and float(b[0, 2]) <= 195 for b in boxed), found.boxes
