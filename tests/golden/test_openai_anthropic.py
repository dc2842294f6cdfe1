"""Golden cases: an OpenAI chat request in, Anthropic Messages out, and the answer back.

Each folder under ``openai__anthropic/`` is one case (see README.md). The inputs are
``client_request.json``, an optional ``dialect.txt`` (``bedrock`` or ``vertex``; the
default is first-party ``anthropic``) and, for cases that reach the upstream, one of
``upstream_response.json`` (a Message), ``upstream_error.json`` (``{"status", "headers",
"body"}`` of an HTTP error) or ``upstream_stream.jsonl`` (one ``{"event", "data"}`` SSE
event per line). Every other file is what the translation produced and is compared, or
rewritten when ``SKYROUTE_REGENERATE_GOLDEN=1``.

Stream cases are also replayed as real SSE bytes through ``SSEDecoder``, split at every
byte and at random points: the client chunks must not change.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import given

from skyroute.core.errors import GatewayError
from skyroute.transport.sse import SSEDecoder, encode_event
from skyroute.wire.anthropic import (
    AnthropicStreamTranslator,
    Dialect,
    from_anthropic,
    map_anthropic_error,
    to_anthropic,
)
from skyroute.wire.openai_chat import OpenAIChunkWriter
from tests.golden.harness import (
    CLIENT_REQUEST,
    OPENAI_CLIENT_PRODUCED,
    RANDOM_CUTS,
    RANDOM_REPLAYS,
    GoldenSuite,
    Relay,
    StreamRun,
    assert_every_split_replays,
    case_id,
    client_view,
    openai_error_output,
    openai_request_outputs,
    openai_response_outputs,
    openai_stream_outputs,
    openai_stream_request,
    pieces_at,
    read_json,
    validate_openai_client_output,
)

SUITE = GoldenSuite(
    folder=Path(__file__).parent / "openai__anthropic",
    produced=OPENAI_CLIENT_PRODUCED,
    stream_input="upstream_stream.jsonl",
)
RESPONSE_ID = "chatcmpl-golden"
CREATED = 1764000000

StreamMessage = tuple[str, bytes]
"""(SSE event type, its data)."""


def dialect(case: Path) -> Dialect:
    path = case / "dialect.txt"
    name = path.read_text().strip() if path.is_file() else "anthropic"
    assert name in get_args(Dialect), name
    return name  # type: ignore[return-value]


# --- running a case -------------------------------------------------------------------


def stream_messages(case: Path) -> list[StreamMessage]:
    lines = (case / "upstream_stream.jsonl").read_text().splitlines()
    items = [json.loads(line) for line in lines if line.strip()]
    return [
        (item["event"], json.dumps(item["data"], ensure_ascii=False).encode()) for item in items
    ]


def drive_stream(messages: Iterable[StreamMessage], include_usage: bool, model: str) -> StreamRun:
    """Upstream SSE events → canonical events → client chunks, as the gateway runs them."""
    translator = AnthropicStreamTranslator()
    relay = Relay(OpenAIChunkWriter(RESPONSE_ID, model, CREATED, include_usage).write)
    try:
        for event_type, data in messages:
            relay.send(translator.feed(event_type, data))
    except GatewayError as exc:
        return relay.result(exc)
    return relay.result()


def _upstream_error(case: Path) -> GatewayError:
    spec = read_json(case / "upstream_error.json")
    headers = {k.lower(): v for k, v in spec["headers"].items()}
    body = json.dumps(spec["body"]).encode()
    return map_anthropic_error(spec["status"], headers.get, body, float(CREATED))


def run_case(case: Path) -> dict[str, str]:
    """Everything the translation produces for one case: file name → text."""
    request = read_json(case / CLIENT_REQUEST)
    model = request["model"]
    out, canonical = openai_request_outputs(
        request, lambda c: to_anthropic(c, model=model, dialect=dialect(case))
    )
    if canonical is None:
        return out
    if (case / "upstream_response.json").is_file():
        raw = (case / "upstream_response.json").read_bytes()
        response = from_anthropic(raw, model=model, response_id=RESPONSE_ID, created=CREATED)
        out |= openai_response_outputs(response)
    elif (case / "upstream_error.json").is_file():
        out |= openai_error_output(_upstream_error(case))
    elif (case / "upstream_stream.jsonl").is_file():
        out |= openai_stream_outputs(
            drive_stream(stream_messages(case), canonical.include_usage, model)
        )
    return out


@pytest.mark.parametrize("case", SUITE.cases(), ids=case_id)
def test_golden_case(case: Path) -> None:
    SUITE.check(case, run_case(case))


def test_golden_cases_cover_the_agreed_minimum() -> None:
    assert len(SUITE.cases()) >= 10
    assert {p.name for p in SUITE.cases()} >= {
        "plain_text",
        "system_and_developer",
        "image_data_url",
        "image_https_url",
        "tools_required",
        "tool_choice_named_no_parallel",
        "tool_choice_none",
        "tool_loop_results",
        "thinking_round_trip",
        "stop_sequences_max_tokens_length",
        "refusal",
        "cache_tokens_usage",
        "stream_text_with_usage",
        "stream_thinking_text_tool_use",
        "stream_overloaded_error",
    }


# --- oracles: the official SDKs -------------------------------------------------------


def _sent_by_anthropic_sdk(body: dict[str, Any]) -> dict[str, Any]:
    """The body the anthropic SDK sends for ``body``'s parameters (SDK 2.13+ takes
    temperature, top_p and top_k only through ``extra_body``, protocols.md §0.1)."""
    anthropic = pytest.importorskip("anthropic")
    httpx2 = pytest.importorskip("httpx2")
    sent: list[bytes] = []

    def handler(request: Any) -> Any:
        sent.append(request.content)
        if body.get("stream"):
            headers = {"content-type": "text/event-stream"}
            return httpx2.Response(200, headers=headers, content=b"")
        return httpx2.Response(200, json=_MINIMAL_MESSAGE)

    transport = httpx2.MockTransport(handler)
    client = anthropic.Anthropic(
        api_key="k", base_url="http://anthropic.test", max_retries=0,
        http_client=httpx2.Client(transport=transport),
    )  # fmt: skip
    extra = {k: body[k] for k in ("temperature", "top_p", "top_k") if k in body}
    params = {k: v for k, v in body.items() if k not in extra}
    # An explicit timeout: the SDK refuses large non-streamed max_tokens without one.
    client.messages.create(**params, extra_body=extra or None, timeout=60)
    return json.loads(sent[0])


_MINIMAL_MESSAGE = {
    "id": "msg_x", "type": "message", "role": "assistant", "model": "m", "content": [],
    "stop_reason": "end_turn", "stop_sequence": None,
    "usage": {"input_tokens": 1, "output_tokens": 1},
}  # fmt: skip


@pytest.mark.parametrize("case", SUITE.cases(), ids=case_id)
def test_upstream_request_is_what_the_anthropic_sdk_sends(case: Path) -> None:
    """The SDK, given the same parameters, sends the same JSON: the body is one the
    official client itself could have sent. Bedrock and Vertex bodies are compared as
    the first-party body they differ from by model, version and stream flag."""
    if not (case / "upstream_request.json").is_file():
        pytest.skip("the request is refused before it reaches Anthropic")
    body = read_json(case / "upstream_request.json")
    if body.pop("anthropic_version", None) is not None:
        body["model"] = read_json(case / CLIENT_REQUEST)["model"]
    assert _sent_by_anthropic_sdk(body) == body


@pytest.mark.parametrize("case", SUITE.cases(), ids=case_id)
def test_upstream_inputs_parse_with_the_anthropic_sdk(case: Path) -> None:
    """The hand-written upstream answers are ones Anthropic could send."""
    types = pytest.importorskip("anthropic.types")
    if (case / "upstream_response.json").is_file():
        types.Message.model_validate(read_json(case / "upstream_response.json"))
    if (case / "upstream_stream.jsonl").is_file():
        for line in (case / "upstream_stream.jsonl").read_text().splitlines():
            item = json.loads(line)
            if item["event"] not in ("ping", "error"):
                model = types.RawMessageStreamEvent
                event = (
                    pytest.importorskip("pydantic").TypeAdapter(model).validate_python(item["data"])
                )
                assert event.type == item["event"]


@pytest.mark.parametrize("case", SUITE.cases(), ids=case_id)
def test_client_output_parses_with_the_openai_sdk(case: Path) -> None:
    """Besides parsing, the openai SDK's own stream accumulator takes the chunks and, for
    a stream that ends cleanly, builds the final completion."""
    streaming = pytest.importorskip("openai.lib.streaming.chat")
    chunks = validate_openai_client_output(case)
    if (case / "client_stream.jsonl").is_file():
        state = streaming.ChatCompletionStreamState()
        for chunk in chunks:
            state.handle_chunk(chunk)
        if not (case / "expected_error.json").is_file():
            state.get_final_completion()


# --- stream replay through real SSE bytes ---------------------------------------------


def _sse(case: Path) -> bytes:
    return b"".join(encode_event(data, event) for event, data in stream_messages(case))


def _decoded(pieces: Iterable[bytes]) -> Iterator[StreamMessage]:
    decoder = SSEDecoder()
    for piece in pieces:
        for event in decoder.feed(piece):
            yield event.event or "message", event.data


def _run(case: Path, messages: Iterable[StreamMessage]) -> tuple[list[bytes], str | None]:
    request = openai_stream_request(case)
    return client_view(drive_stream(messages, request.include_usage, request.model))


@pytest.mark.parametrize("case", SUITE.stream_cases(), ids=case_id)
def test_stream_replay_split_at_every_byte(case: Path) -> None:
    expected = _run(case, stream_messages(case))
    assert_every_split_replays(_sse(case), lambda p: _run(case, _decoded(p)), expected)


@pytest.mark.parametrize("case", SUITE.stream_cases(), ids=case_id)
@RANDOM_REPLAYS
@given(cuts=RANDOM_CUTS)
def test_stream_replay_split_at_random_points(case: Path, cuts: list[float]) -> None:
    pieces = pieces_at(_sse(case), cuts)
    assert _run(case, _decoded(pieces)) == _run(case, stream_messages(case))
