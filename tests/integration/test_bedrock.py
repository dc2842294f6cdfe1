"""The OpenAI API served by AWS Bedrock (Converse), end to end through the official SDK."""

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
from tests.integration.conftest import AZURE_KEY, MASTER_KEY, PRIMARY, chats, hello, sdk

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "aws-secret-canary-3b7f"
GPT_OSS = "openai.gpt-oss-120b-1:0"
CLAUDE = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"


@pytest.fixture(scope="module")
def bedrock() -> Iterator[EmulatorThread]:
    with EmulatorThread(
        "bedrock", access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY
    ) as emulator:
        yield emulator


@pytest.fixture
def clouds(bedrock: EmulatorThread, clouds: None) -> None:
    bedrock.reset()


def bedrock_document(bedrock: EmulatorThread, azure: EmulatorThread, **provider: Any) -> dict:
    credentials = {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY, **provider}
    return {
        "auth": {"master_key": MASTER_KEY},
        "providers": {
            "bedrock": {
                "type": "bedrock",
                "region": "us-east-1",
                "endpoint_url": bedrock.base_url,
                **credentials,
            },
            "azure-east": {"type": "azure", "endpoint": azure.base_url, "api_key": AZURE_KEY},
        },
        "models": {
            "gpt-oss": {
                "deployments": [
                    {"provider": "bedrock", "model": GPT_OSS, "priority": 0},
                    {"provider": "azure-east", "model": PRIMARY, "priority": 1},
                ],
                "timeouts": {"first_token": 2, "idle": 2},
                "retries": {"attempts": 1, "backoff_base": 0.01, "backoff_max": 0.02},
                "circuit": {"failures": 3, "cooldown": 0.5, "max_cooldown": 1},
            },
            "claude": {"deployments": [{"provider": "bedrock", "model": CLAUDE}]},
        },
    }


@pytest.fixture
def gateway(
    bedrock: EmulatorThread, azure: EmulatorThread, clouds: None
) -> Iterator[GatewayThread]:
    bedrock.reset()
    with GatewayThread(parse_config(bedrock_document(bedrock, azure), {})) as running:
        yield running
    bedrock.reset()


@pytest.fixture
def client(gateway: GatewayThread) -> openai.OpenAI:
    return sdk(gateway)


def bedrock_calls(bedrock: EmulatorThread, model: str = GPT_OSS) -> list:
    return [r for r in bedrock.requests() if r.model == model]


def test_plain_request_is_translated_to_converse_and_back(client, bedrock) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-oss", messages=[{"role": "system", "content": "Be brief."}, *hello()]
    )
    reply = raw.parse()
    assert raw.headers["x-skyroute-provider"] == "bedrock"
    assert reply.model == GPT_OSS
    assert reply.choices[0].message.content.startswith("You said: Hello there")
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    (call,) = bedrock_calls(bedrock)
    assert call.path == "/model/openai.gpt-oss-120b-1%3A0/converse"


def test_stream_with_usage(client) -> None:
    plain = client.chat.completions.create(model="gpt-oss", messages=hello())
    stream = client.chat.completions.create(
        model="gpt-oss", messages=hello(), stream=True, stream_options={"include_usage": True}
    )
    text, usage, finish = [], None, None
    for chunk in stream:
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
        usage = chunk.usage or usage
    assert "".join(text) == plain.choices[0].message.content
    assert finish == "stop" and usage is not None
    assert usage.total_tokens == plain.usage.total_tokens


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


def test_tool_call_and_a_multi_turn_loop_with_parallel_results(client) -> None:
    first = client.chat.completions.create(
        model="gpt-oss",
        messages=hello("Weather in Paris and Rome?"),
        tools=[TOOL],
        tool_choice="required",
    )
    calls = first.choices[0].message.tool_calls
    assert first.choices[0].finish_reason == "tool_calls" and calls
    assert "city" in json.loads(calls[0].function.arguments)
    history = [
        *hello("Weather in Paris and Rome?"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "18C and sunny"},
        {"role": "tool", "tool_call_id": "call_b", "content": "22C and cloudy"},
    ]
    second = client.chat.completions.create(model="gpt-oss", messages=history, tools=[TOOL])
    assert second.choices[0].message.content


def test_tool_call_streamed(client) -> None:
    stream = client.chat.completions.create(
        model="gpt-oss",
        messages=hello("Weather?"),
        tools=[TOOL],
        tool_choice="required",
        stream=True,
    )
    names, arguments, finish = [], "", None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or []:
                names.append(call.function.name) if call.function.name else None
                arguments += call.function.arguments or ""
    assert names == ["get_weather"] and finish == "tool_calls"
    assert "city" in json.loads(arguments)


def test_json_schema(client) -> None:
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}, "year": {"type": "integer"}},
        "required": ["title", "year"],
        "additionalProperties": False,
    }
    reply = client.chat.completions.create(
        model="gpt-oss",
        messages=hello("A film, please"),
        response_format={"type": "json_schema", "json_schema": {"name": "film", "schema": schema}},
    )
    document = json.loads(reply.choices[0].message.content)
    assert isinstance(document["title"], str) and isinstance(document["year"], int)


def test_images_as_data_urls(client) -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32).decode()
    reply = client.chat.completions.create(
        model="gpt-oss",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                ],
            }
        ],
    )
    assert "1 image" in reply.choices[0].message.content


def test_remote_image_urls_are_refused_not_fetched(client, bedrock) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="claude",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "http://169.254.169.254/latest"}}
                    ],
                }
            ],
        )
    assert "image_url" in (caught.value.param or "")
    assert not bedrock.requests()


