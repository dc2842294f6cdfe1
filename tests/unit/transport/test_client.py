"""HttpClient against tiny scripted HTTP/1.1 servers on 127.0.0.1 speaking raw bytes.

Every async test runs on plain asyncio (pytest-asyncio) and, through test_under_uvloop, on
uvloop too: production runs uvloop, some tests run plain asyncio, and the two loops differ in
transports, read sizes and timer resolution.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import struct
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType

import pytest
import uvloop

from skyroute.transport.client import HttpClient, Response
from skyroute.transport.connection import DONE
from skyroute.transport.errors import (
    ConnectError,
    ConnectionLost,
    ConnectTimeout,
    PoolTimeout,
    ProtocolError,
    ReadTimeout,
    ResponseTimeout,
    ResponseTooLarge,
    TransportError,
)

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter
T = 2.0  # a timeout that must never fire in these tests
Handler = Callable[["Upstream", asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


class Upstream:
    """A scripted server: `handler(up, reader, writer, n)` serves the n-th accepted
    connection (1-based); `closed` counts connections the client closed or reset first
    (or that `drop` aborted)."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self._handler = handler
        self._ssl = ssl_context
        self.accepted = 0
        self.closed = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Upstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        self.drop()  # handlers see their connection fail and return
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=1)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
        await self._server.wait_closed()

    def drop(self) -> None:
        """Abort every server-side connection now (the client sees FIN or RST)."""
        for writer in self._writers:
            writer.transport.abort()

    def url(self, path: str = "/") -> str:
        scheme = "https" if self._ssl else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.accepted += 1
        try:
            await self._handler(self, reader, writer, self.accepted)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.closed += 1  # the client went away in the middle of the script
        finally:
            writer.transport.abort()
            self._tasks.discard(task)
            self._writers.discard(writer)

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        body = await reader.readexactly(length) if length else b""
        self.requests.append((head, body))
        return head

    async def wait_for_client_close(self, reader: asyncio.StreamReader) -> None:
        """Block until the client closes or resets; count it."""
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
        self.closed += 1

    async def until_closed(self, count: int) -> None:
        for _ in range(200):  # 2 s at most
            if self.closed >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{self.closed} of {count} connections closed by the client")


def ok(body: bytes = b"ok", *headers: str) -> bytes:
    extra = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def serve(*responses: bytes) -> Handler:
    """Keep-alive server answering each request on a connection with the next response."""

    async def handler(up: Upstream, r: Reader, w: Writer, n: int) -> None:
        for response in responses:
            await up.read_request(r)
            w.write(response)
            await w.drain()
        await up.wait_for_client_close(r)

    return handler


async def until(check: Callable[[], bool]) -> None:
    for _ in range(200):  # 2 s at most
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached within 2 s")


async def get(
    client: HttpClient, url: str, *, connect_timeout: float = T, header_timeout: float = T
) -> Response:
    return await client.request(
        "GET", url, [], connect_timeout=connect_timeout, header_timeout=header_timeout
    )


# -- bodies and framing --------------------------------------------------------------------------


async def test_content_length_response_and_exact_request_bytes() -> None:
    async with Upstream(serve(ok(b"hello", "X-Up: 1"))) as up, HttpClient() as client:
        headers = [("Authorization", "Bearer sk-1"), ("X-Trace", "a b")]
        resp = await client.request(
            "POST", up.url("/v1/x?q=1"), headers, b'{"a":1}', connect_timeout=T, header_timeout=T
        )
        async with resp:
            assert resp.status == 200
            assert resp.headers == [("content-length", "5"), ("x-up", "1")]
            assert resp.header("x-up") == "1"
            assert resp.header("missing") is None
            assert await resp.read(limit=100, timeout=T) == b"hello"
        assert up.requests == [
            (
                f"POST /v1/x?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{up.port}\r\n"
                "Authorization: Bearer sk-1\r\nX-Trace: a b\r\nContent-Length: 7\r\n\r\n".encode(),
                b'{"a":1}',
            )
        ]


