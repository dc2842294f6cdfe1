"""Priority access and failover: what the gateway does when the priority tier misbehaves.

Every case reads the emulators' ledgers, which record each upstream attempt, so the tests
check not only what the client saw but how many attempts each deployment received.
"""

from __future__ import annotations

import time

import openai
import pytest

from skyroute.emulators.runner import EmulatorThread
from tests.integration.conftest import LARGE, PRIMARY, SECONDARY, chats, hello, sdk


def served_by(client: openai.OpenAI, **kw: object) -> str:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=hello(), **kw)
    raw.parse()
    return raw.headers["x-skyroute-deployment"]


def test_429_with_retry_after_fails_over_and_cools_the_deployment_down(
    client: openai.OpenAI, azure: EmulatorThread, local: EmulatorThread
) -> None:
    azure.add_faults(PRIMARY, [{"kind": "status", "status": 429, "retry_after": 1}])
    assert served_by(client) == SECONDARY
    # The cooldown is honoured: no request reaches the primary while it lasts ...
    assert served_by(client) == SECONDARY
    assert len(chats(azure, PRIMARY)) == 1
    # ... and once it is over, traffic returns to the priority tier.
    time.sleep(1.1)
    assert served_by(client) == PRIMARY
    assert len(chats(azure, PRIMARY)) == 2


def test_429_on_the_only_deployment_waits_for_retry_after_when_it_fits(
    start_gateway, azure: EmulatorThread
) -> None:
    def only_primary(doc: dict) -> None:
        doc["models"]["gpt-4o"]["deployments"] = doc["models"]["gpt-4o"]["deployments"][:1]
        doc["models"]["gpt-4o"]["fallbacks"] = []

    client = sdk(start_gateway(only_primary))
    azure.add_faults(PRIMARY, [{"kind": "status", "status": 429, "retry_after_ms": 300}])
    started = time.monotonic()
    assert served_by(client) == PRIMARY
    assert time.monotonic() - started >= 0.3
    assert len(chats(azure, PRIMARY)) == 2


def test_every_deployment_rate_limited_gives_429_with_retry_after(
    client: openai.OpenAI, azure: EmulatorThread, local: EmulatorThread
) -> None:
    limited = {"kind": "status", "status": 429, "retry_after": 40, "repeat": True}
    azure.add_faults(PRIMARY, [limited])
    local.add_faults(SECONDARY, [limited])
    local.add_faults(LARGE, [limited])
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=hello())
    assert int(caught.value.response.headers["retry-after"]) >= 1
    assert caught.value.body["type"] == "rate_limit_error"  # type: ignore[index]
    # 40 s does not fit: nobody was retried, each deployment was tried once.
    assert [len(chats(azure, PRIMARY)), len(chats(local, SECONDARY)), len(chats(local, LARGE))] == [
        1,
        1,
        1,
    ]


def test_500_once_is_retried_on_the_same_deployment(
    client: openai.OpenAI, azure: EmulatorThread, local: EmulatorThread
) -> None:
    azure.add_faults(PRIMARY, [{"kind": "status", "status": 500}])
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=hello())
    assert raw.headers["x-skyroute-deployment"] == PRIMARY
    assert raw.headers["x-skyroute-attempts"] == "2"
    attempts = chats(azure, PRIMARY)
    assert [r.attempt for r in attempts] == ["1", "2"]
    assert len({r.headers["x-request-id"] for r in attempts}) == 1
    assert not local.requests()


def test_persistent_503_falls_to_the_next_tier_after_bounded_attempts(
    client: openai.OpenAI, azure: EmulatorThread, local: EmulatorThread
) -> None:
    azure.add_faults(PRIMARY, [{"kind": "status", "status": 503, "repeat": True}])
    assert served_by(client) == SECONDARY
    assert len(chats(azure, PRIMARY)) == 3  # the first try and retries.attempts = 2


def test_tcp_reset_is_retried(client: openai.OpenAI, azure: EmulatorThread) -> None:
    azure.add_faults(PRIMARY, [{"kind": "reset"}])
    assert served_by(client) == PRIMARY
    assert len(chats(azure, PRIMARY)) == 2


