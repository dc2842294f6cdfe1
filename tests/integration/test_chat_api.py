"""The OpenAI chat API through the gateway, with the official SDK as the client."""

from __future__ import annotations

import json

import openai

from skyroute.server.embedded import GatewayThread
from tests.integration.conftest import PRIMARY, chats, hello


def test_plain_request_is_served_by_the_priority_deployment(
    client: openai.OpenAI, azure, local
) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=hello())
    reply = raw.parse()
    assert raw.headers["x-skyroute-provider"] == "azure-east"
    assert raw.headers["x-skyroute-deployment"] == PRIMARY
    assert raw.headers["x-request-id"]
    assert reply.model == PRIMARY  # the model that actually answered
    assert reply.choices[0].message.content.startswith("You said: Hello there")
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.total_tokens > 0
    assert len(chats(azure, PRIMARY)) == 1 and not local.requests()


def test_request_id_reaches_the_upstream(client: openai.OpenAI, azure) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=hello(), extra_headers={"x-request-id": "trace-abc.123"}
    )
    assert raw.headers["x-request-id"] == "trace-abc.123"
    (record,) = chats(azure, PRIMARY)
    assert record.headers.get("x-request-id") == "trace-abc.123"
    assert record.attempt == "1"


def test_stream_with_usage_matches_the_plain_answer(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(model="gpt-4o", messages=hello())
    stream = client.chat.completions.create(
        model="gpt-4o", messages=hello(), stream=True, stream_options={"include_usage": True}
    )
    text, usage, finish = [], None, None
    for chunk in stream:
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(text) == plain.choices[0].message.content
    assert finish == "stop"
    assert usage is not None and usage.total_tokens == plain.usage.total_tokens


def test_stream_without_usage_request_gets_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=hello(), stream=True))
    assert chunks and all(chunk.usage is None for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}


def test_tool_call_plain(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="gpt-4o",
        messages=hello("Weather in Paris?"),
        tools=[WEATHER_TOOL],
        tool_choice="required",
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert isinstance(arguments["city"], str) and arguments["unit"] == "celsius"


def test_tool_call_streamed(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=hello("Weather in Paris?"),
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
    )
    names, arguments, finish = [], "", None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or []:
                if call.function.name:
                    names.append(call.function.name)
                arguments += call.function.arguments or ""
    assert names == ["get_weather"] and finish == "tool_calls"
    assert set(json.loads(arguments)) == {"city", "unit"}


def test_json_schema_response(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "age", "tags"],
        "additionalProperties": False,
    }
    reply = client.chat.completions.create(
        model="gpt-4o",
        messages=hello("Describe a person"),
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": schema, "strict": True},
        },
    )
    document = json.loads(reply.choices[0].message.content)
    assert isinstance(document["name"], str) and isinstance(document["age"], int)
    assert isinstance(document["tags"], list)


def test_images_pass_through(client: openai.OpenAI, azure) -> None:
    pixel = (
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
        "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
    reply = client.chat.completions.create(
        model="gpt-4o",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in these pictures?"},
                    {"type": "image_url", "image_url": {"url": pixel}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                ],
            }
        ],
    )
    assert "2 image" in reply.choices[0].message.content


def test_n_stop_seed_and_reasoning_fields_pass_through(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="gpt-4o",
        messages=hello("one two three four five"),
        n=2,
        seed=7,
        stop=["three"],
        reasoning_effort="low",
    )
    assert [c.index for c in reply.choices] == [0, 1]
    assert all("three" not in (c.message.content or "") for c in reply.choices)


def test_models_lists_configured_names(client: openai.OpenAI) -> None:
    assert sorted(m.id for m in client.models.list()) == ["gpt-4o", "gpt-4o-large"]


def test_health_and_readiness(gateway: GatewayThread) -> None:
    import urllib.request

    for path in ("/healthz", "/readyz"):
        with urllib.request.urlopen(gateway.url + path, timeout=5) as response:
            assert response.status == 200
            assert json.loads(response.read()) == {"status": "ok"}
