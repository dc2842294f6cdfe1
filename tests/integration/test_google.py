"""The OpenAI API served by Google: Vertex AI (Gemini and its OpenAI-compatible endpoint) and
the Gemini API, end to end through the official SDK."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from skyroute.core.config import parse_config
from skyroute.emulators.runner import EmulatorThread
from skyroute.server.embedded import GatewayThread
from tests.integration.conftest import AZURE_KEY, MASTER_KEY, PRIMARY, hello, sdk

VERTEX_TOKEN = "ya29.vertex-canary-token"
GEMINI_KEY = "AIza-gemini-canary-key"
FLASH = "gemini-2.5-flash"
GEMINI3 = "gemini-3-pro-preview"


@pytest.fixture(scope="module")
def vertex() -> Iterator[EmulatorThread]:
    with EmulatorThread("vertex", token=VERTEX_TOKEN) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def gemini() -> Iterator[EmulatorThread]:
    with EmulatorThread("gemini", api_key=GEMINI_KEY) as emulator:
        yield emulator


@pytest.fixture
def clouds(vertex: EmulatorThread, gemini: EmulatorThread, clouds: None) -> None:
    vertex.reset()
    gemini.reset()


def google_document(
    vertex: EmulatorThread, gemini: EmulatorThread, azure: EmulatorThread, **vertex_fields: Any
) -> dict:
    return {
        "auth": {"master_key": MASTER_KEY},
        "providers": {
            "azure-east": {"type": "azure", "endpoint": azure.base_url, "api_key": AZURE_KEY},
            "vertex": {
                "type": "vertex",
                "project": "skyroute-test",
                "location": "us-central1",
                "endpoint": vertex.base_url,
                "access_token": VERTEX_TOKEN,
                **vertex_fields,
            },
            "gemini": {"type": "gemini", "api_key": GEMINI_KEY, "base_url": gemini.base_url},
        },
        "models": {
            "gpt-4o": {
                "deployments": [
                    {"provider": "azure-east", "model": PRIMARY, "priority": 0},
                    {"provider": "vertex", "model": FLASH, "priority": 1},
                ],
                "timeouts": {"first_token": 2, "idle": 2},
                "retries": {"attempts": 1, "backoff_base": 0.01, "backoff_max": 0.02},
                "circuit": {"failures": 2, "cooldown": 0.5, "max_cooldown": 1},
            },
            "flash": {"deployments": [{"provider": "vertex", "model": FLASH}]},
            "gemini-3": {"deployments": [{"provider": "gemini", "model": GEMINI3}]},
            "studio": {"deployments": [{"provider": "gemini", "model": FLASH}]},
            "llama": {
                "deployments": [{"provider": "vertex", "model": "meta/llama-3.3-70b-instruct-maas"}]
            },
        },
    }


@pytest.fixture
def gateway(vertex, gemini, azure, clouds) -> Iterator[GatewayThread]:  # type: ignore[no-untyped-def]
    with GatewayThread(parse_config(google_document(vertex, gemini, azure), {})) as running:
        yield running


@pytest.fixture
def client(gateway: GatewayThread) -> openai.OpenAI:
    return sdk(gateway)


@pytest.mark.parametrize("model", ["flash", "studio"])
def test_plain_request(client, model: str, vertex, gemini) -> None:
    raw = client.chat.completions.with_raw_response.create(model=model, messages=hello())
    reply = raw.parse()
    assert raw.headers["x-skyroute-provider"] == ("vertex" if model == "flash" else "gemini")
    assert reply.choices[0].message.content.startswith("You said: Hello there")
    assert reply.usage.total_tokens > 0 and reply.choices[0].finish_reason == "stop"


def test_gemini_api_key_travels_in_a_header_never_the_url(client, gemini) -> None:
    client.chat.completions.create(model="studio", messages=hello())
    (call,) = [r for r in gemini.requests() if "generateContent" in r.path]
    assert GEMINI_KEY not in call.path and "key=" not in call.path
    assert call.headers["x-goog-api-key"] == "***"


@pytest.mark.parametrize("model", ["flash", "studio"])
def test_stream_with_usage(client, model: str) -> None:
    plain = client.chat.completions.create(model=model, messages=hello())
    stream = client.chat.completions.create(
        model=model, messages=hello(), stream=True, stream_options={"include_usage": True}
    )
    text, usage = [], None
    for chunk in stream:
        text.extend(c.delta.content or "" for c in chunk.choices)
        usage = chunk.usage or usage
    assert "".join(text) == plain.choices[0].message.content
    assert usage is not None and usage.total_tokens == plain.usage.total_tokens


TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def test_tool_loop_keeps_gemini_3_thought_signatures(client) -> None:
    messages: list[dict[str, Any]] = hello("Weather in Paris?")
    first = client.chat.completions.create(
        model="gemini-3", messages=messages, tools=[TOOL], tool_choice="required"
    )
    (call,) = first.choices[0].message.tool_calls
    assert first.choices[0].finish_reason == "tool_calls"
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
    ]
    # Gemini 3 answers 400 unless the signature comes back with the call: it must survive
    # the OpenAI-shaped round trip through the client.
    second = client.chat.completions.create(model="gemini-3", messages=messages, tools=[TOOL])
    assert second.choices[0].message.content


def test_tool_call_streamed(client) -> None:
    stream = client.chat.completions.create(
        model="flash", messages=hello("Weather?"), tools=[TOOL], tool_choice="required", stream=True
    )
    arguments, finish = "", None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for tool_call in choice.delta.tool_calls or []:
                arguments += tool_call.function.arguments or ""
    assert finish == "tool_calls" and "city" in json.loads(arguments)


def test_json_schema(client) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "count": {"type": "integer"}},
        "required": ["name", "count"],
    }
    reply = client.chat.completions.create(
        model="flash",
        messages=hello("Give me JSON"),
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    )
    document = json.loads(reply.choices[0].message.content)
    assert isinstance(document["name"], str) and isinstance(document["count"], int)


def test_images(client) -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()
    reply = client.chat.completions.create(
        model="flash",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                ],
            }
        ],
    )
    assert "1 image" in reply.choices[0].message.content


def test_reasoning(client) -> None:
    reply = client.chat.completions.create(
        model="gemini-3", messages=hello("Think hard"), reasoning_effort="high"
    )
    message = reply.choices[0].message
    assert message.content and getattr(message, "reasoning_content", None)
    details = reply.usage.completion_tokens_details
    assert details is not None and details.reasoning_tokens


def test_vertex_openai_compatible_endpoint_is_relayed(client, vertex) -> None:
    reply = client.chat.completions.create(model="llama", messages=hello())
    assert reply.choices[0].message.content
    assert any("/endpoints/openapi/chat/completions" in r.path for r in vertex.requests())


def test_failover_from_azure_to_vertex_and_back(client, azure, vertex) -> None:
    azure.add_faults(PRIMARY, [{"kind": "status", "status": 503, "repeat": True}])
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=hello())
        assert raw.headers["x-skyroute-provider"] == "vertex"
    azure.clear_faults()
    deadline = time.monotonic() + 5
    while True:
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=hello())
        if raw.headers["x-skyroute-provider"] == "azure-east":
            break
        assert time.monotonic() < deadline, "traffic did not return to Azure"
        time.sleep(0.1)


def test_resource_exhausted_honours_retry_info(start_gateway, vertex, gemini, azure) -> None:
    document = google_document(vertex, gemini, azure)
    with GatewayThread(parse_config(document, {})) as gateway:
        vertex.add_faults(FLASH, [{"kind": "status", "status": 429, "retry_after": 0.3}])
        started = time.monotonic()
        reply = sdk(gateway).chat.completions.create(model="flash", messages=hello())
    assert reply.choices[0].message.content
    assert time.monotonic() - started >= 0.3  # waited for RetryInfo's delay, then retried
    assert len([r for r in vertex.requests() if r.model == FLASH]) == 2


def test_mid_stream_error_is_in_band(client, vertex) -> None:
    vertex.add_faults(FLASH, [{"kind": "stream_error", "after_tokens": 2}])
    received = []
    with pytest.raises(openai.APIError):
        for chunk in client.chat.completions.create(model="flash", messages=hello(), stream=True):
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(received)


def test_context_length_from_google(client, vertex) -> None:
    vertex.add_faults(FLASH, [{"kind": "context_length"}])
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="flash", messages=hello())
    assert caught.value.code == "context_length_exceeded"


def test_service_account_key_file_with_a_real_jwt_grant(
    vertex, gemini, azure, clouds, tmp_path
) -> None:
    from skyroute.emulators.google_auth import write_service_account_file

    key_file = write_service_account_file(tmp_path / "sa.json", f"{vertex.base_url}/token")
    vertex.emulator.trust_service_account(key_file)
    document = google_document(vertex, gemini, azure)
    provider = document["providers"]["vertex"]
    del provider["access_token"]
    provider["credentials_file"] = str(key_file)
    with GatewayThread(parse_config(document, {})) as gateway:
        client = sdk(gateway)
        for _ in range(3):
            assert client.chat.completions.create(model="flash", messages=hello())
    # google-auth signed an RS256 assertion, the emulator verified it, and the token is
    # reused across requests instead of being fetched for each one.
    assert vertex.emulator.token_grants == 1
    private_key = __import__("json").loads(key_file.read_text())["private_key"]
    assert all(private_key not in str(r.headers) for r in vertex.requests())