def test_no_response_is_abandoned_at_first_token_and_not_retried(
    client: openai.OpenAI, azure: EmulatorThread, local: EmulatorThread
) -> None:
    azure.add_faults(PRIMARY, [{"kind": "hang"}])
    started = time.monotonic()
    assert served_by(client) == SECONDARY
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 2.5  # first_token is 1 s
    assert len(chats(azure, PRIMARY)) == 1


def test_slow_first_token_on_a_stream_fails_over_before_any_byte(
    client: openai.OpenAI, azure: EmulatorThread
) -> None:
    azure.add_faults(PRIMARY, [{"kind": "slow_first_token", "seconds": 3}])
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=hello(), stream=True
    )
    assert raw.headers["x-skyroute-deployment"] == SECONDARY
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text.startswith("You said:")
    assert len(chats(azure, PRIMARY)) == 1


def test_slow_first_token_within_the_limit_is_waited_for(
    client: openai.OpenAI, azure: EmulatorThread
) -> None:
    azure.add_faults(PRIMARY, [{"kind": "slow_first_token", "seconds": 0.4}])
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=hello(), stream=True
    )
    assert raw.headers["x-skyroute-deployment"] == PRIMARY
    assert list(raw.parse())


def test_context_length_falls_back_without_retrying_the_model(
    client: openai.OpenAI, azure: EmulatorThread, local: EmulatorThread
) -> None:
    azure.add_faults(PRIMARY, [{"kind": "context_length", "max_context": 10}])
    assert served_by(client) == LARGE
    assert len(chats(azure, PRIMARY)) == 1
    assert not chats(local, SECONDARY)  # same model, same limit: not tried
    assert len(chats(local, LARGE)) == 1


def test_context_length_without_fallbacks_is_returned_to_the_client(
    start_gateway, azure: EmulatorThread, local: EmulatorThread
) -> None:
    def no_fallbacks(doc: dict) -> None:
        doc["models"]["gpt-4o"]["fallbacks"] = []

    client = sdk(start_gateway(no_fallbacks))
    azure.add_faults(PRIMARY, [{"kind": "context_length", "max_context": 10}])
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=hello())
    assert caught.value.code == "context_length_exceeded"
    assert len(chats(azure, PRIMARY)) == 1 and not local.requests()


def test_content_filter_is_propagated_without_retry(
    client: openai.OpenAI, azure: EmulatorThread, local: EmulatorThread
) -> None:
    azure.add_faults(PRIMARY, [{"kind": "content_filter"}])
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=hello())
    assert caught.value.code == "content_filter"
    assert len(chats(azure, PRIMARY)) == 1 and not local.requests()


def test_all_deployments_failing_gives_a_5xx_after_bounded_attempts(
    client: openai.OpenAI, azure: EmulatorThread, local: EmulatorThread
) -> None:
    down = {"kind": "status", "status": 503, "repeat": True}
    azure.add_faults(PRIMARY, [down])
    local.add_faults("*", [down])
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=hello())
    assert caught.value.status_code == 503
    # three deployments (two models), each tried 1 + attempts times
    total = len(azure.requests()) + len(local.requests())
    assert total == 3 + 3 + 3


def test_primary_flapping_down_then_healthy(
    client: openai.OpenAI, azure: EmulatorThread, local: EmulatorThread
) -> None:
    azure.add_faults(PRIMARY, [{"kind": "status", "status": 503, "repeat": True}])
    outage = [served_by(client) for _ in range(12)]
    assert outage == [SECONDARY] * 12  # served throughout the outage
    # The breaker opened after 3 failures; while open only single probes reach the primary.
    assert len(chats(azure, PRIMARY)) <= 3 + 2
    azure.clear_faults()
    recovered_at = time.monotonic()
    while served_by(client) != PRIMARY:
        assert time.monotonic() - recovered_at < 3, "traffic did not return to the primary"
        time.sleep(0.05)
    assert [served_by(client) for _ in range(5)] == [PRIMARY] * 5
