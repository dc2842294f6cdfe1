"""Golden cases: an Anthropic Messages request in, an OpenAI-shaped upstream out, and back.

Each folder under ``anthropic__openai/`` is one case (see README.md). The inputs are
``client_request.json`` (what an Anthropic SDK client sends to ``POST /v1/messages``)
and, for cases that reach the upstream, ``upstream_response.json`` (a
``chat.completion``) or ``upstream_stream.jsonl`` (one ``chat.completion.chunk`` per
line; the stream ends with ``[DONE]``). Every other file is what the translation
produced and is compared, or rewritten when ``SKYROUTE_REGENERATE_GOLDEN=1``;
``client_stream.txt`` holds the SSE frames the client receives, byte for byte.

Stream cases are also replayed as real SSE bytes through ``SSEDecoder``, split at every
byte and at random points: the client frames must not change. The frames are fed to the
anthropic SDK's own stream accumulator, whose final message must equal the one
``response_to_anthropic`` writes for the same answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given

from skyroute.core.chat import (
    ChatResponse,
    Choice,
    Finish,
    Message,
    Reasoning,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    UsageReport,
)
from skyroute.transport.sse import SSEDecoder, encode_event
from skyroute.wire.anthropic import (
    AnthropicEventWriter,
    parse_messages_request,
    response_to_anthropic,
)
from skyroute.wire.openai_chat import OpenAIChunkReader, from_openai_response, to_openai_body
from tests.golden.harness import (
    CLIENT_REQUEST,
    RANDOM_CUTS,
    RANDOM_REPLAYS,
    GoldenSuite,
    Relay,
    StreamRun,
    assert_every_split_replays,
    case_id,
    error_fields,
    pieces_at,
    read_json,
    request_outputs,
    struct_json,
    to_json,
    to_jsonl,
)

SUITE = GoldenSuite(
    folder=Path(__file__).parent / "anthropic__openai",
    produced=frozenset(
        {
            "canonical.json",
            "upstream_request.json",
            "canonical_response.json",
            "client_response.json",
            "canonical_stream.jsonl",
            "client_stream.txt",
            "expected_error.json",
        }
    ),
    stream_input="upstream_stream.jsonl",
)
MESSAGE_ID = "msg_golden"


# --- running a case -------------------------------------------------------------------


def stream_payloads(case: Path) -> list[bytes]:
    """The SSE ``data`` payloads of a stream case, ``[DONE]`` last, as OpenAI sends."""
    lines = (case / "upstream_stream.jsonl").read_text().splitlines()
    return [line.encode() for line in lines if line.strip()] + [b"[DONE]"]


def drive_stream(payloads: Iterable[bytes], model: str) -> StreamRun:
    """Upstream chunks → canonical events → client SSE frames, as the gateway runs them."""
    reader = OpenAIChunkReader()
    writer = AnthropicEventWriter(MESSAGE_ID, model)
    relay = Relay(writer.write)
    relay.emit(writer.start())
    for payload in payloads:
        relay.send(reader.feed(payload))
    relay.emit(writer.finish())
    return relay.result()


def run_case(case: Path) -> dict[str, str]:
    """Everything the translation produces for one case: file name → text."""
    raw = (case / CLIENT_REQUEST).read_bytes()
    out, canonical = request_outputs(
        lambda: parse_messages_request(raw), to_openai_body, error_fields
    )
    if canonical is None:
        return out
    if (case / "upstream_response.json").is_file():
        response = from_openai_response((case / "upstream_response.json").read_bytes())
        out["canonical_response.json"] = struct_json(response)
        out["client_response.json"] = to_json(json.loads(response_to_anthropic(response)))
    elif (case / "upstream_stream.jsonl").is_file():
        run = drive_stream(stream_payloads(case), canonical.model)
        out["canonical_stream.jsonl"] = to_jsonl(msgspec.to_builtins(e) for e in run.events)
        out["client_stream.txt"] = b"".join(run.chunks).decode()
    return out


@pytest.mark.parametrize("case", SUITE.cases(), ids=case_id)
def test_golden_case(case: Path) -> None:
    SUITE.check(case, run_case(case))


def test_golden_cases_cover_the_agreed_minimum() -> None:
    assert len(SUITE.cases()) >= 10
    assert {p.name for p in SUITE.cases()} >= {
        "plain_text",
        "system_blocks_and_sampling",
        "image_base64",
        "image_url",
        "tools_any",
        "tool_choice_tool_disable_parallel",
        "tool_choice_none",
        "tool_loop_results_is_error",
        "thinking_round_trip",
        "stop_sequences_max_tokens_length",
        "refusal_content_filter",
        "cache_tokens_usage",
        "stream_text_with_usage",
        "stream_reasoning_text_tool_calls",
    }


# --- oracles: the official SDKs -------------------------------------------------------


def _httpx2() -> Any:
    return pytest.importorskip("httpx2")


def _anthropic_client(handler: Any) -> Any:
    anthropic = pytest.importorskip("anthropic")
    httpx2 = _httpx2()
    return anthropic.Anthropic(
        api_key="k", base_url="http://gateway.test", max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )  # fmt: skip


@pytest.mark.parametrize("case", SUITE.cases(), ids=case_id)
def test_upstream_request_is_what_the_openai_sdk_sends(case: Path) -> None:
    """The openai SDK, given the same parameters, sends the same JSON."""
    openai = pytest.importorskip("openai")
    httpx2 = _httpx2()
    if not (case / "upstream_request.json").is_file():
        pytest.skip("the request is refused before it reaches the upstream")
    body = read_json(case / "upstream_request.json")
    sent: list[bytes] = []

    def handler(request: Any) -> Any:
        sent.append(request.content)
        if body.get("stream"):
            return httpx2.Response(200, headers={"content-type": "text/event-stream"})
        return httpx2.Response(200, json=json.loads(_first_response()))

    client = openai.OpenAI(
        api_key="k", base_url="http://upstream.test/v1", max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )  # fmt: skip
    client.chat.completions.create(**body)
    assert json.loads(sent[0]) == body


def _first_response() -> str:
    return next(
        (p / "upstream_response.json").read_text()
        for p in SUITE.cases()
        if (p / "upstream_response.json").is_file()
    )


@pytest.mark.parametrize("case", SUITE.cases(), ids=case_id)
def test_inputs_are_what_the_sdks_send_and_receive(case: Path) -> None:
    """The hand-written inputs are real: the client request is what the anthropic SDK
    sends for its parameters, and the upstream answers parse as the openai SDK's types."""
    types = pytest.importorskip("openai.types.chat")
    request = read_json(case / CLIENT_REQUEST)
    if not (case / "expected_error.json").is_file():
        sent: list[bytes] = []

        def handler(http_request: Any) -> Any:
            sent.append(http_request.content)
            return _httpx2().Response(200, headers={"content-type": "text/event-stream"})

        extra = {k: request[k] for k in ("temperature", "top_p", "top_k") if k in request}
        params = {k: v for k, v in request.items() if k not in extra and k != "stream"}
        _anthropic_client(handler).messages.create(**params, stream=True, extra_body=extra or None)
        assert json.loads(sent[0]) == {**request, "stream": True}
    if (case / "upstream_response.json").is_file():
        types.ChatCompletion.model_validate_json((case / "upstream_response.json").read_text())
    if (case / "upstream_stream.jsonl").is_file():
        for line in (case / "upstream_stream.jsonl").read_text().splitlines():
            types.ChatCompletionChunk.model_validate_json(line)


