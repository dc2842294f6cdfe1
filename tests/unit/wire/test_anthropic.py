"""Anthropic Messages ⇄ canonical: requests, responses, streams and errors, both ways."""

from __future__ import annotations

import base64
import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from skyroute.core.chat import (
    CacheControl,
    ChatRequest,
    ChatResponse,
    Choice,
    DocumentPart,
    Finish,
    FinishReason,
    ImagePart,
    Message,
    Reasoning,
    ReasoningConfig,
    ReasoningDelta,
    ResponseFormat,
    StreamEvent,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    ToolChoice,
    UsageReport,
)
from skyroute.core.errors import (
    AuthenticationFailed,
    BodyTooLarge,
    ContextLengthExceeded,
    GatewayError,
    InternalError,
    InvalidRequest,
    ModelNotFound,
    NoCapacity,
    ServiceUnavailable,
    UpstreamBadRequest,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from skyroute.core.usage import CompletionDetails, PromptDetails, Usage
from skyroute.transport.sse import SSEDecoder
from skyroute.wire.anthropic import (
    AnthropicEventWriter,
    AnthropicStreamTranslator,
    error_body,
    error_type,
    from_anthropic,
    map_anthropic_error,
    map_stream_error,
    parse_messages_request,
    response_to_anthropic,
    to_anthropic,
)

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg=="
)
REDACTED = base64.b64decode("EmwKAhgBEgy3va3pzix/LafPsn4a")


def request(*messages: Message, **fields: Any) -> ChatRequest:
    return ChatRequest(
        model="m", messages=list(messages) or [Message(role="user", content=[text("hi")])], **fields
    )


def text(value: str, cache: CacheControl | None = None) -> TextPart:
    return TextPart(text=value, cache_control=cache)


def user(*parts: TextPart | ImagePart) -> Message:
    return Message(role="user", content=list(parts))


def upstream(req: ChatRequest, dialect: Any = "anthropic") -> dict[str, Any]:
    body: dict[str, Any] = json.loads(to_anthropic(req, model="claude-x", dialect=dialect))
    return body


def refused_upstream(req: ChatRequest) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        to_anthropic(req, model="claude-x", dialect="anthropic")
    return caught.value


def inbound(**fields: Any) -> bytes:
    body = {"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    return json.dumps({**body, **fields}).encode()


def refused_inbound(raw: bytes) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse_messages_request(raw)
    return caught.value


# --- to_anthropic ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "model", "version", "stream"),
    [
        ("anthropic", "claude-x", None, True),
        ("bedrock", None, "bedrock-2023-05-31", None),  # InvokeModel bodies have no stream
        ("vertex", None, "vertex-2023-10-16", True),  # streamRawPredict keeps it
    ],
)
def test_dialects_differ_in_model_version_and_stream(
    dialect: str, model: str | None, version: str | None, stream: bool | None
) -> None:
    body = upstream(request(stream=True), dialect)
    assert body.get("model") == model
    assert body.get("anthropic_version") == version
    assert body.get("stream") == stream


def test_max_tokens_defaults_because_anthropic_requires_it() -> None:
    assert upstream(request())["max_tokens"] == 4096
    assert upstream(request(max_tokens=77))["max_tokens"] == 77


@pytest.mark.parametrize(
    ("effort", "budget"), [("minimal", 1024), ("low", 2048), ("medium", 8192), ("high", 16384)]
)
def test_effort_becomes_a_thinking_budget_with_room_to_answer(effort: Any, budget: int) -> None:
    body = upstream(request(reasoning=ReasoningConfig(effort=effort)))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == budget + 4096


def test_budget_shrinks_to_fit_a_small_max_tokens_but_an_explicit_one_does_not() -> None:
    body = upstream(request(reasoning=ReasoningConfig(effort="high"), max_tokens=3000))
    assert body["thinking"]["budget_tokens"] == 1500
    error = refused_upstream(
        request(reasoning=ReasoningConfig(budget_tokens=5000), max_tokens=5000)
    )
    assert error.param == "max_tokens"


def test_more_than_one_choice_and_hot_temperatures_are_refused() -> None:
    assert refused_upstream(request(n=2)).param == "n"
    assert refused_upstream(request(temperature=1.5)).param == "temperature"
    assert upstream(request(temperature=1.0, top_p=0.5))["temperature"] == 1.0


def test_system_and_developer_go_to_the_top_level_system() -> None:
    body = upstream(request(Message(role="system", content=[text("Be terse.")]), user(text("hi"))))
    assert body["system"] == "Be terse."
    body = upstream(
        request(
            Message(role="system", content=[text("A")]),
            Message(role="developer", content=[text("B", CacheControl(type="ephemeral"))]),
            user(text("hi")),
        )
    )
    assert body["system"] == [
        {"type": "text", "text": "A"},
        {"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}},
    ]
    system_image = Message(role="system", content=[ImagePart(data=PNG)])
    assert (
        refused_upstream(request(system_image, user(text("x")))).param == "messages[0].content[0]"
    )


def test_blank_text_is_dropped_and_an_empty_conversation_refused() -> None:
    body = upstream(request(user(text("  "), text("hi"))))
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert refused_upstream(request(user(text(" ")))).param == "messages"


def test_consecutive_turns_merge_and_tool_results_come_first() -> None:
    call = ToolCall(id="toolu_1", name="f", arguments='{"a": 1}')
    body = upstream(
        request(
            user(text("q")),
            Message(role="assistant", tool_calls=[call]),
            user(text("more")),
            Message(role="tool", tool_call_id="toolu_1", content=[text("42")]),
        )
    )
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"},
        {"type": "text", "text": "more"},
    ]
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}
    ]


