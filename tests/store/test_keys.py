from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from skyroute.store import (
    KeyUpdate,
    TeamRow,
    get_key,
    get_key_by_hash,
    get_team,
    insert_key,
    insert_team,
    list_keys,
    list_teams,
    revoke_key,
    update_key,
)

from .factories import INJECTION, key_row

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


async def test_team_round_trip(engine: AsyncEngine) -> None:
    team = TeamRow(
        id="t1",
        name="research",
        budget_period="month",
        budget_limit_micros=500_000_000,
        rpm=600,
        tpm=200_000,
        max_parallel=8,
        metadata={"cost_center": "42"},
    )
    await insert_team(engine, team)
    await insert_team(engine, TeamRow(id="t0", name="applied"))
    found = await get_team(engine, "t1")
    assert found is not None
    assert found.created_at is not None and found.created_at.tzinfo is not None
    assert found == msgspec.structs.replace(team, created_at=found.created_at)
    assert [t.name for t in await list_teams(engine)] == ["applied", "research"]
    assert await get_team(engine, "missing") is None


async def test_team_names_are_unique(engine: AsyncEngine) -> None:
    await insert_team(engine, TeamRow(id="t1", name="research"))
    with pytest.raises(sa.exc.IntegrityError):
        await insert_team(engine, TeamRow(id="t2", name="research"))


async def test_key_lifecycle(engine: AsyncEngine) -> None:
    await insert_team(engine, TeamRow(id="t1", name="research"))
    key = key_row(1, team_id="t1", models=["gpt-4o", "claude-sonnet"], expires_at=NOW)
    await insert_key(engine, key)
    await insert_key(engine, key_row(2))
    found = await get_key_by_hash(engine, key.key_hash)
    assert found is not None
    assert found.id == "key-1" and found.team_id == "t1" and found.role == "member"
    assert found.models == ["gpt-4o", "claude-sonnet"]
    assert found.expires_at == NOW and found.revoked_at is None
    assert found.created_at is not None
    assert [k.id for k in await list_keys(engine)] == ["key-1", "key-2"]
    assert [k.id for k in await list_keys(engine, team_id="t1")] == ["key-1"]
    assert await get_key_by_hash(engine, "0" * 63 + "f") is None


async def test_revocation_is_recorded_once(engine: AsyncEngine) -> None:
    await insert_key(engine, key_row(1))
    assert await revoke_key(engine, "key-1", NOW) is True
    assert await revoke_key(engine, "key-1", NOW + timedelta(hours=1)) is False
    assert await revoke_key(engine, "no-such-key", NOW) is False
    found = await get_key(engine, "key-1")
    assert found is not None and found.revoked_at == NOW


async def test_times_come_back_in_utc(engine: AsyncEngine) -> None:
    tokyo = timezone(timedelta(hours=9))
    await insert_key(engine, key_row(1, expires_at=datetime(2026, 12, 1, 9, 0, tzinfo=tokyo)))
    found = await get_key(engine, "key-1")
    assert found is not None and found.expires_at == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    assert found.expires_at.utcoffset() == timedelta(0)


async def test_update_changes_only_the_fields_given(engine: AsyncEngine) -> None:
    await insert_key(engine, key_row(1, rpm=10, models=["a"], metadata={"x": "1"}))
    updated = await update_key(engine, "key-1", KeyUpdate(rpm=20, models=None))
    assert updated is not None
    assert updated.rpm == 20 and updated.models is None
    assert updated.metadata == {"x": "1"} and updated.name == "key number 1"
    assert await update_key(engine, "key-1", KeyUpdate()) == updated
    assert await update_key(engine, "missing", KeyUpdate(rpm=1)) is None


async def test_key_hashes_are_unique(engine: AsyncEngine) -> None:
    await insert_key(engine, key_row(1))
    with pytest.raises(sa.exc.IntegrityError):
        await insert_key(engine, key_row(2, key_hash=key_row(1).key_hash))


async def test_a_key_cannot_name_an_unknown_team(engine: AsyncEngine) -> None:
    with pytest.raises(sa.exc.IntegrityError):
        await insert_key(engine, key_row(1, team_id="no-such-team"))


@pytest.mark.parametrize("text", INJECTION)
async def test_injection_shaped_strings_are_stored_verbatim(engine: AsyncEngine, text: str) -> None:
    await insert_team(engine, TeamRow(id=text[:64], name=text, metadata={text: text}))
    key = key_row(1, key_hash=text, name=text, team_id=text[:64], models=[text])
    await insert_key(engine, key)
    found = await get_key_by_hash(engine, text)
    assert found is not None and found.name == text and found.models == [text]
    assert [k.id for k in await list_keys(engine, team_id=text[:64])] == ["key-1"]
    team = await get_team(engine, text[:64])
    assert team is not None and team.name == text and team.metadata == {text: text}
    assert len(await list_keys(engine)) == 1
