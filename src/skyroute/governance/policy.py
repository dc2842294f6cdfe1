"""Who may do what in the admin API, and the rule that nobody grants more than they hold.

Decided, and why:

- The policy is a checked-in table: (role, action) → the ownership scopes allowed. Anything
  not in the table is denied, including unknown actions and roles. The authz-matrix tests
  are generated from ``POLICY`` so the table and the code cannot drift (reliability S10).
- Ownership is ``own`` when the target team is the actor's team, otherwise ``other``; an
  actor without a team (only admins have none) owns nothing, and global objects (config,
  teams themselves) have no team, so only ``other`` admits them.
- ``team_admin`` manages keys and reads usage in its own team but cannot create or change
  teams (that would let it raise its own team's budget) nor read config.
- ``check_grant`` is the mass-assignment guard (S11): a created or updated key must be a
  subset of its creator on every axis (role, team, models, budget, rates, expiry). It
  returns every reason, not the first, so an API error can name them all. Server-owned
  fields (id, hash, created_by, revoked_at) never come from a request body: the admin API
  decodes requests into its own Structs with ``forbid_unknown_fields`` and sets them itself.
- ``check_update`` adds what updates need: the key's own creator still bounds it, the actor
  cannot change its own role, and narrowing a key may not leave one of the keys it created
  with more than it (narrow or revoke those first), so the invariant "every key ⊆ its
  creator" holds after every write, not just at creation.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from skyroute.governance.keys import KeyRecord, Role


class Scope(enum.Enum):
    OWN_TEAM = "own"
    OTHER_TEAM = "other"


ACTIONS = (
    "keys.create",
    "keys.list",
    "keys.revoke",
    "keys.update",
    "teams.create",
    "teams.update",
    "usage.read",
    "config.read",
)

_ALL = frozenset(Scope)
_OWN = frozenset({Scope.OWN_TEAM})

POLICY: Mapping[Role, Mapping[str, frozenset[Scope]]] = {
    Role.ADMIN: dict.fromkeys(ACTIONS, _ALL),
    Role.TEAM_ADMIN: {
        "keys.create": _OWN,
        "keys.list": _OWN,
        "keys.revoke": _OWN,
        "keys.update": _OWN,
        "usage.read": _OWN,
    },
    Role.VIEWER: {"keys.list": _OWN, "usage.read": _OWN},
    Role.KEY: {},
}

# Higher grants more; a key may only grant a role at or below its own.
RANK: Mapping[Role, int] = {Role.KEY: 0, Role.VIEWER: 1, Role.TEAM_ADMIN: 2, Role.ADMIN: 3}


def scope_of(actor: KeyRecord, target_team: str | None) -> Scope:
    if actor.team_id is not None and target_team == actor.team_id:
        return Scope.OWN_TEAM
    return Scope.OTHER_TEAM


def can(actor: KeyRecord, action: str, target_team: str | None) -> bool:
    """Whether ``actor`` may perform ``action`` on an object of ``target_team``.

    The caller has already checked that ``actor`` is active (not revoked, not expired)."""
    allowed = POLICY.get(actor.role, {}).get(action, frozenset())
    return scope_of(actor, target_team) in allowed


def check_grant(creator: KeyRecord, requested: KeyRecord) -> list[str]:
    """Every way ``requested`` exceeds ``creator``; empty when it is a subset."""
    reasons: list[str] = []
    if creator.revoked_at is not None:
        reasons.append("the granting key is revoked")
    if RANK[requested.role] > RANK[creator.role]:
        reasons.append(f"role {requested.role.value!r} is above the creator's")
    if creator.team_id is not None and requested.team_id != creator.team_id:
        reasons.append("team is not the creator's team")
    reasons += _model_reasons(creator, requested)
    reasons += _budget_reasons(creator, requested)
    for name in ("rpm", "tpm", "max_parallel"):
        reasons += _cap_reasons(name, getattr(creator, name), getattr(requested, name))
    if creator.expires_at is not None and (
        requested.expires_at is None or requested.expires_at > creator.expires_at
    ):
        reasons.append("expiry is later than the creator's")
    return reasons


def check_create(actor: KeyRecord, requested: KeyRecord) -> list[str]:
    """Reasons ``actor`` may not create ``requested``: the route, then the subset rule."""
    reasons = (
        [] if can(actor, "keys.create", requested.team_id) else ["not allowed to create keys here"]
    )
    return reasons + check_grant(actor, requested)


def check_update(
    actor: KeyRecord,
    current: KeyRecord,
    requested: KeyRecord,
    *,
    creator: KeyRecord | None,
    children: Iterable[KeyRecord] = (),
) -> list[str]:
    """Reasons an update of ``current`` to ``requested`` by ``actor`` must be refused.

    ``creator`` is the key that created ``current`` (``None`` for the bootstrap admin);
    ``children`` are the keys that ``current`` created."""
    reasons: list[str] = []
    if not can(actor, "keys.update", current.team_id):
        reasons.append("not allowed to update keys of this team")
    if actor.id == current.id and requested.role != current.role:
        reasons.append("a key may not change its own role")
    reasons += check_grant(actor, requested)
    if creator is not None and creator.id != actor.id:
        reasons += [f"{r} (creator)" for r in check_grant(creator, requested)]
    for child in children:
        if check_grant(requested, child):
            reasons.append(f"key {child.id!r} it created would exceed it; narrow that first")
    return reasons


def _model_reasons(creator: KeyRecord, requested: KeyRecord) -> list[str]:
    if not creator.models:
        return []
    if not requested.models:
        return ["all models requested, the creator is limited to some"]
    outside = sorted(set(requested.models) - set(creator.models))
    return [f"models outside the creator's: {', '.join(outside)}"] if outside else []


def _budget_reasons(creator: KeyRecord, requested: KeyRecord) -> list[str]:
    mine, wanted = creator.budget, requested.budget
    if mine is None:
        return []
    if wanted is None:
        return ["no budget requested, the creator has one"]
    reasons = []
    if wanted.period is not mine.period:
        reasons.append("budget period differs from the creator's")
    if wanted.limit_micros > mine.limit_micros:
        reasons.append("budget is larger than the creator's")
    return reasons


def _cap_reasons(name: str, mine: int | None, wanted: int | None) -> list[str]:
    if mine is None:
        return []
    if wanted is None:
        return [f"{name} unlimited, the creator's is {mine}"]
    return [f"{name} {wanted} is above the creator's {mine}"] if wanted > mine else []
