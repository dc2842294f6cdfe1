"""Budgets: reserve before, settle after, and never admit past the limit."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyroute.core.shared_cells import SharedTable
from skyroute.governance.budget import (
    BudgetBackend,
    BudgetExceeded,
    BudgetLedger,
    BudgetSpec,
    BudgetSubject,
    Period,
    Reservation,
    period_bounds,
)
from skyroute.governance.shared import SharedBudgets, budget_record_cells

Make = Callable[[], BudgetBackend]


def shared_budgets() -> SharedBudgets:
    """Worker 1 of 2 over a small shared table: the backend ``--workers`` uses."""
    return SharedBudgets(SharedTable(budget_record_cells(2), capacity=64), worker=1, workers=2)


# Every test below holds for one process's ledger and for the workers' shared one.
BACKENDS = pytest.mark.parametrize("make", [BudgetLedger, shared_budgets], ids=["memory", "shared"])


USD = 1_000_000


def ts(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[arg-type,misc]


def subject(limit: int, period: Period = Period.MONTH, name: str = "key:a") -> BudgetSubject:
    return BudgetSubject(name, BudgetSpec(limit_micros=limit, period=period))


def test_period_bounds_follow_utc_calendar() -> None:
    now = ts(2025, 3, 12, 23, 59, 59)  # a Wednesday
    assert period_bounds(Period.DAY, now) == (ts(2025, 3, 12), ts(2025, 3, 13))
    assert period_bounds(Period.WEEK, now) == (ts(2025, 3, 10), ts(2025, 3, 17))
    assert period_bounds(Period.MONTH, now) == (ts(2025, 3, 1), ts(2025, 4, 1))
    assert period_bounds(Period.MONTH, ts(2024, 12, 31, 12)) == (ts(2024, 12, 1), ts(2025, 1, 1))
    assert period_bounds(Period.TOTAL, now) == (0, None)


@BACKENDS
def test_reserve_settle_release(make: Make) -> None:
    ledger = make()
    key = subject(10 * USD)
    now = ts(2025, 1, 5)
    first = ledger.reserve([key], 6 * USD, now)
    assert isinstance(first, Reservation)
    assert isinstance(ledger.reserve([key], 5 * USD, now), BudgetExceeded)
    assert ledger.settle(first, 2 * USD)
    assert not ledger.settle(first, 2 * USD)  # idempotent
    second = ledger.reserve([key], 5 * USD, now)
    assert isinstance(second, Reservation)
    assert ledger.release(second)
    assert ledger.committed(key, now) == 2 * USD
    assert ledger.outstanding(key, now) == 0


@BACKENDS
def test_team_budget_caps_its_keys_and_refusal_leaves_no_trace(make: Make) -> None:
    ledger = make()
    team = subject(5 * USD, name="team:t")
    a, b = subject(100 * USD, name="key:a"), subject(100 * USD, name="key:b")
    now = ts(2025, 1, 5)
    assert isinstance(ledger.reserve([a, team], 4 * USD, now), Reservation)
    refused = ledger.reserve([b, team], 2 * USD, now)
    assert isinstance(refused, BudgetExceeded) and refused.subject == "team:t"
    assert ledger.outstanding(b, now) == 0


@BACKENDS
def test_exhausted_budget_refuses_zero_estimates_and_says_when_it_resets(make: Make) -> None:
    ledger = make()
    key = subject(1 * USD, Period.DAY)
    now = ts(2025, 1, 5, 18)
    r = ledger.reserve([key], USD, now)
    assert isinstance(r, Reservation)
    ledger.settle(r, USD)
    refused = ledger.reserve([key], 0, now)
    assert isinstance(refused, BudgetExceeded)
    assert refused.retry_after(now) == 6 * 3600
    assert isinstance(ledger.reserve([key], USD, ts(2025, 1, 6)), Reservation)


@BACKENDS
def test_rollover_keeps_in_flight_reservations_and_charges_the_old_period(make: Make) -> None:
    ledger = make()
    key = subject(10 * USD, Period.DAY)
    r = ledger.reserve([key], 8 * USD, ts(2025, 1, 5, 23, 59))
    assert isinstance(r, Reservation)
    tomorrow = ts(2025, 1, 6, 0, 1)
    assert isinstance(ledger.reserve([key], 3 * USD, tomorrow), BudgetExceeded)
    ledger.settle(r, 7 * USD)
    assert ledger.committed(key, tomorrow) == 0
    assert isinstance(ledger.reserve([key], 10 * USD, tomorrow), Reservation)


@BACKENDS
def test_clock_stepping_back_never_resets_spend(make: Make) -> None:
    ledger = make()
    key = subject(10 * USD, Period.DAY)
    r = ledger.reserve([key], 5 * USD, ts(2025, 1, 6, 0, 1))
    assert isinstance(r, Reservation)
    ledger.settle(r, 5 * USD)
    assert ledger.committed(key, ts(2025, 1, 5, 23, 59)) == 5 * USD


@BACKENDS
def test_restore_seeds_committed_spend(make: Make) -> None:
    ledger = make()
    key = subject(10 * USD)
    now = ts(2025, 1, 5)
    ledger.restore(key, now, 9 * USD)
    assert isinstance(ledger.reserve([key], 2 * USD, now), BudgetExceeded)


@BACKENDS
def test_restore_never_lowers_spend_already_counted(make: Make) -> None:
    """Spend settled here but not yet shipped to the store outweighs the store's figure."""
    ledger = make()
    key = subject(10 * USD)
    now = ts(2025, 1, 5)
    held = ledger.reserve([key], 4 * USD, now)
    assert isinstance(held, Reservation)
    ledger.settle(held, 3 * USD)
    ledger.restore(key, now, 1 * USD)
    assert ledger.committed(key, now) == 3 * USD
    ledger.restore(key, now, 5 * USD)
    assert ledger.committed(key, now) == 5 * USD