def test_tool_results_carry_is_error_cache_control_and_images() -> None:
    result = Message(
        role="tool",
        tool_call_id="toolu_1",
        content=[text("see"), ImagePart(data=PNG)],
        is_error=True,
        cache_control=CacheControl(type="ephemeral", ttl="1h"),
    )
    block = upstream(request(user(text("q")), result))["messages"][0]["content"][0]
    assert block["is_error"] is True
    assert block["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert block["content"][1]["source"]["media_type"] == "image/png"
    empty = Message(role="tool", tool_call_id="t", content=[])
    assert "content" not in upstream(request(empty))["messages"][0]["content"][0]


@pytest.mark.parametrize(
    ("arguments", "expected"), [("", {}), ("  ", {}), ('{"x": [1, 2]}', {"x": [1, 2]})]
)
def test_tool_arguments_become_the_input_object(arguments: str, expected: Any) -> None:
    call = ToolCall(id="t", name="f", arguments=arguments)
    body = upstream(request(Message(role="assistant", tool_calls=[call])))
    assert body["messages"][0]["content"][0]["input"] == expected


@pytest.mark.parametrize("arguments", ["{", "[1]", '"x"'])
def test_tool_arguments_that_are_not_an_object_are_refused(arguments: str) -> None:
    call = ToolCall(id="t", name="f", arguments=arguments)
    error = refused_upstream(request(Message(role="assistant", tool_calls=[call])))
    assert error.param == "messages[0].tool_calls[0].function.arguments"


def test_signed_and_redacted_thinking_go_back_first_and_unchanged() -> None:
    message = Message(
        role="assistant",
        content=[text("answer")],
        reasoning=[
            Reasoning(text="plain, unsigned"),
            Reasoning(text="signed", signature="sig"),
            Reasoning(redacted=REDACTED),
        ],
    )
    content = upstream(request(user(text("q")), message))["messages"][1]["content"]
    assert content == [
        {"type": "thinking", "thinking": "signed", "signature": "sig"},
        {"type": "redacted_thinking", "data": base64.b64encode(REDACTED).decode()},
        {"type": "text", "text": "answer"},
    ]


@pytest.mark.parametrize(
    ("part", "source"),
    [
        (ImagePart(media_type="image/jpg", data=b"x"), {"media_type": "image/jpeg"}),
        (ImagePart(data=PNG), {"media_type": "image/png"}),
        (ImagePart(data=b"GIF89a..."), {"media_type": "image/gif"}),
        (ImagePart(data=b"RIFF....WEBPVP8 "), {"media_type": "image/webp"}),
        (ImagePart(url="https://x.test/a.jpg"), {"type": "url", "url": "https://x.test/a.jpg"}),
    ],
)
def test_images_become_base64_or_url_sources(part: ImagePart, source: dict[str, str]) -> None:
    block = upstream(request(user(part)))["messages"][0]["content"][0]
    assert block["source"].items() >= source.items()


def test_images_of_other_types_are_refused() -> None:
    error = refused_upstream(request(user(ImagePart(media_type="image/tiff", data=b"II*\0"))))
    assert error.param == "messages[0].content[0]"


TOOLS = [Tool(name="f", parameters={"type": "object"}), Tool(name="g")]


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        (None, None, None),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (ToolChoice(mode="auto"), None, {"type": "auto"}),
        (ToolChoice(mode="required"), False, {"type": "any", "disable_parallel_tool_use": True}),
        (ToolChoice(mode="tool", name="g"), None, {"type": "tool", "name": "g"}),
        (ToolChoice(mode="none"), False, {"type": "none"}),
    ],
)
def test_tool_choice_table(
    choice: ToolChoice | None, parallel: bool | None, expected: dict[str, Any] | None
) -> None:
    body = upstream(request(tools=TOOLS, tool_choice=choice, parallel_tool_calls=parallel))
    assert body.get("tool_choice") == expected
    assert body["tools"][1] == {"name": "g", "input_schema": {"type": "object", "properties": {}}}


def test_tool_choice_needs_the_tool_it_names() -> None:
    assert refused_upstream(request(tools=TOOLS, tool_choice=ToolChoice(mode="tool", name="h")))
    assert refused_upstream(request(tool_choice=ToolChoice(mode="required"))).param == "tool_choice"
    assert "tool_choice" not in upstream(request(tool_choice=ToolChoice(mode="none")))


def test_tools_keep_strict_and_cache_control() -> None:
    tool = Tool(name="f", description="", strict=True, cache_control=CacheControl(type="ephemeral"))
    assert upstream(request(tools=[tool]))["tools"] == [
        {
            "name": "f",
            "input_schema": {"type": "object", "properties": {}},
            "strict": True,
            "cache_control": {"type": "ephemeral"},
        }
    ]


def test_response_formats() -> None:
    schema = {"type": "object"}
    body = upstream(request(response_format=ResponseFormat(type="json_schema", schema=schema)))
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert "output_config" not in upstream(
        request(response_format=ResponseFormat(type="json_object"))
    )
    error = refused_upstream(request(response_format=ResponseFormat(type="json_schema")))
    assert error.param == "response_format.json_schema.schema"


def test_extensions_carry_anthropic_only_fields_back() -> None:
    extensions = {
        "top_k": 5,
        "cache_control": {"type": "ephemeral"},
        "thinking": {"type": "adaptive", "display": "omitted"},
        "effort": "xhigh",
    }
    body = upstream(request(reasoning=ReasoningConfig(effort="high"), extensions=extensions))
    assert body["top_k"] == 5
    assert body["cache_control"] == {"type": "ephemeral"}
    assert body["thinking"] == {"type": "adaptive", "display": "omitted"}
    assert body["output_config"] == {"effort": "xhigh"}
    assert body["max_tokens"] == 4096
    assert refused_upstream(request(extensions={"top_k": "many"})).param == "top_k"


def test_user_becomes_metadata_and_seed_is_dropped() -> None:
    body = upstream(request(user="u-1", seed=3, stop=["END"]))
    assert body["metadata"] == {"user_id": "u-1"}
    assert body["stop_sequences"] == ["END"]
    assert "seed" not in body


# --- parse_messages_request -----------------------------------------------------------


def test_a_minimal_request() -> None:
    parsed = parse_messages_request(inbound())
    assert parsed == ChatRequest(
        model="claude-x", messages=[user(text("hi"))], max_tokens=100, include_usage=False
    )
    streaming = parse_messages_request(inbound(stream=True))
    assert streaming.stream and streaming.include_usage  # Anthropic streams report usage


