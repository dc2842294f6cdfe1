from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyroute.core.shared_cells import CellWindow, SharedTable
from skyroute.routing.quota import (
    DeploymentQuota,
    SharedSlidingWindow,
    SlidingWindow,
    shared_windows,
)


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


# --- the windows the workers of one gateway share ------------------------------------------


def window_table(buckets: int = 60) -> SharedTable:
    return SharedTable(CellWindow.cells_for(buckets), capacity=8)


def test_shared_windows_of_one_name_count_together() -> None:
    table = window_table()
    one = SharedSlidingWindow(table, "deployment:m/0:rpm", limit=10)
    two = SharedSlidingWindow(table, "deployment:m/0:rpm", limit=10)
    elsewhere = SharedSlidingWindow(table, "deployment:m/1:rpm", limit=10)
    one.add(100.0, 4)
    two.add(101.0, 3)
    assert one.headroom(101.0) == two.headroom(101.0) == 3
    assert one.used(101.0) == two.used(101.0) == 7
    assert elsewhere.headroom(101.0) == 10
    two.add(102.0, 5)
    assert one.headroom(102.0) == 0 and one.used(102.0) == 12
    assert two.headroom(160.0) == 2  # 100.0's bucket has slid out
    assert one.used(161.0) == 5
    assert one.headroom(200.0) == 10
    table.close()


def test_shared_window_rejects_bad_shapes() -> None:
    table = window_table()
    with pytest.raises(ValueError):
        SharedSlidingWindow(table, "w", limit=-1)
    with pytest.raises(ValueError):
        SharedSlidingWindow(table, "w", limit=1, buckets=10)  # records laid out for 60
    table.close()


@settings(max_examples=150, deadline=None)
@given(
    window=st.sampled_from([1.0, 10.0, 60.0]),
    buckets=st.integers(1, 12),
    start=st.floats(0.0, 1e6),
    steps=st.lists(
        st.tuples(
            st.one_of(st.just(0.0), st.floats(0.0, 3.0), st.floats(0.0, 90.0)),
            st.integers(0, 20),
            st.booleans(),
        ),
        max_size=60,
    ),
)
def test_shared_window_matches_sliding_window(
    window: float, buckets: int, start: float, steps: list[tuple[float, int, bool]]
) -> None:
    limit = 50
    table = window_table(buckets)
    shared = SharedSlidingWindow(table, "w", limit, window=window, buckets=buckets)
    own = SlidingWindow(limit, window=window, buckets=buckets)
    now = start
    try:
        for gap, amount, add in steps:
            now += gap
            if add:
                shared.add(now, amount)
                own.add(now, amount)
            assert shared.headroom(now) == own.headroom(now)
            assert shared.used(now) == own.used(now)
    finally:
        table.close()


def test_deployment_quota_over_shared_windows_behaves_like_its_own() -> None:
    table = window_table()
    shared = DeploymentQuota(rpm=2, tpm=1000, windows=shared_windows(table, "m/0"))
    other_worker = DeploymentQuota(rpm=2, tpm=1000, windows=shared_windows(table, "m/0"))
    own = DeploymentQuota(rpm=2, tpm=1000)

    def same(now: float, est: int = 0) -> bool:
        answer = own.has_headroom(now, est)
        assert shared.has_headroom(now, est) == answer
        assert shared.requests_left(now) == own.requests_left(now)
        assert shared.tokens_left(now) == own.tokens_left(now)
        return answer

    assert same(0.0, 1000)
    for quota in (shared, own):
        quota.record_request(0.0)
        quota.record_tokens(0.0, 900)
    assert same(0.5, 100) and not same(0.5, 101)
    assert same(0.5)
    for quota in (other_worker, own):  # another worker's request counts here too
        quota.record_request(1.0)
        quota.record_tokens(1.0, 0)
    assert not same(1.0) and shared.requests_left(1.0) == 0
    assert not same(59.9, 1)
    assert same(60.0, 99)  # the request at 0.0 has slid out; its tokens with it
    assert same(61.0, 1000) and shared.tokens_left(61.0) == 1000
    table.close()
