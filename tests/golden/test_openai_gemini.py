"""Golden cases: an OpenAI chat request in, Gemini generateContent out, and the answer back.

Each folder under ``openai__gemini/`` is one case. The inputs are ``client_request.json``
and, for cases that reach Gemini, ``upstream_response.json`` (a 200 body, or a Google
error body whose ``error.code`` is the HTTP status) or ``upstream_stream.jsonl`` (one SSE
``data:`` payload per line); every other file is what the translation produced and is
compared, or rewritten when ``SKYROUTE_REGENERATE_GOLDEN=1``. Each case answers with the
response id ``chatcmpl-<case name>``, so tool-call ids differ from case to case as they
do from turn to turn.

Stream cases are also replayed as real SSE bytes through ``SSEDecoder``, split at every
byte and at random points: the client chunks must not change.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skyroute.core.errors import GatewayError
from skyroute.transport.sse import SSEDecoder
from skyroute.wire.gemini import GeminiStreamTranslator, from_gemini, map_google_error, to_gemini
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

CASES_ROOT = Path(__file__).parent / "openai__gemini"
SUITE = GoldenSuite(
    folder=CASES_ROOT, produced=OPENAI_CLIENT_PRODUCED, stream_input="upstream_stream.jsonl"
)
CREATED = 1764000000


def response_id(case: Path) -> str:
    return f"chatcmpl-{case.name}"


# --- running a case -------------------------------------------------------------------


def stream_payloads(case: Path) -> list[bytes]:
    """The SSE ``data:`` payloads of a stream case, one per line of the file."""
    text = (case / "upstream_stream.jsonl").read_text()
    return [line.encode() for line in text.splitlines() if line.strip()]


def drive_stream(payloads: Iterable[bytes], include_usage: bool, model: str, rid: str) -> StreamRun:
    """Upstream payloads → canonical events → client chunks, as the gateway runs them."""
    translator = GeminiStreamTranslator(rid)
    relay = Relay(OpenAIChunkWriter(rid, model, CREATED, include_usage).write)
    try:
        for payload in payloads:
            relay.send(translator.feed(payload))
        relay.send(translator.close())
    except GatewayError as exc:
        return relay.result(exc)
    return relay.result()


def _upstream_answer(case: Path, model: str) -> dict[str, str]:
    raw = (case / "upstream_response.json").read_bytes()
    body = json.loads(raw)
    if isinstance(body, list) or "error" in body:
        envelope = body[0] if isinstance(body, list) else body
        return openai_error_output(map_google_error(envelope["error"]["code"], raw))
    try:
        response = from_gemini(raw, model=model, response_id=response_id(case), created=CREATED)
    except GatewayError as exc:
        return openai_error_output(exc)
    return openai_response_outputs(response)


def run_case(case: Path) -> dict[str, str]:
    """Everything the translation produces for one case: file name → text."""
    request = read_json(case / CLIENT_REQUEST)
    out, canonical = openai_request_outputs(request, to_gemini)
    if canonical is None:
        return out
    if (case / "upstream_response.json").is_file():
        out |= _upstream_answer(case, request["model"])
    elif (case / "upstream_stream.jsonl").is_file():
        run = drive_stream(
            stream_payloads(case), canonical.include_usage, request["model"], response_id(case)
        )
        out |= openai_stream_outputs(run)
    return out


@pytest.mark.parametrize("case", SUITE.cases(), ids=case_id)
def test_golden_case(case: Path) -> None:
    SUITE.check(case, run_case(case))


def test_golden_cases_cover_the_agreed_minimum() -> None:
    assert len(SUITE.cases()) >= 12
    assert {p.name for p in SUITE.cases()} >= {
        "plain_text",
        "system_and_developer",
        "multi_turn_merge",
        "image_data_url",
        "tools_required",
        "tool_loop_1_call",
        "tool_loop_2_second_call",
        "tool_loop_3_answer",
        "parallel_function_calls",
        "json_schema",
        "reasoning_thoughts",
        "max_tokens",
        "safety_finish",
        "prompt_blocked",
        "cached_tokens",
        "stream_text_with_usage",
        "stream_function_call",
        "stream_mid_stream_error",
        "error_429_retry_info",
    }


# --- the tool loop: ids issued in one turn come back in the next ----------------------


def _tool_call_ids(client_response: Path) -> list[str]:
    message = json.loads(client_response.read_text())["choices"][0]["message"]
    return [call["id"] for call in message["tool_calls"]]


def _sent_signatures(upstream_request: Path) -> list[str | None]:
    contents = json.loads(upstream_request.read_text())["contents"]
    return [
        part.get("thoughtSignature")
        for turn in contents
        for part in turn["parts"]
        if "functionCall" in part
    ]


def _returned_signatures(upstream_response: Path) -> list[str | None]:
    parts = json.loads(upstream_response.read_text())["candidates"][0]["content"]["parts"]
    return [part.get("thoughtSignature") for part in parts if "functionCall" in part]


def test_tool_loop_carries_thought_signatures_across_two_turns() -> None:
    """Each turn's client request holds the ids the gateway issued the turn before, and
    the signatures Gemini put on its calls go back on the same calls."""
    first, second, third = (
        CASES_ROOT / f"tool_loop_{n}" for n in ("1_call", "2_second_call", "3_answer")
    )
    issued = _tool_call_ids(first / "client_response.json") + _tool_call_ids(
        second / "client_response.json"
    )
    history = json.loads((third / "client_request.json").read_text())["messages"]
    sent_back = [c["id"] for m in history for c in m.get("tool_calls", [])]
    results = [m["tool_call_id"] for m in history if m["role"] == "tool"]
    assert sent_back == issued and results == issued
    signed = _returned_signatures(first / "upstream_response.json") + _returned_signatures(
        second / "upstream_response.json"
    )
    assert all(signed)
    assert _sent_signatures(third / "upstream_request.json") == signed
    assert _sent_signatures(second / "upstream_request.json") == signed[:1]


# --- oracles: the official SDKs' own models -------------------------------------------

_BASE64_KEYS = frozenset({"data", "thoughtSignature"})


def _bytes_decoded(value: Any, key: str = "") -> Any:
    """base64 fields → bytes, so standard and URL-safe spellings compare equal."""
    if isinstance(value, dict):
        return {k: _bytes_decoded(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_bytes_decoded(v, key) for v in value]
    if key in _BASE64_KEYS and isinstance(value, str):
        return base64.urlsafe_b64decode(value.replace("+", "-").replace("/", "_"))
    return value


@pytest.mark.parametrize("case", SUITE.cases(), ids=case_id)
def test_upstream_request_is_what_google_genai_would_write(case: Path) -> None:
    """google-genai's models forbid unknown fields; each piece of the body must validate
    and serialise back to the same JSON (camelCase aliases, as the SDK names them)."""
    types = pytest.importorskip("google.genai.types")
    if not (case / "upstream_request.json").is_file():
        pytest.skip("the request is refused before it reaches Gemini")
    body = read_json(case / "upstream_request.json")
    models = {
        "contents": types.Content,
        "systemInstruction": types.Content,
        "tools": types.Tool,
        "toolConfig": types.ToolConfig,
        "generationConfig": types.GenerationConfig,
    }
    assert set(body) <= set(models)
    for key, value in body.items():
        for item in value if isinstance(value, list) else [value]:
            parsed = models[key].model_validate(item)
            again = parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
            assert _bytes_decoded(again) == _bytes_decoded(item), key


@pytest.mark.parametrize("case", SUITE.cases(), ids=case_id)
def test_upstream_fixtures_parse_with_google_genai(case: Path) -> None:
    """The hand-written Gemini answers are ones the official SDK accepts."""
    types = pytest.importorskip("google.genai.types")
    bodies: list[Any] = []
    if (case / "upstream_response.json").is_file():
        bodies.append(read_json(case / "upstream_response.json"))
    if (case / "upstream_stream.jsonl").is_file():
        bodies.extend(json.loads(p) for p in stream_payloads(case))
    for body in bodies:
        if isinstance(body, list) or "error" in body:
            envelope = body[0] if isinstance(body, list) else body
            assert set(envelope["error"]) <= {"code", "message", "status", "details", "errors"}
            continue
        types.GenerateContentResponse.model_validate(body)


@pytest.mark.parametrize("case", SUITE.cases(), ids=case_id)
def test_client_output_parses_with_the_openai_sdk(case: Path) -> None:
    validate_openai_client_output(case)


# --- stream replay through real SSE bytes ---------------------------------------------


def _sse(case: Path, newline: bytes) -> bytes:
    """The stream as Google frames it: ``data: <json>`` and a blank line per payload."""
    return b"".join(b"data: " + p + newline + newline for p in stream_payloads(case))


def _decoded(pieces: Iterable[bytes]) -> Iterator[bytes]:
    decoder = SSEDecoder()
    for piece in pieces:
        for event in decoder.feed(piece):
            yield event.data


def _run(case: Path, payloads: Iterable[bytes]) -> tuple[list[bytes], str | None]:
    request = openai_stream_request(case)
    run = drive_stream(payloads, request.include_usage, request.model, response_id(case))
    return client_view(run)


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("case", SUITE.stream_cases(), ids=case_id)
def test_stream_replay_split_at_every_byte(case: Path, newline: bytes) -> None:
    expected = _run(case, stream_payloads(case))
    assert_every_split_replays(_sse(case, newline), lambda p: _run(case, _decoded(p)), expected)


@pytest.mark.parametrize("case", SUITE.stream_cases(), ids=case_id)
@RANDOM_REPLAYS
@given(cuts=RANDOM_CUTS, crlf=st.booleans())
def test_stream_replay_split_at_random_points(case: Path, cuts: list[float], crlf: bool) -> None:
    pieces = pieces_at(_sse(case, b"\r\n" if crlf else b"\n"), cuts)
    assert _run(case, _decoded(pieces)) == _run(case, stream_payloads(case))
