"""The weight-free moving-object detector on synthetic videos with known boxes, then clustering."""

from __future__ import annotations

import statistics

import pytest
import torch
from synthetic import box_iou_one, covered_fraction, make_video

from motionsight.detect import detect_and_track, load_detector, spotlight_boxes_from_detections


@pytest.fixture(scope="session")
def motion():
    return load_detector("motion")


def _per_frame_iou(detections, truth: torch.Tensor) -> list[float]:
    """Per frame, the IoU of the true box with the best detected box (0 where none)."""
    out = []
    for boxes, true in zip(detections.boxes, truth[:, 0], strict=True):
        out.append(max((box_iou_one(b, true) for b in boxes), default=0.0))
    return out


@pytest.mark.parametrize(
    ("camera", "minimum"), [("static", 0.6), ("pan", 0.5), ("zoom", 0.5), ("parallax", 0.5)]
)
def test_finds_the_moving_object(motion, camera, minimum):
    video = make_video(camera=camera, seed=3)
    found = detect_and_track(video.frames, "", motion)
    ious = _per_frame_iou(found, video.boxes)
    assert statistics.median(ious) >= minimum, ious
    # one object moving: association keeps one identity for most frames
    ids = [int(t[0]) for t in found.track_ids if len(t)]
    assert max(ids.count(i) for i in set(ids)) >= 12


@pytest.mark.parametrize("camera", ["static", "pan", "parallax"])
def test_spotlight_holds_the_object_and_not_the_whole_frame(motion, camera):
    video = make_video(camera=camera, seed=5)
    found = detect_and_track(video.frames, "", motion)
    clustered = spotlight_boxes_from_detections(found)
    assert not clustered.fallback and clustered.boxes.shape == (16, 4)
    held = [covered_fraction(t, s) for t, s in zip(video.boxes[:, 0], clustered.boxes, strict=True)]
    assert sum(h >= 0.9 for h in held) >= 0.9 * 16, held
    area = ((clustered.boxes[:, 2:] - clustered.boxes[:, :2]).prod(1) / (320 * 180)).median()
    assert float(area) <= 0.5


def test_parallax_compensation_keeps_uneven_ground_out_of_the_spotlight():
    # rows of the ground slide at different speeds (no homography explains them): without the
    # local-median parallax step they count as moving and the spotlight spreads over the frame
    video = make_video(camera="parallax", seed=0)

    def spotlight_area(**options) -> float:
        found = load_detector("motion", **options).detect(video.frames, [])
        boxes = spotlight_boxes_from_detections(found).boxes
        return float(((boxes[:, 2:] - boxes[:, :2]).prod(1) / (320 * 180)).median())

    assert spotlight_area(parallax_window=0.0) > 0.6
    assert spotlight_area() < 0.4


def test_two_objects_get_two_identities(motion):
    video = make_video(num_objects=2, seed=2)
    found = detect_and_track(video.frames, "", motion)
    first = found.boxes[0]
    assert first.shape[0] == 2  # apart at the start
    for j in range(2):
        assert max(box_iou_one(b, video.boxes[0, j]) for b in first) >= 0.5
    assert len(set(found.track_ids[0].tolist())) == 2


def test_nothing_moves_falls_back_to_whole_frame_and_reports_it(motion):
    still = make_video(seed=1).frames[:1].expand(8, -1, -1, -1).contiguous()
    found = detect_and_track(still, "", motion)
    assert found.is_empty
    clustered = spotlight_boxes_from_detections(found)
    assert clustered.fallback
    assert clustered.boxes.tolist() == [[0.0, 0.0, 320.0, 180.0]] * 8


def test_zero_frames_and_bad_mode_are_clear_errors(motion):
    with pytest.raises(ValueError, match="zero frames"):
        detect_and_track(torch.zeros(0, 32, 32, 3), "train", motion)
    with pytest.raises(ValueError, match="mode must be"):
        detect_and_track(torch.zeros(2, 32, 32, 3), "train", motion, mode="sometimes")
    with pytest.raises(ValueError, match="unknown detector kind"):
        load_detector("yolo")
    with pytest.raises(ValueError, match="unknown options"):
        load_detector("motion", work_sid=10)
    with pytest.raises(ValueError, match=r"parallax_window in \[0, 1\), hysteresis in \(0, 1\]"):
        load_detector("motion", parallax_window=1.5, hysteresis=0)
    with pytest.raises(ValueError, match="relative_threshold >= 0"):
        load_detector("motion", relative_threshold=-0.1)


