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


@pytest.fixture(autouse=True)
def _no_standing_consent(monkeypatch, tmp_path_factory) -> None:
    """Every test starts with no trusted server, no extra key variable and no download consent
    (the command line's grants are undone after each test); settings files are not read."""
    from motionsight import trust

    for name in (trust.URLS_ENV, trust.KEY_VARS_ENV, trust.DOWNLOAD_ENV, trust.SETTINGS_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(trust, "PACK_SETTINGS", tmp_path_factory.getbasetemp() / "no_settings.json")
