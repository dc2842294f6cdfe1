from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skyroute.routing.quota import DeploymentQuota, SlidingWindow


def test_events_expire_after_the_window() -> None:
    window = SlidingWindow(limit=10, window=60.0, buckets=60)
    window.add(100.5, 4)
    window.add(130.0, 3)
    assert window.headroom(130.0) == 3
    assert window.headroom(159.9) == 3
    # 100.5 sits in bucket [100, 101), which leaves the window at t=160.
    assert window.headroom(160.0) == 7
    assert window.headroom(190.0) == 10


def test_headroom_never_negative() -> None:
    window = SlidingWindow(limit=5)
    window.add(0.0, 50)
    assert window.headroom(0.0) == 0
    assert window.used(0.0) == 50


def test_long_idle_gap_clears_everything() -> None:
    window = SlidingWindow(limit=10, window=10.0, buckets=5)
    window.add(1.0, 7)
    assert window.headroom(1_000_000.0) == 10
    window.add(1_000_000.0, 2)
    assert window.headroom(1_000_001.0) == 8


def test_clock_stepping_back_counts_in_newest_bucket() -> None:
    window = SlidingWindow(limit=10, window=10.0, buckets=10)
    window.add(50.0, 1)
    window.add(45.0, 1)
    assert window.used(50.0) == 2
    assert window.used(60.0) == 0


@pytest.mark.parametrize(
    ("kwargs"), [{"limit": -1}, {"limit": 1, "window": 0.0}, {"limit": 1, "buckets": 0}]
)
def test_rejects_bad_shapes(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SlidingWindow(**kwargs)  # type: ignore[arg-type]


def naive_used(events: list[tuple[float, int]], now: float, width: float, buckets: int) -> int:
    current = math.floor(now / width)
    return sum(n for t, n in events if math.floor(t / width) > current - buckets)


@given(
    window=st.sampled_from([1.0, 10.0, 60.0]),
    buckets=st.integers(1, 12),
    steps=st.lists(
        st.tuples(st.floats(0.0, 30.0), st.integers(0, 1000), st.booleans()), max_size=60
    ),
)
def test_matches_a_naive_reference(
    window: float, buckets: int, steps: list[tuple[float, int, bool]]
) -> None:
    limit = 5000
    ring = SlidingWindow(limit, window=window, buckets=buckets)
    width = window / buckets
    events: list[tuple[float, int]] = []
    now = 1000.0
    for step, amount, add in steps:
        now += step
        if add:
            ring.add(now, amount)
            events.append((now, amount))
        used = naive_used(events, now, width, buckets)
        assert ring.used(now) == used
        assert ring.headroom(now) == max(0, limit - used)


def test_unlimited_quota_always_has_headroom() -> None:
    quota = DeploymentQuota(rpm=None, tpm=None)
    for _ in range(1000):
        quota.record_request(0.0)
        quota.record_tokens(0.0, 10_000)
    assert quota.has_headroom(0.0, est_tokens=10**9)
    assert quota.requests_left(0.0) is None
    assert quota.tokens_left(0.0) is None


def test_rpm_needs_one_request_left() -> None:
    quota = DeploymentQuota(rpm=2, tpm=None)
    quota.record_request(0.0)
    assert quota.has_headroom(0.0)
    quota.record_request(0.5)
    assert not quota.has_headroom(1.0)
    assert quota.requests_left(1.0) == 0
    assert quota.has_headroom(61.0)


def test_tpm_checks_the_estimate() -> None:
    quota = DeploymentQuota(rpm=None, tpm=1000)
    quota.record_tokens(0.0, 900)
    assert quota.has_headroom(0.0, est_tokens=100)
    assert not quota.has_headroom(0.0, est_tokens=101)
    assert quota.has_headroom(0.0), "no estimate: any tokens left will do"
    quota.record_tokens(0.0, 100)
    assert not quota.has_headroom(0.0)
    assert quota.tokens_left(0.0) == 0
    assert quota.has_headroom(60.0, est_tokens=1000)


def test_both_limits_must_have_room() -> None:
    quota = DeploymentQuota(rpm=1, tpm=1000)
    quota.record_tokens(0.0, 10)
    assert quota.has_headroom(0.0, est_tokens=10)
    quota.record_request(0.0)
    assert not quota.has_headroom(0.0, est_tokens=10)
