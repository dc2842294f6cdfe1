"""The emulator's record of every request it received, with secrets redacted.

Tests and the demo read it (in process as `emulator.requests`, or over HTTP at
`GET /_emulator/requests`) to see what the gateway actually sent upstream: which model, how
many attempts, which fault each attempt met, and what each answer would be billed. It keeps
the latest `limit` records.

A record is added when the request is admitted and settled as it is answered (a settled
record replaces the earlier one, so a reader sees either whole). What it bills:

- `status`: the HTTP status of the response head sent; None when no head was sent (a reset,
  a hang, a stall before any byte) or while the answer is still pending.
- `prompt_tokens`, `completion_tokens` (OpenAI's names): the usage of a chat completion the
  emulator answered with 200, as the cloud would bill it. A whole body bills its usage even
  when a fault cuts or garbles it (the answer was generated). A stream bills what its usage
  chunk says (sent or not: `include_usage` off, or the client leaving early, changes
  nothing); a fault that ends a stream early (cut, stall, stream_error) bills the prompt
  and the completion tokens sent before it. None for errors and for every other endpoint.
  So far only the OpenAI/Azure emulator fills them in; the others leave them None.
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
    status: int | None = None
    """The HTTP status answered (see the module docstring)."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


def redacted(headers: dict[str, str]) -> dict[str, str]:
    return {k: ("***" if k in REDACTED_HEADERS else v) for k, v in headers.items()}


class Ledger:
    """A bounded, ordered list of request records."""

    def __init__(self, limit: int = 100_000) -> None:
        self.records: deque[RequestRecord] = deque(maxlen=limit)

    def add(self, record: RequestRecord) -> None:
        self.records.append(record)

    def settle(self, request_id: str, **fields: int | None) -> None:
        """Replace the newest record of `request_id` with `fields` (status, tokens) set.

        Records being settled are the newest few, so the search from the right is short.
        """
        records = self.records
        for back, record in enumerate(reversed(records), 1):
            if record.request_id == request_id:
                records[-back] = msgspec.structs.replace(record, **fields)
                return

    def clear(self) -> None:
        self.records.clear()

    def encode(self) -> bytes:
        return _ENCODER.encode(list(self.records))
