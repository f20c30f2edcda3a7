"""Detection nodes as ComfyUI calls them, and the object-spotlight workflow run headless.

`workflows/Spotlight on moving objects.json` is the API prompt below laid out for the editor,
plus a Note node.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from synthetic import make_video

WORKFLOW = Path(__file__).resolve().parents[1] / "workflows" / "Spotlight on moving objects.json"

# The object-motion visual prompt (METHOD.md 3.2-3.4) with the weight-free detector: no downloads.
OBJECT_SPOTLIGHT = {
    "1": {
        "class_type": "MotionSightLoadVideo",
        "inputs": {
            "video": "motionsight_example.mp4",
            "sampling": "segments",
            "num_frames": 16,
            "rate": 1.0,
            "max_side": 0,
        },
        "_meta": {"title": "Load Video"},
    },
    "2": {
        "class_type": "MotionSightDetectAndTrack",
        "inputs": {"images": ["1", 0], "objects": "", "mode": "every", "tracker_model": ""},
        "_meta": {"title": "Detect And Track (weight-free motion detector)"},
    },
    "3": {
        "class_type": "MotionSightSpotlightBoxes",
        "inputs": {
            "detections": ["2", 0],
            "momentum": 0.7,
            "distance_ratio": 0.3,
            "min_cluster_size": 3,
            "min_box_size": 10,
            "grown_box_size": 100,
            "clustering": "robust",
        },
        "_meta": {"title": "Spotlight Boxes"},
    },
    "4": {
        "class_type": "MotionSightSpotlight",
        "inputs": {
            "images": ["1", 0],
            "bbox": ["3", 0],
            "padding": 20.0,
            "darken": 0.9,
            "soft_edge": 0.0,
        },
        "_meta": {"title": "Spotlight"},
    },
    "5": {
        "class_type": "MotionSightSaveFrames",
        "inputs": {
            "images": ["4", 0],
            "filename_prefix": "motionsight/object_spotlight",
            "original": ["1", 0],
            "video": ["1", 1],
        },
        "_meta": {"title": "Save Frames"},
    },
}


def _ui_workflow() -> dict:
    from motionsight.engine.workflow import to_ui_workflow
    from motionsight.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    return to_ui_workflow(
        OBJECT_SPOTLIGHT, NODE_CLASS_MAPPINGS, display_names=NODE_DISPLAY_NAME_MAPPINGS
    )


@pytest.fixture(scope="module")
def nodes():
    from motionsight.nodes import NODE_CLASS_MAPPINGS

    return NODE_CLASS_MAPPINGS


def test_detection_nodes_are_registered_and_documented(nodes):
    for name in (
        "MotionSightLoadDetector",
        "MotionSightDetectAndTrack",
        "MotionSightSpotlightBoxes",
        "MotionSightDrawDetections",
    ):
        cls = nodes[name]
        assert cls.CATEGORY == "MotionSight/detection" and cls.DESCRIPTION
        spec = cls.INPUT_TYPES()
        for group in ("required", "optional"):
            for input_name, (_, options) in spec.get(group, {}).items():
                assert options.get("tooltip"), f"{name}.{input_name} has no tooltip"


def test_detect_and_track_node_outputs(nodes):
    video = make_video(seed=4)
    detections, mask, bbox, info = nodes["MotionSightDetectAndTrack"]().run(
        video.frames, "car", "every"
    )
    assert (
        detections.num_frames == 16 and mask.shape == (16, 180, 320) and mask.dtype == torch.float32
    )
    assert len(bbox) == 16 and all(len(b) == 4 for b in bbox)
    facts = json.loads(info)
    assert (
        facts["detector"] == "motion"
        and facts["tracker"] == "iou"
        and facts["frames_with_boxes"] >= 12
    )
    # the MASK is the boxes' union: on average it overlaps the true object more than the rest
    truth = torch.zeros(16, 180, 320)
    for i, (x1, y1, x2, y2) in enumerate(video.boxes[:, 0].round().int().tolist()):
        truth[i, y1:y2, x1:x2] = 1
    assert float((mask * truth).sum() / truth.sum()) > 0.7

    boxes, spot_info = nodes["MotionSightSpotlightBoxes"]().cluster(
        detections, 0.7, 0.3, 3, 10, 100
    )
    assert len(boxes) == 16 and json.loads(spot_info)["fallback"] is False

    drawn = nodes["MotionSightDrawDetections"]().draw(video.frames, detections, 2)[0]
    assert drawn.shape == video.frames.shape
    changed = (drawn - video.frames).abs().amax(-1) > 0.05
    x1, y1 = detections.boxes[0][0].round().int().tolist()[:2]
    assert (
        bool(changed[0, y1 + 5, x1]) and float(changed.float().mean()) < 0.2
    )  # outlines, not fills


def test_no_detections_reports_the_whole_frame_fallback(nodes):
    still = make_video(seed=1).frames[:1].expand(6, -1, -1, -1).contiguous()
    detections, mask, bbox, info = nodes["MotionSightDetectAndTrack"]().run(still, "", "every")
    assert float(mask.sum()) == 0 and bbox == [[0.0, 0.0, 320.0, 180.0]] * 6
    boxes, spot_info = nodes["MotionSightSpotlightBoxes"]().cluster(
        detections, 0.7, 0.3, 3, 10, 100
    )
    facts = json.loads(spot_info)
    assert facts["fallback"] is True and "no detections" in facts["reason"]
    assert boxes == [[0.0, 0.0, 320.0, 180.0]] * 6


def test_load_detector_node(nodes, tmp_path):
    load = nodes["MotionSightLoadDetector"]()
    (detector,) = load.load("motion", "", "cpu", 0.25, 0.25)
    assert detector.kind == "motion" and detector.options.baseline == 2
    (fast,) = load.load("motion", "", "cpu", 0.25, 0.25, motion_baseline=1)
    assert fast.options.baseline == 1
    (hog,) = load.load("hog_people", "", "auto", 0.1, 0.25)
    assert hog.kind == "hog_people" and hog.threshold == 0.1
    with pytest.raises(ValueError, match=f"{tmp_path}.*no config.json"):
        load.load("grounding_dino", str(tmp_path), "cpu", 0.25, 0.25)


def test_workflow_file_is_the_api_prompt_laid_out():
    from motionsight.engine.workflow import load_workflow
    from motionsight.nodes import NODE_CLASS_MAPPINGS

    data = json.loads(WORKFLOW.read_text())
    assert "nodes" in data and "links" in data  # UI format
    laid_out = _ui_workflow()
    shipped = [n for n in data["nodes"] if n["type"] != "Note"]
    assert [(n["id"], n["type"], n["pos"]) for n in shipped] == [
        (n["id"], n["type"], n["pos"]) for n in laid_out["nodes"]
    ]
    assert data["links"] == json.loads(json.dumps(laid_out["links"]))
    prompt = load_workflow(WORKFLOW, NODE_CLASS_MAPPINGS)
    assert {k: v["inputs"] for k, v in prompt.items()} == {
        k: v["inputs"] for k, v in OBJECT_SPOTLIGHT.items()
    }
    assert {n["class_type"] for n in prompt.values()} == {
        n["class_type"] for n in OBJECT_SPOTLIGHT.values()
    }
