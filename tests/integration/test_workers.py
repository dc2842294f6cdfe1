"""``skyroute serve --workers 2``: one port, two processes, limits and budgets shared.

Each test runs the real command. A burst comes over many connections, which the kernel
spreads over both workers; were the counters per process, each worker would admit a whole
limit's worth and the exact counts below would double.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from skyroute.emulators.runner import EmulatorThread
from tests.integration.conftest import MASTER_KEY, PRIMARY, SECONDARY, base_document, chats
from tests.integration.test_governance import (
    RESERVATION,
    budget,
    burst,
    make_key,
    priced,
    slow_primary,
    split,
)
from tests.integration.test_lifecycle import free_port

WORKERS = 2
SKYROUTE = str(Path(sys.executable).parent / "skyroute")


class Workers:
    """A running ``skyroute serve --workers N``, with the URLs the governance helpers use."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.base_url = self.url + "/v1"
        self.log = log

    def runtime(self) -> dict[str, Any]:
        """``/admin/runtime`` over a new connection, so any worker may answer."""
        response = httpx.get(
            self.url + "/admin/runtime",
            headers={"authorization": f"Bearer {MASTER_KEY}"},
            timeout=5,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def pids(self, want: int, within: float = 30.0) -> set[int]:
        """The workers' pids, once ``want`` different ones have answered."""
        seen: set[int] = set()
        deadline = time.monotonic() + within
        while len(seen) < want:
            assert self.process.poll() is None, "the gateway exited:\n" + self.tail()
            assert time.monotonic() < deadline, f"only {seen} answered:\n" + self.tail()
            try:
                seen.add(self.runtime()["pid"])
            except httpx.HTTPError:
                time.sleep(0.05)
        return seen

    def tail(self) -> str:
        return self.log.read_text()[-3000:]


@pytest.fixture
def workers(
    azure: EmulatorThread, local: EmulatorThread, clouds: None, tmp_path: Path
) -> Iterator[Workers]:
    document = base_document(azure.base_url, local.base_url)
    priced(document)
    # The priority deployment takes 6 requests a minute across all workers.
    document["models"]["gpt-4o"]["deployments"][0]["rpm"] = 6
    document["store"] = {"data_dir": str(tmp_path / "data"), "key_refresh_seconds": 0.2}
    config = tmp_path / "skyroute.yaml"
    config.write_text(json.dumps(document))  # JSON is YAML
    port, log = free_port(), tmp_path / "gateway.log"
    command = [SKYROUTE, "serve", "--config", str(config), "--port", str(port)]
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*command, "--workers", str(WORKERS)], stdout=out, stderr=subprocess.STDOUT
        )
    gateway = Workers(process, port, log)
    try:
        gateway.pids(WORKERS)
        yield gateway
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def known_everywhere(gateway: Workers, key: str) -> None:
    """Wait until every worker's key directory has ``key`` (refreshed every 0.2 s)."""
    deadline = time.monotonic() + 10
    answered = 0
    while answered < 20:  # 20 fresh connections in a row, spread over both workers
        assert time.monotonic() < deadline, "a worker never learnt the new key"
        response = httpx.get(
            gateway.base_url + "/models", headers={"authorization": f"Bearer {key}"}
        )
        answered = answered + 1 if response.status_code == 200 else 0


def test_a_key_limit_and_a_deployment_quota_hold_across_workers(
    workers: Workers, azure: EmulatorThread, local: EmulatorThread
) -> None:
    key, _ = make_key(workers, rpm=12)
    known_everywhere(workers, key)
    results = asyncio.run(burst(workers, [key], 40))
    admitted, refused = split(results)
    assert len(admitted) == 12, [getattr(r, "message", r) for r in refused][:3]
    assert all(error.status_code == 429 for error in refused)
    # The priority deployment's quota (6 a minute) is one quota too: the rest overflowed.
    assert len(chats(azure, PRIMARY)) == 6
    assert len(chats(local, SECONDARY)) == 6


