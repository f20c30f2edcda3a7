"""`dataset annotate`'s durability: kill -9 at random points loses and duplicates nothing; a file
made with another configuration is refused unless --allow-mixed.

The annotate function here is a small deterministic one (optionally slow), so these tests check
the run itself; ``test_dataset_e2e.py`` annotates the real clips through real backends.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
import zlib
from pathlib import Path

import pytest
from cli_subprocess import cli, cli_env, complete_lines

CLIPS = ["desert_train", "desert_vehicles_aerial", "diving_board", "lawn_mowing", "stairs_pet"]


def canned_annotation(uid: str) -> dict:
    h = zlib.crc32(uid.encode())
    return {
        "object_motion": f"object motion of {uid} ({h % 7})",
        "camera_motion": f"camera motion of {uid}",
        "original_object_motion": f"plain object motion of {uid}",
        "original_camera_motion": f"plain camera motion of {uid}",
        "action_objects": ["thing"],
    }


def slow_annotator():  # noqa: ANN201 -- factory used by `--annotator test_dataset_annotate:slow_annotator`
    delay = float(os.environ.get("MS_TEST_DELAY", "0.05"))

    def annotate(job) -> str:  # noqa: ANN001 -- a ClipJob
        time.sleep(delay)
        return json.dumps(canned_annotation(job.uid))

    return annotate


def other_annotator():  # noqa: ANN201 -- another "configuration"
    return lambda job: json.dumps(canned_annotation(job.uid))


def write_scan(tmp: Path, videos: Path, copies: int) -> Path:
    """A scan file of `copies` kept clips per sample (symlinks: distinct paths, real files)."""
    folder = tmp / "clips"
    folder.mkdir(exist_ok=True)
    lines = []
    for clip in CLIPS:
        for c in range(copies):
            link = folder / f"{clip}_{c}.mp4"
            if not link.exists():
                link.symlink_to(videos / f"{clip}.mp4")
            lines.append(json.dumps({"uid": f"{clip}_{c}", "video": str(link), "error": None,
                                     "keep": True, "split": "sft"}))  # fmt: skip
    scan = tmp / "scan.jsonl"
    scan.write_text("\n".join(lines) + "\n")
    return scan


def test_sigkill_during_annotate_loses_and_duplicates_nothing(tmp_path: Path, sample_videos_dir: Path) -> None:
    scan = write_scan(tmp_path, sample_videos_dir, copies=8)
    out = tmp_path / "annotations.jsonl"
    args = cli("dataset", "annotate", "--scan", str(scan), "--out", str(out), "--annotator",
                "test_dataset_annotate:slow_annotator", "--concurrency", "3",
                "--fsync-interval", "0")  # fmt: skip
    rng = random.Random(20251201)
    kills = 0
    for _ in range(4):
        before = complete_lines(out)
        target = before + rng.randint(1, 6)
        proc = subprocess.Popen(args, env=cli_env(MS_TEST_DELAY="0.04"), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)  # fmt: skip
        deadline = time.monotonic() + 60
        while complete_lines(out) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.06))  # anywhere: mid-annotation, mid-write, between
        if proc.poll() is None:
            proc.kill()
            kills += 1
        proc.wait()
        stderr = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.returncode in (0, -9), stderr
        uids = [json.loads(line)["uid"] for line in out.read_bytes().splitlines()]  # all whole
        assert len(uids) == len(set(uids)), "a killed run left a duplicate"
        assert len(uids) >= before, "finished work was lost"
    assert kills >= 3
    assert complete_lines(out) < 40, "the kills should leave work for the final run"
    done = subprocess.run(args, env=cli_env(MS_TEST_DELAY="0"), capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["uid"] for r in records) == sorted(f"{c}_{i}" for c in CLIPS for i in range(8))
    for r in records:  # each line is the complete annotation of its own clip
        assert r["error"] is None
        assert {k: r[k] for k in canned_annotation(r["uid"])} == canned_annotation(r["uid"])
        assert r["provenance"]["model"] == "test_dataset_annotate:slow_annotator"

    # another configuration may not resume this file silently (the CLI's check, in-process)
    from motionsight.dataset.annotate import ClipJob, run_clips
    from motionsight.evaluation.results import ResultsFileError

    jobs = [ClipJob(r["uid"], r["video"]) for r in records]
    other = {**records[0]["provenance"], "model": "another-model"}
    with pytest.raises(ResultsFileError, match="another configuration.*another-model.*--allow-mixed"):
        run_clips(jobs, other_annotator, out, other)
    report = run_clips(jobs, other_annotator, out, other, allow_mixed=True)
    assert report.skipped == 40 and report.ran == 0
