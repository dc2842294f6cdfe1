"""Canonical chat ⇄ Bedrock Converse: request shape rules, responses, streams and errors."""

from __future__ import annotations

import base64
import itertools
import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skyroute.core.chat import (
    ChatRequest,
    DocumentPart,
    Finish,
    FinishReason,
    ImagePart,
    Message,
    Reasoning,
    ReasoningConfig,
    ReasoningDelta,
    ResponseFormat,
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
    ContextLengthExceeded,
    GatewayError,
    InvalidRequest,
    UpstreamBadRequest,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)
from skyroute.wire.bedrock import (
    ConverseStreamTranslator,
    from_converse,
    map_bedrock_error,
    map_stop_reason,
    model_family,
    to_converse,
)
from skyroute.wire.bedrock_media import document_name
from skyroute.wire.openai_chat import response_to_openai, to_canonical

CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8


def converse(request: ChatRequest, model_id: str = CLAUDE) -> dict[str, Any]:
    return json.loads(to_converse(request, model_id=model_id))


def chat(*messages: Message, **fields: Any) -> ChatRequest:
    return ChatRequest(model="m", messages=list(messages), **fields)


def text(role: Any, value: str) -> Message:
    return Message(role=role, content=[TextPart(text=value)])


def refused(request: ChatRequest, model_id: str = CLAUDE) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        to_converse(request, model_id=model_id)
    return caught.value


# --- conversation shape ---------------------------------------------------------------

_ids = st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True)
_texts = st.sampled_from(["hello", "", "   ", "more"])


@st.composite
def _messages(draw: st.DrawFn) -> Message:
    role = draw(st.sampled_from(["system", "developer", "user", "assistant", "tool"]))
    content = [TextPart(text=t) for t in draw(st.lists(_texts, max_size=2))]
    if role == "tool":
        return Message(role="tool", content=content, tool_call_id=draw(_ids))
    if role == "assistant":
        calls = draw(
            st.lists(
                st.builds(ToolCall, id=_ids, name=st.just("f"), arguments=st.just("{}")), max_size=2
            )
        )
        return Message(role="assistant", content=content, tool_calls=calls)
    return Message(role=role, content=content)


@given(st.lists(_messages(), min_size=1, max_size=12))
def test_any_role_sequence_becomes_turns_that_alternate_starting_with_user(
    messages: list[Message],
) -> None:
    try:
        body = converse(chat(*messages))
    except InvalidRequest as exc:
        # Only a conversation with no user or assistant content at all is refused.
        assert exc.param == "messages"
        assert all(
            not converse_content(m) for m in messages if m.role not in ("system", "developer")
        )
        return
    roles = [turn["role"] for turn in body["messages"]]
    assert roles[0] == "user"
    assert all(a != b for a, b in itertools.pairwise(roles))
    for turn in body["messages"]:
        assert turn["content"], "an empty turn"
        assert all(block.get("text", "x").strip() for block in turn["content"]), "a blank text"
        kinds = ["toolResult" in block for block in turn["content"]]
        assert kinds == sorted(kinds, reverse=True), "tool results must lead a user turn"
    assert all(block["text"].strip() for block in body.get("system", []))


def converse_content(message: Message) -> bool:
    texts = any(isinstance(p, TextPart) and p.text.strip() for p in message.content)
    return texts or bool(message.tool_calls) or message.role == "tool"


def test_user_text_after_tool_results_follows_them_in_one_user_turn() -> None:
    call = ToolCall(id="c1", name="f", arguments="{}")
    body = converse(
        chat(
            text("user", "q"),
            Message(role="assistant", tool_calls=[call]),
            text("user", "by the way"),
            Message(role="tool", content=[TextPart(text="42")], tool_call_id="c1"),
        )
    )
    assert body["messages"][2] == {
        "role": "user",
        "content": [
            {"toolResult": {"toolUseId": "c1", "content": [{"text": "42"}]}},
            {"text": "by the way"},
        ],
    }


@given(st.lists(_ids, min_size=1, max_size=4, unique=True))
def test_tool_call_ids_survive_every_hop(ids: list[str]) -> None:
    calls = [
        {"id": i, "type": "function", "function": {"name": "f", "arguments": "{}"}} for i in ids
    ]
    request = to_canonical(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "tool_calls": calls},
                *({"role": "tool", "tool_call_id": i, "content": "ok"} for i in ids),
            ],
        }
    )
    turns = converse(request)["messages"]
    assert [b["toolUse"]["toolUseId"] for b in turns[1]["content"]] == ids
    assert [b["toolResult"]["toolUseId"] for b in turns[2]["content"]] == ids

    upstream = {
        "output": {"message": {"role": "assistant", "content": [
            {"toolUse": {"toolUseId": i, "name": "f", "input": {"n": n}}} for n, i in enumerate(ids)
        ]}},
        "stopReason": "tool_use",
    }  # fmt: skip
    response = from_converse(json.dumps(upstream).encode(), model="m", response_id="r", created=0)
    client = json.loads(response_to_openai(response))
    assert [c["id"] for c in client["choices"][0]["message"]["tool_calls"]] == ids

    translator = ConverseStreamTranslator()
    starts = []
    for n, i in enumerate(ids):
        start = {"contentBlockIndex": n + 1, "start": {"toolUse": {"toolUseId": i, "name": "f"}}}
        starts += translator.feed("contentBlockStart", json.dumps(start).encode())
    assert [(e.slot, e.id) for e in starts if isinstance(e, ToolCallStart)] == list(enumerate(ids))


# --- request fields -------------------------------------------------------------------


def test_sampling_options_go_to_inference_config_and_seed_is_dropped() -> None:
    body = converse(
        chat(text("user", "q"), temperature=0.3, top_p=0.8, max_tokens=99, stop=["x"], seed=5)
    )
    assert body["inferenceConfig"] == {
        "maxTokens": 99,
        "temperature": 0.3,
        "topP": 0.8,
        "stopSequences": ["x"],
    }
    assert set(body) == {"messages", "inferenceConfig"}


def test_tool_choices_map_to_converse_tool_choice() -> None:
    tools = [Tool(name="f", description="", parameters={})]
    for choice, expected in [
        (ToolChoice(mode="auto"), {"auto": {}}),
        (ToolChoice(mode="required"), {"any": {}}),
        (ToolChoice(mode="tool", name="f"), {"tool": {"name": "f"}}),
    ]:
        config = converse(chat(text("user", "q"), tools=tools, tool_choice=choice))["toolConfig"]
        assert config["toolChoice"] == expected
        assert config["tools"] == [
            {
                "toolSpec": {
                    "name": "f",
                    "inputSchema": {"json": {"type": "object", "properties": {}}},
                }
            }
        ]
    none = chat(text("user", "q"), tools=tools, tool_choice=ToolChoice(mode="none"))
    assert "toolConfig" not in converse(none)


def test_images_need_bytes_in_a_format_bedrock_knows() -> None:
    sniffed = chat(Message(role="user", content=[ImagePart(data=PNG)]))
    assert converse(sniffed)["messages"][0]["content"][0]["image"]["format"] == "png"
    bmp = chat(Message(role="user", content=[ImagePart(media_type="image/bmp", data=b"BM")]))
    assert refused(bmp).param == "messages[0].content[0].image_url"
    remote = chat(Message(role="user", content=[TextPart(text="a"), ImagePart(url="https://x")]))
    error = refused(remote)
    assert error.param == "messages[0].content[1].image_url"
    assert "not fetched" in error.message


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (chat(text("user", "q"), n=2), "n"),
        (chat(text("user", "q"), temperature=1.5), "temperature"),
        (chat(text("system", "s")), "messages"),
        (chat(text("user", "q"), tool_choice=ToolChoice(mode="required")), "tool_choice"),
        (
            chat(
                text("user", "q"),
                tools=[Tool(name="f")],
                tool_choice=ToolChoice(mode="tool", name="g"),
            ),
            "tool_choice",
        ),
        (
            chat(text("user", "q"), response_format=ResponseFormat(type="json_schema", name="x")),
            "response_format.json_schema.schema",
        ),
        (
            chat(Message(role="system", content=[ImagePart(data=PNG)]), text("user", "q")),
            "messages[0].content[0]",
        ),
        (
            chat(
                text("user", "q"),
                Message(role="assistant", tool_calls=[ToolCall(id="c", name="f", arguments="{")]),
            ),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            chat(
                text("user", "q"),
                Message(role="assistant", tool_calls=[ToolCall(id="c", name="f", arguments="[1]")]),
            ),
            "messages[1].tool_calls[0].function.arguments",
        ),
    ],
)
def test_requests_bedrock_cannot_take_are_refused_naming_the_parameter(
    request_: ChatRequest, param: str
) -> None:
    assert refused(request_).param == param


