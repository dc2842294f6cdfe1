"""OpenAI chat ⇄ canonical: reading requests, writing completions and stream chunks."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from skyroute.core.chat import (
    ChatResponse,
    Choice,
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
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    ToolChoice,
    UsageReport,
)
from skyroute.core.errors import InvalidRequest
from skyroute.core.usage import CompletionDetails, PromptDetails, Usage
from skyroute.wire.openai_chat import (
    OpenAIChunkWriter,
    response_to_openai,
    to_canonical,
    unsupported_fields,
)

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg=="
)


def body(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": list(messages) or [user("hi")], **fields}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def refused(raw: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        to_canonical(raw)
    return caught.value


# --- requests -------------------------------------------------------------------------


def test_scalar_options_map_to_their_canonical_fields() -> None:
    request = to_canonical(
        body(
            temperature=1,
            top_p=0.5,
            max_completion_tokens=100,
            max_tokens=50,
            stop="END",
            n=2,
            seed=3,
            reasoning_effort="medium",
            stream=True,
            stream_options={"include_usage": True},
            user="u1",
            parallel_tool_calls=False,
        )
    )
    assert request.temperature == 1.0 and isinstance(request.temperature, float)
    assert (request.top_p, request.max_tokens, request.stop) == (0.5, 100, ["END"])
    assert (request.n, request.seed, request.user) == (2, 3, "u1")
    assert request.reasoning == ReasoningConfig(effort="medium")
    assert request.stream and request.include_usage and request.parallel_tool_calls is False


def test_legacy_max_tokens_is_used_when_max_completion_tokens_is_absent() -> None:
    assert to_canonical(body(max_tokens=64)).max_tokens == 64


def test_reasoning_effort_none_means_no_reasoning_config() -> None:
    assert to_canonical(body(reasoning_effort="none")).reasoning is None


def test_messages_keep_roles_names_and_tool_links() -> None:
    request = to_canonical(
        body(
            {"role": "developer", "content": "rules"},
            {"role": "user", "content": "q", "name": "ann"},
            {
                "role": "assistant",
                "content": None,
                "reasoning_content": "thinking",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        )
    )
    developer, asked, called, answered = request.messages
    assert developer == Message(role="developer", content=[TextPart(text="rules")])
    assert asked.name == "ann"
    assert called.tool_calls == [ToolCall(id="c1", name="f", arguments="{}")]
    assert called.reasoning == [Reasoning(text="thinking")]
    assert answered == Message(role="tool", content=[TextPart(text="42")], tool_call_id="c1")


def test_thinking_blocks_carry_signatures_and_redacted_reasoning() -> None:
    assistant = {
        "role": "assistant",
        "content": "ok",
        "reasoning_content": "ignored when blocks are present",
        "thinking_blocks": [
            {"type": "thinking", "thinking": "t", "signature": "sig"},
            {"type": "redacted_thinking", "data": base64.b64encode(b"opaque").decode()},
        ],
    }
    message = to_canonical(body(user("q"), assistant)).messages[1]
    assert message.reasoning == [
        Reasoning(text="t", signature="sig"),
        Reasoning(redacted=b"opaque"),
    ]


def test_object_arguments_are_accepted_as_compact_json() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}
    message = to_canonical(body(user("q"), {"role": "assistant", "tool_calls": [call]})).messages[1]
    assert message.tool_calls[0].arguments == '{"a":1}'


def test_data_url_images_become_bytes_and_https_images_stay_urls() -> None:
    data_url = "data:image/PNG;base64," + base64.b64encode(PNG).decode()
    content = [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": data_url, "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
    ]
    parts = to_canonical(body(user(content))).messages[0].content
    assert parts == [
        TextPart(text="look"),
        ImagePart(media_type="image/png", data=PNG, detail="high"),
        ImagePart(url="https://example.com/a.jpg"),
    ]


def test_tools_tool_choice_and_response_format() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    schema = {"name": "out", "schema": {"type": "object"}, "strict": True}
    request = to_canonical(
        body(
            tools=[tool],
            tool_choice={"type": "function", "function": {"name": "f"}},
            response_format={"type": "json_schema", "json_schema": schema},
        )
    )
    assert request.tools[0].name == "f" and request.tools[0].parameters == {"type": "object"}
    assert request.tool_choice == ToolChoice(mode="tool", name="f")
    assert request.response_format == ResponseFormat(
        type="json_schema", name="out", schema={"type": "object"}, strict=True
    )
    assert to_canonical(body(tool_choice="required")).tool_choice == ToolChoice(mode="required")


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (
            body(user([{"type": "input_audio", "input_audio": {}}])),
            "messages[0].content[0].input_audio",
        ),
        (body(user([{"type": "file", "file": {}}])), "messages[0].content[0].file"),
        (body(user([{"type": "video"}])), "messages[0].content[0].type"),
        (body(user([{"type": "text"}])), "messages[0].content[0].text"),
        (body(user(7)), "messages[0].content"),
        (
            body(user([{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@"}}])),
            "messages[0].content[0].image_url",
        ),
        (
            body(user([{"type": "image_url", "image_url": {"url": "data:image/png,raw"}}])),
            "messages[0].content[0].image_url",
        ),
        (
            body(user([{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}])),
            "messages[0].content[0].image_url",
        ),
        (body({"role": "tool", "content": "x"}), "messages[0].tool_call_id"),
        (body({"role": "function", "name": "f", "content": "x"}), "messages[0].role"),
        (
            body(
                {"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]}
            ),
            "messages[0].tool_calls[0].function.name",
        ),
        (body(tools=[{"type": "web_search"}]), "tools[0].type"),
        (body(tool_choice="sometimes"), "tool_choice"),
        (body(tool_choice={"type": "allowed_tools"}), "tool_choice"),
        (body(response_format={"type": "json_schema"}), "response_format"),
        (body(reasoning_effort="maximal"), "reasoning_effort"),
        (body(reasoning_effort={"level": 1}), "reasoning_effort"),
        (body(temperature=True), "temperature"),
        (body(temperature="hot"), "temperature"),
        (body(max_completion_tokens=0), "max_completion_tokens"),
        (body(n=1.5), "n"),
        (body(stop=["a", 1]), "stop"),
        (body(user="x", seed="1"), "seed"),
    ],
)
def test_untranslatable_input_is_refused_naming_the_parameter(
    raw: dict[str, Any], param: str
) -> None:
    assert refused(raw).param == param


def test_unsupported_media_says_so() -> None:
    error = refused(body(user([{"type": "file", "file": {"file_id": "f"}}])))
    assert "not supported by this deployment" in error.message


@pytest.mark.parametrize(
    ("fields", "listed"),
    [
        ({"logprobs": False, "top_logprobs": 0, "presence_penalty": 0, "logit_bias": {}}, []),
        ({"frequency_penalty": 0.0, "modalities": ["text"], "verbosity": "medium"}, []),
        ({"metadata": {"a": "b"}, "store": True, "service_tier": "auto", "user": "u"}, []),
        ({"prompt_cache_key": "k", "safety_identifier": "s", "temperature": 1}, []),
        ({"logprobs": True, "top_logprobs": 3}, ["logprobs", "top_logprobs"]),
        (
            {"logit_bias": {"50256": -100}, "presence_penalty": 0.5},
            ["logit_bias", "presence_penalty"],
        ),
        ({"functions": [{"name": "f"}], "audio": {"voice": "x"}}, ["functions", "audio"]),
        ({"verbosity": "high", "brand_new_option": 1}, ["verbosity", "brand_new_option"]),
    ],
)
def test_unsupported_fields_lists_only_fields_that_would_change_the_answer(
    fields: dict[str, Any], listed: list[str]
) -> None:
    assert unsupported_fields(body(**fields)) == listed


# --- responses ------------------------------------------------------------------------


def _response(message: Message, usage: Usage | None = None) -> ChatResponse:
    choice = Choice(index=0, message=message, finish_reason="tool_calls", raw_finish_reason="x")
    return ChatResponse(id="chatcmpl-1", model="m", created=7, choices=[choice], usage=usage)


def test_completion_has_null_content_when_the_model_only_called_tools() -> None:
    message = Message(role="assistant", tool_calls=[ToolCall(id="c", name="f", arguments="{}")])
    usage = Usage(
        prompt_tokens=10,
        completion_tokens=5,
        prompt_tokens_details=PromptDetails(cached_tokens=4),
        completion_tokens_details=CompletionDetails(reasoning_tokens=2),
    )
    out = json.loads(response_to_openai(_response(message, usage)))
    ChatCompletion.model_validate(out)
    assert out["object"] == "chat.completion"
    assert out["choices"][0] == {
        "index": 0,
        "message": {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        "finish_reason": "tool_calls",
        "logprobs": None,
    }
    assert out["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }


def test_unsigned_reasoning_is_reasoning_content_without_thinking_blocks() -> None:
    message = Message(role="assistant", content=[TextPart(text="a"), TextPart(text="b")])
    message = Message(role="assistant", content=message.content, reasoning=[Reasoning(text="r")])
    out = json.loads(response_to_openai(_response(message)))
    assert out["choices"][0]["message"] == {
        "role": "assistant",
        "content": "ab",
        "reasoning_content": "r",
    }
    assert out["usage"] is None


# --- stream chunks --------------------------------------------------------------------


def _chunks(events: list[StreamEvent], include_usage: bool = True) -> list[dict[str, Any]]:
    writer = OpenAIChunkWriter("chatcmpl-9", 'm"odel', 1700000000, include_usage)
    return [json.loads(chunk) for event in events for chunk in writer.write(event)]


TOOL_STREAM: list[StreamEvent] = [
    TextDelta(text='say "hi"\n'),
    ToolCallStart(slot=0, id="c0", name="f"),
    ToolCallDelta(slot=0, arguments='{"a":'),
    ToolCallStart(slot=1, id="c1", name="g"),
    ToolCallDelta(slot=0, arguments=" 1}"),
    ToolCallDelta(slot=1, arguments="{}"),
    Finish(reason="tool_calls"),
    UsageReport(usage=Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7)),
]


def test_chunks_accumulate_in_the_openai_sdk_to_the_same_answer() -> None:
    state = ChatCompletionStreamState()
    for chunk in _chunks(TOOL_STREAM):
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    final = state.get_final_completion()
    message = final.choices[0].message
    assert message.content == 'say "hi"\n'
    assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or []] == [
        ("c0", "f", '{"a": 1}'),
        ("c1", "g", "{}"),
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None and final.usage.total_tokens == 7
    assert final.model == 'm"odel'


def test_first_chunk_of_each_choice_names_the_role() -> None:
    chunks = _chunks(
        [
            TextDelta(text="a"),
            TextDelta(text="b"),
            TextDelta(choice=1, text="c"),
            Finish(choice=1, reason="stop"),
        ]
    )
    deltas = [(c["choices"][0]["index"], c["choices"][0]["delta"]) for c in chunks]
    assert deltas == [
        (0, {"role": "assistant", "content": "a"}),
        (0, {"content": "b"}),
        (1, {"role": "assistant", "content": "c"}),
        (1, {}),
    ]


def test_a_finish_before_any_output_still_names_the_role() -> None:
    (chunk,) = _chunks([Finish(reason="content_filter")])
    assert chunk["choices"][0]["delta"] == {"role": "assistant"}
    assert chunk["choices"][0]["finish_reason"] == "content_filter"


def test_with_include_usage_every_chunk_has_usage_null_and_usage_comes_last_alone() -> None:
    chunks = _chunks(TOOL_STREAM)
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 3
    assert all(
        c["object"] == "chat.completion.chunk" and c["created"] == 1700000000 for c in chunks
    )


def test_without_include_usage_there_is_no_usage_key_and_no_usage_chunk() -> None:
    chunks = _chunks(TOOL_STREAM, include_usage=False)
    assert len(chunks) == len(TOOL_STREAM) - 1
    assert all("usage" not in c for c in chunks)


def test_reasoning_deltas_carry_text_and_signature() -> None:
    chunks = _chunks(
        [
            ReasoningDelta(text="r"),
            ReasoningDelta(signature="s"),
            ReasoningDelta(text=""),
            ReasoningDelta(redacted=b"\x01"),
        ]
    )
    # Each block carries its own index, as stream accumulators merge list deltas by it.
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "reasoning_content": "r"},
        {"thinking_blocks": [{"type": "thinking", "index": 0, "thinking": "", "signature": "s"}]},
        {"thinking_blocks": [{"type": "redacted_thinking", "index": 1, "data": "AQ=="}]},
    ]


@given(st.text())
def test_any_text_is_escaped_into_valid_json(text: str) -> None:
    (chunk,) = _chunks([TextDelta(text=text)])
    assert chunk["choices"][0]["delta"]["content"] == text


# --- documents ------------------------------------------------------------------------


def test_file_parts_become_documents() -> None:
    pdf = "data:application/pdf;base64,JVBERg=="
    text_file = "data:text/plain;charset=utf-8;base64,aGk="
    parts = [
        {"type": "file", "file": {"file_data": pdf, "filename": "a.pdf"}},
        {"type": "file", "file": {"file_data": text_file}},
        {"type": "file", "file": {"file_data": "https://example.com/r.pdf"}},
    ]
    assert to_canonical(body(user(parts))).messages[0].content == [
        DocumentPart(media_type="application/pdf", data=b"%PDF", name="a.pdf"),
        DocumentPart(media_type="text/plain", data=b"hi"),
        DocumentPart(media_type="application/pdf", url="https://example.com/r.pdf"),
    ]


@pytest.mark.parametrize(
    ("file", "param"),
    [
        ({"file_id": "file-abc"}, "messages[0].content[0].file.file_id"),
        ({"file_data": "JVBERg=="}, "messages[0].content[0].file.file_data"),
        ({"file_data": "data:application/pdf;base64,@@"}, "messages[0].content[0].file.file_data"),
        (
            {"file_data": "data:application/pdf;base64,JVBERg==", "filename": 1},
            "messages[0].content[0].file.filename",
        ),
    ],
)
def test_file_parts_that_cannot_be_documents_are_refused(file: dict[str, Any], param: str) -> None:
    assert refused(body(user([{"type": "file", "file": file}]))).param == param
