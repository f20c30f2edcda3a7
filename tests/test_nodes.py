"""The issue-2 nodes as ComfyUI would call them: real clips, real kernels, real files."""

from __future__ import annotations

import json

import cv2
import pytest
import torch

import motionsight
from motionsight import comfy_bridge
from motionsight.nodes.output import MotionSightSaveFrames
from motionsight.nodes.video import MotionSightLoadVideo, MotionSightSampleImages
from motionsight.nodes.visual_prompts import (
    MotionSightBackgroundBlur,
    MotionSightBox,
    MotionSightCrop,
    MotionSightMotionTrails,
    MotionSightSpotlight,
)


def test_every_node_is_a_well_formed_comfyui_node():
    assert motionsight.NODE_CLASS_MAPPINGS, "the pack exports no nodes"
    for node_id, cls in motionsight.NODE_CLASS_MAPPINGS.items():
        assert node_id.startswith("MotionSight"), node_id
        assert node_id in motionsight.NODE_DISPLAY_NAME_MAPPINGS
        assert cls.CATEGORY.startswith("MotionSight/"), node_id
        assert cls.DESCRIPTION.strip(), node_id
        assert callable(getattr(cls, cls.FUNCTION)), node_id
        spec = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for name, entry in spec.get(section, {}).items():
                assert len(entry) == 2 and entry[1].get("tooltip"), (
                    f"{node_id}.{name} has no tooltip"
                )
        if getattr(cls, "RETURN_NAMES", None):
            assert len(cls.RETURN_NAMES) == len(cls.RETURN_TYPES), node_id


@pytest.fixture()
def loaded(sample_videos_dir):
    frames, clip, info = MotionSightLoadVideo().load(
        str(sample_videos_dir / "lawn_mowing.mp4"), "segments", 16, 1.0, 320
    )
    return frames, clip, info


def test_load_video_outputs_image_batch_handle_and_vhs_info(loaded):
    frames, clip, info = loaded
    assert frames.shape == (16, 180, 320, 3) and frames.dtype == torch.float32
    assert 0.0 <= float(frames.min()) and float(frames.max()) <= 1.0
    assert info["source_frame_count"] == 300 and info["source_width"] == 1280
    assert (
        info["loaded_width"] == 320
        and info["loaded_height"] == 180
        and info["loaded_frame_count"] == 16
    )
    assert len(clip.sampling.indices) == 16


def test_load_video_validation_names_missing_file(tmp_path):
    message = MotionSightLoadVideo.VALIDATE_INPUTS(video=str(tmp_path / "nope.mp4"))
    assert isinstance(message, str) and "nope.mp4" in message
    assert isinstance(MotionSightLoadVideo.VALIDATE_INPUTS(video=""), str)


def test_is_changed_follows_the_file_on_disk(tmp_path, sample_videos_dir):
    copy = tmp_path / "clip.mp4"
    copy.write_bytes((sample_videos_dir / "desert_train.mp4").read_bytes())
    before = MotionSightLoadVideo.IS_CHANGED(video=str(copy))
    copy.write_bytes(copy.read_bytes()[:-10])
    assert MotionSightLoadVideo.IS_CHANGED(video=str(copy)) != before


def test_trails_from_handle_equal_trails_from_a_vhs_style_image_batch(sample_videos_dir):
    frames, clip, _ = MotionSightLoadVideo().load(
        str(sample_videos_dir / "desert_train.mp4"), "segments", 16, 1.0, 128
    )
    (from_handle,) = MotionSightMotionTrails().render(7, 0.65, "trailing", video=clip)
    every_frame = clip.source.read(range(clip.info.frame_count), max_side=128).float() / 255
    (from_images,) = MotionSightMotionTrails().render(
        7, 0.65, "trailing", images=every_frame, num_frames=16
    )
    _, sampled, _ = MotionSightSampleImages().sample(
        every_frame, clip.info.fps, "segments", 16, 1.0, 0
    )
    assert from_handle.shape == from_images.shape == frames.shape
    assert sampled.sampling.indices == clip.sampling.indices
    # the IMAGE path blends frames that went through one extra uint8 rounding
    assert (from_handle - from_images).abs().max() < 2 / 255


def test_fixed_box_spotlight_darkens_outside_by_exactly_ninety_percent(loaded):
    frames, _, _ = loaded
    (bbox,) = MotionSightBox().make(0.25, 0.25, 0.75, 0.75, "fraction", images=frames)
    assert bbox == [[80.0, 45.0, 240.0, 135.0]]
    (lit,) = MotionSightSpotlight().apply(frames, bbox, padding=20.0, darken=0.9, soft_edge=0.0)
    inside = (slice(None), slice(45 - 20, 135 + 20), slice(80 - 20, 240 + 20))
    assert torch.equal(lit[inside], frames[inside])
    assert torch.allclose(lit[:, :, :50], 0.1 * frames[:, :, :50], atol=1e-6)


def test_box_rejects_fractions_without_images_and_out_of_range():
    with pytest.raises(ValueError, match="images"):
        MotionSightBox().make(0.1, 0.1, 0.5, 0.5, "fraction")
    with pytest.raises(ValueError, match="x2 > x1"):
        MotionSightBox().make(50, 10, 20, 40, "pixels")


def test_crop_and_background_blur_nodes(loaded):
    frames, _, _ = loaded
    (crop,) = MotionSightCrop().crop(frames, [[100, 50, 160, 100]], padding=40.0, per_frame=False)
    assert crop.shape == (16, 130, 140, 3)
    mask = torch.zeros(1, 180, 320)
    mask[:, 60:120, 100:200] = 1
    (blurred,) = MotionSightBackgroundBlur().apply(frames, mask, 31, 10.0, 2)
    assert torch.allclose(blurred[:, 60:120, 100:200], frames[:, 60:120, 100:200], atol=1e-6)
    assert blurred[:, :40].std() < frames[:, :40].std()
    assert isinstance(MotionSightBackgroundBlur.VALIDATE_INPUTS(kernel_size=98), str)


def test_save_writes_frames_contact_sheet_and_manifest_inside_the_output_folder(loaded, tmp_path):
    frames, clip, _ = loaded
    comfy_bridge.set_output_directory(tmp_path)
    try:
        ui = MotionSightSaveFrames().save(frames, "runs/spot", original=frames, video=clip)["ui"]
        again = MotionSightSaveFrames().save(frames, "runs/spot")["ui"]
    finally:
        comfy_bridge.set_output_directory(None)
    assert len(ui["frames"]) == 16 and ui["folder"] != again["folder"]
    sheet = cv2.imread(ui["contact_sheet"][0])
    assert sheet is not None and sheet.shape[1] > sheet.shape[0]  # 4 columns of side-by-side pairs
    manifest = json.loads(open(ui["manifest"][0]).read())
    assert manifest["count"] == 16 and manifest["frame_indices"] == list(clip.sampling.indices)
    assert all(str(tmp_path) in p for p in ui["frames"])


@pytest.mark.parametrize("prefix", ["../escape", "/abs/path", "a/../../b", ""])
def test_save_refuses_prefixes_that_leave_the_output_folder(prefix):
    assert isinstance(MotionSightSaveFrames.VALIDATE_INPUTS(filename_prefix=prefix), str)
