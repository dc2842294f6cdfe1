"""Load shedding decisions: requests in flight and the loop monitor's latest lag."""

from __future__ import annotations

import asyncio

import pytest

from skyroute.core.errors import ServiceUnavailable
from skyroute.server.admission import Admission
from skyroute.server.loop_monitor import LoopMonitor


def admission(max_in_flight: int = 3, shed_loop_lag_ms: float = 50.0) -> Admission:
    return Admission(LoopMonitor(), max_in_flight=max_in_flight, shed_loop_lag_ms=shed_loop_lag_ms)


def test_admits_up_to_the_cap_then_sheds_with_retry_after() -> None:
    gate = admission(max_in_flight=3)
    for _ in range(3):
        gate.enter()
    with pytest.raises(ServiceUnavailable) as refused:
        gate.enter()
    error = refused.value
    assert (error.status, error.code, error.retry_after) == (503, "overloaded", 1.0)
    assert (gate.in_flight, gate.shed) == (3, 1)
    gate.leave()
    gate.enter()  # a slot came back
    assert (gate.in_flight, gate.shed) == (3, 1)


def test_sheds_while_the_latest_lag_sample_is_over_the_limit() -> None:
    monitor = LoopMonitor()
    gate = Admission(monitor, max_in_flight=100, shed_loop_lag_ms=50.0)
    monitor.record(0.049)
    gate.enter()
    monitor.record(0.051)
    with pytest.raises(ServiceUnavailable):
        gate.enter()
    # The first timely sample ends shedding.
    monitor.record(0.002)
    gate.enter()
    assert (gate.in_flight, gate.shed) == (2, 1)


def test_zero_turns_lag_shedding_off() -> None:
    monitor = LoopMonitor()
    gate = Admission(monitor, max_in_flight=100, shed_loop_lag_ms=0)
    monitor.record(5.0)
    gate.enter()
    assert gate.shed == 0


def test_the_monitor_forgets_its_lag_when_it_stops() -> None:
    monitor = LoopMonitor()
    monitor.record(0.3)
    assert monitor.last_lag == pytest.approx(0.3)
    asyncio.run(monitor.aclose())
    assert monitor.last_lag == 0.0
