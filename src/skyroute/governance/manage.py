"""Managing teams and virtual keys: the one place admin writes go through.

The HTTP admin API and the ``skyroute keys|teams|usage`` commands both call ``KeyManager``;
neither speaks SQL or decides policy itself.

Decided, and why:

- **Policy first, deny by default.** Every method asks ``policy.can`` before anything else;
  a role with no entry for the action gets ``PermissionDenied`` at once. A non-admin asking
  about a key or team outside its own team gets exactly the ``ObjectNotFound`` a missing id
  gets, so ids of other teams cannot be enumerated (reliability S10).
- **Nobody grants more than they hold** (S11). Creating runs ``check_create``, updating
  ``check_update`` (with the key's creator and the keys it created from the directory),
  rotating ``check_grant`` (the new plaintext must be something the actor could have
  created). A refusal lists every reason, joined by ``"; "``. Request Structs forbid
  unknown fields, and id, hash, creator, team of an existing key and revocation never come
  from a request.
- **A key stays inside its team:** its budget amount and each of rpm, tpm and max_parallel
  may not exceed the team's (``InvalidRequest`` naming the field). Budget amounts are
  compared whatever their periods, which errs on the side of refusing. Narrowing a team
  does not touch its keys: team limits apply to every key of the team at admission anyway.
- **Validation** (``InvalidRequest``): names up to 200 characters (a team's not empty),
  metadata up to 32 entries with keys up to 64 and values up to 512 characters, models a
  non-empty list of up to 256 names of up to 200 characters (``None``: every model), rates
  at least 1, budgets a non-negative decimal with at most 6 places, expiry timezone-aware
  and in the future, and no NUL character in any string (PostgreSQL refuses them).
  Strings are stored verbatim through bound parameters; nothing is ever formatted into SQL.
- **Keys are shown once.** The plaintext exists only in ``KeyCreated.key``; the store keeps
  the keyed hash, the prefix and the last four characters. ``KeyView.display`` is
  ``sk-sr-…abcd``.
- **Ids** are ``key_`` / ``team_`` and 16 hex characters from the injected random source.
- **Money out** is an exact decimal string with trailing zeros dropped: 500 dollars is
  ``"500"``, 12.50 is ``"12.5"``, one micro-dollar ``"0.000001"``.
- **Revocation** is idempotent (revoking a revoked key returns its view) and does not
  cascade: keys that the revoked key created keep working until revoked themselves (but
  they can no longer be updated, since their creator no longer bounds anything).
- **Rotation** creates a new key with the same attributes and the same creator, and moves
  the old key's expiry to now + ``overlap_seconds`` (unless it already expires sooner), so
  both work during the overlap. Keys that the old key created keep it as their creator.
- After every successful write the directory is updated at once (``put_key`` /
  ``put_team``), so this process sees the change before the next refresh.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import get_args

import msgspec
from msgspec import UnsetType
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from skyroute.core.errors import Conflict, InvalidRequest, ObjectNotFound, PermissionDenied
from skyroute.governance import policy
from skyroute.governance.admin_types import (
    ID_BYTES,
    MAX_ID,
    MAX_NAME,
    BudgetIn,
    BudgetView,
    KeyCreate,
    KeyCreated,
    KeyPatch,
    KeyView,
    ReportBy,
    TeamCreate,
    TeamPatch,
    TeamView,
    UsageView,
    budget_spec,
    check_cap,
    check_caps,
    check_key_fields,
    check_metadata,
    check_models,
    check_text,
    key_view,
    parse_since,
    parse_span,
    team_name,
    team_view,
    usage_view,
    usd_text,
)
from skyroute.governance.directory import Caller, KeyDirectory, record_from_row, team_from_row
from skyroute.governance.keys import PREFIX, KeyHasher, KeyRecord, Role, generate_key
from skyroute.store import (
    KeyRow,
    KeyUpdate,
    TeamRow,
    TeamUpdate,
    get_key,
    get_team,
    insert_key,
    insert_team,
    list_keys,
    list_teams,
    revoke_key,
    update_key,
    update_team,
    usage_report,
)

__all__ = [
    "BudgetIn",
    "BudgetView",
    "KeyCreate",
    "KeyCreated",
    "KeyManager",
    "KeyPatch",
    "KeyView",
    "ReportBy",
    "TeamCreate",
    "TeamPatch",
    "TeamView",
    "UsageView",
    "key_view",
    "parse_since",
    "parse_span",
    "team_view",
    "usage_view",
    "usd_text",
]

_CAPS = ("rpm", "tpm", "max_parallel")


class KeyManager:
    """Creates, changes, revokes, rotates and lists teams and keys, and reads usage."""

    def __init__(
        self,
        engine: AsyncEngine,
        hasher: KeyHasher,
        directory: KeyDirectory,
        *,
        wall_clock: Callable[[], float] = time.time,
        rng_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._engine = engine
        self._hasher = hasher
        self._directory = directory
        self._wall_clock = wall_clock
        self._rng_bytes = rng_bytes

    # --- teams -------------------------------------------------------------------

    async def create_team(self, actor: Caller, spec: TeamCreate) -> TeamView:
        _require(actor, "teams.create", None)
        name = team_name(spec.name)
        check_metadata(spec.metadata)
        budget = budget_spec(spec.budget)
        check_caps(spec.rpm, spec.tpm, spec.max_parallel)
        row = TeamRow(
            id=self._new_id("team_"),
            name=name,
            budget_period=None if budget is None else budget.period.value,
            budget_limit_micros=None if budget is None else budget.limit_micros,
            rpm=spec.rpm,
            tpm=spec.tpm,
            max_parallel=spec.max_parallel,
            metadata=dict(spec.metadata),
        )
        try:
            await insert_team(self._engine, row)
        except IntegrityError:
            raise Conflict(f"a team named {name!r} already exists") from None
        stored = await get_team(self._engine, row.id)
        if stored is None:  # pragma: no cover - removed between insert and read
            raise ObjectNotFound(f"no team {row.id!r}")
        self._directory.put_team(team_from_row(stored))
        return team_view(stored)

    async def update_team(self, actor: Caller, team_id: str, patch: TeamPatch) -> TeamView:
        _require(actor, "teams.update", team_id)
        current = await self._team_row(team_id)
        if current is None or not policy.can(actor.key, "teams.update", current.id):
            raise _no_team(team_id)
        fields: dict[str, object] = {}
        if not isinstance(patch.name, UnsetType):
            fields["name"] = team_name(patch.name)
        if not isinstance(patch.metadata, UnsetType):
            check_metadata(patch.metadata)
            fields["metadata"] = dict(patch.metadata)
        if not isinstance(patch.budget, UnsetType):
            budget = budget_spec(patch.budget)
            fields["budget_period"] = None if budget is None else budget.period.value
            fields["budget_limit_micros"] = None if budget is None else budget.limit_micros
        for cap in _CAPS:
            value = getattr(patch, cap)
            if not isinstance(value, UnsetType):
                check_cap(cap, value)
                fields[cap] = value
        try:
            row = await update_team(self._engine, current.id, msgspec.convert(fields, TeamUpdate))
        except IntegrityError:
            raise Conflict(f"a team named {fields.get('name')!r} already exists") from None
        if row is None:
            raise _no_team(team_id)
        self._directory.put_team(team_from_row(row))
        return team_view(row)

    async def list_teams(self, actor: Caller) -> list[TeamView]:
        """Admins see every team; team admins and viewers their own."""
        _require(actor, "keys.list", actor.key.team_id)
        rows = await list_teams(self._engine)
        return [team_view(row) for row in rows if policy.can(actor.key, "keys.list", row.id)]

    # --- keys --------------------------------------------------------------------

    async def create_key(self, actor: Caller, spec: KeyCreate) -> KeyCreated:
        _require_any(actor, "keys.create")
        team_id = spec.team_id
        if team_id is None and actor.key.role is not Role.ADMIN:
            team_id = actor.key.team_id
        if team_id is not None:
            check_text("team_id", team_id, MAX_ID)
        check_key_fields(spec.name, spec.models, spec.metadata)
        check_caps(spec.rpm, spec.tpm, spec.max_parallel)
        budget = budget_spec(spec.budget)
        expires_at = self._expiry(spec.expires_at)
        if team_id is None and spec.role is not Role.ADMIN and actor.key.role is not Role.ADMIN:
            raise InvalidRequest("a key must belong to a team unless an admin creates it")
        requested = KeyRecord(
            id="",
            hash="",
            team_id=team_id,
            name=spec.name,
            models=tuple(spec.models or ()),
            budget=budget,
            rpm=spec.rpm,
            tpm=spec.tpm,
            max_parallel=spec.max_parallel,
            expires_at=None if expires_at is None else expires_at.timestamp(),
            role=spec.role,
            metadata=dict(spec.metadata),
        )
        _refuse(policy.check_create(actor.key, requested))
        await self._check_team_bounds(requested)
        return await self._insert(requested, spec.models, expires_at, created_by=actor.key.id)

    async def update_key(self, actor: Caller, key_id: str, patch: KeyPatch) -> KeyView:
        current = await self._visible_key(actor, "keys.update", key_id)
        if current.revoked_at is not None:
            raise InvalidRequest(f"key {key_id!r} is revoked; create a new one instead")
        fields, requested = self._apply(current, patch)
        creator = self._directory.key(current.created_by) if current.created_by else None
        children = _children(self._directory.all_keys(), current.id)
        _refuse(
            policy.check_update(
                actor.key, record_from_row(current), requested, creator=creator, children=children
            )
        )
        await self._check_team_bounds(requested)
        row = await update_key(self._engine, current.id, msgspec.convert(fields, KeyUpdate))
        if row is None:
            raise _no_key(key_id)
        self._directory.put_key(record_from_row(row))
        return key_view(row)

    async def revoke_key(self, actor: Caller, key_id: str) -> KeyView:
        """Revoke one key (idempotent). Not cascading: keys it created keep working."""
        current = await self._visible_key(actor, "keys.revoke", key_id)
        if current.revoked_at is None:
            await revoke_key(self._engine, current.id, self._now())
        row = await get_key(self._engine, current.id)
        if row is None:  # pragma: no cover - keys are never deleted
            raise _no_key(key_id)
        self._directory.put_key(record_from_row(row))
        return key_view(row)

    async def rotate_key(
        self, actor: Caller, key_id: str, overlap_seconds: float = 3600.0
    ) -> KeyCreated:
        """A new key like ``key_id``; the old one expires after ``overlap_seconds``."""
        if not 0 <= overlap_seconds <= 366 * 86400:
            raise InvalidRequest("overlap_seconds must be between 0 and one year")
        current = await self._visible_key(actor, "keys.update", key_id)
        _require(actor, "keys.create", current.team_id)
        if current.revoked_at is not None:
            raise InvalidRequest(f"key {key_id!r} is revoked; create a new one instead")
        old = record_from_row(current)
        # The new plaintext must be something the actor could have made itself.
        _refuse(policy.check_grant(actor.key, old))
        created = await self._insert(
            old, current.models, current.expires_at, created_by=current.created_by
        )
        end = self._now() + timedelta(seconds=overlap_seconds)
        if current.expires_at is None or end < current.expires_at:
            row = await update_key(self._engine, current.id, KeyUpdate(expires_at=end))
            if row is not None:
                self._directory.put_key(record_from_row(row))
        return created

    async def list_keys(self, actor: Caller, team_id: str | None = None) -> list[KeyView]:
        """Admins: every key, or one team's; others: their own team's keys only."""
        team = await self._visible_team(actor, "keys.list", team_id)
        rows = await list_keys(self._engine, team)
        return [key_view(row) for row in rows if policy.can(actor.key, "keys.list", row.team_id)]

    async def get_key(self, actor: Caller, key_id: str) -> KeyView:
        return key_view(await self._visible_key(actor, "keys.list", key_id))

    # --- usage -------------------------------------------------------------------

    async def usage(
        self, actor: Caller, by: ReportBy, since: datetime, team_id: str | None = None
    ) -> list[UsageView]:
        """Spend and tokens since ``since`` grouped by ``by``; non-admins see their team."""
        if by not in get_args(ReportBy):
            raise InvalidRequest("by must be one of key, team, model, provider")
        if since.tzinfo is None:
            raise InvalidRequest("since must carry a timezone")
        team = await self._visible_team(actor, "usage.read", team_id)
        rows = await usage_report(self._engine, by=by, since=since, team_id=team)
        return [usage_view(row) for row in rows]

    # --- helpers -----------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._wall_clock(), UTC)

    def _new_id(self, prefix: str) -> str:
        raw = self._rng_bytes(ID_BYTES)
        if len(raw) < ID_BYTES:
            raise ValueError("the random source returned too few bytes")
        return prefix + raw[:ID_BYTES].hex()

    def _expiry(self, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidRequest("expires_at must carry a timezone (ISO 8601 with an offset)")
        if value <= self._now():
            raise InvalidRequest("expires_at must be in the future")
        return value.astimezone(UTC)

    async def _team_row(self, team_id: str) -> TeamRow | None:
        if not _plausible_id(team_id):
            return None
        return await get_team(self._engine, team_id)

    async def _visible_key(self, actor: Caller, action: str, key_id: str) -> KeyRow:
        """The key, if ``actor`` may ``action`` it; the same 404 for missing and foreign."""
        _require_any(actor, action)
        row = await get_key(self._engine, key_id) if _plausible_id(key_id) else None
        if row is None or not policy.can(actor.key, action, row.team_id):
            raise _no_key(key_id)
        return row

    async def _visible_team(self, actor: Caller, action: str, team_id: str | None) -> str | None:
        """The team to filter by: ``None`` (all) only for admins, else a visible team."""
        _require_any(actor, action)
        if team_id is None:
            if policy.can(actor.key, action, None):
                return None
            team_id = actor.key.team_id
            if team_id is None:
                raise PermissionDenied(f"not allowed: {action}")
        row = await self._team_row(team_id)
        if row is None or not policy.can(actor.key, action, row.id):
            raise _no_team(team_id)
        return row.id

    async def _check_team_bounds(self, key: KeyRecord) -> None:
        if key.team_id is None:
            return
        row = await self._team_row(key.team_id)
        if row is None:
            raise _no_team(key.team_id)
        team = team_from_row(row)
        if (
            team.budget is not None
            and key.budget is not None
            and key.budget.limit_micros > team.budget.limit_micros
        ):
            raise InvalidRequest("budget exceeds the team's budget", param="budget")
        for cap in _CAPS:
            mine, theirs = getattr(key, cap), getattr(team.limits, cap)
            if mine is not None and theirs is not None and mine > theirs:
                raise InvalidRequest(f"{cap} {mine} exceeds the team's {theirs}", param=cap)

    def _apply(self, current: KeyRow, patch: KeyPatch) -> tuple[dict[str, object], KeyRecord]:
        """The store fields a patch changes, and the record as it would then be."""
        fields: dict[str, object] = {}
        record = record_from_row(current)
        changes: dict[str, object] = {}
        if not isinstance(patch.name, UnsetType):
            check_text("name", patch.name, MAX_NAME)
            fields["name"] = changes["name"] = patch.name
        if not isinstance(patch.role, UnsetType):
            fields["role"] = patch.role.value
            changes["role"] = patch.role
        if not isinstance(patch.models, UnsetType):
            check_models(patch.models)
            fields["models"] = patch.models
            changes["models"] = tuple(patch.models or ())
        if not isinstance(patch.metadata, UnsetType):
            check_metadata(patch.metadata)
            fields["metadata"] = changes["metadata"] = dict(patch.metadata)
        if not isinstance(patch.budget, UnsetType):
            budget = budget_spec(patch.budget)
            changes["budget"] = budget
            fields["budget_period"] = None if budget is None else budget.period.value
            fields["budget_limit_micros"] = None if budget is None else budget.limit_micros
        for cap in _CAPS:
            value = getattr(patch, cap)
            if not isinstance(value, UnsetType):
                check_cap(cap, value)
                fields[cap] = changes[cap] = value
        if not isinstance(patch.expires_at, UnsetType):
            expires_at = self._expiry(patch.expires_at)
            fields["expires_at"] = expires_at
            changes["expires_at"] = None if expires_at is None else expires_at.timestamp()
        return fields, msgspec.structs.replace(record, **changes)

    async def _insert(
        self,
        spec: KeyRecord,
        models: list[str] | None,
        expires_at: datetime | None,
        *,
        created_by: str | None,
    ) -> KeyCreated:
        plaintext = generate_key(self._rng_bytes)
        row = KeyRow(
            id=self._new_id("key_"),
            key_hash=self._hasher.hash(plaintext),
            prefix=PREFIX,
            last4=plaintext[-4:],
            role=spec.role.value,
            name=spec.name,
            team_id=spec.team_id,
            models=None if models is None else list(models),
            budget_period=None if spec.budget is None else spec.budget.period.value,
            budget_limit_micros=None if spec.budget is None else spec.budget.limit_micros,
            rpm=spec.rpm,
            tpm=spec.tpm,
            max_parallel=spec.max_parallel,
            expires_at=expires_at,
            created_by=created_by,
            metadata=dict(spec.metadata),
        )
        try:
            await insert_key(self._engine, row)
        except IntegrityError:
            # An id or hash collision (or the team vanished); never echo the key.
            raise Conflict("the key could not be stored; try again") from None
        stored = await get_key(self._engine, row.id)
        if stored is None:  # pragma: no cover - keys are never deleted
            raise _no_key(row.id)
        self._directory.put_key(record_from_row(stored))
        return KeyCreated(key=plaintext, info=key_view(stored))


# --- views -----------------------------------------------------------------------


def _require(actor: Caller, action: str, team_id: str | None) -> None:
    if not policy.can(actor.key, action, team_id):
        raise PermissionDenied(f"not allowed: {action}")


def _require_any(actor: Caller, action: str) -> None:
    """Deny at once a role that may not ``action`` in any team."""
    if not policy.POLICY.get(actor.key.role, {}).get(action):
        raise PermissionDenied(f"not allowed: {action}")


def _refuse(reasons: list[str]) -> None:
    if reasons:
        raise PermissionDenied("; ".join(reasons))


def _no_key(key_id: str) -> ObjectNotFound:
    return ObjectNotFound(f"no key {_shown(key_id)}")


def _no_team(team_id: str) -> ObjectNotFound:
    return ObjectNotFound(f"no team {_shown(team_id)}")


def _shown(value: str) -> str:
    # Ids come from URLs; keep error messages short and printable.
    return repr(value[:MAX_ID])


def _plausible_id(value: str) -> bool:
    return 0 < len(value) <= MAX_ID and "\x00" not in value


def _children(keys: Iterable[KeyRecord], key_id: str) -> list[KeyRecord]:
    return [k for k in keys if k.created_by == key_id and k.revoked_at is None]
