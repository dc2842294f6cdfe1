"""Which schema revision a database is at, and which this code needs, without Alembic.

Alembic records the revision in a one-column table, ``alembic_version``. Reading and
writing that table is plain SQL, so the gateway does it itself: importing Alembic costs
about 9 MiB of RSS for the life of the process, and only a database behind the code
needs Alembic at all (``migrate.py`` imports it then, and only then).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from skyroute.store.errors import connect

# The newest revision in ``migrations/versions``. A test compares it with Alembic's own
# view of the scripts, so a new migration without a bump here fails the suite.
HEAD_REVISION = "0001"

# Alembic's layout of its version table (``DefaultImpl.version_table_impl``), so that a
# database stamped here upgrades with Alembic later exactly like one it made itself.
version_table = sa.Table(
    "alembic_version",
    sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def read_revision(connection: Connection) -> str | None:
    """The revision ``connection``'s database is at; None when it has no version table
    (a fresh database, or one made before Alembic) or an empty one."""
    if not sa.inspect(connection).has_table(version_table.name):
        return None
    heads = connection.execute(sa.select(version_table.c.version_num)).scalars().all()
    if len(heads) > 1:
        # What Alembic's MigrationContext.get_current_revision refuses, too.
        raise ValueError(f"alembic_version holds several revisions: {', '.join(heads)}")
    return heads[0] if heads else None


def stamp(connection: Connection, revision: str) -> None:
    """Record that the database is at ``revision`` (Alembic's ``stamp`` from nothing)."""
    version_table.create(connection, checkfirst=True)
    connection.execute(version_table.delete())
    connection.execute(version_table.insert().values(version_num=revision))


async def current_revision(engine: AsyncEngine) -> str | None:
    async with connect(engine) as conn:
        return await conn.run_sync(read_revision)
