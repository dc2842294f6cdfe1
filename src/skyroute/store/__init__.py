"""The store: SQL schema and migrations, keys and teams, the usage ledger and reports.

SQLite (a file in WAL mode) by default, PostgreSQL in production; SQLAlchemy Core over
async drivers (aiosqlite, asyncpg). Only this package speaks SQL.
"""

from skyroute.store.engine import create_engine, engine_for, redacted_url
from skyroute.store.errors import StoreUnavailable
from skyroute.store.keys import (
    KeyRow,
    KeyUpdate,
    TeamRow,
    TeamUpdate,
    get_key,
    get_key_by_hash,
    get_team,
    insert_key,
    insert_team,
    list_keys,
    list_teams,
    revoke_key,
    update_key,
    update_team,
)
from skyroute.store.ledger import DeadLetter, InsertResult, UsageRow, dead_letters, insert_usage
from skyroute.store.migrate import migrate
from skyroute.store.report import ReportRow, usage_report

__all__ = [
    "DeadLetter",
    "InsertResult",
    "KeyRow",
    "KeyUpdate",
    "ReportRow",
    "StoreUnavailable",
    "TeamRow",
    "TeamUpdate",
    "UsageRow",
    "create_engine",
    "dead_letters",
    "engine_for",
    "get_key",
    "get_key_by_hash",
    "get_team",
    "insert_key",
    "insert_team",
    "insert_usage",
    "list_keys",
    "list_teams",
    "migrate",
    "redacted_url",
    "revoke_key",
    "update_key",
    "update_team",
    "usage_report",
]
