"""Committed spend per key or team since a time: what budgets start from after a restart."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from skyroute.store import times
from skyroute.store.errors import connect
from skyroute.store.schema import usage_ledger


async def spend_since(
    engine: AsyncEngine, holder: Literal["key", "team"], holder_id: str, since: datetime
) -> int:
    """The ledger's total cost in micro-dollars for one key or team from ``since`` on."""
    column = usage_ledger.c.key_id if holder == "key" else usage_ledger.c.team_id
    query = sa.select(sa.func.coalesce(sa.func.sum(usage_ledger.c.cost_micros), 0)).where(
        column == holder_id,
        usage_ledger.c.created_at >= times.to_db(since, engine.dialect.name),
    )
    async with connect(engine) as conn:
        return int((await conn.execute(query)).scalar_one())
