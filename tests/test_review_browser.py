"""The review page in headless Chromium (Debian's `chromium`, driven by playwright; no download).

On the real sample clips: the video plays, the visual prompts toggle, keys choose, skip and
undo, a reload resumes at the first undecided pair, and the decisions file and the export say
what was pressed. Screenshots go to $MOTIONSIGHT_REVIEW_SCREENSHOTS (else the test's tmp dir).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from motionsight.dataset.review import DecisionStore, load_pairs
from motionsight.dataset.review.cli import main
from motionsight.dataset.review.server import ReviewServer

CHROMIUM = os.environ.get("MOTIONSIGHT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser_page():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)"
    )
    if not Path(CHROMIUM).is_file():
        pytest.skip(
            f"no Chromium at {CHROMIUM} (apt-get install chromium, or set MOTIONSIGHT_CHROMIUM)"
        )
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page, errors
        browser.close()


def _wait_pair(page, old: str) -> str:
    page.wait_for_function(
        "old => document.body.dataset.state !== 'busy' && document.body.dataset.pair !== old"
        " || document.body.dataset.state === 'finished'",
        arg=old,
    )
    return page.evaluate("document.body.dataset.pair")


def _texts(page) -> dict[str, str]:
    return {side: page.inner_text(f"#text-{side}") for side in ("left", "right")}


def _wait_view(page, view: str) -> dict:
    page.wait_for_function(
        """view => { const v = document.getElementById('video');
            return v.src.includes('/' + view) && v.readyState >= 2 && v.currentTime > 0.1; }""",
        arg=view,
        timeout=180_000,
    )
    return page.evaluate(
        "() => { const v = document.getElementById('video');"
        " return {w: v.videoWidth, h: v.videoHeight, duration: v.duration, paused: v.paused}; }"
    )


def test_review_page_in_chromium(browser_page, tmp_path, sample_videos_dir):
    page, errors = browser_page
    shots = Path(os.environ.get("MOTIONSIGHT_REVIEW_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    samples = sample_videos_dir / "motionvid_samples.json"
    pairs = load_pairs(samples)
    out = tmp_path / "decisions.jsonl"
    store = DecisionStore(out)
    server = ReviewServer(pairs, samples, store, "ana")
    picked: dict[str, str] = {}  # pair id -> the text on the side pressed
    with server.running():
        page.goto(server.url)
        page.wait_for_selector("body[data-state=ready]")
        assert page.evaluate("document.body.dataset.pair") == pairs[0].id
        assert page.inner_text("#question") == pairs[0].question
        assert set(_texts(page).values()) == {c.text for c in pairs[0].candidates}
        original = _wait_view(page, "original")  # the real clip plays (muted, looping)
        assert (original["w"], original["h"]) == (512, 512) and not original["paused"]
        assert abs(original["duration"] - 64 / 24) < 0.1
        page.screenshot(path=str(shots / "review_original.png"))
        for key, view in (("2", "spotlight"), ("3", "trails")):
            page.keyboard.press(key)
            drawn = _wait_view(page, view)
            assert (drawn["w"], drawn["h"]) == (480, 480) and drawn["duration"] > 1.5
            assert page.get_attribute(f".view[data-view={view}]", "class") == "view active"
            page.screenshot(path=str(shots / f"review_{view}.png"))

        picked[pairs[0].id] = _texts(page)["left"]
        page.keyboard.press("ArrowLeft")
        assert _wait_pair(page, pairs[0].id) == pairs[1].id
        assert page.evaluate("document.getElementById('video').src").endswith("/media/1/original")
        page.keyboard.press("s")  # skip pair 1
        assert _wait_pair(page, pairs[1].id) == pairs[2].id
        page.keyboard.press("ArrowRight")
        assert _wait_pair(page, pairs[2].id) == pairs[3].id
        page.keyboard.press("u")  # undo: back to pair 2
        assert _wait_pair(page, pairs[3].id) == pairs[2].id
        assert page.inner_text("#done") == "2" and page.inner_text("#left") == "3"
        page.keyboard.press("?")
        assert page.is_visible("#help")
        page.screenshot(path=str(shots / "review_help.png"))
        page.keyboard.press("Escape")
        assert not page.is_visible("#help")

        page.reload()  # resumes at the first undecided pair
        page.wait_for_selector("body[data-state=ready]")
        assert page.evaluate("document.body.dataset.pair") == pairs[2].id
        assert page.inner_text("#done") == "2"
        _wait_view(page, "original")
        for pair, key in zip(pairs[2:], ("ArrowLeft", "ArrowRight", "ArrowLeft"), strict=True):
            picked[pair.id] = _texts(page)["left" if key == "ArrowLeft" else "right"]
            page.keyboard.press(key)
            _wait_pair(page, pair.id)
        page.wait_for_selector("body[data-state=finished]")
        assert page.is_visible("#finished") and not page.is_visible("#review")
        command = page.inner_text("#export-command")
        assert command.startswith("motionsight dataset review ") and f"--out {out}" in command
        page.screenshot(path=str(shots / "review_finished.png"))
    store.close()
    assert errors == []

    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["action"] for x in lines] == [
        "choose",
        "skip",
        "choose",
        "undo",
        "choose",
        "choose",
        "choose",
    ]
    assert lines[3]["undoes"] == lines[2]["uid"]
    assert main([str(samples), "--out", str(out), "--export", str(tmp_path / "reviewed")]) == 0
    records = [
        json.loads(x)
        for x in (tmp_path / "reviewed" / "reviewed_pairs.jsonl").read_text().splitlines()
    ]
    assert [r["id"] for r in records] == [pairs[i].id for i in (0, 2, 3, 4)]  # the skip stays out
    assert {r["id"]: r["chosen"] for r in records} == picked
    assert all(r["reviewers"] == ["ana"] and r["choice_by"] == "person" for r in records)
