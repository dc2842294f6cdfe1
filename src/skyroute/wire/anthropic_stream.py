"""Anthropic Messages streams ⇄ canonical stream events (protocols.md §6 "Streaming").

The event flow, both ways: ``message_start``; per content block
``content_block_start → content_block_delta* → content_block_stop``; ``message_delta``
with the stop reason and running usage totals; ``message_stop``. ``ping`` may come at
any time, and an ``error`` event may come after HTTP 200. There is no ``[DONE]``.

- ``AnthropicStreamTranslator`` reads an upstream's events (the transport has already
  split the SSE framing into event type and data) into canonical events. A tool call's
  slot is the order of its ``tool_use`` block among the tool blocks.
- ``AnthropicEventWriter`` writes canonical events as complete SSE frames for a client
  of ``POST /v1/messages``. Every frame names its ``event:``: the Anthropic SDK skips
  any message without one (protocols.md §0.4).

Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

import base64
from typing import Any, Literal, assert_never

import msgspec

from skyroute.core.chat import (
    Finish,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    UsageReport,
)
from skyroute.core.errors import GatewayError, UpstreamProtocolError
from skyroute.core.usage import Usage
from skyroute.wire.anthropic_errors import error_body, map_stream_error
from skyroute.wire.anthropic_response import (
    AnthropicUsage,
    StopReason,
    UsageOut,
    map_stop_reason,
    redacted_bytes,
    stop_reason_out,
    to_usage,
    usage_out,
    with_tool_calls,
)

__all__ = ["AnthropicEventWriter", "AnthropicStreamTranslator"]


# --- reading an upstream's events -----------------------------------------------------


class _Block(msgspec.Struct, kw_only=True):
    type: str
    text: str = ""
    thinking: str = ""
    signature: str = ""
    data: str | None = None
    id: str | None = None
    name: str | None = None


class _BlockStart(msgspec.Struct):
    index: int
    content_block: _Block


class _Delta(msgspec.Struct, kw_only=True):
    type: str
    text: str = ""
    partial_json: str = ""
    thinking: str = ""
    signature: str = ""


class _BlockDelta(msgspec.Struct):
    index: int
    delta: _Delta


class _StartMessage(msgspec.Struct):
    usage: AnthropicUsage | None = None


class _MessageStart(msgspec.Struct):
    message: _StartMessage


class _Stop(msgspec.Struct):
    stop_reason: str | None = None


class _MessageDelta(msgspec.Struct):
    delta: _Stop
    usage: AnthropicUsage | None = None


_decode_start = msgspec.json.Decoder(_BlockStart)
_decode_delta = msgspec.json.Decoder(_BlockDelta)
_decode_message_start = msgspec.json.Decoder(_MessageStart)
_decode_message_delta = msgspec.json.Decoder(_MessageDelta)
_NONE: list[StreamEvent] = []
_USAGE_FIELDS = tuple(AnthropicUsage.__struct_fields__)


class AnthropicStreamTranslator:
    """One Anthropic stream, event by event; holds the tool slots and the usage totals."""

    __slots__ = ("_slots", "_usage")

    def __init__(self) -> None:
        self._slots: dict[int, int] = {}
        """Content block index of each tool_use block → its tool-call slot."""
        self._usage = AnthropicUsage()

    def feed(self, event_type: str, data: bytes) -> list[StreamEvent]:
        """One SSE event → the canonical events it carries. An ``error`` event raises its
        mapped ``GatewayError``; a malformed one raises ``UpstreamProtocolError``."""
        if event_type == "error":
            raise map_stream_error(data)
        try:
            match event_type:
                case "content_block_delta":
                    return self._delta(_decode_delta.decode(data))
                case "content_block_start":
                    return self._start(_decode_start.decode(data))
                case "message_start":
                    self._add_usage(_decode_message_start.decode(data).message.usage)
                    return _NONE
                case "message_delta":
                    return self._message_delta(_decode_message_delta.decode(data))
                case "message_stop":
                    # The totals are final now; report them once (protocols.md §8).
                    return [UsageReport(usage=to_usage(self._usage))]
                case _:
                    # ping, content_block_stop and event types newer than this code.
                    return _NONE
        except (msgspec.DecodeError, ValueError):
            raise UpstreamProtocolError(f"Anthropic sent a malformed {event_type} event.") from None

    def _start(self, event: _BlockStart) -> list[StreamEvent]:
        block = event.content_block
        match block.type:
            case "text":
                return [TextDelta(text=block.text)] if block.text else _NONE
            case "thinking":
                return _reasoning(block.thinking, block.signature)
            case "redacted_thinking":
                # The whole block comes in its start event (protocols.md §6).
                return [ReasoningDelta(redacted=redacted_bytes(block.data))]
            case "tool_use":
                if event.index in self._slots or not block.id or not block.name:
                    raise UpstreamProtocolError(f"Anthropic sent a bad tool_use at {event.index}.")
                slot = self._slots[event.index] = len(self._slots)
                return [ToolCallStart(slot=slot, id=block.id, name=block.name)]
        return _NONE  # server tool uses and their results ran inside Anthropic

    def _delta(self, event: _BlockDelta) -> list[StreamEvent]:
        delta = event.delta
        match delta.type:
            case "text_delta":
                return [TextDelta(text=delta.text)] if delta.text else _NONE
            case "input_json_delta":
                slot = self._slots.get(event.index)
                if slot is None or not delta.partial_json:
                    return _NONE  # a server tool's input, or an empty fragment
                return [ToolCallDelta(slot=slot, arguments=delta.partial_json)]
            case "thinking_delta" | "signature_delta":
                return _reasoning(delta.thinking, delta.signature)
        return _NONE  # citations_delta and newer delta types

    def _message_delta(self, event: _MessageDelta) -> list[StreamEvent]:
        self._add_usage(event.usage)
        stop = event.delta.stop_reason
        if stop is None:
            return _NONE
        return [Finish(reason=map_stop_reason(stop), raw_reason=stop)]

    def _add_usage(self, usage: AnthropicUsage | None) -> None:
        # message_delta counts are running totals: they replace what message_start said,
        # field by field, and an absent field keeps the earlier value.
        if usage is not None:
            for field in _USAGE_FIELDS:
                value = getattr(usage, field)
                if value is not None:
                    setattr(self._usage, field, value)


def _reasoning(text: str, signature: str) -> list[StreamEvent]:
    if not text and not signature:
        return _NONE
    return [ReasoningDelta(text=text, signature=signature or None)]


# --- writing a client's events --------------------------------------------------------


class _TextStart(msgspec.Struct, tag_field="type", tag="text"):
    text: str = ""


class _ThinkingStart(msgspec.Struct, tag_field="type", tag="thinking"):
    thinking: str = ""
    signature: str = ""


class _RedactedStart(msgspec.Struct, tag_field="type", tag="redacted_thinking"):
    data: str


class _ToolUseStart(msgspec.Struct, tag_field="type", tag="tool_use"):
    id: str
    name: str
    input: dict[str, Any] = {}


class _TextDeltaOut(msgspec.Struct, tag_field="type", tag="text_delta"):
    text: str


class _JsonDeltaOut(msgspec.Struct, tag_field="type", tag="input_json_delta"):
    partial_json: str


class _ThinkingDeltaOut(msgspec.Struct, tag_field="type", tag="thinking_delta"):
    thinking: str


class _SignatureDeltaOut(msgspec.Struct, tag_field="type", tag="signature_delta"):
    signature: str


class _BlockStartOut(msgspec.Struct, tag_field="type", tag="content_block_start"):
    index: int
    content_block: _TextStart | _ThinkingStart | _RedactedStart | _ToolUseStart


class _BlockDeltaOut(msgspec.Struct, tag_field="type", tag="content_block_delta"):
    index: int
    delta: _TextDeltaOut | _JsonDeltaOut | _ThinkingDeltaOut | _SignatureDeltaOut


class _BlockStopOut(msgspec.Struct, tag_field="type", tag="content_block_stop"):
    index: int


class _StartedMessage(msgspec.Struct, kw_only=True):
    id: str
    type: str = "message"
    role: str = "assistant"
    model: str
    content: list[Any] = []
    stop_reason: None = None
    stop_sequence: None = None
    usage: UsageOut


class _MessageStartOut(msgspec.Struct, tag_field="type", tag="message_start"):
    message: _StartedMessage


class _StopOut(msgspec.Struct):
    stop_reason: StopReason
    stop_sequence: None = None


class _MessageDeltaOut(msgspec.Struct, tag_field="type", tag="message_delta"):
    delta: _StopOut
    usage: UsageOut


class _MessageStopOut(msgspec.Struct, tag_field="type", tag="message_stop"):
    pass


_Frame = (
    _MessageStartOut
    | _BlockStartOut
    | _BlockDeltaOut
    | _BlockStopOut
    | _MessageDeltaOut
    | _MessageStopOut
)
_encode = msgspec.json.Encoder()
_Kind = Literal["text", "thinking", "tool_use"]


def _frame(payload: _Frame) -> bytes:
    event = str(payload.__struct_config__.tag).encode()
    return b"event: " + event + b"\ndata: " + _encode.encode(payload) + b"\n\n"


class AnthropicEventWriter:
    """Canonical stream events → Anthropic SSE frames, with the block bookkeeping.

    A new content block starts whenever the kind of content or the tool slot changes, and
    the open block is closed first. A thinking block ends with its signature, so reasoning
    text after a signature opens the next thinking block. The usage comes last in the
    canonical stream, but Anthropic puts input tokens in ``message_start``: that one says
    ``input_tokens`` (0 unless counted beforehand), and ``message_delta`` carries the final
    input and output counts, which the SDK's accumulator takes over (it overwrites every
    count a ``message_delta`` gives; checked in tests/unit/wire/test_anthropic.py).
    """

    __slots__ = (
        "_done",
        "_id",
        "_index",
        "_input_tokens",
        "_model",
        "_open",
        "_signed",
        "_slot",
        "_started",
        "_stop",
        "_tools",
        "_usage",
    )

    def __init__(self, message_id: str, model: str, *, input_tokens: int = 0) -> None:
        self._id = message_id
        self._model = model
        self._input_tokens = input_tokens
        """What ``message_start`` reports as input tokens, when counted beforehand."""
        self._index = -1
        """Index of the newest content block; -1 before the first."""
        self._open: _Kind | None = None
        self._slot = -1
        self._signed = False
        self._stop: StopReason | None = None
        self._tools = False
        """Whether a tool_use block was written."""
        self._usage: Usage | None = None
        self._done = False
        self._started = False

    def start(self) -> list[bytes]:
        """The ``message_start`` frame, once; ``write`` sends it first if not yet sent."""
        if self._started:
            return []
        self._started = True
        usage = UsageOut(input_tokens=self._input_tokens, output_tokens=0)
        message = _StartedMessage(id=self._id, model=self._model, usage=usage)
        return [_frame(_MessageStartOut(message=message))]

    def write(self, event: StreamEvent) -> list[bytes]:
        """The frames for one canonical event (none once the message is finished)."""
        if self._done or getattr(event, "choice", 0) != 0:
            return []  # Anthropic has one choice; the request was checked for n=1
        frames = self.start()
        match event:
            case TextDelta(text=text):
                if text:
                    frames += self._open_block("text", _TextStart())
                    frames.append(self._delta(_TextDeltaOut(text=text)))
            case ReasoningDelta():
                frames += self._reasoning(event)
            case ToolCallStart(slot=slot, id=call_id, name=name):
                frames += self._open_block("tool_use", _ToolUseStart(id=call_id, name=name))
                self._slot, self._tools = slot, True
            case ToolCallDelta(slot=slot, arguments=arguments):
                if self._open != "tool_use" or slot != self._slot:
                    raise UpstreamProtocolError(f"Tool call {slot}'s arguments came out of order.")
                if arguments:
                    frames.append(self._delta(_JsonDeltaOut(partial_json=arguments)))
            case Finish(reason=reason, raw_reason=raw):
                frames += self._close()
                self._stop = stop_reason_out(with_tool_calls(reason, self._tools), raw)
                frames += self._end() if self._usage is not None else []
            case UsageReport(usage=usage):
                self._usage = usage
                frames += self._end() if self._stop is not None else []
            case _:
                assert_never(event)
        return frames

    def finish(self) -> list[bytes]:
        """Close the message when the upstream stream ended, whatever arrived."""
        if self._done:
            return []
        return self.start() + self._close() + self._end()

    def error_frame(self, error: GatewayError) -> bytes:
        """An in-band ``error`` event, after which the client's stream ends."""
        self._done = True
        return b"event: error\ndata: " + error_body(error) + b"\n\n"

    def ping(self) -> bytes:
        """A keep-alive Anthropic clients ignore."""
        return b'event: ping\ndata: {"type":"ping"}\n\n'

    def _reasoning(self, event: ReasoningDelta) -> list[bytes]:
        frames: list[bytes] = []
        if event.redacted is not None:
            data = base64.b64encode(event.redacted).decode()
            frames += self._open_block("thinking", _RedactedStart(data=data))
            return frames + self._close()  # the whole block comes in its start event
        if (event.text or event.signature) and (self._open != "thinking" or self._signed):
            frames += self._open_block("thinking", _ThinkingStart())
        if event.text:
            frames.append(self._delta(_ThinkingDeltaOut(thinking=event.text)))
        if event.signature:
            frames.append(self._delta(_SignatureDeltaOut(signature=event.signature)))
            self._signed = True
        return frames

    def _open_block(self, kind: _Kind, block: Any) -> list[bytes]:
        if self._open == kind and kind == "text":
            return []
        frames = self._close()
        self._index += 1
        self._open = kind
        self._signed = False
        return [*frames, _frame(_BlockStartOut(index=self._index, content_block=block))]

    def _delta(self, delta: Any) -> bytes:
        return _frame(_BlockDeltaOut(index=self._index, delta=delta))

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        self._open = None
        return [_frame(_BlockStopOut(index=self._index))]

    def _end(self) -> list[bytes]:
        self._done = True
        stop = self._stop or stop_reason_out(with_tool_calls(None, self._tools), None)
        delta = _StopOut(stop_reason=stop)
        return [
            _frame(_MessageDeltaOut(delta=delta, usage=usage_out(self._usage))),
            _frame(_MessageStopOut()),
        ]
