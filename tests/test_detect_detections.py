"""Detections: validation on construction and the BBOX / MASK / transformers adapters."""

from __future__ import annotations

import pytest
import torch

from motionsight.detect.detections import Detections, box_iou


def _two_frames() -> Detections:
    return Detections(
        boxes=[
            torch.tensor([[10.0, 20.0, 30.0, 40.0], [50.0, 5.0, 60.0, 15.0]]),
            torch.zeros(0, 4),
        ],
        scores=[torch.tensor([0.9, 0.5]), torch.zeros(0)],
        labels=[["train", "person"], []],
        track_ids=[torch.tensor([0, 1]), torch.zeros(0, dtype=torch.int64)],
        height=48,
        width=64,
    )


def test_counts_and_union_bbox_with_whole_frame_for_empty_frames():
    d = _two_frames()
    assert d.num_frames == 2 and len(d) == 2 and not d.is_empty
    # frame 0: union of its boxes; frame 1 has none: the whole frame (documented)
    assert d.to_bbox() == [[10.0, 5.0, 60.0, 40.0], [0.0, 0.0, 64.0, 48.0]]
    assert Detections.empty(3, 48, 64).is_empty


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scores": [torch.tensor([0.9]), torch.zeros(0)]}, "frame 0 has 2 boxes but 1 scores"),
        ({"labels": [["a", "b"]]}, "labels has 1 frames"),
        (
            {
                "boxes": [
                    torch.tensor([[10.0, 20.0, 5.0, 40.0], [1.0, 1.0, 2.0, 2.0]]),
                    torch.zeros(0, 4),
                ]
            },
            "x2 > x1",
        ),
        (
            {
                "boxes": [
                    torch.tensor([[10.0, 20.0, float("nan"), 40.0], [1.0, 1.0, 2.0, 2.0]]),
                    torch.zeros(0, 4),
                ]
            },
            "non-finite",
        ),
        ({"masks": [torch.zeros(2, 10, 10), torch.zeros(0, 48, 64)]}, "masks have shape"),
        ({"height": 0}, "frame size"),
    ],
)
def test_validation_names_what_is_wrong(change, message):
    d = _two_frames()
    fields = {
        k: getattr(d, k)
        for k in ("boxes", "scores", "labels", "track_ids", "height", "width", "masks")
    }
    fields.update(change)
    with pytest.raises(ValueError, match=message):
        Detections(**fields)


def test_bbox_round_trip():
    one = Detections.from_bbox([4, 6, 20, 30], num_frames=3, height=48, width=64)
    assert one.num_frames == 3 and one.to_bbox() == [[4.0, 6.0, 20.0, 30.0]] * 3
    per_frame = [[0, 0, 10, 10], [5, 5, 15, 25]]
    assert Detections.from_bbox(per_frame, 2, 48, 64).to_bbox() == [
        [0.0, 0.0, 10.0, 10.0],
        [5.0, 5.0, 15.0, 25.0],
    ]
    with pytest.raises(ValueError, match="2 boxes for 3 frames"):
        Detections.from_bbox(per_frame, 3, 48, 64)


def test_mask_round_trip_through_connected_components():
    d = _two_frames()
    mask = d.to_mask()
    assert mask.shape == (2, 48, 64)
    assert float(mask[0].sum()) == 20 * 20 + 10 * 10 and float(mask[1].sum()) == 0
    back = Detections.from_mask(mask)
    assert back.masks is not None and back.masks[0].shape == (2, 48, 64)
    got = sorted(back.boxes[0].tolist())
    assert got == sorted(d.boxes[0].tolist())  # pixel-exact boxes back
    assert back.boxes[1].shape == (0, 4)
    assert torch.equal(back.to_mask(), mask)  # masks carried: same union


def test_from_transformers_clips_and_names_labels():
    results = [
        {
            "boxes": torch.tensor([[-5.0, 2.0, 30.0, 90.0], [70.0, 1.0, 80.0, 5.0]]),
            "scores": torch.tensor([0.8, 0.3]),
            "labels": torch.tensor([1, 0]),
        },
    ]
    d = Detections.from_transformers(results, height=48, width=64, label_names=["train", "person"])
    # the second box lies right of the frame: it clips to nothing and is dropped
    assert d.boxes[0].tolist() == [[0.0, 2.0, 30.0, 48.0]] and d.labels == [["person"]]
    assert d.track_ids[0].tolist() == [-1]


def test_filter_and_iou():
    d = _two_frames().filter_scores(0.6)
    assert d.labels == [["train"], []] and d.track_ids[0].tolist() == [0]
    iou = box_iou(
        torch.tensor([[0.0, 0, 10, 10]]),
        torch.tensor([[0.0, 0, 10, 10], [5.0, 0, 15, 10], [20.0, 20, 30, 30]]),
    )
    assert torch.allclose(iou, torch.tensor([[1.0, 1 / 3, 0.0]]))
