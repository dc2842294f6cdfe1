"""The SQL schema, as SQLAlchemy Core tables (no ORM).

Money is integer micro-dollars (BIGINT). Times are timestamps with time zone, set by the
database unless the caller knows better (a ledger row carries its attempt's time, so a
replay from the outbox does not move spend into a later period). The migrations in
``migrations/versions`` create exactly these tables; a test compares the two.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

metadata = sa.MetaData()


class _Json(sa.types.TypeDecorator[Any]):
    """JSONB on PostgreSQL (indexable, compact), JSON text elsewhere. The PostgreSQL type is
    imported only when PostgreSQL is in use: its dialect costs a SQLite gateway ~2 MiB of
    memory for nothing."""

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(sa.JSON())


Json = _Json()
# SQLite only autoincrements an INTEGER PRIMARY KEY, which is 64-bit there anyway.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def _created_at() -> sa.Column[object]:
    return sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.now())


def _limits() -> list[sa.Column[object]]:
    return [
        sa.Column("budget_period", sa.String(16), nullable=True),
        sa.Column("budget_limit_micros", sa.BigInteger, nullable=True),
        sa.Column("rpm", sa.Integer, nullable=True),
        sa.Column("tpm", sa.BigInteger, nullable=True),
        sa.Column("max_parallel", sa.Integer, nullable=True),
    ]


teams = sa.Table(
    "teams",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    *_limits(),
    _created_at(),
    sa.Column("metadata", Json, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("key_hash", sa.String(128), nullable=False, unique=True),
    sa.Column("prefix", sa.String(32), nullable=False),
    sa.Column("last4", sa.String(8), nullable=False),
    sa.Column("name", sa.String(200), nullable=True),
    sa.Column("team_id", sa.String(64), sa.ForeignKey("teams.id"), nullable=True, index=True),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("models", Json, nullable=True),
    *_limits(),
    sa.Column("expires_at", Timestamp, nullable=True),
    sa.Column("revoked_at", Timestamp, nullable=True),
    sa.Column("created_by", sa.String(64), nullable=True),
    _created_at(),
    sa.Column("metadata", Json, nullable=False),
)

# One row per upstream attempt. No foreign keys on purpose: spend for a key deleted
# meanwhile must still be recorded, never rejected.
usage_ledger = sa.Table(
    "usage_ledger",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("logical_request_id", sa.String(128), nullable=False),
    sa.Column("key_id", sa.String(64), nullable=True),
    sa.Column("team_id", sa.String(64), nullable=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("deployment", sa.String(200), nullable=False),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("upstream_model", sa.String(200), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("error_code", sa.String(128), nullable=True),
    sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
    sa.Column("completion_tokens", sa.BigInteger, nullable=False),
    sa.Column("cached_tokens", sa.BigInteger, nullable=False),
    sa.Column("cache_write_tokens", sa.BigInteger, nullable=False),
    sa.Column("reasoning_tokens", sa.BigInteger, nullable=False),
    sa.Column("cost_micros", sa.BigInteger, nullable=False),
    sa.Column("latency_ms", sa.Integer, nullable=True),
    sa.Column("ttft_ms", sa.Integer, nullable=True),
    sa.Column("stream", sa.Boolean, nullable=False),
    sa.Column("finish_reason", sa.String(64), nullable=True),
    sa.Column("estimated", sa.Boolean, nullable=False),
    _created_at(),
    sa.UniqueConstraint("request_id", "attempt", name="uq_usage_ledger_request_attempt"),
    sa.Index("ix_usage_ledger_created_at", "created_at"),
    sa.Index("ix_usage_ledger_key_created", "key_id", "created_at"),
    sa.Index("ix_usage_ledger_team_created", "team_id", "created_at"),
)

# Rows the ledger could not take. The payload is JSON *text*, not JSON: PostgreSQL's
# jsonb rejects the very "\u0000" that may have poisoned the row.
usage_dead_letter = sa.Table(
    "usage_dead_letter",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    _created_at(),
)
