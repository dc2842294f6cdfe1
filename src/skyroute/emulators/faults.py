"""Fault specs for the emulators, and the per-model script that hands them out.

A fault is a msgspec Struct, tagged on `kind`, so that the same JSON drives the control API
(`POST /_emulator/faults`), the `x-emulator-fault` request header and in-process tests:

    {"kind": "status", "status": 429, "retry_after": 2}
    {"kind": "cut", "after_tokens": 3}
    {"kind": "hang", "repeat": true}

The script keeps one FIFO queue per model name, plus `*` for any model. Each request takes the
head of its model's queue, else the head of `*`. A fault with `repeat: true` is never taken
off its queue: it applies to every request that reaches it until the script is cleared.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Annotated, TypeAlias

import msgspec

__all__ = [
    "ANY_MODEL",
    "ContentFilterFault",
    "ContextLengthFault",
    "CutFault",
    "DelayFault",
    "Fault",
    "FaultOrder",
    "FaultScript",
    "HangFault",
    "MalformedFault",
    "NoDoneFault",
    "PaceFault",
    "ResetFault",
    "SlowFirstTokenFault",
    "StallFault",
    "StatusFault",
    "StreamErrorFault",
    "applies_to_any_endpoint",
    "decode_fault",
    "decode_fault_order",
    "encode_faults",
    "to_fault",
]

ANY_MODEL = "*"

Seconds = Annotated[float, msgspec.Meta(ge=0)]
Tokens = Annotated[int, msgspec.Meta(ge=0)]


class _FaultBase(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="kind"
):
    repeat: bool = False
    """Stay at the head of the queue (apply to every later request) until cleared."""


class StatusFault(_FaultBase, tag="status", frozen=True, kw_only=True):
    """Answer with an HTTP error in the provider's own error shape."""

    status: Annotated[int, msgspec.Meta(ge=400, le=599)] = 500
    retry_after: Seconds | None = None
    """Sent as the `Retry-After` header (seconds)."""
    retry_after_ms: Tokens | None = None
    """Sent as the `retry-after-ms` header."""
    code: str | None = None
    message: str | None = None
    should_retry: bool | None = None
    """Sent as `x-should-retry: true|false`, which the official SDKs obey."""


class ResetFault(_FaultBase, tag="reset", frozen=True, kw_only=True):
    """Abort the TCP connection with an RST before any response byte."""


class HangFault(_FaultBase, tag="hang", frozen=True, kw_only=True):
    """Accept the request and never answer, until the client goes away."""


class DelayFault(_FaultBase, tag="delay", frozen=True, kw_only=True):
    """Wait `seconds` before the response head, then answer normally."""

    seconds: Seconds = 1.0


class SlowFirstTokenFault(_FaultBase, tag="slow_first_token", frozen=True, kw_only=True):
    """Stream: send the head at once and the first event after `seconds`. Else: a delay."""

    seconds: Seconds = 1.0


class PaceFault(_FaultBase, tag="pace", frozen=True, kw_only=True):
    """Stream: wait `seconds` before every content event, as a slow model would. Else: no
    effect."""

    seconds: Seconds = 0.05


class CutFault(_FaultBase, tag="cut", frozen=True, kw_only=True):
    """Stream: close the connection after `after_tokens` content chunks. Else: close mid-body."""

    after_tokens: Tokens = 1


class StallFault(_FaultBase, tag="stall", frozen=True, kw_only=True):
    """Stream: after `after_tokens` chunks send nothing for `seconds`, then close.

    Else: send nothing at all for `seconds`, then close. Either way, a client that leaves
    ends it early.
    """

    after_tokens: Tokens = 1
    seconds: Seconds = 3600.0


class MalformedFault(_FaultBase, tag="malformed", frozen=True, kw_only=True):
    """Stream: after `after_tokens` chunks send `data: {"choices": [`, then go on normally.

    Else: a 200 whose body is that broken JSON.
    """

    after_tokens: Tokens = 1


class NoDoneFault(_FaultBase, tag="no_done", frozen=True, kw_only=True):
    """Stream: send every chunk but `[DONE]`; hold the response open `hold` seconds (0: end
    the HTTP response cleanly at once). Else: no effect."""

    hold: Seconds = 0.0


