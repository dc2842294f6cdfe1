"""The gateway's ``RuntimeSource``: loop lag, memory, streams, outbox and task counts."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from skyroute.api.runtime import LoopLag, RuntimeView
from skyroute.api.state import Lifecycle
from skyroute.server.admission import Admission
from skyroute.server.loop_monitor import LoopMonitor
from skyroute.server.storage import Storage

STATM = Path("/proc/self/statm")


class GatewayRuntime:
    def __init__(
        self,
        monitor: LoopMonitor,
        lifecycle: Lifecycle,
        storage: Storage,
        admission: Admission,
        worker: int = 0,
    ) -> None:
        self._worker = worker
        self._monitor = monitor
        self._admission = admission
        self._lifecycle = lifecycle
        self._storage = storage

    def read(self) -> RuntimeView:
        monitor = self._monitor
        outbox = self._storage.outbox
        return RuntimeView(
            loop_lag_ms=LoopLag(
                max=round(monitor.max_ms, 3),
                p50=round(monitor.percentile_ms(0.5), 3),
                p99=round(monitor.percentile_ms(0.99), 3),
                p999=round(monitor.percentile_ms(0.999), 3),
                stalls_over_20ms=monitor.stalls_over_20ms,
                samples=monitor.samples,
            ),
            rss_kib=rss_kib(),
            open_streams=self._lifecycle.open_streams,
            outbox_pending=None if outbox is None else outbox.pending,
            tasks=len(asyncio.all_tasks()),
            in_flight=self._admission.in_flight,
            shed=self._admission.shed,
            pid=os.getpid(),
            worker=self._worker,
        )

    def reset_lag(self) -> None:
        self._monitor.reset()


def rss_kib(statm: Path = STATM) -> int | None:
    """Resident set size from ``/proc/self/statm`` (Linux); None where it cannot be read."""
    try:
        fields = statm.read_bytes().split()
        return int(fields[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, ValueError, IndexError, AttributeError):  # AttributeError: no sysconf
        return None
