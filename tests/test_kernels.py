"""kernels/ against METHOD.md's numbers and rules."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from motionsight.kernels import (
    background_blur,
    box_masks,
    cluster_boxes,
    crop_to_boxes,
    fixed_rate_indices,
    motion_trails,
    motion_trails_from_frames,
    pad_boxes,
    sample_timestamps,
    segment_midpoint_indices,
    spotlight_boxes,
    trail_weights,
    trail_windows,
)

# ----------------------------------------------------------------------------- sampling


def test_segment_midpoints_follow_the_paper_rule():
    assert segment_midpoint_indices(64).tolist() == list(range(2, 64, 4))
    s = 300 / 16
    assert segment_midpoint_indices(300).tolist() == [int(s / 2 + round(s * i)) for i in range(16)]
    # s = 1.5: s*i hits .5 (1.5 -> 2, 4.5 -> 4): round half to even, as Python and numpy
    assert segment_midpoint_indices(24).tolist() == [int(0.75 + round(1.5 * i)) for i in range(16)]
    assert segment_midpoint_indices(24)[1:4].tolist() == [2, 3, 4]
    short = segment_midpoint_indices(10)
    assert short.tolist() == [min(9, int(0.3125 + round(0.625 * i))) for i in range(16)]
    assert short.shape == (16,) and short.max() <= 9 and bool((short.diff() >= 0).all())


def test_fixed_rate_and_timestamps():
    assert fixed_rate_indices(100, fps=29.97).tolist() == [0, 29, 58, 87]
    assert fixed_rate_indices(10, fps=24, rate=12).tolist() == [0, 2, 4, 6, 8]
    assert sample_timestamps(torch.tensor([0, 24, 36]), 24.0).tolist() == [0.0, 1.0, 1.5]


@pytest.mark.parametrize("args", [(0, 16), (10, 0)])
def test_sampling_rejects_empty(args):
    with pytest.raises(ValueError):
        segment_midpoint_indices(*args)


# ----------------------------------------------------------------------------- trails


def test_trail_weights_match_method_to_three_decimals():
    expected_trailing = [0.049, 0.072, 0.102, 0.139, 0.175, 0.196, 0.267]
    expected_forward = [0.075, 0.107, 0.146, 0.184, 0.206, 0.183, 0.098]
    assert trail_weights(7, 0.65, "trailing").numpy() == pytest.approx(expected_trailing, abs=6e-4)
    assert trail_weights(7, 0.65, "forward").numpy() == pytest.approx(expected_forward, abs=6e-4)
    assert trail_weights(2, 0.65, "trailing").numpy() == pytest.approx([0.423, 0.577], abs=6e-4)
    for variant in ("trailing", "forward"):
        for length in range(1, 9):
            assert float(trail_weights(length, 0.65, variant).sum()) == pytest.approx(1.0)


def _reference_fold_uint8(frames: np.ndarray, variant: str, decay: float = 0.65) -> np.ndarray:
    """The reference's sequential fold with 8-bit rounding after every blend (cv2.addWeighted)."""
    if variant == "trailing":  # frames oldest..newest; out starts as the newest
        out = frames[-1].copy()
        for k in range(len(frames)):
            d = decay ** (k + 1)
            out = cv2.addWeighted(frames[-1 - k], d, out, 1 - d, 0)
    else:  # frames t..t+6; out starts as the last
        out = frames[-1].copy()
        for k in range(1, len(frames)):
            d = decay**k
            out = cv2.addWeighted(frames[-1 - k], d, out, 1 - d, 0)
    return out


@pytest.mark.parametrize("variant", ["trailing", "forward"])
def test_trails_stay_within_three_levels_of_the_reference_8bit_fold(variant):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    # a textured scene panning right plus pure noise frames: smooth and worst-case inputs
    windows = np.stack(
        [
            np.stack([np.roll(base, 3 * t, axis=1) for t in range(7)]),
            rng.integers(0, 256, (7, 48, 64, 3), dtype=np.uint8),
        ]
    )
    ours = motion_trails(torch.from_numpy(windows), trail_weights(7, 0.65, variant).float())
    reference = np.stack([_reference_fold_uint8(w, variant) for w in windows])
    assert np.abs(ours.numpy() - reference.astype(np.float32)).max() <= 3.0


