"""A minimal asyncio HTTP/1.1 server for the emulators, built on httptools' request parser.

Why not uvicorn or another ASGI server: the emulators must misbehave on purpose at the socket
level (a TCP reset before any byte, a chunked body that never terminates, a stall with the
socket open), which an ASGI server hides from the application. So the responder
(`responder.py`) writes onto the asyncio transport directly.

What it does: keep-alive, pipelined requests answered in order, Content-Length and chunked
request bodies (httptools de-chunks them), a request body limit, and responses either with a
Content-Length or streamed with chunked transfer encoding.

A connection's handler task is cancelled when the client goes away, so a handler sleeping in
a fault (delay, hang, stall) stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from typing import cast
from urllib.parse import parse_qs

import httptools
import msgspec

from skyroute.emulators.responder import ClientGone, Responder

__all__ = [
    "ClientGone",
    "ConnectionSet",
    "Handler",
    "HttpLimits",
    "Request",
    "Responder",
    "start_server",
]

_log = logging.getLogger(__name__)

_LINGER_NOW = struct.pack("ii", 1, 0)
_FLUSH_AT = 64 * 1024


class HttpLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Bounds on what one connection may make the server hold."""

    max_body: int = 16 * 1024 * 1024
    max_header_bytes: int = 64 * 1024
    max_pipelined: int = 32


