"""Shared fixtures. Tests never download: any hub access fails loudly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MOTIONSIGHT_DEVICE", "cpu")

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_VIDEOS = Path(os.environ.get("MOTIONSIGHT_SAMPLE_VIDEOS", REPO_ROOT.parent / "shared" / "videos"))


@pytest.fixture(scope="session")
def sample_videos_dir() -> Path:
    """The real sample clips (../shared/videos), or skip with the reason."""
    if not (SAMPLE_VIDEOS / "desert_train.mp4").exists():
        pytest.skip(f"sample videos not found at {SAMPLE_VIDEOS} (set MOTIONSIGHT_SAMPLE_VIDEOS)")
    return SAMPLE_VIDEOS


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