@pytest.mark.parametrize("case", SUITE.cases(), ids=case_id)
def test_client_response_parses_with_the_anthropic_sdk(case: Path) -> None:
    types = pytest.importorskip("anthropic.types")
    if not (case / "client_response.json").is_file():
        pytest.skip("no response in this case")
    message = types.Message.model_validate_json((case / "client_response.json").read_text())
    assert message.id.startswith("msg_")


def _sdk_final_message(frames: bytes) -> dict[str, Any]:
    """What the anthropic SDK's ``messages.stream()`` makes of the frames."""

    def handler(request: Any) -> Any:
        headers = {"content-type": "text/event-stream"}
        return _httpx2().Response(200, headers=headers, content=frames)

    client = _anthropic_client(handler)
    messages = [{"role": "user", "content": "x"}]
    with client.messages.stream(model="m", max_tokens=1, messages=messages) as stream:
        message = stream.get_final_message()
    return message.model_dump(mode="json", exclude_none=True)


def _accumulated(events: list[StreamEvent], model: str) -> ChatResponse:
    """The canonical response the stream events add up to."""
    text, reasoning, calls = "", [], []
    finish, usage = None, None
    for event in events:
        match event:
            case TextDelta():
                text += event.text
            case ReasoningDelta(redacted=bytes(data)):
                reasoning.append(Reasoning(redacted=data))
            case ReasoningDelta():
                last = reasoning[-1] if reasoning and not reasoning[-1].signature else None
                merged = Reasoning(text=(last.text if last else "") + event.text)
                reasoning[-1 if last else len(reasoning) :] = [
                    Reasoning(text=merged.text, signature=event.signature)
                ]
            case ToolCallStart():
                calls.append(ToolCall(id=event.id, name=event.name, arguments=""))
            case ToolCallDelta():
                call = calls[event.slot]
                calls[event.slot] = ToolCall(
                    id=call.id, name=call.name, arguments=call.arguments + event.arguments
                )
            case Finish():
                finish = event
            case UsageReport():
                usage = event.usage
    message = Message(
        role="assistant",
        content=[TextPart(text=text)] if text else [],
        tool_calls=calls,
        reasoning=reasoning,
    )
    choice = Choice(
        index=0,
        message=message,
        finish_reason=finish.reason if finish else None,
        raw_finish_reason=finish.raw_reason if finish else None,
    )
    return ChatResponse(id=MESSAGE_ID, model=model, created=0, choices=[choice], usage=usage)