@pytest.mark.parametrize(
    ("raw", "message", "param"),
    [
        (b'{"model": "m", "messages": []}', "max_tokens: Field required", "max_tokens"),
        (inbound(model=""), "model: Field required", "model"),
        (inbound(max_tokens=0), "max_tokens: Input should be at least 1", "max_tokens"),
        (inbound(max_tokens="9"), "max_tokens: Expected `int`, got `str`", "max_tokens"),
        (inbound(logprobs=True), "logprobs: Extra inputs are not permitted", "logprobs"),
        (
            inbound(
                messages=[{"role": "user", "content": [{"type": "text", "text": "a", "x": 1}]}]
            ),
            "messages.0.content.0.x: Extra inputs are not permitted",
            "messages.0.content.0.x",
        ),
        (
            inbound(messages=[{"role": "bot", "content": "a"}]),
            "messages.0.role: Invalid enum value 'bot'",
            "messages.0.role",
        ),
        (
            inbound(messages=[{"role": "user", "content": [{"type": "audio"}]}]),
            "messages.0.content.0.type: Invalid value 'audio'",
            "messages.0.content.0.type",
        ),
        (b"[1]", "Expected `object`, got `array`", None),
        (b"{", "The request body is not valid JSON.", None),
    ],
)
def test_refusals_name_the_field_as_anthropic_does(
    raw: bytes, message: str, param: str | None
) -> None:
    error = refused_inbound(raw)
    assert (error.message, error.param) == (message, param)


@pytest.mark.parametrize(
    ("block", "param"),
    [
        (
            {"type": "document", "source": {"type": "file", "file_id": "file_1"}},
            "messages.0.content.0.source",
        ),
        (
            {"type": "document", "source": {"type": "text", "data": "x"}},
            "messages.0.content.0.source.media_type",
        ),
        (
            {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
            "messages.0.content.0.source",
        ),
        (
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "*"}},
            "messages.0.content.0.source.data",
        ),
        ({"type": "thinking", "thinking": "t", "signature": "s"}, "messages.0.content.0"),
        ({"type": "tool_use", "id": "t", "name": "f", "input": {}}, "messages.0.content.0"),
    ],
)
def test_blocks_the_canonical_chat_cannot_carry_in_a_user_turn(
    block: dict[str, Any], param: str
) -> None:
    error = refused_inbound(inbound(messages=[{"role": "user", "content": [block]}]))
    assert error.param == param


@pytest.mark.parametrize(
    ("block", "param"),
    [
        ({"type": "tool_result", "tool_use_id": "t"}, "messages.0.content.0"),
        ({"type": "redacted_thinking", "data": "not base64!"}, "messages.0.content.0.data"),
        ({"type": "redacted_thinking", "data": "QUJD="}, "messages.0.content.0.data"),
        ({"type": "tool_use", "id": "t", "name": "f", "input": [1]}, "messages.0.content.0.input"),
    ],
)
def test_blocks_refused_in_an_assistant_turn(block: dict[str, Any], param: str) -> None:
    error = refused_inbound(inbound(messages=[{"role": "assistant", "content": [block]}]))
    assert error.param == param


def test_server_tools_are_refused_and_custom_tools_read() -> None:
    server = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    error = refused_inbound(inbound(tools=[server]))
    assert error.param == "tools.0.type"
    assert "not supported" in error.message
    assert refused_inbound(inbound(tools=[{"name": "f"}])).param == "tools.0.input_schema"
    custom = {"type": "custom", "name": "f", "input_schema": {"type": "object"}, "strict": True}
    parsed = parse_messages_request(inbound(tools=[custom]))
    assert parsed.tools == [Tool(name="f", parameters={"type": "object"}, strict=True)]


def test_a_user_turn_splits_into_tool_results_first_then_the_rest() -> None:
    content = [
        {"type": "text", "text": "and also", "cache_control": {"type": "ephemeral"}},
        {"type": "tool_result", "tool_use_id": "t1", "content": "42", "is_error": False},
        {
            "type": "tool_result",
            "tool_use_id": "t2",
            "is_error": True,
            "content": [
                {"type": "text", "text": "boom"},
                {"type": "image", "source": {"type": "url", "url": "https://x.test/i.png"}},
            ],
        },
    ]
    parsed = parse_messages_request(inbound(messages=[{"role": "user", "content": content}]))
    assert parsed.messages == [
        Message(role="tool", tool_call_id="t1", content=[text("42")]),
        Message(
            role="tool",
            tool_call_id="t2",
            is_error=True,
            content=[text("boom"), ImagePart(url="https://x.test/i.png")],
        ),
        user(text("and also", CacheControl(type="ephemeral"))),
    ]


def test_an_assistant_turn_keeps_thinking_text_and_tool_uses() -> None:
    data = base64.b64encode(REDACTED).decode()
    content = [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "redacted_thinking", "data": data},
        {"type": "text", "text": "calling", "citations": []},
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"b": 2, "a": 1}},
    ]
    parsed = parse_messages_request(inbound(messages=[{"role": "assistant", "content": content}]))
    assert parsed.messages == [
        Message(
            role="assistant",
            content=[text("calling")],
            tool_calls=[ToolCall(id="toolu_1", name="f", arguments='{"b":2,"a":1}')],
            reasoning=[Reasoning(text="hmm", signature="sig"), Reasoning(redacted=REDACTED)],
        )
    ]


def test_system_prompts_as_string_blocks_and_message_role() -> None:
    blocks = [{"type": "text", "text": "A", "cache_control": {"type": "ephemeral", "ttl": "5m"}}]
    parsed = parse_messages_request(
        inbound(system=blocks, messages=[{"role": "system", "content": "B"}])
    )
    assert parsed.messages == [
        Message(role="system", content=[text("A", CacheControl(type="ephemeral", ttl="5m"))]),
        Message(role="system", content=[text("B")]),
    ]
    assert parse_messages_request(inbound(system="S")).messages[0] == Message(
        role="system", content=[text("S")]
    )
    image = {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}
    refused = refused_inbound(inbound(messages=[{"role": "system", "content": [image]}]))
    assert refused.param == "messages.0.content.0"


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, ToolChoice(mode="auto"), None),
        ({"type": "any", "disable_parallel_tool_use": True}, ToolChoice(mode="required"), False),
        ({"type": "tool", "name": "f"}, ToolChoice(mode="tool", name="f"), None),
        ({"type": "none"}, ToolChoice(mode="none"), None),
    ],
)
def test_tool_choice_in(
    choice: dict[str, Any], expected: ToolChoice, parallel: bool | None
) -> None:
    parsed = parse_messages_request(inbound(tool_choice=choice))
    assert (parsed.tool_choice, parsed.parallel_tool_calls) == (expected, parallel)


