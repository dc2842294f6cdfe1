"""Building the async SQLAlchemy engine: SQLite (file, WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

_BUSY_TIMEOUT_MS = 5000

_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}


def resolve_url(database_url: str | None, *, sqlite_path: str = "skyroute.db") -> URL:
    """The async driver URL for ``database_url``, or a SQLite file when it is empty."""
    if not database_url:
        return URL.create("sqlite+aiosqlite", database=sqlite_path)
    url = make_url(database_url)
    driver = _DRIVERS.get(url.drivername)
    if driver is None:
        raise ValueError(f"unsupported database URL scheme {url.drivername!r}")
    return url.set(drivername=driver)


def redacted_url(database_url: str | URL | None) -> str:
    """The URL with its password replaced by ``***``, safe for logs and errors."""
    if database_url is None or database_url == "":
        return ""
    url = make_url(database_url) if isinstance(database_url, str) else database_url
    return url.render_as_string(hide_password=True)


def create_engine(
    database_url: str | None,
    *,
    sqlite_path: str = "skyroute.db",
    sqlite_busy_timeout_ms: int = _BUSY_TIMEOUT_MS,
) -> AsyncEngine:
    """An async engine for ``database_url`` (``postgresql://...``), or SQLite in WAL mode.

    ``sqlite_busy_timeout_ms`` is how long a SQLite write waits for another writer's
    lock before the call fails with ``StoreUnavailable``.
    """
    url = resolve_url(database_url, sqlite_path=sqlite_path)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, sqlite_busy_timeout_ms)
    # Bounded waits, so a hung server (SIGSTOP, a full network) fails the call instead
    # of holding the outbox forever: connect 5 s, any statement 30 s, pool checkout 10 s.
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_timeout=10,
        connect_args={"timeout": 5, "command_timeout": 30},
    )


def _sqlite_engine(url: URL, busy_timeout_ms: int) -> AsyncEngine:
    engine = create_async_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})
    # WAL lets readers run beside the one writer; NORMAL is durable across process
    # crashes in WAL mode (only an OS crash may lose the last commits).
    pragmas = (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA foreign_keys=ON",
        f"PRAGMA busy_timeout={int(busy_timeout_ms)}",
    )

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    event.listen(engine.sync_engine, "connect", on_connect)
    return engine


def engine_for(database_url: str | None, data_dir: str | Path) -> AsyncEngine:
    """The engine a gateway configured with ``store.database_url`` / ``store.data_dir``
    uses: PostgreSQL when a URL is given, else ``<data_dir>/skyroute.db`` (created)."""
    if database_url:
        return create_engine(database_url)
    directory = Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    return create_engine(None, sqlite_path=str(directory / "skyroute.db"))


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"
