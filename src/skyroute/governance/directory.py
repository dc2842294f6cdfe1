"""Who is calling: the in-memory directory of virtual keys and teams.

Decided, and why:

- The request path never waits for SQL. The directory holds a snapshot of every key and
  team, indexed by key hash; a background task (``refresh``) reloads it from the store every
  ``store.key_refresh_seconds``. So a key created, changed or revoked on another process
  takes effect here within one refresh interval (5 s by default); on the process that made
  the change it takes effect at once (the admin API calls ``put_key`` / ``put_team``).
- A snapshot instead of a lookup-on-miss cache: a miss never reaches the database, so a
  flood of made-up keys costs one HMAC and one dict lookup each, nothing more.
- The master key is a caller too: an admin with no team and no limits, compared in
  constant time. Every other token is hashed (HMAC under the hashing subkey) whatever its
  shape, and every failure raises the same ``AuthenticationFailed``.
- Expiry and revocation are checked against the clock on every request, so a key past its
  ``expires_at`` stops working on time even between refreshes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from skyroute.core.errors import AuthenticationFailed
from skyroute.core.secret import Secret
from skyroute.governance.budget import BudgetSpec, Period
from skyroute.governance.keys import PREFIX, KeyHasher, KeyRecord, Role
from skyroute.governance.limits import LimitSpec
from skyroute.store import KeyRow, TeamRow, list_keys, list_teams

MASTER_ID = "master"
MASTER = KeyRecord(id=MASTER_ID, hash="", role=Role.ADMIN, name="master key")

# Rows converted per slice during a refresh before yielding to the event loop, so a large
# key table never stalls requests.
_SLICE = 500
_PREFIX = PREFIX.encode()


class Team(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    budget: BudgetSpec | None = None
    limits: LimitSpec = LimitSpec()
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class Caller(msgspec.Struct, frozen=True):
    """An authenticated caller: its key (``MASTER`` for the master key) and team."""

    key: KeyRecord
    team: Team | None = None

    @property
    def is_master(self) -> bool:
        return self.key is MASTER


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _budget(period: str | None, limit: int | None) -> BudgetSpec | None:
    if period is None or limit is None:
        return None
    return BudgetSpec(limit_micros=limit, period=Period(period))


def record_from_row(row: KeyRow) -> KeyRecord:
    return KeyRecord(
        id=row.id,
        hash=row.key_hash,
        team_id=row.team_id,
        name=row.name or "",
        models=tuple(row.models or ()),
        budget=_budget(row.budget_period, row.budget_limit_micros),
        rpm=row.rpm,
        tpm=row.tpm,
        max_parallel=row.max_parallel,
        expires_at=_epoch(row.expires_at),
        revoked_at=_epoch(row.revoked_at),
        created_by=row.created_by,
        role=Role(row.role),
        metadata=dict(row.metadata),
    )


def team_from_row(row: TeamRow) -> Team:
    return Team(
        id=row.id,
        name=row.name,
        budget=_budget(row.budget_period, row.budget_limit_micros),
        limits=LimitSpec(rpm=row.rpm, tpm=row.tpm, max_parallel=row.max_parallel),
        metadata=dict(row.metadata),
    )


class KeyDirectory:
    def __init__(self, hasher: KeyHasher, master_key: Secret) -> None:
        self.hasher = hasher
        self._master_key = master_key
        self._by_hash: dict[str, KeyRecord] = {}
        self._by_id: dict[str, KeyRecord] = {}
        self._teams: dict[str, Team] = {}
        self.loaded = False

    def resolve(self, token: bytes | None, now: float) -> Caller:
        """The caller behind a presented token, or ``AuthenticationFailed``."""
        raw = token or b""
        # Hash every token, master key or not, so both paths cost about the same.
        key_hash = self.hasher.hash_bytes(raw)
        if self._master_key.matches(raw) and token is not None:
            return Caller(MASTER)
        record = self._by_hash.get(key_hash) if raw.startswith(_PREFIX) else None
        if record is None or not record.is_active(now):
            raise AuthenticationFailed()
        team = self._teams.get(record.team_id) if record.team_id is not None else None
        return Caller(record, team)

    def key(self, key_id: str) -> KeyRecord | None:
        return MASTER if key_id == MASTER_ID else self._by_id.get(key_id)

    def team(self, team_id: str) -> Team | None:
        return self._teams.get(team_id)

    def all_keys(self) -> Iterable[KeyRecord]:
        return self._by_id.values()

    def all_teams(self) -> Iterable[Team]:
        return self._teams.values()

    def put_key(self, record: KeyRecord) -> None:
        old = self._by_id.get(record.id)
        if old is not None and old.hash != record.hash:
            self._by_hash.pop(old.hash, None)
        self._by_id[record.id] = record
        self._by_hash[record.hash] = record

    def put_team(self, team: Team) -> None:
        self._teams[team.id] = team

    def replace(self, keys: Iterable[KeyRecord], teams: Iterable[Team]) -> None:
        """Swap in a whole snapshot at once (readers never see half of one)."""
        by_id = {k.id: k for k in keys}
        self._by_id = by_id
        self._by_hash = {k.hash: k for k in by_id.values()}
        self._teams = {t.id: t for t in teams}
        self.loaded = True

    async def refresh(self, engine: AsyncEngine) -> None:
        """Reload the snapshot from the store; raises ``StoreUnavailable`` if it is down."""
        key_rows = await list_keys(engine)
        team_rows = await list_teams(engine)
        records: list[KeyRecord] = []
        for start in range(0, len(key_rows), _SLICE):
            records.extend(record_from_row(row) for row in key_rows[start : start + _SLICE])
            await asyncio.sleep(0)
        self.replace(records, [team_from_row(row) for row in team_rows])
