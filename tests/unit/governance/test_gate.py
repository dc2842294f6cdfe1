"""The gate before dispatch: allow-list, limits, then budget, and settling afterwards."""

from __future__ import annotations

import pytest

from skyroute.core.errors import ModelNotFound, QuotaExceeded, RateLimited
from skyroute.core.shared_cells import SharedTable, TableFull
from skyroute.governance.budget import BudgetLedger, BudgetSpec, BudgetSubject, Period
from skyroute.governance.directory import MASTER, Caller, Team
from skyroute.governance.gate import DEFAULT_MAX_TOKENS, Gate
from skyroute.governance.keys import KeyRecord
from skyroute.governance.limits import LimitSpec, MemoryLimits
from skyroute.governance.prices import Price
from skyroute.governance.shared import SharedLimits, limit_record_cells

PRICE = Price(input=1_000_000, output=2_000_000)  # $1 / $2 per million tokens
NOW = 1_750_000_000.0  # the wall clock; the monotonic clock is 0


def _gate() -> tuple[Gate, MemoryLimits, BudgetLedger]:
    limits, budgets = MemoryLimits(), BudgetLedger()
    return Gate(limits, budgets, clock=lambda: 0.0, wall_clock=lambda: NOW), limits, budgets


def _caller(team: Team | None = None, **fields: object) -> Caller:
    values: dict[str, object] = {"id": "k1", "hash": "h"} | fields
    return Caller(KeyRecord(**values), team)  # type: ignore[arg-type]


def test_master_and_unlimited_keys_pass_without_counting() -> None:
    gate, limits, _ = _gate()
    for caller in (Caller(MASTER), _caller()):
        ticket = gate.admit(caller, "m", prompt_tokens=10, max_tokens=None, price=PRICE)
        assert ticket.admission is None and ticket.reservation is None
    assert limits.in_flight("key:k1") == 0


def test_a_model_off_the_list_is_the_same_404_as_an_unknown_one() -> None:
    gate, _, _ = _gate()
    with pytest.raises(ModelNotFound) as caught:
        gate.admit(_caller(models=("a",)), "b", prompt_tokens=1, max_tokens=1, price=None)
    assert caught.value.message == ModelNotFound("b").message


def test_rate_limit_refusal_says_how_long_to_wait() -> None:
    gate, _, _ = _gate()
    caller = _caller(rpm=1)
    gate.admit(caller, "m", prompt_tokens=1, max_tokens=1, price=None)
    with pytest.raises(RateLimited) as caught:
        gate.admit(caller, "m", prompt_tokens=1, max_tokens=1, price=None)
    assert caught.value.status == 429 and caught.value.code == "rate_limit_exceeded"
    assert caught.value.retry_after is not None and caught.value.retry_after >= 1


def test_budget_reserves_the_worst_case_and_settles_to_the_real_cost() -> None:
    gate, _, budgets = _gate()
    spec = BudgetSpec(limit_micros=1_000_000, period=Period.DAY)
    caller = _caller(budget=spec)
    ticket = gate.admit(caller, "m", prompt_tokens=100, max_tokens=400, price=PRICE)
    subject = BudgetSubject("key:k1", spec)
    assert budgets.outstanding(subject, NOW) == 100 + 800  # micro-dollars: 100 at 1 + 400 at 2
    gate.settle(ticket, tokens=150, cost_micros=200)
    gate.settle(ticket, tokens=150, cost_micros=200)  # idempotent
    assert budgets.outstanding(subject, NOW) == 0 and budgets.committed(subject, NOW) == 200


def test_no_max_tokens_reserves_the_default() -> None:
    gate, _, budgets = _gate()
    spec = BudgetSpec(limit_micros=10**9, period=Period.TOTAL)
    gate.admit(_caller(budget=spec), "m", prompt_tokens=0, max_tokens=None, price=PRICE)
    outstanding = budgets.outstanding(BudgetSubject("key:k1", spec), NOW)
    assert outstanding == DEFAULT_MAX_TOKENS * 2


def test_a_budget_refusal_leaves_the_limits_untouched() -> None:
    gate, limits, _ = _gate()
    caller = _caller(budget=BudgetSpec(limit_micros=10), max_parallel=1, rpm=1)
    with pytest.raises(QuotaExceeded) as caught:
        gate.admit(caller, "m", prompt_tokens=100, max_tokens=100, price=PRICE)
    assert caught.value.code == "insufficient_quota" and caught.value.retry_after is not None
    assert limits.in_flight("key:k1") == 0
    gate.admit(caller, "m", prompt_tokens=1, max_tokens=1, price=PRICE)  # rpm 1 still free


