"""Anthropic Messages answers as JSON bodies and as server-sent events. Pure: bytes out.

The answer itself is `bedrock_answer.answer_bedrock`'s (Claude answers alike wherever it is
hosted), and the Structs are those of `bedrock_invoke_wire`; what this module adds is the
plain Anthropic framing that Claude on Vertex (`:rawPredict`, `:streamRawPredict`) uses:

    event: message_start          {"type": "message_start", "message": {... "usage"}}
    event: content_block_start    one per block: thinking, then text or tool_use
    event: content_block_delta    one per word (text_delta, thinking_delta) or JSON fragment
                                  (input_json_delta); a thinking block ends with its signature
    event: content_block_stop
    event: message_delta          {"delta": {"stop_reason", "stop_sequence"}, "usage"}
    event: message_stop

Every `data:` line follows an `event:` line: the anthropic SDK skips events without one
(protocols.md §0.4). Message ids start `msg_vrtx_`, tool-use ids `toolu_vrtx_`.
InvokeModel on Bedrock (`bedrock_invoke.py`) builds its messages from the same
`content_blocks` and `block_streams`, with `toolu_bdrk_` tool-use ids.

First-party Anthropic (`anthropic.py`) frames the same answer with a few additions, passed
as `MessageExtras`: its own tool-use id prefix (`toolu_01`), the whole usage (cache counts
included, repeated on `message_delta`), a `ping` after `message_start`, and `message_stop`
marked as the stream's end so that a no_done fault can leave it out. Its error bodies carry
`request_id` and, for coded errors, `error.details.error_code`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import msgspec
from msgspec import UNSET, UnsetType

from skyroute.emulators.bedrock_answer import BedrockAnswer, StopReason
from skyroute.emulators.bedrock_invoke_wire import (
    BlockDelta,
    BlockOut,
    BlockStart,
    BlockStop,
    Delta,
    InputJsonDelta,
    MessageDelta,
    MessageOut,
    MessageStart,
    OutputUsage,
    SignatureDelta,
    StopDelta,
    TextDelta,
    TextOut,
    ThinkingDelta,
    ThinkingOut,
    ToolUseOut,
    Usage,
)
from skyroute.emulators.chat import EventKind, StreamEvent

__all__ = [
    "MALFORMED_EVENT",
    "PING_EVENT",
    "STOP_REASONS",
    "BlockStream",
    "DeltaUsage",
    "MessageExtras",
    "anthropic_error_body",
    "block_streams",
    "content_blocks",
    "count_tokens_body",
    "error_event",
    "message_body",
    "message_events",
    "refused",
]

_ENCODER: Final = msgspec.json.Encoder()
MALFORMED_EVENT: Final = b'event: content_block_delta\ndata: {"type": "content_block_delta", "i\n\n'
PING_EVENT: Final = b'event: ping\ndata: {"type": "ping"}\n\n'
_VERTEX_TOOL_PREFIX: Final = "toolu_vrtx_01"
STOP_REASONS: Final = {reason: reason.value for reason in StopReason} | {
    StopReason.GUARDRAIL: "refusal"
}


class _MessageStop(msgspec.Struct, frozen=True, tag_field="type", tag="message_stop"):
    pass


class _ErrorCode(msgspec.Struct, frozen=True):
    error_code: str


class _ErrorDetail(msgspec.Struct, frozen=True):
    type: str
    message: str
    details: _ErrorCode | UnsetType = UNSET


class _Error(msgspec.Struct, frozen=True, tag_field="type", tag="error"):
    error: _ErrorDetail
    request_id: str | UnsetType = UNSET


class DeltaUsage(OutputUsage, frozen=True):
    """`message_delta` usage as api.anthropic.com sends it: the running totals of every count."""

    input_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int


class MessageExtras(msgspec.Struct, frozen=True, kw_only=True):
    """What a host adds to the plain framing; the defaults are Claude on Vertex's."""

    tool_prefix: str = _VERTEX_TOOL_PREFIX
    usage: Usage | None = None
    """The whole usage (cache counts included); None: the answer's input and output tokens."""
    ping: bool = False
    """Send a `ping` event right after `message_start`."""
    stop_kind: EventKind = EventKind.TAIL
    """The kind of the `message_stop` event; DONE lets a no_done fault leave it out."""


class _TokenCount(msgspec.Struct, frozen=True):
    input_tokens: int


def refused(answer: BedrockAnswer) -> BedrockAnswer:
    """The answer as Claude's safety stop ends it: no content, `stop_reason: refusal`."""
    return BedrockAnswer(stop=StopReason.GUARDRAIL, input_tokens=answer.input_tokens)


def _tool_id(answer_id: str, prefix: str = _VERTEX_TOOL_PREFIX) -> str:
    return prefix + answer_id[:22]


def _usage(answer: BedrockAnswer, extras: MessageExtras) -> Usage:
    if extras.usage is not None:
        return extras.usage
    return Usage(input_tokens=answer.input_tokens, output_tokens=answer.output_tokens)