@pytest.mark.parametrize("variant", ["trailing", "forward"])
def test_trails_of_a_real_clip_match_the_reference_fold_including_short_start_windows(
    variant, sample_videos_dir
):
    capture = cv2.VideoCapture(str(sample_videos_dir / "desert_train.mp4"))
    frames = []
    while len(frames) < 12:
        ok, frame = capture.read()
        assert ok, "could not decode 12 frames of desert_train.mp4"
        frames.append(cv2.resize(frame, (160, 90), interpolation=cv2.INTER_AREA))
    capture.release()
    frames = np.stack(frames)  # [12, 90, 160, 3] uint8
    samples = torch.tensor([0, 1, 3, 6, 11])  # start (1, 2, 4 frames), full, end
    indices, weights = trail_windows(samples, len(frames), variant=variant)
    ours = motion_trails(torch.from_numpy(frames)[indices].float() / 255, weights) * 255
    for row, t in enumerate(samples.tolist()):
        if variant == "trailing":
            window = frames[max(0, t - 6) : t + 1]
        else:
            start = min(t, len(frames) - 7)
            window = frames[start : start + 7]
        reference = _reference_fold_uint8(window, variant).astype(np.float32)
        assert np.abs(ours[row].numpy() - reference).max() <= 3.0, f"sample {t}"


def test_trail_windows_start_middle_end():
    idx, w = trail_windows(torch.tensor([0, 1, 30, 63]), 64, variant="trailing")
    assert idx.tolist()[2] == list(range(24, 31)) and idx.tolist()[3] == list(range(57, 64))
    assert w[0].tolist() == pytest.approx([0, 0, 0, 0, 0, 0, 1])
    assert w[1].numpy() == pytest.approx([0, 0, 0, 0, 0, 0.4225, 0.5775], abs=1e-6)
    assert idx[1, -2:].tolist() == [0, 1] and float(w[1, :-2].abs().sum()) == 0
    idx, w = trail_windows(torch.tensor([0, 30, 62]), 64, variant="forward")
    assert idx.tolist() == [list(range(0, 7)), list(range(30, 37)), list(range(57, 64))]
    assert torch.allclose(w, trail_weights(7, 0.65, "forward").float().expand(3, 7))
    idx, w = trail_windows(
        torch.tensor([0, 3]), 4, variant="forward"
    )  # video shorter than the window
    assert idx.max() == 3 and w.sum(dim=1).tolist() == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError):
        trail_windows(torch.tensor([64]), 64)


def test_static_scene_stays_sharp_and_moving_scene_blurs():
    rng = np.random.default_rng(1)
    scene = torch.from_numpy(rng.random((1, 1, 3, 32, 32), dtype=np.float32))
    static = scene.expand(1, 7, 3, 32, 32)
    panning = torch.stack([torch.roll(scene[0, 0], 2 * t, dims=-1) for t in range(7)]).unsqueeze(0)
    weights = trail_weights().float()
    assert torch.allclose(motion_trails(static, weights), scene[:, 0], atol=1e-6)
    assert motion_trails(panning, weights).std() < 0.8 * scene.std()


def test_trails_take_per_window_weights_and_reject_mismatches():
    windows = torch.rand(2, 3, 4, 4)
    weights = torch.tensor([[1.0, 0, 0], [0, 0, 1.0]])
    out = motion_trails(windows, weights)
    assert torch.equal(out[0], windows[0, 0]) and torch.equal(out[1], windows[1, 2])
    with pytest.raises(ValueError):
        motion_trails(windows, torch.ones(2, 4))


def test_trails_from_distinct_frames_equal_trails_of_gathered_windows():
    frames = torch.randint(0, 256, (10, 6, 5, 3), dtype=torch.uint8)
    indices, weights = trail_windows(torch.tensor([0, 3, 4, 9]), 10)
    expected = motion_trails(frames[indices], weights)
    assert torch.allclose(motion_trails_from_frames(frames, indices, weights), expected, atol=1e-4)
    with pytest.raises(ValueError):
        motion_trails_from_frames(frames, indices, weights[:, :3])


