"""Reading, rewriting and probing OpenAI chat bodies."""

from __future__ import annotations

import contextlib
import json

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from skyroute.core.errors import InvalidRequest, UpstreamProtocolError
from skyroute.wire.openai import (
    chunk_carries_output,
    error_body,
    parse_chat_request,
    probe_chunk,
    probe_response,
    upstream_chat_body,
)


def body(**fields: object) -> bytes:
    base: dict[str, object] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    return json.dumps({**base, **fields}).encode()


def test_upstream_body_changes_only_model_and_stream_options() -> None:
    original = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.2,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "reasoning_effort": "high",
        "stream": True,
        "stream_options": {"include_obfuscation": False},
    }
    request = parse_chat_request(json.dumps(original).encode())
    sent = json.loads(upstream_chat_body(request, "deployment-x"))
    assert sent.pop("model") == "deployment-x"
    assert sent.pop("stream_options") == {"include_obfuscation": False, "include_usage": True}
    expected = {k: v for k, v in original.items() if k not in ("model", "stream_options")}
    assert sent == expected
    assert not request.include_usage  # the client did not ask; the gateway did


def test_plain_requests_get_no_stream_options() -> None:
    request = parse_chat_request(body())
    assert "stream_options" not in json.loads(upstream_chat_body(request, "x"))


def test_include_usage_is_remembered() -> None:
    request = parse_chat_request(body(stream=True, stream_options={"include_usage": True}))
    assert request.stream and request.include_usage


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_but_invalid_request(raw: bytes) -> None:
    with contextlib.suppress(InvalidRequest):
        parse_chat_request(raw)


def test_probe_response_reads_usage_and_rejects_garbage() -> None:
    usage = probe_response(
        b'{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}'
    )
    assert usage is not None and usage.tokens == 7
    with pytest.raises(UpstreamProtocolError):
        probe_response(b'{"choices": [')


def test_probe_chunk_sees_errors_finish_and_usage() -> None:
    assert probe_chunk(b'{"error":{"message":"x"}}').failed
    assert not probe_chunk(b'{"error":null,"choices":[]}').failed
    chunk = probe_chunk(b'{"choices":[{"index":1,"finish_reason":"stop","delta":{}}]}')
    assert chunk.choices[0].index == 1 and chunk.choices[0].finish_reason == "stop"
    with pytest.raises(ValueError):
        probe_chunk(b"{nope")


@pytest.mark.parametrize(
    ("chunk", "output"),
    [
        (b'{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}', False),
        (b'{"choices":[],"prompt_filter_results":[{"prompt_index":0}]}', False),
        (b'{"choices":[{"index":0,"delta":{"content":"Hi"}}]}', True),
        (b'{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c"}]}}]}', True),
        (b'{"choices":[{"index":0,"delta":{"reasoning":"hmm"}}]}', True),
        (b'{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}', True),
        (b'{"choices":[],"usage":{"prompt_tokens":1}}', True),
        (b'{"error":{"message":"boom"}}', True),
    ],
)
def test_what_counts_as_output(chunk: bytes, output: bool) -> None:
    assert chunk_carries_output(chunk) is output


def test_error_body_shape() -> None:
    error = InvalidRequest("Missing required parameter: 'model'.", param="model")
    assert msgspec.json.decode(error_body(error)) == {
        "error": {
            "message": "Missing required parameter: 'model'.",
            "type": "invalid_request_error",
            "param": "model",
            "code": None,
        }
    }