class ContextLengthFault(_FaultBase, tag="context_length", frozen=True, kw_only=True):
    """Answer 400 `context_length_exceeded`, as if the prompt were over `max_context`."""

    max_context: Annotated[int, msgspec.Meta(ge=1)] = 128_000


class ContentFilterFault(_FaultBase, tag="content_filter", frozen=True, kw_only=True):
    """Azure: 400 `content_filter` (prompt blocked). OpenAI: 200, finish `content_filter`."""


class StreamErrorFault(_FaultBase, tag="stream_error", frozen=True, kw_only=True):
    """Stream: after `after_tokens` chunks send an in-band `{"error": ...}` event and end.

    Else: a 500 with the same error object.
    """

    after_tokens: Tokens = 1
    message: str = "The server had an error while processing your request. Sorry about that!"
    type: str = "server_error"
    code: str | None = None


Fault: TypeAlias = (
    StatusFault
    | ResetFault
    | HangFault
    | DelayFault
    | SlowFirstTokenFault
    | PaceFault
    | CutFault
    | StallFault
    | MalformedFault
    | NoDoneFault
    | ContextLengthFault
    | ContentFilterFault
    | StreamErrorFault
)

_ANY_ENDPOINT = (StatusFault, ResetFault, HangFault, DelayFault)


def applies_to_any_endpoint(fault: Fault) -> bool:
    """Whether the fault makes sense outside chat completions (models, embeddings)."""
    return isinstance(fault, _ANY_ENDPOINT)


class FaultOrder(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of `POST /_emulator/faults`."""

    model: str = ANY_MODEL
    faults: list[Fault]


_FAULT_DECODER: msgspec.json.Decoder[Fault] = msgspec.json.Decoder(Fault)
_ORDER_DECODER = msgspec.json.Decoder(FaultOrder)
_ENCODER = msgspec.json.Encoder()


def decode_fault(data: bytes | str) -> Fault:
    """Parse one fault spec from JSON; raises `msgspec.ValidationError` naming the bad path."""
    return _FAULT_DECODER.decode(data)


def decode_fault_order(data: bytes | str) -> FaultOrder:
    return _ORDER_DECODER.decode(data)


def to_fault(spec: Fault | dict[str, object]) -> Fault:
    """Accept a Struct as is, or convert a plain dict such as `{"kind": "reset"}`."""
    if isinstance(spec, dict):
        fault: Fault = msgspec.convert(spec, Fault)
        return fault
    return spec


def encode_faults(pending: dict[str, list[Fault]]) -> bytes:
    return _ENCODER.encode(pending)


def _always(_fault: Fault) -> bool:
    return True


class FaultScript:
    """Per-model FIFO queues of faults; `*` serves any model whose own queue is empty.

    Not thread-safe: touch it from the emulator's event loop (the thread helper does).
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._queues: dict[str, deque[Fault]] = {}
        self._limit = limit

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def __bool__(self) -> bool:
        return bool(self._queues)  # empty queues are dropped, so this is cheap

    def add(self, model: str, faults: Iterable[Fault]) -> None:
        """Append faults to the queue of `model` (`*` for any model)."""
        new = list(faults)
        if len(self) + len(new) > self._limit:
            raise ValueError(f"fault script is limited to {self._limit} entries")
        if new:
            self._queues.setdefault(model, deque()).extend(new)

    def clear(self, model: str | None = None) -> None:
        """Drop every queued fault, or only those of one model."""
        if model is None:
            self._queues.clear()
        else:
            self._queues.pop(model, None)

    def take(self, model: str | None, accepts: Callable[[Fault], bool] = _always) -> Fault | None:
        """The fault for the next request on `model`, if any; repeat faults stay queued.

        A queue whose head `accepts` rejects is left untouched (an embeddings call does not
        consume a stream fault meant for chat) and the `*` queue is tried instead.
        """
        keys = (model, ANY_MODEL) if model is not None and model != ANY_MODEL else (ANY_MODEL,)
        for key in keys:
            queue = self._queues.get(key)
            if not queue or not accepts(queue[0]):
                continue
            head = queue[0]
            if not head.repeat:
                queue.popleft()
                if not queue:
                    del self._queues[key]
            return head
        return None

    def pending(self) -> dict[str, list[Fault]]:
        """A snapshot of the queues, model by model."""
        return {model: list(queue) for model, queue in self._queues.items()}
