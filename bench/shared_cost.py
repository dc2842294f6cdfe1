"""What sharing limits and budgets between workers costs a request, in one process.

    .venv/bin/python bench/shared_cost.py

Times what the gate does for a request with a rate-limited, budgeted key (limit admit and
settle, budget reserve and settle) against the single-process backends (MemoryLimits,
BudgetLedger) and the workers' shared ones (SharedLimits, SharedBudgets over shared
tables, with the lock held as the gate holds it: twice a request), and one lock round trip
alone. Prints; writes nothing.
"""

from __future__ import annotations

import contextlib
import time
from contextlib import AbstractContextManager

from skyroute.core.shared_cells import SharedLock, SharedTable
from skyroute.governance.budget import (
    BudgetBackend,
    BudgetLedger,
    BudgetSpec,
    BudgetSubject,
    Reservation,
)
from skyroute.governance.limits import (
    Admission,
    LimitBackend,
    LimitSpec,
    LimitSubject,
    MemoryLimits,
)
from skyroute.governance.shared import (
    SharedBudgets,
    SharedLimits,
    budget_record_cells,
    limit_record_cells,
)

_ROUNDS = 50_000
_LIMITS = [LimitSubject("key:a", LimitSpec(rpm=10**9, tpm=10**12, max_parallel=10**6))]
_BUDGETS = [BudgetSubject("key:a", BudgetSpec(limit_micros=10**15))]


def per_request_us(
    limits: LimitBackend, budgets: BudgetBackend, hold: AbstractContextManager[object]
) -> float:
    """As the gate does it: ``hold`` is taken once for both takes, once for both settles."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(_ROUNDS):
            now = time.time()
            with hold:
                admission = limits.admit(_LIMITS, time.monotonic(), 100)
                reservation = budgets.reserve(_BUDGETS, 1_000, now)
            assert isinstance(admission, Admission) and isinstance(reservation, Reservation)
            with hold:
                limits.settle(admission, time.monotonic(), 50)
                budgets.settle(reservation, 500)
        best = min(best, (time.perf_counter() - started) / _ROUNDS * 1e6)
    return best


def lock_round_trip_us() -> float:
    table = SharedTable(1, 1)
    started = time.perf_counter()
    for _ in range(_ROUNDS):
        with table:
            pass
    return (time.perf_counter() - started) / _ROUNDS * 1e6


def main() -> None:
    memory = per_request_us(MemoryLimits(), BudgetLedger(), contextlib.nullcontext())
    lock = SharedLock()
    shared = per_request_us(
        SharedLimits(SharedTable(limit_record_cells(60, 2), 1024, lock), worker=0, workers=2),
        SharedBudgets(SharedTable(budget_record_cells(2), 1024, lock), worker=0, workers=2),
        lock,
    )
    print(f"limits + budget per request, one process:  {memory:5.1f} µs")
    print(f"limits + budget per request, shared:       {shared:5.1f} µs")
    print(f"one lock round trip (lockf):               {lock_round_trip_us():5.1f} µs")


if __name__ == "__main__":
    main()
