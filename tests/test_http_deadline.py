"""Every HTTP request ends within its stated deadline, replies are capped, empty replies retried,
and the key never follows a redirect to another origin (real loopback servers)."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from openai_server import OpenAITestServer

from motionsight.mllm import GenerationOptions, MLLMError
from motionsight.mllm.base import Prompt
from motionsight.mllm.openai_backend import OpenAIMLLM

KEY_ENV = "MOTIONSIGHT_TEST_API_KEY"
SECRET = "sk-deadline-secret-0123"
PROMPT = Prompt(("What moves?",))


@pytest.fixture
def server():
    with OpenAITestServer() as running:
        yield running


def _backend(server: OpenAITestServer, **kwargs) -> OpenAIMLLM:
    settings = dict(timeout=0.5, max_retries=1, backoff=0.05, retry_after_cap=0.05)
    return OpenAIMLLM(server.base_url, "test-model", **{**settings, **kwargs})


@pytest.mark.parametrize("kind", ["hang", "drip"])
def test_a_never_answering_or_dripping_server_ends_within_the_stated_deadline(kind, server):
    """A server that never answers, and one sending its whole reply (status line included) one
    byte every 0.1 s (it would need ~30 s), each end within `max_seconds`, not per byte."""
    server.hang_seconds, server.drip_interval = 30.0, 0.1
    server.fail_next(kind, times=2)
    backend = _backend(server)
    assert backend.max_seconds == pytest.approx(2 * 0.5 + 0.05)
    started = time.perf_counter()
    with pytest.raises(MLLMError) as error:
        backend.generate(PROMPT, GenerationOptions())
    took = time.perf_counter() - started
    assert took < backend.max_seconds + 0.5, took  # 0.5 s of slack for a loaded 2-core machine
    assert len(server.requests) == 2  # retried once, as configured
    message = str(error.value)
    assert "timed out after 0.5 s" in message and "2 attempt(s)" in message
    assert "the limit: 1.05 s" in message and "\n" not in message


def test_the_total_budget_bounds_all_tries_and_waits(server):
    """Many retries cannot outlast `total_timeout`: the last try's deadline is shortened."""
    server.hang_seconds = 30.0
    server.fail_next("hang", times=20)
    backend = _backend(server, max_retries=10, total_timeout=1.2)
    assert backend.max_seconds == 1.2
    assert OpenAIMLLM(server.base_url, "m").max_seconds == 300  # the defaults: 300 s at most
    started = time.perf_counter()
    with pytest.raises(MLLMError, match="the limit: 1.2 s"):
        backend.generate(PROMPT, GenerationOptions())
    assert time.perf_counter() - started < 1.2 + 0.5
    assert 2 <= len(server.requests) <= 3


@pytest.mark.parametrize("kind", ["huge", "huge_unannounced"])
def test_a_100_mb_reply_is_refused_without_holding_it(kind, server):
    server.fail_next(kind)
    tracemalloc.start()
    try:
        with pytest.raises(MLLMError, match="over the cap of 1048576 bytes") as error:
            _backend(server, timeout=10.0, max_reply_bytes=1024 * 1024).generate(
                PROMPT, GenerationOptions()
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(server.requests) == 1  # refused, not retried
    assert peak < 8 * 1024 * 1024, peak  # read in chunks up to the cap: nowhere near 100 MB
    assert len(str(error.value)) < 300


def test_the_default_cap_refuses_100_mb(server):
    server.fail_next("huge")
    with pytest.raises(MLLMError, match="announces 104857600 bytes, over the cap of 10485760"):
        _backend(server).generate(PROMPT, GenerationOptions())


def test_an_empty_reply_is_an_error_that_is_retried(server):
    server.fail_next("empty")
    answer = _backend(server).generate(PROMPT, GenerationOptions())
    assert answer.text == "A" and answer.attempts == 2 and "empty reply" in answer.errors[0]
    server.fail_next("empty", times=2)
    with pytest.raises(MLLMError, match="empty reply"):
        _backend(server).generate(PROMPT, GenerationOptions())


def test_authorization_never_follows_a_redirect_to_another_origin(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    with OpenAITestServer() as user, OpenAITestServer() as other:
        user.redirect_to = other.base_url + "/chat/completions"
        user.fail_next("redirect")
        backend = OpenAIMLLM(user.base_url, "m", api_key_env=KEY_ENV, timeout=2.0, max_retries=0)
        with pytest.raises(MLLMError):
            backend.generate(PROMPT, GenerationOptions())
        assert user.requests[0]["headers"]["Authorization"] == f"Bearer {SECRET}"
        assert len(other.requests) == 1  # urllib followed it (as GET, without the body) ...
        assert "Authorization" not in other.requests[0]["headers"]  # ... but not with the key
        assert other.requests[0]["body"] is None  # and no frames
        # the same origin keeps it (another path on the user's own server)
        user.redirect_to = user.base_url + "/elsewhere"
        user.fail_next("redirect")
        with pytest.raises(MLLMError):
            backend.generate(PROMPT, GenerationOptions())
        assert user.requests[-1]["headers"]["Authorization"] == f"Bearer {SECRET}"
