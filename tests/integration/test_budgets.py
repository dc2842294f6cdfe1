"""Budgets under a concurrent burst, for a key and for a team, and across a restart (L4).

Costs and reservations are exact; see ``test_governance`` for the arithmetic.
"""

from __future__ import annotations

import asyncio

from skyroute.emulators.runner import EmulatorThread
from tests.integration.conftest import PRIMARY, chats, sdk
from tests.integration.test_governance import (
    COST,
    MAX_TOKENS,
    RESERVATION,
    ask,
    budget,
    burst,
    ledger,
    make_key,
    make_team,
    priced,
    refusal,
    slow_primary,
    split,
)


def test_budget_race_admits_no_more_than_the_budget_covers(
    start_gateway, azure: EmulatorThread, local: EmulatorThread
) -> None:
    gateway = start_gateway(priced)
    slow_primary(azure)
    covers = 10
    served = 0
    for _round in range(3):
        key, key_id = make_key(gateway, budget=budget(covers * RESERVATION))
        results = asyncio.run(burst(gateway, [key], 200))
        admitted, refused = split(results)
        assert len(admitted) == covers  # == budget // reservation: nothing settled mid-burst
        assert len(refused) == 200 - covers
        for error in refused:
            assert error.status_code == 429
            assert error.code == "insufficient_quota"
            assert error.type == "insufficient_quota"
            assert int(error.response.headers["retry-after"]) >= 1
        served += len(admitted)
        # Refused requests never reached the upstream.
        assert len(chats(azure, PRIMARY)) == served and not local.requests()
        rows = ledger(gateway, key_id=key_id)
        assert len(rows) == covers and all(row["status"] == 200 for row in rows)
        spent = sum(row["cost_micros"] for row in rows)
        assert spent == covers * COST <= covers * RESERVATION


def test_team_budget_caps_its_keys_together(
    start_gateway, azure: EmulatorThread, local: EmulatorThread
) -> None:
    gateway = start_gateway(priced)
    slow_primary(azure)
    covers = 10
    team = make_team(gateway, budget=budget(covers * RESERVATION))
    first, first_id = make_key(gateway, team_id=team)
    second, second_id = make_key(gateway, team_id=team)
    admitted, refused = split(asyncio.run(burst(gateway, [first, second], 200)))
    assert len(admitted) == covers
    assert {e.code for e in refused} == {"insufficient_quota"}
    assert len(chats(azure, PRIMARY)) == covers and not local.requests()
    rows = ledger(gateway, team_id=team)
    assert {row["key_id"] for row in rows} <= {first_id, second_id}
    assert sum(row["cost_micros"] for row in rows) == covers * COST


def test_budget_is_restored_from_the_ledger_after_a_restart(start_gateway) -> None:
    gateway = start_gateway(priced)
    # Room for two requests: 0 + 59 and 24 + 59 fit under 100; 48 + 59 does not.
    key, key_id = make_key(gateway, budget=budget(100))
    client = sdk(gateway, key)
    ask(client)
    ask(client)
    refused = refusal(lambda: ask(client))
    assert refused.code == "insufficient_quota"
    gateway.stop()

    again = start_gateway(priced)  # the same data directory: this test's own cwd
    refused = refusal(lambda: ask(sdk(again, key)))
    assert refused.status_code == 429 and refused.code == "insufficient_quota"
    assert sum(row["cost_micros"] for row in ledger(again, key_id=key_id)) == 2 * COST
    # The gateway itself serves: a key with money left is answered.
    other, _ = make_key(again, budget=budget(100))
    assert ask(sdk(again, other)).usage.completion_tokens == MAX_TOKENS
