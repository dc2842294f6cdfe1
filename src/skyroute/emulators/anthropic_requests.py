"""Reading a first-party Messages or count_tokens body, refusing it as api.anthropic.com would.

Two phases, as the API's own validation reads: the raw object is checked for members the
endpoint does not take (`foo: Extra inputs are not permitted`) and for required ones
(`max_tokens: Field required`), then converted to Structs (`anthropic_wire.py`) and checked
for what the schema cannot say (`anthropic_checks.py`). A failure raises `MessagesRejected`.

The accepted conversation is then handed to `bedrock_invoke.read_invoke`, as Claude on
Vertex does (`google_requests.py`): the same model behind another door, so the same
deterministic answer. What Bedrock would refuse is taken off first: the first party's own
members, server tools, and a final empty assistant turn.
"""

from __future__ import annotations

import re
from typing import Any, Final, TypeVar

import msgspec

from skyroute.emulators.anthropic_checks import (
    MessagesRejected,
    check_sampling,
    check_thinking_turns,
    check_tool_pairs,
    check_tools,
    check_turns,
    merged_turns,
    thinking_on,
)
from skyroute.emulators.anthropic_wire import (
    COUNT_KEYS,
    MESSAGES_KEYS,
    Block,
    CountTokensRequest,
    MessagesRequest,
    Turn,
)
from skyroute.emulators.bedrock_invoke import InvokeRejected, read_invoke
from skyroute.emulators.openai_wire import ChatRequest

__all__ = ["Conversation", "MessagesRejected", "read_count_tokens", "read_messages"]

_R = TypeVar("_R", MessagesRequest, CountTokensRequest)
_ENCODER: Final = msgspec.json.Encoder()
_BEDROCK_VERSION: Final = "bedrock-2023-05-31"
_MISSING_FIELD: Final = re.compile(r"Object missing required field `([^`]+)`")
_AT_PATH: Final = re.compile(r"^(.*) - at `\$\.?(.*)`$")


class Conversation(msgspec.Struct, frozen=True, kw_only=True):
    """An accepted body: as sent, its turns combined as the API combines them, and the chat
    request the answer is made from."""

    request: MessagesRequest | CountTokensRequest
    turns: list[Turn]
    chat: ChatRequest
    thinking: bool


def read_messages(body: bytes) -> Conversation:
    """A `POST /v1/messages` body; raises MessagesRejected."""
    request = _decode(body, MessagesRequest, MESSAGES_KEYS, ("model", "max_tokens", "messages"))
    try:
        if request.max_tokens < 0:
            raise MessagesRejected("max_tokens: Input should be greater than or equal to 0")
        check_sampling(request)
        if any(not sequence.strip() for sequence in request.stop_sequences or ()):
            raise MessagesRejected("stop_sequences: each stop sequence must contain non-whitespace")
        return _conversation(request, thinking_on(request))
    except MessagesRejected as error:
        error.model = request.model
        raise


def read_count_tokens(body: bytes) -> Conversation:
    """A `POST /v1/messages/count_tokens` body; raises MessagesRejected."""
    request = _decode(body, CountTokensRequest, COUNT_KEYS, ("model", "messages"))
    try:
        thinking = request.thinking is not None and request.thinking.type != "disabled"
        return _conversation(request, thinking)
    except MessagesRejected as error:
        error.model = request.model
        raise


# -- phase one: the raw object ------------------------------------------------------------------


def _decode(body: bytes, type_: type[_R], allowed: frozenset[str], required: tuple[str, ...]) -> _R:
    try:
        raw: Any = msgspec.json.decode(body)
    except msgspec.DecodeError as error:
        raise MessagesRejected(f"Could not parse the request body as JSON: {error}") from None
    if not isinstance(raw, dict):
        raise MessagesRejected("Input should be a valid dictionary or object")
    model = raw.get("model") if isinstance(raw.get("model"), str) else None
    extra = sorted(set(raw) - allowed)
    problem = f"{extra[0]}: Extra inputs are not permitted" if extra else None
    missing = next((key for key in required if key not in raw), None)
    if problem is None and missing is not None:
        problem = f"{missing}: Field required"
    if problem is None:
        try:
            return msgspec.convert(raw, type_)
        except msgspec.ValidationError as error:
            problem = _anthropic_path(str(error))
    rejected = MessagesRejected(problem)
    rejected.model = model
    raise rejected


def _anthropic_path(text: str) -> str:
    """msgspec's "Expected `int`, got `str` - at `$.messages[0].role`" in Anthropic's words,
    "messages.0.role: Expected `int`, got `str`"."""
    found = _AT_PATH.match(text)
    if found is None:
        return text
    detail, path = found.groups()
    path = path.replace("[", ".").replace("]", "")
    missing = _MISSING_FIELD.fullmatch(detail)
    if missing is not None:
        return f"{path + '.' if path else ''}{missing.group(1)}: Field required"
    return f"{path}: {detail}" if path else detail


# -- phase two: what the schema cannot say ------------------------------------------------------


def _conversation(request: MessagesRequest | CountTokensRequest, thinking: bool) -> Conversation:
    check_turns(request.messages)
    if isinstance(request.system, list):
        for index, block in enumerate(request.system):
            if block.type != "text":
                raise MessagesRejected(f"system.{index}.type: Input should be 'text'")
    check_tools(request.tools, request.tool_choice)
    turns = merged_turns(request.messages)
    check_tool_pairs(turns)
    check_thinking_turns(turns, thinking)
    return Conversation(request=request, turns=turns, chat=_chat(request, turns), thinking=thinking)


def _chat(request: MessagesRequest | CountTokensRequest, turns: list[Turn]) -> ChatRequest:
    """The chat request `read_invoke` makes of the Bedrock-shaped subset of the body."""
    if turns[-1].role == "assistant" and not turns[-1].content:
        turns = turns[:-1]  # an empty prefill says nothing
    body: dict[str, Any] = {
        "anthropic_version": _BEDROCK_VERSION,
        "max_tokens": 1,
        "messages": msgspec.to_builtins(turns),
    }
    if isinstance(request, MessagesRequest):
        body["max_tokens"] = request.max_tokens
        body["stop_sequences"] = request.stop_sequences
        body["thinking"] = msgspec.to_builtins(request.thinking)
    body["system"] = _system(request.system)
    body["tools"] = [
        {"name": tool.name, "description": tool.description, "input_schema": tool.input_schema}
        for tool in request.tools or ()
        if tool.input_schema is not None
    ] or None
    body["tool_choice"] = msgspec.to_builtins(request.tool_choice)
    body["output_config"] = msgspec.to_builtins(request.output_config)
    try:
        _, chat = read_invoke(_ENCODER.encode({k: v for k, v in body.items() if v is not None}))
    except InvokeRejected as error:
        raise MessagesRejected(str(error)) from None
    return chat


def _system(system: str | list[Block] | None) -> str | list[dict[str, str]] | None:
    if system is None or isinstance(system, str):
        return system or None
    return [{"type": "text", "text": block.text or ""} for block in system] or None