def test_a_limit_refusal_releases_the_budget_reservation() -> None:
    gate, _, budgets = _gate()
    spec = BudgetSpec(limit_micros=10**6)
    caller = _caller(budget=spec, max_parallel=1)
    gate.admit(caller, "m", prompt_tokens=100, max_tokens=100, price=PRICE)
    with pytest.raises(RateLimited):
        gate.admit(caller, "m", prompt_tokens=100, max_tokens=100, price=PRICE)
    assert budgets.outstanding(BudgetSubject("key:k1", spec), NOW) == 300


def test_a_team_caps_its_keys() -> None:
    gate, _, _ = _gate()
    team = Team(id="t", name="t", limits=LimitSpec(max_parallel=1))
    first, second = _caller(team, id="a", team_id="t"), _caller(team, id="b", team_id="t")
    ticket = gate.admit(first, "m", prompt_tokens=1, max_tokens=1, price=None)
    with pytest.raises(RateLimited, match="team"):
        gate.admit(second, "m", prompt_tokens=1, max_tokens=1, price=None)
    gate.settle(ticket, tokens=0, cost_micros=0)  # nothing used: released
    gate.admit(second, "m", prompt_tokens=1, max_tokens=1, price=None)


def test_a_changed_key_or_team_is_enforced_from_its_next_request() -> None:
    # The gate remembers a key's subjects per record and team object: a new record (the
    # directory swaps one in on every change) must never meet the old limits.
    gate, limits, _ = _gate()
    caller = _caller(rpm=1)
    gate.admit(caller, "m", prompt_tokens=1, max_tokens=1, price=None)
    with pytest.raises(RateLimited):
        gate.admit(caller, "m", prompt_tokens=1, max_tokens=1, price=None)
    gate.admit(_caller(rpm=2), "m", prompt_tokens=1, max_tokens=1, price=None)
    unlimited = _caller()
    assert gate.admit(unlimited, "m", prompt_tokens=1, max_tokens=1, price=None).admission is None
    record = unlimited.key
    team = Team(id="t1", name="t", limits=LimitSpec(max_parallel=1))
    held = gate.admit(Caller(record, team), "m", prompt_tokens=1, max_tokens=1, price=None)
    assert limits.in_flight("team:t1") == 1
    with pytest.raises(RateLimited):
        gate.admit(Caller(record, team), "m", prompt_tokens=1, max_tokens=1, price=None)
    roomier = Team(id="t1", name="t", limits=LimitSpec(max_parallel=2))
    gate.admit(Caller(record, roomier), "m", prompt_tokens=1, max_tokens=1, price=None)
    assert limits.in_flight("team:t1") == 2
    gate.settle(held, tokens=0, cost_micros=0)
    assert limits.in_flight("team:t1") == 1


def test_a_full_shared_table_refuses_with_503_and_holds_no_budget() -> None:
    """With workers, the shared limit table can run out of records: the request gets a 503
    naming the setting, and its budget reservation is given back."""
    table = SharedTable(limit_record_cells(60, 2), capacity=1)
    budgets = BudgetLedger()
    gate = Gate(
        SharedLimits(table, worker=0, workers=2),
        budgets,
        clock=lambda: 0.0,
        wall_clock=lambda: NOW,
    )
    spec = BudgetSpec(limit_micros=1_000_000, period=Period.DAY)
    gate.admit(_caller(id="k1", rpm=10), "m", prompt_tokens=1, max_tokens=1, price=PRICE)
    with pytest.raises(TableFull) as caught:
        gate.admit(
            _caller(id="k2", rpm=10, budget=spec), "m", prompt_tokens=1, max_tokens=1, price=PRICE
        )
    assert caught.value.status == 503 and "server.shared_subjects" in caught.value.message
    assert budgets.outstanding(BudgetSubject("key:k2", spec), NOW) == 0


class _CountingHold:
    def __init__(self) -> None:
        self.taken = 0

    def __enter__(self) -> None:
        self.taken += 1

    def __exit__(self, *exc: object) -> None:
        pass


def test_the_hold_is_taken_once_to_admit_and_once_to_settle_and_never_for_free() -> None:
    """Workers share one lock for limits and budgets: a request takes it twice, not four
    times, and a key with nothing to count never."""
    hold = _CountingHold()
    limits, budgets = MemoryLimits(), BudgetLedger()
    gate = Gate(limits, budgets, clock=lambda: 0.0, wall_clock=lambda: NOW, hold=hold)
    spec = BudgetSpec(limit_micros=1_000_000, period=Period.DAY)
    ticket = gate.admit(
        _caller(rpm=10, budget=spec), "m", prompt_tokens=1, max_tokens=1, price=PRICE
    )
    assert hold.taken == 1
    gate.settle(ticket, tokens=2, cost_micros=3)
    gate.settle(ticket, tokens=2, cost_micros=3)  # closed already: nothing to take
    assert hold.taken == 2
    free = gate.admit(Caller(MASTER), "m", prompt_tokens=1, max_tokens=1, price=PRICE)
    gate.settle(free, tokens=2, cost_micros=3)
    assert hold.taken == 2
