"""Virtual keys and teams: the rows governance reads and the admin API writes.

No secret is stored: a key is kept as its keyed hash (HMAC hex, computed by governance)
plus a prefix and its last four characters for display.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec
import sqlalchemy as sa
from msgspec import UNSET, UnsetType
from sqlalchemy.ext.asyncio import AsyncEngine

from skyroute.store import times
from skyroute.store.errors import begin, connect
from skyroute.store.schema import api_keys, teams

BudgetPeriod = Literal["day", "week", "month", "total"]
Metadata = dict[str, str]


class TeamRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    budget_period: BudgetPeriod | None = None
    budget_limit_micros: int | None = None
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)
    created_at: datetime | None = None  # set by the database on insert


class KeyRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    key_hash: str
    prefix: str
    last4: str
    role: str
    name: str | None = None
    team_id: str | None = None
    models: list[str] | None = None  # None: every model the team may use
    budget_period: BudgetPeriod | None = None
    budget_limit_micros: int | None = None
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    created_by: str | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)
    created_at: datetime | None = None  # set by the database on insert


class KeyUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """Fields to change on a key; a field left UNSET is not touched.

    The hash, id, creator and times of creation and revocation cannot be changed here;
    whether a caller may set the others is governance's decision, not the store's.
    """

    name: str | UnsetType | None = UNSET
    team_id: str | UnsetType | None = UNSET
    role: str | UnsetType = UNSET
    models: list[str] | UnsetType | None = UNSET
    budget_period: BudgetPeriod | UnsetType | None = UNSET
    budget_limit_micros: int | UnsetType | None = UNSET
    rpm: int | UnsetType | None = UNSET
    tpm: int | UnsetType | None = UNSET
    max_parallel: int | UnsetType | None = UNSET
    expires_at: datetime | UnsetType | None = UNSET
    metadata: Metadata | UnsetType = UNSET


class TeamUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """Fields to change on a team; a field left UNSET is not touched (None clears it)."""

    name: str | UnsetType = UNSET
    budget_period: BudgetPeriod | UnsetType | None = UNSET
    budget_limit_micros: int | UnsetType | None = UNSET
    rpm: int | UnsetType | None = UNSET
    tpm: int | UnsetType | None = UNSET
    max_parallel: int | UnsetType | None = UNSET
    metadata: Metadata | UnsetType = UNSET


_TIME_FIELDS = frozenset({"expires_at", "revoked_at", "created_at"})


def _to_values(fields: dict[str, Any], dialect: str) -> dict[str, Any]:
    values = {name: value for name, value in fields.items() if value is not UNSET}
    if values.get("created_at", UNSET) is None:
        del values["created_at"]  # let the database stamp it
    for name in _TIME_FIELDS & values.keys():
        if values[name] is not None:
            values[name] = times.to_db(values[name], dialect)
    return values


def _from_row(row: sa.Row[Any], kind: type[KeyRow] | type[TeamRow]) -> Any:
    # Column keys are sqlalchemy's quoted_name, a str subclass msgspec will not take.
    mapping = {str(name): value for name, value in row._mapping.items()}
    for name in _TIME_FIELDS & mapping.keys():
        mapping[name] = times.from_db(mapping[name])
    return msgspec.convert(mapping, kind)


async def _execute(engine: AsyncEngine, statement: sa.Executable) -> int:
    """Run one write in its own transaction; the number of rows it touched."""
    async with begin(engine) as conn:
        return (await conn.execute(statement)).rowcount


async def _fetch(engine: AsyncEngine, query: sa.Select[Any]) -> list[sa.Row[Any]]:
    async with connect(engine) as conn:
        return list((await conn.execute(query)).all())


async def insert_team(engine: AsyncEngine, team: TeamRow) -> None:
    values = _to_values(msgspec.structs.asdict(team), engine.dialect.name)
    await _execute(engine, teams.insert().values(values))


async def get_team(engine: AsyncEngine, team_id: str) -> TeamRow | None:
    found = await _fetch(engine, sa.select(teams).where(teams.c.id == team_id))
    return _from_row(found[0], TeamRow) if found else None


async def list_teams(engine: AsyncEngine) -> list[TeamRow]:
    found = await _fetch(engine, sa.select(teams).order_by(teams.c.name))
    return [_from_row(row, TeamRow) for row in found]


async def update_team(engine: AsyncEngine, team_id: str, fields: TeamUpdate) -> TeamRow | None:
    """Apply ``fields`` and return the team as it now is; None if there is no such team."""
    values = _to_values(msgspec.structs.asdict(fields), engine.dialect.name)
    if values:
        await _execute(engine, teams.update().where(teams.c.id == team_id).values(values))
    return await get_team(engine, team_id)


async def insert_key(engine: AsyncEngine, key: KeyRow) -> None:
    values = _to_values(msgspec.structs.asdict(key), engine.dialect.name)
    await _execute(engine, api_keys.insert().values(values))


async def get_key_by_hash(engine: AsyncEngine, key_hash: str) -> KeyRow | None:
    found = await _fetch(engine, sa.select(api_keys).where(api_keys.c.key_hash == key_hash))
    return _from_row(found[0], KeyRow) if found else None


async def get_key(engine: AsyncEngine, key_id: str) -> KeyRow | None:
    found = await _fetch(engine, sa.select(api_keys).where(api_keys.c.id == key_id))
    return _from_row(found[0], KeyRow) if found else None


async def list_keys(engine: AsyncEngine, team_id: str | None = None) -> list[KeyRow]:
    """Every key, or the keys of one team, oldest first."""
    query = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
    if team_id is not None:
        query = query.where(api_keys.c.team_id == team_id)
    return [_from_row(row, KeyRow) for row in await _fetch(engine, query)]


async def revoke_key(engine: AsyncEngine, key_id: str, at: datetime) -> bool:
    """Mark the key revoked at ``at``; False if it is unknown or was already revoked."""
    statement = (
        api_keys.update()
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=times.to_db(at, engine.dialect.name))
    )
    return await _execute(engine, statement) == 1


async def update_key(engine: AsyncEngine, key_id: str, fields: KeyUpdate) -> KeyRow | None:
    """Apply ``fields`` and return the key as it now is; None if there is no such key."""
    values = _to_values(msgspec.structs.asdict(fields), engine.dialect.name)
    if values:
        await _execute(engine, api_keys.update().where(api_keys.c.id == key_id).values(values))
    return await get_key(engine, key_id)
