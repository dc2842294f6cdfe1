"""KeyManager against SQLite and PostgreSQL: lifecycle, policy, mass assignment, inputs."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from skyroute.core.errors import Conflict, InvalidRequest, ObjectNotFound, PermissionDenied
from skyroute.core.secret import Secret
from skyroute.governance.budget import Period
from skyroute.governance.directory import MASTER, Caller, KeyDirectory
from skyroute.governance.keys import KeyHasher, Role
from skyroute.governance.manage import (
    BudgetIn,
    KeyCreate,
    KeyManager,
    KeyPatch,
    TeamCreate,
    TeamPatch,
    parse_since,
    usd_text,
)
from skyroute.store import insert_usage
from skyroute.store.schema import api_keys
from tests.store.factories import usage_row

NOW = 1_750_000_000.0
ADMIN = Caller(MASTER)
# A key that fits inside the team admin made by ``team_admin``.
SMALL = KeyCreate(models=["gpt-4o"], budget=BudgetIn(usd="1"), rpm=1, tpm=1, max_parallel=1)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def directory() -> KeyDirectory:
    return KeyDirectory(KeyHasher(Secret("root-secret")), Secret("sk-master"))


@pytest.fixture
def manager(engine: AsyncEngine, directory: KeyDirectory, clock: Clock) -> KeyManager:
    return KeyManager(engine, directory.hasher, directory, wall_clock=clock)


def caller(directory: KeyDirectory, key_id: str) -> Caller:
    record = directory.key(key_id)
    assert record is not None
    team = directory.team(record.team_id) if record.team_id else None
    return Caller(record, team)


async def make_team(manager: KeyManager, name: str, **fields: object) -> str:
    spec = msgspec.convert({"name": name, **fields}, TeamCreate)
    return (await manager.create_team(ADMIN, spec)).id


async def team_admin(manager: KeyManager, directory: KeyDirectory, team_id: str) -> Caller:
    spec = KeyCreate(
        name="ta", team_id=team_id, role=Role.TEAM_ADMIN, models=["gpt-4o", "claude"],
        budget=BudgetIn(usd="100"), rpm=100, tpm=10_000, max_parallel=5,
    )  # fmt: skip
    created = await manager.create_key(ADMIN, spec)
    return caller(directory, created.info.id)


async def test_team_lifecycle(manager: KeyManager, directory: KeyDirectory) -> None:
    view = await manager.create_team(
        ADMIN,
        TeamCreate(name="research", budget=BudgetIn(usd="500"), rpm=600, metadata={"cc": "42"}),
    )
    assert view.id.startswith("team_") and len(view.id) == len("team_") + 16
    assert view.budget is not None and view.budget.usd == "500"
    assert view.budget.period is Period.MONTH
    assert directory.team(view.id) is not None
    with pytest.raises(Conflict):
        await manager.create_team(ADMIN, TeamCreate(name="research"))

    updated = await manager.update_team(
        ADMIN, view.id, TeamPatch(budget=BudgetIn(usd="12.5", period=Period.DAY), rpm=None)
    )
    assert updated.budget is not None and updated.budget.usd == "12.5"
    assert updated.rpm is None and updated.metadata == {"cc": "42"}
    team = directory.team(view.id)
    assert team is not None and team.budget is not None
    assert team.budget.limit_micros == 12_500_000 and team.limits.rpm is None

    await make_team(manager, "other")
    with pytest.raises(Conflict):
        await manager.update_team(ADMIN, view.id, TeamPatch(name="other"))
    assert [t.name for t in await manager.list_teams(ADMIN)] == ["other", "research"]
    with pytest.raises(ObjectNotFound):
        await manager.update_team(ADMIN, "team_missing", TeamPatch(rpm=1))


async def test_key_lifecycle(
    manager: KeyManager, directory: KeyDirectory, engine: AsyncEngine, clock: Clock
) -> None:
    team = await make_team(manager, "research", budget={"usd": "500"}, rpm=600)
    created = await manager.create_key(
        ADMIN,
        KeyCreate(name="ci", team_id=team, models=["gpt-4o"], budget=BudgetIn(usd="50"), rpm=60),
    )
    key, info = created.key, created.info
    assert key.startswith("sk-sr-") and info.display == "sk-sr-…" + key[-4:]
    assert info.id.startswith("key_") and info.created_by == "master"
    assert info.budget is not None and info.budget.usd == "50"
    # The directory resolves the new key at once.
    assert directory.resolve(key.encode(), NOW).key.id == info.id

    assert (await manager.get_key(ADMIN, info.id)) == info
    assert [k.id for k in await manager.list_keys(ADMIN, team)] == [info.id]

    patched = await manager.update_key(ADMIN, info.id, KeyPatch(rpm=30, name="ci-2"))
    assert patched.rpm == 30 and patched.name == "ci-2" and patched.models == ["gpt-4o"]
    record = directory.key(info.id)
    assert record is not None and record.rpm == 30

    revoked = await manager.revoke_key(ADMIN, info.id)
    assert revoked.revoked_at is not None
    assert (await manager.revoke_key(ADMIN, info.id)) == revoked  # idempotent
    with pytest.raises(Exception, match="Invalid or missing"):
        directory.resolve(key.encode(), NOW + 1)
    with pytest.raises(InvalidRequest):
        await manager.update_key(ADMIN, info.id, KeyPatch(rpm=1))

    # The plaintext key is in no column of any row.
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(api_keys))).all()
    assert rows and all(key not in repr(tuple(row)) for row in rows)
    assert all(key[6:-4] not in repr(tuple(row)) for row in rows)


async def test_rotate_keeps_both_keys_during_the_overlap(
    manager: KeyManager, directory: KeyDirectory, clock: Clock
) -> None:
    team = await make_team(manager, "research")
    old = await manager.create_key(
        ADMIN, KeyCreate(team_id=team, models=["gpt-4o"], rpm=5, metadata={"a": "b"})
    )
    new = await manager.rotate_key(ADMIN, old.info.id, overlap_seconds=600)
    assert new.key != old.key and new.info.id != old.info.id
    assert (new.info.team_id, new.info.models, new.info.rpm, new.info.metadata) == (
        team, ["gpt-4o"], 5, {"a": "b"},
    )  # fmt: skip
    assert new.info.created_by == "master"
    old_view = await manager.get_key(ADMIN, old.info.id)
    assert old_view.expires_at == datetime.fromtimestamp(NOW + 600, UTC)

    assert directory.resolve(old.key.encode(), NOW + 599).key.id == old.info.id
    assert directory.resolve(new.key.encode(), NOW + 599).key.id == new.info.id
    with pytest.raises(Exception, match="Invalid or missing"):
        directory.resolve(old.key.encode(), NOW + 601)
    assert directory.resolve(new.key.encode(), NOW + 601).key.id == new.info.id


async def test_usage_report_is_scoped_to_the_team(
    manager: KeyManager, directory: KeyDirectory, engine: AsyncEngine
) -> None:
    await insert_usage(engine, [usage_row(i) for i in range(6)])
    since = datetime(2000, 1, 1, tzinfo=UTC)
    everything = await manager.usage(ADMIN, "team", since)
    assert {row.group for row in everything} == {"team-0", "team-1"}
    assert all("." not in row.cost_usd or not row.cost_usd.endswith("0") for row in everything)

    # A team admin of team-0 sees only team-0, whatever it asks for.
    from skyroute.store import TeamRow, insert_team

    await insert_team(engine, TeamRow(id="team-0", name="zero"))
    await insert_team(engine, TeamRow(id="team-1", name="one"))
    ta = await team_admin(manager, directory, "team-0")
    mine = await manager.usage(ta, "key", since)
    assert sum(row.requests for row in mine) == 3
    with pytest.raises(ObjectNotFound) as foreign:
        await manager.usage(ta, "key", since, team_id="team-1")
    with pytest.raises(ObjectNotFound) as missing:
        await manager.usage(ta, "key", since, team_id="team-nope")
    assert foreign.value.message.replace("team-1", "X") == missing.value.message.replace(
        "team-nope", "X"
    )


async def test_team_admin_cannot_see_or_touch_another_team(
    manager: KeyManager, directory: KeyDirectory
) -> None:
    mine, theirs = await make_team(manager, "mine"), await make_team(manager, "theirs")
    ta = await team_admin(manager, directory, mine)
    foreign = await manager.create_key(ADMIN, KeyCreate(team_id=theirs))

    for call in (
        lambda key_id: manager.get_key(ta, key_id),
        lambda key_id: manager.update_key(ta, key_id, KeyPatch(rpm=1)),
        lambda key_id: manager.revoke_key(ta, key_id),
        lambda key_id: manager.rotate_key(ta, key_id),
    ):
        with pytest.raises(ObjectNotFound) as exists:
            await call(foreign.info.id)
        with pytest.raises(ObjectNotFound) as absent:
            await call("key_0000000000000000")
        assert exists.value.message.replace(foreign.info.id, "K") == absent.value.message.replace(
            "key_0000000000000000", "K"
        )
    assert {k.team_id for k in await manager.list_keys(ta)} == {mine}
    assert [t.id for t in await manager.list_teams(ta)] == [mine]
    with pytest.raises(ObjectNotFound):
        await manager.list_keys(ta, theirs)
    with pytest.raises(PermissionDenied):
        await manager.create_team(ta, TeamCreate(name="new"))
    with pytest.raises(PermissionDenied):
        await manager.update_team(ta, mine, TeamPatch(budget=None))

    # Without team_id its own team is filled in.
    child = await manager.create_key(ta, SMALL)
    assert child.info.team_id == mine and child.info.created_by == ta.key.id


async def test_viewer_and_plain_keys_cannot_write(
    manager: KeyManager, directory: KeyDirectory
) -> None:
    team = await make_team(manager, "t")
    viewer = caller(
        directory,
        (await manager.create_key(ADMIN, KeyCreate(team_id=team, role=Role.VIEWER))).info.id,
    )
    plain = caller(directory, (await manager.create_key(ADMIN, KeyCreate(team_id=team))).info.id)
    with pytest.raises(PermissionDenied):
        await manager.create_key(viewer, KeyCreate(team_id=team))
    with pytest.raises(PermissionDenied):
        await manager.revoke_key(viewer, plain.key.id)
    assert len(await manager.list_keys(viewer)) == 2

    since = datetime(2000, 1, 1, tzinfo=UTC)
    for call in (
        manager.create_key(plain, KeyCreate(team_id=team)),
        manager.list_keys(plain),
        manager.list_teams(plain),
        manager.get_key(plain, plain.key.id),
        manager.revoke_key(plain, plain.key.id),
        manager.update_key(plain, plain.key.id, KeyPatch(rpm=1)),
        manager.rotate_key(plain, plain.key.id),
        manager.usage(plain, "key", since),
        manager.create_team(plain, TeamCreate(name="x")),
        manager.update_team(plain, team, TeamPatch(rpm=1)),
    ):
        with pytest.raises(PermissionDenied):
            await call


async def test_mass_assignment_is_refused_with_every_reason(
    manager: KeyManager, directory: KeyDirectory
) -> None:
    mine, theirs = await make_team(manager, "mine"), await make_team(manager, "theirs")
    ta = await team_admin(manager, directory, mine)
    spec = KeyCreate(
        team_id=theirs, role=Role.ADMIN, models=["gpt-4o", "o3"], budget=BudgetIn(usd="1000"),
        rpm=None,
    )  # fmt: skip
    with pytest.raises(PermissionDenied) as refused:
        await manager.create_key(ta, spec)
    message = refused.value.message
    reasons = ("not allowed to create", "role 'admin'", "team is not", "o3", "budget is larger")
    for reason in (*reasons, "rpm unlimited"):
        assert reason in message, message
    assert message.count("; ") >= 5
    # Nothing was written.
    assert len(await manager.list_keys(ADMIN)) == 1

    # A team admin may not raise a key it made above itself, nor its own role.
    child = await manager.create_key(ta, SMALL)
    with pytest.raises(PermissionDenied, match="budget is larger"):
        await manager.update_key(ta, child.info.id, KeyPatch(budget=BudgetIn(usd="101")))
    with pytest.raises(PermissionDenied, match="own role"):
        await manager.update_key(ta, ta.key.id, KeyPatch(role=Role.KEY))


async def test_key_limits_may_not_exceed_the_team(manager: KeyManager) -> None:
    team = await make_team(manager, "t", budget={"usd": "10"}, rpm=100)
    with pytest.raises(InvalidRequest, match="budget"):
        await manager.create_key(ADMIN, KeyCreate(team_id=team, budget=BudgetIn(usd="11")))
    with pytest.raises(InvalidRequest, match="rpm"):
        await manager.create_key(ADMIN, KeyCreate(team_id=team, rpm=101))
    ok = await manager.create_key(ADMIN, KeyCreate(team_id=team, budget=BudgetIn(usd="10")))
    with pytest.raises(InvalidRequest, match="rpm"):
        await manager.update_key(ADMIN, ok.info.id, KeyPatch(rpm=1000))
    with pytest.raises(ObjectNotFound):
        await manager.create_key(ADMIN, KeyCreate(team_id="team_doesnotexist"))


@pytest.mark.parametrize(
    "spec",
    [
        {"name": "a\x00b"},
        {"name": "x" * 201},
        {"metadata": {"k\x00": "v"}},
        {"metadata": {"k": "v" * 513}},
        {"metadata": {"k" * 65: "v"}},
        {"metadata": {str(i): "v" for i in range(33)}},
        {"models": []},
        {"models": ["m"] * 257},
        {"models": ["x" * 201]},
        {"rpm": 0},
        {"tpm": -1},
        {"max_parallel": 0},
        {"budget": {"usd": "-1"}},
        {"budget": {"usd": "1.0000001"}},
        {"budget": {"usd": "lots"}},
        {"expires_at": "2020-01-01T00:00:00Z"},
        {"expires_at": "2099-01-01T00:00:00"},
    ],
)
async def test_invalid_key_fields_are_400(manager: KeyManager, spec: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest):
        await manager.create_key(ADMIN, msgspec.convert(spec, KeyCreate))


async def test_invalid_team_fields_are_400(manager: KeyManager) -> None:
    for spec in ({"name": "a\x00"}, {"name": ""}, {"name": "t", "rpm": 0}):
        with pytest.raises(InvalidRequest):
            await manager.create_team(ADMIN, msgspec.convert(spec, TeamCreate))


@pytest.mark.parametrize("text", ["'; DROP TABLE api_keys;--", "' OR 1=1--", "\\'; SELECT 1; --"])
async def test_injection_shaped_strings_are_stored_verbatim(manager: KeyManager, text: str) -> None:
    team = await manager.create_team(ADMIN, TeamCreate(name=text, metadata={text: text}))
    key = await manager.create_key(
        ADMIN, KeyCreate(name=text, team_id=team.id, models=[text], metadata={"note": text})
    )
    again = await manager.get_key(ADMIN, key.info.id)
    assert (again.name, again.models, again.metadata) == (text, [text], {"note": text})
    assert [t.name for t in await manager.list_teams(ADMIN)] == [text]
    assert len(await manager.list_keys(ADMIN)) == 1
    with pytest.raises(ObjectNotFound):
        await manager.get_key(ADMIN, text)


async def test_ids_come_from_the_random_source(
    engine: AsyncEngine, directory: KeyDirectory
) -> None:
    counter = itertools.count()

    def rng(n: int) -> bytes:
        return bytes([next(counter) % 256]) * n

    manager = KeyManager(engine, directory.hasher, directory, wall_clock=lambda: NOW, rng_bytes=rng)
    team = await manager.create_team(ADMIN, TeamCreate(name="t"))
    assert team.id == "team_" + "00" * 8


def test_parse_since() -> None:
    now = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("24h", now) == now - timedelta(hours=24)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("2w", now) == now - timedelta(weeks=2)
    assert parse_since("2025-06-01", now) == datetime(2025, 6, 1, tzinfo=UTC)
    assert parse_since("2025-06-01T10:00:00+02:00", now) == datetime(2025, 6, 1, 8, tzinfo=UTC)
    for bad in ("", "7", "d", "7y", "-7d", "yesterday", "7d; DROP TABLE"):
        with pytest.raises(ValueError):
            parse_since(bad, now)


def test_usd_text_is_exact() -> None:
    assert [usd_text(v) for v in (0, 1, 500_000_000, 12_500_000, 10)] == [
        "0", "0.000001", "500", "12.5", "0.00001",
    ]  # fmt: skip
