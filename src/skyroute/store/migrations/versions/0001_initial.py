"""Initial schema: teams, api_keys, usage_ledger, usage_dead_letter.

Written out by hand, not imported from ``schema.py``: a migration is history and must
not change when the current schema does.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_json = sa.JSON().with_variant(JSONB(), "postgresql")
_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ts = sa.DateTime(timezone=True)


def _created_at() -> sa.Column[object]:
    return sa.Column("created_at", _ts, nullable=False, server_default=sa.func.now())


def _limits() -> list[sa.Column[object]]:
    return [
        sa.Column("budget_period", sa.String(16), nullable=True),
        sa.Column("budget_limit_micros", sa.BigInteger, nullable=True),
        sa.Column("rpm", sa.Integer, nullable=True),
        sa.Column("tpm", sa.BigInteger, nullable=True),
        sa.Column("max_parallel", sa.Integer, nullable=True),
    ]


def _tokens() -> list[sa.Column[object]]:
    kinds = ("prompt", "completion", "cached", "cache_write", "reasoning")
    return [sa.Column(f"{kind}_tokens", sa.BigInteger, nullable=False) for kind in kinds]


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        *_limits(),
        _created_at(),
        sa.Column("metadata", _json, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("key_hash", sa.String(128), nullable=False, unique=True),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("last4", sa.String(8), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("team_id", sa.String(64), sa.ForeignKey("teams.id"), nullable=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("models", _json, nullable=True),
        *_limits(),
        sa.Column("expires_at", _ts, nullable=True),
        sa.Column("revoked_at", _ts, nullable=True),
        sa.Column("created_by", sa.String(64), nullable=True),
        _created_at(),
        sa.Column("metadata", _json, nullable=False),
    )
    op.create_index("ix_api_keys_team_id", "api_keys", ["team_id"])
    _create_ledger()
    op.create_table(
        "usage_dead_letter",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        _created_at(),
    )


def _create_ledger() -> None:
    op.create_table(
        "usage_ledger",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
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
        *_tokens(),
        sa.Column("cost_micros", sa.BigInteger, nullable=False),
        sa.Column("latency_ms", sa.Integer, nullable=True),
        sa.Column("ttft_ms", sa.Integer, nullable=True),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("finish_reason", sa.String(64), nullable=True),
        sa.Column("estimated", sa.Boolean, nullable=False),
        _created_at(),
        sa.UniqueConstraint("request_id", "attempt", name="uq_usage_ledger_request_attempt"),
    )
    op.create_index("ix_usage_ledger_created_at", "usage_ledger", ["created_at"])
    op.create_index("ix_usage_ledger_key_created", "usage_ledger", ["key_id", "created_at"])
    op.create_index("ix_usage_ledger_team_created", "usage_ledger", ["team_id", "created_at"])


def downgrade() -> None:
    op.drop_table("usage_dead_letter")
    op.drop_table("usage_ledger")
    op.drop_table("api_keys")
    op.drop_table("teams")