# ----------------------------------------------------------------------------- spotlight, crop


def test_spotlight_darkens_outside_exactly_ten_percent_and_keeps_inside():
    images = torch.rand(3, 3, 60, 80)
    out = spotlight_boxes(images, torch.tensor([30.0, 20.0, 50.0, 40.0]), padding=5, darken=0.9)
    inside = (slice(None), slice(None), slice(15, 45), slice(25, 55))
    assert torch.equal(out[inside], images[inside])
    outside = torch.ones(60, 80, dtype=torch.bool)
    outside[15:45, 25:55] = False
    assert torch.allclose(out[..., outside], 0.1 * images[..., outside], atol=1e-7)


def test_pad_boxes_clips_to_the_frame_and_masks_follow_boxes_per_frame():
    padded = pad_boxes(torch.tensor([[5.0, 5.0, 95.0, 45.0]]), 20, height=50, width=100)
    assert padded.tolist() == [[0.0, 0.0, 100.0, 50.0]]
    masks = box_masks(torch.tensor([[0.0, 0.0, 2.0, 2.0], [2.0, 2.0, 4.0, 4.0]]), 4, 4)
    assert masks.shape == (2, 1, 4, 4)
    assert masks[0, 0, :2, :2].sum() == 4 and masks[0].sum() == 4 and masks[1, 0, 2:, 2:].sum() == 4


def test_soft_edge_feathers_monotonically_towards_the_outside():
    mask = box_masks(torch.tensor([[20.0, 20.0, 40.0, 40.0]]), 60, 60, soft_edge=3.0)[0, 0, 30]
    assert 0.99 < float(mask[30]) <= 1.0 and float(mask[2]) < 0.01
    assert bool((mask[30:].diff() <= 1e-6).all()) and bool((mask[:30].diff() >= -1e-6).all())


def test_one_box_broadcasts_and_wrong_box_counts_fail():
    images = torch.rand(4, 3, 20, 20)
    one = spotlight_boxes(images, torch.tensor([5.0, 5.0, 10.0, 10.0]), padding=0)
    each = spotlight_boxes(images, torch.tensor([[5.0, 5.0, 10.0, 10.0]] * 4), padding=0)
    assert torch.equal(one, each)
    with pytest.raises(ValueError, match="3 boxes for 4 frames"):
        spotlight_boxes(images, torch.zeros(3, 4))


def test_crop_union_and_per_frame():
    images = torch.arange(2 * 100 * 100, dtype=torch.float32).reshape(2, 1, 100, 100)
    boxes = torch.tensor([[40.0, 40.0, 50.0, 50.0], [60.0, 45.0, 70.0, 55.0]])
    union = crop_to_boxes(images, boxes, padding=5)
    assert union.shape == (2, 1, 25, 40) and torch.equal(union, images[:, :, 35:60, 35:75])
    per_frame = crop_to_boxes(images, boxes, padding=5, per_frame=True)
    assert per_frame.shape == (2, 1, 20, 20)
    assert torch.allclose(per_frame[1], images[1, :, 40:60, 55:75], atol=1e-3)


# ----------------------------------------------------------------------------- background blur


def test_background_blur_keeps_the_mask_sharp_and_smooths_the_rest():
    images = torch.rand(2, 3, 64, 64)
    masks = torch.zeros(2, 1, 64, 64)
    masks[:, :, 20:40, 20:40] = 1
    out = background_blur(images, masks)
    assert torch.equal(out[:, :, 20:40, 20:40], images[:, :, 20:40, 20:40])
    assert out[:, :, :16].std() < 0.2 * images[:, :, :16].std()
    small = background_blur(
        torch.rand(1, 3, 8, 6), torch.zeros(1, 1, 8, 6)
    )  # 99x99 on a tiny image
    assert small.shape == (1, 3, 8, 6) and torch.isfinite(small).all()


# ----------------------------------------------------------------------------- clustering

W = H = 400  # threshold 0.3 * 400 = 120 px


def box_at(cx: float, cy: float, half: float = 20.0) -> torch.Tensor:
    return torch.tensor([[cx - half, cy - half, cx + half, cy + half]])


