"""Streaming: open an upstream stream, then relay it to the client event by event.

Opening waits for the first event with model output, so a deployment that sends headers
and then nothing, or only preliminaries and an error event, still fails over invisibly.
Relaying forwards each OpenAI chunk as it came (as bytes for OpenAI-family upstreams, as
translated for the others) and lets a probe pick out finish reasons, usage and in-band
errors. The relay never presents a cut stream as a success: a cut, a stall, a malformed
chunk or an upstream error ends it with an OpenAI-format error event. A stream that has
delivered its usage chunk is finished at once, whether or not ``[DONE]`` follows.

Upstream streams arrive as OpenAI chunk payloads (relayed bytes, or translated); a
``StreamOutput`` writes them in the client's protocol (OpenAI SSE, Anthropic events).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Literal, Protocol

from skyroute.api.accounting import StreamOutcome
from skyroute.api.context import RequestContext, Send
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
from skyroute.providers.base import Provider, UpstreamEvents, map_transport_error
from skyroute.routing.attempts import Served
from skyroute.transport.client import Response
from skyroute.transport.errors import ReadTimeout, TransportError
from skyroute.wire.openai import chunk_carries_output, probe_chunk

_DONE = b"[DONE]"
# After the usage chunk, how long to wait for the upstream's own end of body so its
# connection can go back to the pool; past this it is closed instead.
_TAIL_WAIT = 0.25
# Preliminary events (role-only deltas, Azure's prompt-filter chunk) held back while the
# deployment has yet to produce output; past this many, the stream is committed anyway.
_MAX_HELD = 32


class StreamOutput(Protocol):
    """Writes the client's side of a stream, in the client's protocol."""

    def chunk(self, data: bytes, *, usage_only: bool) -> bytes:
        """Bytes to send for one OpenAI chunk payload (may be empty); may raise
        ``GatewayError``, which ends the stream with that error."""
        ...

    def done(self) -> bytes:
        """The end of a complete stream."""
        ...

    def error(self, error: GatewayError) -> bytes:
        """The in-band error that ends a broken stream."""
        ...


class OpenStream:
    """An upstream stream that has produced output; ``held`` are its chunks so far."""

    __slots__ = ("events", "held", "response")

    def __init__(self, response: Response, events: UpstreamEvents, held: list[bytes]) -> None:
        self.response = response
        self.events = events
        self.held = held


async def open_stream(
    provider: Provider,
    response: Response,
    events: UpstreamEvents,
    timeout: float,
    clock: Callable[[], float],
) -> OpenStream:
    """Read until the first chunk with model output, within ``timeout`` seconds.

    Nothing has reached the client yet, so every failure here may still fail over: an
    error event, a malformed chunk, or silence past the first-token deadline.
    """
    deadline = clock() + timeout
    held: list[bytes] = []
    while True:
        data = await _first_chunks(events, max(0.001, deadline - clock()))
        if data is None:
            raise UpstreamUnavailable("The upstream ended the stream before any output.")
        held.append(data)
        if data == _DONE or len(held) >= _MAX_HELD:
            return OpenStream(response, events, held)
        try:
            output = chunk_carries_output(data)
        except ValueError:
            raise UpstreamProtocolError("The upstream sent a malformed stream chunk.") from None
        if not output:
            continue
        if probe_chunk(data).failed:
            # An error before anything reached the client: as good as an HTTP error.
            raise provider.map_error(500, response, data, 0.0)
        return OpenStream(response, events, held)


async def _first_chunks(events: UpstreamEvents, timeout: float) -> bytes | None:
    try:
        return await events.next_event(timeout)
    except ReadTimeout:
        raise UpstreamTimeout("The upstream produced no output in time.") from None
    except TransportError as exc:
        raise map_transport_error(exc) from None


async def relay_stream(
    state: GatewayState,
    ctx: RequestContext,
    output: StreamOutput,
    stream: OpenStream,
    headers: list[tuple[bytes, bytes]],
    served: Served[Any],
    on_end: Callable[[StreamOutcome], None],
) -> Usage | None:
    """Send the stream to the client; returns the usage it reported, if any.

    ``on_end`` hears how the stream ended before the client sees its end (so the usage is
    recorded before the answer is complete), or, if the client leaves, as it leaves."""
    relay = _Relay(state, stream, ctx.send, output, 0.0)
    try:
        headers.append((b"cache-control", b"no-cache"))
        await ctx.send({"type": "http.response.start", "status": 200, "headers": headers})
        relay.idle = state.route_of[served.deployment.key].config.timeouts.idle
        with state.lifecycle.stream():
            error = await relay.run_until_drained()
        on_end(relay.outcome(error, cancelled=False))
        if error is None:
            body = relay.take_buffered() + output.done()
            await ctx.send({"type": "http.response.body", "body": body, "more_body": False})
            await relay.release_upstream()
        else:
            if error.fault is Fault.PROVIDER:
                served.deployment.breaker.record_failure(state.clock())
            body = relay.take_buffered() + output.error(error)
            await ctx.send({"type": "http.response.body", "body": body, "more_body": False})
    except BaseException:
        on_end(relay.outcome(None, cancelled=True))  # a no-op if it was heard already
        raise
    finally:
        stream.response.close()
    return relay.usage


class _Relay:
    """One stream's relay: what it has seen (open choices, usage) and how to go on."""

    __slots__ = (
        "_buffer",
        "_open",
        "_output",
        "_saw_choices",
        "_send",
        "_state",
        "_stream",
        "chunks",
        "finish_reason",
        "idle",
        "usage",
    )

    def __init__(
        self,
        state: GatewayState,
        stream: OpenStream,
        send: Send,
        output: StreamOutput,
        idle: float,
    ) -> None:
        self._state = state
        self._stream = stream
        self._send = send
        self._output = output
        self.idle = idle
        self._open: set[int] = set()
        self._saw_choices = False
        self._buffer: list[bytes] = []
        self.usage: Usage | None = None
        self.chunks = 0  # chunks with choices relayed: a token estimate if usage never comes
        self.finish_reason: str | None = None

    def outcome(self, error: GatewayError | None, *, cancelled: bool) -> StreamOutcome:
        return StreamOutcome(
            usage=self.usage,
            chunks=self.chunks,
            finish_reason=self.finish_reason,
            error=error,
            cancelled=cancelled,
        )

    async def run_until_drained(self) -> GatewayError | None:
        """``run``, unless the drain deadline cancels it: then the stream is told why."""
        try:
            return await self.run()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is None or not self._state.lifecycle.expired(self._state.clock()):
                raise
            task.uncancel()
            return _shutting_down()

    async def run(self) -> GatewayError | None:
        """Relay until the stream is complete (``None``) or must end with an error.

        Chunks that arrived in the same upstream read leave in one write: a fast upstream's
        20-event answer costs one or two sends instead of twenty, while a paced stream
        still goes out chunk by chunk as it comes.
        """
        for chunk in self._stream.held:
            finished = self._relay(chunk)
            if finished is not False:
                return finished
        while True:
            await self._flush()
            data, error = await self._next()
            while error is None and data is not None:
                finished = self._relay(data)
                if finished is not False:
                    return finished
                data, error = self._ready()
                if data is None and error is None:
                    break
            else:
                if error is not None:
                    return error
                if self._saw_choices and not self._open:
                    return None  # complete, just no [DONE]
                return UpstreamUnavailable("The upstream closed the stream before it was complete.")

    def _ready(self) -> tuple[bytes | None, GatewayError | None]:
        """A chunk already read and decoded, without waiting; ``(None, None)`` if none."""
        try:
            return self._stream.events.ready(), None
        except GatewayError as error:
            return None, error

    def _relay(self, data: bytes) -> GatewayError | Literal[False] | None:
        """Forward one chunk. ``False``: go on; ``None``: complete; an error: end with it."""
        if data == _DONE:
            return None
        try:
            probe = probe_chunk(data)
        except ValueError:
            return UpstreamProtocolError("The upstream sent a malformed stream chunk.")
        if probe.failed:
            return UpstreamUnavailable("The upstream reported an error mid-stream.")
        if probe.choices:
            self.chunks += 1
        for choice in probe.choices:
            self._saw_choices = True
            if choice.finish_reason is None:
                self._open.add(choice.index)
            else:
                self._open.discard(choice.index)
                self.finish_reason = choice.finish_reason
        usage_only = probe.usage is not None and not probe.choices
        if usage_only:
            self.usage = probe.usage
        try:
            self._forward(data, usage_only=usage_only)
        except GatewayError as error:
            return error  # the client's protocol could not express what came
        return None if usage_only else False  # the usage chunk is a stream's last

    async def _next(self) -> tuple[bytes | None, GatewayError | None]:
        lifecycle = self._state.lifecycle
        timeout = self.idle
        if lifecycle.drain_deadline is not None:
            timeout = min(timeout, lifecycle.drain_deadline - self._state.clock())
            if timeout <= 0:
                return None, _shutting_down()
        try:
            return await self._stream.events.next_event(timeout), None
        except ReadTimeout:
            if lifecycle.expired(self._state.clock()):
                return None, _shutting_down()
            return None, UpstreamTimeout("The upstream stream stalled.")
        except TransportError:
            return None, UpstreamUnavailable(
                "The upstream closed the stream before it was complete."
            )
        except GatewayError as error:
            return None, error

    def _forward(self, data: bytes, *, usage_only: bool) -> None:
        body = self._output.chunk(data, usage_only=usage_only)
        if body:
            self._buffer.append(body)

    async def _flush(self) -> None:
        if self._buffer:
            body = self.take_buffered()
            await self._send({"type": "http.response.body", "body": body, "more_body": True})

    def take_buffered(self) -> bytes:
        """What was relayed but not yet sent; the caller sends it (with the stream's end)."""
        body = b"".join(self._buffer)
        self._buffer.clear()
        return body

    async def release_upstream(self) -> None:
        """Read the upstream's ``[DONE]`` and end of body, briefly, to keep its connection."""
        events = self._stream.events
        try:
            for _ in range(4):
                if events.ended or await events.next_event(_TAIL_WAIT) is None:
                    return
        except (TransportError, GatewayError):
            return


def _shutting_down() -> GatewayError:
    return ServiceUnavailable("The gateway is shutting down.", code="server_shutting_down")