async def test_content_length_added_only_for_bodies_and_body_methods() -> None:
    async with Upstream(serve(ok(), ok(), ok())) as up, HttpClient() as client:
        for method, path in (("GET", ""), ("POST", "?x=1#frag"), ("DELETE", "/d")):
            url = up.url("/").rstrip("/") + path
            async with await client.request(method, url, [], connect_timeout=T, header_timeout=T):
                pass
        heads = [head for head, _ in up.requests]
        assert heads[0] == f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{up.port}\r\n\r\n".encode()
        assert heads[1].startswith(b"POST /?x=1 HTTP/1.1\r\n")
        assert heads[1].endswith(b"Content-Length: 0\r\n\r\n")
        assert b"Content-Length" not in heads[2]


async def test_chunked_body_split_at_odd_places_then_connection_reused() -> None:
    wire = b"4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n"

    async def handler(up: Upstream, r: Reader, w: Writer, n: int) -> None:
        await up.read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(wire), 3):
            w.write(wire[i : i + 3])
            await w.drain()
            await asyncio.sleep(0.001)
        await up.read_request(r)
        w.write(ok(b"again"))
        await up.wait_for_client_close(r)

    async with Upstream(handler) as up, HttpClient() as client:
        async with await get(client, up.url()) as resp:
            pieces = []
            for _ in range(len(wire)):
                piece = await resp.next_chunk(T)
                if piece is None:
                    break
                pieces.append(piece)
            assert b"".join(pieces) == b"Wikipedia in\r\n\r\nchunks."
            assert len(pieces) > 1
            assert await resp.next_chunk(T) is None  # the end stays the end
        async with await get(client, up.url()) as resp:
            assert await resp.read(limit=100, timeout=T) == b"again"
        assert up.accepted == 1


async def test_body_read_until_close_and_connection_not_reused() -> None:
    async def handler(up: Upstream, r: Reader, w: Writer, n: int) -> None:
        await up.read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ")
        await w.drain()
        await asyncio.sleep(0.01)
        w.write(b"close")
        await w.drain()
        w.close()

    async with Upstream(handler) as up, HttpClient() as client:
        for _ in range(2):
            async with await get(client, up.url()) as resp:
                assert await resp.read(limit=100, timeout=T) == b"until close"
        assert up.accepted == 2


async def test_keep_alive_reuses_one_connection() -> None:
    async with Upstream(serve(ok(b"1"), ok(b"2"), ok(b"3"))) as up, HttpClient() as client:
        for expected in (b"1", b"2", b"3"):
            async with await get(client, up.url()) as resp:
                assert await resp.read(limit=10, timeout=T) == expected
        assert up.accepted == 1


async def test_connection_close_header_is_honoured() -> None:
    async with Upstream(serve(ok(b"a", "Connection: close"))) as up, HttpClient() as client:
        for _ in range(2):
            async with await get(client, up.url()) as resp:
                assert await resp.read(limit=10, timeout=T) == b"a"
        assert up.accepted == 2
        await up.until_closed(2)


async def test_interim_1xx_responses_are_skipped() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    async with Upstream(serve(interim + ok(b"final"), ok())) as up, HttpClient() as client:
        async with await get(client, up.url()) as resp:
            assert resp.status == 200
            assert resp.header("link") is None
            assert await resp.read(limit=10, timeout=T) == b"final"
        async with await get(client, up.url()):
            pass
        assert up.accepted == 1


async def test_head_204_and_304_have_no_body_and_keep_the_connection() -> None:
    head_reply = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    no_content = b"HTTP/1.1 204 No Content\r\n\r\n"
    not_modified = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\n\r\n"
    async with (
        Upstream(serve(head_reply, no_content, not_modified)) as up,
        HttpClient() as client,
    ):
        resp = await client.request("HEAD", up.url(), [], connect_timeout=T, header_timeout=T)
        assert await resp.read(limit=10, timeout=T) == b""
        for status in (204, 304):
            async with await get(client, up.url()) as resp:
                assert resp.status == status
                assert await resp.next_chunk(T) is None
        assert up.accepted == 1


