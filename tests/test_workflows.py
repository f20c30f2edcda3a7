"""Every shipped workflow file runs headless on a real sample clip, as a user would run it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

WORKFLOWS = sorted((Path(__file__).resolve().parents[1] / "workflows").glob("*.json"))


def test_workflows_folder_ships_the_issue_2_workflows():
    names = {p.name for p in WORKFLOWS}
    assert {"camera_motion_trails.json", "spotlight_fixed_box.json"} <= names


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_workflow_runs_headless_on_a_sample(workflow, sample_videos_dir, tmp_path):
    from motionsight.engine import run_workflow

    data = json.loads(workflow.read_text())
    assert "nodes" in data and "links" in data, "shipped workflows are in ComfyUI's UI format"
    video = sample_videos_dir / "desert_train.mp4"
    result = run_workflow(
        workflow,
        {"MotionSightLoadVideo.video": str(video), "MotionSightLoadVideo.max_side": 256},
        output_dir=tmp_path,
    )
    written = [
        Path(p)
        for out in result.outputs
        for key in ("frames", "contact_sheet")
        for p in out.ui.get(key, [])
    ]
    assert written, f"{workflow.name} produced no files"
    assert all(p.is_file() and tmp_path in p.parents for p in written)
