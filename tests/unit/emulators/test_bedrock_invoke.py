"""InvokeModel with Anthropic bodies: Bedrock's schema texts, and the `chunk` stream."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from skyroute.emulators.bedrock_answer import answer_bedrock
from skyroute.emulators.bedrock_invoke import (
    InvokeRejected,
    invoke_body,
    invoke_events,
    read_invoke,
)
from skyroute.transport.eventstream import EventStreamDecoder

BASE: dict[str, Any] = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "alpha beta"}],
}


def rejection(document: object) -> str:
    with pytest.raises(InvokeRejected) as caught:
        read_invoke(json.dumps(document).encode())
    return str(caught.value)


def test_extraneous_and_missing_keys_in_bedrock_words() -> None:
    assert rejection({**BASE, "model": "x"}) == (
        "Malformed input request: #: extraneous key [model] is not permitted, please reformat "
        "your input and try again."
    )
    without = {k: v for k, v in BASE.items() if k != "anthropic_version"}
    assert "required key [anthropic_version] not found" in rejection(without)
    assert "expected type: JSONObject" in rejection([1])


def test_messages_are_checked() -> None:
    assert "at least one message" in rejection({**BASE, "messages": []})
    first = [{"role": "assistant", "content": "hi"}]
    assert 'first message must use the "user" role' in rejection({**BASE, "messages": first})
    assert "$.max_tokens" in rejection({**BASE, "max_tokens": "many"})


def test_body_is_an_anthropic_message() -> None:
    _, chat = read_invoke(json.dumps({**BASE, "stop_sequences": [" beta"]}).encode())
    message = json.loads(invoke_body(answer_bedrock(chat, thinking=False), "msg_bdrk_01x", "m"))
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["content"] == [{"type": "text", "text": "You said: alpha"}]
    assert (message["stop_reason"], message["stop_sequence"]) == ("stop_sequence", " beta")


def test_stream_is_anthropic_events_in_chunks() -> None:
    tools = [
        {"name": "f", "input_schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}
    ]
    document = {**BASE, "tools": tools, "tool_choice": {"type": "tool", "name": "f"}}
    _, chat = read_invoke(json.dumps(document).encode())
    frames = b"".join(
        e.data for e in invoke_events(answer_bedrock(chat, thinking=False), "id", "m")
    )
    messages = EventStreamDecoder().feed(frames)
    assert {m.event_type for m in messages} == {"chunk"}
    events = [json.loads(base64.b64decode(json.loads(m.payload)["bytes"])) for m in messages]
    types = [e["type"] for e in events]
    assert types[:2] == ["message_start", "content_block_start"]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert events[1]["content_block"] == {
        "type": "tool_use", "id": events[1]["content_block"]["id"], "name": "f", "input": {}
    }  # fmt: skip
    partial = "".join(
        e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"
    )
    assert json.loads(partial) == {"a": 1}
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert "amazon-bedrock-invocationMetrics" in events[-1]
