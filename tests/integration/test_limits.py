"""Rate limits per key and per team: requests and tokens per minute, parallel requests."""

from __future__ import annotations

import asyncio

import openai

from skyroute.emulators.runner import EmulatorThread
from tests.integration.conftest import PRIMARY, chats, sdk
from tests.integration.test_governance import (
    MAX_TOKENS,
    MESSAGES,
    admin,
    ask,
    budget,
    burst,
    make_key,
    make_team,
    post_chat,
    priced,
    refusal,
    slow_primary,
    split,
)


def test_rpm_admits_exactly_the_limit_then_429_with_retry_after(
    start_gateway, azure: EmulatorThread
) -> None:
    gateway = start_gateway(priced)
    key, _ = make_key(gateway, rpm=5)
    client = sdk(gateway, key)
    outcomes: list[openai.APIStatusError | None] = []
    for _ in range(12):
        try:
            ask(client)
            outcomes.append(None)
        except openai.APIStatusError as error:
            outcomes.append(error)
    assert outcomes[:5] == [None] * 5
    for error in outcomes[5:]:
        assert error is not None and error.status_code == 429
        assert error.code == "rate_limit_exceeded" and error.type == "rate_limit_error"
        assert int(error.response.headers["retry-after"]) >= 1
    assert len(chats(azure, PRIMARY)) == 5


def test_max_parallel_caps_requests_in_flight(
    start_gateway, azure: EmulatorThread, local: EmulatorThread
) -> None:
    gateway = start_gateway(priced)
    slow_primary(azure, 1.0)
    key, _ = make_key(gateway, max_parallel=2)
    admitted, refused = split(asyncio.run(burst(gateway, [key], 6)))
    assert len(admitted) == 2 and len(refused) == 4
    assert {(e.status_code, e.code) for e in refused} == {(429, "rate_limit_exceeded")}
    assert all(int(e.response.headers["retry-after"]) >= 1 for e in refused)
    assert len(chats(azure, PRIMARY)) == 2 and not local.requests()
    # Slots come back when requests end.
    assert ask(sdk(gateway, key)).usage.completion_tokens == MAX_TOKENS


def test_tpm_refuses_on_the_estimate_before_dispatch(start_gateway, azure: EmulatorThread) -> None:
    gateway = start_gateway(priced)
    key, _ = make_key(gateway, tpm=100)
    client = sdk(gateway, key)
    ask(client)  # estimated 49 + 5 tokens, settled to 14 + 5 = 19
    # 49 + 90 = 139 estimated: more than what is left (81), though its real count would fit.
    error = refusal(
        lambda: client.chat.completions.create(model="gpt-4o", messages=MESSAGES, max_tokens=90)
    )
    assert error.status_code == 429 and error.code == "rate_limit_exceeded"
    assert int(error.response.headers["retry-after"]) >= 1
    assert len(chats(azure, PRIMARY)) == 1  # never sent upstream
    ask(client)  # 19 + 54 fits: the refusal left no trace in the window


def test_team_rpm_caps_the_sum_of_its_keys(start_gateway, azure: EmulatorThread) -> None:
    gateway = start_gateway(priced)
    team = make_team(gateway, rpm=4)
    clients = [sdk(gateway, make_key(gateway, team_id=team)[0]) for _ in range(2)]
    served = 0
    for i in range(10):
        try:
            ask(clients[i % 2])
            served += 1
        except openai.RateLimitError as error:
            assert error.code == "rate_limit_exceeded"
    assert served == 4 and len(chats(azure, PRIMARY)) == 4


def test_a_budget_refusal_does_not_use_up_the_rpm(start_gateway) -> None:
    # Gate docstring: "a budget refusal gives the limit admission back, so a refused
    # request leaves no trace in either". Room in the budget for two requests, rpm 3.
    gateway = start_gateway(priced)
    key, key_id = make_key(gateway, rpm=3, budget=budget(100))
    assert post_chat(gateway, key).status_code == 200
    assert post_chat(gateway, key).status_code == 200
    refused = post_chat(gateway, key)
    assert refused.json()["error"]["code"] == "insufficient_quota"
    with admin(gateway) as client:
        raised = client.patch(f"/admin/keys/{key_id}", json={"budget": budget(10_000)})
    assert raised.status_code == 200
    # Two requests so far used the rpm; the refused one must not have.
    third = post_chat(gateway, key)
    assert third.status_code == 200, third.text
