"""Anthropic both ways: the Messages API on skyroute, and Anthropic as an upstream."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from skyroute.core.config import parse_config
from skyroute.emulators.runner import EmulatorThread
from skyroute.server.embedded import GatewayThread
from tests.integration.conftest import CANARIES, LOCAL_KEY, MASTER_KEY, hello, sdk

ANTHROPIC_KEY = "sk-ant-canary-9d1e"
CLAUDE = "claude-sonnet-4-6"


@pytest.fixture(scope="module")
def claude() -> Iterator[EmulatorThread]:
    with EmulatorThread("anthropic", api_key=ANTHROPIC_KEY) as emulator:
        yield emulator


@pytest.fixture
def gateway(claude: EmulatorThread, local: EmulatorThread, clouds: None) -> Iterator[GatewayThread]:
    claude.reset()
    document = {
        "auth": {"master_key": MASTER_KEY},
        "providers": {
            "anthropic": {
                "type": "anthropic",
                "api_key": ANTHROPIC_KEY,
                "base_url": claude.base_url,
            },
            "local-vllm": {"type": "openai", "base_url": local.base_url, "api_key": LOCAL_KEY},
        },
        "models": {
            "claude": {
                "deployments": [
                    {"provider": "anthropic", "model": CLAUDE, "priority": 0},
                    {"provider": "local-vllm", "model": "qwen3", "priority": 1},
                ],
                "retries": {"attempts": 1, "backoff_base": 0.01, "backoff_max": 0.02},
            },
            "qwen": {"deployments": [{"provider": "local-vllm", "model": "qwen3"}]},
        },
    }
    with GatewayThread(parse_config(document, {})) as running:
        yield running


def client_for(gateway: GatewayThread, key: str = MASTER_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)


def test_messages_api_served_by_an_openai_compatible_deployment(gateway) -> None:
    message = client_for(gateway).messages.create(
        model="qwen", max_tokens=200, messages=[{"role": "user", "content": "Hello there"}]
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].text.startswith("You said: Hello there")
    assert message.stop_reason == "end_turn" and message.usage.input_tokens > 0


def test_x_api_key_and_bearer_both_authenticate(gateway) -> None:
    body = {"model": "qwen", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    for headers in ({"x-api-key": MASTER_KEY}, {"authorization": f"Bearer {MASTER_KEY}"}):
        response = httpx.post(
            gateway.url + "/v1/messages",
            json=body,
            headers={**headers, "anthropic-version": "2023-06-01"},
        )
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("call", "status", "error_type"),
    [
        (
            lambda g: httpx.post(
                g.url + "/v1/messages", json={"model": "qwen"}, headers={"x-api-key": "wrong"}
            ),
            401,
            "authentication_error",
        ),
        (
            lambda g: httpx.post(
                g.url + "/v1/messages",
                json={
                    "model": "nope",
                    "max_tokens": 5,
                    "messages": [{"role": "user", "content": "x"}],
                },
                headers={"x-api-key": MASTER_KEY},
            ),
            404,
            "not_found_error",
        ),
        (
            lambda g: httpx.post(
                g.url + "/v1/messages",
                content=b"{oops",
                headers={"x-api-key": MASTER_KEY, "content-type": "application/json"},
            ),
            400,
            "invalid_request_error",
        ),
        (
            lambda g: httpx.post(
                g.url + "/v1/messages",
                json={"model": "qwen", "messages": [{"role": "user", "content": "x"}]},
                headers={"x-api-key": MASTER_KEY},
            ),
            400,
            "invalid_request_error",
        ),
    ],
    ids=["bad-key", "unknown-model", "malformed", "missing-max-tokens"],
)
def test_errors_use_anthropics_shape(gateway, call, status: int, error_type: str) -> None:
    response = call(gateway)
    assert response.status_code == status
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == error_type
    assert body["error"]["message"]
    assert not any(canary in response.text for canary in CANARIES)


def test_missing_max_tokens_is_named(gateway) -> None:
    response = httpx.post(
        gateway.url + "/v1/messages",
        headers={"x-api-key": MASTER_KEY},
        json={"model": "qwen", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 400 and "max_tokens" in response.json()["error"]["message"]


def test_count_tokens(gateway) -> None:
    counted = client_for(gateway).messages.count_tokens(
        model="qwen", messages=[{"role": "user", "content": "Hello there " * 20}]
    )
    assert counted.input_tokens > 10


def test_openai_sdk_served_by_anthropic(gateway, claude) -> None:
    reply = sdk(gateway).chat.completions.create(model="claude", messages=hello())
    assert reply.model == CLAUDE and reply.choices[0].message.content
    assert any(r.model == CLAUDE for r in claude.requests())


def test_overloaded_529_fails_over_before_the_first_byte(gateway, claude, local) -> None:
    claude.add_faults(CLAUDE, [{"kind": "status", "status": 529, "repeat": True}])
    raw = sdk(gateway).chat.completions.with_raw_response.create(model="claude", messages=hello())
    assert raw.headers["x-skyroute-provider"] == "local-vllm"
    assert len([r for r in claude.requests() if r.model == CLAUDE]) == 2  # retried once


def test_in_stream_overloaded_before_output_fails_over(gateway, claude) -> None:
    claude.add_faults(CLAUDE, [{"kind": "stream_error", "after_tokens": 0, "repeat": True}])
    with client_for(gateway).messages.stream(
        model="claude", max_tokens=200, messages=[{"role": "user", "content": "Hello there"}]
    ) as stream:
        text = "".join(stream.text_stream)
    assert text.startswith("You said")


def test_in_stream_error_after_output_is_an_anthropic_error_event(gateway, claude) -> None:
    claude.add_faults(CLAUDE, [{"kind": "stream_error", "after_tokens": 2}])
    received = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        with client_for(gateway).messages.stream(
            model="claude",
            max_tokens=200,
            messages=[{"role": "user", "content": "Hello there, how are you"}],
        ) as stream:
            received.extend(stream.text_stream)
    assert "".join(received)
    assert caught.value.body["error"]["type"] in {"overloaded_error", "api_error"}  # type: ignore[index]


def test_openai_stream_from_anthropic_upstream_with_usage(gateway) -> None:
    text, usage = [], None
    for chunk in sdk(gateway).chat.completions.create(
        model="claude", messages=hello(), stream=True, stream_options={"include_usage": True}
    ):
        text.extend(c.delta.content or "" for c in chunk.choices)
        usage = chunk.usage or usage
    assert "".join(text) and usage is not None and usage.prompt_tokens > 0


def test_upstream_key_never_reaches_the_client(gateway, claude) -> None:
    claude.add_faults(CLAUDE, [{"kind": "status", "status": 401}])
    response = httpx.post(
        gateway.base_url + "/chat/completions",
        json={"model": "claude", "messages": hello()},
        headers={"authorization": f"Bearer {MASTER_KEY}"},
    )
    assert ANTHROPIC_KEY not in response.text


def test_openai_errors_stay_openai_shaped(gateway) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        sdk(gateway).chat.completions.create(model="nope", messages=hello())
    assert caught.value.code == "model_not_found"