def test_temporal_coherence_tells_one_way_motion_from_motion_every_way():
    from motionsight.detect.motion import incoherent_places, temporal_coherence

    steady = torch.zeros(8, 6, 10, 2)
    steady[..., 0] = 2.0  # always 2 px to the right
    back_and_forth = steady.clone()
    back_and_forth[1::2] *= -1
    coherence = temporal_coherence(torch.cat([steady, back_and_forth], dim=2), 3)
    assert torch.allclose(coherence[:, :8], torch.ones(6, 8))  # away from the seam
    assert float(coherence[:, 12:].max()) < 1e-6
    places = torch.zeros(6, 20, dtype=torch.bool)
    places[1:5, 1:6] = places[1:5, 14:19] = True  # one region in each half
    flicker = incoherent_places(places, coherence)
    assert not flicker[:, :10].any() and torch.equal(flicker[:, 10:], places[:, 10:])


def _long_train(shifts: list[int], height: int = 180, width: int = 320) -> torch.Tensor:
    """Frames `[N, H, W, 3]`: a band of red and grey cars (y 80-92, x 20-300) on tan ground,
    whose right half slides along itself by `shifts[t]` px (the near cars) while its left
    half stands still (far cars barely move in the image), and a short still block of the
    same cars apart from it (y 130-142, x 40-100)."""
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(1, 3, height // 4, width // 4, generator=g)
    ground = (
        torch.tensor([0.76, 0.6, 0.42])[:, None, None]
        + 0.06 * torch.nn.functional.interpolate(noise, size=(height, width), mode="bicubic")[0]
    )
    cars = torch.tensor([[0.55, 0.15, 0.1], [0.62, 0.62, 0.66]])
    x = torch.arange(width)
    frames = ground.expand(len(shifts), 3, height, width).clone()
    for t, shift in enumerate(shifts):
        pos = torch.where(x >= width // 2, x - shift, x)
        band = cars[(pos // 18) % 2].T[:, None, :].expand(3, 12, width).clone()
        band[:, :, (pos % 18) >= 16] = 0.2  # couplings
        frames[t, :, 80:92, 20:300] = band[:, :, 20:300]
        frames[t, :, 130:142, 40:100] = band[:, :, 40:100]
    return frames.permute(0, 2, 3, 1).clamp(0, 1)


def _band_held(found) -> list[float]:
    band = torch.tensor([20.0, 80, 300, 92])
    return [max((covered_fraction(band, b) for b in boxes), default=0.0) for boxes in found.boxes]


def test_a_train_moving_along_itself_is_grown_over_its_still_cars_of_the_same_colours():
    frames = _long_train([3 * t for t in range(16)])
    off = load_detector("motion", colour_growth=0).detect(frames, ["train"])
    grown = load_detector("motion").detect(frames, ["train"])
    # motion alone boxes the near (sliding) half; the actor's colours carry it over the rest
    assert max(_band_held(off)) < 0.6, off.boxes
    assert min(_band_held(grown)) >= 0.95, grown.boxes
    # the still block of the same cars is not connected to the train: it never joins
    assert all(float(b[:, 3].max()) < 110 for b in grown.boxes), grown.boxes


def test_motion_that_goes_every_way_does_not_grow_over_its_colours():
    # the same near half jitters back and forth (water, flicker): not a coherent actor
    shifts = torch.randint(-6, 7, (16,), generator=torch.Generator().manual_seed(2)).tolist()
    frames = _long_train(shifts)
    off = load_detector("motion", colour_growth=0).detect(frames, ["train"])
    grown = load_detector("motion").detect(frames, ["train"])
    assert [b.tolist() for b in grown.boxes] == [b.tolist() for b in off.boxes]
    assert max(_band_held(grown)) < 0.6, grown.boxes


def test_actor_colours_are_the_moving_pixels_own_and_rare_in_the_frame():
    from motionsight.detect.motion import actor_colours

    frame = torch.empty(1, 3, 40, 40)
    frame[:] = torch.tensor([0.76, 0.6, 0.42])[:, None, None]  # tan ground: 3/4 of the frame
    frame[0, :, :10, :] = torch.tensor([0.2, 0.4, 0.8])[:, None, None]  # blue sky: 1/4
    frame[0, :, 20:24, 5:35] = torch.tensor([0.55, 0.15, 0.1])[:, None, None]  # a red car
    frame[0, :, 30:34, 5:10] = torch.tensor([0.1, 0.6, 0.1])[:, None, None]  # a green bush
    moving = torch.zeros(1, 40, 40, dtype=torch.bool)
    moving[0, 18:26, 20:40] = True  # half the car and the ground around it move
    colours = actor_colours(frame, moving, rare=0.1)[0]
    assert colours[21:23, 7:33].all()  # the whole car, the still half too
    assert not colours[:10].any() and not colours[30:34, 5:10].any()  # sky, bush
    assert not colours[26:30].any() and not colours[14:18].any()  # the moving ground