EMPTY = torch.empty(0, 4)


def test_one_object_gives_one_cluster_whose_box_is_the_union():
    frames = [box_at(100 + 10 * i, 100) for i in range(5)]
    result = cluster_boxes(frames, H, W)
    assert result.cluster_ids.tolist() == [0] * 5 and not result.fallback
    assert result.boxes.tolist() == [[80.0, 80.0, 160.0, 120.0]] * 5


def test_frame_box_is_the_union_of_its_boxes_and_centre_the_mean():
    two = torch.cat([box_at(100, 100), box_at(300, 100)])  # centre (200, 100)
    result = cluster_boxes([two, box_at(200, 100)], H, W)
    assert result.boxes[0].tolist() == [80.0, 80.0, 320.0, 120.0]


def test_split_needs_distance_and_three_boxes():
    # a jump after only 2 boxes stays in the same cluster
    early = cluster_boxes([box_at(50, 50), box_at(50, 50), box_at(350, 350)], H, W)
    assert early.cluster_ids.tolist() == [0, 0, 0]
    # the same jump after 3 boxes starts a new cluster
    late = cluster_boxes([box_at(50, 50)] * 3 + [box_at(350, 350)], H, W)
    assert late.cluster_ids.tolist() == [0, 0, 0, 1]
    # 3 boxes but a move within 0.3 * min(W, H) = 120 px: no split
    near = cluster_boxes([box_at(50, 50)] * 3 + [box_at(150, 50)], H, W)
    assert near.cluster_ids.tolist() == [0, 0, 0, 0]


def test_running_centre_is_an_exponential_average():
    # centre starts at 50; three steps at x=150 move it to 50 + 100*(1 - 0.7^3) = 115.7 (< 120 away
    # from x=235, so no split); a plain mean would be 125 (> 120 from 245, a split).
    frames = [box_at(50, 50)] * 3 + [box_at(150, 50)] * 3 + [box_at(235, 50)]
    assert cluster_boxes(frames, H, W).cluster_ids.tolist() == [0] * 7
    frames[-1] = box_at(237, 50)  # 237 - 115.7 = 121.3 > 120: split
    assert cluster_boxes(frames, H, W).cluster_ids.tolist() == [0] * 6 + [1]


def test_a_frame_adds_all_its_boxes_to_the_cluster_count():
    # one frame with 3 objects already makes the cluster big enough to split at the next frame
    three = torch.cat([box_at(40, 50), box_at(50, 50), box_at(60, 50)])
    result = cluster_boxes([three, box_at(350, 350)], H, W)
    assert result.cluster_ids.tolist() == [0, 1]
    assert result.boxes.tolist() == [[20.0, 30.0, 80.0, 70.0], [330.0, 330.0, 370.0, 370.0]]


def test_leading_empty_frames_vote_as_the_whole_frame():
    # before any box the whole frame is the box (centre 200, 200); with < 3 boxes held the far
    # object joins that cluster, so its union is the whole frame
    result = cluster_boxes([EMPTY, EMPTY, box_at(50, 50)], H, W)
    assert result.cluster_ids.tolist() == [0, 0, 0] and not result.fallback
    assert result.boxes.tolist() == [[0.0, 0.0, 400.0, 400.0]] * 3
    # after 3 whole-frame votes a far object starts its own cluster
    result = cluster_boxes([EMPTY] * 3 + [box_at(50, 50)] * 2, H, W)
    assert result.cluster_ids.tolist() == [0, 0, 0, 1, 1]
    assert result.boxes[0].tolist() == [0.0, 0.0, 400.0, 400.0]
    assert result.boxes[4].tolist() == [30.0, 30.0, 70.0, 70.0]


def test_trailing_empty_frames_reuse_the_last_box_and_can_split_on_it():
    # frames 3.. reuse (350, 350) and count as boxes: after the jump at frame 3 the new cluster
    # holds the reused boxes, the old one keeps only its own
    frames = [box_at(50, 50)] * 3 + [box_at(350, 350), EMPTY, EMPTY]
    result = cluster_boxes(frames, H, W)
    assert result.cluster_ids.tolist() == [0, 0, 0, 1, 1, 1]
    assert result.boxes[5].tolist() == [330.0, 330.0, 370.0, 370.0]


