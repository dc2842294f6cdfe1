"""What an endpoint handler gets: the request as read by the server, and a way to answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from skyroute.governance.directory import Caller

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]


class RequestContext:
    """One inbound HTTP request. ``headers`` are ASGI's raw (lower-case name, value) pairs;
    ``path`` is the raw path as sent (no percent-decoding), ``query`` the raw query string."""

    __slots__ = ("body", "caller", "headers", "method", "path", "query", "request_id", "send")

    def __init__(
        self,
        *,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        request_id: str,
        send: Send,
        query: bytes = b"",
        caller: Caller | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.request_id = request_id
        self.send = send
        self.query = query
        # Who is calling, once the server has authenticated the request.
        self.caller = caller

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None
