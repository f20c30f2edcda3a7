"""Shared workflows are untrusted: two real loopback servers, the user's and an attacker's.

No field of a workflow makes a secret or a frame reach a server the user did not allow; with
the user's own permission (a CLI flag, the environment, a settings file) the normal path works.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openai_server import OpenAITestServer, allow, image_urls

import motionsight
from motionsight import trust
from motionsight.detect.detectors import resolve_model
from motionsight.engine import run_workflow
from motionsight.engine.cli import main
from motionsight.engine.errors import NodeExecutionError
from motionsight.nodes.detection import MotionSightLoadDetector
from motionsight.nodes.mllm import MotionSightLoadMLLM

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"
KEY_ENV = "OPENAI_API_KEY"  # the one variable allowed by default
SECRET = "sk-user-secret-0123456789"
OTHER_SECRETS = {"AWS_SECRET_ACCESS_KEY": "aws-secret-abcdef", "HOME": "/root-home-secret"}


@pytest.fixture
def servers(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    for name, value in OTHER_SECRETS.items():
        monkeypatch.setenv(name, value)
    with OpenAITestServer(reply="B") as user, OpenAITestServer(reply="B") as attacker:
        yield user, attacker


def _evil_workflow(tmp_path: Path, url: str, key_env: str = KEY_ENV) -> Path:
    """The shipped camera workflow, edited as an attacker would: its Load MLLM points at `url`."""
    data = json.loads((WORKFLOWS / "Ask about camera motion.json").read_text())
    loader = next(n for n in data["nodes"] if n["type"] == "MotionSightLoadMLLM")
    loader["widgets_values"][:4] = ["openai", "served-model", url, key_env]
    loader["widgets_values"][-2] = 0  # retries: a refusal must not need them anyway
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(data))
    return path


def _run_cli(workflow: Path, video: Path, tmp_path: Path, *flags: str) -> int:
    return main(
        [
            "run",
            str(workflow),
            "--set",
            f"MotionSightLoadVideo.video={video}",
            "--set",
            "MotionSightLoadVideo.max_side=64",
            "--output",
            str(tmp_path / "out"),
            "--quiet",
            *flags,
        ]  # fmt: skip
    )


def _leaked(server: OpenAITestServer) -> str:
    return json.dumps(server.requests)


def test_a_shared_workflow_cannot_reach_an_unallowed_server(
    servers, sample_videos_dir, tmp_path, capsys, monkeypatch
):
    user, attacker = servers
    allow(monkeypatch, user.base_url)  # the user trusts their own server, not the attacker's
    evil = _evil_workflow(tmp_path, attacker.base_url)
    code = _run_cli(evil, sample_videos_dir / "desert_train.mp4", tmp_path)
    err = capsys.readouterr().err
    assert code == 1 and attacker.requests == [] and user.requests == []
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "node 2 'Load MLLM" in line and attacker.base_url.rsplit("/", 1)[0] in line
    assert "--trust-url" in line and trust.URLS_ENV in line and "trusted_urls" in line


@pytest.mark.parametrize(
    "key_env", [KEY_ENV, "AWS_SECRET_ACCESS_KEY", "HOME", "", "sk-pasted-Key1"]
)
@pytest.mark.parametrize("trusted", [False, True])
def test_no_field_of_the_loader_sends_a_secret_or_a_frame(servers, key_env, trusted, monkeypatch):
    """Every string field of Load MLLM set to the attacker's URL, every switch on, with and
    without the user's own server trusted: the attacker gets nothing, and a key variable the
    user did not allow is never read, not even for the user's server."""
    user, attacker = servers
    if trusted:
        allow(monkeypatch, user.base_url)
    node = MotionSightLoadMLLM()
    for backend in ("openai", "transformers"):
        for field in ("model", "base_url", "api_key_env"):
            values = {
                "model": "served-model",
                "base_url": attacker.base_url,
                "api_key_env": key_env,
            }
            values[field] = attacker.base_url if field != "api_key_env" else key_env
            with pytest.raises(Exception) as refused:  # noqa: PT011 -- any clean refusal
                node.load(backend, values["model"], values["base_url"], values["api_key_env"],
                          8, 0.0, 0, 28 * 28, allow_download=True, retries=0)  # fmt: skip
            assert SECRET not in str(refused.value) and "sk-pasted" not in str(refused.value)
    assert attacker.requests == []
    if trusted and key_env not in (KEY_ENV, ""):  # allowed server, unallowed key variable
        shown = "'sk-pasted" if key_env.startswith("sk") else f"'{key_env}'"
        with pytest.raises(trust.TrustError, match="api_key_env .*--allow-key-var") as refused:
            node.load("openai", "served-model", user.base_url, key_env, 8, 0.0, 0, 28 * 28)
        assert (shown in str(refused.value)) == (not key_env.startswith("sk"))
    assert user.requests == []
    assert not any(s in _leaked(attacker) for s in (SECRET, *OTHER_SECRETS.values()))


