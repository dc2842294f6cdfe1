"""The admin policy table and the subset rule for granted keys."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from skyroute.governance.budget import BudgetSpec, Period
from skyroute.governance.keys import KeyRecord, Role
from skyroute.governance.policy import (
    ACTIONS,
    POLICY,
    Scope,
    can,
    check_create,
    check_grant,
    check_update,
)

ROOT = KeyRecord(id="root", hash="h", team_id=None, role=Role.ADMIN)


def key(role: Role = Role.KEY, team: str | None = "red", **fields: object) -> KeyRecord:
    return KeyRecord(id="k", hash="h", team_id=team, role=role, **fields)  # type: ignore[arg-type]


MATRIX = [
    (role, action, scope)
    for role in Role
    for action in (*ACTIONS, "config.update", "unknown.route")
    for scope in Scope
]


@pytest.mark.parametrize(("role", "action", "scope"), MATRIX)
def test_authz_matrix_matches_the_policy_table(role: Role, action: str, scope: Scope) -> None:
    actor = key(role, team="red")
    target = "red" if scope is Scope.OWN_TEAM else "blue"
    expected = scope in POLICY[role].get(action, frozenset())
    assert can(actor, action, target) is expected


def test_table_denies_by_default_and_team_admins_cannot_touch_teams_or_config() -> None:
    assert POLICY[Role.KEY] == {}
    team_admin = key(Role.TEAM_ADMIN)
    for action in ("teams.create", "teams.update", "config.read"):
        assert not can(team_admin, action, "red")
    assert not can(team_admin, "keys.create", None)
    assert can(ROOT, "config.read", None)


def test_every_escalation_is_reported() -> None:
    creator = key(
        Role.TEAM_ADMIN,
        models=("gpt-4o",),
        budget=BudgetSpec(limit_micros=100, period=Period.MONTH),
        rpm=10,
        tpm=1000,
        max_parallel=2,
        expires_at=1000.0,
    )
    requested = key(Role.ADMIN, team="blue", models=("gpt-4o", "o3"), rpm=11, tpm=None)
    reasons = check_grant(creator, requested)
    for word in (
        "role",
        "team",
        "o3",
        "budget",
        "rpm 11",
        "tpm unlimited",
        "max_parallel",
        "expiry",
    ):
        assert any(word in r for r in reasons), word
    assert check_grant(creator, creator) == []


@pytest.mark.parametrize(
    "requested",
    [
        key(models=()),  # "all models" from a limited creator
        key(budget=BudgetSpec(limit_micros=100, period=Period.DAY)),
        key(budget=BudgetSpec(limit_micros=101, period=Period.MONTH)),
        key(team=None),
        key(expires_at=None),
    ],
)
def test_quiet_escalations(requested: KeyRecord) -> None:
    creator = key(
        Role.TEAM_ADMIN,
        models=("a",),
        budget=BudgetSpec(limit_micros=100, period=Period.MONTH),
        expires_at=10.0,
    )
    fixed = {"models": ("a",), "budget": creator.budget, "expires_at": 10.0}
    assert check_grant(creator, requested)
    assert check_grant(creator, key(**fixed)) == []  # type: ignore[arg-type]


def test_plain_keys_and_viewers_cannot_create_and_nobody_raises_their_own_role() -> None:
    assert check_create(key(Role.KEY), key(Role.KEY))
    assert check_create(key(Role.VIEWER), key(Role.KEY))
    assert check_create(key(Role.TEAM_ADMIN), key(Role.KEY)) == []
    me = key(Role.TEAM_ADMIN)
    promoted = key(Role.ADMIN)
    assert check_update(me, me, promoted, creator=ROOT)


FIELDS = st.fixed_dictionaries(
    {
        "role": st.sampled_from(list(Role)),
        "team": st.sampled_from([None, "red", "blue"]),
        "models": st.sets(st.sampled_from(["a", "b", "c"])).map(lambda s: tuple(sorted(s))),
        "budget": st.none()
        | st.builds(
            lambda n, p: BudgetSpec(limit_micros=n, period=p),
            st.integers(0, 300),
            st.sampled_from([Period.DAY, Period.MONTH]),
        ),
        "rpm": st.none() | st.integers(0, 100),
        "tpm": st.none() | st.integers(0, 100),
        "max_parallel": st.none() | st.integers(0, 5),
        "expires_at": st.none() | st.floats(0, 1000, allow_nan=False),
    }
)


class GrantMachine(RuleBasedStateMachine):
    """S11: random create/update sequences keep every key within its creator."""

    keys = Bundle("keys")

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[str, KeyRecord] = {"root": ROOT}
        self.ids = itertools.count()

    @rule(target=keys)
    def bootstrap(self) -> str:
        return "root"

    @rule(target=keys, actor=keys, fields=FIELDS)
    def create(self, actor: str, fields: dict[str, object]) -> str:
        new_id = f"k{next(self.ids)}"
        requested = self._record(new_id, actor, fields)
        if check_create(self.store[actor], requested):
            return actor  # refused: nothing stored
        self.store[new_id] = requested
        return new_id

    @rule(actor=keys, target_key=keys, fields=FIELDS)
    def update(self, actor: str, target_key: str, fields: dict[str, object]) -> None:
        if target_key == "root":
            return
        current = self.store[target_key]
        requested = self._record(target_key, current.created_by, fields)
        creator = self.store.get(current.created_by or "")
        children = [k for k in self.store.values() if k.created_by == target_key]
        if not check_update(
            self.store[actor], current, requested, creator=creator, children=children
        ):
            self.store[target_key] = requested

    @invariant()
    def every_key_within_its_creator(self) -> None:
        for record in self.store.values():
            if record.created_by is not None:
                assert check_grant(self.store[record.created_by], record) == []

    @staticmethod
    def _record(key_id: str, created_by: str | None, fields: dict[str, object]) -> KeyRecord:
        return KeyRecord(
            id=key_id,
            hash=f"hash-{key_id}",
            team_id=fields["team"],  # type: ignore[arg-type]
            role=fields["role"],  # type: ignore[arg-type]
            models=fields["models"],  # type: ignore[arg-type]
            budget=fields["budget"],  # type: ignore[arg-type]
            rpm=fields["rpm"],  # type: ignore[arg-type]
            tpm=fields["tpm"],  # type: ignore[arg-type]
            max_parallel=fields["max_parallel"],  # type: ignore[arg-type]
            expires_at=fields["expires_at"],  # type: ignore[arg-type]
            created_by=created_by,
        )


GrantMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
TestGrantMachine = GrantMachine.TestCase
