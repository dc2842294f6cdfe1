"""The admin HTTP API under ``/admin/``: teams, virtual keys, usage, runtime facts, and
its own OpenAPI.

Decided, and why:

- One callable answers every request whose raw path is ``/admin`` or starts with
  ``/admin/``. It authenticates first (one 401 body for every bad key), refuses roles with
  no admin actions at all (``key``) with 403, then matches the route. So an unauthenticated
  caller learns nothing about which admin paths exist.
- Routes are matched on the raw path exactly as sent: no normalisation, no percent-decoding,
  no trailing-slash forgiveness. ``/admin/keys/../teams``, ``//admin/keys``, ``%2e%2e`` and
  case variants match nothing and answer 404. The route that is matched is the route that
  is served (reliability S6): ``match`` is the only lookup, and its result is dispatched.
- Path parameters are ``[A-Za-z0-9_-]{1,64}``; anything else is 404, never passed on.
- Authorization per object (role, action and ownership, ``governance.policy.POLICY``) is the
  ``KeyManager``'s: it knows the target's team. This module only turns requests into typed
  calls: bodies decode straight into the route's Struct with ``forbid_unknown_fields``, so
  server-owned fields (``id``, ``key_hash``, ``created_by``, ``revoked_at``) cannot be set
  (mass assignment, S11) and the 400 names the field.
- Answers are the manager's view Structs, which have no hash field; only ``KeyCreated``
  carries a plaintext key, once (S14).
- The route table is declarative and also drives the OpenAPI document (``api.openapi``),
  so the documentation cannot drift from what is served.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar, cast, get_args
from urllib.parse import parse_qs

import msgspec

from skyroute.api.context import RequestContext
from skyroute.api.openapi import Param, openapi_document
from skyroute.api.responses import JSON, base_headers, send_error, send_json
from skyroute.api.runtime import RuntimeSource, RuntimeView
from skyroute.api.surface import OPENAI
from skyroute.core.errors import (
    GatewayError,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    PermissionDenied,
    RouteNotFound,
    ServiceUnavailable,
)
from skyroute.governance.directory import Caller, KeyDirectory
from skyroute.governance.keys import Role
from skyroute.governance.manage import (
    KeyCreate,
    KeyCreated,
    KeyManager,
    KeyPatch,
    KeyView,
    ReportBy,
    TeamCreate,
    TeamPatch,
    TeamView,
    UsageView,
    parse_since,
)
from skyroute.governance.policy import POLICY, can

PREFIX = "/admin"
PARAM = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_QUERY_FIELDS = 10
MAX_OVERLAP_SECONDS = 30 * 24 * 3600.0
DEFAULT_SINCE = "30d"

_USAGE_BY: tuple[str, ...] = get_args(ReportBy)


class RotateIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How long the old key keeps working after a rotation (0 ends it at once)."""

    overlap_seconds: Annotated[float, msgspec.Meta(ge=0, le=MAX_OVERLAP_SECONDS)] = 3600.0


