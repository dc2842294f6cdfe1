"""Budgets in US dollars per period, reserved before the upstream call and settled after.

Decided, and why:

- Money is integer micro-dollars (1 USD = 1_000_000). Floats drift; integers add exactly.
- **Reserve, then settle.** Before dispatch the request reserves its worst-case cost (prompt
  estimate + ``max_tokens`` at the deployment's price). Admission requires
  ``committed + outstanding + amount <= limit`` for *every* subject (the key and its team),
  checked for all before any is changed, so a burst of N concurrent requests can never be
  admitted past the limit. ``settle`` replaces the reservation with the real cost;
  ``release`` drops it when no usage was produced. After settling, overshoot is bounded by
  the sum of ``actual - estimate`` over requests already admitted (zero when the estimate is
  an upper bound, which it is unless the prompt estimate was low).
- A request with a zero estimate (unknown price) still needs one micro-dollar of headroom,
  so an exhausted budget stops everything.
- **Periods** (day / ISO week from Monday / month / total) roll over on calendar boundaries in
  UTC. The clock is passed in as epoch seconds; in production it must be database (or Redis)
  time, never the replica's wall clock (reliability F17). A reservation's cost belongs to the
  period it was made in; if that period has ended by settle time the cost only reaches the
  ledger, not the new period. Outstanding reservations are carried across a rollover, which
  errs on the side of refusing.
- This backend is in memory for one process. ``restore`` seeds a period's committed spend
  from the store at start-up. The worker processes of one gateway share theirs
  (``governance/shared.py``), and the Redis backend for many replicas will keep the same
  contract (``BudgetBackend``).
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import msgspec


class Period(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    TOTAL = "total"


class BudgetSpec(msgspec.Struct, frozen=True, kw_only=True):
    limit_micros: int
    period: Period = Period.MONTH

    def __post_init__(self) -> None:
        if self.limit_micros < 0:
            raise ValueError("limit_micros must not be negative")


def period_bounds(period: Period, now: float) -> tuple[int, int | None]:
    """The ``[start, end)`` of the period containing ``now`` in epoch seconds (UTC);
    ``end`` is ``None`` for ``TOTAL``."""
    if period is Period.TOTAL:
        return 0, None
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.DAY:
        start, end = day, day + timedelta(days=1)
    elif period is Period.WEEK:
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    else:
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    return int(start.timestamp()), int(end.timestamp())


class BudgetSubject(msgspec.Struct, frozen=True):
    """One budget holder (``"key:<id>"`` or ``"team:<id>"``) and its current spec."""

    id: str
    spec: BudgetSpec


class Reservation(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    amount_micros: int
    # (subject id, start of the period the reservation counts against), one per subject
    holds: tuple[tuple[str, int], ...]


class BudgetExceeded(msgspec.Struct, frozen=True, kw_only=True):
    subject: str
    limit_micros: int
    committed_micros: int
    outstanding_micros: int
    resets_at: int | None  # epoch seconds; None for a total budget

    def retry_after(self, now: float) -> float | None:
        return None if self.resets_at is None else max(0.0, self.resets_at - now)


class BudgetBackend(Protocol):
    """``BudgetLedger`` (one process) and ``governance.shared.SharedBudgets`` (workers)."""

    def reserve(
        self, subjects: Sequence[BudgetSubject], amount_micros: int, now: float
    ) -> Reservation | BudgetExceeded: ...

    def settle(self, reservation: Reservation, actual_micros: int) -> bool: ...

    def release(self, reservation: Reservation) -> bool: ...

    def restore(self, subject: BudgetSubject, now: float, committed_micros: int) -> None:
        """Raise the period's committed spend to at least ``committed_micros``."""
        ...

    def committed(self, subject: BudgetSubject, now: float) -> int: ...

    def outstanding(self, subject: BudgetSubject, now: float) -> int: ...


class OpenReservations:
    """The reservations a backend has made and not yet settled or released."""

    __slots__ = ("_ids", "_open")

    def __init__(self) -> None:
        self._open: dict[int, Reservation] = {}
        self._ids = itertools.count(1)

    def open(self, amount_micros: int, holds: list[tuple[str, int]]) -> Reservation:
        reservation = Reservation(
            id=next(self._ids), amount_micros=amount_micros, holds=tuple(holds)
        )
        self._open[reservation.id] = reservation
        return reservation

    def close(self, reservation: Reservation) -> bool:
        """False if it was closed already (a second settle or release does nothing)."""
        return self._open.pop(reservation.id, None) is not None