async def test_complete_but_unread_response_is_pooled_on_close() -> None:
    async with Upstream(serve(ok(b"unread"), ok(b"two"))) as up, HttpClient() as client:
        resp = await get(client, up.url())
        # Wait for the body to land in the client without reading it (peeking at internals).
        await until(lambda: resp._conn is not None and resp._conn.state == DONE)
        resp.close()
        resp.close()  # idempotent
        with pytest.raises(RuntimeError):
            await resp.read(limit=10, timeout=T)
        async with await get(client, up.url()) as resp:
            assert await resp.read(limit=10, timeout=T) == b"two"
        assert up.accepted == 1


async def test_stray_bytes_after_a_response_keep_its_body_but_end_reuse() -> None:
    async def handler(up: Upstream, r: Reader, w: Writer, n: int) -> None:
        await up.read_request(r)
        w.write(ok(b"body"))
        await w.drain()
        await asyncio.sleep(0.02)
        w.write(b"HTTP/1.1 200 OK\r\n")  # a response nobody asked for
        if n == 1:
            await up.wait_for_client_close(r)
        else:
            await up.read_request(r)

    async with Upstream(handler) as up, HttpClient() as client:
        resp = await get(client, up.url())
        await up.until_closed(1)  # the client dropped the connection on the stray bytes...
        assert await resp.read(limit=10, timeout=T) == b"body"  # ...but kept the body
        resp.close()
        async with await get(client, up.url()):
            pass
        assert up.accepted == 2


async def test_closing_an_unfinished_response_aborts_the_connection() -> None:
    async with Upstream(serve(ok(b"x" * 100)[:-50])) as up, HttpClient() as client:
        async with await get(client, up.url()):
            pass
        await up.until_closed(1)


# -- pooling ---------------------------------------------------------------------------------


async def test_stale_pooled_connection_is_retried_on_a_fresh_one() -> None:
    async def handler(up: Upstream, r: Reader, w: Writer, n: int) -> None:
        if n == 1:  # answer once, then drop the next request the way an idle timeout does
            await up.read_request(r)
            w.write(ok(b"first"))
            await up.read_request(r)
            return
        await up.read_request(r)
        w.write(ok(b"second"))
        await up.wait_for_client_close(r)

    async with Upstream(handler) as up, HttpClient() as client:
        for expected in (b"first", b"second"):
            async with await get(client, up.url()) as resp:
                assert await resp.read(limit=10, timeout=T) == expected
        assert up.accepted == 2


async def test_idle_connection_closed_by_peer_is_not_reused() -> None:
    async def handler(up: Upstream, r: Reader, w: Writer, n: int) -> None:
        await up.read_request(r)
        w.write(ok(str(n).encode()))
        await w.drain()

    async with Upstream(handler) as up, HttpClient() as client:
        async with await get(client, up.url()) as resp:
            assert await resp.read(limit=10, timeout=T) == b"1"
        await asyncio.sleep(0.05)  # the FIN arrives and is noticed while the connection idles
        async with await get(client, up.url()) as resp:
            assert await resp.read(limit=10, timeout=T) == b"2"
        assert up.accepted == 2


async def test_fresh_connection_failing_is_not_retried() -> None:
    async def handler(up: Upstream, r: Reader, w: Writer, n: int) -> None:
        await up.read_request(r)

    async with Upstream(handler) as up, HttpClient() as client:
        with pytest.raises(ConnectionLost) as info:
            await get(client, up.url())
        assert info.value.before_response is True
        assert up.accepted == 1


async def test_reused_connection_failing_after_response_bytes_is_not_retried() -> None:
    async def handler(up: Upstream, r: Reader, w: Writer, n: int) -> None:
        await up.read_request(r)
        w.write(ok(b"1"))
        await up.read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Le")
        await w.drain()  # then return: the connection closes after a partial head

    async with Upstream(handler) as up, HttpClient() as client:
        async with await get(client, up.url()) as resp:
            await resp.read(limit=10, timeout=T)
        with pytest.raises(ConnectionLost) as info:
            await get(client, up.url())
        assert info.value.before_response is False
        assert up.accepted == 1


async def test_idle_connections_expire_lazily() -> None:
    async with (
        Upstream(serve(ok(), ok())) as up,
        HttpClient(keepalive_expiry=0.05) as client,
    ):
        async with await get(client, up.url()) as resp:
            await resp.read(limit=10, timeout=T)
        await asyncio.sleep(0.1)
        async with await get(client, up.url()) as resp:
            await resp.read(limit=10, timeout=T)
        assert up.accepted == 2
        await up.until_closed(1)  # the expired one was closed on checkout


