"""Fixtures that run every store test against SQLite and a real PostgreSQL.

PostgreSQL comes from ``SKYROUTE_TEST_POSTGRES_URL`` (its user needs CREATEDB), or else a
throwaway cluster (``tests/postgres.py``) started here and removed at the end of the
session. Each test starts from an empty database.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from skyroute.store import create_engine, migrate
from tests.postgres import Cluster, skip_reason

BACKENDS = ["sqlite", "postgresql"]
T = TypeVar("T")


@dataclass(frozen=True)
class PostgresServer:
    """A server on which tests may create databases; ``admin_url`` names one to connect to."""

    admin_url: str

    def url_for(self, database: str) -> str:
        return make_url(self.admin_url).set(database=database).render_as_string(False)

    async def create_database(self) -> str:
        name = f"skyroute_test_{uuid.uuid4().hex[:12]}"
        # FILE_COPY (PostgreSQL 15+) skips WAL-logging every block of the template.
        strategy = " STRATEGY FILE_COPY" if await self._version() >= 150000 else ""
        await self.admin(f'CREATE DATABASE "{name}"{strategy}')
        return name

    async def _version(self) -> int:
        conn = await asyncpg.connect(self.admin_url)
        try:
            return int(await conn.fetchval("SHOW server_version_num"))
        finally:
            await conn.close()

    async def admin(self, sql: str, *, database: str | None = None) -> None:
        url = self.admin_url if database is None else self.url_for(database)
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def empty(self, database: str) -> None:
        """Drop everything in ``database`` (much faster than a new CREATE DATABASE)."""
        reset = "DROP SCHEMA public CASCADE; CREATE SCHEMA public"
        await self.admin(reset, database=database)


@dataclass(frozen=True)
class Database:
    backend: str
    url: str | None  # None: SQLite at ``sqlite_path``
    sqlite_path: str
    server: PostgresServer | None = None
    name: str = ""

    def engine(self) -> AsyncEngine:
        return create_engine(self.url, sqlite_path=self.sqlite_path)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    url = os.environ.get("SKYROUTE_TEST_POSTGRES_URL")
    if url:
        yield PostgresServer(admin_url=url)
        return
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    cluster = Cluster.create(Path(tempfile.mkdtemp(prefix="skyroute-pg-")))
    try:
        yield PostgresServer(admin_url=cluster.url)
    finally:
        cluster.remove()


@pytest.fixture(scope="session")
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """One database for the session, emptied before each test."""
    name = _blocking(postgres_server.create_database)
    yield name
    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    _blocking(lambda: postgres_server.admin(drop))


def _blocking(call: Callable[[], Coroutine[Any, Any, T]]) -> T:
    # Session fixtures are first requested from inside a test's running event loop,
    # so their async set-up runs on a loop of its own in another thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(call())).result()


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty database: a SQLite file, or a fresh PostgreSQL database."""
    sqlite_path = str(tmp_path / "store.db")
    if request.param == "sqlite":
        yield Database(backend="sqlite", url=None, sqlite_path=sqlite_path)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name: str = request.getfixturevalue("postgres_database")
    await server.empty(name)
    yield Database("postgresql", server.url_for(name), sqlite_path, server, name)


@pytest.fixture
async def engine(database: Database) -> AsyncIterator[AsyncEngine]:
    """A migrated engine on ``database``."""
    engine = database.engine()
    await migrate(engine)
    yield engine
    await engine.dispose()