@BACKENDS
def test_barrier_burst_of_200_against_a_budget_for_10(make: Make) -> None:
    """L4: 200 requests reserve at the same instant, then all settle in random order."""
    rng = random.Random(40095)
    for _ in range(100):
        ledger = make()
        estimate = 50_000
        key = subject(10 * estimate + rng.randrange(estimate), Period.DAY)
        now = ts(2025, 1, 5, 12)
        outcomes = [ledger.reserve([key], estimate, now) for _ in range(200)]
        admitted = [r for r in outcomes if isinstance(r, Reservation)]
        assert len(admitted) == 10
        assert ledger.outstanding(key, now) <= key.spec.limit_micros
        rng.shuffle(admitted)
        actual = [rng.randrange(estimate + 1) for _ in admitted]
        for reservation, cost in zip(admitted, actual, strict=True):
            ledger.settle(reservation, cost)
        assert ledger.committed(key, now) == sum(actual) <= key.spec.limit_micros


ops = st.lists(
    st.tuples(
        st.sampled_from(["reserve", "settle", "release"]),
        st.integers(0, 3_000),  # estimate
        st.integers(-1_000, 1_000),  # actual - estimate
        st.integers(0, 30),  # which open reservation
    ),
    max_size=60,
)


@BACKENDS
@settings(max_examples=200, deadline=None)
@given(limit=st.integers(0, 20_000), steps=ops)
def test_admission_never_exceeds_budget_and_overshoot_is_bounded(
    make: Make, limit: int, steps: list[tuple[str, int, int, int]]
) -> None:
    ledger = make()
    key, team = subject(limit), subject(limit * 2, name="team:t")
    now = ts(2025, 1, 5)
    open_: list[Reservation] = []
    overshoot_allowance = 0
    for op, estimate, delta, pick in steps:
        if op == "reserve":
            before = ledger.committed(key, now) + ledger.outstanding(key, now)
            result = ledger.reserve([key, team], estimate, now)
            if isinstance(result, Reservation):
                assert before + estimate <= limit
                open_.append(result)
        elif open_:
            reservation = open_.pop(pick % len(open_))
            if op == "settle":
                actual = max(0, reservation.amount_micros + delta)
                overshoot_allowance += max(0, actual - reservation.amount_micros)
                ledger.settle(reservation, actual)
            else:
                ledger.release(reservation)
        committed = ledger.committed(key, now)
        assert committed + ledger.outstanding(key, now) <= limit + overshoot_allowance
    assert ledger.outstanding(key, now) == sum(r.amount_micros for r in open_)