async def test_pool_limit_makes_requests_wait_for_a_free_connection() -> None:
    async def slow(up: Upstream, r: Reader, w: Writer, n: int) -> None:
        for _ in range(3):
            await up.read_request(r)
            await asyncio.sleep(0.03)
            w.write(ok())

    up = Upstream(slow)

    async def fetch(client: HttpClient) -> bytes:
        async with await get(client, up.url()) as resp:
            return await resp.read(limit=10, timeout=T)

    async with up, HttpClient(max_connections_per_origin=1) as client:
        assert await asyncio.gather(*(fetch(client) for _ in range(3))) == [b"ok"] * 3
        assert up.accepted == 1


async def test_pool_timeout_and_cancelled_waiters_free_their_turn() -> None:
    async with Upstream(serve(ok(), ok())) as up, HttpClient(max_connections_per_origin=1) as c:
        held = await get(c, up.url())
        with pytest.raises(PoolTimeout) as info:
            await get(c, up.url(), connect_timeout=0.05)
        assert isinstance(info.value, ConnectTimeout)
        waiting = asyncio.ensure_future(get(c, up.url()))
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await held.read(limit=10, timeout=T)
        async with await get(c, up.url(), connect_timeout=0.5) as resp:
            assert await resp.read(limit=10, timeout=T) == b"ok"
        assert up.accepted == 1


async def test_aclose_closes_idle_connections() -> None:
    async with Upstream(serve(ok())) as up:
        client = HttpClient()
        async with await get(client, up.url()) as resp:
            await resp.read(limit=10, timeout=T)
        await client.aclose()
        await up.until_closed(1)
        with pytest.raises(RuntimeError):
            await get(client, up.url())


async def test_aclose_fails_requests_in_flight_at_once() -> None:
    async def handler(up: Upstream, r: Reader, w: Writer, n: int) -> None:
        await up.read_request(r)
        await up.wait_for_client_close(r)

    async with Upstream(handler) as up:
        client = HttpClient()
        pending = asyncio.ensure_future(get(client, up.url(), header_timeout=5))
        await until(lambda: len(up.requests) == 1)
        started = asyncio.get_running_loop().time()
        await client.aclose()
        with pytest.raises(TransportError):
            await pending
        assert asyncio.get_running_loop().time() - started < 1
        await up.until_closed(1)


# -- failures --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connect_refused_is_connect_error_without_the_query() -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1?api-key=secret"
    async with HttpClient() as client:
        with pytest.raises(ConnectError) as info:
            await get(client, url)
    message = str(info.value)
    assert "127.0.0.1" in message
    assert "secret" not in message and "/v1" not in message


async def test_connect_timeout_against_a_full_accept_queue() -> None:
    if sys.platform != "linux":
        pytest.skip("relies on Linux dropping SYNs when a listener's accept queue is full")
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(3):  # fill the accept queue; later SYNs are dropped, not refused
            filler = socket.socket()
            filler.setblocking(False)
            fillers.append(filler)
            if filler.connect_ex(("127.0.0.1", port)) not in (0, 115):  # 115: EINPROGRESS
                pytest.skip("could not fill the accept queue")
        await asyncio.sleep(0.02)
        async with HttpClient() as client:
            with pytest.raises(ConnectTimeout):
                await get(client, f"http://127.0.0.1:{port}/", connect_timeout=0.1)
    finally:
        for s in [listener, *fillers]:
            s.close()


async def test_no_response_head_is_response_timeout_and_aborts() -> None:
    async def handler(up: Upstream, r: Reader, w: Writer, n: int) -> None:
        await up.read_request(r)
        await up.wait_for_client_close(r)

    async with Upstream(handler) as up, HttpClient() as client:
        with pytest.raises(ResponseTimeout):
            await get(client, up.url(), header_timeout=0.05)
        await up.until_closed(1)


async def test_reset_before_headers_is_connection_lost_before_response() -> None:
    async def handler(up: Upstream, r: Reader, w: Writer, n: int) -> None:
        await up.read_request(r)
        sock = w.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.transport.abort()  # closing with linger 0 sends RST

    async with Upstream(handler) as up, HttpClient() as client:
        with pytest.raises(ConnectionLost) as info:
            await get(client, up.url())
        assert info.value.before_response is True


