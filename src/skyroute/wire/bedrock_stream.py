"""ConverseStream events → canonical stream events (protocols.md §3 "ConverseStream").

The transport decodes the AWS event-stream framing; this translator sees one message at a
time as ``(event type, JSON payload)``. The order Bedrock keeps is ``messageStart``; per
content block ``[contentBlockStart] → contentBlockDelta* → contentBlockStop``;
``messageStop``; ``metadata`` last with the usage. Text and reasoning blocks have no
``contentBlockStart`` (protocols.md §0.7): only tool calls announce themselves, so the
translator maps a tool block's ``contentBlockIndex`` to its OpenAI tool-call slot.

Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

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
from skyroute.wire.bedrock_errors import map_stream_exception
from skyroute.wire.bedrock_response import ConverseUsage, map_stop_reason, to_usage

__all__ = ["ConverseStreamTranslator"]


class _Wire(msgspec.Struct, kw_only=True, rename="camel"):
    pass


class _ToolUseStart(_Wire):
    tool_use_id: str
    name: str
    type: str | None = None


class _Start(_Wire):
    tool_use: _ToolUseStart | None = None


class _BlockStart(_Wire):
    content_block_index: int
    start: _Start


class _ToolUseDelta(_Wire):
    input: str = ""


class _ReasoningPiece(_Wire):
    text: str | None = None
    signature: str | None = None


class _Delta(_Wire):
    text: str | None = None
    tool_use: _ToolUseDelta | None = None
    reasoning_content: _ReasoningPiece | None = None


class _BlockDelta(_Wire):
    content_block_index: int
    delta: _Delta


class _MessageStop(_Wire):
    stop_reason: str


class _Metadata(_Wire):
    usage: ConverseUsage | None = None


_decode_start = msgspec.json.Decoder(_BlockStart)
_decode_delta = msgspec.json.Decoder(_BlockDelta)
_decode_stop = msgspec.json.Decoder(_MessageStop)
_decode_metadata = msgspec.json.Decoder(_Metadata)
_NONE: list[StreamEvent] = []


class ConverseStreamTranslator:
    """One ConverseStream, event by event; holds which content block is which tool call."""

    __slots__ = ("_ignored", "_slots")

    def __init__(self) -> None:
        self._slots: dict[int, int] = {}
        """contentBlockIndex of each client tool call → its slot (0, 1, ...)."""
        self._ignored: set[int] = set()
        """contentBlockIndex of blocks not relayed (server tool calls)."""

    def feed(self, event_type: str, payload: bytes) -> list[StreamEvent]:
        """One ``:message-type event`` message → the canonical events it carries.

        Raises ``UpstreamProtocolError`` for a payload that does not fit its event type.
        """
        try:
            match event_type:
                case "contentBlockDelta":
                    return self._delta(_decode_delta.decode(payload))
                case "contentBlockStart":
                    return self._start(_decode_start.decode(payload))
                case "messageStop":
                    stop = _decode_stop.decode(payload).stop_reason
                    return [Finish(reason=map_stop_reason(stop), raw_reason=stop)]
                case "metadata":
                    usage = _decode_metadata.decode(payload).usage
                    return [UsageReport(usage=to_usage(usage))] if usage is not None else _NONE
                case _:
                    # messageStart, contentBlockStop and events newer than this code carry
                    # nothing the client needs.
                    return _NONE
        except (msgspec.DecodeError, ValueError):
            raise UpstreamProtocolError(
                f"Bedrock sent a malformed ConverseStream {event_type} event."
            ) from None

    def exception(self, exception_type: str, payload: bytes) -> GatewayError:
        """One ``:message-type exception`` message → the error that ends the stream."""
        return map_stream_exception(exception_type, payload)

    def _start(self, event: _BlockStart) -> list[StreamEvent]:
        tool_use = event.start.tool_use
        index = event.content_block_index
        if tool_use is None:
            return _NONE  # toolResult / image starts: nothing to relay
        if index in self._slots or index in self._ignored:
            raise UpstreamProtocolError(f"Bedrock started content block {index} twice.")
        if tool_use.type == "server_tool_use":
            # Server tools run inside Bedrock; the caller has nothing to execute.
            self._ignored.add(index)
            return _NONE
        slot = self._slots[index] = len(self._slots)
        return [ToolCallStart(slot=slot, id=tool_use.tool_use_id, name=tool_use.name)]

    def _delta(self, event: _BlockDelta) -> list[StreamEvent]:
        delta = event.delta
        if delta.text is not None:
            return [TextDelta(text=delta.text)] if delta.text else _NONE
        if delta.tool_use is not None:
            return self._tool_delta(event.content_block_index, delta.tool_use.input)
        piece = delta.reasoning_content
        if piece is not None and (piece.text or piece.signature):
            # redactedContent has no canonical stream event and is not relayed.
            return [ReasoningDelta(text=piece.text or "", signature=piece.signature)]
        return _NONE  # citations, images, tool results, empty pieces

    def _tool_delta(self, index: int, arguments: str) -> list[StreamEvent]:
        slot = self._slots.get(index)
        if slot is None:
            if index in self._ignored:
                return _NONE
            raise UpstreamProtocolError(
                f"Bedrock sent tool input for content block {index} before its start."
            )
        return [ToolCallDelta(slot=slot, arguments=arguments)] if arguments else _NONE
