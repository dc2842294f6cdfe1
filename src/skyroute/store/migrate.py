"""Upgrading a database to the newest schema with the Alembic migrations shipped here."""

from __future__ import annotations

from importlib import resources

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from skyroute.store.engine import create_engine
from skyroute.store.errors import begin, connect

# Any constant; replicas that start together take turns on it (PostgreSQL only).
_MIGRATION_LOCK_ID = 0x5359524F  # "SYRO"


def alembic_config() -> Config:
    """An Alembic config built in code, pointing at the migrations inside the package."""
    config = Config()
    location = resources.files("skyroute.store").joinpath("migrations")
    config.set_main_option("script_location", str(location))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def migrate(engine_or_url: AsyncEngine | str | None) -> None:
    """Upgrade the database to the newest revision; a no-op when it is already there."""
    owned = not isinstance(engine_or_url, AsyncEngine)
    engine = (
        create_engine(engine_or_url)
        if not isinstance(engine_or_url, AsyncEngine)
        else engine_or_url
    )
    try:
        async with begin(engine) as conn:
            await conn.run_sync(_upgrade)
    finally:
        if owned:
            await engine.dispose()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with connect(engine) as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