async def test_cut_mid_body_is_connection_lost() -> None:
    partial = ok(b"x" * 100)[:-90]
    for reader in ("read", "next_chunk"):
        async with Upstream(serve(partial)) as up, HttpClient() as client:
            # `serve` waits for the client, so close from the server side explicitly:
            resp = await get(client, up.url())
            up.drop()
            with pytest.raises(ConnectionLost) as info:
                if reader == "read":
                    await resp.read(limit=1000, timeout=T)
                else:
                    assert await resp.next_chunk(T) == b"x" * 10
                    await resp.next_chunk(T)
            assert info.value.before_response is False


async def test_idle_gap_in_body_is_read_timeout_and_aborts() -> None:
    for reader in ("read", "next_chunk"):
        async with Upstream(serve(ok(b"x" * 100)[:-90])) as up, HttpClient() as client:
            resp = await get(client, up.url())
            with pytest.raises(ReadTimeout):
                if reader == "read":
                    await resp.read(limit=1000, timeout=0.05)
                else:
                    await resp.next_chunk(0.05)
                    await resp.next_chunk(0.05)
            await up.until_closed(1)


async def test_body_over_limit_is_response_too_large() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"40\r\n" + b"y" * 64
    chunked += b"\r\n" * 1 + b"40\r\n" + b"y" * 64 + b"\r\n0\r\n\r\n"
    for response in (ok(b"x" * 1000), chunked):
        async with Upstream(serve(response)) as up, HttpClient() as client:
            resp = await get(client, up.url())
            with pytest.raises(ResponseTooLarge):
                await resp.read(limit=100, timeout=T)
            await up.until_closed(1)


async def test_oversized_response_head_is_rejected() -> None:
    big = ok(b"", "X-Big: " + "b" * 4000)
    async with Upstream(serve(big)) as up, HttpClient(max_header_bytes=1024) as client:
        with pytest.raises(ResponseTooLarge):
            await get(client, up.url())


async def test_garbage_is_protocol_error() -> None:
    async with Upstream(serve(b"SSH-2.0-OpenSSH\r\n\r\n")) as up, HttpClient() as client:
        with pytest.raises(ProtocolError):
            await get(client, up.url())


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/", [("X-A", "v\r\nInjected: 1")]),
        ("GET", "/", [("X-A\n", "v")]),
        ("GET", "/", [("X-A", "v\0")]),
        ("GET", "/a\r\nX: 1", []),
        ("GET", "/a b", []),
        ("GET\r\n", "/", []),
        ("GET", "/", [("Host", "evil")]),
        ("POST", "/", [("content-length", "5")]),
        ("GET", "/", [("X-A", "€")]),
    ],
)
async def test_injection_and_framing_headers_are_rejected(
    method: str, path: str, headers: list[tuple[str, str]]
) -> None:
    async with Upstream(serve(ok())) as up, HttpClient() as client:
        with pytest.raises(ValueError):
            await client.request(method, up.url(path), headers, connect_timeout=T, header_timeout=T)
        assert up.accepted == 0


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/", "127.0.0.1:80/", "http://user:pw@127.0.0.1/", "http://:80/"]
)
async def test_bad_urls_are_rejected(url: str) -> None:
    async with HttpClient() as client:
        with pytest.raises(ValueError) as info:
            await get(client, url)
        assert "pw" not in str(info.value)


# -- cancellation and back-pressure ----------------------------------------------------------


async def test_cancelling_a_request_aborts_its_connection_without_leaking_tasks() -> None:
    async def handler(up: Upstream, r: Reader, w: Writer, n: int) -> None:
        await up.read_request(r)
        if n == 2:
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await up.wait_for_client_close(r)

    before = asyncio.all_tasks()
    async with Upstream(handler) as up, HttpClient() as client:
        pending = asyncio.ensure_future(get(client, up.url()))
        await until(lambda: len(up.requests) == 1)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        await up.until_closed(1)

        resp = await get(client, up.url())
        assert await resp.next_chunk(T) == b"abc"
        reading = asyncio.ensure_future(resp.next_chunk(T))
        await asyncio.sleep(0.01)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        await up.until_closed(2)
        with pytest.raises(RuntimeError):
            await resp.next_chunk(T)
    assert asyncio.all_tasks() == before


