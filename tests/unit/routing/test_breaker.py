from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from skyroute.core.config import Circuit
from skyroute.routing.breaker import BreakerState, CircuitBreaker

CIRCUIT = Circuit(failures=3, cooldown=10.0, max_cooldown=35.0)


def opened(now: float = 0.0) -> CircuitBreaker:
    breaker = CircuitBreaker(CIRCUIT)
    for _ in range(CIRCUIT.failures):
        breaker.record_failure(now)
    return breaker


def test_closed_allows_every_request() -> None:
    breaker = CircuitBreaker(CIRCUIT)
    assert all(breaker.allow(float(t)) for t in range(100))
    assert breaker.state(0.0) is BreakerState.CLOSED


def test_opens_after_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(CIRCUIT)
    breaker.record_failure(0.0)
    breaker.record_failure(0.0)
    breaker.record_success(0.0)
    breaker.record_failure(0.0)
    breaker.record_failure(0.0)
    assert breaker.state(0.0) is BreakerState.CLOSED
    breaker.record_failure(1.0)
    assert breaker.state(1.0) is BreakerState.OPEN
    assert not breaker.allow(1.0)
    assert not breaker.available(10.99)


def test_half_open_grants_exactly_one_probe() -> None:
    breaker = opened()
    assert breaker.state(10.0) is BreakerState.HALF_OPEN
    assert breaker.available(10.0)
    assert breaker.available(10.0), "available() must not take the probe"
    assert breaker.allow(10.0)
    assert not breaker.allow(10.0)
    assert not breaker.available(50.0)
    assert not breaker.allow(1000.0)


def test_probe_success_closes_and_resets_cooldown() -> None:
    breaker = opened()
    assert breaker.allow(10.0)
    breaker.record_failure(10.0)  # probe failed: cooldown 20
    assert breaker.allow(30.0)
    breaker.record_success(30.5)
    assert breaker.state(30.5) is BreakerState.CLOSED
    assert breaker.cooldown == CIRCUIT.cooldown
    assert breaker.consecutive_failures == 0
    breaker.record_failure(31.0)
    breaker.record_failure(31.0)
    assert breaker.allow(31.0)


def test_failed_probes_double_cooldown_up_to_cap() -> None:
    breaker = opened()
    now = 0.0
    seen = []
    for _ in range(4):
        now += breaker.cooldown
        assert not breaker.allow(now - 0.001)
        assert breaker.allow(now)
        breaker.record_failure(now)
        seen.append(breaker.cooldown)
    assert seen == [20.0, 35.0, 35.0, 35.0]


def test_release_probe_lets_another_probe_go() -> None:
    breaker = opened()
    assert breaker.allow(10.0)
    breaker.release_probe()
    assert breaker.state(10.0) is BreakerState.HALF_OPEN
    assert breaker.allow(11.0)
    assert not breaker.allow(11.0)


def test_release_probe_is_harmless_when_closed_or_open() -> None:
    breaker = CircuitBreaker(CIRCUIT)
    breaker.release_probe()
    assert breaker.allow(0.0)
    breaker = opened()
    breaker.release_probe()
    assert not breaker.allow(5.0)


def test_straggler_failure_while_open_does_not_extend_cooldown() -> None:
    breaker = opened(now=0.0)
    breaker.record_failure(9.0)
    assert breaker.allow(10.0)


OPS = st.sampled_from(["allow", "success", "failure", "release", "available"])


@given(st.lists(st.tuples(OPS, st.floats(0.0, 40.0)), max_size=80))
def test_never_two_concurrent_probes(steps: list[tuple[str, float]]) -> None:
    breaker = CircuitBreaker(CIRCUIT)
    now = 0.0
    probes_out = 0
    for op, step in steps:
        now += step
        if op == "allow":
            was_closed = breaker.state(now) is BreakerState.CLOSED
            if breaker.allow(now) and not was_closed:
                probes_out += 1
                assert probes_out <= 1
        elif op == "available":
            before = breaker.state(now)
            breaker.available(now)
            assert breaker.state(now) is before
        elif op == "success" and probes_out:
            breaker.record_success(now)
            probes_out = 0
        elif op == "failure":
            # Without a probe out this is an ordinary failure in the closed state.
            breaker.record_failure(now)
            probes_out = 0
        elif op == "release" and probes_out:
            breaker.release_probe()
            probes_out = 0
        assert CIRCUIT.cooldown <= breaker.cooldown <= CIRCUIT.max_cooldown


@given(st.lists(st.floats(0.0, 40.0), max_size=30))
def test_available_predicts_allow(steps: list[float]) -> None:
    breaker = opened()
    now = 0.0
    for step in steps:
        now += step
        expected = breaker.available(now)
        assert breaker.allow(now) is expected
        if expected and step > 20:
            breaker.record_failure(now)