def over_budget(
    subject: BudgetSubject, committed: int, outstanding: int, now: float
) -> BudgetExceeded:
    """The refusal for ``subject``, whose budget has no room left."""
    return BudgetExceeded(
        subject=subject.id,
        limit_micros=subject.spec.limit_micros,
        committed_micros=committed,
        outstanding_micros=outstanding,
        resets_at=period_bounds(subject.spec.period, now)[1],
    )


class PeriodStarts:
    """The start of each subject's current period. While ``now`` stays inside the period
    last worked out for a subject (most calls), no calendar arithmetic is done."""

    __slots__ = ("_known",)

    def __init__(self) -> None:
        # subject id -> (its period, the start and end last worked out)
        self._known: dict[str, tuple[Period, int, float]] = {}

    def start(self, subject: BudgetSubject, now: float) -> int:
        period = subject.spec.period
        known = self._known.get(subject.id)
        if known is not None and known[0] is period and known[1] <= now < known[2]:
            return known[1]
        start, end = period_bounds(period, now)
        self._known[subject.id] = (period, start, math.inf if end is None else end)
        return start


@dataclass(slots=True)
class _Account:
    period_start: int
    committed: int = 0
    outstanding: int = 0


class BudgetLedger:
    """In-memory budget accounts; single-threaded, so each call is atomic."""

    def __init__(self) -> None:
        self._accounts: dict[str, _Account] = {}
        self._periods = PeriodStarts()
        self._book = OpenReservations()

    def reserve(
        self, subjects: Sequence[BudgetSubject], amount_micros: int, now: float
    ) -> Reservation | BudgetExceeded:
        if amount_micros < 0:
            raise ValueError("amount_micros must not be negative")
        need = max(amount_micros, 1)
        accounts = []
        holds = []
        for subject in subjects:
            account = self._account(subject, now)
            committed, outstanding = account.committed, account.outstanding
            if committed + outstanding + need > subject.spec.limit_micros:
                return over_budget(subject, committed, outstanding, now)
            accounts.append(account)
            holds.append((subject.id, account.period_start))
        for account in accounts:  # every subject has room: only now is any changed
            account.outstanding += amount_micros
        return self._book.open(amount_micros, holds)

    def settle(self, reservation: Reservation, actual_micros: int) -> bool:
        """Replace the reservation by the real cost. False if it was already closed."""
        if actual_micros < 0:
            raise ValueError("actual_micros must not be negative")
        return self._close(reservation, actual_micros)

    def release(self, reservation: Reservation) -> bool:
        """Drop a reservation that produced no usage. False if it was already closed."""
        return self._close(reservation, 0)

    def restore(self, subject: BudgetSubject, now: float, committed_micros: int) -> None:
        """Raise the current period's committed spend to at least ``committed_micros`` (the
        store's figure, at start-up): spend not yet in the store is already counted here."""
        account = self._account(subject, now)
        account.committed = max(account.committed, committed_micros)

    def committed(self, subject: BudgetSubject, now: float) -> int:
        return self._account(subject, now).committed

    def outstanding(self, subject: BudgetSubject, now: float) -> int:
        return self._account(subject, now).outstanding

    def _close(self, reservation: Reservation, actual: int) -> bool:
        if not self._book.close(reservation):
            return False
        amount = reservation.amount_micros
        accounts = self._accounts
        for subject_id, period_start in reservation.holds:
            account = accounts[subject_id]
            account.outstanding -= amount
            if account.period_start == period_start:
                account.committed += actual
        return True

    def _account(self, subject: BudgetSubject, now: float) -> _Account:
        start = self._periods.start(subject, now)
        account = self._accounts.get(subject.id)
        if account is None:
            account = self._accounts[subject.id] = _Account(period_start=start)
        elif start > account.period_start:
            # A new period: spend starts from zero, in-flight reservations stay held until
            # they settle. A clock that steps back never resets spend (reliability F17).
            account.period_start = start
            account.committed = 0
        return account
