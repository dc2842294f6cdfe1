from __future__ import annotations

import socket
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from skyroute.store import (
    StoreUnavailable,
    create_engine,
    get_key_by_hash,
    insert_usage,
    list_keys,
    migrate,
    usage_report,
)

from .conftest import BACKENDS, Database
from .factories import key_row, usage_row

PASSWORD = "canary-pw-5f1c"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends


@pytest.fixture(params=BACKENDS)
async def unreachable(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine whose database cannot be opened: a closed port, or a missing directory."""
    if request.param == "sqlite":
        engine = create_engine(None, sqlite_path=str(tmp_path / "missing" / "store.db"))
    else:
        port = _closed_port()
        engine = create_engine(f"postgresql://skyroute:{PASSWORD}@127.0.0.1:{port}/skyroute")
    yield engine
    await engine.dispose()


async def test_every_call_raises_store_unavailable(unreachable: AsyncEngine) -> None:
    calls = [
        migrate(unreachable),
        insert_usage(unreachable, [usage_row(1)]),
        get_key_by_hash(unreachable, "ab" * 32),
        list_keys(unreachable),
        usage_report(unreachable, by="key", since=datetime(2000, 1, 1, tzinfo=UTC)),
    ]
    for call in calls:
        with pytest.raises(StoreUnavailable) as caught:
            await call
        assert caught.value.status == 503
        assert PASSWORD not in str(caught.value) and PASSWORD not in caught.value.detail


async def test_losing_the_database_mid_run_raises_then_recovers(
    engine: AsyncEngine, database: Database
) -> None:
    await insert_usage(engine, [usage_row(1)])
    async with _outage(database, engine) as writer:
        with pytest.raises(StoreUnavailable):
            await insert_usage(writer, [usage_row(1), usage_row(2)])
    # The outbox retries the same batch: the row written before is not doubled.
    result = await insert_usage(engine, [usage_row(1), usage_row(2)])
    assert (result.inserted, result.duplicates) == (1, 1)
    assert await get_key_by_hash(engine, key_row(9).key_hash) is None


@asynccontextmanager
async def _outage(database: Database, engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """An engine that cannot write for the duration of the block.

    PostgreSQL: every connection is dropped and new ones are refused. SQLite (a file, no
    server to lose): another process holds the write lock past the busy timeout.
    """
    if database.server is None:
        blocker = sqlite3.connect(database.sqlite_path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        writer = create_engine(None, sqlite_path=database.sqlite_path, sqlite_busy_timeout_ms=100)
        try:
            yield writer
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
            await writer.dispose()
        return
    admin, name = database.server.admin, database.name
    await admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    await admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )
    try:
        yield engine
    finally:
        await admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
