"""The key directory: who a presented token is, from the in-memory snapshot."""

from __future__ import annotations

import pytest

from skyroute.core.errors import AuthenticationFailed
from skyroute.core.secret import Secret
from skyroute.governance.budget import BudgetSpec
from skyroute.governance.directory import MASTER, KeyDirectory, Team
from skyroute.governance.keys import KeyHasher, KeyRecord, generate_key
from skyroute.governance.limits import LimitSpec

MASTER_KEY = "master-canary-5e1d"
NOW = 1_000.0


def _directory() -> KeyDirectory:
    return KeyDirectory(KeyHasher(Secret("root-secret")), Secret(MASTER_KEY))


def _record(directory: KeyDirectory, key: str, **fields: object) -> KeyRecord:
    values: dict[str, object] = {"id": "k1", "hash": directory.hasher.hash(key)} | fields
    return KeyRecord(**values)  # type: ignore[arg-type]


def test_master_key_is_an_admin_without_team() -> None:
    caller = _directory().resolve(MASTER_KEY.encode(), NOW)
    assert caller.key is MASTER and caller.is_master and caller.team is None


def test_a_key_resolves_with_its_team() -> None:
    directory = _directory()
    key = generate_key()
    team = Team(id="t1", name="research", budget=BudgetSpec(limit_micros=5), limits=LimitSpec())
    directory.replace([_record(directory, key, team_id="t1")], [team])
    caller = directory.resolve(key.encode(), NOW)
    assert caller.key.id == "k1" and caller.team == team and not caller.is_master


@pytest.mark.parametrize(
    "token",
    [
        None,
        b"",
        b"Bearer x",
        b"' OR pg_sleep(8)--",
        b"sk-sr-unknown",
        b"sk-sr-revoked",
        b"sk-sr-expired",
        MASTER_KEY.encode() + b"x",
        b"\xff\xfe",
    ],
)
def test_every_bad_key_fails_the_same_way(token: bytes | None) -> None:
    directory = _directory()
    directory.replace(
        [
            _record(directory, "sk-sr-revoked", id="r", revoked_at=NOW - 1),
            _record(directory, "sk-sr-expired", id="e", expires_at=NOW - 1),
        ],
        [],
    )
    with pytest.raises(AuthenticationFailed) as caught:
        directory.resolve(token, NOW)
    assert caught.value.message == AuthenticationFailed().message


def test_expiry_takes_effect_between_refreshes() -> None:
    directory = _directory()
    key = generate_key()
    directory.put_key(_record(directory, key, expires_at=NOW + 10))
    assert directory.resolve(key.encode(), NOW).key.id == "k1"
    with pytest.raises(AuthenticationFailed):
        directory.resolve(key.encode(), NOW + 10)


def test_put_key_with_a_new_hash_retires_the_old_one() -> None:
    directory = _directory()
    old, new = generate_key(), generate_key()
    directory.put_key(_record(directory, old))
    directory.put_key(_record(directory, new))
    assert directory.resolve(new.encode(), NOW).key.id == "k1"
    with pytest.raises(AuthenticationFailed):
        directory.resolve(old.encode(), NOW)


def test_replace_swaps_the_whole_snapshot() -> None:
    directory = _directory()
    gone, kept = generate_key(), generate_key()
    directory.put_key(_record(directory, gone, id="gone"))
    directory.replace([_record(directory, kept, id="kept")], [])
    assert directory.key("gone") is None and directory.key("kept") is not None
    assert directory.key("master") is MASTER
    with pytest.raises(AuthenticationFailed):
        directory.resolve(gone.encode(), NOW)