def test_empty_tool_arguments_are_an_empty_object() -> None:
    call = ToolCall(id="c", name="f", arguments="")
    body = converse(chat(text("user", "q"), Message(role="assistant", tool_calls=[call])))
    assert body["messages"][1]["content"][0]["toolUse"]["input"] == {}


def test_unsigned_reasoning_is_not_sent_back_but_signed_and_redacted_are_first() -> None:
    assistant = Message(
        role="assistant",
        content=[TextPart(text="a")],
        reasoning=[
            Reasoning(text="free"),
            Reasoning(text="t", signature="s"),
            Reasoning(redacted=b"\x01"),
        ],
    )
    blocks = converse(chat(text("user", "q"), assistant))["messages"][1]["content"]
    assert blocks == [
        {"reasoningContent": {"reasoningText": {"text": "t", "signature": "s"}}},
        {"reasoningContent": {"redactedContent": "AQ=="}},
        {"text": "a"},
    ]


@pytest.mark.parametrize(
    ("model_id", "family"),
    [
        (CLAUDE, "anthropic"),
        ("anthropic.claude-3-haiku-20240307-v1:0", "anthropic"),
        ("global.anthropic.claude-opus-4-5-20251101-v1:0", "anthropic"),
        ("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2", "anthropic"),
        ("openai.gpt-oss-120b-1:0", "openai"),
        ("us.amazon.nova-pro-v1:0", "other"),
        ("meta.llama3-70b-instruct-v1:0", "other"),
        ("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc", "other"),
    ],
)
def test_model_family_reads_ids_profiles_and_arns(model_id: str, family: str) -> None:
    assert model_family(model_id) == family


@pytest.mark.parametrize(
    ("reasoning", "max_tokens", "budget", "sent_max"),
    [
        (ReasoningConfig(effort="minimal"), None, 1024, 5120),
        (ReasoningConfig(effort="high"), None, 16384, 20480),
        (ReasoningConfig(effort="high"), 3000, 1500, 3000),
        (ReasoningConfig(effort="low"), 1025, 1024, 1025),
        (ReasoningConfig(budget_tokens=5000), 8000, 5000, 8000),
    ],
)
def test_claude_thinking_budget_fits_under_max_tokens(
    reasoning: ReasoningConfig, max_tokens: int | None, budget: int, sent_max: int
) -> None:
    body = converse(chat(text("user", "q"), reasoning=reasoning, max_tokens=max_tokens))
    thinking = body["additionalModelRequestFields"]["thinking"]
    assert thinking == {"type": "enabled", "budget_tokens": budget}
    assert body["inferenceConfig"]["maxTokens"] == sent_max


def test_claude_thinking_needs_room_above_the_minimum_budget() -> None:
    request = chat(text("user", "q"), reasoning=ReasoningConfig(effort="low"), max_tokens=1024)
    assert refused(request).param == "max_completion_tokens"


def test_reasoning_for_a_family_without_a_documented_switch_is_dropped() -> None:
    request = chat(text("user", "q"), reasoning=ReasoningConfig(effort="high"))
    assert "additionalModelRequestFields" not in converse(request, "us.amazon.nova-pro-v1:0")
    assert converse(request, "openai.gpt-oss-20b-1:0")["additionalModelRequestFields"] == {
        "reasoning_effort": "high"
    }


# --- responses ------------------------------------------------------------------------

STOP_REASONS: list[tuple[str, FinishReason]] = [
    ("end_turn", "stop"),
    ("stop_sequence", "stop"),
    ("max_tokens", "length"),
    ("model_context_window_exceeded", "length"),
    ("tool_use", "tool_calls"),
    ("guardrail_intervened", "content_filter"),
    ("content_filtered", "content_filter"),
    ("malformed_model_output", "stop"),
    ("malformed_tool_use", "stop"),
    ("a_reason_from_the_future", "stop"),
]


