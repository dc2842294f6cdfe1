"""Load shedding decisions: requests in flight, and the loop lag staying over its limit."""

from __future__ import annotations

import pytest

from skyroute.core.errors import ServiceUnavailable
from skyroute.server.admission import Admission
from skyroute.server.loop_monitor import LoopMonitor


def admission(max_in_flight: int = 100, shed_loop_lag_ms: float = 50.0) -> Admission:
    return Admission(max_in_flight=max_in_flight, shed_loop_lag_ms=shed_loop_lag_ms)


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


def test_one_late_sample_is_a_burst_two_in_a_row_shed_one_timely_sample_ends_it() -> None:
    gate = admission()
    gate.observe_lag(0.2)
    gate.enter()  # a burst, already over
    gate.observe_lag(0.051)
    with pytest.raises(ServiceUnavailable):
        gate.enter()
    gate.observe_lag(0.3)
    with pytest.raises(ServiceUnavailable):
        gate.enter()
    gate.observe_lag(0.05)  # at the limit is timely
    gate.enter()
    gate.observe_lag(0.08)
    gate.enter()  # the count of late samples started over
    assert (gate.in_flight, gate.shed) == (3, 2)


def test_zero_turns_lag_shedding_off() -> None:
    gate = admission(shed_loop_lag_ms=0)
    for _ in range(5):
        gate.observe_lag(5.0)
    gate.enter()
    assert gate.shed == 0


def test_the_loop_monitor_reports_every_sample() -> None:
    seen: list[float] = []
    monitor = LoopMonitor(on_sample=seen.append)
    monitor.record(0.3)
    monitor.record(-0.1)  # counted as 0
    assert seen == [pytest.approx(0.3), 0.0]
