"""Golden cases: an OpenAI chat request in, Bedrock Converse out, and the answer back.

Each folder under ``openai__bedrock/`` is one case (see README.md). The inputs are
``client_request.json`` and, for cases that reach Bedrock, ``upstream_response.json`` or
``upstream_stream.json``; every other file is what the translation produced and is
compared, or rewritten when ``SKYROUTE_REGENERATE_GOLDEN=1``.

Stream cases are also replayed as real AWS event-stream frames, split at every byte and
at random points: the client chunks must not change.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyroute.core.chat import StreamEvent
from skyroute.core.errors import GatewayError
from skyroute.transport.eventstream import EventStreamDecoder, encode_event, encode_exception
from skyroute.wire.bedrock import ConverseStreamTranslator, from_converse, to_converse
from skyroute.wire.openai_chat import OpenAIChunkWriter, response_to_openai, to_canonical

CASES_ROOT = Path(__file__).parent / "openai__bedrock"
REGENERATE = os.environ.get("SKYROUTE_REGENERATE_GOLDEN") == "1"
RESPONSE_ID = "chatcmpl-golden"
CREATED = 1764000000

INPUTS = frozenset({"client_request.json", "upstream_response.json", "upstream_stream.json"})
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

StreamMessage = tuple[str, str, bytes]
"""(``event`` or ``exception``, the event or exception type, the JSON payload)."""


def _cases() -> list[Path]:
    return sorted(p for p in CASES_ROOT.iterdir() if (p / "client_request.json").is_file())


def _stream_cases() -> list[Path]:
    return [p for p in _cases() if (p / "upstream_stream.json").is_file()]


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


def _stream_messages(case: Path) -> list[StreamMessage]:
    items = json.loads((case / "upstream_stream.json").read_text())
    return [
        (item["type"], item["name"], json.dumps(item["payload"], separators=(",", ":")).encode())
        for item in items
    ]


def drive_stream(
    messages: Iterable[StreamMessage], include_usage: bool, model: str
) -> tuple[list[StreamEvent], list[bytes], GatewayError | None]:
    """Upstream stream messages → canonical events → client chunks, as the gateway runs them."""
    translator = ConverseStreamTranslator()
    writer = OpenAIChunkWriter(RESPONSE_ID, model, CREATED, include_usage)
    events: list[StreamEvent] = []
    chunks: list[bytes] = []
    for kind, name, payload in messages:
        if kind == "exception":
            return events, chunks, translator.exception(name, payload)
        for event in translator.feed(name, payload):
            events.append(event)
            chunks.extend(writer.write(event))
    return events, chunks, None


def run_case(case: Path) -> dict[str, str]:
    """Everything the translation produces for one case: file name → text."""
    request = json.loads((case / "client_request.json").read_text())
    out: dict[str, str] = {}
    try:
        canonical = to_canonical(request)
        out["canonical.json"] = _json(msgspec.to_builtins(canonical))
        upstream = to_converse(canonical, model_id=request["model"])
    except GatewayError as exc:
        out["expected_error.json"] = _json(_error(exc))
        return out
    out["upstream_request.json"] = _json(json.loads(upstream))
    if (case / "upstream_response.json").is_file():
        raw = (case / "upstream_response.json").read_bytes()
        response = from_converse(
            raw, model=request["model"], response_id=RESPONSE_ID, created=CREATED
        )
        out["canonical_response.json"] = _json(msgspec.to_builtins(response))
        out["client_response.json"] = _json(json.loads(response_to_openai(response)))
    elif (case / "upstream_stream.json").is_file():
        events, chunks, error = drive_stream(
            _stream_messages(case), canonical.include_usage, request["model"]
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
    assert len(_cases()) >= 12
    assert {p.name for p in _cases()} >= {
        "plain_text",
        "image_https_url_refused",
        "stream_text_with_usage",
        "stream_throttling_exception",
    }


# --- oracles: the official SDKs' own models -------------------------------------------


def _blobs_to_bytes(shape: Any, value: Any) -> Any:
    """Converse JSON → botocore params: base64 blobs become bytes, the rest is kept."""
    if shape.type_name == "blob":
        return base64.b64decode(value)
    if shape.type_name == "structure" and not shape.metadata.get("document"):
        return {k: _blobs_to_bytes(shape.members[k], v) for k, v in value.items()}
    if shape.type_name == "list":
        return [_blobs_to_bytes(shape.member, v) for v in value]
    return value


@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.name)
def test_upstream_request_is_what_boto3_would_send(case: Path) -> None:
    """botocore validates the body against the Converse model and re-serialises it to the
    same JSON, so the body is one boto3 itself could have sent."""
    botocore_session = pytest.importorskip("botocore.session")
    from botocore.serialize import create_serializer
    from botocore.validate import ParamValidator

    if not (case / "upstream_request.json").is_file():
        pytest.skip("the request is refused before it reaches Bedrock")
    operation = botocore_session.get_session().get_service_model("bedrock-runtime")
    operation = operation.operation_model("Converse")
    body = json.loads((case / "upstream_request.json").read_text())
    params = {"modelId": "m", **_blobs_to_bytes(operation.input_shape, body)}
    report = ParamValidator().validate(params, operation.input_shape)
    assert not report.has_errors(), report.generate_report()
    sent = create_serializer("rest-json").serialize_to_request(params, operation)
    assert json.loads(sent["body"]) == body


@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.name)
def test_client_output_parses_with_the_openai_sdk(case: Path) -> None:
    types = pytest.importorskip("openai.types.chat")
    if (case / "client_response.json").is_file():
        completion = json.loads((case / "client_response.json").read_text())
        types.ChatCompletion.model_validate(completion)
    if (case / "client_stream.jsonl").is_file():
        for line in (case / "client_stream.jsonl").read_text().splitlines():
            types.ChatCompletionChunk.model_validate(json.loads(line))


# --- stream replay through real event-stream frames -----------------------------------


def _frames(case: Path) -> bytes:
    return b"".join(
        encode_exception(name, payload) if kind == "exception" else encode_event(name, payload)
        for kind, name, payload in _stream_messages(case)
    )


def _decoded(pieces: Iterable[bytes]) -> Iterator[StreamMessage]:
    decoder = EventStreamDecoder(max_message_bytes=1 << 20)
    for piece in pieces:
        for message in decoder.feed(piece):
            if message.message_type == "exception":
                yield "exception", message.exception_type or "", message.payload
            else:
                yield "event", message.event_type or "", message.payload
    decoder.finish()


def _replay(case: Path, pieces: Iterable[bytes]) -> tuple[list[bytes], str | None]:
    request = json.loads((case / "client_request.json").read_text())
    include_usage = to_canonical(request).include_usage
    _, chunks, error = drive_stream(_decoded(pieces), include_usage, request["model"])
    return chunks, None if error is None else repr(error)


def _expected(case: Path) -> tuple[list[bytes], str | None]:
    request = json.loads((case / "client_request.json").read_text())
    include_usage = to_canonical(request).include_usage
    _, chunks, error = drive_stream(_stream_messages(case), include_usage, request["model"])
    return chunks, None if error is None else repr(error)


@pytest.mark.parametrize("case", _stream_cases(), ids=lambda p: p.name)
def test_stream_replay_split_at_every_byte(case: Path) -> None:
    data = _frames(case)
    expected = _expected(case)
    assert _replay(case, [data]) == expected
    assert _replay(case, [data[i : i + 1] for i in range(len(data))]) == expected
    for cut in range(len(data) + 1):
        assert _replay(case, [data[:cut], data[cut:]]) == expected, f"split at byte {cut}"


@pytest.mark.parametrize("case", _stream_cases(), ids=lambda p: p.name)
@settings(max_examples=50, deadline=None)
@given(cuts=st.lists(st.floats(min_value=0, max_value=1), max_size=12))
def test_stream_replay_split_at_random_points(case: Path, cuts: list[float]) -> None:
    data = _frames(case)
    points = sorted({int(c * len(data)) for c in cuts})
    bounds = [0, *points, len(data)]
    pieces = [data[a:b] for a, b in itertools.pairwise(bounds)]
    assert _replay(case, pieces) == _expected(case)
