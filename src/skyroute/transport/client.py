"""The upstream HTTP/1.1 client: a keep-alive connection pool per origin, and its Response.

Why not aiohttp or httpx: in the stack measurements (design notes, stack.md) a small
httptools pool costs ~40 µs CPU per request against ~85 µs for aiohttp, and httpx's pool
collapses under concurrency. Owning the client also means owning its limits: every wait has a
timeout, every buffer a bound, and a cancelled caller aborts its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
from collections import deque
from types import TracebackType
from typing import Final, NamedTuple

from skyroute.transport.connection import BODY, DONE, Connection
from skyroute.transport.errors import (
    ConnectError,
    ConnectionLost,
    ConnectTimeout,
    PoolTimeout,
    ReadTimeout,
    ResponseTooLarge,
    TransportError,
)

__all__ = ["HttpClient", "Response"]

_KNOWN_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
# The transport frames the message itself; a caller's copy would conflict (request smuggling).
_RESERVED_HEADERS: Final = frozenset({"host", "content-length", "transfer-encoding"})
_RESERVED_LENGTHS: Final = frozenset(len(name) for name in _RESERVED_HEADERS)
_TIMED_OUT: Final = object()


class HttpClient:
    """A pool of keep-alive HTTP/1.1 connections, one pool per (scheme, host, port)."""

    def __init__(
        self,
        *,
        max_connections_per_origin: int = 512,
        keepalive_expiry: float = 30.0,
        max_header_bytes: int = 64 * 1024,
        ssl_context: ssl.SSLContext | None = None,
        stream_buffer_bytes: int = 1 << 20,
    ) -> None:
        if max_connections_per_origin < 1:
            raise ValueError("max_connections_per_origin must be at least 1")
        self._limits = _Limits(
            max_connections_per_origin, keepalive_expiry, max_header_bytes, stream_buffer_bytes
        )
        self._ssl_context = ssl_context
        self._pools: dict[str, _OriginPool] = {}
        self._closed = False

    async def request(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes = b"",
        *,
        connect_timeout: float,
        header_timeout: float,
    ) -> Response:
        """Send one request and return once the response head has arrived.

        Raises ValueError for a malformed URL, method or header (CR, LF or NUL anywhere, a
        reserved header, non-latin-1 text) before touching the network.
        """
        if self._closed:
            raise RuntimeError("HttpClient is closed")
        key, target = _split_url(url)
        pool = self._pools.get(key) or self._new_pool(key)
        head = _encode_head(method, target, pool.host_header, headers, body)
        is_head = method == "HEAD"
        fresh = False
        while True:
            conn, reused = await pool.acquire(connect_timeout, fresh)
            try:
                conn.begin(is_head)
                conn.send(head, body)
                await conn.wait_head(header_timeout)
            except TransportError as exc:
                pool.discard(conn)
                # A pooled connection the peer closed while idle fails before answering; the
                # request most likely never reached the application, so try once more.
                if reused and not fresh and isinstance(exc, ConnectionLost) and exc.before_response:
                    fresh = True
                    continue
                raise
            except BaseException:  # cancelled: the connection's state is unknown
                pool.discard(conn)
                raise
            return Response(pool, conn)

    def _new_pool(self, key: str) -> _OriginPool:
        scheme, _, authority = key.partition("://")
        ctx: ssl.SSLContext | None = None
        if scheme == "https":
            if self._ssl_context is None:
                # Built on first use: create_default_context() loads the CA store (~ms).
                self._ssl_context = ssl.create_default_context()
                self._ssl_context.set_alpn_protocols(["http/1.1"])
            ctx = self._ssl_context
        pool = _OriginPool(scheme, authority, ctx, self._limits)
        self._pools[key] = pool
        return pool

    async def aclose(self) -> None:
        """Abort every connection, idle or busy; later requests raise RuntimeError."""
        self._closed = True
        pools = list(self._pools.values())
        self._pools.clear()
        for pool in pools:
            pool.close()
        await asyncio.sleep(0)  # let the aborted transports' connection_lost callbacks run

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class Response:
    """A response whose head has arrived; the body is read with read() or next_chunk().

    close() must be called (or use ``async with``): it returns the connection to the pool when
    the whole response arrived over a keep-alive connection, and aborts it otherwise.
    """

    __slots__ = ("_conn", "_consumed", "_pool", "headers", "status")

    def __init__(self, pool: _OriginPool, conn: Connection) -> None:
        self._pool = pool
        self._conn: Connection | None = conn
        self._consumed = False  # the end of the body has been handed to the caller
        self.status = conn.status
        self.headers = conn.headers  # names lower-cased by the connection

    def header(self, name: str) -> str | None:
        """The first value of header `name` (give it lower-case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    async def read(self, *, limit: int, timeout: float) -> bytes:
        """The whole body: ResponseTooLarge past `limit` bytes, ReadTimeout after a gap of
        `timeout` seconds with no bytes."""
        conn = self._open_conn()
        if conn is None:
            return b""
        parts: list[bytes] = []
        total = 0
        try:
            # Fail before buffering when the announced length is already too much. (A HEAD or
            # 304 response carries a Content-Length but no body: its state is already DONE.)
            length = conn.content_length
            if conn.state == BODY and length is not None and length > limit:
                raise self._too_large(limit)
            while True:
                if conn.buffered:
                    total += conn.buffered
                    if total > limit:
                        raise self._too_large(limit)
                    parts += conn.take_all()  # drained, so reading resumes while we wait
                elif conn.state == DONE:
                    self._finish()
                    return parts[0] if len(parts) == 1 else b"".join(parts)
                elif conn.error is not None:
                    raise conn.error
                elif not await conn.wait(timeout):
                    raise ReadTimeout(f"no body bytes for {timeout:g}s", origin=conn.origin)
        except BaseException:
            self._abort()
            raise

    async def next_chunk(self, timeout: float) -> bytes | None:
        """The body bytes that have arrived since the last call (waiting for some), or None
        at the end of the body. ReadTimeout when nothing arrives for `timeout` seconds."""
        conn = self._open_conn()
        if conn is None:
            return None
        try:
            while True:
                if conn.buffered:
                    return conn.take()
                if conn.state == DONE:
                    self._finish()
                    return None
                if conn.error is not None:
                    raise conn.error
                if not await conn.wait(timeout):
                    raise ReadTimeout(f"no body bytes for {timeout:g}s", origin=conn.origin)
        except BaseException:
            self._abort()
            raise

    def close(self) -> None:
        """Pool the connection if the response is complete and keep-alive, else abort it."""
        conn = self._conn
        if conn is None:
            return
        self._conn = None
        if conn.state == DONE:
            self._pool.release(conn)
        else:
            self._pool.discard(conn)

    def _open_conn(self) -> Connection | None:
        if self._conn is None and not self._consumed:
            raise RuntimeError("response is closed; its body can no longer be read")
        return self._conn

    def _finish(self) -> None:
        self._consumed = True
        self.close()

    def _abort(self) -> None:
        conn = self._conn
        if conn is not None:
            self._conn = None
            self._pool.discard(conn)

    def _too_large(self, limit: int) -> ResponseTooLarge:
        return ResponseTooLarge(f"response body exceeds {limit} bytes", origin=self._pool.origin)

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Response {self.status} from {self._pool.origin}>"


class _Limits(NamedTuple):
    max_connections: int
    keepalive_expiry: float
    max_header_bytes: int
    stream_buffer_bytes: int


class _OriginPool:
    """Connections to one origin: idle ones (LIFO, so the warmest is reused), a count of all
    of them against the limit, and FIFO waiters for when the limit is reached."""

    def __init__(
        self, scheme: str, authority: str, ctx: ssl.SSLContext | None, limits: _Limits
    ) -> None:
        self.host, self.port = _parse_authority(authority, 443 if scheme == "https" else 80)
        self.host_header = authority
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.origin = f"{scheme}://{shown}:{self.port}"
        self._ssl = ctx
        self._max = limits.max_connections
        self._expiry = limits.keepalive_expiry
        self._loop = asyncio.get_running_loop()
        self._factory = functools.partial(
            Connection,
            self._loop,
            self.origin,
            limits.max_header_bytes,
            limits.stream_buffer_bytes,
        )
        self._idle: deque[Connection] = deque()
        self._conns: set[Connection] = set()
        self._total = 0  # open or opening connections, idle or busy; slots handed to waiters
        self._waiters: deque[asyncio.Future[object]] = deque()
        self._closed = False

    async def acquire(self, timeout: float, fresh: bool) -> tuple[Connection, bool]:
        """A connection for one request, and whether it has carried one before."""
        if not fresh:
            conn = self._pop_idle()
            if conn is not None:
                return conn, True
        if self._total < self._max:
            self._total += 1
            return await self._connect(timeout), False
        deadline = self._loop.time() + timeout
        got = await self._wait_for_slot(timeout)
        if got is not None:
            return got, True
        return await self._connect(deadline - self._loop.time()), False

    def _pop_idle(self) -> Connection | None:
        idle = self._idle
        if not idle:
            return None
        now = self._loop.time()
        oldest_ok = now - self._expiry
        # Expire lazily from the cold end so a busy pool does not keep dead sockets forever.
        while idle and idle[0].idle_since < oldest_ok:
            self.discard(idle.popleft())
        while idle:
            conn = idle.pop()
            if not conn.lost and conn.idle_since >= oldest_ok:
                return conn
            self.discard(conn)
        return None

    async def _wait_for_slot(self, timeout: float) -> Connection | None:
        """Wait for a released connection (returned) or a freed slot (None)."""
        waiter: asyncio.Future[object] = self._loop.create_future()
        self._waiters.append(waiter)
        timer = self._loop.call_later(timeout, _expire, waiter)
        try:
            got = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                granted = waiter.result()
                if granted is not _TIMED_OUT:
                    self._hand_over(granted)  # granted just as we were cancelled: pass it on
            self._forget(waiter)
            raise
        finally:
            timer.cancel()
        if got is _TIMED_OUT:
            self._forget(waiter)
            msg = f"all {self._max} connections busy for {timeout:g}s"
            raise PoolTimeout(msg, origin=self.origin)
        assert got is None or isinstance(got, Connection)
        return got

    def _forget(self, waiter: asyncio.Future[object]) -> None:
        with contextlib.suppress(ValueError):  # already popped by _hand_over
            self._waiters.remove(waiter)

    async def _connect(self, timeout: float) -> Connection:
        try:
            conn = await self._open(timeout)
        except BaseException:
            self._free_slot()
            raise
        if self._closed:  # the client closed while we connected
            conn.abort()
            self._free_slot()
            raise TransportError("HttpClient closed", origin=self.origin)
        self._conns.add(conn)
        return conn

    async def _open(self, timeout: float) -> Connection:
        try:
            async with asyncio.timeout(timeout):
                _, conn = await self._loop.create_connection(
                    self._factory,
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None,
                )
        except TimeoutError:  # before OSError: TimeoutError is one
            msg = f"connect timed out after {timeout:g}s"
            raise ConnectTimeout(msg, origin=self.origin) from None
        except OSError as exc:  # refused, DNS, unreachable, ssl.SSLError
            raise ConnectError(f"connect failed: {_describe(exc)}", origin=self.origin) from exc
        return conn

    def release(self, conn: Connection) -> None:
        """Take back a connection whose response is finished; keep it if it can be reused."""
        if not conn.reusable or self._closed:
            self.discard(conn)
            return
        conn.park(self._loop.time())
        self._hand_over(conn)

    def _hand_over(self, granted: object) -> None:
        """Give a connection (or a free slot, None) to the first live waiter, else keep it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(granted)
                return
        if isinstance(granted, Connection):
            self._idle.append(granted)
        else:
            self._total -= 1

    def discard(self, conn: Connection) -> None:
        """Abort a connection and free its slot (once, however often it is called)."""
        conn.abort()
        if conn in self._conns:
            self._conns.remove(conn)
            self._free_slot()

    def _free_slot(self) -> None:
        self._hand_over(None)

    def close(self) -> None:
        self._closed = True
        for conn in list(self._conns):
            conn.abort()
        self._conns.clear()
        self._idle.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(TransportError("HttpClient closed", origin=self.origin))


def _expire(waiter: asyncio.Future[object]) -> None:
    if not waiter.done():
        waiter.set_result(_TIMED_OUT)


def _split_url(url: str) -> tuple[str, str]:
    """("scheme://authority", request target) without urllib: this runs on every request."""
    if url.startswith("https://"):
        start = 8
    elif url.startswith("http://"):
        start = 7
    else:
        raise ValueError("URL must start with http:// or https://")
    end = len(url)
    for sep in "/?#":
        found = url.find(sep, start, end)
        if found != -1:
            end = found
    target = url[end:]
    if "#" in target:  # fragments are never sent
        target = target[: target.index("#")]
    if not target or target[0] == "?":
        target = "/" + target
    return url[:end], target


def _parse_authority(authority: str, default_port: int) -> tuple[str, int]:
    if "@" in authority:
        raise ValueError("credentials in URLs are not supported; send an Authorization header")
    host, port_text = authority, ""
    if authority.startswith("["):  # IPv6 literal: [::1]:8080
        host, bracket, rest = authority[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError("invalid IPv6 host in URL")
        port_text = rest[1:]
    elif ":" in authority:
        host, _, port_text = authority.rpartition(":")
    if not host:
        raise ValueError("URL has no host")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError("invalid port in URL")
    return host, int(port_text)


def _encode_head(
    method: str, target: str, host: str, headers: list[tuple[str, str]], body: bytes
) -> bytes:
    """The request line and headers, validated; ValueError names no header value."""
    if method not in _KNOWN_METHODS and (not method or " " in method):
        raise ValueError("invalid HTTP method")
    if " " in target:
        raise ValueError("URL path or query contains a space")
    length = len(body) if body or method in _BODY_METHODS else None
    parts = [method, " ", target, " HTTP/1.1\r\nHost: ", host, "\r\n"]
    for name, value in headers:
        if len(name) in _RESERVED_LENGTHS and name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {name.lower()!r} is set by the transport")
        parts += (name, ": ", value, "\r\n")
    if length is not None:
        parts += ("Content-Length: ", str(length), "\r\n")
    parts.append("\r\n")
    head = "".join(parts)
    # Counting line breaks in the finished head checks every name, value, the method and the
    # target for CR/LF in three C-speed scans instead of three per string.
    lines = 3 + len(headers) + (length is not None)
    if head.count("\n") != lines or head.count("\r") != lines or "\0" in head:
        raise ValueError("request method, URL or a header contains CR, LF or NUL")
    try:
        return head.encode("latin-1")
    except UnicodeEncodeError:
        # `from None`: the UnicodeEncodeError would carry the whole head, credentials included.
        raise ValueError("request line or a header is not latin-1 text") from None


def _describe(exc: OSError) -> str:
    """An OS error in words: its class and strerror (which never hold a URL path or query)."""
    reason = exc.strerror or str(exc) or "no detail"
    return f"{type(exc).__name__}: {reason}"
