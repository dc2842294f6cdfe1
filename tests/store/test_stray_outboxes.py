"""Worker outboxes (``outbox.<n>``) left by an earlier run are shipped, never stranded.

A single gateway adopts every other outbox under its data directory at start-up; a worker
ships only its own (its siblings are appending to theirs); the supervisor of ``--workers``
ships them all before any worker starts.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from skyroute.core.config import StoreConfig
from skyroute.core.secret import Secret
from skyroute.governance.budget import BudgetLedger
from skyroute.governance.directory import KeyDirectory
from skyroute.governance.keys import KeyHasher
from skyroute.server.storage import Storage, outbox_dirs, prepare_store
from skyroute.store.outbox import Outbox

from .factories import usage_row

CREATED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _leave(data_dir: Path, name: str, numbers: range) -> None:
    outbox = Outbox(data_dir / name)
    for i in numbers:
        outbox.append(usage_row(i, created_at=CREATED))
    outbox.close()


def _stored(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "skyroute.db") as db:
        return sorted(r for (r,) in db.execute("SELECT request_id FROM usage_ledger"))


def _storage(data_dir: Path, outbox_name: str = "outbox", adopt_strays: bool = True) -> Storage:
    master = Secret("sk-master-strays")
    config = StoreConfig(data_dir=str(data_dir), startup_timeout=10.0)
    directory = KeyDirectory(KeyHasher(master), master)
    return Storage(
        config,
        directory,
        BudgetLedger(),
        wall_clock=time.time,
        outbox_name=outbox_name,
        adopt_strays=adopt_strays,
    )


def _names(numbers: range) -> list[str]:
    return sorted(f"req-{i}" for i in numbers)


async def test_a_single_gateway_ships_what_workers_left(tmp_path: Path) -> None:
    _leave(tmp_path, "outbox", range(0, 3))
    _leave(tmp_path, "outbox.1", range(3, 7))
    _leave(tmp_path, "outbox.2", range(7, 9))
    (tmp_path / "outbox.x").mkdir()  # not an outbox name: left alone
    storage = _storage(tmp_path)
    try:
        await storage.start()
    finally:
        await storage.stop()
    assert _stored(tmp_path) == _names(range(9))
    assert [p.name for p in outbox_dirs(str(tmp_path))] == ["outbox", "outbox.1", "outbox.2"]


async def test_a_worker_ships_only_its_own_outbox(tmp_path: Path) -> None:
    _leave(tmp_path, "outbox.1", range(0, 2))
    _leave(tmp_path, "outbox.2", range(2, 5))
    storage = _storage(tmp_path, outbox_name="outbox.1", adopt_strays=False)
    try:
        await storage.start()
    finally:
        await storage.stop()
    assert _stored(tmp_path) == _names(range(2))


async def test_the_supervisor_ships_every_outbox_before_workers_start(tmp_path: Path) -> None:
    _leave(tmp_path, "outbox", range(0, 2))
    _leave(tmp_path, "outbox.3", range(2, 4))  # from a run with more workers than now
    await prepare_store(StoreConfig(data_dir=str(tmp_path), startup_timeout=10.0))
    assert _stored(tmp_path) == _names(range(4))
