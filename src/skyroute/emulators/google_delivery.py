"""Sending a Google-side answer (Gemini, Claude or OpenAI-compatible on Vertex), broken on purpose.

Most fault kinds play out the same for every protocol and are left to `delivery.py` (reset,
hang, delay before the answer; cut, stall, slow_first_token, no_done inside it). Two write
protocol-specific bytes, so each protocol supplies them in a `StreamDialect`:

- `malformed`: after `after_tokens` content events, one event whose JSON is broken and that
  the client will parse (the Anthropic SDK ignores an event without an `event:` line, so its
  broken event has one); a non-streamed answer is a 200 with broken JSON, as elsewhere.
- `stream_error`: after `after_tokens` content events, the protocol's in-band error event,
  then the end of the body; a non-streamed answer is that error as an HTTP error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from skyroute.emulators.chat import EventKind, StreamEvent
from skyroute.emulators.delivery import Headers, send_body, send_stream
from skyroute.emulators.dialect import Reply
from skyroute.emulators.faults import Fault, MalformedFault, StreamErrorFault
from skyroute.emulators.http import Responder

__all__ = ["StreamDialect", "send_answer", "send_events"]


class StreamDialect(NamedTuple):
    malformed: bytes
    """A whole SSE event whose JSON does not parse."""
    error_event: Callable[[StreamErrorFault], bytes]
    """The whole SSE event of an in-band error."""
    error_reply: Callable[[StreamErrorFault], Reply]
    """The same error as an HTTP answer, for a request that does not stream."""


async def send_answer(
    responder: Responder,
    body: bytes,
    headers: Headers,
    fault: Fault | None,
    dialect: StreamDialect,
) -> None:
    """Send a whole 200 JSON body, broken as the fault says."""
    if isinstance(fault, StreamErrorFault):
        reply = dialect.error_reply(fault)
        responder.send(reply.status, reply.body, [*headers, *reply.headers])
        return
    await send_body(responder, 200, body, headers, fault)


async def send_events(
    responder: Responder,
    headers: Headers,
    events: Iterable[StreamEvent],
    fault: Fault | None,
    dialect: StreamDialect,
) -> None:
    """Stream SSE events in chunked encoding, broken as the fault says."""
    if not isinstance(fault, MalformedFault | StreamErrorFault):
        await send_stream(responder, headers, events, fault)
        return
    responder.start(200, headers)
    sent, struck = 0, False
    for event in events:
        if not struck and event.kind is not EventKind.PRELUDE and sent >= fault.after_tokens:
            struck = True
            if isinstance(fault, StreamErrorFault):
                await responder.write(dialect.error_event(fault))
                responder.end()
                return
            await responder.write(dialect.malformed)
        await responder.write(event.data)
        if event.kind is EventKind.CONTENT:
            sent += 1
    responder.end()
