"""The canonical chat → an OpenAI-shaped upstream, and its answers back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skyroute.core.chat import (
    ChatRequest,
    DocumentPart,
    Finish,
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
from skyroute.core.errors import InvalidRequest, UpstreamProtocolError
from skyroute.core.usage import CompletionDetails, PromptDetails, Usage
from skyroute.wire.openai_chat import (
    OpenAIChunkReader,
    OpenAIChunkWriter,
    from_openai_response,
    to_openai_body,
)


def body_of(*messages: Message, **fields: Any) -> dict[str, Any]:
    request = ChatRequest(model="gpt-x", messages=list(messages), **fields)
    result: dict[str, Any] = json.loads(to_openai_body(request))
    return result


def user(*parts: TextPart | ImagePart) -> Message:
    return Message(role="user", content=list(parts))


# --- to_openai_body -------------------------------------------------------------------


def test_messages_of_every_role() -> None:
    body = body_of(
        Message(role="system", content=[TextPart(text="S")]),
        Message(role="developer", content=[TextPart(text="D1"), TextPart(text="D2")]),
        user(TextPart(text="look"), ImagePart(media_type="image/png", data=b"\x89PNG")),
        Message(
            role="assistant",
            tool_calls=[ToolCall(id="c1", name="f", arguments='{"a":1}')],
            reasoning=[Reasoning(text="why", signature="sig")],
        ),
        Message(role="tool", tool_call_id="c1", content=[TextPart(text="4"), TextPart(text="2")]),
        Message(role="assistant", content=[TextPart(text="42")]),
        Message(role="user", content=[], name="bob"),
    )
    assert body["messages"] == [
        {"role": "system", "content": "S"},
        {
            "role": "developer",
            "content": [{"type": "text", "text": "D1"}, {"type": "text", "text": "D2"}],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}},
            ],
        },
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
            ],
        },
        {"role": "tool", "content": "42", "tool_call_id": "c1"},
        {"role": "assistant", "content": "42"},
        {"role": "user", "content": "", "name": "bob"},
    ]


def test_images_by_url_keep_their_detail_and_tool_results_must_be_text() -> None:
    body = body_of(user(ImagePart(url="https://x.test/a.png", detail="low")))
    assert body["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}}
    ]
    result = Message(role="tool", tool_call_id="c", content=[ImagePart(url="https://x.test/b")])
    with pytest.raises(InvalidRequest) as caught:
        body_of(user(TextPart(text="q")), result)
    assert caught.value.param == "messages[1].content"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ToolChoice(mode="auto"), "auto"),
        (ToolChoice(mode="none"), "none"),
        (ToolChoice(mode="required"), "required"),
        (ToolChoice(mode="tool", name="f"), {"type": "function", "function": {"name": "f"}}),
    ],
)
def test_tools_and_tool_choice(choice: ToolChoice, expected: Any) -> None:
    tool = Tool(name="f", description="d", parameters={"type": "object"}, strict=True)
    body = body_of(user(TextPart(text="q")), tools=[tool], tool_choice=choice)
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "f",
                "description": "d",
                "parameters": {"type": "object"},
                "strict": True,
            },
        }
    ]
    assert body["tool_choice"] == expected


def test_parallel_tool_calls_only_with_tools() -> None:
    with_tools = body_of(
        user(TextPart(text="q")), tools=[Tool(name="f")], parallel_tool_calls=False
    )
    assert with_tools["parallel_tool_calls"] is False
    assert with_tools["tools"][0]["function"] == {"name": "f"}
    assert "parallel_tool_calls" not in body_of(user(TextPart(text="q")), parallel_tool_calls=False)


@pytest.mark.parametrize(
    ("config", "effort"),
    [
        (ReasoningConfig(effort="minimal"), "minimal"),
        (ReasoningConfig(budget_tokens=1024), "low"),
        (ReasoningConfig(budget_tokens=8192), "medium"),
        (ReasoningConfig(budget_tokens=20000), "high"),
        (ReasoningConfig(), None),
        (None, None),
    ],
)
def test_reasoning_becomes_an_effort(config: ReasoningConfig | None, effort: str | None) -> None:
    assert body_of(user(TextPart(text="q")), reasoning=config).get("reasoning_effort") == effort


def test_the_remaining_fields() -> None:
    body = body_of(
        user(TextPart(text="q")),
        response_format=ResponseFormat(type="json_schema", schema={"type": "object"}),
        temperature=0.2,
        top_p=0.5,
        max_tokens=99,
        stop=["END"],
        n=2,
        seed=3,
        stream=True,
        include_usage=True,
        user="u",
        extensions={"top_k": 5},
    )
    assert {k: v for k, v in body.items() if k != "messages"} == {
        "model": "gpt-x",
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": {"type": "object"}},
        },
        "temperature": 0.2,
        "top_p": 0.5,
        "max_completion_tokens": 99,
        "stop": ["END"],
        "n": 2,
        "seed": 3,
        "stream": True,
        "stream_options": {"include_usage": True},
        "user": "u",
    }
    plain = body_of(user(TextPart(text="q")), response_format=ResponseFormat(type="json_object"))
    assert plain["response_format"] == {"type": "json_object"}
    assert set(plain) == {"model", "messages", "response_format"}


# --- from_openai_response -------------------------------------------------------------


def completion(message: dict[str, Any], finish: str | None = "stop", **more: Any) -> bytes:
    body = {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 5, "model": "gpt-x",
        "choices": [{"index": 0, "message": {"role": "assistant", **message},
                     "finish_reason": finish}],
        **more,
    }  # fmt: skip
    return json.dumps(body).encode()


def test_a_completion_becomes_the_canonical_response() -> None:
    response = from_openai_response(
        completion(
            {
                "content": "Hi",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
                "reasoning_content": "why",
            },
            "tool_calls",
            usage={
                "prompt_tokens": 10,
                "completion_tokens": 4,
                "total_tokens": 14,
                "prompt_tokens_details": {"cached_tokens": 8, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 2},
            },
        )
    )
    assert (response.id, response.created, response.model) == ("chatcmpl-1", 5, "gpt-x")
    choice = response.choices[0]
    assert choice.message == Message(
        role="assistant",
        content=[TextPart(text="Hi")],
        tool_calls=[ToolCall(id="c1", name="f", arguments="{}")],
        reasoning=[Reasoning(text="why")],
    )
    assert (choice.finish_reason, choice.raw_finish_reason) == ("tool_calls", "tool_calls")
    assert response.usage == Usage(
        prompt_tokens=10,
        completion_tokens=4,
        total_tokens=14,
        prompt_tokens_details=PromptDetails(cached_tokens=8),
        completion_tokens_details=CompletionDetails(reasoning_tokens=2),
    )


@pytest.mark.parametrize(
    ("message", "reasoning"),
    [
        ({"reasoning": "vLLM thinks"}, [Reasoning(text="vLLM thinks")]),
        ({"reasoning": {"summary": []}}, []),
        (
            {
                "thinking_blocks": [
                    {"type": "thinking", "thinking": "t", "signature": "s"},
                    {"type": "redacted_thinking", "data": "QUJD"},
                ]
            },
            [Reasoning(text="t", signature="s"), Reasoning(redacted=b"ABC")],
        ),
    ],
)
def test_reasoning_from_each_dialect(message: dict[str, Any], reasoning: list[Reasoning]) -> None:
    assert from_openai_response(completion(message)).choices[0].message.reasoning == reasoning


@pytest.mark.parametrize(
    ("finish", "expected"),
    [("function_call", "tool_calls"), ("length", "length"), ("weird", "stop"), (None, None)],
)
def test_finish_reasons(finish: str | None, expected: str | None) -> None:
    assert from_openai_response(completion({}, finish)).choices[0].finish_reason == expected


def test_a_refusal_is_the_answer_text() -> None:
    message = from_openai_response(completion({"content": None, "refusal": "No."})).choices[0]
    assert message.message.content == [TextPart(text="No.")]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b'{"choices": []}',
        b'{"error": {"message": "x"}}',
        b'{"choices": [{"index": "0"}]}',
    ],
)
def test_malformed_completions_are_protocol_errors(body: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        from_openai_response(body)


# --- OpenAIChunkReader ----------------------------------------------------------------


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **more: Any) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return json.dumps(
        {"id": "c", "object": "chat.completion.chunk", "choices": choices, **more}
    ).encode()


def read_all(*payloads: bytes) -> list[StreamEvent]:
    reader = OpenAIChunkReader()
    return [event for payload in payloads for event in reader.feed(payload)]


def test_chunks_become_canonical_events() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    events = read_all(
        chunk(None, prompt_filter_results=[]),  # Azure's first chunk (protocols.md §0.9)
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning_content": "hm"}),
        chunk({"reasoning": "m"}),
        chunk({"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "s"}]}),
        chunk({"content": "Hi", "refusal": None}),
        chunk(
            {"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": ""}}]}
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
        chunk(
            {"tool_calls": [{"index": 3, "id": "b", "function": {"name": "g", "arguments": "{"}}]}
        ),
        chunk({}, "tool_calls", usage={**usage, "prompt_tokens": 99}),
        chunk(None, usage=usage),
        b"[DONE]",
    )
    assert events == [
        ReasoningDelta(text="hm"),
        ReasoningDelta(text="m"),
        ReasoningDelta(signature="s"),
        TextDelta(text="Hi"),
        ToolCallStart(slot=0, id="a", name="f"),
        ToolCallDelta(slot=0, arguments="{}"),
        ToolCallStart(slot=1, id="b", name="g"),
        ToolCallDelta(slot=1, arguments="{"),
        Finish(reason="tool_calls", raw_reason="tool_calls"),
        UsageReport(usage=Usage(prompt_tokens=99, completion_tokens=4, total_tokens=7)),
        UsageReport(usage=Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7)),
    ]


def test_running_usage_on_content_chunks_is_not_reported() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    assert read_all(chunk({"content": "x"}, usage=usage)) == [TextDelta(text="x")]


@pytest.mark.parametrize(
    "payload",
    [
        b"{",
        b'{"error": {"message": "overloaded", "code": 503}}',
        b'{"choices": {"index": 0}}',
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
    ],
)
def test_errors_and_malformed_chunks_raise_value_error(payload: bytes) -> None:
    with pytest.raises(ValueError):
        OpenAIChunkReader().feed(payload)


_events = st.lists(
    st.one_of(
        st.builds(TextDelta, text=st.text(min_size=1, max_size=8)),
        st.builds(ReasoningDelta, text=st.text(min_size=1, max_size=8)),
    ),
    max_size=8,
)


@given(events=_events, calls=st.lists(st.text(min_size=1, max_size=8), max_size=3))
def test_the_reader_inverts_the_chunk_writer(events: list[StreamEvent], calls: list[str]) -> None:
    sent = list(events)
    for slot, arguments in enumerate(calls):
        sent += [
            ToolCallStart(slot=slot, id=f"call_{slot}", name="f"),
            ToolCallDelta(slot=slot, arguments=arguments),
        ]
    sent += [
        Finish(reason="tool_calls" if calls else "stop"),
        UsageReport(usage=Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3)),
    ]
    writer = OpenAIChunkWriter("chatcmpl-1", "m", 0, include_usage=True)
    reader = OpenAIChunkReader()
    got = [e for event in sent for chunk in writer.write(event) for e in reader.feed(chunk)]
    expected = [
        Finish(reason=e.reason, raw_reason=e.reason) if isinstance(e, Finish) else e for e in sent
    ]
    assert got == expected


def test_documents_become_file_parts_with_a_filename() -> None:
    body = body_of(
        Message(
            role="user",
            content=[
                DocumentPart(media_type="application/pdf", data=b"%PDF"),
                DocumentPart(media_type="text/plain", data=b"hi", name="notes"),
            ],
        )
    )
    assert body["messages"][0]["content"] == [
        {
            "type": "file",
            "file": {
                "file_data": "data:application/pdf;base64,JVBERg==",
                "filename": "document.pdf",
            },
        },
        {"type": "file", "file": {"file_data": "data:text/plain;base64,aGk=", "filename": "notes"}},
    ]


def test_url_only_documents_and_documents_in_tool_results_are_refused() -> None:
    url_only = DocumentPart(media_type="application/pdf", url="https://example.com/a.pdf")
    with pytest.raises(InvalidRequest) as caught:
        body_of(Message(role="user", content=[url_only]))
    assert caught.value.param == "messages[0].content[0]"
    doc = DocumentPart(media_type="application/pdf", data=b"%PDF")
    with pytest.raises(InvalidRequest) as caught:
        body_of(Message(role="tool", tool_call_id="t1", content=[doc]))
    assert caught.value.param == "messages[0].content"