def test_a_budget_admits_exactly_what_it_covers_across_workers(
    workers: Workers, azure: EmulatorThread, local: EmulatorThread
) -> None:
    # Both tiers slow (past 6 requests the priority deployment's quota sends the rest to
    # the second): nothing settles mid-burst, so admission alone decides.
    slow_primary(azure)
    local.add_faults(SECONDARY, [{"kind": "delay", "seconds": 1.5, "repeat": True}])
    covers = 8
    key, _ = make_key(workers, budget=budget(covers * RESERVATION))
    known_everywhere(workers, key)
    admitted, refused = split(asyncio.run(burst(workers, [key], 60)))
    assert len(admitted) == covers
    assert {error.status_code for error in refused} == {429}


def replaced(workers: Workers, victim: int) -> set[int]:
    """The workers' pids once a new worker has taken the place of ``victim``."""
    deadline = time.monotonic() + 30
    while True:
        assert time.monotonic() < deadline, f"{victim} was not replaced:\n" + workers.tail()
        now = workers.pids(WORKERS)
        if victim not in now:
            return now
        time.sleep(0.1)


def test_a_killed_worker_is_replaced_and_sigterm_stops_them_all(workers: Workers) -> None:
    first = workers.pids(WORKERS)
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    now = replaced(workers, victim)
    assert len(now & first) == 1  # the other worker served on, untouched
    workers.process.send_signal(signal.SIGTERM)
    assert workers.process.wait(30) == 0, workers.tail()
    for pid in now:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def every_connection_answered(workers: Workers, count: int = 40) -> None:
    """``count`` fresh connections in a row, each answered within a second: no listening
    socket is left that nobody accepts on."""
    for _ in range(count):
        response = httpx.get(workers.url + "/healthz", timeout=1.0)
        assert response.status_code == 200


def test_after_either_worker_dies_every_connection_is_answered(workers: Workers) -> None:
    # The last forked first: the first one was forked while the later sockets were open.
    for victim in sorted(workers.pids(WORKERS), reverse=True):
        os.kill(victim, signal.SIGKILL)
        replaced(workers, victim)
        every_connection_answered(workers)


def test_workers_dying_again_and_again_stop_the_gateway(workers: Workers) -> None:
    pids = workers.pids(WORKERS)
    for _ in range(4):
        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        pids = replaced(workers, victim)
    os.kill(min(pids), signal.SIGKILL)  # the fifth death within a minute
    assert workers.process.wait(30) == 1, workers.tail()
    assert "workers died 5 times within 60 s; stopping" in workers.tail()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_port_in_use_fails_at_once(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "skyroute.yaml"
        config.write_text(json.dumps({"auth": {"master_key": MASTER_KEY}}))
        done = subprocess.run(
            [SKYROUTE, "serve", "--config", str(config), "--port", str(port), "--workers", "2"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


@pytest.mark.parametrize("count", ["0", "65"])
def test_a_worker_count_out_of_range_is_refused(tmp_path: Path, count: str) -> None:
    config = tmp_path / "skyroute.yaml"
    config.write_text(json.dumps({"auth": {"master_key": MASTER_KEY}}))
    done = subprocess.run(
        [SKYROUTE, "serve", "--config", str(config), "--workers", count],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "--workers must be from 1 to 64" in done.stderr


def test_workers_whose_supervisor_is_killed_drain_and_exit(workers: Workers) -> None:
    pids = workers.pids(WORKERS)
    workers.process.kill()  # SIGKILL: the supervisor cannot pass anything on
    workers.process.wait(10)
    deadline = time.monotonic() + 20
    while alive := {pid for pid in pids if running(pid)}:
        assert time.monotonic() < deadline, f"orphaned workers still running: {alive}"
        time.sleep(0.1)


def running(pid: int) -> bool:
    """Whether ``pid`` runs (an exited orphan may linger as a zombie until reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
