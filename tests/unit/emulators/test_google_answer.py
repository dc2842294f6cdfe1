"""Gemini answers and refusals, and their response bodies and stream events. No sockets."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from skyroute.emulators.chat import EventKind
from skyroute.emulators.google_answer import (
    GeminiRejected,
    answer_gemini,
    check_generate,
    json_schema,
)
from skyroute.emulators.google_gemini import ResponseMeta, generate_body, generate_chunks
from skyroute.emulators.google_wire import GenerateContentRequest, camelized

META = ResponseMeta(model_version="m", response_id="r")


def request(raw: dict[str, Any]) -> GenerateContentRequest:
    return msgspec.convert(camelized(raw), GenerateContentRequest)


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


CALL = {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]}
RESULT = {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"x": 1}}}]}


@pytest.mark.parametrize(
    ("contents", "model", "message"),
    [
        ([], "gemini-2.5-flash", "contents is not specified"),
        ([{"role": "system", "parts": [{"text": "x"}]}], "gemini-2.5-flash", "valid role"),
        ([{"role": "user", "parts": []}], "gemini-2.5-flash", "must not be empty"),
        ([RESULT], "gemini-2.5-flash", "immediately after a function call turn"),
        ([user("q"), CALL, {"role": "user", "parts": [{"functionResponse": {"name": "g"}}]}],
         "gemini-2.5-flash", "does not match"),
        ([user("q"), CALL, RESULT], "gemini-3-pro-preview", "missing a thought_signature"),
    ],
)  # fmt: skip
def test_refusals(contents: list[Any], model: str, message: str) -> None:
    with pytest.raises(GeminiRejected, match=message):
        check_generate(request({"contents": contents}), model)


def test_gemini_3_checks_only_the_current_turn() -> None:
    old_turn = [user("q"), CALL, RESULT, {"role": "model", "parts": [{"text": "ok"}]}]
    check_generate(request({"contents": [*old_turn, user("next question")]}), "gemini-3-pro")
    signed = {
        "role": "model",
        "parts": [{"functionCall": {"name": "f"}, "thoughtSignature": "c2ln"}],
    }
    check_generate(request({"contents": [user("q"), signed, RESULT]}), "gemini-3-pro")


def test_google_schema_becomes_json_schema() -> None:
    schema = {
        "type": "OBJECT",
        "properties": {
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}},
            "n": {"anyOf": [{"type": "INTEGER"}, {"type": "NULL"}]},
        },
        "required": ["tags"],
    }
    assert json_schema(schema) == {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"type": "string"}},
            "n": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        },
        "required": ["tags"],
    }


def test_enum_answer_and_stop_sequences() -> None:
    config = {
        "responseMimeType": "text/x.enum",
        "responseSchema": {"type": "STRING", "enum": ["B", "A"]},
    }
    enum = answer_gemini(request({"contents": [user("x")], "generationConfig": config}), "m")
    assert enum.candidates[0].pieces == ["B"]
    stopped = {"stopSequences": [" beta"], "candidateCount": 2}
    answer = answer_gemini(
        request({"contents": [user("alpha beta")], "generationConfig": stopped}), "m"
    )
    assert ["".join(c.pieces) for c in answer.candidates] == ["You said: alpha"] * 2


def test_body_and_stream_agree() -> None:
    thinking = {"thinkingConfig": {"includeThoughts": True}}
    answer = answer_gemini(
        request({"contents": [user("hi there")], "generationConfig": thinking}), "m"
    )
    body = json.loads(generate_body(META, answer))
    events = list(generate_chunks(META, answer))
    assert all(e.data.startswith(b"data: {") and e.data.endswith(b"}\r\n\r\n") for e in events)
    assert [e.kind for e in events][-1] is EventKind.TAIL
    chunks = [json.loads(e.data[6:]) for e in events]
    assert "usageMetadata" not in chunks[0] and chunks[-1]["usageMetadata"] == body["usageMetadata"]
    parts = [p for c in chunks for p in c["candidates"][0]["content"]["parts"]]
    thought = "".join(p["text"] for p in parts if p.get("thought"))
    text = "".join(p["text"] for p in parts if not p.get("thought"))
    assert [thought, text] == [p["text"] for p in body["candidates"][0]["content"]["parts"]]
    assert body["usageMetadata"]["thoughtsTokenCount"] == len(thought.split())
