from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from skyroute.store import migrate
from skyroute.store.migrate import current_revision, head_revision
from skyroute.store.schema import metadata

from .conftest import Database

TABLES = {"alembic_version", "teams", "api_keys", "usage_ledger", "usage_dead_letter"}


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))


async def test_migrate_creates_every_table_at_head(database: Database) -> None:
    engine = database.engine()
    try:
        assert await _tables(engine) == set()
        await migrate(engine)
        assert await _tables(engine) == TABLES
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


async def test_migrate_is_idempotent(engine: AsyncEngine) -> None:
    await migrate(engine)
    await migrate(engine)
    assert await _tables(engine) == TABLES
    assert await current_revision(engine) == head_revision()


async def test_migrate_accepts_a_url(database: Database) -> None:
    await migrate(database.url or f"sqlite:///{database.sqlite_path}")
    engine = database.engine()
    try:
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


async def test_migrations_match_the_schema_module(engine: AsyncEngine) -> None:
    def diff(sync: sa.Connection) -> list[object]:
        context = MigrationContext.configure(sync, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []
