"""Converse bodies: Bedrock's validation texts, and the answer as a body and as frames."""

from __future__ import annotations

import json
from typing import Any

import pytest

from skyroute.emulators.bedrock_answer import answer_bedrock, blocked
from skyroute.emulators.bedrock_converse import (
    ConverseRejected,
    converse_body,
    converse_events,
    read_converse,
)
from skyroute.emulators.chat import EventKind
from skyroute.transport.eventstream import EventStreamDecoder

USER = [{"role": "user", "content": [{"text": "alpha beta"}]}]
TOOLS = {
    "tools": [
        {
            "toolSpec": {
                "name": "lookup",
                "inputSchema": {
                    "json": {"type": "object", "properties": {"q": {"type": "string"}}}
                },
            }
        }
    ],
    "toolChoice": {"any": {}},
}
THINKING = {"thinking": {"type": "enabled", "budget_tokens": 1024}}


def body(**fields: Any) -> bytes:
    return json.dumps({"messages": USER, **fields}).encode()


def rejection(data: bytes) -> str:
    with pytest.raises(ConverseRejected) as caught:
        read_converse(data)
    return str(caught.value)


def decoded_events(**fields: Any) -> list[tuple[str, dict[str, Any]]]:
    _, chat = read_converse(body(**fields))
    thinking = "additionalModelRequestFields" in fields
    frames = b"".join(e.data for e in converse_events(answer_bedrock(chat, thinking=thinking)))
    return [(m.event_type or "", json.loads(m.payload)) for m in EventStreamDecoder().feed(frames)]


def test_unknown_top_level_field_is_named() -> None:
    assert "unknown field `temperature`" in rejection(body(temperature=1))


def test_a_content_block_sets_exactly_one_member() -> None:
    messages = [{"role": "user", "content": [{"text": "a", "image": None}, {}]}]
    assert "exactly one member" in rejection(json.dumps({"messages": messages}).encode())


def test_type_errors_name_the_json_path() -> None:
    messages = [{"role": "system", "content": [{"text": "a"}]}]
    assert "$.messages[0].role" in rejection(json.dumps({"messages": messages}).encode())


def test_output_schema_must_be_a_json_object_string() -> None:
    structure = {"jsonSchema": {"schema": "{not json", "name": "x"}}
    config = {"textFormat": {"type": "json_schema", "structure": structure}}
    assert "not a valid JSON object" in rejection(body(outputConfig=config))


SMALL_BUDGET = {"thinking": {"type": "enabled", "budget_tokens": 10}}


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"additionalModelRequestFields": SMALL_BUDGET}, "1024"),
        (
            {"additionalModelRequestFields": THINKING, "inferenceConfig": {"maxTokens": 1024}},
            "max_tokens",
        ),
        ({"additionalModelRequestFields": THINKING, "toolConfig": TOOLS}, "forces tool use"),
    ],
    ids=["budget", "max-tokens", "forced-tool"],
)
def test_thinking_requests_are_checked(fields: dict[str, Any], fragment: str) -> None:
    assert fragment in rejection(body(**fields))


def test_text_stream_has_no_block_start_and_ends_with_metadata() -> None:
    events = decoded_events()
    names = [name for name, _ in events]
    assert names == [
        "messageStart",
        *["contentBlockDelta"] * 4,
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    assert all(payload["p"] for _, payload in events)  # Bedrock's padding member
    assert events[-1][1]["usage"]["outputTokens"] == 4


def test_reasoning_block_precedes_the_text_block() -> None:
    events = decoded_events(additionalModelRequestFields=THINKING)
    indices = [p["contentBlockIndex"] for n, p in events if n == "contentBlockDelta"]
    assert indices == sorted(indices) and set(indices) == {0, 1}
    signature = [p for n, p in events if n == "contentBlockDelta" and p["contentBlockIndex"] == 0]
    assert "signature" in signature[-1]["delta"]["reasoningContent"]


def test_tool_block_opens_with_its_id_and_name() -> None:
    events = decoded_events(toolConfig=TOOLS)
    start = next(p for n, p in events if n == "contentBlockStart")
    assert start["start"]["toolUse"]["name"] == "lookup"
    fragments = [p["delta"]["toolUse"]["input"] for n, p in events if n == "contentBlockDelta"]
    assert json.loads("".join(fragments)) == {"q": "example"}


def test_event_kinds_mark_what_a_fault_may_strike() -> None:
    _, chat = read_converse(body())
    kinds = [event.kind for event in converse_events(answer_bedrock(chat, thinking=False))]
    assert kinds[0] is EventKind.PRELUDE and kinds[-1] is EventKind.DONE
    assert kinds.count(EventKind.CONTENT) == 4


def test_guardrail_body() -> None:
    _, chat = read_converse(body())
    document = json.loads(converse_body(blocked(answer_bedrock(chat, thinking=False))))
    assert document["stopReason"] == "guardrail_intervened"
    assert document["output"]["message"]["role"] == "assistant"
