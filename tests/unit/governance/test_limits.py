"""Rate limits: RPM, TPM checked before dispatch and settled after, parallel caps."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyroute.core.shared_cells import SharedTable
from skyroute.governance.limits import (
    Admission,
    Denied,
    LimitBackend,
    LimitSpec,
    LimitSubject,
    MemoryLimits,
    Window,
)
from skyroute.governance.shared import SharedLimits, limit_record_cells

Make = Callable[[], MemoryLimits | SharedLimits]


def shared_limits() -> SharedLimits:
    """Worker 1 of 2 over a small shared table: the backend ``--workers`` uses."""
    table = SharedTable(limit_record_cells(60, 2), capacity=64)
    return SharedLimits(table, worker=1, workers=2)


# Every test below holds for one process's counters and for the workers' shared ones.
BACKENDS = pytest.mark.parametrize("make", [MemoryLimits, shared_limits], ids=["memory", "shared"])


def key(**spec: int) -> LimitSubject:
    return LimitSubject("key:a", LimitSpec(**spec))


@BACKENDS
def test_each_is_a_limit_backend(make: Make) -> None:
    backend: LimitBackend = make()
    assert isinstance(backend.admit([key()], 0, 0), Admission)


@BACKENDS
def test_rpm_denies_with_retry_after_until_the_oldest_request_slides_out(make: Make) -> None:
    limits = make()
    subject = key(rpm=3)
    for t in (0.0, 10.0, 20.0):
        assert isinstance(limits.admit([subject], t, 0), Admission)
    denied = limits.admit([subject], 30.0, 0)
    assert isinstance(denied, Denied) and denied.reason == "rpm"
    assert denied.retry_after == 30.0
    assert isinstance(limits.admit([subject], 60.0, 0), Admission)


@BACKENDS
def test_tpm_is_checked_before_dispatch_with_the_estimate(make: Make) -> None:
    limits = make()
    subject = key(tpm=1000)
    first = limits.admit([subject], 0, 800)
    assert isinstance(first, Admission)
    denied = limits.admit([subject], 1, 300)
    assert isinstance(denied, Denied) and denied.reason == "tpm"
    assert denied.retry_after == 59
    limits.settle(first, 2, 100)  # the real usage was small: room comes back
    assert limits.tokens_used("key:a", 2) == 100
    assert isinstance(limits.admit([subject], 3, 300), Admission)


@BACKENDS
def test_settle_counts_excess_and_release_refunds_the_estimate(make: Make) -> None:
    limits = make()
    subject = key(tpm=1000, max_parallel=5)
    a = limits.admit([subject], 0, 100)
    b = limits.admit([subject], 0, 100)
    assert isinstance(a, Admission) and isinstance(b, Admission)
    assert limits.settle(a, 1, 400)
    assert not limits.settle(a, 1, 400)
    assert limits.release(b)
    assert not limits.release(b)
    assert limits.tokens_used("key:a", 1) == 400
    assert limits.in_flight("key:a") == 0


@BACKENDS
def test_late_settle_counts_excess_in_the_current_window(make: Make) -> None:
    limits = make()
    a = limits.admit([key(tpm=1000)], 0, 100)
    assert isinstance(a, Admission)
    limits.settle(a, 90, 500)
    assert limits.tokens_used("key:a", 90) == 400


@BACKENDS
def test_estimate_above_the_whole_limit_runs_alone(make: Make) -> None:
    limits = make()
    subject = key(tpm=1000)
    big = limits.admit([subject], 0, 50_000)
    assert isinstance(big, Admission)
    assert isinstance(limits.admit([subject], 1, 1), Denied)
    limits.settle(big, 1, 10)
    assert isinstance(limits.admit([subject], 2, 50_000), Denied)
    assert isinstance(limits.admit([subject], 61, 50_000), Admission)


@BACKENDS
def test_zero_limits_deny_everything(make: Make) -> None:
    limits = make()
    for spec in ({"rpm": 0}, {"tpm": 0}, {"max_parallel": 0}):
        denied = limits.admit([key(**spec)], 0, 10)
        assert isinstance(denied, Denied) and denied.retry_after > 0


@BACKENDS
def test_max_parallel_frees_on_settle_or_release(make: Make) -> None:
    limits = make()
    subject = key(max_parallel=2)
    a, b = limits.admit([subject], 0, 0), limits.admit([subject], 0, 0)
    assert isinstance(a, Admission) and isinstance(b, Admission)
    denied = limits.admit([subject], 0, 0)
    assert isinstance(denied, Denied) and denied.reason == "parallel"
    limits.release(a)
    assert isinstance(limits.admit([subject], 0, 0), Admission)


@BACKENDS
def test_team_limit_caps_its_keys_atomically(make: Make) -> None:
    limits = make()
    team = LimitSubject("team:t", LimitSpec(rpm=2))
    keys = [LimitSubject(f"key:{i}", LimitSpec(rpm=10)) for i in range(3)]
    assert isinstance(limits.admit([keys[0], team], 0, 0), Admission)
    assert isinstance(limits.admit([keys[1], team], 0, 0), Admission)
    denied = limits.admit([keys[2], team], 0, 0)
    assert isinstance(denied, Denied) and denied.subject == "team:t"
    assert limits.in_flight("key:2") == 0  # nothing committed for the refused key


def test_window_retry_after_is_exact_for_bucket_edges() -> None:
    window = Window(60, 60)
    window.add(0.5, 5)
    window.add(30.5, 5)
    assert window.retry_after(31, 10, 1) == 29
    assert window.retry_after(31, 10, 6) == 59
    assert window.retry_after(31, 10, 11) == 60
    assert window.retry_after(31, 10, 0) == 0


@BACKENDS
@settings(max_examples=150, deadline=None)
@given(
    arrivals=st.lists(
        st.tuples(st.floats(0, 5, allow_nan=False), st.integers(0, 400), st.integers(0, 400)),
        max_size=80,
    )
)
def test_admitted_tokens_per_window_never_exceed_tpm_at_admission(
    make: Make,
    arrivals: list[tuple[float, int, int]],
) -> None:
    """Reference model: at admission, estimates + settled tokens in the last 60 s fit."""
    limits = make()
    subject = key(tpm=1000, rpm=20)
    now = 0.0
    admitted: list[float] = []
    for gap, estimate, actual in arrivals:
        now += gap
        used_before = limits.tokens_used("key:a", now)
        result = limits.admit([subject], now, estimate)
        if isinstance(result, Admission):
            assert used_before + min(max(estimate, 1), 1000) <= 1000
            admitted.append(now)
            assert sum(1 for t in admitted if t > now - 60) <= 20
            limits.settle(result, now, actual)
        else:
            assert result.retry_after > 0
