"""Usage reports: spend and tokens grouped by key, team, model or provider."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from skyroute.store import times
from skyroute.store.errors import connect
from skyroute.store.schema import usage_ledger

ReportBy = Literal["key", "team", "model", "provider"]

_GROUP_COLUMNS: Mapping[str, sa.ColumnElement[Any]] = {
    "key": usage_ledger.c.key_id,
    "team": usage_ledger.c.team_id,
    "model": usage_ledger.c.model,
    "provider": usage_ledger.c.provider,
}

_SUMMED = (
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_micros",
)


class ReportRow(msgspec.Struct, frozen=True, kw_only=True):
    """One group. ``requests`` counts logical requests; ``attempts`` every upstream try."""

    group: str | None
    requests: int
    attempts: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost_micros: int


async def usage_report(
    engine: AsyncEngine,
    *,
    by: ReportBy,
    since: datetime,
    until: datetime | None = None,
    team_id: str | None = None,
) -> list[ReportRow]:
    """Totals per ``by`` group for attempts made in [since, until), costliest first;
    only the attempts of team ``team_id`` when it is given."""
    dialect = engine.dialect.name
    group = _GROUP_COLUMNS[by]
    sums = [sa.func.coalesce(sa.func.sum(usage_ledger.c[name]), 0) for name in _SUMMED]
    query = (
        sa.select(
            group,
            sa.func.count(sa.distinct(usage_ledger.c.logical_request_id)),
            sa.func.count(),
            *sums,
        )
        .where(usage_ledger.c.created_at >= times.to_db(since, dialect))
        .group_by(group)
        .order_by(sums[-1].desc(), group)
    )
    if until is not None:
        query = query.where(usage_ledger.c.created_at < times.to_db(until, dialect))
    if team_id is not None:
        query = query.where(usage_ledger.c.team_id == team_id)
    async with connect(engine) as conn:
        found = (await conn.execute(query)).all()
    return [_report_row(row) for row in found]


def _report_row(row: sa.Row[Any]) -> ReportRow:
    # PostgreSQL sums BIGINT into NUMERIC, which arrives as Decimal.
    group, requests, attempts, *sums = tuple(row)
    totals = dict(zip(_SUMMED, (int(value) for value in sums), strict=True))
    return ReportRow(group=group, requests=int(requests), attempts=int(attempts), **totals)
