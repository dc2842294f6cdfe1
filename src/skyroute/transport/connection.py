"""One upstream HTTP/1.1 connection: an asyncio protocol that parses responses with httptools.

A :class:`Connection` carries one request at a time (no pipelining). The pool in ``client.py``
calls :meth:`~Connection.begin` and :meth:`~Connection.send`; the caller then waits with
:meth:`~Connection.wait_head` and :meth:`~Connection.wait`, and drains the body with
:meth:`~Connection.take` or :meth:`~Connection.take_all`. Everything else happens in event-loop
callbacks, so a request creates no Task: waiting is one future, and timeouts share one lazily
re-armed timer per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Final, cast

import httptools

from skyroute.transport.errors import (
    ConnectionLost,
    ProtocolError,
    ResponseTimeout,
    ResponseTooLarge,
    TransportError,
)

__all__ = ["Connection"]

# Response states. IDLE: no request in flight (pooled or just connected).
IDLE: Final = 0
HEAD: Final = 1  # request sent, response head not complete yet
BODY: Final = 2  # head complete, body still arriving
DONE: Final = 3  # the whole response has been received
FAILED: Final = 4  # `error` says why; the connection is unusable

# uvloop rounds timers to milliseconds and may fire one early; a millisecond of slack on a
# timeout is invisible, while re-arming for the last sub-millisecond would only burn wakeups.
_TIMER_SLACK: Final = 0.001

_CONTENT_LENGTH: Final = b"content-length"
_TRANSFER_ENCODING: Final = b"transfer-encoding"


class Connection(asyncio.Protocol):
    """An HTTP/1.1 client connection and the state of the response now on it."""

    __slots__ = (
        "_buffer_limit",
        "_chunks",
        "_deadline",
        "_framed",
        "_got_bytes",
        "_head_seen",
        "_head_size",
        "_is_head",
        "_keep_alive",
        "_loop",
        "_max_header_bytes",
        "_parser",
        "_paused",
        "_timer",
        "_timer_when",
        "_transport",
        "_waiter",
        "buffered",
        "content_length",
        "error",
        "headers",
        "idle_since",
        "lost",
        "origin",
        "state",
        "status",
    )

    state: int
    error: TransportError | None
    status: int
    headers: list[tuple[str, str]]
    content_length: int | None
    buffered: int
    _parser: httptools.HttpResponseParser | None
    _chunks: list[bytes]

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        origin: str,
        max_header_bytes: int,
        stream_buffer_bytes: int,
    ) -> None:
        self._loop = loop
        self.origin = origin
        self._max_header_bytes = max_header_bytes
        self._buffer_limit = stream_buffer_bytes
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[bool] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0
        self._deadline = 0.0
        self.lost = False  # peer closed, reset, or we aborted: never reuse
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.state = IDLE
        self._parser = None
        self.error = None
        self.status = 0
        self.headers = []
        self.content_length = None
        self._framed = False  # Content-Length or chunked; otherwise the body ends at EOF
        self._keep_alive = False
        self._is_head = False
        self._got_bytes = False
        self._head_seen = 0  # raw bytes received while the head is incomplete
        self._head_size = 0  # parsed header bytes (the head may complete within one read)
        self._chunks = []
        self.buffered = 0
        self._paused = False

    # -- driven by the pool -------------------------------------------------------------------

    def begin(self, is_head: bool) -> None:
        """Prepare for the response to a request about to be sent."""
        self._reset()
        self.state = HEAD
        self._is_head = is_head
        # A fresh parser per response costs ~0.2 µs and means no parser state (a HEAD response
        # whose Content-Length announced a body it will never send, say) outlives its response.
        self._parser = httptools.HttpResponseParser(self)

    def send(self, head: bytes, body: bytes) -> None:
        if self.lost or self._transport is None:
            lost = ConnectionLost("connection closed", before_response=True, origin=self.origin)
            self._fail(lost)
            return
        write = self._transport.write
        if len(body) <= 65536:
            write(head + body)  # one segment on the wire for the common small JSON request
        elif body:
            write(head)
            write(body)  # no copy of a large body

    @property
    def reusable(self) -> bool:
        return self.state == DONE and self._keep_alive and not self.lost

    def park(self, now: float) -> None:
        """Forget the finished response and mark the connection idle since `now`."""
        self._reset()
        self.idle_since = now

    def abort(self) -> None:
        """Drop the connection now (RST, no TLS goodbye). A response already DONE keeps its
        buffered body, so stray bytes after it cannot take away what the caller has not read."""
        self.lost = True
        if self.state in (HEAD, BODY):
            self.state = FAILED
            self._chunks = []
            self.buffered = 0
            if self.error is None:  # closed on our side (Response.close, aclose) mid-response
                self.error = TransportError("connection closed by the client", origin=self.origin)
            self._wake()  # whoever still waits on this response must not wait for its timeout
        self._parser = None  # breaks the parser -> self reference cycle right away
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._transport.abort()

    # -- consumer side ------------------------------------------------------------------------

    async def wait_head(self, timeout: float) -> None:
        """Return once the response head is complete; raise its error or ResponseTimeout."""
        deadline = self._loop.time() + timeout
        while self.state == HEAD:
            remaining = deadline - self._loop.time()
            if remaining <= 0 or not await self.wait(remaining):
                msg = f"no response head within {timeout:g}s"
                raise ResponseTimeout(msg, origin=self.origin)
        if self.error is not None:
            raise self.error

    async def wait(self, timeout: float) -> bool:
        """Sleep until the response makes progress; False if `timeout` seconds pass first."""
        loop = self._loop
        deadline = loop.time() + timeout
        self._deadline = deadline
        timer = self._timer
        # Reuse the pending timer when it fires no later than needed: _on_timer re-arms it for
        # the real deadline, so a stream costs one timer per timeout period, not one per chunk.
        if timer is None or self._timer_when > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = loop.call_at(deadline, self._on_timer)
            self._timer_when = deadline
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiter = waiter
        try:
            return await waiter
        finally:
            self._waiter = None

    def _on_timer(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._loop.time() >= self._deadline - _TIMER_SLACK:
            waiter.set_result(False)
        else:
            self._timer = self._loop.call_at(self._deadline, self._on_timer)
            self._timer_when = self._deadline

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    def take(self) -> bytes:
        """Remove and return every buffered body byte as one bytes object (copies only if >1)."""
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        self._drained()
        return data

    def take_all(self) -> list[bytes]:
        """Remove and return the buffered body pieces without joining them."""
        chunks = self._chunks
        self._chunks = []
        self._drained()
        return chunks

    def _drained(self) -> None:
        self.buffered = 0
        if self._paused:
            self._paused = False
            if not self.lost and self._transport is not None:
                self._transport.resume_reading()

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport implements asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Both loops set it for TCP already; being explicit keeps a small request from
            # waiting on Nagle if that default ever changes. The socket may be a wrapper.
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:
            # Bytes nobody asked for (a late 408, say): the stream is out of step; drop it.
            self._fail(ProtocolError("unexpected bytes on an idle connection", origin=self.origin))
            return
        self._got_bytes = True
        if self.state == HEAD:
            self._head_seen += len(data)
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("unexpected protocol upgrade", origin=self.origin))
        except httptools.HttpParserError as exc:
            # llhttp's reason is a fixed phrase ("Invalid header value char"), never peer data.
            self._fail(ProtocolError(f"invalid HTTP response: {exc}", origin=self.origin))
        else:
            if self.state == HEAD and self._head_seen > self._max_header_bytes:
                self._fail(self._head_too_large())
            elif self.state == FAILED:
                self.abort()  # a callback gave up on the response

    def _head_too_large(self) -> ResponseTooLarge:
        msg = f"response head exceeds {self._max_header_bytes} bytes"
        return ResponseTooLarge(msg, origin=self.origin)

    def eof_received(self) -> bool:
        self.lost = True
        if self.state == BODY and not self._framed:
            # A body with neither Content-Length nor chunked framing ends when the peer closes.
            self._keep_alive = False
            self._finish()
        return False  # let the transport close; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.state in (HEAD, BODY):
            how = "reset" if exc is not None else "closed"
            before = not self._got_bytes
            where = "before the response" if before else "before the response was complete"
            self.state = FAILED
            self.error = ConnectionLost(
                f"connection {how} by peer {where}", before_response=before, origin=self.origin
            )
            self._parser = None
            self._wake()

    def _fail(self, error: TransportError) -> None:
        if self.state in (HEAD, BODY):
            self.state = FAILED
            self.error = error
            self._wake()
        self._keep_alive = False
        self.abort()

    def _finish(self) -> None:
        self.state = DONE
        self._parser = None
        self._wake()

    # -- httptools callbacks ------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.state != HEAD:
            self._keep_alive = False  # a second message after ours: don't trust the stream
            return
        lname = name.lower()
        if len(lname) == 14 and lname == _CONTENT_LENGTH:
            self._framed = True
            self.content_length = int(value)  # llhttp has already checked it is digits
        elif len(lname) == 17 and lname == _TRANSFER_ENCODING:
            self._framed = b"chunked" in value.lower()
        self.headers.append((lname.decode("latin-1"), value.decode("latin-1")))
        self._head_size += len(name) + len(value) + 4

    def on_headers_complete(self) -> None:
        if self.state != HEAD:
            self._keep_alive = False
            return
        parser = self._parser
        assert parser is not None
        status = parser.get_status_code()
        if status < 200:
            # 1xx (100 Continue, 103 Early Hints) are interim: forget them, keep waiting.
            self.headers = []
            self.content_length = None
            self._framed = False
            return
        if self._head_size > self._max_header_bytes:
            self.state = FAILED
            self.error = self._head_too_large()
            self._wake()
            return
        self.status = status
        self.state = BODY
        if self._is_head:
            # llhttp cannot know the request was HEAD and would wait for the announced body.
            self._keep_alive = parser.should_keep_alive()
            self._finish()
        else:
            self._wake()

    def on_body(self, body: bytes) -> None:
        if self.state != BODY:
            self._keep_alive = False
            return
        self._chunks.append(body)
        self.buffered += len(body)
        if self.buffered > self._buffer_limit and not self._paused and self._transport:
            # Back-pressure: stop reading until the consumer drains; at most one more read
            # (≤256 KiB on both loops) lands on top of the limit.
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.state != BODY:
            # HEAD: end of a 1xx interim response. DONE after a HEAD request: the (empty) end
            # of the message we already finished. Anything else is a message we never asked for.
            if self.state != HEAD and not (self.state == DONE and self._is_head):
                self._keep_alive = False
            return
        parser = self._parser
        assert parser is not None
        self._keep_alive = parser.should_keep_alive()
        self._finish()
