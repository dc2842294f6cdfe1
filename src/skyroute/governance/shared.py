"""Limits and budgets that every worker process of one gateway shares (``--workers N``).

The same contracts as ``MemoryLimits`` and ``BudgetLedger`` (the unit tests run both
against one suite), with the counters in a ``core.shared_cells.SharedTable`` and every
check-and-change done under its lock, so N workers admit exactly what one would.

Decided, and why:

- **What is shared is only the counters.** An admission or a reservation is settled by
  the worker that made it, so its details stay in that worker's memory.
- **Parallel slots and outstanding reservations are kept per worker** (one cell each)
  and summed when checked. A worker that dies holds slots and reservations that will
  never settle; the worker forked in its place calls ``forget_worker`` and they are
  dropped. Token estimates it had counted slide out of the window by themselves, and its
  spend reaches the budget again when the new worker ships its outbox and restores
  budgets from the ledger at start-up.
- Budget periods are checked against the shared period start: whichever worker first sees
  a new period starts it from zero for all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from skyroute.core.shared_cells import CellWindow, SharedTable
from skyroute.governance.budget import (
    BudgetExceeded,
    BudgetSubject,
    OpenReservations,
    PeriodStarts,
    Reservation,
    over_budget,
)
from skyroute.governance.limits import (
    Admission,
    Denied,
    LimitSubject,
    OpenAdmissions,
    longest_refusal,
)


class _Counters:
    """One limit subject's record: requests and tokens windows, then parallel per worker."""

    __slots__ = ("_cells", "_slots", "requests", "tokens")

    def __init__(self, cells: memoryview, base: int, buckets: int, width: float, workers: int):
        span = CellWindow.cells_for(buckets)
        self._cells = cells
        self.requests = CellWindow(cells, base, buckets, width)
        self.tokens = CellWindow(cells, base + span, buckets, width)
        self._slots = range(base + 2 * span, base + 2 * span + workers)

    @property
    def parallel(self) -> int:
        cells = self._cells
        return sum(cells[slot] for slot in self._slots)

    def occupy(self, worker: int, change: int) -> None:
        self._cells[self._slots[worker]] += change

    def forget(self, worker: int) -> None:
        self._cells[self._slots[worker]] = 0


def limit_record_cells(buckets: int, workers: int) -> int:
    return 2 * CellWindow.cells_for(buckets) + workers


class SharedLimits:
    """``LimitBackend`` over a shared table; ``worker`` is this process's index."""

    def __init__(
        self,
        table: SharedTable,
        *,
        worker: int,
        workers: int,
        window: float = 60.0,
        buckets: int = 60,
    ) -> None:
        if table.record_cells != limit_record_cells(buckets, workers):
            raise ValueError("the table's records are not laid out for these limits")
        if not 0 <= worker < workers:
            raise ValueError("worker must be in range(workers)")
        self._table = table
        self._worker = worker
        self._workers = workers
        self._buckets = buckets
        self._width = window / buckets
        self._counters: dict[str, _Counters] = {}
        self._book = OpenAdmissions()

    def admit(
        self, subjects: Sequence[LimitSubject], now: float, est_tokens: int
    ) -> Admission | Denied:
        if est_tokens < 0:
            raise ValueError("est_tokens must not be negative")
        current = math.floor(now / self._width)
        with self._table:
            found = [self._of(subject.id) for subject in subjects]
            denial = longest_refusal(subjects, found, current, now, est_tokens)
            if denial is not None:
                return denial
            for counters in found:
                counters.requests.add_at(current, 1)
                counters.tokens.add_at(current, est_tokens)
                counters.occupy(self._worker, 1)
        return self._book.open(subjects, est_tokens, current)

    def settle(self, admission: Admission, now: float, actual_tokens: int) -> bool:
        if actual_tokens < 0:
            raise ValueError("actual_tokens must not be negative")
        if not self._book.close(admission):
            return False
        delta = actual_tokens - admission.est_tokens
        bucket = admission.bucket
        current = math.floor(now / self._width)
        with self._table:
            for subject_id in admission.subjects:
                counters = self._of(subject_id)
                counters.occupy(self._worker, -1)
                tokens = counters.tokens
                tokens.advance(current)
                if not tokens.adjust(bucket, delta) and delta > 0:
                    tokens.add_at(current, delta)  # its bucket has gone: count the excess now
        return True

    def release(self, admission: Admission) -> bool:
        if not self._book.close(admission):
            return False
        with self._table:
            for subject_id in admission.subjects:
                counters = self._of(subject_id)
                counters.occupy(self._worker, -1)
                counters.tokens.adjust(admission.bucket, -admission.est_tokens)
        return True

    def in_flight(self, subject_id: str) -> int:
        with self._table:
            return self._of(subject_id).parallel

    def tokens_used(self, subject_id: str, now: float) -> int:
        with self._table:
            return self._of(subject_id).tokens.used(math.floor(now / self._width))

    def forget_worker(self, worker: int) -> None:
        """Drop the parallel slots a dead worker held (its successor calls this)."""
        with self._table:
            cells = self._table.cells
            span = 2 * CellWindow.cells_for(self._buckets)
            for base in self._table.records():
                cells[base + span + worker] = 0

    def _of(self, subject_id: str) -> _Counters:
        counters = self._counters.get(subject_id)
        if counters is None:
            base = self._table.record(subject_id)
            counters = self._counters[subject_id] = _Counters(
                self._table.cells, base, self._buckets, self._width, self._workers
            )
        return counters


