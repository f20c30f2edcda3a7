"""Every shipped workflow runs as shipped (the example clip, no `--set`), as a user would run it;
the Load Video combo also takes a typed path or a name in the input folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / "workflows").glob("*.json"))
EXAMPLE = ROOT / "workflows" / "motionsight_example.mp4"


def _run_cli(capsys, *args: str) -> dict:
    from motionsight.engine.cli import main

    code = main(["run", *args, "--json", "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def _written(report: dict) -> list[Path]:
    return [
        Path(p)
        for o in report["outputs"]
        for key in ("frames", "contact_sheet")
        for p in o["ui"].get(key, [])
    ]


def test_workflows_have_readable_names_notes_thumbnails_and_the_example_clip():
    assert len(WORKFLOWS) == 7
    for workflow in WORKFLOWS:
        data = json.loads(workflow.read_text())
        assert "nodes" in data and "links" in data, "shipped workflows are in ComfyUI's UI format"
        assert "_" not in workflow.stem and workflow.stem[0].isupper(), workflow.name
        notes = [n for n in data["nodes"] if n["type"] == "Note"]
        assert (
            len(notes) == 1
            and "To change" in notes[0]["widgets_values"][0]
            or ("Load MLLM" in notes[0]["widgets_values"][0])
        ), workflow.name
        (load,) = [n for n in data["nodes"] if n["type"] == "MotionSightLoadVideo"]
        assert load["widgets_values"][0] == EXAMPLE.name
        thumb = workflow.with_suffix(".jpg")
        assert thumb.is_file() and thumb.read_bytes()[:3] == b"\xff\xd8\xff", thumb.name
    assert 10_000 < EXAMPLE.stat().st_size <= 1_000_000


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_workflow_runs_as_shipped_with_no_overrides(workflow, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the bare clip name resolves to the pack's copy from anywhere
    report = _run_cli(capsys, str(workflow), "--output", str(tmp_path / "out"))
    written = _written(report)
    assert written, f"{workflow.name} produced no files"
    assert all(p.is_file() and tmp_path / "out" in p.parents for p in written)
    texts = [t for o in report["outputs"] for t in o["ui"].get("text", [])]
    if "Ask" in workflow.stem:  # no model is set: the dry run shows the request it would send
        assert texts and texts[0].startswith("[dry run]") and "Frame15: <image>" in texts[0]


def test_load_video_takes_a_typed_path_or_an_input_folder_name(sample_videos_dir, tmp_path, capsys):
    workflow = str(ROOT / "workflows" / "Camera motion trails.json")
    clip = sample_videos_dir / "desert_vehicles_aerial.mp4"
    small = "MotionSightLoadVideo.max_side=128"
    by_path = _run_cli(
        capsys, workflow, "--set", f"MotionSightLoadVideo.video={clip}", "--set", small,
        "--output", str(tmp_path / "a"),
    )  # fmt: skip
    by_name = _run_cli(
        capsys, workflow, "--input-dir", str(sample_videos_dir), "--set",
        "MotionSightLoadVideo.video=desert_vehicles_aerial.mp4", "--set", small, "--output", str(tmp_path / "b"),
    )  # fmt: skip
    for report in (by_path, by_name):
        (manifest,) = [Path(p) for o in report["outputs"] for p in o["ui"]["manifest"]]
        assert "desert_vehicles_aerial.mp4" in manifest.read_text()


def test_a_missing_video_is_one_line_naming_node_and_input(tmp_path, capsys):
    from motionsight.engine.cli import main

    code = main(
        [
            "run", str(ROOT / "workflows" / "Camera motion trails.json"), "--set",
            "MotionSightLoadVideo.video=nowhere.mp4", "--output", str(tmp_path),
        ]
    )  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "MotionSightLoadVideo" in err and "nowhere.mp4" in err
    assert "Traceback" not in err and os.fspath(tmp_path) not in err
