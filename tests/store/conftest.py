"""Fixtures that run every store test against SQLite and a real PostgreSQL.

PostgreSQL comes from ``SKYROUTE_TEST_POSTGRES_URL`` (its user needs CREATEDB), or else a
throwaway cluster started here from the Debian package's binaries and removed at the end
of the session. Each test starts from an empty database.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import socket
import subprocess
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(args: list[str]) -> list[str]:
    # initdb refuses to run as root; run the cluster as the package's OS user.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _start_cluster(root: Path) -> str:
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))[-1]
    bindir = Path(initdb).parent
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
    data, port = root / "data", _free_port()
    init = [initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "-N"]
    subprocess.run(_as_postgres(init), check=True, capture_output=True)
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    start = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w"]
    subprocess.run(_as_postgres([*start, "-o", options, "start"]), check=True, capture_output=True)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def _stop_cluster(root: Path) -> None:
    pg_ctl = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1])
    stop = [str(pg_ctl), "-D", str(root / "data"), "-m", "immediate", "stop"]
    subprocess.run(_as_postgres(stop), check=False, capture_output=True)


def _skip_reason() -> str | None:
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        return (
            "no PostgreSQL binaries (/usr/lib/postgresql/*/bin/initdb); apt-get install postgresql"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' OS user to run initdb"
    return None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    url = os.environ.get("SKYROUTE_TEST_POSTGRES_URL")
    if url:
        yield PostgresServer(admin_url=url)
        return
    reason = _skip_reason()
    if reason is not None:
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="skyroute-pg-"))
    try:
        yield PostgresServer(admin_url=_start_cluster(root))
    finally:
        _stop_cluster(root)
        shutil.rmtree(root, ignore_errors=True)


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