@pytest.mark.parametrize(
    ("fields", "reasoning", "extensions"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, {"budget_tokens": 2048}, {}),
        (
            {"thinking": {"type": "enabled", "budget_tokens": 2048, "display": "omitted"}},
            {"budget_tokens": 2048},
            {"thinking": {"type": "enabled", "budget_tokens": 2048, "display": "omitted"}},
        ),
        (
            {"thinking": {"type": "adaptive"}},
            {"effort": "medium"},
            {"thinking": {"type": "adaptive"}},
        ),
        (
            {"thinking": {"type": "adaptive"}, "output_config": {"effort": "xhigh"}},
            {"effort": "high"},
            {"thinking": {"type": "adaptive"}, "effort": "xhigh"},
        ),
        ({"thinking": {"type": "disabled"}}, None, {}),
        ({"output_config": {"effort": "low"}}, None, {"effort": "low"}),
        (
            {"top_k": 40, "cache_control": {"type": "ephemeral"}},
            None,
            {"top_k": 40, "cache_control": {"type": "ephemeral"}},
        ),
    ],
)
def test_thinking_effort_and_extensions(
    fields: dict[str, Any], reasoning: dict[str, Any] | None, extensions: dict[str, Any]
) -> None:
    parsed = parse_messages_request(inbound(**fields))
    assert msgspec.to_builtins(parsed.reasoning) == reasoning
    assert parsed.extensions == extensions


def test_the_remaining_fields() -> None:
    schema = {"type": "object", "properties": {}}
    parsed = parse_messages_request(
        inbound(
            output_config={"format": {"type": "json_schema", "schema": schema}},
            metadata={"user_id": "u-7"},
            stop_sequences=["END"],
            temperature=0.5,
            top_p=0.9,
            service_tier="auto",
        )
    )
    assert parsed.response_format == ResponseFormat(type="json_schema", schema=schema)
    assert (parsed.user, parsed.stop, parsed.temperature, parsed.top_p) == (
        "u-7",
        ["END"],
        0.5,
        0.9,
    )
    assert refused_inbound(inbound(metadata={"user_id": "u", "x": 1})).param == "metadata.x"


def test_an_anthropic_request_survives_the_round_trip_through_canonical() -> None:
    """Anthropic in, canonical, Anthropic out: the supported subset comes back as sent."""
    sent = {
        "model": "claude-x",
        "max_tokens": 20000,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Look it up.", "signature": "c2ln"},
                    {"type": "redacted_thinking", "data": base64.b64encode(REDACTED).decode()},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"city": "Paris"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": "rain",
                        "is_error": True,
                        "cache_control": {"type": "ephemeral"},
                    },
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                 "data": base64.b64encode(PNG).decode()}},
                ],
            },
        ],
        "system": [
            {"type": "text", "text": "Be brief."},
            {"type": "text", "text": "Use tools.",
             "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        ],
        "metadata": {"user_id": "u-1"},
        "stop_sequences": ["END"],
        "stream": True,
        "temperature": 1.0,
        "top_k": 10,
        "tools": [{"name": "w", "input_schema": {"type": "object"}, "description": "Weather."}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "thinking": {"type": "enabled", "budget_tokens": 4096},
        "output_config": {"effort": "high"},
        "cache_control": {"type": "ephemeral"},
    }  # fmt: skip
    canonical = parse_messages_request(json.dumps(sent).encode())
    assert json.loads(to_anthropic(canonical, model="claude-x", dialect="anthropic")) == sent


# --- from_anthropic -------------------------------------------------------------------


def anthropic_message(content: list[dict[str, Any]], stop: str = "end_turn", **usage: Any) -> bytes:
    body = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": content, "stop_reason": stop, "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
    }  # fmt: skip
    return json.dumps(body).encode()


def read(body: bytes) -> ChatResponse:
    return from_anthropic(body, model="claude-x", response_id="chatcmpl-1", created=7)


def test_a_message_becomes_the_canonical_response() -> None:
    data = base64.b64encode(REDACTED).decode()
    response = read(
        anthropic_message(
            [
                {"type": "thinking", "thinking": "t", "signature": "s"},
                {"type": "redacted_thinking", "data": data},
                {"type": "text", "text": "Hi", "citations": None},
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1]}},
                {"type": "tool_use", "id": "toolu_2", "name": "g"},
            ],
            stop="tool_use",
        )
    )
    assert response.choices == [
        Choice(
            index=0,
            message=Message(
                role="assistant",
                content=[text("Hi")],
                tool_calls=[
                    ToolCall(id="toolu_1", name="f", arguments='{"a":[1]}'),
                    ToolCall(id="toolu_2", name="g", arguments="{}"),
                ],
                reasoning=[Reasoning(text="t", signature="s"), Reasoning(redacted=REDACTED)],
            ),
            finish_reason="tool_calls",
            raw_finish_reason="tool_use",
        )
    ]
    assert (response.id, response.model, response.created) == ("chatcmpl-1", "claude-x", 7)


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("a_reason_from_the_future", "stop"),
    ],
)
def test_stop_reasons_map_per_protocols_section_8(stop: str, finish: FinishReason) -> None:
    choice = read(anthropic_message([], stop=stop)).choices[0]
    assert (choice.finish_reason, choice.raw_finish_reason) == (finish, stop)


