"""How a Bedrock response reaches the client: a JSON body or an event stream, broken on purpose.

Faults that strike before any response (reset, hang, delay) are played by
`delivery.play_preface`, as for every emulator. Inside an event stream, a fault strikes after
`after_tokens` content events (text, reasoning or tool-input deltas), or before the closing
events if the answer is shorter:

    cut               close the connection (FIN) mid-stream
    stall             send nothing more until `seconds` pass or the client leaves, then close
    malformed         one frame with a wrong message CRC (botocore: ChecksumMismatch)
    stream_error      an exception frame (`:message-type exception`), then end the body
    slow_first_token  the head at once, the first frame after `seconds`
    no_done           every frame but the last (ConverseStream's `metadata`, InvokeModel's
                      `message_stop` chunk); hold the response `hold` seconds, then end it
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from skyroute.emulators.bedrock_errors import stream_exception, stream_fault_reply
from skyroute.emulators.chat import EventKind, StreamEvent
from skyroute.emulators.delivery import Headers, StreamFraming, send_body, send_stream
from skyroute.emulators.faults import (
    Fault,
    StreamErrorFault,
)
from skyroute.emulators.http import Responder
from skyroute.transport.eventstream import encode_event, encode_exception

__all__ = [
    "EVENT_STREAM",
    "corrupted",
    "event_frame",
    "padding",
    "send_bedrock_body",
    "send_event_stream",
]

EVENT_STREAM: Final = "application/vnd.amazon.eventstream"
# Bedrock pads event payloads with a random `p` member, so that lengths do not leak content;
# clients must ignore it. A fixed alphabet keeps the emulator deterministic.
_PADDING: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def padding(index: int) -> str:
    """The `p` member of the index-th event of a stream."""
    return _PADDING[: 1 + index * 7 % len(_PADDING)]


def event_frame(event_type: str, payload: bytes, kind: EventKind) -> StreamEvent:
    return StreamEvent(encode_event(event_type, payload), kind)


def corrupted(frame: bytes) -> bytes:
    """The frame with its message CRC flipped: a reader must reject it."""
    last = int.from_bytes(frame[-4:], "big") ^ 0xFFFFFFFF
    return frame[:-4] + last.to_bytes(4, "big")


_FRAMING: Final = StreamFraming(
    content_type=EVENT_STREAM,
    malformed=corrupted,
    error_event=lambda fault: encode_exception(*stream_exception(fault)),
)


async def send_bedrock_body(
    responder: Responder, body: bytes, headers: Headers, fault: Fault | None
) -> None:
    """A whole JSON body; a stream_error fault becomes the same error over HTTP."""
    if isinstance(fault, StreamErrorFault):
        reply = stream_fault_reply(fault)
        responder.send(reply.status, reply.body, [*headers, *reply.headers])
        return
    await send_body(responder, 200, body, headers, fault)


async def send_event_stream(
    responder: Responder, headers: Headers, events: Iterable[StreamEvent], fault: Fault | None
) -> None:
    """Stream event-stream frames in chunked encoding, broken as the fault says."""
    await send_stream(responder, headers, events, fault, _FRAMING)
