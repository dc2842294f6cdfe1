"""What ``GET /admin/runtime`` answers: facts about the running process, for admins.

The admin API only knows the ``RuntimeSource`` interface; ``server.runtime`` implements it
over the loop monitor, the stream registry and the outbox.
"""

from __future__ import annotations

from typing import Protocol

import msgspec


class LoopLag(msgspec.Struct, frozen=True, kw_only=True):
    """Event-loop lag since start or the last reset, in milliseconds. Percentiles are the
    upper edges of histogram buckets (capped at ``max``), so they are upper bounds."""

    max: float
    p50: float
    p99: float
    p999: float
    stalls_over_20ms: int
    samples: int


class RuntimeView(msgspec.Struct, frozen=True, kw_only=True):
    loop_lag_ms: LoopLag
    rss_kib: int | None  # resident memory; None where /proc is not available
    open_streams: int  # streaming responses being relayed now
    outbox_pending: int | None  # usage rows not yet in the database; None before start
    tasks: int  # asyncio tasks alive on the gateway's loop
    in_flight: int  # model requests being served now
    shed: int  # model requests refused with 503 as overload since start
    pid: int = 0  # the process that answered
    worker: int = 0  # its index among the workers (``server.workers``); 0 when alone


class RuntimeSource(Protocol):
    def read(self) -> RuntimeView: ...

    def reset_lag(self) -> None:
        """Start a new loop-lag window (a benchmark reads one phase at a time)."""
        ...
