"""The usage ledger never loses or doubles a record under faults (reliability.md, 3 and L6-L8).

Every test ends in a reconciliation against the emulator's own ledger, which records each
attempt the gateway made (by the gateway's `x-request-id` and `x-skyroute-attempt`), the
status it answered and the tokens it would bill. With prices of 1 and 2 micro-dollars per
input and output token, every row's cost is exact and checked. Faults: the database down
for 30 s while traffic flows, the gateway SIGKILLed and restarted, clients leaving
mid-stream, and upstream failures that make the gateway retry and fail over.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import asyncpg
import httpx
import openai
import pytest

from skyroute.emulators.ledger import RequestRecord
from skyroute.emulators.runner import EmulatorThread
from skyroute.server.embedded import GatewayThread
from skyroute.store import migrate
from tests.integration.conftest import (
    AZURE_KEY,
    PRIMARY,
    SECONDARY,
    GatewayFactory,
    base_document,
    chats,
    hello,
    sdk,
)
from tests.postgres import Cluster, free_port, skip_reason

# USD per million tokens: 1 micro-dollar per input token, 2 per output token.
PRICES = {
    "entries": [
        {
            "provider": kind,
            "model": model,
            "effective": "2025-01-01",
            "source": "test",
            "input": "1.00",
            "output": "2.00",
        }
        for kind, model in (("azure", PRIMARY), ("openai", SECONDARY))
    ]
}
_COLUMNS = (
    "request_id, attempt, logical_request_id, status, prompt_tokens, completion_tokens, "
    "cost_micros, estimated, upstream_model"
)
Key = tuple[str, int]  # (logical request id, attempt)


class Row(NamedTuple):
    request_id: str
    attempt: int
    logical_request_id: str
    status: int
    prompt_tokens: int
    completion_tokens: int
    cost_micros: int
    estimated: bool
    upstream_model: str

    @property
    def key(self) -> Key:
        return (self.logical_request_id, self.attempt)


def exact_cost(prompt_tokens: int, completion_tokens: int) -> int:
    return prompt_tokens * 1 + completion_tokens * 2


def with_store(**store: Any) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        document["prices"] = PRICES
        document["store"] = {**document.get("store", {}), **store}

    return edit


def sqlite_rows(path: Path) -> list[Row]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        found = conn.execute(f"SELECT {_COLUMNS} FROM usage_ledger").fetchall()
    return [Row(*r[:7], bool(r[7]), r[8]) for r in found]


def postgres_rows(url: str) -> list[Row]:
    async def fetch() -> list[Row]:
        conn = await asyncpg.connect(url)
        try:
            return [Row(*r) for r in await conn.fetch(f"SELECT {_COLUMNS} FROM usage_ledger")]
        finally:
            await conn.close()

    return asyncio.run(fetch())


def served(emulators: Iterable[tuple[EmulatorThread, str]]) -> dict[Key, RequestRecord]:
    """Every chat attempt the emulators received, by (x-request-id, x-skyroute-attempt)."""
    records = [r for emulator, model in emulators for r in chats(emulator, model)]
    keys = [(r.headers["x-request-id"], int(r.attempt or 0)) for r in records]
    doubled = [k for k, n in Counter(keys).items() if n > 1]
    assert not doubled, f"an attempt reached the emulators twice: {doubled[:5]}"
    return dict(zip(keys, records, strict=True))


def reconcile(rows: list[Row], attempts: dict[Key, RequestRecord], *, exact: bool) -> str:
    """Check rows against the emulators' records; ``exact``: rows == attempts, else rows ⊆
    attempts. Returns a summary for assertion messages."""
    per_attempt = Counter((row.request_id, row.attempt) for row in rows)
    assert max(per_attempt.values(), default=1) == 1, "a (request_id, attempt) doubled"
    per_key = Counter(row.key for row in rows)
    assert max(per_key.values(), default=1) == 1, "an upstream attempt has two rows"
    missing = attempts.keys() - per_key.keys()
    unknown = per_key.keys() - attempts.keys()
    summary = f"{len(rows)} rows, {len(attempts)} attempts served"
    assert not unknown, f"rows for attempts no emulator saw: {sorted(unknown)[:5]} ({summary})"
    if exact:
        assert not missing, f"attempts with no row: {sorted(missing)[:5]} ({summary})"
    for row in rows:
        record = attempts[row.key]
        if row.estimated:
            continue
        if record.status != 200 or record.prompt_tokens is None:  # an upstream error
            # The row keeps the status the upstream answered with.
            assert row.status == record.status, (row, record)
            assert (row.prompt_tokens, row.completion_tokens, row.cost_micros) == (0, 0, 0), row
            continue
        billed = (record.prompt_tokens, record.completion_tokens or 0)
        assert (row.prompt_tokens, row.completion_tokens) == billed, (row, record)
        assert row.cost_micros == exact_cost(*billed), row
    return summary


def ask(client: openai.OpenAI, request_id: str, stream: bool) -> None:
    """One chat request (streamed or not), read to its end; raises on any failure."""
    headers = {"x-request-id": request_id}
    if not stream:
        client.chat.completions.create(model="gpt-4o", messages=hello(), extra_headers=headers)  # type: ignore[arg-type]
        return
    chunks = client.chat.completions.create(
        model="gpt-4o",
        messages=hello(),  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=headers,
    )
    with chunks:
        usage = [chunk.usage for chunk in chunks if chunk.usage is not None]
    assert usage, "the stream ended without its usage chunk"


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)


def drained(gateway: GatewayThread) -> bool:
    writer = gateway.app.storage.writer
    return writer is not None and writer.outbox.pending == 0 and not writer.outage


# -- the database down for 30 s ---------------------------------------------------------------


@pytest.fixture
def postgres() -> Any:
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    cluster = Cluster.create(Path(tempfile.mkdtemp(prefix="skyroute-ledger-pg-")))
    try:
        yield cluster
    finally:
        cluster.remove()


@pytest.mark.slow
def test_database_down_30s_loses_and_doubles_nothing(
    start_gateway: GatewayFactory, azure: EmulatorThread, postgres: Cluster, tmp_path: Path
) -> None:
    asyncio.run(migrate(postgres.url))
    gateway = start_gateway(with_store(database_url=postgres.url, data_dir=str(tmp_path / "gw")))
    client = sdk(gateway, timeout=10)
    writer = gateway.app.storage.writer
    assert writer is not None
    succeeded: list[str] = []
    failed: list[tuple[str, str]] = []
    outage_seen = False
    serial = 0

    def traffic(seconds: float, rate: float = 10.0) -> None:
        nonlocal serial, outage_seen
        start = time.monotonic()
        for n in range(int(seconds * rate)):  # bounded in count; paced in time
            time.sleep(max(0.0, start + n / rate - time.monotonic()))
            serial += 1
            request_id = f"ledger-pg-{serial:05d}"
            try:
                ask(client, request_id, stream=serial % 2 == 0)
            except (openai.OpenAIError, AssertionError) as error:
                failed.append((request_id, repr(error)))
            else:
                succeeded.append(request_id)
            outage_seen = outage_seen or writer.outage

    traffic(5)
    postgres.stop("fast")
    traffic(30)
    outage_during_downtime = outage_seen
    backlog = writer.outbox.pending
    postgres.start()
    traffic(5)
    wait_for(lambda: drained(gateway), 30, "the outbox to drain after the outage")

    assert not failed, f"requests failed while the database was down: {failed[:5]}"
    assert outage_during_downtime, "the outbox writer never reported the outage"
    assert backlog > 0, "nothing waited in the outbox while the database was down"
    rows = postgres_rows(postgres.url)
    summary = reconcile(rows, served([(azure, PRIMARY)]), exact=True)
    ok_rows = Counter(row.logical_request_id for row in rows if row.status == 200)
    assert all(ok_rows[rid] == 1 for rid in succeeded), summary
    assert len(rows) == len(succeeded), summary
    attempts = served([(azure, PRIMARY)]).values()
    billed = sum(exact_cost(r.prompt_tokens or 0, r.completion_tokens or 0) for r in attempts)
    assert sum(row.cost_micros for row in rows) == billed > 0, summary


# -- SIGKILL and restart ----------------------------------------------------------------------


def _serve(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    skyroute = Path(sys.executable).parent / "skyroute"
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(skyroute), "serve", "--config", str(config), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the gateway exited:\n" + log.read_text()[-3000:]
        try:
            if httpx.get(url + "/readyz", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError("the gateway did not become ready:\n" + log.read_text()[-3000:])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def test_sigkill_and_restart_loses_no_acknowledged_row(
    azure: EmulatorThread, local: EmulatorThread, clouds: None, tmp_path: Path
) -> None:
    document = base_document(azure.base_url, local.base_url)
    with_store(data_dir=str(tmp_path / "data"))(document)
    config = tmp_path / "skyroute.yaml"
    config.write_text(json.dumps(document))  # JSON is YAML
    port, log = free_port(), tmp_path / "gateway.log"
    url = f"http://127.0.0.1:{port}"
    # Every attempt takes a while, so some are in flight when the gateway dies.
    azure.add_faults(PRIMARY, [{"kind": "delay", "seconds": 0.1, "repeat": True}])

    process = _serve(config, port, log)
    try:
        _wait_ready(url, process, log)
        client = openai.OpenAI(base_url=url + "/v1", api_key=document["auth"]["master_key"])
        client = client.with_options(max_retries=0, timeout=10)
        killed = threading.Event()
        completed: list[str] = []
        cut: list[str] = []
        lock = threading.Lock()

        def worker(worker_id: int) -> None:
            for n in range(200):  # bounded; the kill ends it sooner
                if killed.is_set():
                    return
                request_id = f"ledger-kill-{worker_id}-{n:04d}"
                try:
                    ask(client, request_id, stream=(worker_id + n) % 2 == 0)
                except (openai.OpenAIError, AssertionError):
                    with lock:
                        cut.append(request_id)
                else:
                    with lock:
                        completed.append(request_id)

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(worker, i) for i in range(4)]
            time.sleep(1.5)
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            killed.set()
            for future in futures:
                future.result(30)
        azure.clear_faults()

        process = _serve(config, port, log)
        _wait_ready(url, process, log)  # start-up ships the outbox before serving
        rows = sqlite_rows(tmp_path / "data" / "skyroute.db")
    finally:
        _stop(process)

    assert completed, "no request completed before the kill"
    assert cut, "the kill cut no request in flight: the test measured nothing"
    summary = reconcile(rows, served([(azure, PRIMARY)]), exact=False)
    by_logical = Counter(row.logical_request_id for row in rows if row.status == 200)
    missing = [rid for rid in completed if by_logical[rid] != 1]
    logged = {row.logical_request_id for row in rows}
    cut_with_row = [rid for rid in cut if rid in logged]
    assert not missing, (
        f"{len(missing)} acknowledged requests lost their row: {missing[:5]}; "
        f"{len(completed)} completed, {len(cut)} cut by the kill "
        f"({len(cut_with_row)} with a row, {len(cut) - len(cut_with_row)} without); {summary}"
    )
    assert logged <= set(completed) | set(cut), summary


# -- clients leaving mid-stream ---------------------------------------------------------------


def test_clients_leaving_mid_stream_leave_one_row_each(
    start_gateway: GatewayFactory, azure: EmulatorThread
) -> None:
    gateway = start_gateway(with_store())
    client = sdk(gateway, timeout=10)
    azure.add_faults(PRIMARY, [{"kind": "pace", "seconds": 0.02, "repeat": True}])
    rng = random.Random(7)
    leave_at = [rng.randint(0, 12) for _ in range(50)]

    def abandon(n: int) -> None:
        chunks = client.chat.completions.create(
            model="gpt-4o",
            messages=hello(),  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"x-request-id": f"ledger-leave-{n:03d}"},
        )
        with chunks:
            for seen, _chunk in enumerate(chunks):
                if seen >= leave_at[n]:
                    break

    with ThreadPoolExecutor(10) as pool:
        list(pool.map(abandon, range(50)))
    db = Path("skyroute-data") / "skyroute.db"
    wait_for(lambda: drained(gateway) and len(sqlite_rows(db)) >= 50, 10, "a row for every stream")
    rows = sqlite_rows(db)
    summary = reconcile(rows, served([(azure, PRIMARY)]), exact=True)
    assert sorted(row.logical_request_id for row in rows) == [
        f"ledger-leave-{n:03d}" for n in range(50)
    ], summary
    reported = [r for r in rows if r.status == 200 and not r.estimated]
    flagged = [r for r in rows if r.status == 499 and r.estimated]
    assert len(reported) + len(flagged) == 50, (
        f"{len(reported)} with reported usage, {len(flagged)} flagged estimates, others: "
        f"{[r for r in rows if r not in reported and r not in flagged][:3]}"
    )
    assert flagged, "no client left before its stream ended: the test measured nothing"


# -- retries and failovers --------------------------------------------------------------------


def test_retries_and_failovers_bill_every_attempt_once(
    start_gateway: GatewayFactory, azure: EmulatorThread, local: EmulatorThread
) -> None:
    gateway = start_gateway(with_store())
    client = sdk(gateway, timeout=10)
    rng = random.Random(11)
    failed_first = 0
    for n in range(40):
        if rng.random() < 0.5:  # this request's first attempt fails
            azure.add_faults(PRIMARY, [{"kind": "status", "status": 500}])
            failed_first += 1
        ask(client, f"ledger-retry-{n:03d}", stream=n % 2 == 1)
    db = Path("skyroute-data") / "skyroute.db"
    attempts = served([(azure, PRIMARY), (local, SECONDARY)])
    assert len(attempts) >= 40 + failed_first
    wait_for(lambda: drained(gateway) and len(sqlite_rows(db)) >= len(attempts), 10, "every row")
    rows = sqlite_rows(db)
    summary = reconcile(rows, attempts, exact=True)
    assert len(rows) == len(attempts), summary
    assert len({row.logical_request_id for row in rows}) == 40, summary
    ok = Counter(row.logical_request_id for row in rows if row.status == 200)
    assert sorted(ok) == [f"ledger-retry-{n:03d}" for n in range(40)], summary
    assert set(ok.values()) == {1}, summary
    assert sum(row.status != 200 for row in rows) == failed_first, summary


# -- the ground truth itself ------------------------------------------------------------------


def test_emulator_bills_what_it_generated(azure: EmulatorThread, clouds: None) -> None:
    """A stream a fault cuts bills what was sent; a client that leaves bills it all."""
    client = openai.AzureOpenAI(
        azure_endpoint=azure.base_url, api_key=AZURE_KEY, api_version="2024-10-21", max_retries=0
    )
    whole = client.chat.completions.create(model=PRIMARY, messages=hello())  # type: ignore[arg-type]
    assert whole.usage is not None
    azure.add_faults(PRIMARY, [{"kind": "cut", "after_tokens": 3}])
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(model=PRIMARY, messages=hello(), stream=True):  # type: ignore[arg-type]
            pass
    azure.add_faults(PRIMARY, [{"kind": "pace", "seconds": 0.05}])
    with client.chat.completions.create(model=PRIMARY, messages=hello(), stream=True) as chunks:  # type: ignore[arg-type]
        next(iter(chunks))
    time.sleep(0.3)
    plain, cut, left = chats(azure, PRIMARY)
    usage = (whole.usage.prompt_tokens, whole.usage.completion_tokens)
    assert (plain.status, plain.prompt_tokens, plain.completion_tokens) == (200, *usage)
    assert (cut.status, cut.prompt_tokens, cut.completion_tokens) == (200, usage[0], 3)
    assert (left.status, left.prompt_tokens, left.completion_tokens) == (200, *usage)
