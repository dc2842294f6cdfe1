from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from skyroute.store import create_engine, redacted_url
from skyroute.store.engine import resolve_url


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u:pw@db:5432/skyroute", "postgresql+asyncpg"),
        ("postgres://u:pw@db/skyroute", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@db/skyroute", "postgresql+asyncpg"),
        ("sqlite:///var/lib/skyroute.db", "sqlite+aiosqlite"),
        (None, "sqlite+aiosqlite"),
    ],
)
def test_urls_get_the_async_driver(given: str | None, driver: str) -> None:
    assert resolve_url(given).drivername == driver


def test_an_empty_url_means_the_sqlite_file() -> None:
    assert resolve_url("", sqlite_path="/data/s.db").database == "/data/s.db"


def test_unknown_schemes_are_refused() -> None:
    with pytest.raises(ValueError, match="mysql"):
        resolve_url("mysql://u:pw@db/x")


def test_redacted_url_hides_the_password() -> None:
    shown = redacted_url("postgresql://skyroute:s3cr%40t@db:5432/skyroute")
    assert "s3cr" not in shown and "***" in shown and "db:5432/skyroute" in shown
    assert redacted_url(None) == ""
    assert "s3cret" not in repr(create_engine("postgresql://u:s3cret@db/x").url)


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine: AsyncEngine = create_engine(None, sqlite_path=str(tmp_path / "s.db"))
    try:
        async with engine.connect() as conn:
            pragmas = {
                name: (await conn.execute(sa.text(f"PRAGMA {name}"))).scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        await engine.dispose()
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 1,
        "foreign_keys": 1,
        "busy_timeout": 5000,
    }