@pytest.mark.parametrize(("stop_reason", "finish"), STOP_REASONS)
def test_stop_reasons_map_per_protocols_table(stop_reason: str, finish: FinishReason) -> None:
    assert map_stop_reason(stop_reason) == finish
    body = {"output": {"message": {"role": "assistant", "content": []}}, "stopReason": stop_reason}
    choice = from_converse(
        json.dumps(body).encode(), model="m", response_id="r", created=0
    ).choices[0]
    assert (choice.finish_reason, choice.raw_finish_reason) == (finish, stop_reason)
    stream = ConverseStreamTranslator().feed(
        "messageStop", json.dumps({"stopReason": stop_reason}).encode()
    )
    assert stream == [Finish(reason=finish, raw_reason=stop_reason)]


def test_usage_counts_cache_reads_and_writes_as_prompt_tokens() -> None:
    body = {
        "output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}},
        "stopReason": "end_turn",
        "usage": {
            "inputTokens": 5,
            "outputTokens": 2,
            "totalTokens": 27,
            "cacheReadInputTokens": 10,
            "cacheWriteInputTokens": 10,
        },
    }
    usage = from_converse(json.dumps(body).encode(), model="m", response_id="r", created=0).usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (25, 2, 27)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 10
    assert usage.prompt_tokens_details.cache_write_tokens == 10


def test_server_tool_use_blocks_are_not_client_tool_calls() -> None:
    body = {
        "output": {"message": {"role": "assistant", "content": [
            {"toolUse": {"toolUseId": "s1", "name": "web", "input": {}, "type": "server_tool_use"}},
            {"text": "done"},
        ]}},
        "stopReason": "end_turn",
    }  # fmt: skip
    message = from_converse(json.dumps(body).encode(), model="m", response_id="r", created=0)
    assert message.choices[0].message.tool_calls == []


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"{}",
        b'{"output": {"message": {}}}',
        b'{"output": 1, "stopReason": "end_turn"}',
    ],
)
def test_malformed_converse_responses_are_protocol_errors(raw: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        from_converse(raw, model="m", response_id="r", created=0)


# --- streams --------------------------------------------------------------------------


def feed(translator: ConverseStreamTranslator, event: str, payload: dict[str, Any]) -> list[Any]:
    return translator.feed(event, json.dumps(payload).encode())


def test_stream_tool_blocks_get_slots_in_order_of_their_start() -> None:
    t = ConverseStreamTranslator()
    assert feed(t, "messageStart", {"role": "assistant"}) == []
    assert feed(t, "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "a"}}) == [
        TextDelta(text="a")
    ]
    start = {"contentBlockIndex": 3, "start": {"toolUse": {"toolUseId": "t3", "name": "f"}}}
    assert feed(t, "contentBlockStart", start) == [ToolCallStart(slot=0, id="t3", name="f")]
    delta = {"contentBlockIndex": 3, "delta": {"toolUse": {"input": "{}"}}}
    assert feed(t, "contentBlockDelta", delta) == [ToolCallDelta(slot=0, arguments="{}")]
    assert feed(t, "contentBlockStop", {"contentBlockIndex": 3}) == []
    usage = {
        "usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3},
        "metrics": {"latencyMs": 1},
    }
    (report,) = feed(t, "metadata", usage)
    assert isinstance(report, UsageReport) and report.usage.total_tokens == 3


def test_stream_reasoning_signature_and_redacted_pieces() -> None:
    t = ConverseStreamTranslator()
    piece = {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "r"}}}
    assert feed(t, "contentBlockDelta", piece) == [ReasoningDelta(text="r")]
    piece = {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "s"}}}
    assert feed(t, "contentBlockDelta", piece) == [ReasoningDelta(signature="s")]
    piece = {"contentBlockIndex": 0, "delta": {"reasoningContent": {"redactedContent": "AQ=="}}}
    assert feed(t, "contentBlockDelta", piece) == []


def test_stream_ignores_unknown_events_empty_pieces_and_server_tools() -> None:
    t = ConverseStreamTranslator()
    assert feed(t, "somethingNew", {"x": 1}) == []
    assert feed(t, "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": ""}}) == []
    assert feed(t, "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"citation": {}}}) == []
    start = {
        "contentBlockIndex": 1,
        "start": {"toolUse": {"toolUseId": "s", "name": "w", "type": "server_tool_use"}},
    }
    assert feed(t, "contentBlockStart", start) == []
    assert (
        feed(
            t, "contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{}"}}}
        )
        == []
    )
    assert feed(t, "metadata", {"metrics": {"latencyMs": 3}}) == []


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("contentBlockDelta", b'{"contentBlockIndex": 2, "delta": {"toolUse": {"input": "{"}}}'),
        ("contentBlockDelta", b"{not json"),
        ("contentBlockDelta", b'{"delta": {"text": "a"}}'),
        ("messageStop", b"{}"),
        ("metadata", b'{"usage": {"inputTokens": "many"}}'),
    ],
)
def test_stream_garbage_is_a_protocol_error(event: str, payload: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        ConverseStreamTranslator().feed(event, payload)


def test_a_tool_block_started_twice_is_a_protocol_error() -> None:
    t = ConverseStreamTranslator()
    start = {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "a", "name": "f"}}}
    feed(t, "contentBlockStart", start)
    with pytest.raises(UpstreamProtocolError):
        feed(t, "contentBlockStart", start)


