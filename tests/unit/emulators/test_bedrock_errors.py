"""Bedrock's error shapes, and how status and stream_error faults map onto them."""

from __future__ import annotations

import json

import pytest

from skyroute.emulators.bedrock_answer import StopReason, answer_bedrock
from skyroute.emulators.bedrock_errors import (
    status_fault_reply,
    stream_exception,
    stream_fault_reply,
)
from skyroute.emulators.faults import StatusFault, StreamErrorFault
from skyroute.emulators.openai_wire import ChatRequest, Message


def error_type(status: int, code: str | None = None) -> str:
    reply = status_fault_reply(StatusFault(status=status, code=code, retry_after=5))
    headers = dict(reply.headers)
    assert "retry-after" not in headers  # Bedrock sends none
    return headers["x-amzn-ErrorType"].split(":")[0]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (429, "ThrottlingException"),
        (503, "ServiceUnavailableException"),
        (424, "ModelErrorException"),
        (502, "InternalServerException"),  # any other 5xx
        (418, "ValidationException"),  # any other 4xx
    ],
)
def test_status_maps_to_a_bedrock_type(status: int, expected: str) -> None:
    assert error_type(status) == expected


def test_code_and_message_override() -> None:
    assert error_type(429, "ModelNotReadyException") == "ModelNotReadyException"
    reply = status_fault_reply(StatusFault(status=500, message="boom"))
    assert json.loads(reply.body) == {"message": "boom"}


@pytest.mark.parametrize(
    ("code", "member"),
    [
        (None, "throttlingException"),
        ("ThrottlingException", "throttlingException"),
        ("internalServerException", "internalServerException"),
        ("no_such_thing", "throttlingException"),
    ],
)
def test_stream_exception_member_names(code: str | None, member: str) -> None:
    name, payload = stream_exception(StreamErrorFault(code=code))
    assert name == member
    assert json.loads(payload)["message"] != StreamErrorFault().message  # Bedrock's own text


def test_model_stream_error_carries_the_original_status() -> None:
    _, payload = stream_exception(StreamErrorFault(code="modelStreamErrorException", message="m"))
    assert json.loads(payload) == {
        "message": "m", "originalStatusCode": 500, "originalMessage": "m"
    }  # fmt: skip
    reply = stream_fault_reply(StreamErrorFault(code="modelStreamErrorException", message="m"))
    assert reply.status == 424 and json.loads(reply.body) == {"message": "m"}


def _chat(stop: list[str] | None = None, max_tokens: int | None = None) -> ChatRequest:
    messages = [Message("user", "alpha beta gamma")]
    return ChatRequest(messages=messages, stop=stop, max_tokens=max_tokens)


def test_stop_reasons_of_the_answer() -> None:
    assert answer_bedrock(_chat(), thinking=False).stop is StopReason.END_TURN
    assert answer_bedrock(_chat(max_tokens=2), thinking=False).stop is StopReason.MAX_TOKENS
    stopped = answer_bedrock(_chat(stop=["zzz", " gamma"]), thinking=False)
    assert (stopped.stop, stopped.stop_sequence, stopped.text) == (
        StopReason.STOP_SEQUENCE, " gamma", "You said: alpha beta"
    )  # fmt: skip
    unmatched = answer_bedrock(_chat(stop=["zzz"]), thinking=False)
    assert unmatched.stop is StopReason.END_TURN


def test_thinking_words_count_as_output_but_not_against_the_limit() -> None:
    plain = answer_bedrock(_chat(max_tokens=3), thinking=False)
    thought = answer_bedrock(_chat(max_tokens=3), thinking=True)
    assert thought.text == plain.text
    assert thought.output_tokens == plain.output_tokens + len(thought.reasoning)
    assert thought.signature