def test_usage_counts_cache_reads_and_writes_into_the_prompt() -> None:
    usage = read(
        anthropic_message(
            [],
            cache_creation_input_tokens=100,
            cache_read_input_tokens=1000,
            output_tokens_details={"thinking_tokens": 3},
        )
    ).usage
    assert usage == Usage(
        prompt_tokens=1110,
        completion_tokens=5,
        total_tokens=1115,
        prompt_tokens_details=PromptDetails(cached_tokens=1000, cache_write_tokens=100),
        completion_tokens_details=CompletionDetails(reasoning_tokens=3),
    )


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        b'{"type": "error", "error": {"type": "api_error", "message": "x"}}',
        anthropic_message([{"type": "tool_use", "name": "f", "input": {}}]),
        anthropic_message([{"type": "redacted_thinking", "data": "%%%"}]),
    ],
)
def test_malformed_messages_are_protocol_errors(body: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        read(body)


# --- response_to_anthropic ------------------------------------------------------------


def canonical_response(
    message: Message,
    finish: FinishReason | None = "stop",
    raw: str | None = None,
    usage: Usage | None = None,
) -> ChatResponse:
    choice = Choice(index=0, message=message, finish_reason=finish, raw_finish_reason=raw)
    return ChatResponse(id="chatcmpl-9", model="gpt-x", created=1, choices=[choice], usage=usage)


def written(response: ChatResponse) -> dict[str, Any]:
    anthropic_types = pytest.importorskip("anthropic.types")
    body = response_to_anthropic(response)
    anthropic_types.Message.model_validate_json(body)
    result: dict[str, Any] = json.loads(body)
    return result


def test_a_message_is_written_thinking_first_then_text_then_tool_uses() -> None:
    message = Message(
        role="assistant",
        content=[text("a"), text(""), text("b")],
        tool_calls=[ToolCall(id="call_1", name="f", arguments='{"x": 1}')],
        reasoning=[Reasoning(text="why"), Reasoning(redacted=REDACTED)],
    )
    body = written(canonical_response(message, "tool_calls"))
    assert body == {
        "id": "msg_chatcmpl-9",
        "type": "message",
        "role": "assistant",
        "model": "gpt-x",
        "content": [
            {"type": "thinking", "thinking": "why", "signature": ""},
            {"type": "redacted_thinking", "data": base64.b64encode(REDACTED).decode()},
            {"type": "text", "text": "a"},
            {"type": "text", "text": "b"},
            {"type": "tool_use", "id": "call_1", "name": "f", "input": {"x": 1}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }


@pytest.mark.parametrize(
    ("finish", "raw", "calls", "stop"),
    [
        ("stop", None, False, "end_turn"),
        (None, None, False, "end_turn"),
        ("length", "length", False, "max_tokens"),
        ("tool_calls", None, True, "tool_use"),
        ("content_filter", None, False, "refusal"),
        ("stop", "stop_sequence", False, "stop_sequence"),
        ("stop", "pause_turn", False, "pause_turn"),
        ("length", "model_context_window_exceeded", False, "model_context_window_exceeded"),
        ("length", "end_turn", False, "max_tokens"),
        # OpenAI says "stop" after a forced named tool call; Anthropic clients loop on tool_use.
        ("stop", "stop", True, "tool_use"),
    ],
)
def test_stop_reasons_out(
    finish: FinishReason | None, raw: str | None, calls: bool, stop: str
) -> None:
    tool_calls = [ToolCall(id="c", name="f", arguments="{}")] if calls else []
    message = Message(role="assistant", tool_calls=tool_calls)
    assert written(canonical_response(message, finish, raw))["stop_reason"] == stop


def test_usage_out_separates_cache_reads_and_writes_from_input() -> None:
    usage = Usage(
        prompt_tokens=1110,
        completion_tokens=5,
        prompt_tokens_details=PromptDetails(cached_tokens=1000, cache_write_tokens=100),
    )
    body = written(canonical_response(Message(role="assistant"), usage=usage))
    assert body["usage"] == {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 1000,
    }


def test_bad_tool_arguments_and_missing_choices_are_protocol_errors() -> None:
    call = ToolCall(id="c", name="f", arguments='{"x": ')
    with pytest.raises(UpstreamProtocolError):
        response_to_anthropic(canonical_response(Message(role="assistant", tool_calls=[call])))
    with pytest.raises(UpstreamProtocolError):
        response_to_anthropic(ChatResponse(id="x", model="m", created=0, choices=[]))


def test_an_anthropic_message_survives_from_and_back() -> None:
    sent = json.loads(
        anthropic_message(
            [
                {"type": "thinking", "thinking": "t", "signature": "s"},
                {"type": "text", "text": "Hi"},
                {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}},
            ],
            stop="tool_use",
            cache_creation_input_tokens=3,
            cache_read_input_tokens=4,
        )
    )
    response = from_anthropic(
        json.dumps(sent).encode(), model="claude-x", response_id="msg_1", created=0
    )
    assert json.loads(response_to_anthropic(response)) == sent


# --- AnthropicStreamTranslator --------------------------------------------------------


def feed_all(events: list[tuple[str, dict[str, Any]]]) -> list[StreamEvent]:
    translator = AnthropicStreamTranslator()
    out: list[StreamEvent] = []
    for event_type, data in events:
        out += translator.feed(event_type, json.dumps(data).encode())
    return out


def start_event(**usage: Any) -> tuple[str, dict[str, Any]]:
    message = {
        "id": "msg_1",
        "content": [],
        "usage": {"input_tokens": 7, "output_tokens": 1, **usage},
    }
    return "message_start", {"type": "message_start", "message": message}


def block(index: int, content_block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "content_block_start", {"index": index, "content_block": content_block}


def delta(index: int, **fields: Any) -> tuple[str, dict[str, Any]]:
    return "content_block_delta", {"index": index, "delta": fields}


def test_a_stream_of_every_block_kind() -> None:
    data = base64.b64encode(REDACTED).decode()
    events = feed_all(
        [
            start_event(cache_read_input_tokens=100),
            block(0, {"type": "thinking", "thinking": "", "signature": ""}),
            delta(0, type="thinking_delta", thinking="hmm"),
            delta(0, type="signature_delta", signature="sig"),
            block(1, {"type": "redacted_thinking", "data": data}),
            ("ping", {"type": "ping"}),
            block(2, {"type": "text", "text": ""}),
            delta(2, type="text_delta", text="Hi"),
            delta(2, type="citations_delta", citation={}),
            block(3, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search"}),
            delta(3, type="input_json_delta", partial_json='{"q": 1}'),
            block(4, {"type": "tool_use", "id": "toolu_a", "name": "f", "input": {}}),
            block(5, {"type": "tool_use", "id": "toolu_b", "name": "g", "input": {}}),
            delta(5, type="input_json_delta", partial_json='{"b":'),
            delta(4, type="input_json_delta", partial_json=""),
            delta(4, type="input_json_delta", partial_json="{}"),
            ("content_block_stop", {"index": 5}),
            (
                "message_delta",
                {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 30}},
            ),
            ("a_new_event", {}),
            ("message_stop", {"type": "message_stop"}),
        ]
    )
    assert events == [
        ReasoningDelta(text="hmm"),
        ReasoningDelta(signature="sig"),
        ReasoningDelta(redacted=REDACTED),
        TextDelta(text="Hi"),
        ToolCallStart(slot=0, id="toolu_a", name="f"),
        ToolCallStart(slot=1, id="toolu_b", name="g"),
        ToolCallDelta(slot=1, arguments='{"b":'),
        ToolCallDelta(slot=0, arguments="{}"),
        Finish(reason="tool_calls", raw_reason="tool_use"),
        UsageReport(
            usage=Usage(
                prompt_tokens=107,
                completion_tokens=30,
                total_tokens=137,
                prompt_tokens_details=PromptDetails(cached_tokens=100),
            )
        ),
    ]


def test_message_delta_usage_replaces_what_message_start_said() -> None:
    events = feed_all(
        [
            start_event(),
            ("message_delta", {"delta": {"stop_reason": None}, "usage": {"output_tokens": 2}}),
            ("message_delta", {"delta": {}, "usage": {"input_tokens": 9, "output_tokens": 4}}),
            ("message_stop", {}),
        ]
    )
    assert events == [
        UsageReport(usage=Usage(prompt_tokens=9, completion_tokens=4, total_tokens=13))
    ]


@pytest.mark.parametrize(
    ("error_type", "expected"),
    [
        ("overloaded_error", UpstreamUnavailable),
        ("rate_limit_error", UpstreamRateLimited),
        ("api_error", UpstreamUnavailable),
        ("invalid_request_error", UpstreamBadRequest),
        ("authentication_error", UpstreamUnavailable),
        ("something_new", UpstreamUnavailable),
    ],
)
def test_an_error_event_raises_its_mapped_error(
    error_type: str, expected: type[GatewayError]
) -> None:
    translator = AnthropicStreamTranslator()
    payload = {"type": "error", "error": {"type": error_type, "message": "Overloaded"}}
    with pytest.raises(expected) as caught:
        translator.feed("error", json.dumps(payload).encode())
    assert type(caught.value) is expected
    assert "Overloaded" in caught.value.message


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("content_block_delta", b"{"),
        ("content_block_delta", b'{"index": "0", "delta": {"type": "text_delta"}}'),
        ("content_block_start", b'{"index": 0}'),
        ("message_delta", b"[]"),
        ("content_block_start", b'{"index": 0, "content_block": {"type": "tool_use"}}'),
    ],
)
def test_malformed_events_are_protocol_errors(event_type: str, data: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        AnthropicStreamTranslator().feed(event_type, data)


def test_a_tool_block_started_twice_is_a_protocol_error() -> None:
    start = json.dumps({"index": 0, "content_block": {"type": "tool_use", "id": "t", "name": "f"}})
    translator = AnthropicStreamTranslator()
    translator.feed("content_block_start", start.encode())
    with pytest.raises(UpstreamProtocolError):
        translator.feed("content_block_start", start.encode())


# --- AnthropicEventWriter -------------------------------------------------------------


def frames_of(events: list[StreamEvent], finish: bool = True) -> list[tuple[str, dict[str, Any]]]:
    writer = AnthropicEventWriter("msg_1", "m")
    raw = b"".join(b for e in events for b in writer.write(e))
    raw += b"".join(writer.finish()) if finish else b""
    return [(e.event or "", json.loads(e.data)) for e in SSEDecoder().feed(raw)]


def kinds(frames: list[tuple[str, dict[str, Any]]]) -> list[str]:
    out = []
    for name, data in frames:
        if name == "content_block_start":
            out.append(f"start {data['index']} {data['content_block']['type']}")
        elif name == "content_block_delta":
            out.append(f"delta {data['index']} {data['delta']['type']}")
        elif name == "content_block_stop":
            out.append(f"stop {data['index']}")
        else:
            out.append(name)
    return out


def test_blocks_open_and_close_as_the_kind_of_content_changes() -> None:
    frames = frames_of(
        [
            ReasoningDelta(text="a"),
            ReasoningDelta(text="b"),
            ReasoningDelta(signature="s1"),
            ReasoningDelta(text="c"),  # after a signature: the next thinking block
            ReasoningDelta(signature="s2"),
            ReasoningDelta(redacted=REDACTED),
            TextDelta(text="x"),
            TextDelta(text=""),
            TextDelta(text="y"),
            ToolCallStart(slot=0, id="t0", name="f"),
            ToolCallDelta(slot=0, arguments='{"a"'),
            ToolCallDelta(slot=0, arguments=":1}"),
            ToolCallStart(slot=1, id="t1", name="g"),
            ToolCallDelta(slot=1, arguments=""),
            TextDelta(text="z", choice=1),  # Anthropic has one choice
            Finish(reason="tool_calls"),
            UsageReport(usage=Usage(prompt_tokens=5, completion_tokens=6)),
        ]
    )
    assert kinds(frames) == [
        "message_start",
        "start 0 thinking", "delta 0 thinking_delta", "delta 0 thinking_delta",
        "delta 0 signature_delta", "stop 0",
        "start 1 thinking", "delta 1 thinking_delta", "delta 1 signature_delta", "stop 1",
        "start 2 redacted_thinking", "stop 2",
        "start 3 text", "delta 3 text_delta", "delta 3 text_delta", "stop 3",
        "start 4 tool_use", "delta 4 input_json_delta", "delta 4 input_json_delta", "stop 4",
        "start 5 tool_use", "stop 5",
        "message_delta", "message_stop",
    ]  # fmt: skip
    assert frames[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"input_tokens": 5, "output_tokens": 6},
    }


def test_a_signature_alone_opens_a_thinking_block() -> None:
    frames = frames_of([ReasoningDelta(signature="s"), TextDelta(text="x")])
    assert kinds(frames)[:4] == [
        "message_start",
        "start 0 thinking",
        "delta 0 signature_delta",
        "stop 0",
    ]


def test_usage_may_come_before_or_after_the_finish() -> None:
    usage = UsageReport(usage=Usage(prompt_tokens=1, completion_tokens=2))
    after = frames_of([TextDelta(text="x"), Finish(reason="length"), usage], finish=False)
    before = frames_of([TextDelta(text="x"), usage, Finish(reason="length")], finish=False)
    assert after == before
    assert after[-2][1]["delta"]["stop_reason"] == "max_tokens"
    assert kinds(after)[-1] == "message_stop"


def test_finish_closes_a_stream_that_ended_without_finish_or_usage() -> None:
    frames = frames_of([ToolCallStart(slot=0, id="t", name="f")])
    assert kinds(frames)[-4:] == ["start 0 tool_use", "stop 0", "message_delta", "message_stop"]
    assert frames[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert frames[-2][1]["usage"] == {"input_tokens": 0, "output_tokens": 0}
    assert kinds(frames_of([])) == ["message_start", "message_delta", "message_stop"]


def test_message_start_reports_input_tokens_counted_beforehand() -> None:
    start = AnthropicEventWriter("msg_1", "m", input_tokens=42).start()[0]
    assert b'"usage":{"input_tokens":42,"output_tokens":0}' in start


def test_nothing_is_written_after_the_message_ends() -> None:
    writer = AnthropicEventWriter("msg_1", "m")
    writer.write(Finish(reason="stop"))
    assert writer.write(UsageReport(usage=Usage()))
    assert writer.write(TextDelta(text="late")) == []
    assert writer.finish() == []
    assert writer.start() == []


def test_tool_arguments_out_of_order_are_a_protocol_error() -> None:
    writer = AnthropicEventWriter("msg_1", "m")
    writer.write(ToolCallStart(slot=0, id="a", name="f"))
    writer.write(ToolCallStart(slot=1, id="b", name="g"))
    with pytest.raises(UpstreamProtocolError):
        writer.write(ToolCallDelta(slot=0, arguments="{}"))


def test_error_frames_end_the_stream() -> None:
    writer = AnthropicEventWriter("msg_1", "m")
    writer.write(TextDelta(text="x"))
    frame = writer.error_frame(UpstreamUnavailable("Anthropic overloaded_error: Overloaded"))
    assert frame == (
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
        b'"message":"Anthropic overloaded_error: Overloaded"}}\n\n'
    )
    assert writer.finish() == []
    assert writer.ping() == b'event: ping\ndata: {"type":"ping"}\n\n'


def _sdk_final(frames: bytes) -> Any:
    anthropic = pytest.importorskip("anthropic")
    httpx2 = pytest.importorskip("httpx2")

    def handler(request: Any) -> Any:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=frames)

    client = anthropic.Anthropic(
        api_key="k", base_url="http://gateway.test", max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )  # fmt: skip
    messages = [{"role": "user", "content": "x"}]
    with client.messages.stream(model="m", max_tokens=1, messages=messages) as stream:
        return stream.get_final_message()


def test_the_sdk_accumulates_the_frames_and_takes_the_final_usage() -> None:
    writer = AnthropicEventWriter("msg_1", "m")
    events: list[StreamEvent] = [
        ReasoningDelta(text="think"),
        ReasoningDelta(signature="sig"),
        TextDelta(text="Hello"),
        ToolCallStart(slot=0, id="toolu_1", name="f"),
        ToolCallDelta(slot=0, arguments='{"city": "Pa'),
        ToolCallDelta(slot=0, arguments='ris"}'),
        Finish(reason="tool_calls"),
        UsageReport(
            usage=Usage(
                prompt_tokens=120,
                completion_tokens=9,
                prompt_tokens_details=PromptDetails(cached_tokens=100),
            )
        ),
    ]
    message = _sdk_final(b"".join(f for e in events for f in writer.write(e)))
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]
    assert (message.content[0].thinking, message.content[0].signature) == ("think", "sig")
    assert message.content[2].input == {"city": "Paris"}
    assert message.stop_reason == "tool_use"
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens) == (20, 9, 100)