@pytest.mark.parametrize("how", ["--trust-url", "--set"])
def test_with_the_users_permission_the_normal_path_works(
    servers, sample_videos_dir, tmp_path, capsys, how
):
    """`--trust-url URL`, or the user typing `--set ...base_url=URL`, is the consent: the key
    and the frames go to the user's server, never to the attacker's (whose URL the workflow
    no longer names)."""
    user, attacker = servers
    workflow = _evil_workflow(tmp_path, attacker.base_url if how == "--set" else user.base_url)
    flags = (
        ["--trust-url", user.base_url]
        if how == "--trust-url"
        else ["--set", f"MotionSightLoadMLLM.base_url={user.base_url}"]
    )
    code = _run_cli(workflow, sample_videos_dir / "desert_train.mp4", tmp_path, *flags)
    assert code == 0, capsys.readouterr().err
    assert attacker.requests == [] and len(user.requests) == 1
    assert user.requests[0]["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert len(image_urls(user.requests[0]["body"])) == 16


def test_ask_with_base_url_is_one_flag_and_overrides_the_workflows_server(
    servers, sample_videos_dir, tmp_path, capsys
):
    """The common case: `ask --base-url URL --model-name M` with $OPENAI_API_KEY, even when
    given an attacker's workflow: the user's URL replaces the workflow's."""
    user, attacker = servers
    evil = _evil_workflow(tmp_path, attacker.base_url)
    code = main(
        ["ask", str(sample_videos_dir / "desert_train.mp4"), "How does the camera move?",
         "--base-url", user.base_url, "--model-name", "served-model", "--workflow", str(evil),
         "--label", "camera", "--max-side", "64", "--output", str(tmp_path / "out"), "--quiet"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert attacker.requests == [] and user.requests
    assert all(r["headers"]["Authorization"] == f"Bearer {SECRET}" for r in user.requests)


def test_a_settings_file_the_user_edits_is_consent(servers, tmp_path, monkeypatch):
    user, attacker = servers
    settings = tmp_path / "motionsight_settings.json"
    monkeypatch.setattr(trust, "PACK_SETTINGS", settings)
    node = MotionSightLoadMLLM()
    with pytest.raises(trust.TrustError, match="not allowed by you"):
        node.load("openai", "m", user.base_url, "AWS_SECRET_ACCESS_KEY", 8, 0.0, 0, 784)
    settings.write_text(
        json.dumps({"trusted_urls": [user.base_url], "allowed_key_vars": ["AWS_SECRET_ACCESS_KEY"]})
    )
    (handle,) = node.load("openai", "m", user.base_url, "AWS_SECRET_ACCESS_KEY", 8, 0.0, 0, 784)
    assert handle.model is not None
    with pytest.raises(trust.TrustError, match="not allowed by you"):
        node.load("openai", "m", attacker.base_url, KEY_ENV, 8, 0.0, 0, 784)
    settings.write_text('{"trusted_urls": "not a list"}')
    with pytest.raises(trust.TrustError, match="must be a list of strings"):
        trust.consent()


def test_the_origin_must_match_exactly():
    assert trust.origin("HTTP://LocalHost:8000/v1") == ("http", "localhost", 8000)
    assert trust.origin("https://api.example.com/v1") == ("https", "api.example.com", 443)
    assert trust.origin("http://127.0.0.1:8000/v1") != trust.origin("http://127.0.0.1:8001/v1")
    with pytest.raises(ValueError, match="not an http"):
        trust.origin("file:///etc/passwd")


def test_allow_download_in_a_workflow_alone_never_downloads(monkeypatch):
    """A hub id with allow_download on is refused before any hub request; the user's consent
    lets it through to the hub client (offline in tests, so that fails differently)."""
    loader, detector = MotionSightLoadMLLM(), MotionSightLoadDetector()
    load_mllm = lambda: loader.load("transformers", "evil-org/model", "", "", 8, 0.0, 0, 784,  # noqa: E731
                                    allow_download=True)  # fmt: skip
    load_dino = lambda: detector.load("grounding_dino", "evil-org/dino", "cpu", 0.25, 0.25,  # noqa: E731
                                      allow_download=True)  # fmt: skip
    for load in (load_mllm, load_dino):
        with pytest.raises(trust.TrustError, match="--allow-download.*MOTIONSIGHT_ALLOW_DOWNLOAD"):
            load()
    monkeypatch.setenv(trust.DOWNLOAD_ENV, "1")
    (handle,) = load_mllm()  # loads lazily, from the hub id the user now allowed
    assert handle.model.path == "evil-org/model"
    assert resolve_model("grounding_dino", "evil-org/dino", True) == ("evil-org/dino", False)


def test_eval_of_a_shared_openai_workflow_is_refused_without_consent(
    servers, sample_videos_dir, tmp_path
):
    """The README's eval example on a workflow whose backend points at a server: refused per
    question (recorded as failed), nothing reaches the attacker."""
    user, attacker = servers
    evil = _evil_workflow(tmp_path, attacker.base_url)
    with pytest.raises(NodeExecutionError, match="not allowed by you"):
        run_workflow(
            evil,
            {"MotionSightLoadVideo.video": str(sample_videos_dir / "desert_train.mp4"),
             "MotionSightLoadVideo.max_side": 64, "MotionSightLoadMLLM.model": "other"},
            output_dir=tmp_path / "out",
            node_classes=motionsight.NODE_CLASS_MAPPINGS,
        )  # fmt: skip
    assert attacker.requests == []


@pytest.mark.parametrize("prefix", [".", "./", "./.", "a/..", "./a/../."])
def test_a_prefix_can_only_name_a_folder_inside_the_output_folder(prefix, tmp_path, capsys):
    """Checked before anything is written: by validation (exit 2), and by the node itself."""
    import torch

    from motionsight import comfy_bridge
    from motionsight.nodes.output import MotionSightSaveFrames

    out = tmp_path / "out"
    code = main(["run", str(WORKFLOWS / "Spotlight on a fixed box.json"), "--set",
                 "MotionSightLoadVideo.video=/nonexistent.mp4", "--set",
                 f"MotionSightSaveFrames.filename_prefix={prefix}", "--output", str(out),
                 "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "filename_prefix" in err and sorted(tmp_path.iterdir()) == []
    comfy_bridge.set_output_directory(out)
    try:
        with pytest.raises(ValueError, match="escapes|itself"):
            MotionSightSaveFrames().save(torch.rand(2, 8, 8, 3), prefix)
    finally:
        comfy_bridge.set_output_directory(None)
    assert sorted(tmp_path.iterdir()) == []  # nothing beside (or in) the output folder
