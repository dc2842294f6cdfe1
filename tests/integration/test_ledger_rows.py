"""The usage ledger: a row per upstream attempt, exact, never doubled (L6, L7).

Each test reconciles the rows with what the emulators actually served.
"""

from __future__ import annotations

import time

import httpx

from skyroute.emulators.runner import EmulatorThread
from skyroute.governance.budget import BudgetSpec, BudgetSubject
from tests.integration.conftest import MASTER_KEY, PRIMARY, SECONDARY, chats, sdk
from tests.integration.test_governance import (
    COST,
    MAX_TOKENS,
    MESSAGES,
    PROMPT_ESTIMATE,
    PROMPT_TOKENS,
    ask,
    budget,
    make_key,
    post_chat,
    priced,
    reconciled,
    wait_for_rows,
)


def test_a_retried_request_has_a_row_per_attempt(
    start_gateway, azure: EmulatorThread, local: EmulatorThread
) -> None:
    gateway = start_gateway(priced)
    azure.add_faults(PRIMARY, [{"kind": "status", "status": 503}])
    answer = ask(sdk(gateway), extra_headers={"x-request-id": "logical-retry-1"})
    assert answer.usage.prompt_tokens == PROMPT_TOKENS
    first, second = reconciled(gateway, azure, local)
    assert first["logical_request_id"] == second["logical_request_id"] == "logical-retry-1"
    assert first["request_id"] == second["request_id"]
    assert (first["attempt"], second["attempt"]) == (1, 2)
    assert first["status"] == 503 and first["error_code"] and first["cost_micros"] == 0
    assert first["prompt_tokens"] == first["completion_tokens"] == 0
    assert second["status"] == 200 and second["error_code"] is None
    assert (second["prompt_tokens"], second["completion_tokens"]) == (PROMPT_TOKENS, MAX_TOKENS)
    assert second["cost_micros"] == COST and second["estimated"] == 0
    assert {first["deployment"], second["deployment"]} == {f"azure-east/{PRIMARY}"}
    assert [r.attempt for r in chats(azure, PRIMARY)] == ["1", "2"]


def test_failover_leaves_a_row_per_deployment_tried(
    start_gateway, azure: EmulatorThread, local: EmulatorThread
) -> None:
    gateway = start_gateway(priced)
    azure.add_faults(PRIMARY, [{"kind": "status", "status": 429, "retry_after": 30}])
    ask(sdk(gateway))
    first, second = reconciled(gateway, azure, local)
    assert (first["provider"], first["upstream_model"], first["status"]) == (
        "azure-east",
        PRIMARY,
        429,
    )
    assert first["cost_micros"] == 0
    assert (second["provider"], second["upstream_model"], second["status"]) == (
        "local-vllm",
        SECONDARY,
        200,
    )
    assert second["deployment"] == f"local-vllm/{SECONDARY}" and second["cost_micros"] == COST
    assert first["logical_request_id"] == second["logical_request_id"]
    assert [first["attempt"], second["attempt"]] == [1, 2]


def test_a_stream_read_to_the_end_has_one_exact_row(
    start_gateway, azure: EmulatorThread, local: EmulatorThread
) -> None:
    gateway = start_gateway(priced)
    stream = sdk(gateway).chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        max_tokens=100,
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = None
    for chunk in stream:
        usage = chunk.usage or usage
    assert usage is not None
    (row,) = reconciled(gateway, azure, local)
    assert row["stream"] == 1 and row["estimated"] == 0 and row["status"] == 200
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    assert row["prompt_tokens"] == PROMPT_TOKENS
    assert row["cost_micros"] == usage.prompt_tokens + 2 * usage.completion_tokens
    assert row["ttft_ms"] is not None and row["ttft_ms"] <= row["latency_ms"]
    assert row["finish_reason"] == "stop"


def test_an_abandoned_stream_is_billed_as_an_estimate_and_settled(
    start_gateway, azure: EmulatorThread, local: EmulatorThread
) -> None:
    gateway = start_gateway(priced)
    key, key_id = make_key(gateway, max_parallel=1, budget=budget(10_000))
    # One token, then silence: the client reads the first token and leaves.
    azure.add_faults(PRIMARY, [{"kind": "stall", "after_tokens": 1, "seconds": 30}])
    stream = sdk(gateway, key).chat.completions.create(
        model="gpt-4o", messages=MESSAGES, max_tokens=MAX_TOKENS, stream=True
    )
    for chunk in stream:
        if any(c.delta.content for c in chunk.choices):
            break
    stream.close()
    (row,) = wait_for_rows(gateway, key_id=key_id)
    assert row["status"] == 499 and row["error_code"] == "client_closed_request"
    assert row["estimated"] == 1 and row["stream"] == 1
    assert row["prompt_tokens"] == PROMPT_ESTIMATE and row["completion_tokens"] >= 1
    assert row["cost_micros"] == row["prompt_tokens"] + 2 * row["completion_tokens"]
    # Settled: the parallel slot is free again, and the estimate is spent, not reserved.
    assert ask(sdk(gateway, key)).usage.completion_tokens == MAX_TOKENS
    assert len(reconciled(gateway, azure, local)) == 2
    subject = BudgetSubject("key:" + key_id, BudgetSpec(limit_micros=10_000))
    budgets = gateway.app.state.gate.budgets
    assert budgets.outstanding(subject, time.time()) == 0
    assert budgets.committed(subject, time.time()) == row["cost_micros"] + COST


def test_a_client_leaving_a_slow_plain_request_leaves_one_estimated_row(
    start_gateway, azure: EmulatorThread, local: EmulatorThread
) -> None:
    gateway = start_gateway(priced)
    azure.add_faults(PRIMARY, [{"kind": "delay", "seconds": 3}])
    try:
        httpx.post(
            gateway.base_url + "/chat/completions",
            json={"model": "gpt-4o", "messages": MESSAGES, "max_tokens": MAX_TOKENS},
            headers={"authorization": f"Bearer {MASTER_KEY}"},
            timeout=0.5,
        )
    except httpx.ReadTimeout:
        pass
    else:
        raise AssertionError("the slow upstream answered within the client's patience")
    (row,) = wait_for_rows(gateway)
    assert row["status"] == 499 and row["error_code"] == "client_closed_request"
    assert row["estimated"] == 1 and row["stream"] == 0
    assert (row["prompt_tokens"], row["completion_tokens"]) == (PROMPT_ESTIMATE, 0)
    assert row["cost_micros"] == PROMPT_ESTIMATE
    assert len(chats(azure, PRIMARY)) == 1 and not local.requests()


def test_refused_requests_leave_no_rows(
    start_gateway, azure: EmulatorThread, local: EmulatorThread
) -> None:
    gateway = start_gateway(priced)
    key, _ = make_key(gateway, rpm=1, models=["gpt-4o"])
    assert post_chat(gateway, key).status_code == 200
    assert post_chat(gateway, key).status_code == 429  # rpm
    assert post_chat(gateway, "sk-sr-nobody").status_code == 401
    assert post_chat(gateway, key, model="gpt-4o-large").status_code == 404
    assert post_chat(gateway, MASTER_KEY, model="nope").status_code == 404
    broke, _ = make_key(gateway, budget=budget(1))
    assert post_chat(gateway, broke).status_code == 429  # budget
    (row,) = reconciled(gateway, azure, local)
    assert row["status"] == 200
