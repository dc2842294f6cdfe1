"""Writing ASGI responses: JSON bodies, errors in OpenAI's shape, stream starts."""

from __future__ import annotations

import math
from collections.abc import Callable

from skyroute.api.context import Send
from skyroute.core.errors import GatewayError
from skyroute.wire.openai import error_body

JSON = b"application/json"
EVENT_STREAM = b"text/event-stream"


def base_headers(request_id: str, content_type: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", content_type), (b"x-request-id", request_id.encode())]


async def send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_error(
    send: Send,
    request_id: str,
    error: GatewayError,
    body_of: Callable[[GatewayError], bytes] = error_body,
) -> None:
    headers = base_headers(request_id, JSON)
    if error.retry_after is not None:
        headers.append((b"retry-after", str(max(1, math.ceil(error.retry_after))).encode()))
    await send_json(send, error.status, body_of(error), headers)
