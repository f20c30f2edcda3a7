"""The OpenAI-compatible HTTP backend against a real loopback server (tests/openai_server.py):
the payload, the key from the environment, bounded retries, clear errors, the concurrency
limit, pickling. Tiny timeouts and backoff keep the whole file to a few seconds."""

from __future__ import annotations

import base64
import copy
import pickle
import re
import threading
import urllib.request

import cv2
import numpy as np
import pytest
import torch
from openai_server import OpenAITestServer, content_text, image_urls

from motionsight.mllm.base import MLLM, GenerationOptions, MLLMError, Prompt
from motionsight.mllm.openai_backend import OpenAIMLLM, chat_completions_url, to_uint8

KEY_ENV = "MOTIONSIGHT_HTTP_TEST_KEY"
SECRET = "sk-http-test-9f8e7d6c5b4a"
RETRIES = 2
# every failure kind of the test server and the words the final error must give for it
FAILURES = {
    "500": "HTTP 500",
    "503": "HTTP 503",
    "429": "HTTP 429",
    "timeout": "timed out after 0.3 s",
    "malformed": "malformed reply",
    "drop": "connection dropped",
    "truncate": "connection dropped: IncompleteRead",
}


@pytest.fixture
def server():
    with OpenAITestServer(hang_seconds=2.0) as running:
        yield running


def _backend(server: OpenAITestServer, **kwargs) -> OpenAIMLLM:
    settings = dict(timeout=0.3, max_retries=RETRIES, backoff=0.01, api_key_env=KEY_ENV)
    return OpenAIMLLM(server.base_url, "test-model", **{**settings, **kwargs})


def _frame(value: float, height: int = 48, width: int = 64) -> torch.Tensor:
    return torch.full((height, width, 3), value)


def _small_prompt() -> Prompt:
    return Prompt(("Frame0: ", _frame(0.5, 8, 8), "\nWhat moves?"))


