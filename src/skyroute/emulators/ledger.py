"""The emulator's record of every request it received, with secrets redacted.

Tests and the demo read it (in process as `emulator.requests`, or over HTTP at
`GET /_emulator/requests`) to see what the gateway actually sent upstream: which model, how
many attempts, which fault each attempt met. It keeps the latest `limit` records.
"""

from __future__ import annotations

from collections import deque

import msgspec

__all__ = ["REDACTED_HEADERS", "Ledger", "RequestRecord", "redacted"]

REDACTED_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "ocp-apim-subscription-key"})
_ENCODER = msgspec.json.Encoder()


class RequestRecord(msgspec.Struct, frozen=True, kw_only=True):
    method: str
    path: str
    model: str | None
    stream: bool
    headers: dict[str, str]
    request_id: str = msgspec.field(name="x-request-id")
    """The id this emulator answered with in its `x-request-id` response header."""
    attempt: str | None = msgspec.field(name="x-skyroute-attempt", default=None)
    fault: str | None = None
    """The kind of the fault applied to this request, if any."""
    time: float
    """`time.monotonic()` (or the emulator's clock) when the request was handled."""


def redacted(headers: dict[str, str]) -> dict[str, str]:
    return {k: ("***" if k in REDACTED_HEADERS else v) for k, v in headers.items()}


class Ledger:
    """A bounded, ordered list of request records."""

    def __init__(self, limit: int = 100_000) -> None:
        self.records: deque[RequestRecord] = deque(maxlen=limit)

    def add(self, record: RequestRecord) -> None:
        self.records.append(record)

    def clear(self) -> None:
        self.records.clear()

    def encode(self) -> bytes:
        return _ENCODER.encode(list(self.records))