def content_blocks(answer: BedrockAnswer, prefix: str = _VERTEX_TOOL_PREFIX) -> list[BlockOut]:
    """A whole message's content: thinking, then a tool call or text; tool ids take `prefix`."""
    blocks: list[BlockOut] = []
    if answer.reasoning:
        blocks.append(ThinkingOut(thinking=answer.reasoning_text, signature=answer.signature))
    tool = answer.tool_use
    if tool is not None:
        value = msgspec.json.decode(tool.input_json)
        blocks.append(ToolUseOut(id=_tool_id(tool.id, prefix), name=tool.name, input=value))
    elif answer.pieces:
        blocks.append(TextOut(text=answer.text))
    return blocks


def message_body(
    answer: BedrockAnswer, message_id: str, model: str, extras: MessageExtras | None = None
) -> bytes:
    extras = extras if extras is not None else MessageExtras()
    message = MessageOut(
        id=message_id,
        model=model,
        content=content_blocks(answer, extras.tool_prefix),
        stop_reason=STOP_REASONS[answer.stop],
        stop_sequence=answer.stop_sequence,
        usage=_usage(answer, extras),
    )
    return _ENCODER.encode(message)


def _event(name: str, payload: msgspec.Struct, kind: EventKind) -> StreamEvent:
    return StreamEvent(
        b"event: " + name.encode() + b"\ndata: " + _ENCODER.encode(payload) + b"\n\n", kind
    )


def message_events(
    answer: BedrockAnswer, message_id: str, model: str, extras: MessageExtras | None = None
) -> Iterator[StreamEvent]:
    extras = extras if extras is not None else MessageExtras()
    usage = _usage(answer, extras)
    start = MessageOut(
        id=message_id,
        model=model,
        content=[],
        stop_reason=None,
        stop_sequence=None,
        usage=msgspec.structs.replace(usage, output_tokens=1),
    )
    yield _event("message_start", MessageStart(message=start), EventKind.PRELUDE)
    if extras.ping:
        yield StreamEvent(PING_EVENT, EventKind.PRELUDE)
    for index, (opening, deltas) in enumerate(block_streams(answer, extras.tool_prefix)):
        yield _event(
            "content_block_start", BlockStart(index=index, content_block=opening), EventKind.PRELUDE
        )
        for delta, kind in deltas:
            yield _event("content_block_delta", BlockDelta(index=index, delta=delta), kind)
        yield _event("content_block_stop", BlockStop(index=index), EventKind.TAIL)
    stop = StopDelta(STOP_REASONS[answer.stop], answer.stop_sequence)
    yield _event(
        "message_delta", MessageDelta(delta=stop, usage=_delta_usage(usage, extras)), EventKind.TAIL
    )
    yield _event("message_stop", _MessageStop(), extras.stop_kind)


def _delta_usage(usage: Usage, extras: MessageExtras) -> OutputUsage:
    if extras.usage is None:
        return OutputUsage(usage.output_tokens)
    return DeltaUsage(
        usage.output_tokens,
        usage.input_tokens,
        usage.cache_creation_input_tokens,
        usage.cache_read_input_tokens,
    )


BlockStream = tuple[BlockOut, list[tuple[Delta, EventKind]]]


def block_streams(answer: BedrockAnswer, prefix: str = _VERTEX_TOOL_PREFIX) -> list[BlockStream]:
    """Each block's opening (empty) form, then its deltas."""
    streams: list[BlockStream] = []
    content = EventKind.CONTENT
    if answer.reasoning:
        thinking: list[tuple[Delta, EventKind]] = [
            (ThinkingDelta(thinking=word), content) for word in answer.reasoning
        ]
        thinking.append((SignatureDelta(signature=answer.signature), EventKind.TAIL))
        streams.append((ThinkingOut(thinking="", signature=""), thinking))
    tool = answer.tool_use
    if tool is not None:
        opening = ToolUseOut(id=_tool_id(tool.id, prefix), name=tool.name, input={})
        fragments: list[tuple[Delta, EventKind]] = [
            (InputJsonDelta(partial_json=f), content) for f in tool.fragments
        ]
        streams.append((opening, fragments))
    elif answer.pieces:
        texts: list[tuple[Delta, EventKind]] = [
            (TextDelta(text=piece), content) for piece in answer.pieces
        ]
        streams.append((TextOut(text=""), texts))
    return streams


def anthropic_error_body(
    error_type: str,
    message: str,
    *,
    request_id: str | None = None,
    error_code: str | None = None,
) -> bytes:
    """`{"type": "error", "error": {"type": ..., "message": ...}}`, with `request_id` and
    `error.details.error_code` when given (the SDK picks its exception class by the code)."""
    details = _ErrorCode(error_code) if error_code is not None else UNSET
    rid = request_id if request_id is not None else UNSET
    return _ENCODER.encode(_Error(_ErrorDetail(error_type, message, details), rid))


def error_event(error_type: str, message: str) -> bytes:
    return b"event: error\ndata: " + anthropic_error_body(error_type, message) + b"\n\n"


def count_tokens_body(input_tokens: int) -> bytes:
    return _ENCODER.encode(_TokenCount(input_tokens))
