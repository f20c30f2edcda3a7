"""The review server over real loopback HTTP: API, path escapes, token, kill -9, drawn prompts."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import urllib.parse
from pathlib import Path

import cv2
import numpy as np
import pytest

from motionsight.dataset.review import DecisionStore, load_pairs
from motionsight.dataset.review.server import ReviewServer


def _pairs_file(folder: Path, videos: Path) -> Path:
    """Two pairs on the real clips; the first names its video through a symlink."""
    (folder / "alias.mp4").symlink_to(videos / "desert_train.mp4")
    (folder / "secret.txt").write_text("root:x:0:0:do-not-serve")
    (folder / "secret.mp4").symlink_to(folder / "secret.txt")  # not named by the pairs file
    records = [
        {"id": "train", "video": "alias.mp4", "question": "How does the train move?",
         "candidates": [{"text": "left to right", "source": "motionsight"}, {"text": "it is still", "source": "other"}]},
        {"id": "dive", "video": str(videos / "diving_board.mp4"), "question": "What does the diver do?",
         "candidates": [{"text": "bounces twice", "source": "motionsight"}, {"text": "walks away", "source": "other"}]},
    ]  # fmt: skip
    path = folder / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def request(port, method, path, body=None, headers=None, host=None):
    """One raw HTTP request (the path is sent exactly as given, no client normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    head = {"Host": host or f"127.0.0.1:{port}", **(headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        head.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=data, headers=head, encode_chunked=False)
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), payload


def api(port, method, path, body=None, **kw):
    status, headers, payload = request(port, method, path, body, **kw)
    return status, json.loads(payload)


@pytest.fixture
def served(tmp_path, sample_videos_dir):
    pairs_path = _pairs_file(tmp_path, sample_videos_dir)
    store = DecisionStore(tmp_path / "decisions.jsonl")
    server = ReviewServer(load_pairs(pairs_path), pairs_path, store, "ana")
    with server.running():
        yield server
    store.close()


def test_review_api_decide_skip_undo_and_two_reviewers(served, tmp_path):
    port = served.port
    status, state = api(port, "GET", "/api/state")
    assert (
        status == 200
        and state["pair"]["id"] == "train"
        and (state["done"], state["left"]) == (0, 2)
    )
    assert {state["pair"]["left"], state["pair"]["right"]} == {"left to right", "it is still"}
    assert "source" not in json.dumps(state["pair"])  # blind: the page never sees the sources
    picked = state["pair"]["right"]
    status, state = api(
        port, "POST", "/api/decide", {"pair": "train", "action": "choose", "side": "right"}
    )
    assert status == 200 and state["pair"]["id"] == "dive" and state["per_reviewer"] == {"ana": 1}
    # the same decision again (a second tab) is refused, not recorded twice
    status, err = api(
        port, "POST", "/api/decide", {"pair": "train", "action": "choose", "side": "left"}
    )
    assert status == 409 and "already decided" in err["error"]
    status, state = api(port, "POST", "/api/decide", {"pair": "dive", "action": "skip"})
    assert state["finished"] and "--export" in state["export_command"]
    status, state = api(port, "POST", "/api/undo", {})
    assert state["pair"]["id"] == "dive" and state["can_undo"]
    # a second reviewer on the same server and file: own progress, counts side by side
    status, ben = api(port, "GET", "/api/state?reviewer=ben")
    assert ben["pair"]["id"] == "train" and ben["per_reviewer"] == {"ana": 1}
    status, ben = api(
        port, "POST", "/api/decide", {"reviewer": "ben", "pair": "train", "action": "skip"}
    )
    assert ben["per_reviewer"] == {"ana": 1, "ben": 1}
    status, err = api(port, "GET", "/api/state?reviewer=../x")
    assert status == 400 and "reviewer name" in err["error"]

    lines = [json.loads(x) for x in (tmp_path / "decisions.jsonl").read_text().splitlines()]
    assert [(x["reviewer"], x["action"]) for x in lines] == [
        ("ana", "choose"), ("ana", "skip"), ("ana", "undo"), ("ben", "skip")
    ]  # fmt: skip
    pair = load_pairs(tmp_path / "pairs.jsonl")[0]
    assert pair.candidates[lines[0]["choice"]].text == picked and lines[0]["side"] == "right"


ESCAPES = [
    "/../../../../etc/passwd",
    "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/..%2f..%2f..%2fetc%2fpasswd",
    "/static/%2e%2e%2fserver.py",
    "/static/../server.py",
    "/static/index.html/../../server.py",
    "//etc/passwd",
    "/media/../../etc/passwd",
    "/media/0/..%2f..%2f..%2fetc%2fpasswd",
    "/media/0/original/../../../../etc/passwd",
    "/media/0/original%2f..%2f..%2fsecret.mp4",
    "/media/%2fetc%2fpasswd/original",
    "/media/-1/original",
    "/media/2/original",
    "/media/99999999999/original",
    "/media/0/secret.mp4",
    "/media/secret.mp4",
    "/secret.mp4",
    "/secret.txt",
    "/pairs.jsonl",
    "/decisions.jsonl",
    "/alias.mp4",
    "/media/0/" + urllib.parse.quote(str(Path("/etc/passwd")), safe=""),
    "/static/" + urllib.parse.quote(__file__, safe=""),
]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_nothing_but_the_named_files_is_reachable(served, method):
    secret = b"do-not-serve"
    source = Path(__file__).read_bytes()[:200]
    for path in ESCAPES:
        status, headers, body = request(served.port, method, path)
        assert status in (400, 404), (path, status)
        assert secret not in body and b"root:" not in body and source not in body, path
    # what is named is served: the page, its two static files, the clip behind the symlink
    for path in ("/", "/static/app.js", "/static/style.css"):
        assert request(served.port, method, path)[0] == 200
    status, headers, body = request(
        served.port, "GET", "/media/0/original", headers={"Range": "bytes=0-99"}
    )
    assert status == 206 and headers["Content-Type"] == "video/mp4" and len(body) == 100
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_loopback_checks_host_origin_and_content_type(served):
    port = served.port
    status, err = api(port, "GET", "/api/state", host="attacker.example:80")
    assert status == 421 and "unexpected Host" in err["error"]
    body = {"pair": "train", "action": "skip"}
    status, err = api(
        port, "POST", "/api/decide", body, headers={"Origin": "http://attacker.example"}
    )
    assert status == 403 and "cross-origin" in err["error"]
    status, err = api(port, "POST", "/api/decide", body, headers={"Content-Type": "text/plain"})
    assert status == 415
    assert api(port, "GET", "/api/state")[1]["done"] == 0  # none of them was recorded


def test_another_address_requires_the_token(tmp_path, sample_videos_dir):
    pairs_path = _pairs_file(tmp_path, sample_videos_dir)
    with DecisionStore(tmp_path / "d.jsonl") as store:
        server = ReviewServer(load_pairs(pairs_path), pairs_path, store, "ana", host="0.0.0.0")
        token = server.config.token
        assert token and server.url.endswith(f"/?token={token}")
        # one character off (a random token may itself end in "x": 1 run in 64)
        wrong = token[:-1] + ("y" if token.endswith("x") else "x")
        with server.running():
            port = server.port
            for path in (
                "/",
                "/api/state",
                "/static/app.js",
                "/media/0/original",
                f"/api/state?token={wrong}",
            ):
                status, _h, body = request(port, "GET", path)
                assert status == 403 and b"token" in body, path
            status, headers, _ = request(port, "GET", f"/?token={token}")
            assert status == 200 and f"motionsight_review_token={token}" in headers["Set-Cookie"]
            assert (
                "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
            )
            cookie = {"Cookie": f"motionsight_review_token={token}"}
            assert request(port, "GET", "/static/app.js", headers=cookie)[0] == 200
            assert api(port, "GET", "/api/state", headers={"X-Review-Token": token})[0] == 200


def _start(pairs, out, reviewer):
    proc = subprocess.Popen(
        [sys.executable, "-m", "motionsight.dataset.review.cli", str(pairs), "--out", str(out),
         "--reviewer", reviewer, "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    for line in proc.stdout:  # the URL line comes once the socket listens
        found = re.search(r"review at http://127\.0\.0\.1:(\d+)/", line)
        if found:
            return proc, int(found.group(1))
    proc.kill()
    raise AssertionError(f"the server did not start: {proc.stderr.read()}")


def test_kill_9_mid_review_loses_nothing_decided(tmp_path, sample_videos_dir):
    samples = sample_videos_dir / "motionvid_samples.json"
    out = tmp_path / "decisions.jsonl"
    ana, port_a = _start(samples, out, "ana")
    ben, port_b = _start(samples, out, "ben")  # a second reviewer, another server, same file
    try:
        for _round in range(3):
            for port in (port_a, port_b):
                pair = api(port, "GET", "/api/state")[1]["pair"]["id"]
                status, _ = api(
                    port, "POST", "/api/decide", {"pair": pair, "action": "choose", "side": "left"}
                )
                assert status == 200
        status, state = api(port_a, "POST", "/api/undo", {})
        assert state["done"] == 2
        os.kill(ana.pid, signal.SIGKILL)  # right after the answer: no chance to clean up
        os.kill(ben.pid, signal.SIGKILL)
        ana.wait(10), ben.wait(10)
        ana, port_a = _start(samples, out, "ana")
        state = api(port_a, "GET", "/api/state")[1]
        pairs = load_pairs(samples)
        assert (
            state["done"] == 2 and state["pair"]["id"] == pairs[2].id
        )  # resumes at the undone one
        assert state["per_reviewer"] == {"ana": 2, "ben": 3}
        assert len(out.read_text().splitlines()) == 7
    finally:
        for proc in (ana, ben):
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
            proc.stdout.close()
            proc.stderr.close()


def _frames(data: bytes, tmp_path: Path, name: str) -> np.ndarray:
    path = tmp_path / name
    path.write_bytes(data)
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return np.stack(frames).astype(np.float32)


def test_missing_visual_prompts_are_drawn_once_and_cached(served, tmp_path):
    port = served.port
    got = {}
    for view in ("spotlight", "trails"):
        status, headers, body = request(port, "GET", f"/media/0/{view}")
        assert status == 200 and headers["Content-Type"] == "video/webm", body[:200]
        got[view] = _frames(body, tmp_path, f"{view}.webm")
    cached = sorted(p.name for p in (tmp_path / "decisions_cache").iterdir())
    assert [n.split("-")[1] for n in cached] == ["spotlight", "trails"]
    assert (
        request(port, "GET", "/media/0/trails")[2]
        == (tmp_path / "decisions_cache" / cached[1]).read_bytes()
    )
    # 16 sampled frames each; the spotlight darkens what does not move, the trails blur it
    assert got["spotlight"].shape[0] == got["trails"].shape[0] == 16
    assert got["spotlight"].shape[1:] == (480, 480, 3)
    assert got["spotlight"].mean() < 0.8 * got["trails"].mean()
    assert np.abs(got["trails"] - got["spotlight"]).max() > 50


def test_a_given_folder_of_frames_is_played_as_a_video(tmp_path, sample_videos_dir):
    frames = tmp_path / "prompts" / "trails"
    frames.mkdir(parents=True)
    for i in range(6):  # what `dataset annotate` saves: frame_XX.jpg
        cv2.imwrite(str(frames / f"frame_{i:02d}.jpg"), np.full((90, 160, 3), 40 * i, np.uint8))
    record = {
        "id": "d1",
        "video": str(sample_videos_dir / "diving_board.mp4"),
        "question": "What does the diver do?",
        "candidates": [{"text": "a", "source": "motionsight"}, {"text": "b", "source": "plain"}],
        "visual_prompts": {"spotlight": None, "trails": "prompts/trails"},
    }
    pairs_path = tmp_path / "pairs.jsonl"
    pairs_path.write_text(json.dumps(record) + "\n")
    with DecisionStore(tmp_path / "d.jsonl") as store:
        server = ReviewServer(load_pairs(pairs_path), pairs_path, store, "ana")
        with server.running():
            status, headers, body = request(server.port, "GET", "/media/0/trails")
    assert status == 200 and headers["Content-Type"] == "video/webm"
    got = _frames(body, tmp_path, "t.webm")
    assert got.shape == (6, 90, 160, 3)
    assert np.abs(got[:, 40:50, 70:90].mean(axis=(1, 2, 3)) - 40 * np.arange(6)).max() < 6
