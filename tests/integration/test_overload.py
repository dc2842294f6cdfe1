"""Load shedding on a real gateway (reliability L2): past ``server.max_in_flight``, or while
the event loop is behind, model requests get a fast 503 with Retry-After in their own
protocol's format; health checks and the admin API keep answering; nothing reaches an
upstream for a shed request, and serving resumes by itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import anthropic
import httpx
import openai

from skyroute.emulators.runner import EmulatorThread
from skyroute.server.embedded import GatewayThread
from tests.integration.conftest import MASTER_KEY, PRIMARY, chats, sdk
from tests.integration.test_governance import (
    admin,
    ask,
    claude_client,
    claude_refusal,
    ledger,
    priced,
    refusal,
    slow_primary,
    until,
)


def capped(limit: int) -> Any:
    def edit(doc: dict[str, Any]) -> None:
        priced(doc)
        doc["server"]["max_in_flight"] = limit

    return edit


def lag_shedding(doc: dict[str, Any]) -> None:
    """The default limit (the shared test config turns lag shedding off)."""
    priced(doc)
    del doc["server"]["shed_loop_lag_ms"]


def runtime(gateway: GatewayThread) -> dict[str, Any]:
    with admin(gateway) as client:
        response = client.get("/admin/runtime")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_overloaded(error: openai.APIStatusError) -> None:
    assert error.status_code == 503
    assert error.code == "overloaded"
    assert error.response.headers["retry-after"] == "1"


def test_past_max_in_flight_model_requests_are_shed_and_the_rest_still_answers(
    start_gateway, azure: EmulatorThread
) -> None:
    gateway = start_gateway(capped(2))
    slow_primary(azure, 1.5)
    with ThreadPoolExecutor(2) as pool:
        held = [pool.submit(ask, sdk(gateway)) for _ in range(2)]
        until(lambda: runtime(gateway)["in_flight"], 2, within=5)

        assert_overloaded(refusal(lambda: ask(sdk(gateway))))
        error = claude_refusal(claude_client(gateway, MASTER_KEY))
        assert isinstance(error, anthropic.InternalServerError) and error.status_code == 503
        assert error.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
        assert error.response.headers["retry-after"] == "1"
        # Health checks, the model list and the admin API are never shed.
        assert httpx.get(f"{gateway.url}/healthz").status_code == 200
        models = httpx.get(
            f"{gateway.base_url}/models", headers={"authorization": f"Bearer {MASTER_KEY}"}
        )
        assert models.status_code == 200
        assert runtime(gateway)["shed"] == 2

        assert all(f.result(timeout=10).choices for f in held)
    assert runtime(gateway)["in_flight"] == 0
    assert ask(sdk(gateway)).choices  # slots come back when requests end
    # Shed requests never reached an upstream and left no usage rows.
    assert len(chats(azure, PRIMARY)) == 3
    assert len(ledger(gateway)) == 3


def test_streams_hold_their_slot_until_they_end(start_gateway, azure: EmulatorThread) -> None:
    gateway = start_gateway(capped(1))
    azure.add_faults(PRIMARY, [{"kind": "pace", "seconds": 0.1}])  # a chunk every 0.1 s
    client = sdk(gateway)
    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], max_tokens=5, stream=True
    )
    first = next(iter(stream))
    assert first is not None
    assert_overloaded(refusal(lambda: ask(client)))
    for _ in stream:
        pass
    until(lambda: runtime(gateway)["in_flight"], 0, within=5)
    assert ask(client).choices


@contextmanager
def stalled(gateway: GatewayThread) -> Iterator[None]:
    """Inside, every iteration of the gateway's event loop blocks for 150 ms: a real, lasting
    stall, so every lag sample is over the 100 ms default."""
    loop = gateway.app._loop  # the gateway thread's loop, set at start-up
    assert loop is not None
    stalling = threading.Event()
    stalling.set()

    def stall() -> None:
        if stalling.is_set():
            time.sleep(0.15)
            loop.call_soon(stall)

    loop.call_soon_threadsafe(stall)
    time.sleep(0.8)  # a few late samples: shedding starts with the second
    try:
        yield
    finally:
        stalling.clear()


def test_a_lagging_event_loop_sheds_until_it_catches_up(
    start_gateway, azure: EmulatorThread
) -> None:
    gateway = start_gateway(lag_shedding)
    client = sdk(gateway)
    ask(client)
    errors: list[openai.APIStatusError] = []

    def one() -> None:
        errors.append(refusal(lambda: ask(client)))

    threads = [threading.Thread(target=one) for _ in range(3)]
    with stalled(gateway):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert len(errors) == 3
    for error in errors:
        assert_overloaded(error)

    # The first timely sample (10 ms after the stall) ends shedding.
    time.sleep(0.2)
    assert ask(client).choices
    assert runtime(gateway)["shed"] == 3
    assert len(chats(azure, PRIMARY)) == 2


def test_one_long_stall_is_not_overload(start_gateway, azure: EmulatorThread) -> None:
    gateway = start_gateway(lag_shedding)
    loop = gateway.app._loop
    assert loop is not None
    client = sdk(gateway)
    ask(client)
    # One blocking callback: a single late sample, then the loop is free again. The
    # request sent meanwhile waits it out and is served.
    loop.call_soon_threadsafe(time.sleep, 0.3)
    time.sleep(0.05)
    assert ask(client).choices
    assert runtime(gateway)["shed"] == 0


def test_shedding_can_be_configured_off_for_lag(start_gateway, azure: EmulatorThread) -> None:
    gateway = start_gateway(priced)  # the shared test config has shed_loop_lag_ms: 0
    client = sdk(gateway)
    with stalled(gateway):
        assert ask(client).choices  # slow, but not shed
    assert runtime(gateway)["shed"] == 0