def test_an_error_frame_reaches_the_sdk_as_an_api_error() -> None:
    anthropic = pytest.importorskip("anthropic")
    writer = AnthropicEventWriter("msg_1", "m")
    frames = b"".join(writer.write(TextDelta(text="x")))
    frames += writer.error_frame(UpstreamRateLimited("slow down"))
    with pytest.raises(anthropic.APIStatusError) as caught:
        _sdk_final(frames)
    assert "rate_limit_error" in str(caught.value)


# --- errors ---------------------------------------------------------------------------


def anthropic_error(error_type: str, message: str, **more: Any) -> bytes:
    error = {"type": error_type, "message": message, **more}
    return json.dumps({"type": "error", "error": error, "request_id": "req_1"}).encode()


def no_headers(name: str) -> str | None:
    return None


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (429, anthropic_error("rate_limit_error", "slow"), UpstreamRateLimited),
        (529, anthropic_error("overloaded_error", "Overloaded"), UpstreamUnavailable),
        (500, anthropic_error("api_error", "oops"), UpstreamUnavailable),
        (504, anthropic_error("timeout_error", "slow"), UpstreamTimeout),
        (400, anthropic_error("invalid_request_error", "bad"), UpstreamBadRequest),
        (413, anthropic_error("request_too_large", "big"), UpstreamBadRequest),
        (401, anthropic_error("authentication_error", "invalid x-api-key"), UpstreamRejected),
        (403, anthropic_error("permission_error", "no"), UpstreamRejected),
        (404, anthropic_error("not_found_error", "model: x"), UpstreamRejected),
        (402, anthropic_error("billing_error", "pay"), UpstreamRejected),
        (
            400,
            anthropic_error(
                "invalid_request_error", "prompt is too long: 207791 tokens > 200000 maximum"
            ),
            ContextLengthExceeded,
        ),
        (
            400,
            anthropic_error(
                "invalid_request_error",
                "input length and `max_tokens` exceed context limit: 190000 + 20000 > 200000",
            ),
            ContextLengthExceeded,
        ),
        (
            429,
            anthropic_error(
                "rate_limit_error", "spent", details={"error_code": "enforced_spend_limit_reached"}
            ),
            UpstreamRejected,
        ),
        (413, b"<html>Request Entity Too Large</html>", UpstreamBadRequest),
        (529, b"", UpstreamUnavailable),
        (502, b"Bad Gateway", UpstreamUnavailable),
        (408, b"", UpstreamTimeout),
        (418, b"", UpstreamRejected),
    ],
)
def test_http_errors_map_through_the_table(
    status: int, body: bytes, expected: type[GatewayError]
) -> None:
    error = map_anthropic_error(status, no_headers, body, 0.0)
    assert type(error) is expected


