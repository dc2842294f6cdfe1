"""The admin API's request and answer types, and the checks and conversions around them.

Request Structs forbid unknown fields, so server-owned fields (id, hash, creator,
revocation) can never be set from a body; answers never carry a key hash, and money goes
out as an exact decimal string. ``manage.py`` holds what is decided with them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

import msgspec
from msgspec import UNSET, UnsetType

from skyroute.core.errors import InvalidRequest
from skyroute.governance.budget import BudgetSpec, Period
from skyroute.governance.keys import Role
from skyroute.governance.prices import to_micros
from skyroute.store import KeyRow, ReportRow, TeamRow

ReportBy = Literal["key", "team", "model", "provider"]

MAX_NAME = 200
MAX_METADATA = 32
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
MAX_MODELS = 256
MAX_MODEL = 200
MAX_ID = 64
MAX_CAP = 2**31 - 1  # the rate columns are 32-bit integers
MAX_MICROS = 2**63 - 1
ID_BYTES = 8  # 16 hex characters


class BudgetIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    usd: str
    period: Period = Period.MONTH


class TeamCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    budget: BudgetIn | None = None
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    metadata: dict[str, str] = {}


class TeamPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str | UnsetType = UNSET
    budget: BudgetIn | UnsetType | None = UNSET
    rpm: int | UnsetType | None = UNSET
    tpm: int | UnsetType | None = UNSET
    max_parallel: int | UnsetType | None = UNSET
    metadata: dict[str, str] | UnsetType = UNSET


class KeyCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str = ""
    team_id: str | None = None
    role: Role = Role.KEY
    models: list[str] | None = None
    budget: BudgetIn | None = None
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    expires_at: datetime | None = None
    metadata: dict[str, str] = {}


class KeyPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str | UnsetType = UNSET
    role: Role | UnsetType = UNSET
    models: list[str] | UnsetType | None = UNSET
    budget: BudgetIn | UnsetType | None = UNSET
    rpm: int | UnsetType | None = UNSET
    tpm: int | UnsetType | None = UNSET
    max_parallel: int | UnsetType | None = UNSET
    expires_at: datetime | UnsetType | None = UNSET
    metadata: dict[str, str] | UnsetType = UNSET


class BudgetView(msgspec.Struct, frozen=True, kw_only=True):
    usd: str
    period: Period


class TeamView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    budget: BudgetView | None
    rpm: int | None
    tpm: int | None
    max_parallel: int | None
    metadata: dict[str, str]
    created_at: datetime | None


class KeyView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    display: str
    team_id: str | None
    role: Role
    models: list[str] | None
    budget: BudgetView | None
    rpm: int | None
    tpm: int | None
    max_parallel: int | None
    expires_at: datetime | None
    revoked_at: datetime | None
    created_by: str | None
    created_at: datetime | None
    metadata: dict[str, str]


class KeyCreated(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    info: KeyView


class UsageView(msgspec.Struct, frozen=True, kw_only=True):
    group: str | None
    requests: int
    attempts: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost_usd: str


def usd_text(micros: int) -> str:
    """Micro-dollars as an exact decimal string without trailing zeros (``"12.5"``)."""
    text = format(Decimal(micros).scaleb(-6), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def budget_view(period: str | None, micros: int | None) -> BudgetView | None:
    if period is None or micros is None:
        return None
    return BudgetView(usd=usd_text(micros), period=Period(period))


def team_view(row: TeamRow) -> TeamView:
    return TeamView(
        id=row.id,
        name=row.name,
        budget=budget_view(row.budget_period, row.budget_limit_micros),
        rpm=row.rpm,
        tpm=row.tpm,
        max_parallel=row.max_parallel,
        metadata=dict(row.metadata),
        created_at=row.created_at,
    )


def key_view(row: KeyRow) -> KeyView:
    return KeyView(
        id=row.id,
        name=row.name or "",
        display=row.prefix + "…" + row.last4,
        team_id=row.team_id,
        role=Role(row.role),
        models=None if row.models is None else list(row.models),
        budget=budget_view(row.budget_period, row.budget_limit_micros),
        rpm=row.rpm,
        tpm=row.tpm,
        max_parallel=row.max_parallel,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        created_by=row.created_by,
        created_at=row.created_at,
        metadata=dict(row.metadata),
    )


def usage_view(row: ReportRow) -> UsageView:
    return UsageView(
        group=row.group,
        requests=row.requests,
        attempts=row.attempts,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        cached_tokens=row.cached_tokens,
        cache_write_tokens=row.cache_write_tokens,
        reasoning_tokens=row.reasoning_tokens,
        cost_usd=usd_text(row.cost_micros),
    )


# --- since -----------------------------------------------------------------------

_SPAN = re.compile(r"^\s*(\d{1,6})\s*([mhdw])\s*$")
_UNIT_SECONDS: Mapping[str, int] = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_span(text: str) -> float:
    """``"30m"``, ``"24h"``, ``"7d"``, ``"2w"`` in seconds; ``ValueError`` otherwise."""
    match = _SPAN.match(text)
    if match is None:
        raise ValueError(f"not a duration like 30m, 24h, 7d or 2w: {text!r}")
    return float(int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def parse_since(text: str, now: datetime) -> datetime:
    """``now`` minus a duration (``"7d"``, ``"24h"``, ``"30m"``, ``"2w"``), or an ISO date
    or date-time (UTC when it has no offset); ``ValueError`` otherwise."""
    if _SPAN.match(text):
        return now - timedelta(seconds=parse_span(text))
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a duration (7d, 24h, 30m, 2w) or ISO date: {text!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# --- validation ------------------------------------------------------------------


def check_text(field: str, value: str, limit: int) -> None:
    if "\x00" in value:
        raise InvalidRequest(f"{field} must not contain NUL characters", param=field)
    if len(value) > limit:
        raise InvalidRequest(f"{field} is longer than {limit} characters", param=field)


def team_name(name: str) -> str:
    check_text("name", name, MAX_NAME)
    if not name.strip():
        raise InvalidRequest("name must not be empty", param="name")
    return name


def check_metadata(metadata: Mapping[str, str]) -> None:
    if len(metadata) > MAX_METADATA:
        raise InvalidRequest(f"metadata has more than {MAX_METADATA} entries", param="metadata")
    for key, value in metadata.items():
        check_text("metadata key", key, MAX_METADATA_KEY)
        check_text(f"metadata[{key!r}]", value, MAX_METADATA_VALUE)


def check_models(models: list[str] | None) -> None:
    if models is None:
        return
    if not models:
        raise InvalidRequest("models must not be empty; leave it out for every model")
    if len(models) > MAX_MODELS:
        raise InvalidRequest(f"models has more than {MAX_MODELS} entries", param="models")
    for model in models:
        check_text("models", model, MAX_MODEL)
        if not model:
            raise InvalidRequest("models must not contain an empty name", param="models")


def check_key_fields(name: str, models: list[str] | None, metadata: Mapping[str, str]) -> None:
    check_text("name", name, MAX_NAME)
    check_models(models)
    check_metadata(metadata)


def check_cap(field: str, value: int | None) -> None:
    if value is not None and not 1 <= value <= MAX_CAP:
        raise InvalidRequest(f"{field} must be between 1 and {MAX_CAP}", param=field)


def check_caps(rpm: int | None, tpm: int | None, max_parallel: int | None) -> None:
    check_cap("rpm", rpm)
    check_cap("tpm", tpm)
    check_cap("max_parallel", max_parallel)


def budget_spec(budget: BudgetIn | None) -> BudgetSpec | None:
    if budget is None:
        return None
    check_text("budget.usd", budget.usd, 40)
    try:
        micros = to_micros(budget.usd)
    except ValueError:
        raise InvalidRequest(
            "budget.usd must be a decimal >= 0 with at most 6 places", param="budget"
        ) from None
    if micros > MAX_MICROS:
        raise InvalidRequest("budget.usd is too large", param="budget")
    return BudgetSpec(limit_micros=micros, period=budget.period)