def test_reasoning_comes_back(client) -> None:
    reply = client.chat.completions.create(
        model="claude",
        messages=hello("Think about it"),
        reasoning_effort="low",
        max_completion_tokens=4000,
    )
    message = reply.choices[0].message
    assert message.content
    assert getattr(message, "reasoning_content", None)


def test_throttled_bedrock_fails_over_to_the_next_tier_and_comes_back(
    client, bedrock, azure
) -> None:
    bedrock.add_faults(GPT_OSS, [{"kind": "status", "status": 429, "repeat": True}])
    raw = client.chat.completions.with_raw_response.create(model="gpt-oss", messages=hello())
    assert raw.headers["x-skyroute-provider"] == "azure-east"
    assert len(bedrock_calls(bedrock)) == 1  # a 429 moves on; it is not retried in place
    bedrock.clear_faults()
    deadline = time.monotonic() + 5
    while True:
        raw = client.chat.completions.with_raw_response.create(model="gpt-oss", messages=hello())
        if raw.headers["x-skyroute-provider"] == "bedrock":
            break
        assert time.monotonic() < deadline, "traffic did not return to Bedrock"
        time.sleep(0.1)


def test_in_stream_throttling_before_output_fails_over(client, bedrock, azure) -> None:
    bedrock.add_faults(GPT_OSS, [{"kind": "stream_error", "after_tokens": 0, "repeat": True}])
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-oss", messages=hello(), stream=True
    )
    assert raw.headers["x-skyroute-provider"] == "azure-east"
    assert "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert chats(azure, PRIMARY)


def test_in_stream_exception_after_output_is_an_in_band_error(client, bedrock) -> None:
    bedrock.add_faults(GPT_OSS, [{"kind": "stream_error", "after_tokens": 2}])
    received = []
    with pytest.raises(openai.APIError):
        for chunk in client.chat.completions.create(model="gpt-oss", messages=hello(), stream=True):
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(received)


def test_wrong_aws_secret_is_a_provider_fault_not_a_client_one(bedrock, azure, clouds) -> None:
    document = bedrock_document(bedrock, azure, secret_access_key="wrong-secret")
    document["models"]["gpt-oss"]["deployments"] = document["models"]["gpt-oss"]["deployments"][:1]
    with GatewayThread(parse_config(document, {})) as gateway:
        with pytest.raises(openai.APIStatusError) as caught:
            sdk(gateway).chat.completions.create(model="gpt-oss", messages=hello())
    assert caught.value.status_code == 502
    assert SECRET_KEY not in caught.value.response.text


def test_unsupported_parameters_are_named_unless_dropped(bedrock, azure, clouds) -> None:
    document = bedrock_document(bedrock, azure)
    document["models"]["gpt-oss"]["deployments"] = document["models"]["gpt-oss"]["deployments"][:1]
    with GatewayThread(parse_config(document, {})) as gateway:
        with pytest.raises(openai.BadRequestError) as caught:
            sdk(gateway).chat.completions.create(
                model="gpt-oss", messages=hello(), logit_bias={"1": 5}
            )
    assert caught.value.param == "logit_bias" and not bedrock.requests()
    document["providers"]["bedrock"]["drop_unsupported_params"] = True
    with GatewayThread(parse_config(document, {})) as gateway:
        reply = sdk(gateway).chat.completions.create(
            model="gpt-oss", messages=hello(), logit_bias={"1": 5}
        )
    assert reply.choices[0].message.content


def test_bedrock_api_key_as_bearer(azure, clouds) -> None:
    with EmulatorThread("bedrock", api_key="bedrock-api-key-canary") as keyed:
        document = bedrock_document(keyed, azure)
        provider = document["providers"]["bedrock"]
        del provider["access_key_id"], provider["secret_access_key"]
        provider["api_key"] = "bedrock-api-key-canary"
        with GatewayThread(parse_config(document, {})) as gateway:
            reply = sdk(gateway).chat.completions.create(model="gpt-oss", messages=hello())
        assert reply.choices[0].message.content
        (call,) = [r for r in keyed.requests() if r.model == GPT_OSS]
        assert call.headers["authorization"] == "***"


def test_credentials_from_the_standard_aws_chain(
    bedrock, azure, clouds, tmp_path, monkeypatch
) -> None:
    # A shared credentials file and a named profile: resolved by botocore, in a thread.
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[team]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_BEARER_TOKEN_BEDROCK",
    ):
        monkeypatch.delenv(name, raising=False)
    document = bedrock_document(bedrock, azure)
    provider = document["providers"]["bedrock"]
    del provider["access_key_id"], provider["secret_access_key"]
    provider["profile"] = "team"
    with GatewayThread(parse_config(document, {})) as gateway:
        reply = sdk(gateway).chat.completions.create(model="gpt-oss", messages=hello())
    assert reply.choices[0].message.content


def test_credentials_from_aws_environment_variables(bedrock, azure, clouds) -> None:
    from skyroute.server.app import create_app

    document = bedrock_document(bedrock, azure)
    provider = document["providers"]["bedrock"]
    del provider["access_key_id"], provider["secret_access_key"]
    env = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_SESSION_TOKEN": "session-token-canary",
    }
    app = create_app(parse_config(document, {}), env=env)
    with GatewayThread(app.state.config, app=app) as gateway:
        reply = sdk(gateway).chat.completions.create(model="gpt-oss", messages=hello())
    assert reply.choices[0].message.content
    call = bedrock_calls(bedrock)[-1]
    assert call.headers["x-amz-security-token"] == "***"  # sent, signed, and redacted
