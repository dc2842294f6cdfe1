"""The event-loop lag monitor: driven by a fake clock and sleep, then on a real loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import pytest

from skyroute.server.loop_monitor import EDGES_MS, LoopMonitor

INTERVAL = 0.01


class FakeTime:
    """A clock that each sleep advances by the interval plus the next scripted lag; when
    the script runs out, sleeping waits until the monitor is closed."""

    def __init__(self, lags_ms: Iterable[float]) -> None:
        self.now = 100.0
        self._lags = iter(lags_ms)
        self.done = asyncio.Event()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        lag = next(self._lags, None)
        if lag is None:
            self.done.set()
            await asyncio.Event().wait()
            return
        self.now += seconds + lag / 1000
        await asyncio.sleep(0)


async def run_script(lags_ms: Iterable[float]) -> LoopMonitor:
    fake = FakeTime(lags_ms)
    monitor = LoopMonitor(INTERVAL, fake.clock, sleep=fake.sleep)
    monitor.start()
    await asyncio.wait_for(fake.done.wait(), timeout=5)
    await monitor.aclose()
    return monitor


async def test_each_wake_up_records_how_late_it_was() -> None:
    monitor = await run_script([0.0, 3.0, 0.25, 30.0])
    assert monitor.samples == 4
    assert monitor.max_ms == pytest.approx(30.0)
    assert monitor.stalls_over_20ms == 1


async def test_an_early_wake_up_counts_as_no_lag() -> None:
    monitor = await run_script([-2.0])
    assert monitor.samples == 1
    assert monitor.max_ms == 0.0
    assert monitor.percentile_ms(0.5) == 0.0


def test_percentiles_are_bucket_upper_edges_capped_at_the_max() -> None:
    monitor = LoopMonitor()
    for _ in range(990):
        monitor.record(0.0002)  # 0.2 ms: the 0.5 ms bucket
    for _ in range(9):
        monitor.record(0.003)  # 3 ms: the 5 ms bucket
    monitor.record(0.07)  # 70 ms: the 100 ms bucket
    assert monitor.samples == 1000
    assert monitor.percentile_ms(0.5) == 0.5
    assert monitor.percentile_ms(0.99) == 0.5
    assert monitor.percentile_ms(0.999) == 5
    assert monitor.percentile_ms(1.0) == pytest.approx(70.0)  # 100 ms edge, capped at max
    assert monitor.max_ms == pytest.approx(70.0)
    assert monitor.stalls_over_20ms == 1


def test_a_lag_beyond_the_last_finite_edge_reports_the_max() -> None:
    monitor = LoopMonitor()
    monitor.record(5.0)
    assert EDGES_MS[-1] == float("inf")
    assert monitor.percentile_ms(0.5) == pytest.approx(5000.0)


def test_no_samples_read_as_zero() -> None:
    monitor = LoopMonitor()
    assert (monitor.samples, monitor.max_ms, monitor.percentile_ms(0.99)) == (0, 0.0, 0.0)


def test_a_stall_is_strictly_over_20_ms() -> None:
    monitor = LoopMonitor()
    monitor.record(0.020)
    assert monitor.stalls_over_20ms == 0
    monitor.record(0.0201)
    assert monitor.stalls_over_20ms == 1


def test_reset_starts_a_new_window() -> None:
    monitor = LoopMonitor()
    monitor.record(0.05)
    monitor.reset()
    assert (monitor.samples, monitor.max_ms, monitor.stalls_over_20ms) == (0, 0.0, 0)
    assert monitor.percentile_ms(0.999) == 0.0
    monitor.record(0.001)
    assert monitor.samples == 1
    assert monitor.max_ms == pytest.approx(1.0)


def test_the_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        LoopMonitor(0)


async def test_start_twice_runs_one_task_and_aclose_is_idempotent() -> None:
    monitor = LoopMonitor()
    before = len(asyncio.all_tasks())
    monitor.start()
    monitor.start()
    assert len(asyncio.all_tasks()) == before + 1
    await monitor.aclose()
    await monitor.aclose()
    assert len(asyncio.all_tasks()) == before


async def test_a_blocking_call_on_the_real_loop_is_a_stall() -> None:
    monitor = LoopMonitor()
    monitor.start()
    try:
        await asyncio.sleep(0.05)
        time.sleep(0.05)  # blocks the loop, as a synchronous call in a handler would
        await asyncio.sleep(0.05)
    finally:
        await monitor.aclose()
    assert monitor.samples >= 3
    assert monitor.stalls_over_20ms >= 1
    assert 20.0 < monitor.max_ms < 2000.0