class WhoAmI(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    role: Role
    team_id: str | None


@dataclass(frozen=True, slots=True)
class Call:
    """One matched admin request, decoded: what a route's handler needs."""

    manager: KeyManager
    caller: Caller
    params: Mapping[str, str]
    query: Mapping[str, str]
    body: object
    now: datetime
    runtime: RuntimeSource | None = None


Handler = Callable[[Call], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class AdminRoute:
    """One row of the route table; also one operation of the OpenAPI document."""

    method: str
    template: str
    action: str | None  # the policy action the manager checks; None: any admin role
    request: type[msgspec.Struct] | None
    response: Any  # the type encoded in a success answer
    summary: str
    handler: Handler
    status: int = 200
    query: tuple[Param, ...] = ()
    body_required: bool = True
    segments: tuple[str, ...] = field(init=False)
    params: tuple[Param, ...] = field(init=False)  # path parameters, then query parameters

    def __post_init__(self) -> None:
        segments = tuple(self.template.split("/"))
        in_path = tuple(
            Param(s[1:-1], "Object id.", pattern=PARAM.pattern, location="path")
            for s in segments
            if s.startswith("{")
        )
        object.__setattr__(self, "segments", segments)
        object.__setattr__(self, "params", in_path + self.query)

    def bind(self, parts: Sequence[str]) -> dict[str, str] | None:
        """Path parameters if ``parts`` (the raw path split on ``/``) matches, else None."""
        if len(parts) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for want, got in zip(self.segments, parts, strict=True):
            if want.startswith("{"):
                if not PARAM.fullmatch(got):
                    return None
                params[want[1:-1]] = got
            elif want != got:
                return None
        return params


# --- handlers: one typed call each --------------------------------------------------

_S = TypeVar("_S", bound=msgspec.Struct)


def _body(call: Call, kind: type[_S]) -> _S:
    if not isinstance(call.body, kind):
        raise InternalError()
    return call.body


async def _list_teams(call: Call) -> list[TeamView]:
    return await call.manager.list_teams(call.caller)


async def _create_team(call: Call) -> TeamView:
    return await call.manager.create_team(call.caller, _body(call, TeamCreate))


async def _update_team(call: Call) -> TeamView:
    return await call.manager.update_team(
        call.caller, call.params["team_id"], _body(call, TeamPatch)
    )


async def _list_keys(call: Call) -> list[KeyView]:
    return await call.manager.list_keys(call.caller, team_id=call.query.get("team_id"))


async def _create_key(call: Call) -> KeyCreated:
    return await call.manager.create_key(call.caller, _body(call, KeyCreate))


async def _get_key(call: Call) -> KeyView:
    return await call.manager.get_key(call.caller, call.params["key_id"])


async def _update_key(call: Call) -> KeyView:
    return await call.manager.update_key(call.caller, call.params["key_id"], _body(call, KeyPatch))


async def _revoke_key(call: Call) -> KeyView:
    return await call.manager.revoke_key(call.caller, call.params["key_id"])


async def _rotate_key(call: Call) -> KeyCreated:
    body = call.body if isinstance(call.body, RotateIn) else RotateIn()
    return await call.manager.rotate_key(
        call.caller, call.params["key_id"], overlap_seconds=body.overlap_seconds
    )


async def _usage(call: Call) -> list[UsageView]:
    by = call.query["by"]
    if by not in _USAGE_BY:
        raise InvalidRequest(f"by must be one of: {', '.join(_USAGE_BY)}.", param="by")
    text = call.query.get("since", DEFAULT_SINCE)
    try:
        since = parse_since(text, call.now)
    except ValueError:
        raise InvalidRequest(
            "since must be a duration (30m, 24h, 7d, 2w) or an ISO date.", param="since"
        ) from None
    team_id = call.query.get("team_id")
    return await call.manager.usage(call.caller, cast(ReportBy, by), since, team_id=team_id)


async def _whoami(call: Call) -> WhoAmI:
    key = call.caller.key
    return WhoAmI(id=key.id, role=key.role, team_id=key.team_id)


async def _runtime(call: Call) -> RuntimeView:
    # Process-wide facts, like config: no team owns them, so only ``other`` scope admits.
    if not can(call.caller.key, "config.read", None):
        raise PermissionDenied("not allowed: config.read")
    if call.runtime is None:
        raise ServiceUnavailable("Runtime facts are not available in this gateway.")
    view = call.runtime.read()
    if call.query.get("reset") == "1":
        call.runtime.reset_lag()
    return view


async def _openapi(call: Call) -> msgspec.Raw:
    return msgspec.Raw(_openapi_json())


@functools.cache
def _openapi_json() -> bytes:
    # Built once, from the same table that routes requests.
    return msgspec.json.encode(openapi_document(ROUTES))


_TEAM_ID = Param("team_id", "Only this team's objects.", pattern=PARAM.pattern)
_BY = Param("by", "How to group.", required=True, enum=_USAGE_BY)
_RESET = Param(
    "reset", "1: start a new loop-lag window after this reading.", enum=("0", "1"), pattern="[01]"
)
_SINCE = Param("since", f"How far back: 30m, 24h, 7d, 2w or an ISO date; {DEFAULT_SINCE} unset.")

# method, path, policy action, request Struct, answer type, summary, handler, (options)
ROUTES: tuple[AdminRoute, ...] = (
    AdminRoute("GET", "/admin/teams", "keys.list", None, list[TeamView],
               "List the teams visible to the key", _list_teams),
    AdminRoute("POST", "/admin/teams", "teams.create", TeamCreate, TeamView,
               "Create a team", _create_team, status=201),
    AdminRoute("PATCH", "/admin/teams/{team_id}", "teams.update", TeamPatch, TeamView,
               "Change a team", _update_team),
    AdminRoute("GET", "/admin/keys", "keys.list", None, list[KeyView],
               "List virtual keys", _list_keys, query=(_TEAM_ID,)),
    AdminRoute("POST", "/admin/keys", "keys.create", KeyCreate, KeyCreated,
               "Create a virtual key (its plaintext is shown only in this answer)",
               _create_key, status=201),
    AdminRoute("GET", "/admin/keys/{key_id}", "keys.list", None, KeyView,
               "Show a virtual key", _get_key),
    AdminRoute("PATCH", "/admin/keys/{key_id}", "keys.update", KeyPatch, KeyView,
               "Change a virtual key", _update_key),
    AdminRoute("POST", "/admin/keys/{key_id}/revoke", "keys.revoke", None, KeyView,
               "Revoke a virtual key", _revoke_key),
    AdminRoute("POST", "/admin/keys/{key_id}/rotate", "keys.update", RotateIn, KeyCreated,
               "Replace a key; the old one keeps working for overlap_seconds",
               _rotate_key, status=201, body_required=False),
    AdminRoute("GET", "/admin/usage", "usage.read", None, list[UsageView],
               "Usage and spend, grouped", _usage, query=(_BY, _SINCE, _TEAM_ID)),
    AdminRoute("GET", "/admin/runtime", "config.read", None, RuntimeView,
               "Event-loop lag, memory, open streams, pending usage rows, tasks",
               _runtime, query=(_RESET,)),
    AdminRoute("GET", "/admin/whoami", None, None, WhoAmI,
               "The calling key", _whoami),
    AdminRoute("GET", "/admin/openapi.json", None, None, dict[str, Any],
               "This API's OpenAPI document", _openapi),
)  # fmt: skip


def match(
    method: str, path: str, routes: Sequence[AdminRoute] = ROUTES
) -> tuple[AdminRoute, dict[str, str]]:
    """The route serving ``method`` on the raw ``path``; RouteNotFound or MethodNotAllowed.

    The only route lookup: what it returns is both what is authorized and what is served."""
    parts = path.split("/")
    found = [(route, params) for route in routes if (params := route.bind(parts)) is not None]
    if not found:
        raise RouteNotFound()
    for route, params in found:
        if route.method == method:
            return route, params
    raise MethodNotAllowed()


def parse_query(raw: bytes, route: AdminRoute) -> dict[str, str]:
    """The route's query parameters, each at most once; anything else is a 400."""
    if not raw:
        text = ""
    else:
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidRequest("The query string is not valid.") from None
    try:
        # Blank values are kept (``team_id=``) so they are refused, not silently dropped.
        fields = parse_qs(
            text, keep_blank_values=True, strict_parsing=True, max_num_fields=MAX_QUERY_FIELDS
        )
    except ValueError:
        raise InvalidRequest("The query string is not valid.") from None
    known = {param.name: param for param in route.query}
    values: dict[str, str] = {}
    for name, given in fields.items():
        param = known.get(name)
        if param is None:
            raise InvalidRequest(f"Unknown query parameter {name!r}.", param=name[:64])
        if len(given) != 1:
            raise InvalidRequest(f"Query parameter {name!r} given more than once.", param=name)
        if param.pattern is not None and not re.fullmatch(param.pattern, given[0]):
            raise InvalidRequest(f"Query parameter {name!r} is not valid.", param=name)
        values[name] = given[0]
    for param in route.query:
        if param.required and param.name not in values:
            raise InvalidRequest(f"Query parameter {param.name!r} is required.", param=param.name)
    return values


def decode_body(body: bytes, route: AdminRoute, content_type: bytes | None) -> object:
    """The route's request Struct from the body, or None where the route takes none."""
    if route.request is None:
        return None
    if not body.strip() and not route.body_required:
        return None
    if content_type is not None and not _is_json(content_type):
        raise InvalidRequest("Content-Type must be application/json.")
    try:
        return msgspec.json.decode(body, type=route.request)
    except msgspec.ValidationError as error:
        raise InvalidRequest(f"Invalid request body: {error}") from None
    except msgspec.DecodeError:
        raise InvalidRequest("The request body is not valid JSON.") from None


def _is_json(content_type: bytes) -> bool:
    media = content_type.partition(b";")[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


def is_admin_path(path: str) -> bool:
    """Whether the server should hand a request to ``AdminApi`` (raw path, as sent)."""
    return path == PREFIX or path.startswith(PREFIX + "/")


class AdminApi:
    """``await AdminApi(manager, directory, wall_clock=time.time)(ctx)`` answers one request."""

    def __init__(
        self,
        manager: KeyManager,
        directory: KeyDirectory,
        *,
        wall_clock: Callable[[], float],
        runtime: RuntimeSource | None = None,
    ) -> None:
        self._manager = manager
        self._runtime = runtime
        self._directory = directory
        self._wall_clock = wall_clock
        self._encoder = msgspec.json.Encoder()
        _openapi_json()  # fail at startup, not on the first request, if the table is wrong

    async def __call__(self, ctx: RequestContext) -> None:
        try:
            status, body = await self._answer(ctx)
        except GatewayError as error:
            await send_error(ctx.send, ctx.request_id, error)
            return
        await send_json(ctx.send, status, body, base_headers(ctx.request_id, JSON))

    async def _answer(self, ctx: RequestContext) -> tuple[int, bytes]:
        now = self._wall_clock()
        caller = self._directory.resolve(OPENAI.credential(ctx.headers), now)
        if not POLICY.get(caller.key.role):
            raise PermissionDenied("This key may not use the admin API.")
        route, params = match(ctx.method, ctx.path)
        call = Call(
            manager=self._manager,
            caller=caller,
            params=params,
            query=parse_query(ctx.query, route),
            body=decode_body(ctx.body, route, ctx.header(b"content-type")),
            now=datetime.fromtimestamp(now, UTC),
            runtime=self._runtime,
        )
        result = await route.handler(call)
        return route.status, self._encoder.encode(result)
