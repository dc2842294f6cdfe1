from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from skyroute.store import migrate
from skyroute.store.migrate import head_revision, upgrade
from skyroute.store.revision import HEAD_REVISION, current_revision, read_revision, stamp
from skyroute.store.schema import metadata

from .conftest import Database

# The package exports the function ``migrate`` under the module's own name.
migrate_module = importlib.import_module("skyroute.store.migrate")

TABLES = {"alembic_version", "teams", "api_keys", "usage_ledger", "usage_dead_letter"}


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))


def test_head_revision_constant_is_the_newest_migration() -> None:
    # A new migration must bump HEAD_REVISION, or gateways would think it applied.
    assert head_revision() == HEAD_REVISION


async def test_migrate_creates_every_table_at_head(database: Database) -> None:
    engine = database.engine()
    try:
        assert await _tables(engine) == set()
        await migrate(engine)
        assert await _tables(engine) == TABLES
        assert await current_revision(engine) == HEAD_REVISION
    finally:
        await engine.dispose()


async def test_migrate_is_idempotent(engine: AsyncEngine) -> None:
    await migrate(engine)
    await migrate(engine)
    assert await _tables(engine) == TABLES
    assert await current_revision(engine) == HEAD_REVISION


async def test_migrate_accepts_a_url(database: Database) -> None:
    await migrate(database.url or f"sqlite:///{database.sqlite_path}")
    engine = database.engine()
    try:
        assert await current_revision(engine) == HEAD_REVISION
    finally:
        await engine.dispose()


async def test_migrations_match_the_schema_module(engine: AsyncEngine) -> None:
    def diff(sync: sa.Connection) -> list[object]:
        context = MigrationContext.configure(sync, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_a_created_database_equals_a_migrated_one(database: Database) -> None:
    """``migrate`` makes a fresh database with create_all and a stamp, not Alembic: the
    result must be the very schema the migrations make, down to indexes and defaults."""
    migrated = await _made_with(database, _run_migrations)
    await _empty(database)
    created = await _made_with(database, migrate)
    assert created == migrated
    assert set(created) >= TABLES


@pytest.mark.parametrize("state", ["fresh", "at head"])
async def test_migrate_needs_no_alembic_on_a_fresh_or_current_database(
    database: Database, state: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = database.engine()
    try:
        if state == "at head":
            await migrate(engine)
        monkeypatch.setattr(migrate_module, "upgrade", _must_not_run)
        await migrate(engine)
        assert await current_revision(engine) == HEAD_REVISION
    finally:
        await engine.dispose()


@pytest.mark.parametrize("state", ["tables without a version", "another revision"])
async def test_migrate_leaves_an_existing_database_to_alembic(
    database: Database, state: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = database.engine()
    upgraded: list[str | None] = []
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            if state == "another revision":
                await conn.run_sync(stamp, "0000")
        monkeypatch.setattr(
            migrate_module, "upgrade", lambda conn: upgraded.append(read_revision(conn))
        )
        await migrate(engine)
        assert upgraded == [None if state == "tables without a version" else "0000"]
    finally:
        await engine.dispose()


async def test_current_revision_agrees_with_alembic(database: Database) -> None:
    def alembic_reads(sync: sa.Connection) -> str | None:
        return MigrationContext.configure(sync).get_current_revision()

    engine = database.engine()
    try:
        assert await current_revision(engine) is None
        await migrate(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(alembic_reads) == await current_revision(engine)
    finally:
        await engine.dispose()


async def test_current_revision_refuses_several_heads(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text("INSERT INTO alembic_version VALUES ('0000')"))
    with pytest.raises(ValueError, match="several revisions"):
        await current_revision(engine)


def _must_not_run(connection: sa.Connection) -> None:
    raise AssertionError("Alembic ran on a fresh or current database")


async def _run_migrations(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(upgrade)


async def _made_with(
    database: Database, make: Callable[[AsyncEngine], Awaitable[None]]
) -> dict[str, dict[str, object]]:
    engine = database.engine()
    try:
        await make(engine)
        async with engine.connect() as conn:
            return await conn.run_sync(_reflect)
    finally:
        await engine.dispose()


async def _empty(database: Database) -> None:
    if database.server is not None:
        await database.server.empty(database.name)
        return
    for suffix in ("", "-wal", "-shm"):
        Path(database.sqlite_path + suffix).unlink(missing_ok=True)


def _reflect(connection: sa.Connection) -> dict[str, dict[str, object]]:
    """Everything the inspector reports about each table, in a comparable form."""
    inspector = sa.inspect(connection)
    tables: dict[str, dict[str, object]] = {}
    for name in inspector.get_table_names():
        columns = [
            {**column, "type": repr(column["type"])} for column in inspector.get_columns(name)
        ]
        tables[name] = {
            "columns": columns,
            "primary key": inspector.get_pk_constraint(name),
            "foreign keys": _sorted(inspector.get_foreign_keys(name)),
            "indexes": _sorted(inspector.get_indexes(name)),
            "unique": _sorted(inspector.get_unique_constraints(name)),
            "checks": _sorted(inspector.get_check_constraints(name)),
            "rows": connection.execute(sa.text(f'SELECT * FROM "{name}"')).all(),
        }
    if connection.dialect.name == "sqlite":
        # The DDL text itself: SQLite keeps it and re-parses it on every open.
        ddl = connection.execute(sa.text("SELECT type, name, sql FROM sqlite_master")).all()
        tables["sqlite_master"] = {"ddl": sorted(ddl)}
    return tables


def _sorted(items: list[Any]) -> list[Any]:
    return sorted(items, key=repr)
