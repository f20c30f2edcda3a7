"""What a ComfyUI user meets first, without ComfyUI: the install files, the Load Video file combo,
VHS interop, text shown on nodes, errors that name the input, optional dependencies."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from motionsight import comfy_bridge
from motionsight.mllm import MLLMHandle
from motionsight.nodes.mllm import (
    MotionSightAsk,
    MotionSightExtractActionObjects,
    MotionSightRouteQuestion,
)
from motionsight.nodes.video import MotionSightLoadVideo, MotionSightSampleImages

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = "motionsight_example.mp4"


def _names(lines: list[str]) -> dict[str, str]:
    reqs = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            name = re.match(r"[A-Za-z0-9_.\-]+", line).group(0).lower()
            reqs[name] = line
    return reqs


def test_requirements_txt_is_pyproject_minus_torch():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = _names(project["project"]["dependencies"])
    listed = _names((ROOT / "requirements.txt").read_text().splitlines())
    assert {"torch", "torchvision"} & listed.keys() == set()
    assert listed == {k: v for k, v in declared.items() if k not in ("torch", "torchvision")}
    # 4.x is asked for (HOG); 5.x brought by another pack is handled at run time
    assert listed["opencv-python-headless"] == "opencv-python-headless>=4.8,<5"
    assert project["tool"]["comfy"]["PublisherId"] and project["tool"]["comfy"]["DisplayName"]


def test_pack_imports_lazily_and_serves_its_web_extension():
    code = (
        "import sys, motionsight as m; assert m.WEB_DIRECTORY == './web'; "
        "assert 'motionsight.nodes' not in sys.modules; "
        "assert 'MotionSightAsk' in m.NODE_CLASS_MAPPINGS; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr
    js = (ROOT / "web" / "motionsight.js").read_text()
    assert "app.registerExtension" in js and "onExecuted" in js
    for node in ("MotionSightAsk", "MotionSightAnswer", "MotionSightRouteQuestion",
                 "MotionSightExtractActionObjects"):  # fmt: skip
        assert f'"{node}"' in js


@pytest.fixture
def input_dir(tmp_path):
    (tmp_path / "clip b.mp4").write_bytes(b"x")
    (tmp_path / "a.webm").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not a video")
    comfy_bridge.set_input_directory(tmp_path)
    yield tmp_path
    comfy_bridge.set_input_directory(None)


def test_load_video_is_a_combo_of_input_videos_with_upload(input_dir):
    choices, options = MotionSightLoadVideo.INPUT_TYPES()["required"]["video"]
    assert choices == ["a.webm", "clip b.mp4", EXAMPLE]
    assert options["video_upload"] is True and options["default"] == EXAMPLE


def test_load_video_validates_names_paths_and_empty(input_dir, sample_videos_dir):
    validate = MotionSightLoadVideo.VALIDATE_INPUTS
    assert validate(EXAMPLE) is True  # found in the pack from any working directory
    assert validate("clip b.mp4") is True  # a name in the input folder
    assert validate(str(sample_videos_dir / "desert_train.mp4")) is True  # a typed path
    assert "no video given" in validate("  ")
    assert validate("gone.mp4") == f"video file not found: {Path('gone.mp4')}"


def test_a_text_file_named_mp4_fails_naming_the_input(input_dir):
    with pytest.raises(ValueError, match=r"^video: .*clip b\.mp4 cannot be opened as a video"):
        MotionSightLoadVideo().load("clip b.mp4", "segments", 16, 1.0, 0)


def test_video_from_images_takes_vhs_video_info(sample_videos_dir):
    _, clip, info = MotionSightLoadVideo().load(
        str(sample_videos_dir / "desert_train.mp4"), "segments", 64, 1.0, 64
    )
    every = clip.frames()
    vhs = {
        "source_fps": 24.0,
        "source_frame_count": 128,
        "source_duration": 128 / 24,
        "source_width": 512,
        "source_height": 512,
        "loaded_fps": 12.0,
        "loaded_frame_count": 64,
        "loaded_duration": 64 / 12,
        "loaded_width": 64,
        "loaded_height": 64,
    }  # fmt: skip  -- VHS loaded every 2nd frame of a 128-frame file
    node = MotionSightSampleImages()
    frames, sampled, out = node.sample(every, 99.0, "segments", 8, 1.0, 0, video_info=vhs)
    assert sampled.info.fps == 12.0 and frames.shape[0] == 8  # loaded_fps wins over `fps`
    assert sampled.sampling.timestamps[0] == pytest.approx(4 / 12)
    assert out["source_frame_count"] == 128 and out["source_fps"] == 24.0
    assert out["loaded_frame_count"] == 8
    with pytest.raises(ValueError, match="holds 63 frames but video_info says 64"):
        node.sample(every[:63], 24.0, "segments", 8, 1.0, 0, video_info=vhs)


def test_text_nodes_show_their_text_on_the_node():
    frames = torch.rand(4, 32, 32, 3)
    dry = MLLMHandle(None)
    question = "How does the camera move?"
    route = MotionSightRouteQuestion().route(question, "auto")
    assert route["ui"]["text"] == ["camera (keyword rules)"] and route["result"][0] == "camera"
    found = MotionSightExtractActionObjects().extract(dry, frames, question, 3, branch="object")
    assert found["ui"]["text"][0].startswith(found["result"][0])
    asked = MotionSightAsk().ask(dry, question, "camera", route=route["result"][1],
                                 motion_trails=frames)  # fmt: skip
    (text,) = asked["ui"]["text"]
    assert text == asked["result"][0] and text.startswith("[dry run]") and "--model" in text
    assert json.loads(asked["result"][1])["dry_run"] is True


def test_inside_comfyui_the_dry_run_names_the_load_mllm_inputs(monkeypatch):
    from motionsight.mllm.answering import dry_run_hint

    monkeypatch.setitem(sys.modules, "folder_paths", types.ModuleType("folder_paths"))
    hint = dry_run_hint()
    assert "Load MLLM" in hint and "`model`" in hint and "`base_url`" in hint
    assert "--model" not in hint


def test_hog_on_an_opencv_without_it_says_what_to_do(monkeypatch):
    import cv2

    from motionsight.detect.detectors import HogPeopleDetector

    monkeypatch.delattr(cv2, "HOGDescriptor", raising=False)
    with pytest.raises(RuntimeError, match=r"hog_people .*pip install 'opencv-python-headless<5'"):
        HogPeopleDetector()


def test_a_folder_that_is_not_a_model_fails_naming_the_input(tmp_path):
    from motionsight.nodes.mllm import MotionSightLoadMLLM

    with pytest.raises(RuntimeError, match=f"^model: {tmp_path} is not a model folder"):
        MotionSightLoadMLLM().load("transformers", str(tmp_path), "", "OPENAI_API_KEY",
                                   128, 0.0, 0, 151200)  # fmt: skip