def _decode(url: str) -> np.ndarray:
    """A `data:image/jpeg;base64,...` URL -> the RGB uint8 image it carries."""
    prefix = "data:image/jpeg;base64,"
    assert url.startswith(prefix)
    data = np.frombuffer(base64.b64decode(url[len(prefix) :]), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    assert image is not None, "not a JPEG"
    return image[..., ::-1]


# ----------------------------------------------------------------------------- payload


def test_payload_keeps_text_and_images_in_order_bounded_in_size(server, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    red = torch.zeros(480, 640, 3)
    red[..., 0] = 1.0
    parts = ("Original video:\n", "Frame0: ", red, "\nFrame1: ", _frame(0.25), "\nFrame2: ")
    prompt = Prompt((*parts, _frame(0.75, 30, 20), "\nWhat moves?"))
    backend = _backend(server, max_pixels=100 * 100)
    answer = backend.generate(prompt, GenerationOptions(max_new_tokens=9, seed=3))

    assert answer.text == "A" and answer.attempts == 1 and answer.num_images == 3
    assert answer.model == "test-model" and answer.extra["usage"]["total_tokens"] == 2
    (request,) = server.requests
    assert request["method"] == "POST" and request["path"] == "/v1/chat/completions"
    body = request["body"]
    assert body["model"] == "test-model" and body["max_tokens"] == 9
    assert body["temperature"] == 0 and body["seed"] == 3
    (message,) = body["messages"]
    assert message["role"] == "user"
    # adjacent strings merged; images exactly where the prompt has them
    assert [item["type"] for item in message["content"]] == [
        "text", "image_url", "text", "image_url", "text", "image_url", "text",
    ]  # fmt: skip
    assert message["content"][0]["text"] == "Original video:\nFrame0: "
    assert content_text(body) == prompt.text == answer.prompt_text
    images = [_decode(url) for url in image_urls(body)]
    # bounded to max_pixels with the aspect kept; a small image is not enlarged
    assert images[0].shape[0] * images[0].shape[1] <= 100 * 100
    assert images[0].shape[1] / images[0].shape[0] == pytest.approx(640 / 480, rel=0.05)
    assert images[2].shape[:2] == (30, 20)
    assert answer.extra["image_sizes"] == [list(im.shape[:2]) for im in images]
    # colours survive (RGB sent as RGB, not BGR) and each image is the one its label names
    assert images[0][..., 0].mean() > 240 and images[0][..., 2].mean() < 15
    assert [im.mean() / 255 for im in images[1:]] == pytest.approx([0.25, 0.75], abs=0.02)


def test_the_backend_fits_the_mllm_protocol_and_lists_models_on_the_server(server):
    backend = _backend(server)
    assert isinstance(backend, MLLM) and backend.name == f"test-model @ {server.base_url}"
    assert backend.url == server.base_url + "/chat/completions"
    assert chat_completions_url(server.base_url + "/") == backend.url
    assert chat_completions_url(backend.url) == backend.url
    with urllib.request.urlopen(server.base_url + "/models", timeout=2) as response:
        listed = response.read()
    assert b'"test-model"' in listed and server.requests[-1]["method"] == "GET"


@pytest.mark.parametrize("url", ["127.0.0.1:8000/v1", "ftp://host/v1", "http:///v1", ""])
def test_a_bad_base_url_is_refused_naming_it(url):
    with pytest.raises(MLLMError, match="base_url must be an http"):
        OpenAIMLLM(url, "m")


# ----------------------------------------------------------------------------- the API key


def test_the_key_comes_from_the_named_variable_at_request_time(server, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    backend = _backend(server)
    backend.generate(_small_prompt(), GenerationOptions())
    monkeypatch.setenv(KEY_ENV, "")  # empty: no header either
    backend.generate(_small_prompt(), GenerationOptions())
    monkeypatch.setenv(KEY_ENV, SECRET)  # set after the backend was built: still used
    backend.generate(_small_prompt(), GenerationOptions())
    headers = [r["headers"] for r in server.requests]
    assert "Authorization" not in headers[0] and "Authorization" not in headers[1]
    assert headers[2]["Authorization"] == f"Bearer {SECRET}"


def test_the_key_never_appears_in_repr_or_pickle_and_a_copy_works(server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    backend = _backend(server, concurrency=3)
    backend.generate(_small_prompt(), GenerationOptions())
    data = pickle.dumps(backend)
    assert SECRET not in repr(backend) and SECRET.encode() not in data
    assert SECRET not in str(vars(backend)) and KEY_ENV in repr(backend)
    for clone in (pickle.loads(data), copy.deepcopy(backend)):
        assert clone._slots is not backend._slots and clone.concurrency == 3
        assert clone.generate(_small_prompt(), GenerationOptions()).text == "A"
    assert [r["headers"]["Authorization"] for r in server.requests] == [f"Bearer {SECRET}"] * 3


@pytest.mark.parametrize("value", [SECRET, "my key", "OPENAI-KEY"])
def test_a_key_given_instead_of_a_variable_name_is_refused(value, server):
    with pytest.raises(MLLMError, match="NAME of an environment variable"):
        _backend(server, api_key_env=value)


# ----------------------------------------------------------------------------- retries


@pytest.mark.parametrize("kind", list(FAILURES))
def test_a_failure_is_retried_then_answered(kind, server):
    server.fail_next(kind, times=RETRIES)  # fewer failures than tries
    answer = _backend(server).generate(_small_prompt(), GenerationOptions())
    assert answer.text == "A" and answer.attempts == RETRIES + 1
    assert len(server.requests) == RETRIES + 1 and len(answer.errors) == RETRIES
    assert all(FAILURES[kind] in error for error in answer.errors)
    # every try sent the same request
    assert len({str(r["body"]) for r in server.requests}) == 1


@pytest.mark.parametrize("kind", list(FAILURES))
def test_a_persistent_failure_gives_a_clear_error_after_bounded_tries(kind, server):
    server.fail_next(kind, times=10)
    with pytest.raises(MLLMError) as error:
        _backend(server).generate(_small_prompt(), GenerationOptions())
    message = str(error.value)
    assert len(server.requests) == 1 + RETRIES  # then it stops
    assert server.base_url + "/chat/completions" in message and "test-model" in message
    assert FAILURES[kind] in message and f"after {1 + RETRIES} attempt(s)" in message


@pytest.mark.parametrize(
    "status, words",
    [
        ("400", "HTTP 400 Bad Request: scripted 400"),
        ("401", "check the API key"),
        ("404", "check the base URL"),
        ("422", "HTTP 422"),
    ],
)
def test_a_client_error_is_not_retried(status, words, server):
    server.fail_next(status)
    with pytest.raises(MLLMError, match="refused the request") as error:
        _backend(server).generate(_small_prompt(), GenerationOptions())
    assert words in str(error.value) and server.base_url in str(error.value)
    assert len(server.requests) == 1


def test_no_retries_means_one_try(server):
    server.fail_next("500", times=3)
    with pytest.raises(MLLMError, match=r"after 1 attempt\(s\)"):
        _backend(server, max_retries=0).generate(_small_prompt(), GenerationOptions())
    assert len(server.requests) == 1


def test_backoff_is_exponential_and_capped():
    backend = OpenAIMLLM("http://127.0.0.1:9/v1", "m", backoff=0.5, max_backoff=3.0)
    assert [backend._wait(k, None) for k in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    # a Retry-After longer than the backoff wins, up to retry_after_cap; a shorter one does not
    assert backend._wait(0, 10.0) == 10.0 and backend._wait(2, 0.0) == 2.0
    assert backend._wait(0, 1000.0) == backend.retry_after_cap == 30.0


def test_retry_after_is_honoured_up_to_the_cap(server):
    server.retry_after = 0.2
    server.fail_next("429")
    answer = _backend(server).generate(_small_prompt(), GenerationOptions())
    assert answer.attempts == 2 and answer.extra["waits"] == [0.2]
    server.retry_after = 1000.0  # a huge Retry-After cannot stall a batch
    server.fail_next("429")
    answer = _backend(server, retry_after_cap=0.05).generate(_small_prompt(), GenerationOptions())
    assert answer.attempts == 2 and answer.extra["waits"] == [0.05]


def test_waits_between_tries_double(server):
    server.fail_next("503", times=3)
    answer = _backend(server, max_retries=3).generate(_small_prompt(), GenerationOptions())
    assert answer.attempts == 4 and answer.extra["waits"] == [0.01, 0.02, 0.04]


def test_a_server_that_is_down_gives_an_error_naming_the_url():
    with OpenAITestServer() as gone:
        url = gone.base_url  # closed: its port refuses connections
    backend = OpenAIMLLM(url, "m", timeout=1, max_retries=1, backoff=0.01)
    with pytest.raises(MLLMError, match=re.escape(url) + r".*after 2 attempt.*connection failed"):
        backend.generate(_small_prompt(), GenerationOptions())


# ----------------------------------------------------------------------------- concurrency


def test_the_concurrency_limit_bounds_requests_in_flight():
    with OpenAITestServer(latency=0.1) as server:
        backend = _backend(server, concurrency=2, timeout=5)
        answers: list[str] = []

        def ask() -> None:
            answers.append(backend.generate(_small_prompt(), GenerationOptions()).text)

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert answers == ["A"] * 8 and len(server.requests) == 8
        assert server.max_in_flight == 2  # parallel, but never more than the limit


def test_the_server_closes_without_leaving_threads(monkeypatch):
    before = set(threading.enumerate())
    with OpenAITestServer(hang_seconds=30) as server:
        server.fail_next("timeout", times=2)
        with pytest.raises(MLLMError, match="timed out"):
            _backend(server, max_retries=1, timeout=0.2).generate(
                _small_prompt(), GenerationOptions()
            )
    # the two handlers still sleeping on "timeout" were woken and joined by close()
    assert set(threading.enumerate()) <= before


def test_pixels_are_quantised_as_the_transformers_backend_does():
    image = torch.rand(37, 53, 3) * 1.4 - 0.2  # out of range too
    image[0, 0] = torch.tensor([0.5, 1.5, 2.5]) / 255  # halves round to even
    expected = (image.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    got = to_uint8(image)
    assert got.dtype == np.uint8 and got.shape == (37, 53, 3)
    np.testing.assert_array_equal(got, expected)
    assert to_uint8(torch.ones(1, 1, 3)).tolist() == [[[255, 255, 255]]]
