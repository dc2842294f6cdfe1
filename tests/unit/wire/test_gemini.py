"""Canonical chat ⇄ Gemini generateContent: requests, responses, streams, ids and errors."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyroute.core.chat import (
    ChatRequest,
    DocumentPart,
    Finish,
    Message,
    Reasoning,
    ReasoningConfig,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
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
from skyroute.wire.gemini import (
    GeminiStreamTranslator,
    ToolCallRef,
    from_gemini,
    map_finish_reason,
    map_google_error,
    read_tool_call_id,
    to_gemini,
    tool_call_id,
)
from skyroute.wire.openai_chat import response_to_openai, to_canonical

_ID_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")


def request(*messages: Message, **fields: Any) -> ChatRequest:
    return ChatRequest(model="gemini-3-pro-preview", messages=list(messages), **fields)


def user(text: str) -> Message:
    return Message(role="user", content=[TextPart(text=text)])


def sent(req: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(to_gemini(req))
    return body


def gemini_body(*parts: dict[str, Any], finish: str | None = "STOP", **extra: Any) -> bytes:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}}
    if finish is not None:
        candidate["finishReason"] = finish
    return json.dumps({"candidates": [candidate], **extra}).encode()


def answer(body: bytes, response_id: str = "chatcmpl-1") -> Any:
    return from_gemini(body, model="m", response_id=response_id, created=1)


# --- turns ----------------------------------------------------------------------------

_step = st.one_of(
    st.tuples(st.sampled_from(["user", "assistant", "system", "developer"]), st.text(max_size=5)),
    st.tuples(st.just("call"), st.sampled_from(["f", "g"])),
    st.just(("result", "")),
)


def _conversation(steps: list[tuple[str, str]]) -> list[Message]:
    messages: list[Message] = []
    pending: list[str] = []
    for kind, value in steps:
        if kind == "call":
            call_id = f"call-{len(messages)}"
            pending.append(call_id)
            call = ToolCall(id=call_id, name=value, arguments='{"x": 1}')
            messages.append(Message(role="assistant", tool_calls=[call]))
        elif kind == "result":
            if pending:
                messages.append(
                    Message(role="tool", tool_call_id=pending.pop(0), content=[TextPart(text="ok")])
                )
        else:
            content = [TextPart(text=value)] if value else []
            messages.append(Message(role=kind, content=content))  # type: ignore[arg-type]
    return messages


@given(st.lists(_step, max_size=25))
def test_merged_turns_alternate_and_keep_every_part_in_order(steps: list[tuple[str, str]]) -> None:
    messages = _conversation(steps)
    try:
        body = sent(request(*messages))
    except InvalidRequest as exc:
        assert exc.param == "messages"
        assert all(
            m.role in ("system", "developer") or not (m.content or m.tool_calls) for m in messages
        )
        return
    roles = [turn["role"] for turn in body["contents"]]
    assert all(a != b for a, b in itertools.pairwise(roles))
    assert all(turn["parts"] for turn in body["contents"])
    texts = [p["text"] for turn in body["contents"] for p in turn["parts"] if "text" in p]
    expected = [
        part.text
        for m in messages
        if m.role in ("user", "assistant")
        for part in m.content
        if isinstance(part, TextPart) and part.text
    ]
    assert texts == expected
    responses = [p for turn in body["contents"] for p in turn["parts"] if "functionResponse" in p]
    assert len(responses) == sum(m.role == "tool" for m in messages)


def test_tool_results_name_the_function_of_the_call_they_answer() -> None:
    calls = [
        ToolCall(id="a", name="get_weather", arguments="{}"),
        ToolCall(id="b", name="f", arguments=""),
    ]
    body = sent(
        request(
            user("hi"),
            Message(role="assistant", tool_calls=calls),
            Message(role="tool", tool_call_id="b", content=[TextPart(text="[1, 2]")]),
            Message(role="tool", tool_call_id="a", content=[TextPart(text='{"temp": 3}')]),
            user("thanks"),
        )
    )
    last = body["contents"][-1]
    assert last["role"] == "user"
    assert [p.get("functionResponse") for p in last["parts"][:2]] == [
        {"name": "f", "response": {"output": "[1, 2]"}, "id": "b"},
        {"name": "get_weather", "response": {"temp": 3}, "id": "a"},
    ]
    assert last["parts"][2] == {"text": "thanks"}


def test_a_tool_result_for_an_unknown_call_is_refused_unless_it_names_the_function() -> None:
    orphan = Message(role="tool", tool_call_id="nope", content=[TextPart(text="x")])
    with pytest.raises(InvalidRequest) as info:
        to_gemini(request(user("hi"), orphan))
    assert info.value.param == "messages[1].tool_call_id"
    named = Message(role="tool", tool_call_id="nope", name="f", content=[TextPart(text="x")])
    part = sent(request(user("hi"), named))["contents"][0]["parts"][1]
    assert part["functionResponse"]["name"] == "f"


@pytest.mark.parametrize(
    ("messages", "fields", "param"),
    [
        ([Message(role="system", content=[TextPart(text="only system")])], {}, "messages"),
        ([user("x")], {"tool_choice": ToolChoice(mode="required")}, "tool_choice"),
        (
            [user("x")],
            {"tools": [Tool(name="f")], "tool_choice": ToolChoice(mode="tool", name="g")},
            "tool_choice",
        ),
        (
            [
                user("x"),
                Message(role="assistant", tool_calls=[ToolCall(id="c", name="f", arguments="[1]")]),
            ],
            {},
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            [
                user("x"),
                Message(role="assistant", tool_calls=[ToolCall(id="c", name="f", arguments="{")]),
            ],
            {},
            "messages[1].tool_calls[0].function.arguments",
        ),
    ],
)
def test_untranslatable_requests_name_the_parameter(
    messages: list[Message], fields: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        to_gemini(request(*messages, **fields))
    assert info.value.param == param


def test_generation_config_and_thinking() -> None:
    body = sent(
        request(user("x"), reasoning=ReasoningConfig(budget_tokens=0), n=3, stop=["a", "b"])
    )
    assert body["generationConfig"] == {
        "stopSequences": ["a", "b"],
        "candidateCount": 3,
        "thinkingConfig": {"thinkingBudget": 0, "includeThoughts": True},
    }
    effort = sent(request(user("x"), reasoning=ReasoningConfig(effort="minimal")))
    assert effort["generationConfig"]["thinkingConfig"] == {
        "thinkingLevel": "MINIMAL",
        "includeThoughts": True,
    }
    assert "generationConfig" not in sent(request(user("x")))


def test_tool_choice_modes() -> None:
    tools = [Tool(name="f", parameters={"type": "object"}), Tool(name="g")]
    for mode, expected in [("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")]:
        body = sent(request(user("x"), tools=tools, tool_choice=ToolChoice(mode=mode)))  # type: ignore[arg-type]
        assert body["toolConfig"] == {"functionCallingConfig": {"mode": expected}}
    declarations = body["tools"][0]["functionDeclarations"]
    assert declarations == [
        {"name": "f", "parametersJsonSchema": {"type": "object"}},
        {"name": "g"},
    ]
    assert "toolConfig" not in sent(request(user("x"), tool_choice=ToolChoice(mode="none")))


def test_signed_reasoning_goes_back_and_unsigned_reasoning_does_not() -> None:
    assistant = Message(
        role="assistant",
        content=[TextPart(text="answer")],
        reasoning=[
            Reasoning(text="summary only"),
            Reasoning(text="signed thought", signature="AAAA"),
            Reasoning(redacted=b"claude"),
            Reasoning(signature="BBBB"),
        ],
    )
    parts = sent(request(user("q"), assistant, user("more")))["contents"][1]["parts"]
    assert parts == [
        {"text": "signed thought", "thought": True, "thoughtSignature": "AAAA"},
        {"text": "answer", "thoughtSignature": "BBBB"},
    ]


def test_an_explicit_tool_call_signature_wins_over_the_one_in_the_id() -> None:
    call_id = tool_call_id("r", 0, 0, upstream_id=None, signature=b"\x01from-id")
    call = ToolCall(id=call_id, name="f", arguments="{}", signature="ZXhwbGljaXQ=")
    part = sent(request(user("q"), Message(role="assistant", tool_calls=[call])))["contents"][1]
    assert part["parts"][0]["thoughtSignature"] == "ZXhwbGljaXQ="


def test_an_altered_signed_id_is_refused() -> None:
    good = tool_call_id("r", 0, 0, upstream_id=None, signature=b"sig")
    bad = good[:-3] + "A"  # a base64 length no encoder writes
    call = ToolCall(id=bad, name="f", arguments="{}")
    with pytest.raises(InvalidRequest) as info:
        to_gemini(request(user("q"), Message(role="assistant", tool_calls=[call])))
    assert info.value.param == "messages[1].tool_calls[0].id"


# --- tool-call ids ------------------------------------------------------------------------


@given(
    response_id=st.text(max_size=40),
    choice=st.integers(0, 8),
    slot=st.integers(0, 64),
    upstream_id=st.none() | st.text(min_size=1, max_size=80),
    signature=st.binary(max_size=600),
)
def test_ids_round_trip_with_signatures_of_arbitrary_bytes(
    response_id: str, choice: int, slot: int, upstream_id: str | None, signature: bytes
) -> None:
    call_id = tool_call_id(response_id, choice, slot, upstream_id=upstream_id, signature=signature)
    expected_signature = base64.b64encode(signature).decode() if signature else None
    assert read_tool_call_id(call_id) == ToolCallRef(upstream_id, expected_signature)
    assert call_id == tool_call_id(
        response_id, choice, slot, upstream_id=upstream_id, signature=signature
    )
    if signature or upstream_id is None:
        assert _ID_ALPHABET.fullmatch(call_id)


@given(st.text(min_size=1, max_size=30), st.integers(0, 3), st.integers(0, 3), st.integers(0, 3))
def test_generated_ids_differ_between_slots_and_choices(rid: str, c: int, a: int, b: int) -> None:
    ids = {tool_call_id(rid, c, s, upstream_id=None, signature=None) for s in (a, b)}
    assert len(ids) == len({a, b})
    assert tool_call_id(rid, c, a, upstream_id=None, signature=None) != tool_call_id(
        rid, c + 1, a, upstream_id=None, signature=None
    )


@settings(max_examples=50)
@given(signature=st.binary(min_size=1, max_size=400), gemini_id=st.none() | st.just("fc-1"))
def test_a_signature_survives_the_whole_openai_tool_loop(
    signature: bytes, gemini_id: str | None
) -> None:
    """Gemini's answer → OpenAI client → the client's next request → Gemini again."""
    call: dict[str, Any] = {"name": "get_weather", "args": {"city": "Oslo"}}
    if gemini_id:
        call["id"] = gemini_id
    encoded = base64.b64encode(signature).decode()
    body = gemini_body({"functionCall": call, "thoughtSignature": encoded})
    completion = json.loads(response_to_openai(answer(body)))
    assistant = completion["choices"][0]["message"]
    call_id = assistant["tool_calls"][0]["id"]
    follow_up = {
        "model": "gemini-3-pro-preview",
        "messages": [
            {"role": "user", "content": "weather?"},
            assistant,
            {"role": "tool", "tool_call_id": call_id, "content": "sunny"},
        ],
    }
    contents = sent(to_canonical(follow_up))["contents"]
    assert contents[1]["parts"] == [
        {"functionCall": {**call, "args": {"city": "Oslo"}}, "thoughtSignature": encoded}
    ]
    response = {"name": "get_weather", "response": {"output": "sunny"}}
    if gemini_id:
        response["id"] = gemini_id
    assert contents[2]["parts"] == [{"functionResponse": response}]


def test_streamed_and_plain_answers_give_a_call_the_same_id() -> None:
    part = {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "c2ln"}
    plain = answer(gemini_body({"text": "x"}, part, part), response_id="rid")
    stream = GeminiStreamTranslator("rid")
    events = stream.feed(gemini_body({"text": "x"}, part, finish=None)) + stream.feed(
        gemini_body(part)
    )
    starts = [e.id for e in events if isinstance(e, ToolCallStart)]
    assert starts == [c.id for c in plain.choices[0].message.tool_calls]
    assert len(set(starts)) == 2


# --- finish reasons -------------------------------------------------------------------

_FINISH_TABLE = {
    "FINISH_REASON_UNSPECIFIED": "stop",
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "LANGUAGE": "stop",
    "OTHER": "stop",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "MALFORMED_FUNCTION_CALL": "stop",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_OTHER": "content_filter",
    "NO_IMAGE": "stop",
    "IMAGE_RECITATION": "content_filter",
    "UNEXPECTED_TOOL_CALL": "stop",
    "TOO_MANY_TOOL_CALLS": "stop",
    "MISSING_THOUGHT_SIGNATURE": "stop",
    "MALFORMED_RESPONSE": "stop",
    "MODEL_ARMOR": "content_filter",
}


@pytest.mark.parametrize(("reason", "expected"), sorted(_FINISH_TABLE.items()))
def test_finish_reason_table(reason: str, expected: str) -> None:
    assert map_finish_reason(reason, has_tool_calls=False) == expected
    with_calls = "tool_calls" if reason == "STOP" else expected
    assert map_finish_reason(reason, has_tool_calls=True) == with_calls


def test_every_finish_reason_google_genai_knows_has_a_decided_mapping() -> None:
    types = pytest.importorskip("google.genai.types")
    known = {member.value for member in types.FinishReason}
    undecided = known - _FINISH_TABLE.keys()
    # Newer values land in "stop" unless they are IMAGE_*; list them here once reviewed.
    assert all(
        map_finish_reason(r, has_tool_calls=False) in ("stop", "content_filter") for r in undecided
    )


@given(st.text(max_size=30), st.booleans())
def test_only_stop_with_calls_becomes_tool_calls(reason: str, has_calls: bool) -> None:
    mapped = map_finish_reason(reason, has_tool_calls=has_calls)
    assert (mapped == "tool_calls") == (reason == "STOP" and has_calls)


# --- responses ------------------------------------------------------------------------


def test_usage_follows_protocols_section_8() -> None:
    usage = {
        "promptTokenCount": 100,
        "candidatesTokenCount": 10,
        "thoughtsTokenCount": 30,
        "cachedContentTokenCount": 64,
        "toolUsePromptTokenCount": 5,
        "totalTokenCount": 145,
    }
    result = answer(gemini_body({"text": "x"}, usageMetadata=usage)).usage
    assert (result.prompt_tokens, result.completion_tokens, result.total_tokens) == (105, 40, 145)
    assert result.prompt_tokens_details.cached_tokens == 64
    assert result.completion_tokens_details.reasoning_tokens == 30


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}}]}',
        b'{"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": [1]}}]}}]}',
        b'{"candidates": [{"content": {"parts": [{"text": "x", "thoughtSignature": "!!"}]}}]}',
        b'{"usageMetadata": {"promptTokenCount": 1}}',
    ],
)
def test_malformed_answers_are_protocol_errors(body: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        answer(body)


def test_an_error_body_with_status_200_is_still_an_error() -> None:
    body = b'{"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}'
    with pytest.raises(UpstreamRateLimited):
        answer(body)


def test_parts_the_gateway_does_not_relay_are_skipped() -> None:
    body = gemini_body(
        {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
        {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
        {"text": "done"},
    )
    message = answer(body).choices[0].message
    assert message.content == [TextPart(text="done")] and not message.tool_calls


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_gateway_errors(raw: bytes) -> None:
    with contextlib.suppress(GatewayError):
        answer(raw)
    with contextlib.suppress(GatewayError):
        GeminiStreamTranslator("r").feed(raw)
    assert isinstance(map_google_error(500, raw), GatewayError)


# --- streams --------------------------------------------------------------------------


def test_the_last_usage_wins_and_is_reported_once_at_close() -> None:
    stream = GeminiStreamTranslator("r")
    first = gemini_body({"text": "a"}, finish=None, usageMetadata={"promptTokenCount": 3})
    last = gemini_body(
        {"text": "b"}, usageMetadata={"promptTokenCount": 3, "candidatesTokenCount": 2}
    )
    events = stream.feed(first) + stream.feed(last)
    assert not any(isinstance(e, UsageReport) for e in events)
    assert events[-1] == Finish(reason="stop", raw_reason="STOP")
    late = json.dumps({"usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4}})
    assert stream.feed(late.encode()) == []
    (report,) = stream.close()
    assert isinstance(report, UsageReport) and report.usage.completion_tokens == 4


def test_a_stream_cut_short_is_a_protocol_error() -> None:
    stream = GeminiStreamTranslator("r")
    stream.feed(gemini_body({"text": "a"}, finish=None))
    with pytest.raises(UpstreamProtocolError):
        stream.close()
    with pytest.raises(UpstreamProtocolError):
        GeminiStreamTranslator("r").close()


def test_parts_after_the_finish_are_a_protocol_error() -> None:
    stream = GeminiStreamTranslator("r")
    stream.feed(gemini_body({"text": "a"}))
    with pytest.raises(UpstreamProtocolError):
        stream.feed(gemini_body({"text": "b"}))


def test_candidates_stream_side_by_side() -> None:
    stream = GeminiStreamTranslator("r")
    payload = {
        "candidates": [
            {"content": {"parts": [{"text": "a"}]}},
            {"content": {"parts": [{"text": "b"}]}, "index": 1, "finishReason": "MAX_TOKENS"},
        ]
    }
    events = stream.feed(json.dumps(payload).encode())
    assert events == [
        TextDelta(choice=0, text="a"),
        TextDelta(choice=1, text="b"),
        Finish(choice=1, reason="length", raw_reason="MAX_TOKENS"),
    ]
    with pytest.raises(UpstreamProtocolError):
        stream.close()  # candidate 0 never finished
    stream.feed(gemini_body(finish="STOP"))
    assert stream.close() == []


def test_an_error_payload_raises_the_mapped_error() -> None:
    stream = GeminiStreamTranslator("r")
    with pytest.raises(UpstreamRateLimited) as info:
        stream.feed(
            b'{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": '
            b'[{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}]}}'
        )
    assert info.value.retry_after == 1.5


# --- errors ---------------------------------------------------------------------------


def _google(code: int, status: str, message: str = "m", details: list[Any] | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return json.dumps({"error": error}).encode()


@pytest.mark.parametrize(
    ("status", "name", "expected"),
    [
        (429, "RESOURCE_EXHAUSTED", UpstreamRateLimited),
        (400, "INVALID_ARGUMENT", UpstreamBadRequest),
        (400, "FAILED_PRECONDITION", UpstreamRejected),
        (401, "UNAUTHENTICATED", UpstreamRejected),
        (403, "PERMISSION_DENIED", UpstreamRejected),
        (404, "NOT_FOUND", UpstreamRejected),
        (500, "INTERNAL", UpstreamUnavailable),
        (503, "UNAVAILABLE", UpstreamUnavailable),
        (504, "DEADLINE_EXCEEDED", UpstreamUnavailable),
        (429, "", UpstreamRateLimited),
        (502, "", UpstreamUnavailable),
        (418, "", UpstreamRejected),
    ],
)
def test_google_error_table(status: int, name: str, expected: type[GatewayError]) -> None:
    assert type(map_google_error(status, _google(status, name))) is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, UpstreamBadRequest),
        (401, UpstreamRejected),
        (403, UpstreamRejected),
        (404, UpstreamRejected),
        (408, UpstreamUnavailable),
        (429, UpstreamRateLimited),
        (500, UpstreamUnavailable),
        (503, UpstreamUnavailable),
    ],
)
def test_an_unreadable_error_body_maps_by_http_status(
    status: int, expected: type[GatewayError]
) -> None:
    error = map_google_error(status, b"<html>Service Unavailable</html>")
    assert type(error) is expected
    assert "html" not in error.message


@pytest.mark.parametrize(
    ("delay", "seconds"),
    [("38s", 38.0), ("1.5s", 1.5), ("0.250s", 0.25), ("soon", None), ("5", None)],
)
def test_retry_delay_is_read_from_retry_info(delay: str, seconds: float | None) -> None:
    details = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
    ]
    error = map_google_error(429, _google(429, "RESOURCE_EXHAUSTED", details=details))
    assert isinstance(error, UpstreamRateLimited) and error.retry_after == seconds


def test_context_length_and_bad_keys() -> None:
    long = "The input token count (2000001) exceeds the maximum number of tokens allowed (1048576)."
    assert isinstance(
        map_google_error(400, _google(400, "INVALID_ARGUMENT", long)), ContextLengthExceeded
    )
    bad_key = _google(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
    )
    assert isinstance(map_google_error(400, bad_key), UpstreamRejected)


def test_messages_never_carry_urls_keys_projects_or_emails() -> None:
    secret = (
        "Bad AIzaSyA1234567890abcdefghijklmnopqrstu for projects/acme-123/locations/x by "
        "sa@acme-123.iam.gserviceaccount.com, see https://console.cloud.google.com/x?project=acme"
    )
    error = map_google_error(400, _google(400, "INVALID_ARGUMENT", secret))
    assert "AIza" not in error.message and "acme" not in error.message
    assert "https" not in error.message and "@" not in error.message
    wrapped = b'[{"error": {"code": 404, "message": "projects/acme", "status": "NOT_FOUND"}}]'
    rejected = map_google_error(404, wrapped)
    assert isinstance(rejected, UpstreamRejected) and "acme" not in rejected.message


def test_documents_go_inline_and_url_only_or_tool_result_ones_are_refused() -> None:
    doc = DocumentPart(media_type="application/pdf", data=b"%PDF")
    body = sent(request(Message(role="user", content=[TextPart(text="read"), doc])))
    assert body["contents"][0]["parts"][1] == {
        "inlineData": {"mimeType": "application/pdf", "data": "JVBERg=="}
    }
    url_only = DocumentPart(media_type="application/pdf", url="https://example.com/a.pdf")
    with pytest.raises(InvalidRequest) as caught:
        to_gemini(request(Message(role="user", content=[url_only])))
    assert caught.value.param == "messages[0].content[0]"
    call = ToolCall(id="t1", name="f", arguments="{}")
    with pytest.raises(InvalidRequest) as caught:
        to_gemini(
            request(
                user("go"),
                Message(role="assistant", tool_calls=[call]),
                Message(role="tool", tool_call_id="t1", content=[doc]),
            )
        )
    assert caught.value.param == "messages[2].content[0]"