@pytest.mark.parametrize("case", SUITE.stream_cases(), ids=case_id)
def test_client_stream_accumulates_to_the_plain_response(case: Path) -> None:
    """The SDK's accumulator turns the frames into the very message the non-streamed
    answer would have been: blocks, tool inputs, stop reason and usage alike."""
    pytest.importorskip("anthropic")
    model = parse_messages_request((case / "client_request.json").read_bytes()).model
    events, frames, _ = drive_stream(stream_payloads(case), model)
    plain = json.loads(response_to_anthropic(_accumulated(events, model)))
    plain = {k: v for k, v in plain.items() if v is not None}  # as exclude_none writes it
    streamed = _sdk_final_message(b"".join(frames))
    if not any(isinstance(e, UsageReport) for e in events):
        plain["usage"] = {"input_tokens": 0, "output_tokens": 0}
    assert streamed == plain


# --- stream replay through real SSE bytes ---------------------------------------------


def _sse(case: Path) -> bytes:
    return b"".join(encode_event(payload) for payload in stream_payloads(case))


def _decoded(pieces: Iterable[bytes]) -> Iterator[bytes]:
    decoder = SSEDecoder()
    for piece in pieces:
        for event in decoder.feed(piece):
            yield event.data


def _frames(case: Path, payloads: Iterable[bytes]) -> bytes:
    model = parse_messages_request((case / "client_request.json").read_bytes()).model
    return b"".join(drive_stream(payloads, model).chunks)


@pytest.mark.parametrize("case", SUITE.stream_cases(), ids=case_id)
def test_client_frames_each_name_their_event(case: Path) -> None:
    """The anthropic SDK skips SSE messages without ``event:`` (protocols.md §0.4)."""
    for event in SSEDecoder().feed(_frames(case, stream_payloads(case))):
        assert event.event is not None
        assert json.loads(event.data)["type"] == event.event


@pytest.mark.parametrize("case", SUITE.stream_cases(), ids=case_id)
def test_stream_replay_split_at_every_byte(case: Path) -> None:
    expected = _frames(case, stream_payloads(case))
    assert_every_split_replays(_sse(case), lambda p: _frames(case, _decoded(p)), expected)


@pytest.mark.parametrize("case", SUITE.stream_cases(), ids=case_id)
@RANDOM_REPLAYS
@given(cuts=RANDOM_CUTS)
def test_stream_replay_split_at_random_points(case: Path, cuts: list[float]) -> None:
    pieces = pieces_at(_sse(case), cuts)
    assert _frames(case, _decoded(pieces)) == _frames(case, stream_payloads(case))
