"""What an endpoint handler gets: the request as read by the server, and a way to answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]


class RequestContext:
    """One inbound HTTP request. ``headers`` are ASGI's raw (lower-case name, value) pairs."""

    __slots__ = ("body", "headers", "method", "path", "request_id", "send")

    def __init__(
        self,
        *,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        request_id: str,
        send: Send,
    ) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.request_id = request_id
        self.send = send

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None
