"""Event-loop lag: how late the loop runs a timer, measured from inside the gateway.

One task sleeps ``interval`` (10 ms) over and over; each wake-up records
``lag = elapsed - interval`` (never below 0). A callback that blocks the loop delays every
other request by the same amount, so this is the stall the issue-7 target ("no stall over
20 ms under any load") is about.

Decided, and why:

- Lags go into a fixed-bucket histogram (edges in ``EDGES_MS``), not a list of samples: the
  memory is bounded however long the gateway runs, and a sample costs one bisect and one
  integer increment. Percentiles are therefore approximations: the upper edge of the bucket
  that holds the requested rank, capped at the largest lag seen (exact for ``max``).
- ``reset`` starts a new measuring window, so a benchmark can read one phase at a time.
- The clock and the sleep are injected; tests drive the monitor with fakes.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from collections.abc import Awaitable, Callable

# Upper edges of the histogram's buckets, in milliseconds; the last catches everything.
EDGES_MS: tuple[float, ...] = (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, math.inf)
STALL_MS = 20.0


class LoopMonitor:
    """``start()`` on the running loop, ``await aclose()`` on shutdown."""

    def __init__(
        self,
        interval: float = 0.01,
        clock: Callable[[], float] = time.perf_counter,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_sample: Callable[[float], None] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._on_sample = on_sample  # load shedding watches every sample (server/admission.py)
        self._edges_s = tuple(edge / 1000 for edge in EDGES_MS)
        self._stall_s = STALL_MS / 1000
        self._counts = [0] * len(EDGES_MS)
        self._max_s = 0.0
        self.samples = 0
        self.stalls_over_20ms = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-monitor")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        clock, sleep, interval = self._clock, self._sleep, self.interval
        before = clock()
        while True:
            await sleep(interval)
            now = clock()
            self.record(now - before - interval)
            before = now

    def record(self, lag: float) -> None:
        """Count one lag, in seconds (negative values count as 0)."""
        if lag < 0.0:
            lag = 0.0
        if self._on_sample is not None:
            self._on_sample(lag)
        self._counts[bisect.bisect_left(self._edges_s, lag)] += 1
        self.samples += 1
        if lag > self._max_s:
            self._max_s = lag
        if lag > self._stall_s:
            self.stalls_over_20ms += 1

    def reset(self) -> None:
        """Forget every sample: the next reading covers only what happens from now on."""
        self._counts = [0] * len(EDGES_MS)
        self._max_s = 0.0
        self.samples = 0
        self.stalls_over_20ms = 0

    @property
    def max_ms(self) -> float:
        return self._max_s * 1000

    def percentile_ms(self, fraction: float) -> float:
        """An upper bound of the ``fraction`` quantile (0 < fraction <= 1); 0 before samples."""
        if self.samples == 0:
            return 0.0
        rank = max(1, math.ceil(fraction * self.samples))
        seen = 0
        for edge, count in zip(EDGES_MS, self._counts, strict=True):
            seen += count
            if seen >= rank:
                return min(edge, self.max_ms)
        return self.max_ms