# A budget record: period start, committed spend, then outstanding reservations per worker.
_START, _COMMITTED, _OUTSTANDING = 0, 1, 2


def budget_record_cells(workers: int) -> int:
    return _OUTSTANDING + workers


class SharedBudgets:
    """``BudgetBackend`` over a shared table; ``worker`` is this process's index."""

    def __init__(self, table: SharedTable, *, worker: int, workers: int) -> None:
        if table.record_cells != budget_record_cells(workers):
            raise ValueError("the table's records are not laid out for these budgets")
        if not 0 <= worker < workers:
            raise ValueError("worker must be in range(workers)")
        self._table = table
        self._cells = table.cells
        self._worker = worker
        self._workers = workers
        self._periods = PeriodStarts()
        self._book = OpenReservations()

    def reserve(
        self, subjects: Sequence[BudgetSubject], amount_micros: int, now: float
    ) -> Reservation | BudgetExceeded:
        if amount_micros < 0:
            raise ValueError("amount_micros must not be negative")
        need = max(amount_micros, 1)
        cells = self._cells
        bases = []
        holds = []
        with self._table:
            for subject in subjects:
                base = self._account(subject, now)
                committed, outstanding = cells[base + _COMMITTED], self._outstanding(base)
                if committed + outstanding + need > subject.spec.limit_micros:
                    return over_budget(subject, committed, outstanding, now)
                bases.append(base)
                holds.append((subject.id, cells[base + _START]))
            mine = _OUTSTANDING + self._worker
            for base in bases:  # every subject has room: only now is any changed
                cells[base + mine] += amount_micros
        return self._book.open(amount_micros, holds)

    def settle(self, reservation: Reservation, actual_micros: int) -> bool:
        if actual_micros < 0:
            raise ValueError("actual_micros must not be negative")
        return self._close(reservation, actual_micros)

    def release(self, reservation: Reservation) -> bool:
        return self._close(reservation, 0)

    def restore(self, subject: BudgetSubject, now: float, committed_micros: int) -> None:
        # Under the lock: a sibling's settle between a read and this write is not lost.
        with self._table:
            slot = self._account(subject, now) + _COMMITTED
            self._cells[slot] = max(self._cells[slot], committed_micros)

    def committed(self, subject: BudgetSubject, now: float) -> int:
        with self._table:
            return self._cells[self._account(subject, now) + _COMMITTED]

    def outstanding(self, subject: BudgetSubject, now: float) -> int:
        with self._table:
            return self._outstanding(self._account(subject, now))

    def forget_worker(self, worker: int) -> None:
        """Drop the reservations a dead worker held (its successor calls this)."""
        with self._table:
            for base in self._table.records():
                self._cells[base + _OUTSTANDING + worker] = 0

    def _close(self, reservation: Reservation, actual: int) -> bool:
        if not self._book.close(reservation):
            return False
        amount = reservation.amount_micros
        cells = self._cells
        mine = _OUTSTANDING + self._worker
        with self._table:
            for subject_id, period_start in reservation.holds:
                base = self._table.record(subject_id)
                cells[base + mine] -= amount
                if cells[base + _START] == period_start:
                    cells[base + _COMMITTED] += actual
        return True

    def _outstanding(self, base: int) -> int:
        start = base + _OUTSTANDING
        return sum(self._cells[start : start + self._workers])

    def _account(self, subject: BudgetSubject, now: float) -> int:
        """The record of ``subject``, rolled over to the period containing ``now``."""
        base = self._table.record(subject.id)
        start = self._periods.start(subject, now)
        if start > self._cells[base + _START]:
            # A new period, for every worker: spend starts from zero; reservations in
            # flight stay held until they settle. A clock that steps back never resets
            # spend (reliability F17).
            self._cells[base + _START] = start
            self._cells[base + _COMMITTED] = 0
        return base
