"""How a handler writes the response to one request: whole, streamed, or broken on purpose.

The responder speaks HTTP/1.1 framing (status line, headers, Content-Length or chunked) onto a
`Wire`, the connection's side of the bargain, which `http.py` implements over an asyncio
transport. The deliberate breakages are here too: `reset` (TCP RST), `cut` (FIN without
finishing the body) and `send_truncated` (a body shorter than its Content-Length).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable
from http import HTTPStatus
from types import MappingProxyType
from typing import Protocol

__all__ = ["ClientGone", "Responder", "Wire"]

_STATUS_LINES = MappingProxyType(
    {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}
)
_LAST_CHUNK = b"0\r\n\r\n"


class Wire(Protocol):
    """The connection under a responder."""

    @property
    def lost(self) -> bool: ...

    @property
    def lost_future(self) -> asyncio.Future[None]: ...

    def write(self, data: bytes) -> None: ...

    def flush(self) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...

    def reset(self) -> None: ...


class ClientGone(ConnectionError):
    """Raised by `Responder.write` when the connection is already closed."""


def _head(status: int, headers: Iterable[tuple[str, str]], framing: str) -> bytes:
    line = _STATUS_LINES.get(status) or f"HTTP/1.1 {status} Unknown\r\n".encode()
    lines = [f"{name}: {value}\r\n" for name, value in headers]
    return line + "".join(lines).encode("latin-1") + framing.encode("latin-1") + b"\r\n"


class _State(enum.Enum):
    IDLE = "idle"
    STREAMING = "streaming"
    DONE = "done"
    CLOSED = "closed"  # reset or cut: the connection is gone


class Responder:
    """Writes the response to one request: a whole body, a chunked stream, or a fault.

    States: idle -> done (send), idle -> streaming -> done (start, write..., end), and from
    any state -> closed (reset, cut).
    """

    __slots__ = ("_conn", "_keep_alive", "_state", "status")

    def __init__(self, conn: Wire, keep_alive: bool) -> None:
        self._conn = conn
        self._keep_alive = keep_alive
        self._state = _State.IDLE
        self.status: int | None = None
        """The status of the head sent, if one was (the emulator's ledger records it)."""

    @property
    def started(self) -> bool:
        return self._state is not _State.IDLE

    @property
    def finished(self) -> bool:
        return self._state in (_State.DONE, _State.CLOSED)

    @property
    def closed(self) -> bool:
        """Whether this response reset or cut the connection."""
        return self._state is _State.CLOSED

    def _begin(self) -> None:
        if self._state is not _State.IDLE:
            raise RuntimeError(f"response already {self._state.value}")

    @property
    def disconnected(self) -> bool:
        return self._conn.lost

    def send(
        self,
        status: int,
        body: bytes,
        headers: Iterable[tuple[str, str]] = (),
        content_type: str = "application/json",
    ) -> None:
        """Send a complete response with a Content-Length."""
        self._begin()
        framing = f"content-type: {content_type}\r\ncontent-length: {len(body)}\r\n"
        if not self._keep_alive:
            framing += "connection: close\r\n"
        self.status = status
        self._conn.write(_head(status, headers, framing) + body)
        self._conn.flush()
        self._state = _State.DONE

    def send_truncated(
        self,
        status: int,
        body: bytes,
        keep: int,
        headers: Iterable[tuple[str, str]] = (),
        content_type: str = "application/json",
    ) -> None:
        """Announce the whole body's length, send only `keep` bytes of it, then close."""
        self._begin()
        framing = f"content-type: {content_type}\r\ncontent-length: {len(body)}\r\n"
        self.status = status
        self._conn.write(_head(status, headers, framing) + body[:keep])
        self.cut()

    def start(
        self,
        status: int,
        headers: Iterable[tuple[str, str]] = (),
        content_type: str = "text/event-stream; charset=utf-8",
    ) -> None:
        """Send the head of a chunked response; follow with `write` and `end`."""
        self._begin()
        framing = f"content-type: {content_type}\r\ntransfer-encoding: chunked\r\n"
        if not self._keep_alive:
            framing += "connection: close\r\n"
        self.status = status
        self._conn.write(_head(status, headers, framing))
        self._state = _State.STREAMING

    async def write(self, data: bytes) -> None:
        """Send one chunk, waiting if the client reads slower than we write."""
        if self._conn.lost or self._state is _State.CLOSED:
            raise ClientGone
        if data:  # an empty chunk would end the body
            self._conn.write(b"%x\r\n%b\r\n" % (len(data), data))
            await self._conn.drain()

    def end(self) -> None:
        """Send the terminating chunk of a streamed response."""
        if self._state is _State.STREAMING:
            self._conn.write(_LAST_CHUNK)
            self._state = _State.DONE

    def reset(self) -> None:
        """Abort the TCP connection with an RST (SO_LINGER 0, then close)."""
        self._conn.reset()
        self._state = _State.CLOSED

    def cut(self) -> None:
        """Close the connection (FIN) without finishing the response."""
        self._conn.close()
        self._state = _State.CLOSED

    async def wait_disconnect(self, timeout: float | None = None) -> bool:
        """Wait until the client goes away (True) or `timeout` seconds pass (False)."""
        try:
            await asyncio.wait_for(asyncio.shield(self._conn.lost_future), timeout)
        except TimeoutError:
            return False
        return True

    @property
    def keep_alive(self) -> bool:
        return self._keep_alive
