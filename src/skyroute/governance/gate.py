"""The gate every model request passes before dispatch: model allow-list, limits, budget.

Decided, and why:

- One policy for models a key may not use: the same 404 ``model_not_found`` as a model that
  does not exist (reliability S8), so a key cannot enumerate what others may call.
- The budget is checked before the limits, and a limit refusal releases the reservation,
  so a refused request leaves no trace in either (a limit admission counts its request
  for the minute even when released, so it must come last). A key out of both money and
  rate is told about the money: waiting a minute would not help it.
- Subjects are the key and its team, each only when it has something to enforce; the master
  key and unlimited keys skip the counters entirely (nothing to pay per request).
- The budget reservation is the worst case over every deployment the request may reach
  (the model's and its fallbacks'): the prompt estimate plus ``max_tokens`` (or
  ``DEFAULT_MAX_TOKENS`` when the client set none) at the dearest price among them.
- Money is integer micro-dollars; the limit clock is monotonic, the budget clock is the
  wall clock (budget periods are calendar periods).
- A key's subjects are worked out once per key record and team, not per request: the
  records are frozen and the directory swaps in new objects when anything changes, so the
  cache is checked by identity and can never serve stale limits or budgets.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Literal, NamedTuple

from skyroute.core.errors import ModelNotFound, QuotaExceeded, RateLimited
from skyroute.governance.budget import BudgetBackend, BudgetSubject, Reservation
from skyroute.governance.directory import Caller, Team
from skyroute.governance.keys import KeyRecord
from skyroute.governance.limits import Admission, LimitBackend, LimitSpec, LimitSubject
from skyroute.governance.prices import Price, estimate_micros

# Output tokens assumed for a request that sets no ``max_tokens``, for TPM and budgets.
DEFAULT_MAX_TOKENS = 4096

_REASONS = {
    "rpm": "requests per minute",
    "tpm": "tokens per minute",
    "parallel": "parallel requests",
}


class Ticket:
    """What one admitted request holds: a limit admission and a budget reservation."""

    __slots__ = ("admission", "closed", "reservation")

    def __init__(self, admission: Admission | None, reservation: Reservation | None) -> None:
        self.admission = admission
        self.reservation = reservation
        self.closed = False


_NO_LIMITS = LimitSpec()
_FREE = Ticket(None, None)
_FREE.closed = True

# Keys whose subjects are cached; past this the cache starts again (a bound, not a policy).
_MAX_CACHED_KEYS = 100_000


class _Subjects(NamedTuple):
    """What a key record and its team enforce, for the cache: checked by identity."""

    key: KeyRecord
    team: Team | None
    limits: tuple[LimitSubject, ...]
    budgets: tuple[BudgetSubject, ...]


class Gate:
    def __init__(
        self,
        limits: LimitBackend,
        budgets: BudgetBackend,
        *,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        hold: AbstractContextManager[object] | None = None,
    ) -> None:
        """``hold``: the lock shared counters take (workers), held once across a request's
        reservation and admission, and once across its two settlements."""
        self.limits = limits
        self.budgets = budgets
        self._hold = hold
        self._clock = clock
        self._wall_clock = wall_clock
        self._subjects: dict[str, _Subjects] = {}

    def admit(
        self,
        caller: Caller,
        model: str,
        *,
        prompt_tokens: int,
        max_tokens: int | None,
        price: Price | None,
    ) -> Ticket:
        """Admit a request or raise ``ModelNotFound``, ``RateLimited``, ``QuotaExceeded``."""
        key = caller.key
        if not key.allows_model(model):
            raise ModelNotFound(model)
        subjects = self._subjects.get(key.id)
        if subjects is None or subjects.key is not key or subjects.team is not caller.team:
            subjects = self._remember(caller)
        if not subjects.limits and not subjects.budgets:
            return _FREE
        if self._hold is None:
            return self._take(subjects, prompt_tokens, max_tokens, price)
        with self._hold:
            return self._take(subjects, prompt_tokens, max_tokens, price)

    def _take(
        self,
        subjects: _Subjects,
        prompt_tokens: int,
        max_tokens: int | None,
        price: Price | None,
    ) -> Ticket:
        """Reserve the budget, then admit under the limits; neither or both."""
        limit_subjects, budget_subjects = subjects.limits, subjects.budgets
        output = DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens
        reservation = None
        if budget_subjects:
            amount = 0 if price is None else estimate_micros(prompt_tokens, output, price)
            now = self._wall_clock()
            held = self.budgets.reserve(budget_subjects, amount, now)
            if not isinstance(held, Reservation):
                which = held.subject.partition(":")[0]
                raise QuotaExceeded(
                    f"This {which} has used its budget for the period.",
                    retry_after=held.retry_after(now),
                )
            reservation = held
        admission = None
        if limit_subjects:
            try:
                outcome = self.limits.admit(limit_subjects, self._clock(), prompt_tokens + output)
            except BaseException:  # e.g. the workers' shared table is full: hold nothing
                if reservation is not None:
                    self.budgets.release(reservation)
                raise
            if not isinstance(outcome, Admission):
                if reservation is not None:
                    self.budgets.release(reservation)
                which = outcome.subject.partition(":")[0]
                raise RateLimited(
                    f"This {which} is over its limit of {_REASONS[outcome.reason]}; "
                    "retry after the time in Retry-After.",
                    retry_after=max(1.0, math.ceil(outcome.retry_after)),
                )
            admission = outcome
        return Ticket(admission, reservation)

    def settle(self, ticket: Ticket, *, tokens: int, cost_micros: int) -> None:
        """The request is over: count what it really used (zero releases everything)."""
        if ticket.closed:
            return
        ticket.closed = True
        if self._hold is None:
            self._settle(ticket, tokens, cost_micros)
        else:
            with self._hold:
                self._settle(ticket, tokens, cost_micros)

    def _settle(self, ticket: Ticket, tokens: int, cost_micros: int) -> None:
        admission = ticket.admission
        if admission is not None:
            if tokens:
                self.limits.settle(admission, self._clock(), tokens)
            else:
                self.limits.release(admission)
        reservation = ticket.reservation
        if reservation is not None:
            if cost_micros:
                self.budgets.settle(reservation, cost_micros)
            else:
                self.budgets.release(reservation)

    def _remember(self, caller: Caller) -> _Subjects:
        subjects = _Subjects(
            caller.key,
            caller.team,
            tuple(limit_subjects_of(caller)),
            tuple(budget_subjects_of(caller)),
        )
        if len(self._subjects) >= _MAX_CACHED_KEYS:
            self._subjects.clear()
        self._subjects[caller.key.id] = subjects
        return subjects


Holder = Literal["key", "team"]


def subject_id(holder: Holder, holder_id: str) -> str:
    """The counter name of a key or a team (``key:<id>``, ``team:<id>``), in limits and
    budgets alike."""
    return f"{holder}:{holder_id}"


def limit_subjects_of(caller: Caller) -> list[LimitSubject]:
    key, team = caller.key, caller.team
    subjects = []
    if key.rpm is not None or key.tpm is not None or key.max_parallel is not None:
        spec = LimitSpec(rpm=key.rpm, tpm=key.tpm, max_parallel=key.max_parallel)
        subjects.append(LimitSubject(subject_id("key", key.id), spec))
    if team is not None and team.limits != _NO_LIMITS:
        subjects.append(LimitSubject(subject_id("team", team.id), team.limits))
    return subjects


def budget_subjects_of(caller: Caller) -> list[BudgetSubject]:
    key, team = caller.key, caller.team
    subjects = []
    if key.budget is not None:
        subjects.append(BudgetSubject(subject_id("key", key.id), key.budget))
    if team is not None and team.budget is not None:
        subjects.append(BudgetSubject(subject_id("team", team.id), team.budget))
    return subjects