def test_rate_limits_carry_retry_after() -> None:
    headers = {"retry-after": "Thu, 01 Jan 1970 00:00:30 GMT"}
    error = map_anthropic_error(429, headers.get, anthropic_error("rate_limit_error", "x"), 10.0)
    assert error.retry_after == 20.0
    error = map_anthropic_error(529, {"retry-after": "3"}.get, b"", 0.0)
    assert (type(error), error.retry_after) == (UpstreamUnavailable, 3.0)


def test_vertex_quota_errors_in_google_format_are_read_as_such() -> None:
    body = (
        b'[{"error": {"code": 429, "message": "Quota exceeded for aiplatform.googleapis.com/'
        b'online_prediction_requests_per_base_model", "status": "RESOURCE_EXHAUSTED"}}]'
    )
    error = map_anthropic_error(429, no_headers, body, 0.0)
    assert type(error) is UpstreamRateLimited
    assert error.message.startswith("Google RESOURCE_EXHAUSTED")


def test_messages_hide_keys_and_urls_and_rejections_hide_the_upstream_text() -> None:
    body = anthropic_error("invalid_request_error", "key sk-ant-api03-abc_DEF see https://x.test/y")
    error = map_anthropic_error(400, no_headers, body, 0.0)
    assert "sk-ant" not in error.message and "https://" not in error.message
    rejected = map_anthropic_error(
        401, no_headers, anthropic_error("authentication_error", "sk-ant-x"), 0.0
    )
    assert "sk-ant" not in rejected.message
    long = map_anthropic_error(
        400, no_headers, anthropic_error("invalid_request_error", "x" * 900), 0.0
    )
    assert len(long.message) < 600


