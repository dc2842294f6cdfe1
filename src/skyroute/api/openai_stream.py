"""Streaming chat completions: open an upstream stream, then relay it event by event.

Opening waits for the first event with model output, so a deployment that sends headers
and then nothing, or only preliminaries and an error event, still fails over invisibly.
Relaying forwards each event's bytes as they came and lets a probe pick out finish
reasons, usage and in-band errors. The relay never presents a cut stream as a success:
a cut, a stall, a malformed chunk or an upstream error ends it with an OpenAI-format
error event. A stream that has delivered
its usage chunk is finished at once, whether or not ``[DONE]`` follows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from skyroute.api.context import RequestContext
from skyroute.api.state import GatewayState
from skyroute.core.errors import (
    Fault,
    GatewayError,
    ServiceUnavailable,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from skyroute.core.usage import Usage
from skyroute.providers.base import Provider, map_transport_error
from skyroute.routing.attempts import Served
from skyroute.transport.client import Response
from skyroute.transport.errors import ReadTimeout, TransportError
from skyroute.transport.events import EventReader
from skyroute.transport.sse import SSEError, SSEEvent
from skyroute.wire.openai import (
    DONE_EVENT,
    ChatRequest,
    chunk_carries_output,
    error_event,
    probe_chunk,
)

_DONE = b"[DONE]"
# After the usage chunk, how long to wait for the upstream's own end of body so its
# connection can go back to the pool; past this it is closed instead.
_TAIL_WAIT = 0.25


# Preliminary events (role-only deltas, Azure's prompt-filter chunk) held back while the
# deployment has yet to produce output; past this many, the stream is committed anyway.
_MAX_HELD = 32


class OpenStream:
    """An upstream stream that has produced output; ``held`` are its events so far."""

    __slots__ = ("held", "reader", "response")

    def __init__(self, response: Response, reader: EventReader, held: list[SSEEvent]) -> None:
        self.response = response
        self.reader = reader
        self.held = held


async def open_stream(
    provider: Provider, response: Response, timeout: float, clock: Callable[[], float]
) -> OpenStream:
    """Read until the first event with model output, within ``timeout`` seconds.

    Nothing has reached the client yet, so every failure here may still fail over: an
    error event, a malformed chunk, or silence past the first-token deadline.
    """
    reader = EventReader(response)
    deadline = clock() + timeout
    held: list[SSEEvent] = []
    while True:
        event = await _first_events(reader, max(0.001, deadline - clock()))
        if event is None:
            raise UpstreamUnavailable("The upstream ended the stream before any output.")
        held.append(event)
        if event.data == _DONE or len(held) >= _MAX_HELD:
            return OpenStream(response, reader, held)
        try:
            output = chunk_carries_output(event.data)
        except ValueError:
            raise UpstreamProtocolError("The upstream sent a malformed stream chunk.") from None
        if not output:
            continue
        if probe_chunk(event.data).failed:
            # An error before anything reached the client: as good as an HTTP error.
            raise provider.map_error(500, response, event.data, 0.0)
        return OpenStream(response, reader, held)


async def _first_events(reader: EventReader, timeout: float) -> SSEEvent | None:
    try:
        return await reader.next_event(timeout)
    except ReadTimeout:
        raise UpstreamTimeout("The upstream produced no output in time.") from None
    except TransportError as exc:
        raise map_transport_error(exc) from None
    except SSEError:
        raise UpstreamProtocolError("The upstream sent a malformed stream.") from None


class _Progress:
    """What the relay has seen: open choices, usage, and whether it finished."""

    __slots__ = ("finished", "open_choices", "seen_choices", "usage")

    def __init__(self) -> None:
        self.open_choices: set[int] = set()
        self.seen_choices = False
        self.usage: Usage | None = None
        self.finished = False

    @property
    def complete(self) -> bool:
        return self.seen_choices and not self.open_choices


async def relay_stream(
    state: GatewayState,
    ctx: RequestContext,
    request: ChatRequest,
    stream: OpenStream,
    headers: list[tuple[bytes, bytes]],
    served: Served[object],
) -> Usage | None:
    send = ctx.send
    headers.append((b"cache-control", b"no-cache"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    progress = _Progress()
    idle = state.route_of[served.deployment.key].config.timeouts.idle
    try:
        with state.lifecycle.stream():
            error = await _pump_until_drained(state, stream, request, progress, idle, send)
        if error is None:
            await send({"type": "http.response.body", "body": DONE_EVENT, "more_body": False})
            await _release(stream, progress)
        else:
            if error.fault is Fault.PROVIDER:
                served.deployment.breaker.record_failure(state.clock())
            await send(
                {"type": "http.response.body", "body": error_event(error), "more_body": False}
            )
    finally:
        stream.response.close()
    return progress.usage


async def _pump_until_drained(
    state: GatewayState,
    stream: OpenStream,
    request: ChatRequest,
    progress: _Progress,
    idle: float,
    send,  # type: ignore[no-untyped-def]
) -> GatewayError | None:
    """``_pump``, unless the drain deadline cancels it: then the stream is told why."""
    try:
        return await _pump(state, stream, request, progress, idle, send)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is None or not state.lifecycle.expired(state.clock()):
            raise
        task.uncancel()
        return _shutting_down()


async def _pump(
    state: GatewayState,
    stream: OpenStream,
    request: ChatRequest,
    progress: _Progress,
    idle: float,
    send,  # type: ignore[no-untyped-def]
) -> GatewayError | None:
    """Relay events until the stream is complete (None) or must end with an error."""
    held = iter(stream.held)
    event: SSEEvent | None = next(held)
    while True:
        if event is None:
            if progress.complete:
                return None
            return UpstreamUnavailable("The upstream closed the stream before it was complete.")
        if event.data == _DONE:
            progress.finished = True
            return None
        try:
            probe = probe_chunk(event.data)
        except ValueError:
            return UpstreamProtocolError("The upstream sent a malformed stream chunk.")
        if probe.failed:
            return UpstreamUnavailable("The upstream reported an error mid-stream.")
        for choice in probe.choices:
            progress.seen_choices = True
            if choice.finish_reason is None:
                progress.open_choices.add(choice.index)
            else:
                progress.open_choices.discard(choice.index)
        if probe.usage is not None and not probe.choices:
            progress.usage = probe.usage
            if request.include_usage:
                await _forward(send, event.data)
            return None
        await _forward(send, event.data)
        event = next(held, None)
        if event is None:
            event, error = await _next(state, stream, idle)
            if error is not None:
                return error


async def _next(
    state: GatewayState, stream: OpenStream, idle: float
) -> tuple[SSEEvent | None, GatewayError | None]:
    lifecycle = state.lifecycle
    timeout = idle
    if lifecycle.drain_deadline is not None:
        timeout = lifecycle.drain_deadline - state.clock()
        if timeout <= 0:
            return None, _shutting_down()
        timeout = min(idle, timeout)
    try:
        return await stream.reader.next_event(timeout), None
    except ReadTimeout:
        if lifecycle.drain_deadline is not None and state.clock() >= lifecycle.drain_deadline:
            return None, _shutting_down()
        return None, UpstreamTimeout("The upstream stream stalled.")
    except SSEError:
        return None, UpstreamProtocolError("The upstream sent a malformed stream.")
    except TransportError:
        return None, UpstreamUnavailable("The upstream closed the stream before it was complete.")


def _shutting_down() -> GatewayError:
    return ServiceUnavailable("The gateway is shutting down.", code="server_shutting_down")


async def _forward(send, data: bytes) -> None:  # type: ignore[no-untyped-def]
    await send(
        {"type": "http.response.body", "body": b"data: " + data + b"\n\n", "more_body": True}
    )


async def _release(stream: OpenStream, progress: _Progress) -> None:
    """Read the upstream's ``[DONE]`` and end of body, briefly, to keep its connection."""
    if stream.reader.ended:
        return
    try:
        for _ in range(4):
            if await stream.reader.next_event(_TAIL_WAIT) is None:
                return
    except (TransportError, SSEError):
        return