def test_without_filling_gaps_take_the_union_of_both_neighbours_and_edges_the_nearest():
    frames = [
        EMPTY,
        box_at(50, 50),
        box_at(50, 50),
        box_at(50, 50),
        EMPTY,
        box_at(350, 350),
        box_at(350, 350),
        EMPTY,
    ]
    result = cluster_boxes(frames, H, W, fill_empty=False)
    first, second = [30.0, 30.0, 70.0, 70.0], [330.0, 330.0, 370.0, 370.0]
    assert result.cluster_ids.tolist() == [-1, 0, 0, 0, -1, 1, 1, -1]
    assert result.boxes[0].tolist() == first
    assert result.boxes[4].tolist() == [30.0, 30.0, 370.0, 370.0]
    assert result.boxes[7].tolist() == second
    # the reference's filling instead puts the gap frame into the first cluster (reused box)
    filled = cluster_boxes(frames, H, W)
    assert filled.cluster_ids.tolist() == [0, 0, 0, 0, 0, 1, 1, 1]
    assert filled.boxes[0].tolist() == [0.0, 0.0, 400.0, 400.0]
    assert filled.boxes[7].tolist() == second


def test_empty_frames_inside_a_cluster_reuse_its_box():
    frames = [box_at(100, 100), EMPTY, EMPTY, box_at(110, 100)]
    for fill in (True, False):
        result = cluster_boxes(frames, H, W, fill_empty=fill)
        assert result.cluster_ids.tolist() == [0, 0, 0, 0]
        assert result.boxes[1].tolist() == result.boxes[0].tolist() == [80.0, 80.0, 130.0, 120.0]


def test_tiny_union_grows_to_100px_around_its_centre_clipped():
    tiny = [torch.tensor([[100.0, 100.0, 105.0, 150.0]])] * 3
    assert cluster_boxes(tiny, H, W).boxes[0].tolist() == [52.5, 75.0, 152.5, 175.0]
    corner = [torch.tensor([[0.0, 0.0, 4.0, 4.0]])] * 3
    assert cluster_boxes(corner, H, W).boxes[0].tolist() == [0.0, 0.0, 52.0, 52.0]
    # a thin but tall union: only the thin side grows (a long side never shrinks to 100)
    thin = [torch.tensor([[200.0, 50.0, 205.0, 350.0]])]
    assert cluster_boxes(thin, H, W).boxes[0].tolist() == [152.5, 50.0, 252.5, 350.0]
    # 10 px is large enough
    ten = [torch.tensor([[200.0, 200.0, 210.0, 210.0]])]
    assert cluster_boxes(ten, H, W).boxes[0].tolist() == [200.0, 200.0, 210.0, 210.0]


def test_no_boxes_at_all_fall_back_to_the_whole_frame():
    result = cluster_boxes([EMPTY] * 4, 300, 500)
    assert result.fallback and result.boxes.tolist() == [[0.0, 0.0, 500.0, 300.0]] * 4
    with pytest.raises(ValueError, match="at least one frame"):
        cluster_boxes([], 300, 500)
    with pytest.raises(ValueError, match="frame 1"):
        cluster_boxes([EMPTY, torch.zeros(3)], 300, 500)


# ----------------------------------------------------------------------------- device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu():
    images = torch.rand(4, 3, 64, 64)
    boxes = torch.tensor([10.0, 10.0, 40.0, 40.0])
    windows = torch.rand(4, 7, 3, 32, 32)
    assert torch.allclose(
        spotlight_boxes(images.cuda(), boxes.cuda()).cpu(),
        spotlight_boxes(images, boxes),
        atol=1e-6,
    )
    assert torch.allclose(
        motion_trails(windows.cuda(), trail_weights().cuda()).cpu(),
        motion_trails(windows, trail_weights()),
        atol=1e-5,
    )
    masks = box_masks(boxes[None], 64, 64)
    assert torch.allclose(
        background_blur(images.cuda(), masks.cuda(), 31, 10.0).cpu(),
        background_blur(images, masks, 31, 10.0),
        atol=1e-4,
    )
