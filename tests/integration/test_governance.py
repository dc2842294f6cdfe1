"""Governance on a real gateway: both protocols' refusals, the model allow-list, keys across
processes and secret canaries; and the helpers that ``test_budgets``, ``test_limits`` and
``test_ledger_rows`` share.

Prices are overridden to 1 USD (input) and 2 USD (output) per million tokens on every
deployment, so one token costs one or two micro-dollars and every expected cost is exact.
The prompt is ten 19-letter words: the gateway estimates 199 // 4 = 49 prompt tokens, the
emulator counts 10 words + 4 = 14; with ``max_tokens=5`` it answers exactly 5 tokens. So a
request reserves 49 + 2 * 5 = 59 micro-dollars and costs 14 + 2 * 5 = 24 (reliability L4).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import anthropic
import httpx
import openai
import pytest

from skyroute.emulators.runner import EmulatorThread
from skyroute.server.embedded import GatewayThread
from tests.integration.conftest import CANARIES, LARGE, MASTER_KEY, PRIMARY, SECONDARY, chats, sdk

WORD = "abcdefghijklmnopqrs"
PROMPT = " ".join([WORD] * 10)
MESSAGES = [{"role": "user", "content": PROMPT}]
MAX_TOKENS = 5
PROMPT_ESTIMATE = len(PROMPT) // 4  # 49
PROMPT_TOKENS = 10 + 4  # the emulator's count: words, plus 4 per message
RESERVATION = PROMPT_ESTIMATE * 1 + MAX_TOKENS * 2  # micro-dollars
COST = PROMPT_TOKENS * 1 + MAX_TOKENS * 2  # micro-dollars

Edit = Callable[[dict[str, Any]], None]


def priced(doc: dict[str, Any]) -> None:
    """Exact test prices on every deployment; timeouts that let a slow upstream be slow."""
    entries = [
        ("azure", PRIMARY),
        ("openai", SECONDARY),
        ("openai", LARGE),
    ]
    doc["prices"] = {
        "entries": [
            {
                "provider": provider,
                "model": model,
                "effective": "2025-01-01",
                "source": "test",
                "input": "1.00",
                "output": "2.00",
            }
            for provider, model in entries
        ]
    }
    doc["models"]["gpt-4o"]["timeouts"].update(first_token=5.0, idle=5.0)


def and_then(*edits: Edit) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        priced(doc)
        for more in edits:
            more(doc)

    return edit


class Reachable(Protocol):
    """A running gateway as these helpers reach it (in-process or ``skyroute serve``)."""

    @property
    def url(self) -> str: ...

    @property
    def base_url(self) -> str: ...


def admin(gateway: Reachable) -> httpx.Client:
    return httpx.Client(
        base_url=gateway.url, headers={"authorization": f"Bearer {MASTER_KEY}"}, timeout=10
    )


def usd(micros: int) -> str:
    return f"{micros / 1_000_000:.6f}"


def make_team(gateway: GatewayThread, **fields: Any) -> str:
    with admin(gateway) as client:
        response = client.post(
            "/admin/teams", json={"name": f"team-{time.monotonic_ns()}", **fields}
        )
    assert response.status_code == 201, response.text
    team_id: str = response.json()["id"]
    return team_id


def make_key(gateway: Reachable, **fields: Any) -> tuple[str, str]:
    """A new virtual key: (plaintext, id)."""
    with admin(gateway) as client:
        response = client.post("/admin/keys", json={"name": "test", **fields})
    assert response.status_code == 201, response.text
    body = response.json()
    return body["key"], body["info"]["id"]


def budget(micros: int) -> dict[str, str]:
    return {"usd": usd(micros), "period": "month"}


def ask(client: openai.OpenAI, **kw: Any) -> Any:
    return client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, max_tokens=MAX_TOKENS, **kw
    )


def post_chat(gateway: GatewayThread, key: str, **body: Any) -> httpx.Response:
    payload = {"model": "gpt-4o", "messages": MESSAGES, "max_tokens": MAX_TOKENS, **body}
    return httpx.post(
        gateway.base_url + "/chat/completions",
        json=payload,
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


# --- the ledger ----------------------------------------------------------------------


def shipped(gateway: GatewayThread, timeout: float = 5.0) -> None:
    """Wait until every usage row the gateway appended is in the database."""
    writer = gateway.app.storage.writer
    assert writer is not None
    deadline = time.monotonic() + timeout
    while writer.outbox.pending:
        assert time.monotonic() < deadline, "the outbox did not ship in time"
        time.sleep(0.02)


def ledger(
    gateway: GatewayThread, data_dir: Path = Path("skyroute-data"), **where: Any
) -> list[dict[str, Any]]:
    shipped(gateway)
    with sqlite3.connect(data_dir / "skyroute.db") as db:
        db.row_factory = sqlite3.Row
        clause = " AND ".join(f"{name} = ?" for name in where) or "1 = 1"
        found = db.execute(
            f"SELECT * FROM usage_ledger WHERE {clause} ORDER BY id",
            tuple(where.values()),
        ).fetchall()
    return [dict(row) for row in found]


def no_duplicates(rows: list[dict[str, Any]]) -> None:
    pairs = [(row["request_id"], row["attempt"]) for row in rows]
    assert len(pairs) == len(set(pairs))


def refusal(call: Callable[[], object]) -> openai.APIStatusError:
    try:
        call()
    except openai.APIStatusError as error:
        return error
    raise AssertionError("the request was not refused")


def until(probe: Callable[[], object], wanted: object, *, within: float) -> float:
    """Seconds until ``probe()`` returns ``wanted``; fails after ``within`` seconds."""
    started = time.monotonic()
    while (got := probe()) != wanted:
        assert time.monotonic() - started < within, f"still {got!r}, wanted {wanted!r}"
        time.sleep(0.05)
    return time.monotonic() - started


# --- bursts and reconciliation --------------------------------------------------------


async def burst(gateway: Reachable, keys: list[str], n: int) -> list[Any]:
    """``n`` requests spread over ``keys``, all released at once; each result is a
    completion or the ``openai.APIStatusError`` it raised."""
    clients = [
        openai.AsyncOpenAI(base_url=gateway.base_url, api_key=key, max_retries=0, timeout=20)
        for key in keys
    ]
    start = asyncio.Event()

    async def one(i: int) -> Any:
        await start.wait()
        try:
            return await clients[i % len(clients)].chat.completions.create(
                model="gpt-4o", messages=MESSAGES, max_tokens=MAX_TOKENS
            )
        except openai.APIStatusError as error:
            return error

    try:
        tasks = [asyncio.ensure_future(one(i)) for i in range(n)]
        await asyncio.sleep(0)
        start.set()
        return await asyncio.wait_for(asyncio.gather(*tasks), 30)
    finally:
        for client in clients:
            await client.close()


def split(results: list[Any]) -> tuple[list[Any], list[openai.APIStatusError]]:
    admitted = [r for r in results if not isinstance(r, openai.APIStatusError)]
    refused = [r for r in results if isinstance(r, openai.APIStatusError)]
    return admitted, refused


def slow_primary(azure: EmulatorThread, seconds: float = 1.5) -> None:
    """Admitted requests stay in flight while the whole burst arrives, so no settlement
    frees budget mid-burst: admission alone decides, and the bound is exact."""
    azure.add_faults(PRIMARY, [{"kind": "delay", "seconds": seconds, "repeat": True}])


def served_upstream(*emulators: EmulatorThread) -> int:
    return sum(1 for e in emulators for r in e.requests() if "chat" in r.path)


def reconciled(gateway: GatewayThread, azure: EmulatorThread, local: EmulatorThread) -> list:
    """Every upstream attempt has exactly one row, and nothing else has one."""
    rows = ledger(gateway)
    no_duplicates(rows)
    assert len(rows) == served_upstream(azure, local)
    return rows


def wait_for_rows(gateway: GatewayThread, timeout: float = 5.0, **where: Any) -> list:
    deadline = time.monotonic() + timeout
    while not (rows := ledger(gateway, **where)):
        assert time.monotonic() < deadline, f"no ledger row with {where}"
        time.sleep(0.05)
    return rows


# --- both protocols ------------------------------------------------------------------


def claude_client(gateway: GatewayThread, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)


def ask_claude(client: anthropic.Anthropic) -> Any:
    return client.messages.create(model="gpt-4o", max_tokens=MAX_TOKENS, messages=MESSAGES)


def claude_refusal(client: anthropic.Anthropic) -> anthropic.APIStatusError:
    try:
        ask_claude(client)
    except anthropic.APIStatusError as error:
        return error
    raise AssertionError("the request was not refused")


def test_anthropic_surface_gets_its_own_429_shape_for_limits_and_budgets(
    start_gateway, azure: EmulatorThread
) -> None:
    gateway = start_gateway(priced)
    limited, _ = make_key(gateway, rpm=1)
    client = claude_client(gateway, limited)
    assert ask_claude(client).usage.output_tokens == MAX_TOKENS
    broke, _ = make_key(gateway, budget=budget(1))  # less than any reservation
    for key in (limited, broke):
        error = claude_refusal(claude_client(gateway, key))
        assert error.status_code == 429
        body = error.response.json()
        assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
        assert set(body) == {"type", "error"} and set(body["error"]) == {"type", "message"}
        assert int(error.response.headers["retry-after"]) >= 1
    assert "budget" in claude_refusal(claude_client(gateway, broke)).message
    assert len(chats(azure, PRIMARY)) == 1


def test_401_is_shaped_by_the_protocol(gateway: GatewayThread) -> None:
    body = {"model": "gpt-4o", "max_tokens": MAX_TOKENS, "messages": MESSAGES}
    bad = "sk-sr-not-a-real-key"
    openai_answer = httpx.post(
        gateway.base_url + "/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {bad}"},
    )
    assert openai_answer.status_code == 401
    error = openai_answer.json()["error"]
    assert error["type"] == "authentication_error" and error["code"] == "invalid_api_key"
    claude_answer = httpx.post(gateway.url + "/v1/messages", json=body, headers={"x-api-key": bad})
    assert claude_answer.status_code == 401
    assert claude_answer.json() == {
        "type": "error",
        "error": {"type": "authentication_error", "message": error["message"]},
    }
    with_sdk = claude_refusal(claude_client(gateway, bad))
    assert isinstance(with_sdk, anthropic.AuthenticationError)
    assert refusal(lambda: ask(sdk(gateway, bad))).status_code == 401


# --- the model allow-list (S8) -------------------------------------------------------


def test_a_forbidden_model_looks_exactly_like_a_missing_one(
    start_gateway, azure: EmulatorThread, local: EmulatorThread
) -> None:
    gateway = start_gateway(priced)
    key, _ = make_key(gateway, models=["gpt-4o"])
    forbidden = post_chat(gateway, key, model="gpt-4o-large")
    missing = post_chat(gateway, key, model="gpt-4o-nopes")  # as long as the real name
    assert forbidden.status_code == missing.status_code == 404
    assert forbidden.json()["error"]["code"] == "model_not_found"
    assert forbidden.content.replace(b"gpt-4o-large", b"gpt-4o-nopes") == missing.content

    def visible(response: httpx.Response) -> dict[str, str]:
        return {k: v for k, v in response.headers.items() if k not in {"x-request-id", "date"}}

    assert visible(forbidden) == visible(missing)
    assert not azure.requests() and not local.requests()
    assert post_chat(gateway, key).status_code == 200  # its own model is served
    listed = sdk(gateway, key).models.list()
    assert [m.id for m in listed.data] == ["gpt-4o"]
    assert {m.id for m in sdk(gateway).models.list().data} == {"gpt-4o", "gpt-4o-large"}


# --- keys across processes -----------------------------------------------------------


def test_a_key_revoked_on_one_gateway_is_refused_by_another(start_gateway, tmp_path: Path) -> None:
    def sharing(data_dir: str) -> Edit:
        def edit(doc: dict[str, Any]) -> None:
            doc["store"] = {
                "database_url": f"sqlite:///{tmp_path / 'shared.db'}",
                "data_dir": str(tmp_path / data_dir),
                "key_refresh_seconds": 0.5,
            }

        return and_then(edit)

    first = start_gateway(sharing("a"))
    second = start_gateway(sharing("b"))
    key, key_id = make_key(first)

    def status_on_second() -> int:
        return post_chat(second, key).status_code

    assert until(status_on_second, 200, within=2.0) <= 1.5
    with admin(first) as client:
        assert client.post(f"/admin/keys/{key_id}/revoke").status_code == 200
    assert post_chat(first, key).status_code == 401  # at once where it was revoked
    assert until(status_on_second, 401, within=5.0) <= 0.5 + 1.0


# --- secret canaries (S14) -----------------------------------------------------------


def test_no_secret_reaches_the_store_the_logs_or_any_answer(
    start_gateway, caplog: pytest.LogCaptureFixture
) -> None:
    def debug(doc: dict[str, Any]) -> None:
        doc["server"]["log_level"] = "debug"

    answers: list[httpx.Response] = []
    with caplog.at_level(logging.DEBUG):
        gateway = start_gateway(and_then(debug))
        with admin(gateway) as client:
            created = client.post("/admin/keys", json={"name": "canary", "rpm": 2})
            assert created.status_code == 201
            key = created.json()["key"]  # the one answer that may carry it
            answers.append(client.get("/admin/keys"))
            answers.append(client.get(f"/admin/keys/{created.json()['info']['id']}"))
        answers.append(post_chat(gateway, key))
        answers.append(post_chat(gateway, key, stream=True))
        answers.append(post_chat(gateway, key))  # rpm: 429
        answers.append(post_chat(gateway, key + "x"))  # 401
        answers.append(post_chat(gateway, MASTER_KEY, model="nope"))  # 404
        answers.append(
            httpx.post(
                gateway.url + "/v1/messages",
                json={"model": "gpt-4o", "max_tokens": 5, "messages": MESSAGES},
                headers={"x-api-key": key},
            )
        )
        with admin(gateway) as client:
            answers.append(client.get("/admin/usage", params={"by": "key"}))
        shipped(gateway)
        stored_while_running = store_bytes(Path("skyroute-data"))
        gateway.stop()
    assert [a.status_code for a in answers[2:]] == [200, 200, 429, 401, 404, 429, 200]
    texts = [a.content + repr(a.headers).encode() for a in answers]
    logged = [record.getMessage().encode() for record in caplog.records]
    logged += [str(record.exc_info).encode() for record in caplog.records if record.exc_info]
    stored = stored_while_running + store_bytes(Path("skyroute-data"))
    assert stored and logged
    for secret in (*CANARIES, key):
        needle = secret.encode()
        assert not [t for t in texts if needle in t]
        assert not [line for line in logged if needle in line]
        assert not [name for name, data in stored if needle in data], secret


def store_bytes(data_dir: Path) -> list[tuple[str, bytes]]:
    """Every file under the data directory (database, WAL, outbox segments)."""
    return [(str(p), p.read_bytes()) for p in sorted(data_dir.rglob("*")) if p.is_file()]
