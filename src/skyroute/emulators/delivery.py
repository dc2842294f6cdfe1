"""How a response reaches the client: whole or streamed, and broken on purpose by a fault.

Faults that strike before any response (status, reset, hang, delay) are played by
`play_preface`; those that strike inside a body (cut, stall, malformed, stream_error,
slow_first_token, pace, no_done) by `send_body` and `send_stream`. Stream faults strike after
`after_tokens` content events (tokens or tool-argument fragments), or before the finish
chunk if the answer is shorter. A stream's bytes are SSE unless a `StreamFraming` says
otherwise (Bedrock's event stream, `bedrock_stream.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import Final, NamedTuple, assert_never

import msgspec

from skyroute.emulators.chat import EventKind, StreamEvent
from skyroute.emulators.faults import (
    CutFault,
    DelayFault,
    Fault,
    HangFault,
    MalformedFault,
    NoDoneFault,
    PaceFault,
    ResetFault,
    SlowFirstTokenFault,
    StallFault,
    StreamErrorFault,
)
from skyroute.emulators.http import Responder
from skyroute.emulators.openai_wire import ErrorBody, ErrorDetail

__all__ = [
    "SSE_FRAMING",
    "Headers",
    "StreamFraming",
    "play_preface",
    "send_body",
    "send_stream",
]

Headers = Sequence[tuple[str, str]]

_ENCODER = msgspec.json.Encoder()
_BROKEN_JSON = b'{"choices": ['
_MALFORMED = b"data: " + _BROKEN_JSON + b"\n\n"
_MidStreamFault = CutFault | StallFault | MalformedFault | StreamErrorFault


async def play_preface(fault: Fault | None, responder: Responder) -> bool:
    """Play a fault that strikes before the response; True if it ended the exchange.

    A `status` fault is not played here: its body is the flavor's error shape.
    """
    match fault:
        case ResetFault():
            responder.reset()
            return True
        case HangFault():
            await responder.wait_disconnect()
            responder.cut()
            return True
        case DelayFault(seconds=seconds):
            await asyncio.sleep(seconds)
    return False


async def send_body(
    responder: Responder, status: int, body: bytes, headers: Headers, fault: Fault | None
) -> None:
    """Send a whole (non-streamed) body, broken as the fault says."""
    match fault:
        case CutFault():
            responder.send_truncated(status, body, len(body) // 2, headers)
        case StallFault(seconds=seconds):
            await responder.wait_disconnect(seconds)
            responder.cut()
        case MalformedFault():
            responder.send(status, _BROKEN_JSON, headers)
        case SlowFirstTokenFault(seconds=seconds):
            await asyncio.sleep(seconds)
            responder.send(status, body, headers)
        case StreamErrorFault():
            responder.send(500, _error_body(fault), headers)
        case _:
            responder.send(status, body, headers)


class StreamFraming(NamedTuple):
    """What a protocol's stream writes when a fault breaks it mid-stream."""

    content_type: str
    malformed: Callable[[bytes], bytes]
    """A broken event, given the next (well-formed) one; the stream goes on after it."""
    error_event: Callable[[StreamErrorFault], bytes]
    """The in-band error that ends the stream."""


SSE_FRAMING: Final = StreamFraming(
    content_type="text/event-stream; charset=utf-8",
    malformed=lambda _next_event: _MALFORMED,
    error_event=lambda fault: b"data: " + _error_body(fault) + b"\n\n",
)


async def send_stream(
    responder: Responder,
    headers: Headers,
    events: Iterable[StreamEvent],
    fault: Fault | None,
    framing: StreamFraming = SSE_FRAMING,
    on_cut: Callable[[int], None] | None = None,
) -> None:
    """Stream events in chunked encoding (SSE unless `framing` says), broken as the fault says.

    Just before a fault ends the stream early (cut, stall, stream_error), `on_cut` hears the
    completion tokens (`StreamEvent.tokens`) sent so far: a stall may end with the client
    leaving, which cancels this coroutine.
    """
    responder.start(200, headers, content_type=framing.content_type)
    if isinstance(fault, SlowFirstTokenFault):
        await asyncio.sleep(fault.seconds)
    strike = fault if isinstance(fault, _MidStreamFault) else None
    sent = tokens = 0
    for event in events:
        if (
            strike is not None
            and event.kind is not EventKind.PRELUDE
            and sent >= strike.after_tokens
        ):
            if on_cut is not None and not isinstance(strike, MalformedFault):
                on_cut(tokens)
            if not await _strike(responder, strike, framing, event.data):
                return
            strike = None
        if event.kind is EventKind.DONE and isinstance(fault, NoDoneFault):
            continue
        if event.kind is EventKind.CONTENT and isinstance(fault, PaceFault):
            await asyncio.sleep(fault.seconds)
        await responder.write(event.data)
        tokens += event.tokens
        if event.kind is EventKind.CONTENT:
            sent += 1
    if isinstance(fault, NoDoneFault) and fault.hold > 0:
        await responder.wait_disconnect(fault.hold)
    responder.end()


async def _strike(
    responder: Responder, fault: _MidStreamFault, framing: StreamFraming, next_event: bytes
) -> bool:
    """Play a mid-stream fault; True if the stream goes on afterwards."""
    match fault:
        case CutFault():
            responder.cut()
            return False
        case StallFault(seconds=seconds):
            await responder.wait_disconnect(seconds)
            responder.cut()
            return False
        case MalformedFault():
            await responder.write(framing.malformed(next_event))
            return True
        case StreamErrorFault():
            await responder.write(framing.error_event(fault))
            responder.end()
            return False
        case _:
            assert_never(fault)


def _error_body(fault: StreamErrorFault) -> bytes:
    detail = ErrorDetail(message=fault.message, type=fault.type, code=fault.code)
    return _ENCODER.encode(ErrorBody(detail))
