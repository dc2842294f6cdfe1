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
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from skyroute.transport.eventstream import EventStreamDecoder, encode_event, encode_exception
from skyroute.wire.bedrock import ConverseStreamTranslator, from_converse, to_converse
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
    openai_request_outputs,
    openai_response_outputs,
    openai_stream_outputs,
    openai_stream_request,
    pieces_at,
    read_json,
    validate_openai_client_output,
)

SUITE = GoldenSuite(
    folder=Path(__file__).parent / "openai__bedrock",
    produced=OPENAI_CLIENT_PRODUCED,
    stream_input="upstream_stream.json",
)
RESPONSE_ID = "chatcmpl-golden"
CREATED = 1764000000

StreamMessage = tuple[str, str, bytes]
"""(``event`` or ``exception``, the event or exception type, the JSON payload)."""


# --- running a case -------------------------------------------------------------------


def _stream_messages(case: Path) -> list[StreamMessage]:
    items = read_json(case / "upstream_stream.json")
    return [
        (item["type"], item["name"], json.dumps(item["payload"], separators=(",", ":")).encode())
        for item in items
    ]


def drive_stream(messages: Iterable[StreamMessage], include_usage: bool, model: str) -> StreamRun:
    """Upstream stream messages → canonical events → client chunks, as the gateway runs them."""
    translator = ConverseStreamTranslator()
    relay = Relay(OpenAIChunkWriter(RESPONSE_ID, model, CREATED, include_usage).write)
    for kind, name, payload in messages:
        if kind == "exception":
            return relay.result(translator.exception(name, payload))
        relay.send(translator.feed(name, payload))
    return relay.result()


def run_case(case: Path) -> dict[str, str]:
    """Everything the translation produces for one case: file name → text."""
    request = read_json(case / CLIENT_REQUEST)
    model = request["model"]
    out, canonical = openai_request_outputs(request, lambda c: to_converse(c, model_id=model))
    if canonical is None:
        return out
    if (case / "upstream_response.json").is_file():
        raw = (case / "upstream_response.json").read_bytes()
        response = from_converse(raw, model=model, response_id=RESPONSE_ID, created=CREATED)
        out |= openai_response_outputs(response)
    elif (case / "upstream_stream.json").is_file():
        run = drive_stream(_stream_messages(case), canonical.include_usage, model)
        out |= openai_stream_outputs(run)
    return out


@pytest.mark.parametrize("case", SUITE.cases(), ids=case_id)
def test_golden_case(case: Path) -> None:
    SUITE.check(case, run_case(case))


def test_golden_cases_cover_the_agreed_minimum() -> None:
    assert len(SUITE.cases()) >= 12
    assert {p.name for p in SUITE.cases()} >= {
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


@pytest.mark.parametrize("case", SUITE.cases(), ids=case_id)
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
    body = read_json(case / "upstream_request.json")
    params = {"modelId": "m", **_blobs_to_bytes(operation.input_shape, body)}
    report = ParamValidator().validate(params, operation.input_shape)
    assert not report.has_errors(), report.generate_report()
    sent = create_serializer("rest-json").serialize_to_request(params, operation)
    assert json.loads(sent["body"]) == body


@pytest.mark.parametrize("case", SUITE.cases(), ids=case_id)
def test_client_output_parses_with_the_openai_sdk(case: Path) -> None:
    validate_openai_client_output(case)


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


def _replay(case: Path, messages: Iterable[StreamMessage]) -> tuple[list[bytes], str | None]:
    request = openai_stream_request(case)
    return client_view(drive_stream(messages, request.include_usage, request.model))


@pytest.mark.parametrize("case", SUITE.stream_cases(), ids=case_id)
def test_stream_replay_split_at_every_byte(case: Path) -> None:
    expected = _replay(case, _stream_messages(case))
    assert_every_split_replays(_frames(case), lambda p: _replay(case, _decoded(p)), expected)


@pytest.mark.parametrize("case", SUITE.stream_cases(), ids=case_id)
@RANDOM_REPLAYS
@given(cuts=RANDOM_CUTS)
def test_stream_replay_split_at_random_points(case: Path, cuts: list[float]) -> None:
    pieces = pieces_at(_frames(case), cuts)
    assert _replay(case, _decoded(pieces)) == _replay(case, _stream_messages(case))
