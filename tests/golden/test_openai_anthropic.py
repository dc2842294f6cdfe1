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

import itertools
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, get_args

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyroute.core.chat import StreamEvent
from skyroute.core.errors import GatewayError
from skyroute.transport.sse import SSEDecoder, encode_event
from skyroute.wire.anthropic import (
    AnthropicStreamTranslator,
    Dialect,
    from_anthropic,
    map_anthropic_error,
    to_anthropic,
)
from skyroute.wire.openai_chat import OpenAIChunkWriter, response_to_openai, to_canonical

CASES_ROOT = Path(__file__).parent / "openai__anthropic"
REGENERATE = os.environ.get("SKYROUTE_REGENERATE_GOLDEN") == "1"
RESPONSE_ID = "chatcmpl-golden"
CREATED = 1764000000

PRODUCED = frozenset(
    {
        "canonical.json",
        "upstream_request.json",
        "canonical_response.json",
        "client_response.json",
        "canonical_stream.jsonl",
        "client_stream.jsonl",
        "expected_error.json",
    }
)

StreamMessage = tuple[str, bytes]
"""(SSE event type, its data)."""


def _cases() -> list[Path]:
    return sorted(p for p in CASES_ROOT.iterdir() if (p / "client_request.json").is_file())


def _stream_cases() -> list[Path]:
    return [p for p in _cases() if (p / "upstream_stream.jsonl").is_file()]


def dialect(case: Path) -> Dialect:
    path = case / "dialect.txt"
    name = path.read_text().strip() if path.is_file() else "anthropic"
    assert name in get_args(Dialect), name
    return name  # type: ignore[return-value]


# --- running a case -------------------------------------------------------------------


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def _jsonl(values: Iterable[Any]) -> str:
    return "".join(json.dumps(v, ensure_ascii=False) + "\n" for v in values)


def _error(exc: GatewayError) -> dict[str, Any]:
    return {
        "class": type(exc).__name__,
        "status": exc.status,
        "type": exc.error_type,
        "code": exc.code,
        "param": exc.param,
        "message": exc.message,
        "retry_same": exc.retry_same,
        "try_another": exc.try_another,
        "retry_after": exc.retry_after,
    }


def stream_messages(case: Path) -> list[StreamMessage]:
    lines = (case / "upstream_stream.jsonl").read_text().splitlines()
    items = [json.loads(line) for line in lines if line.strip()]
    return [
        (item["event"], json.dumps(item["data"], ensure_ascii=False).encode()) for item in items
    ]


def drive_stream(
    messages: Iterable[StreamMessage], include_usage: bool, model: str
) -> tuple[list[StreamEvent], list[bytes], GatewayError | None]:
    """Upstream SSE events → canonical events → client chunks, as the gateway runs them."""
    translator = AnthropicStreamTranslator()
    writer = OpenAIChunkWriter(RESPONSE_ID, model, CREATED, include_usage)
    events: list[StreamEvent] = []
    chunks: list[bytes] = []
    try:
        for event_type, data in messages:
            for event in translator.feed(event_type, data):
                events.append(event)
                chunks.extend(writer.write(event))
    except GatewayError as exc:
        return events, chunks, exc
    return events, chunks, None


def _upstream_error(case: Path) -> GatewayError:
    spec = json.loads((case / "upstream_error.json").read_text())
    headers = {k.lower(): v for k, v in spec["headers"].items()}
    body = json.dumps(spec["body"]).encode()
    return map_anthropic_error(spec["status"], headers.get, body, float(CREATED))


def run_case(case: Path) -> dict[str, str]:
    """Everything the translation produces for one case: file name → text."""
    request = json.loads((case / "client_request.json").read_text())
    out: dict[str, str] = {}
    try:
        canonical = to_canonical(request)
        out["canonical.json"] = _json(msgspec.to_builtins(canonical))
        upstream = to_anthropic(canonical, model=request["model"], dialect=dialect(case))
    except GatewayError as exc:
        out["expected_error.json"] = _json(_error(exc))
        return out
    out["upstream_request.json"] = _json(json.loads(upstream))
    if (case / "upstream_response.json").is_file():
        raw = (case / "upstream_response.json").read_bytes()
        response = from_anthropic(
            raw, model=request["model"], response_id=RESPONSE_ID, created=CREATED
        )
        out["canonical_response.json"] = _json(msgspec.to_builtins(response))
        out["client_response.json"] = _json(json.loads(response_to_openai(response)))
    elif (case / "upstream_error.json").is_file():
        out["expected_error.json"] = _json(_error(_upstream_error(case)))
    elif (case / "upstream_stream.jsonl").is_file():
        events, chunks, error = drive_stream(
            stream_messages(case), canonical.include_usage, request["model"]
        )
        out["canonical_stream.jsonl"] = _jsonl(msgspec.to_builtins(e) for e in events)
        out["client_stream.jsonl"] = _jsonl(json.loads(c) for c in chunks)
        if error is not None:
            out["expected_error.json"] = _json(_error(error))
    return out


