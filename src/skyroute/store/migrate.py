"""Bringing a database to the newest schema: created from ``schema.py`` when it is empty,
upgraded with the Alembic migrations shipped here when it is behind.

A database with none of our tables is made with ``metadata.create_all`` and stamped at
``HEAD_REVISION`` (Alembic's "create_all, then stamp" recipe; a test reflects one made
this way and one made by the migrations and finds them equal, on SQLite and PostgreSQL).
Alembic is imported only inside ``upgrade``: a gateway on a fresh or current database
never loads it, which keeps about 9 MiB off its RSS.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from skyroute.store.engine import create_engine
from skyroute.store.errors import begin
from skyroute.store.revision import HEAD_REVISION, read_revision, stamp
from skyroute.store.schema import metadata

if TYPE_CHECKING:
    from alembic.config import Config

# Any constant; replicas that start together take turns on it (PostgreSQL only).
_MIGRATION_LOCK_ID = 0x5359524F  # "SYRO"


def alembic_config() -> Config:
    """An Alembic config built in code, pointing at the migrations inside the package."""
    from alembic.config import Config

    config = Config()
    location = resources.files("skyroute.store").joinpath("migrations")
    config.set_main_option("script_location", str(location))
    return config


def head_revision() -> str | None:
    """The newest revision among the migration scripts, as Alembic reads them."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def migrate(engine_or_url: AsyncEngine | str | None) -> None:
    """Bring the database to ``HEAD_REVISION``; a no-op when it is already there."""
    owned = not isinstance(engine_or_url, AsyncEngine)
    engine = (
        create_engine(engine_or_url)
        if not isinstance(engine_or_url, AsyncEngine)
        else engine_or_url
    )
    try:
        async with begin(engine) as conn:
            await conn.run_sync(_to_head)
    finally:
        if owned:
            await engine.dispose()


def _to_head(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
    current = read_revision(connection)
    if current == HEAD_REVISION:
        return
    if current is None and not _has_our_tables(connection):
        metadata.create_all(connection)
        stamp(connection, HEAD_REVISION)
        return
    # Behind, ahead (Alembic names the revision it cannot find), or tables from before
    # Alembic (its first migration fails on them): Alembic's answer, as it always was.
    upgrade(connection)


def _has_our_tables(connection: Connection) -> bool:
    return not set(sa.inspect(connection).get_table_names()).isdisjoint(metadata.tables)


def upgrade(connection: Connection) -> None:
    """Run the Alembic migrations from the database's revision to head, on ``connection``."""
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