@pytest.mark.parametrize(
    ("exception_type", "payload", "expected"),
    [
        ("throttlingException", {"message": "Too many requests"}, UpstreamRateLimited),
        ("serviceUnavailableException", {"message": "busy"}, UpstreamUnavailable),
        ("internalServerException", {}, UpstreamUnavailable),
        (
            "modelStreamErrorException",
            {"message": "x", "originalStatusCode": 500},
            UpstreamUnavailable,
        ),
        (
            "modelStreamErrorException",
            {"message": "x", "originalStatusCode": 429},
            UpstreamRateLimited,
        ),
        (
            "validationException",
            {"message": "Input is too long for requested model."},
            ContextLengthExceeded,
        ),
        ("validationException", {"message": "Malformed input request"}, UpstreamBadRequest),
        ("somethingElseException", {"message": "?"}, UpstreamUnavailable),
    ],
)
def test_in_stream_exceptions_map_to_the_error_tree(
    exception_type: str, payload: dict[str, Any], expected: type[GatewayError]
) -> None:
    error = ConverseStreamTranslator().exception(exception_type, json.dumps(payload).encode())
    assert type(error) is expected
    assert error.retry_after is None


# --- HTTP errors ----------------------------------------------------------------------

THROTTLED = "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"
TOO_LONG = "Input is too long for requested model."
CLAUDE_TOO_LONG = "The model returned the following errors: prompt is too long: 210000 tokens"
NOVA_TOO_LONG = "Too many input tokens. Max input tokens: 8192"
MAX_TOKENS = "The maximum tokens you requested exceeds the model limit of 8192"
DENIED = "User: arn:aws:iam::123456789012:user/x is not authorized"
BAD_TOKEN = "The security token included in the request is invalid."

ERRORS: list[tuple[int, str | None, dict[str, Any], type[GatewayError]]] = [
    (429, THROTTLED, {"message": "Too many tokens"}, UpstreamRateLimited),
    (400, "ValidationException", {"message": TOO_LONG}, ContextLengthExceeded),
    (400, "ValidationException", {"message": CLAUDE_TOO_LONG}, ContextLengthExceeded),
    (400, "ValidationException", {"message": NOVA_TOO_LONG}, ContextLengthExceeded),
    (400, "ValidationException", {"message": MAX_TOKENS}, UpstreamBadRequest),
    (400, "ServiceQuotaExceededException", {"message": "quota"}, UpstreamRateLimited),
    (403, "AccessDeniedException", {"message": DENIED}, UpstreamRejected),
    (403, "UnrecognizedClientException", {"message": BAD_TOKEN}, UpstreamRejected),
    (403, "InvalidSignatureException", {}, UpstreamRejected),
    (403, "ExpiredTokenException", {}, UpstreamRejected),
    (404, "ResourceNotFoundException", {"message": "Model not found"}, UpstreamRejected),
    (429, "ModelNotReadyException", {}, UpstreamUnavailable),
    (503, "ServiceUnavailableException", {}, UpstreamUnavailable),
    (500, "InternalServerException", {}, UpstreamUnavailable),
    (408, "ModelTimeoutException", {}, UpstreamUnavailable),
    (424, "ModelErrorException", {}, UpstreamUnavailable),
    (400, None, {"__type": "com.amazon.bedrock#ValidationException"}, UpstreamBadRequest),
    (429, None, {"code": "ThrottlingException"}, UpstreamRateLimited),
    (502, None, {}, UpstreamUnavailable),
    (429, None, {}, UpstreamRateLimited),
    (401, "SomethingNewException", {}, UpstreamRejected),
]