def _parsed(name: str, text: str) -> Any:
    if name.endswith(".jsonl"):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)


@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.name)
def test_golden_case(case: Path) -> None:
    produced = run_case(case)
    stale = {p.name for p in case.iterdir()} & (PRODUCED - produced.keys())
    if REGENERATE:
        for name, text in produced.items():
            (case / name).write_text(text)
        for name in stale:
            (case / name).unlink()
        return
    assert not stale, f"expected files the translation no longer produces: {sorted(stale)}"
    for name, text in produced.items():
        path = case / name
        assert path.is_file(), (
            f"{case.name}/{name} is missing; run with SKYROUTE_REGENERATE_GOLDEN=1"
        )
        assert _parsed(name, text) == _parsed(name, path.read_text()), f"{case.name}/{name}"


def test_golden_cases_cover_the_agreed_minimum() -> None:
    assert len(_cases()) >= 10
    assert {p.name for p in _cases()} >= {
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


@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.name)
def test_upstream_request_is_what_the_anthropic_sdk_sends(case: Path) -> None:
    """The SDK, given the same parameters, sends the same JSON: the body is one the
    official client itself could have sent. Bedrock and Vertex bodies are compared as
    the first-party body they differ from by model, version and stream flag."""
    if not (case / "upstream_request.json").is_file():
        pytest.skip("the request is refused before it reaches Anthropic")
    body = json.loads((case / "upstream_request.json").read_text())
    if body.pop("anthropic_version", None) is not None:
        body["model"] = json.loads((case / "client_request.json").read_text())["model"]
    assert _sent_by_anthropic_sdk(body) == body


@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.name)
def test_upstream_inputs_parse_with_the_anthropic_sdk(case: Path) -> None:
    """The hand-written upstream answers are ones Anthropic could send."""
    types = pytest.importorskip("anthropic.types")
    if (case / "upstream_response.json").is_file():
        types.Message.model_validate(json.loads((case / "upstream_response.json").read_text()))
    if (case / "upstream_stream.jsonl").is_file():
        for line in (case / "upstream_stream.jsonl").read_text().splitlines():
            item = json.loads(line)
            if item["event"] not in ("ping", "error"):
                model = types.RawMessageStreamEvent
                event = (
                    pytest.importorskip("pydantic").TypeAdapter(model).validate_python(item["data"])
                )
                assert event.type == item["event"]


@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.name)
def test_client_output_parses_with_the_openai_sdk(case: Path) -> None:
    types = pytest.importorskip("openai.types.chat")
    streaming = pytest.importorskip("openai.lib.streaming.chat")
    if (case / "client_response.json").is_file():
        completion = json.loads((case / "client_response.json").read_text())
        types.ChatCompletion.model_validate(completion)
    if (case / "client_stream.jsonl").is_file():
        state = streaming.ChatCompletionStreamState()
        for line in (case / "client_stream.jsonl").read_text().splitlines():
            state.handle_chunk(types.ChatCompletionChunk.model_validate(json.loads(line)))
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
    request = json.loads((case / "client_request.json").read_text())
    include_usage = to_canonical(request).include_usage
    _, chunks, error = drive_stream(messages, include_usage, request["model"])
    return chunks, None if error is None else repr(error)


@pytest.mark.parametrize("case", _stream_cases(), ids=lambda p: p.name)
def test_stream_replay_split_at_every_byte(case: Path) -> None:
    data = _sse(case)
    expected = _run(case, stream_messages(case))
    assert _run(case, _decoded([data])) == expected
    assert _run(case, _decoded([data[i : i + 1] for i in range(len(data))])) == expected
    for cut in range(len(data) + 1):
        assert _run(case, _decoded([data[:cut], data[cut:]])) == expected, f"split at {cut}"


@pytest.mark.parametrize("case", _stream_cases(), ids=lambda p: p.name)
@settings(max_examples=50, deadline=None)
@given(cuts=st.lists(st.floats(min_value=0, max_value=1), max_size=12))
def test_stream_replay_split_at_random_points(case: Path, cuts: list[float]) -> None:
    data = _sse(case)
    points = sorted({int(c * len(data)) for c in cuts})
    bounds = [0, *points, len(data)]
    pieces = [data[a:b] for a, b in itertools.pairwise(bounds)]
    assert _run(case, _decoded(pieces)) == _run(case, stream_messages(case))
