"""The gateway's start-up against a PostgreSQL schema: used at head, refused otherwise.

PostgreSQL is shared by every replica, so only ``skyroute migrate`` changes its schema;
a gateway reads the revision (plain SQL, no Alembic) and stops with a pointer there.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from skyroute.core.config import StoreConfig
from skyroute.core.secret import Secret
from skyroute.governance.budget import BudgetLedger
from skyroute.governance.directory import KeyDirectory
from skyroute.governance.keys import KeyHasher
from skyroute.server.storage import Storage, StorageError
from skyroute.store import migrate
from skyroute.store.revision import stamp

from .conftest import Database

pytestmark = pytest.mark.parametrize("database", ["postgresql"], indirect=True)


def _storage(database: Database, tmp_path: Path) -> Storage:
    assert database.url is not None
    master = Secret("sk-master-storage-start")
    config = StoreConfig(
        database_url=Secret(database.url), data_dir=str(tmp_path), startup_timeout=5.0
    )
    directory = KeyDirectory(KeyHasher(master), master)
    return Storage(config, directory, BudgetLedger(), wall_clock=time.time)


@pytest.mark.parametrize(("revision", "shown"), [(None, "None"), ("0000", "0000")])
async def test_a_schema_not_at_head_is_refused(
    database: Database, tmp_path: Path, revision: str | None, shown: str
) -> None:
    if revision is not None:
        engine = database.engine()
        try:
            async with engine.begin() as conn:
                await conn.run_sync(stamp, revision)
        finally:
            await engine.dispose()
    storage = _storage(database, tmp_path)
    try:
        with pytest.raises(StorageError, match=f"at revision {shown}.*run `skyroute migrate`"):
            await storage.start()
    finally:
        await storage.stop()


async def test_a_schema_at_head_is_used(database: Database, tmp_path: Path) -> None:
    await migrate(database.url)
    storage = _storage(database, tmp_path)
    try:
        await storage.start()
    finally:
        await storage.stop()