class Request(msgspec.Struct, frozen=True):
    """One parsed request. Header names are lower-cased; a repeated header keeps the last."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def query_param(self, name: str) -> str | None:
        values = parse_qs(self.query, keep_blank_values=True).get(name)
        return values[0] if values else None


class _Refusal(msgspec.Struct, frozen=True):
    """A request the parser refused (too large, malformed): answered in turn, then close."""

    status: int


Handler = Callable[[Request, Responder], Awaitable[None]]


class ConnectionSet:
    """The live connections of one server, so that its owner can abort them on shutdown.

    `asyncio.Server.close()` stops accepting but leaves accepted connections open (and a
    hanging connection would keep `wait_closed()` waiting on Python 3.12+).
    """

    def __init__(self) -> None:
        self._live: set[_Connection] = set()

    def __len__(self) -> int:
        return len(self._live)

    def add(self, conn: _Connection) -> None:
        self._live.add(conn)

    def discard(self, conn: _Connection) -> None:
        self._live.discard(conn)

    def abort_all(self) -> None:
        for conn in list(self._live):
            conn.abort()


class _Connection(asyncio.Protocol):
    """One client connection: parses requests and answers them one by one, in order."""

    def __init__(self, handler: Handler, limits: HttpLimits, live: ConnectionSet) -> None:
        self._handler = handler
        self._limits = limits
        self._live = live
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._pending: deque[tuple[Request | _Refusal, bool]] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._reading = True
        self._refused = False
        self._eof = False
        self.lost = False
        self.lost_future: asyncio.Future[None] = self._loop.create_future()
        self._drain: asyncio.Future[None] | None = None
        self._out: list[bytes] = []
        self._out_size = 0
        self._flush_scheduled = False
        self._begin_message()

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._live.add(self)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(400)
        except httptools.HttpParserError:
            self._refuse(400)

    def eof_received(self) -> bool | None:
        # A client may half-close after its last request: still answer what it asked.
        self._eof = True
        return True if (self._pending or self._worker) else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._live.discard(self)
        if not self.lost_future.done():
            self.lost_future.set_result(None)
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        if self._worker is not None:
            self._worker.cancel()

    def pause_writing(self) -> None:
        if self._drain is None or self._drain.done():
            self._drain = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # -- httptools callbacks -------------------------------------------------------------

    def _begin_message(self) -> None:
        self._url = b""
        self._headers: dict[str, str] = {}
        self._head_bytes = 0
        self._body: list[bytes] = []
        self._body_size = 0
        self._too_large = False

    def on_message_begin(self) -> None:
        self._begin_message()

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        self._count_head(len(name) + len(value))

    def on_headers_complete(self) -> None:
        # curl and some HTTP clients wait for this before sending a large body. Not while an
        # earlier pipelined response is still going out: it would land inside that response.
        idle = not self._pending and self._worker is None
        if idle and self._headers.get("expect", "").lower() == "100-continue":
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.flush()

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._limits.max_body:
            self._too_large = True
            self._body.clear()
        elif not self._too_large:
            self._body.append(body)

    def on_message_complete(self) -> None:
        if self._too_large:
            self._refuse(413)
            return
        url = httptools.parse_url(self._url)
        request = Request(
            method=self._parser.get_method().decode("ascii"),
            path=url.path.decode("latin-1"),
            query=(url.query or b"").decode("latin-1"),
            headers=self._headers,
            body=b"".join(self._body),
        )
        self._enqueue(request, self._parser.should_keep_alive())

    # -- request queue -------------------------------------------------------------------

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self._limits.max_header_bytes:
            raise httptools.HttpParserError("request head too large")

    def _refuse(self, status: int) -> None:
        self._refused = True
        self._enqueue(_Refusal(status), keep_alive=False)

    def _enqueue(self, item: Request | _Refusal, keep_alive: bool) -> None:
        self._pending.append((item, keep_alive))
        if len(self._pending) >= self._limits.max_pipelined and self._transport is not None:
            self._transport.pause_reading()
            self._reading = False
        if self._worker is None:
            self._worker = self._loop.create_task(self._serve_pending())

    async def _serve_pending(self) -> None:
        try:
            while self._pending and not self.lost:
                item, keep_alive = self._pending.popleft()
                if not self._reading and self._transport is not None:
                    self._transport.resume_reading()
                    self._reading = True
                responder = Responder(self, keep_alive and not self._eof)
                if not await self._answer(item, responder):
                    return
            if self._eof and not self.lost:
                self.close()
        finally:
            self._worker = None

    async def _answer(self, item: Request | _Refusal, responder: Responder) -> bool:
        """Answer one request; return whether the connection may carry another."""
        if isinstance(item, _Refusal):
            responder.send(item.status, b"")
            self.close()
            return False
        try:
            await self._handler(item, responder)
        except ClientGone:
            return False
        except Exception:
            # The server edge: a handler bug answers 500 (or cuts a started stream).
            _log.exception("emulator handler failed on %s %s", item.method, item.path)
            if not responder.started:
                responder.send(500, b'{"error":{"message":"emulator handler failed"}}')
            elif not responder.finished:
                responder.cut()
        if not responder.started:
            responder.send(500, b'{"error":{"message":"emulator handler sent no response"}}')
        responder.end()
        if responder.closed or not responder.keep_alive:
            self.close()
            return False
        return True

    # -- transport access for Responder --------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue bytes; they leave together when the handler next yields (or 64 KiB pile up).

        A handler that streams events without pausing thus costs one send, not one per event,
        while every await that really waits (a fault's sleep or stall) flushes first.
        """
        self._out.append(data)
        self._out_size += len(data)
        if self._out_size >= _FLUSH_AT:
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        transport = self._transport
        if self._out and transport is not None and not transport.is_closing():
            transport.write(b"".join(self._out))
        self._out.clear()
        self._out_size = 0

    async def drain(self) -> None:
        if self._drain is not None and not self._drain.done():
            await self._drain
        if self.lost:
            raise ClientGone

    def close(self) -> None:
        self.flush()
        if self._transport is not None:
            self._transport.close()

    def reset(self) -> None:
        self._out.clear()
        if self._transport is None:
            return
        sock = self._transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_NOW)
        self._transport.abort()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


async def start_server(
    handler: Handler,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    limits: HttpLimits | None = None,
    connections: ConnectionSet | None = None,
) -> tuple[asyncio.Server, int]:
    """Listen on host:port (0 picks a free port); return the server and the bound port.

    Pass `connections` to be able to abort live connections when shutting down.
    """
    live = connections if connections is not None else ConnectionSet()
    bounds = limits if limits is not None else HttpLimits()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Connection(handler, bounds, live), host, port, backlog=2048
    )
    bound_port: int = server.sockets[0].getsockname()[1]
    return server, bound_port
