"""Moving timestamps in and out of the database in UTC, whatever the dialect.

SQLite has no time zone type: SQLAlchemy stores the wall-clock digits only, so every
value is converted to naive UTC on the way in and marked UTC on the way out.
"""

from __future__ import annotations

from datetime import UTC, datetime


def to_db(value: datetime, dialect: str) -> datetime:
    """``value`` ready to bind; a naive ``value`` is taken to be UTC already."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if dialect == "sqlite":
        return aware.astimezone(UTC).replace(tzinfo=None)
    return aware


def from_db(value: datetime | None) -> datetime | None:
    """A value read back, always time-zone aware in UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