async def test_slow_reader_applies_back_pressure() -> None:
    total = 20 * 1024 * 1024
    limit = 256 * 1024
    max_read = 256 * 1024  # asyncio and uvloop both read at most 256 KiB at a time

    async def handler(up: Upstream, r: Reader, w: Writer, n: int) -> None:
        await up.read_request(r)
        w.write(f"HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n".encode())
        block = b"z" * (64 * 1024)
        for _ in range(total // len(block)):
            w.write(block)
            await w.drain()
        await up.wait_for_client_close(r)

    async with Upstream(handler) as up, HttpClient(stream_buffer_bytes=limit) as client:
        async with await get(client, up.url()) as resp:
            received = biggest = 0
            for _ in range(total):  # bounded: every call returns at least one byte
                await asyncio.sleep(0.002)  # a slow consumer: the buffer fills between reads
                piece = await resp.next_chunk(T)
                if piece is None:
                    break
                received += len(piece)
                biggest = max(biggest, len(piece))
        assert received == total
        # next_chunk hands over everything buffered, so the largest piece is the peak buffer.
        assert limit < biggest <= limit + max_read


async def test_large_read_with_small_stream_buffer_does_not_stall() -> None:
    body = bytes(range(256)) * 16 * 1024  # 4 MiB
    async with Upstream(serve(ok(body))) as up, HttpClient(stream_buffer_bytes=65536) as client:
        resp = await get(client, up.url())
        assert await resp.read(limit=len(body), timeout=T) == body
        resp.close()


# -- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made by the openssl command line tool."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl binary to make a self-signed certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=t"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


async def test_https_round_trip_and_reuse(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    async with (
        Upstream(serve(ok(b"secure"), ok(b"again")), ssl_context=server_ctx) as up,
        HttpClient(ssl_context=client_ctx) as client,
    ):
        for expected in (b"secure", b"again"):
            async with await get(client, up.url()) as resp:
                assert await resp.read(limit=100, timeout=T) == expected
        assert up.accepted == 1
    async with (
        Upstream(serve(ok()), ssl_context=server_ctx) as up,
        HttpClient() as client,  # the default context does not trust a self-signed cert
    ):
        with pytest.raises(ConnectError, match="certificate"):
            await get(client, up.url())


# -- the same cases on uvloop ----------------------------------------------------------------

UVLOOP_CASES: list[Callable[[], Awaitable[None]]] = [
    test_content_length_response_and_exact_request_bytes,
    test_chunked_body_split_at_odd_places_then_connection_reused,
    test_body_read_until_close_and_connection_not_reused,
    test_keep_alive_reuses_one_connection,
    test_connection_close_header_is_honoured,
    test_head_204_and_304_have_no_body_and_keep_the_connection,
    test_stale_pooled_connection_is_retried_on_a_fresh_one,
    test_pool_limit_makes_requests_wait_for_a_free_connection,
    test_pool_timeout_and_cancelled_waiters_free_their_turn,
    test_connect_refused_is_connect_error_without_the_query,
    test_no_response_head_is_response_timeout_and_aborts,
    test_reset_before_headers_is_connection_lost_before_response,
    test_cut_mid_body_is_connection_lost,
    test_idle_gap_in_body_is_read_timeout_and_aborts,
    test_body_over_limit_is_response_too_large,
    test_cancelling_a_request_aborts_its_connection_without_leaking_tasks,
    test_slow_reader_applies_back_pressure,
    test_large_read_with_small_stream_buffer_does_not_stall,
]


def _run_on_uvloop(case: Awaitable[None]) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(asyncio.wait_for(case, 10))


@pytest.mark.parametrize("case", UVLOOP_CASES, ids=lambda case: case.__name__)
def test_under_uvloop(case: Callable[[], Awaitable[None]]) -> None:
    _run_on_uvloop(case())


def test_https_under_uvloop(tls_files: tuple[Path, Path]) -> None:
    _run_on_uvloop(test_https_round_trip_and_reuse(tls_files))
