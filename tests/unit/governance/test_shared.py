"""Limits and budgets shared by forked workers: exact across processes, per-worker slots
that a dead worker's successor can drop, and budget periods rolled over for all workers.

The single-process contract of both backends is in ``test_limits.py`` and
``test_budget.py``; this file covers what only several workers can show."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

from skyroute.core.shared_cells import SharedTable
from skyroute.governance.budget import (
    BudgetExceeded,
    BudgetSpec,
    BudgetSubject,
    Period,
    Reservation,
)
from skyroute.governance.limits import Admission, Denied, LimitSpec, LimitSubject
from skyroute.governance.shared import (
    SharedBudgets,
    SharedLimits,
    budget_record_cells,
    limit_record_cells,
)
from tests.forks import Gate, finish, fork, read_line

USD = 1_000_000
WORKERS = 4


def ts(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[arg-type,misc]


def budget(limit: int, name: str = "key:a") -> BudgetSubject:
    return BudgetSubject(name, BudgetSpec(limit_micros=limit, period=Period.MONTH))


# --- exact across processes ----------------------------------------------------------------


def test_rpm_holds_exactly_across_four_workers() -> None:
    table = SharedTable(limit_record_cells(60, WORKERS), capacity=16)
    subject = LimitSubject("key:a", LimitSpec(rpm=100))
    now = 1_000.5
    gate = Gate()

    def worker(index: int) -> Callable[[], str]:
        def body() -> str:
            limits = SharedLimits(table, worker=index, workers=WORKERS)
            gate.wait()
            results = [limits.admit([subject], now, 10) for _ in range(50)]
            admitted = [r for r in results if isinstance(r, Admission)]
            denied = [r for r in results if isinstance(r, Denied)]
            assert all(d.reason == "rpm" and d.retry_after > 0 for d in denied)
            assert len(admitted) + len(denied) == 50
            return f"{len(admitted)}\n"

        return body

    children: list[tuple[int, int]] = []
    try:
        children = [fork(worker(i)) for i in range(WORKERS)]
    finally:
        gate.close()
        reports = finish(children, time.monotonic() + 5.0)
    assert sum(int(r) for r in reports) == 100
    observer = SharedLimits(table, worker=0, workers=WORKERS)
    assert observer.in_flight("key:a") == 100
    assert observer.tokens_used("key:a", now) == 1_000
    assert isinstance(observer.admit([subject], now, 0), Denied)
    table.close()


def test_budget_holds_exactly_across_four_workers_and_settles_to_the_actual_spend() -> None:
    table = SharedTable(budget_record_cells(WORKERS), capacity=16)
    amount = 3 * USD
    subject = budget(10 * amount)  # room for exactly 10 reservations
    now = ts(2025, 3, 12, 12)
    start, settle = Gate(), Gate()

    def worker(index: int) -> Callable[[], str]:
        def body() -> str:
            budgets = SharedBudgets(table, worker=index, workers=WORKERS)
            start.wait()
            results = [budgets.reserve([subject], amount, now) for _ in range(20)]
            held = [r for r in results if isinstance(r, Reservation)]
            assert all(isinstance(r, BudgetExceeded) for r in results if r not in held)
            # report before settling: settling early would free room for the others
            os.write(result_write, f"{len(held)}\n".encode())
            settle.wait()
            actual = [amount // (index + 2) + n for n in range(len(held))]
            for reservation, spent in zip(held, actual, strict=True):
                assert budgets.settle(reservation, spent)
            return f"{sum(actual)}\n"

        return body

    # one pipe the children write their reservation counts into, before they settle
    result_read, result_write = os.pipe()
    children: list[tuple[int, int]] = []
    try:
        children = [fork(worker(i)) for i in range(WORKERS)]
        os.close(result_write)
        start.open()
        deadline = time.monotonic() + 5.0
        counts = [read_line(result_read, deadline) for _ in children]
        observer = SharedBudgets(table, worker=0, workers=WORKERS)
        assert sum(int(c) for c in counts) == 10, counts
        assert observer.outstanding(subject, now) == 10 * amount
        assert observer.committed(subject, now) == 0
    finally:
        start.close()
        settle.close()
        os.close(result_read)
        spent = finish(children, time.monotonic() + 5.0)
    assert observer.outstanding(subject, now) == 0
    assert observer.committed(subject, now) == sum(int(s) for s in spent)
    assert 0 < observer.committed(subject, now) < 10 * amount
    table.close()


# --- per-worker slots and a dead worker's successor -----------------------------------------


def test_workers_see_each_others_parallel_slots_and_a_successor_forgets_the_dead_ones() -> None:
    table = SharedTable(limit_record_cells(60, 2), capacity=16)
    first = SharedLimits(table, worker=0, workers=2)
    second = SharedLimits(table, worker=1, workers=2)
    subject = LimitSubject("key:a", LimitSpec(max_parallel=2))
    other = LimitSubject("team:t", LimitSpec(max_parallel=5))
    mine = first.admit([subject, other], 0.0, 0)
    assert isinstance(mine, Admission)
    assert isinstance(second.admit([subject, other], 0.0, 0), Admission)
    for limits in (first, second):
        assert limits.in_flight("key:a") == 2
        assert limits.in_flight("team:t") == 2
        denied = limits.admit([subject], 0.0, 0)
        assert isinstance(denied, Denied) and denied.reason == "parallel"

    # worker 1 dies holding its slot; the worker forked in its place drops it
    successor = SharedLimits(table, worker=1, workers=2)
    successor.forget_worker(1)
    assert first.in_flight("key:a") == 1  # worker 0's slot is kept...
    assert successor.in_flight("team:t") == 1  # ...in every record
    again = successor.admit([subject], 1.0, 0)
    assert isinstance(again, Admission)
    assert isinstance(first.admit([subject], 1.0, 0), Denied)
    assert first.settle(mine, 2.0, 0)
    assert successor.in_flight("key:a") == 1
    table.close()


def test_workers_see_each_others_reservations_and_a_successor_forgets_the_dead_ones() -> None:
    table = SharedTable(budget_record_cells(2), capacity=16)
    first = SharedBudgets(table, worker=0, workers=2)
    second = SharedBudgets(table, worker=1, workers=2)
    key, team = budget(10 * USD), budget(100 * USD, "team:t")
    now = ts(2025, 3, 12)
    mine = first.reserve([key, team], 4 * USD, now)
    assert isinstance(mine, Reservation)
    assert isinstance(second.reserve([key, team], 4 * USD, now), Reservation)
    for budgets in (first, second):
        assert budgets.outstanding(key, now) == 8 * USD
        assert budgets.outstanding(team, now) == 8 * USD
        refused = budgets.reserve([key], 4 * USD, now)
        assert isinstance(refused, BudgetExceeded) and refused.outstanding_micros == 8 * USD

    successor = SharedBudgets(table, worker=1, workers=2)
    successor.forget_worker(1)
    assert first.outstanding(key, now) == 4 * USD
    assert first.outstanding(team, now) == 4 * USD
    assert successor.committed(key, now) == 0
    assert isinstance(successor.reserve([key], 4 * USD, now), Reservation)
    assert first.settle(mine, 3 * USD)
    assert second.committed(key, now) == 3 * USD
    assert second.outstanding(key, now) == 4 * USD
    table.close()


# --- budget periods through the shared period start -----------------------------------------


def test_a_new_period_started_by_one_worker_holds_for_all() -> None:
    table = SharedTable(budget_record_cells(2), capacity=16)
    first = SharedBudgets(table, worker=0, workers=2)
    second = SharedBudgets(table, worker=1, workers=2)
    key = budget(10 * USD)
    january, late_january, february = ts(2025, 1, 10), ts(2025, 1, 31, 23), ts(2025, 2, 3)

    spent = first.reserve([key], 7 * USD, january)
    assert isinstance(spent, Reservation) and first.settle(spent, 6 * USD)
    in_flight = first.reserve([key], 2 * USD, january)  # still open at the rollover
    assert isinstance(in_flight, Reservation)
    assert second.committed(key, january) == 6 * USD

    # worker 1 is first to see February: spend starts from zero for everyone
    fresh = second.reserve([key], 8 * USD, february)
    assert isinstance(fresh, Reservation), "January's spend still counted in February"
    assert second.committed(key, february) == 0

    # worker 0 still has January cached (its clock may lag): January does not come back
    assert first.committed(key, late_january) == 0
    assert first.outstanding(key, late_january) == 10 * USD  # the in-flight one is held
    assert first.committed(key, february) == 0
    assert first.settle(in_flight, 2 * USD)  # charged to January, not to February
    assert first.committed(key, february) == 0
    assert second.committed(key, february) == 0
    assert second.outstanding(key, february) == 8 * USD
    assert second.settle(fresh, 5 * USD)
    assert first.committed(key, late_january) == 5 * USD
    assert first.committed(key, february) == 5 * USD
    refused = first.reserve([key], 6 * USD, february)
    assert isinstance(refused, BudgetExceeded) and refused.committed_micros == 5 * USD
    table.close()