@pytest.mark.parametrize(("status", "error_type", "body", "expected"), ERRORS)
def test_http_errors_map_through_the_table(
    status: int, error_type: str | None, body: dict[str, Any], expected: type[GatewayError]
) -> None:
    error = map_bedrock_error(status, error_type, json.dumps(body).encode())
    assert type(error) is expected
    assert error.retry_after is None
    assert "http" not in error.message and "arn:" not in error.message


def test_validation_messages_are_kept_without_urls_arns_or_key_ids() -> None:
    body = {
        "message": "Bad input at https://bedrock.example/x for arn:aws:bedrock:us-east-1:1234:x "
        "signed by AKIAABCDEFGHIJKLMNOP"
    }
    error = map_bedrock_error(400, "ValidationException", json.dumps(body).encode())
    expected = "Bad input at [redacted] for [redacted] signed by [redacted]"
    assert error.message == f"Bedrock ValidationException: {expected}"


def test_rejections_never_echo_the_upstream_text() -> None:
    body = {"message": "User: arn:aws:iam::123456789012:user/ci is not authorized"}
    error = map_bedrock_error(403, "AccessDeniedException", json.dumps(body).encode())
    assert "123456789012" not in error.message and "not authorized" not in error.message


def test_an_unreadable_error_body_still_maps_by_type_and_status() -> None:
    assert type(map_bedrock_error(503, None, b"<html>")) is UpstreamUnavailable
    assert type(map_bedrock_error(400, "ValidationException", b"")) is UpstreamBadRequest


# --- documents ------------------------------------------------------------------------

PDF = b"%PDF-1.4\n%%EOF\n"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Q3 report", "Q3 report"),
        ("report.pdf", "report-pdf"),
        ("a_b/c:d", "a-b-c-d"),
        ("  two   spaces\tand\nlines  ", "two spaces and lines"),
        ("Notes (v2) [draft]", "Notes (v2) [draft]"),
        ("café", "caf-"),
        ("x" * 250, "x" * 200),
        ("...", "document-3"),
        ("", "document-3"),
        (None, "document-3"),
    ],
)
def test_document_names_keep_only_what_bedrock_allows(name: str | None, expected: str) -> None:
    assert document_name(name, 3) == expected


@given(st.text(max_size=300))
def test_any_document_name_becomes_one_bedrock_accepts(name: str) -> None:
    cleaned = document_name(name, 1)
    assert 0 < len(cleaned) <= 200
    assert re.fullmatch(r"[A-Za-z0-9 ()\[\]-]+", cleaned)
    assert "  " not in cleaned and cleaned == cleaned.strip()


def test_documents_become_document_blocks_with_distinct_names() -> None:
    doc = DocumentPart(media_type="application/pdf", data=PDF, name="a.pdf")
    body = converse(
        chat(
            Message(role="user", content=[TextPart(text="read"), doc, doc]),
            Message(role="user", content=[DocumentPart(media_type="text/markdown", data=b"# x")]),
        )
    )
    blocks = [b["document"] for b in body["messages"][0]["content"] if "document" in b]
    assert [(b["format"], b["name"]) for b in blocks] == [
        ("pdf", "a-pdf"),
        ("pdf", "a-pdf (2)"),
        ("md", "document-3"),
    ]
    assert blocks[0]["source"] == {"bytes": base64.b64encode(PDF).decode()}


def test_documents_in_tool_results_are_kept() -> None:
    call = ToolCall(id="t1", name="f", arguments="{}")
    body = converse(
        chat(
            text("user", "go"),
            Message(role="assistant", tool_calls=[call]),
            Message(
                role="tool",
                tool_call_id="t1",
                content=[DocumentPart(media_type="text/csv", data=b"a,b", name="data")],
            ),
        )
    )
    result = body["messages"][2]["content"][0]["toolResult"]["content"]
    assert result[0]["document"]["format"] == "csv"


@pytest.mark.parametrize(
    "part",
    [
        DocumentPart(media_type="application/pdf", url="https://example.com/a.pdf"),
        DocumentPart(media_type="application/zip", data=b"PK"),
        DocumentPart(media_type="application/pdf", data=b""),
    ],
)
def test_documents_bedrock_cannot_take_are_refused(part: DocumentPart) -> None:
    error = refused(chat(Message(role="user", content=[TextPart(text="x"), part])))
    assert error.param == "messages[0].content[1]"