def test_stream_error_payloads_map_without_a_status() -> None:
    assert type(map_stream_error(b"not json")) is UpstreamUnavailable
    payload = anthropic_error("invalid_request_error", "prompt is too long: 3 tokens > 2 maximum")
    assert type(map_stream_error(payload)) is ContextLengthExceeded


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (InvalidRequest("x"), "invalid_request_error"),
        (AuthenticationFailed(), "authentication_error"),
        (ModelNotFound("m"), "not_found_error"),
        (BodyTooLarge(10), "request_too_large"),
        (UpstreamRateLimited("x"), "rate_limit_error"),
        (UpstreamUnavailable("x"), "overloaded_error"),
        (ServiceUnavailable("x"), "overloaded_error"),
        (NoCapacity("x"), "overloaded_error"),
        (UpstreamTimeout("x"), "timeout_error"),
        (UpstreamRejected("x"), "api_error"),
        (UpstreamProtocolError("x"), "api_error"),
        (ContextLengthExceeded("x"), "invalid_request_error"),
        (InternalError(), "api_error"),
    ],
)
def test_gateway_errors_get_anthropic_error_types(error: GatewayError, expected: str) -> None:
    assert error_type(error) == expected
    body = json.loads(error_body(error))
    assert body == {"type": "error", "error": {"type": expected, "message": error.message}}


def test_error_bodies_parse_with_the_sdk() -> None:
    shared = pytest.importorskip("anthropic.types.shared")
    for error in (InvalidRequest("bad"), UpstreamUnavailable("busy"), UpstreamRateLimited("slow")):
        shared.ErrorResponse.model_validate_json(error_body(error))


# --- properties -----------------------------------------------------------------------

_texts = st.text(min_size=1, max_size=20)


@given(
    pieces=st.lists(st.tuples(st.sampled_from(["text", "thinking", "sig"]), _texts), max_size=12)
)
def test_writer_frames_always_accumulate_to_the_text_and_thinking_sent(
    pieces: list[tuple[str, str]],
) -> None:
    writer = AnthropicEventWriter("msg_1", "m")
    events: list[StreamEvent] = []
    for kind, value in pieces:
        if kind == "text":
            events.append(TextDelta(text=value))
        else:
            events.append(ReasoningDelta(**{"text" if kind == "thinking" else "signature": value}))
    raw = b"".join(f for e in events for f in writer.write(e)) + b"".join(writer.finish())
    parsed = [(e.event, json.loads(e.data)) for e in SSEDecoder().feed(raw)]
    texts = [d["delta"].get("text", "") for n, d in parsed if n == "content_block_delta"]
    thoughts = [d["delta"].get("thinking", "") for n, d in parsed if n == "content_block_delta"]
    assert "".join(texts) == "".join(e.text for e in events if isinstance(e, TextDelta))
    assert "".join(thoughts) == "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    starts = [d["index"] for n, d in parsed if n == "content_block_start"]
    stops = [d["index"] for n, d in parsed if n == "content_block_stop"]
    assert starts == stops == list(range(len(starts)))


# --- documents ------------------------------------------------------------------------


def test_document_blocks_become_document_parts() -> None:
    blocks = [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERg=="},
            "title": "Report",
            "context": "dropped",
            "citations": {"enabled": True},
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hé"}},
        {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
    ]
    parsed = parse_messages_request(inbound(messages=[{"role": "user", "content": blocks}]))
    assert parsed.messages[0].content == [
        DocumentPart(
            media_type="application/pdf",
            data=b"%PDF",
            name="Report",
            cache_control=CacheControl(type="ephemeral"),
        ),
        DocumentPart(media_type="text/plain", data="hé".encode()),
        DocumentPart(media_type="application/pdf", url="https://example.com/a.pdf"),
    ]


def test_documents_go_back_as_base64_text_or_url_sources() -> None:
    parts = [
        DocumentPart(media_type="application/pdf", data=b"%PDF", name="Report"),
        DocumentPart(media_type="text/plain", data="hé".encode()),
        DocumentPart(media_type="application/pdf", url="https://example.com/a.pdf"),
    ]
    sent = upstream(request(Message(role="user", content=[*parts, text("read")])))
    assert sent["messages"][0]["content"][:3] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERg=="},
            "title": "Report",
        },
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hé"}},
        {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
    ]


@pytest.mark.parametrize(
    "part",
    [
        DocumentPart(media_type="text/csv", data=b"a,b"),
        DocumentPart(media_type="text/plain", data=b"\xff"),
    ],
)
def test_documents_anthropic_cannot_take_are_refused(part: DocumentPart) -> None:
    error = refused_upstream(request(Message(role="user", content=[part])))
    assert error.param == "messages[0].content[0]"


def test_a_document_in_a_tool_result_goes_back_in_the_tool_result() -> None:
    call = ToolCall(id="t1", name="f", arguments="{}")
    doc = DocumentPart(media_type="application/pdf", data=b"%PDF")
    sent = upstream(
        request(
            Message(role="user", content=[text("go")]),
            Message(role="assistant", tool_calls=[call]),
            Message(role="tool", tool_call_id="t1", content=[doc]),
        )
    )
    result = sent["messages"][2]["content"][0]
    assert result["content"][0]["type"] == "document"
