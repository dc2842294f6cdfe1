"""The admin API's router, request decoding and OpenAPI document, without sockets.

The path-confusion table (reliability S6) runs every admin route through every mutation
an attacker might try; none may be served, and the route the router picks for a real path
is the one whose handler runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

import msgspec
import pytest

from skyroute.api.admin import (
    ROUTES,
    AdminApi,
    AdminRoute,
    RotateIn,
    decode_body,
    is_admin_path,
    match,
    parse_query,
)
from skyroute.api.context import Message, RequestContext
from skyroute.api.openapi import openapi_document
from skyroute.api.runtime import LoopLag, RuntimeView
from skyroute.core.errors import (
    InvalidRequest,
    MethodNotAllowed,
    ObjectNotFound,
    RouteNotFound,
)
from skyroute.core.secret import Secret
from skyroute.governance.directory import Caller, KeyDirectory
from skyroute.governance.keys import PREFIX, KeyHasher, KeyRecord, Role
from skyroute.governance.manage import (
    KeyCreate,
    KeyCreated,
    KeyManager,
    KeyPatch,
    KeyView,
    TeamCreate,
    TeamPatch,
    TeamView,
    UsageView,
)

MASTER = "sk-master-unit-test"
NOW = 1_750_000_000.0
METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS")


def concrete(route: AdminRoute) -> str:
    return route.template.replace("{team_id}", "team_0a1b").replace("{key_id}", "key_0a1b")


def mutations(path: str) -> Iterator[str]:
    """Spellings of ``path`` that a lenient router might serve; ours must not."""
    head, _, last = path.rpartition("/")
    yield path + "/"
    yield "/" + path
    yield path.replace("/admin/", "//admin/")
    yield path.replace("/admin/", "/admin//")
    yield path.upper()
    yield path.replace("admin", "Admin")
    yield path.replace("/admin/", "/admin/./")
    yield path.replace("/admin/", "/admin/x/../")
    yield path.replace("/admin/", "/v1/../admin/")
    yield path.replace("/admin/", "/admin/%2e%2e/admin/")
    yield path.replace("/admin/", "/admin/%2E/")
    yield path.replace("/admin/", "/admin%2F")
    yield path.replace("/admin/", "/%61dmin/")
    yield f"{head}/%{last.encode().hex()[:2]}{last[1:]}"  # first letter percent-encoded
    yield path + ";x=1"
    yield path + "%00"
    yield path + "%20"
    yield path + " "
    yield path + "#"
    yield path + "?"  # a raw path never contains the query
    yield path + "/.."
    yield path + "/."
    yield path.replace("/", "\\")
    yield "/admin" + path  # doubled prefix
    yield path.replace("/admin/", "/admin/v1/")


CASES = [
    pytest.param(route, bad, id=f"{route.method} {route.template} -> {bad!r}")
    for route in ROUTES
    for bad in mutations(concrete(route))
    if bad not in {concrete(r) for r in ROUTES}
]


# --- the router -------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.template}")
def test_each_route_matches_its_own_path_and_method(route: AdminRoute) -> None:
    found, params = match(route.method, concrete(route))
    assert found is route
    assert set(params) == {p.name for p in route.params if p.location == "path"}


@pytest.mark.parametrize(("route", "bad"), CASES)
def test_path_mutations_match_no_route_for_any_method(route: AdminRoute, bad: str) -> None:
    for method in METHODS:
        with pytest.raises(RouteNotFound):
            match(method, bad)


@pytest.mark.parametrize(
    "param",
    ["", "a" * 65, "key.1", "key%2F1", "..", ".", "key 1", "kéy", "key\x00", "key;1", "*"],
)
def test_path_parameters_outside_the_id_alphabet_are_not_found(param: str) -> None:
    for route in ROUTES:
        if "{" in route.template:
            path = route.template.replace("{team_id}", param).replace("{key_id}", param)
            with pytest.raises(RouteNotFound):
                match(route.method, path)


def test_a_known_path_with_another_method_is_405() -> None:
    with pytest.raises(MethodNotAllowed):
        match("DELETE", "/admin/keys/key_1")
    with pytest.raises(MethodNotAllowed):
        match("PUT", "/admin/teams")


def test_every_route_in_the_table_is_distinct() -> None:
    assert len({(r.method, r.template) for r in ROUTES}) == len(ROUTES)


@pytest.mark.parametrize(
    ("path", "admin"),
    [
        ("/admin", True),
        ("/admin/", True),
        ("/admin/keys", True),
        ("/administrator", False),
        ("/v1/admin/keys", False),
        ("//admin/keys", False),
    ],
)
def test_which_paths_belong_to_the_admin_api(path: str, admin: bool) -> None:
    assert is_admin_path(path) is admin


# --- query strings and bodies -------------------------------------------------------


def route_of(method: str, template: str) -> AdminRoute:
    return next(r for r in ROUTES if r.method == method and r.template == template)


USAGE = route_of("GET", "/admin/usage")
KEYS = route_of("GET", "/admin/keys")


def test_query_parameters_are_read_once_each() -> None:
    assert parse_query(b"by=team&since=7d&team_id=team_1", USAGE) == {
        "by": "team",
        "since": "7d",
        "team_id": "team_1",
    }
    assert parse_query(b"", KEYS) == {}


@pytest.mark.parametrize(
    ("query", "route"),
    [
        (b"by=key&by=team", USAGE),  # duplicate
        (b"since=7d", USAGE),  # required missing
        (b"by=key&extra=1", USAGE),  # unknown
        (b"team_id=../x", KEYS),  # not an id
        (b"team_id=", KEYS),  # blank: refused, not dropped
        (b"team_id", KEYS),  # no '='
        (b"&".join(b"a%d=1" % i for i in range(11)), KEYS),  # too many fields
        (b"team_id=\xff", KEYS),  # not ASCII
        (b"role=admin", KEYS),
    ],
)
def test_bad_query_strings_are_400(query: bytes, route: AdminRoute) -> None:
    with pytest.raises(InvalidRequest):
        parse_query(query, route)


KEY_CREATE = route_of("POST", "/admin/keys")
ROTATE = route_of("POST", "/admin/keys/{key_id}/rotate")


@pytest.mark.parametrize("field", ["id", "key_hash", "hash", "created_by", "revoked_at"])
def test_server_owned_fields_in_a_body_are_400_naming_the_field(field: str) -> None:
    body = json.dumps({"name": "x", field: "evil"}).encode()
    with pytest.raises(InvalidRequest) as raised:
        decode_body(body, KEY_CREATE, b"application/json")
    assert field in raised.value.message


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", b"application/json"),
        (b"{", b"application/json"),
        (b"[]", b"application/json"),
        (b'{"name": 1}', b"application/json"),
        (b'{"role": "superuser"}', b"application/json"),
        (b"{}", b"text/plain"),
        (b"[" * 100_000, None),
        (b'{"rpm": 1' + b"0" * 5000 + b"}", None),
    ],
)
def test_bad_bodies_are_400(body: bytes, content_type: bytes | None) -> None:
    with pytest.raises(InvalidRequest):
        decode_body(body, KEY_CREATE, content_type)


def test_a_rotation_body_is_optional_and_bounded() -> None:
    assert decode_body(b"", ROTATE, None) is None
    assert decode_body(b'{"overlap_seconds": 0}', ROTATE, None) == RotateIn(overlap_seconds=0)
    for bad in (b'{"overlap_seconds": -1}', b'{"overlap_seconds": 2592001}', b'{"x": 1}'):
        with pytest.raises(InvalidRequest):
            decode_body(bad, ROTATE, None)


def test_a_route_without_a_request_struct_ignores_the_body() -> None:
    assert decode_body(b'{"team_id": "x"}', KEYS, None) is None


# --- AdminApi end to end, with a recording manager ----------------------------------


class RecordingManager:
    """Stands in for ``KeyManager``: remembers each call, answers canned views."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def _team(self) -> TeamView:
        return TeamView(
            id="team_0a1b",
            name="a",
            budget=None,
            rpm=None,
            tpm=None,
            max_parallel=None,
            metadata={},
            created_at=None,
        )

    def _key(self) -> KeyView:
        return KeyView(
            id="key_0a1b",
            name="k",
            display=PREFIX + "…abcd",
            team_id="team_0a1b",
            role=Role.KEY,
            models=None,
            budget=None,
            rpm=None,
            tpm=None,
            max_parallel=None,
            expires_at=None,
            revoked_at=None,
            created_by="master",
            created_at=None,
            metadata={},
        )

    async def list_teams(self, actor: Caller) -> list[TeamView]:
        self.calls.append(("list_teams", ()))
        return [self._team()]

    async def create_team(self, actor: Caller, spec: TeamCreate) -> TeamView:
        self.calls.append(("create_team", (spec,)))
        return self._team()

    async def update_team(self, actor: Caller, team_id: str, patch: TeamPatch) -> TeamView:
        self.calls.append(("update_team", (team_id, patch)))
        return self._team()

    async def list_keys(self, actor: Caller, team_id: str | None = None) -> list[KeyView]:
        self.calls.append(("list_keys", (team_id,)))
        return [self._key()]

    async def create_key(self, actor: Caller, spec: KeyCreate) -> KeyCreated:
        self.calls.append(("create_key", (spec,)))
        return KeyCreated(key=PREFIX + "new", info=self._key())

    async def get_key(self, actor: Caller, key_id: str) -> KeyView:
        self.calls.append(("get_key", (key_id,)))
        if key_id == "key_missing":
            raise ObjectNotFound("no key 'key_missing'")
        return self._key()

    async def update_key(self, actor: Caller, key_id: str, patch: KeyPatch) -> KeyView:
        self.calls.append(("update_key", (key_id, patch)))
        return self._key()

    async def revoke_key(self, actor: Caller, key_id: str) -> KeyView:
        self.calls.append(("revoke_key", (key_id,)))
        return self._key()

    async def rotate_key(
        self, actor: Caller, key_id: str, overlap_seconds: float = 3600.0
    ) -> KeyCreated:
        self.calls.append(("rotate_key", (key_id, overlap_seconds)))
        return KeyCreated(key=PREFIX + "rotated", info=self._key())

    async def usage(
        self, actor: Caller, by: str, since: datetime, team_id: str | None = None
    ) -> list[UsageView]:
        self.calls.append(("usage", (by, since, team_id)))
        return []


# The manager method each route must reach: the differential check that the route the
# router picked is the route that was served.
SERVED_BY = {
    ("GET", "/admin/teams"): "list_teams",
    ("POST", "/admin/teams"): "create_team",
    ("PATCH", "/admin/teams/{team_id}"): "update_team",
    ("GET", "/admin/keys"): "list_keys",
    ("POST", "/admin/keys"): "create_key",
    ("GET", "/admin/keys/{key_id}"): "get_key",
    ("PATCH", "/admin/keys/{key_id}"): "update_key",
    ("POST", "/admin/keys/{key_id}/revoke"): "revoke_key",
    ("POST", "/admin/keys/{key_id}/rotate"): "rotate_key",
    ("GET", "/admin/usage"): "usage",
    ("GET", "/admin/runtime"): None,
    ("GET", "/admin/whoami"): None,
    ("GET", "/admin/openapi.json"): None,
}
BODIES = {
    ("POST", "/admin/teams"): b'{"name": "a"}',
    ("PATCH", "/admin/teams/{team_id}"): b'{"rpm": 5}',
    ("POST", "/admin/keys"): b'{"name": "k", "team_id": "team_0a1b"}',
    ("PATCH", "/admin/keys/{key_id}"): b'{"name": "k2"}',
}
QUERIES = {("GET", "/admin/usage"): b"by=model&since=7d"}

ROLE_KEYS = {role: f"{PREFIX}{role.value}-unit-key-000000000000000000" for role in Role}


class FakeRuntime:
    """Stands in for the gateway's ``RuntimeSource``: a fixed view, counting resets."""

    def __init__(self) -> None:
        self.resets = 0

    def read(self) -> RuntimeView:
        lag = LoopLag(max=1.5, p50=0.5, p99=1.0, p999=1.5, stalls_over_20ms=0, samples=100)
        return RuntimeView(
            loop_lag_ms=lag,
            rss_kib=1,
            open_streams=2,
            outbox_pending=3,
            tasks=4,
            in_flight=5,
            shed=6,
        )

    def reset_lag(self) -> None:
        self.resets += 1


class Harness:
    def __init__(self) -> None:
        hasher = KeyHasher(Secret("unit root secret"))
        self.directory = KeyDirectory(hasher, Secret(MASTER))
        records = [
            KeyRecord(
                id=f"key_{role.value}",
                hash=hasher.hash(token),
                role=role,
                team_id=None if role is Role.ADMIN else "team_0a1b",
            )
            for role, token in ROLE_KEYS.items()
        ]
        records.append(
            KeyRecord(id="key_revoked", hash=hasher.hash(PREFIX + "revoked"), revoked_at=1.0)
        )
        self.directory.replace(records, [])
        self.manager = RecordingManager()
        self.runtime = FakeRuntime()
        self.api = AdminApi(
            cast(KeyManager, self.manager),
            self.directory,
            wall_clock=lambda: NOW,
            runtime=self.runtime,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = MASTER,
        body: bytes = b"",
        query: bytes = b"",
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> tuple[int, Any, bytes]:
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        all_headers = list(headers or [])
        if token is not None:
            all_headers.append((b"authorization", b"Bearer " + token.encode()))
        ctx = RequestContext(
            method=method,
            path=path,
            headers=all_headers,
            body=body,
            request_id="req-1",
            send=send,
            query=query,
        )
        await self.api(ctx)
        assert sent[0]["type"] == "http.response.start"
        raw = sent[1]["body"]
        return sent[0]["status"], json.loads(raw), raw


@pytest.fixture
def harness() -> Harness:
    return Harness()


def test_the_table_of_served_methods_covers_every_route() -> None:
    assert set(SERVED_BY) == {(r.method, r.template) for r in ROUTES}


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.template}")
async def test_each_route_reaches_its_own_manager_method(
    harness: Harness, route: AdminRoute
) -> None:
    key = (route.method, route.template)
    status, _, _ = await harness.request(
        route.method, concrete(route), body=BODIES.get(key, b""), query=QUERIES.get(key, b"")
    )
    assert status == route.status
    expected = SERVED_BY[key]
    assert [name for name, _ in harness.manager.calls] == ([expected] if expected else [])


@pytest.mark.parametrize(("route", "bad"), CASES)
async def test_mutated_paths_are_401_without_a_key_and_404_with_one(
    harness: Harness, route: AdminRoute, bad: str
) -> None:
    status, _, _ = await harness.request(route.method, bad, token=None)
    assert status == 401
    status, body, _ = await harness.request(route.method, bad)
    assert status == 404
    assert body["error"]["code"] == "not_found"
    assert harness.manager.calls == []


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.template}")
async def test_a_plain_key_is_403_on_every_admin_route(harness: Harness, route: AdminRoute) -> None:
    status, body, _ = await harness.request(
        route.method, concrete(route), token=ROLE_KEYS[Role.KEY]
    )
    assert status == 403
    assert body["error"]["type"] == "permission_error"
    assert harness.manager.calls == []


@pytest.mark.parametrize(
    "token",
    [None, "", "garbage", PREFIX + "unknown", PREFIX + "revoked", "' OR 1=1--", MASTER + "x"],
)
async def test_every_bad_key_gets_the_same_401(harness: Harness, token: str | None) -> None:
    answers = set()
    for route in ROUTES:
        status, _, raw = await harness.request(route.method, concrete(route), token=token)
        assert status == 401
        answers.add(raw)
    _, _, raw = await harness.request("GET", "/admin/nope", token=token)
    answers.add(raw)
    assert len(answers) == 1
    assert harness.manager.calls == []


@pytest.mark.parametrize("role", [Role.ADMIN, Role.TEAM_ADMIN, Role.VIEWER])
async def test_whoami_names_the_calling_key(harness: Harness, role: Role) -> None:
    status, body, _ = await harness.request("GET", "/admin/whoami", token=ROLE_KEYS[role])
    assert status == 200
    assert body == {
        "id": f"key_{role.value}",
        "role": role.value,
        "team_id": None if role is Role.ADMIN else "team_0a1b",
    }


async def test_the_master_key_is_the_master_admin(harness: Harness) -> None:
    _, body, _ = await harness.request("GET", "/admin/whoami")
    assert body == {"id": "master", "role": "admin", "team_id": None}


async def test_manager_errors_come_back_in_openai_shape(harness: Harness) -> None:
    status, body, _ = await harness.request("GET", "/admin/keys/key_missing")
    assert status == 404
    assert set(body["error"]) == {"message", "type", "param", "code"}


async def test_unknown_fields_never_reach_the_manager(harness: Harness) -> None:
    status, body, _ = await harness.request(
        "POST", "/admin/keys", body=b'{"name": "k", "key_hash": "00"}'
    )
    assert status == 400
    assert "key_hash" in body["error"]["message"]
    assert harness.manager.calls == []


async def test_rotation_without_a_body_uses_the_default_overlap(harness: Harness) -> None:
    status, _, _ = await harness.request("POST", "/admin/keys/key_0a1b/rotate")
    assert status == 201
    assert harness.manager.calls == [("rotate_key", ("key_0a1b", 3600.0))]


async def test_usage_passes_a_timezone_aware_since(harness: Harness) -> None:
    await harness.request("GET", "/admin/usage", query=b"by=provider&since=2d&team_id=team_1")
    [(_, (by, since, team_id))] = harness.manager.calls
    assert (by, team_id) == ("provider", "team_1")
    assert since == datetime.fromtimestamp(NOW - 2 * 86400, UTC)


@pytest.mark.parametrize("query", [b"by=user", b"by=key&since=yesterday", b"by=key&since=-1d"])
async def test_bad_usage_queries_are_400(harness: Harness, query: bytes) -> None:
    status, _, _ = await harness.request("GET", "/admin/usage", query=query)
    assert status == 400
    assert harness.manager.calls == []


async def test_runtime_answers_the_sources_view(harness: Harness) -> None:
    status, body, _ = await harness.request("GET", "/admin/runtime")
    assert status == 200
    assert body == msgspec.to_builtins(harness.runtime.read())
    assert harness.runtime.resets == 0


async def test_runtime_resets_the_lag_window_after_reading_when_asked(harness: Harness) -> None:
    status, _, _ = await harness.request("GET", "/admin/runtime", query=b"reset=1")
    assert status == 200
    assert harness.runtime.resets == 1
    status, _, _ = await harness.request("GET", "/admin/runtime", query=b"reset=0")
    assert harness.runtime.resets == 1
    status, _, _ = await harness.request("GET", "/admin/runtime", query=b"reset=yes")
    assert status == 400


@pytest.mark.parametrize("role", [Role.TEAM_ADMIN, Role.VIEWER])
async def test_runtime_is_for_admins_only(harness: Harness, role: Role) -> None:
    status, body, _ = await harness.request("GET", "/admin/runtime", token=ROLE_KEYS[role])
    assert status == 403
    assert body["error"]["type"] == "permission_error"
    assert harness.runtime.resets == 0


async def test_runtime_without_a_source_is_503() -> None:
    harness = Harness()
    harness.api = AdminApi(
        cast(KeyManager, harness.manager), harness.directory, wall_clock=lambda: NOW
    )
    status, _, _ = await harness.request("GET", "/admin/runtime")
    assert status == 503


# --- the OpenAPI document -----------------------------------------------------------


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document(ROUTES)


def test_the_document_is_openapi_3_1_with_bearer_security(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["security"] == [{"bearer": []}]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.template}")
def test_every_route_is_in_the_document(document: dict[str, Any], route: AdminRoute) -> None:
    operation = document["paths"][route.template][route.method.lower()]
    assert operation["summary"] == route.summary
    assert operation["x-skyroute-action"] == route.action
    assert str(route.status) in operation["responses"]
    assert "401" in operation["responses"]
    assert ("requestBody" in operation) is (route.request is not None)
    names = {(p["name"], p["in"]) for p in operation.get("parameters", [])}
    assert names == {(p.name, p.location) for p in route.params}


def test_the_document_has_no_operation_the_table_lacks(document: dict[str, Any]) -> None:
    documented = {
        (method.upper(), path) for path, ops in document["paths"].items() for method in ops
    }
    assert documented == {(r.method, r.template) for r in ROUTES}
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_every_ref_resolves(document: dict[str, Any]) -> None:
    found = list(refs(document))
    assert found
    for ref in found:
        assert resolve(document, ref) is not None


def test_no_schema_exposes_a_hash_and_policy_actions_are_real(document: dict[str, Any]) -> None:
    from skyroute.governance.policy import ACTIONS

    text = json.dumps(document["components"]["schemas"])
    assert "hash" not in text
    for route in ROUTES:
        assert route.action is None or route.action in ACTIONS


def test_error_schema_is_openai_shaped(document: dict[str, Any]) -> None:
    schema = resolve(
        document,
        document["components"]["responses"]["401"]["content"]["application/json"]["schema"]["$ref"],
    )
    detail = resolve(document, schema["properties"]["error"]["$ref"])
    assert set(detail["properties"]) == {"message", "type", "param", "code"}


async def test_the_served_document_is_the_generated_one(
    harness: Harness, document: dict[str, Any]
) -> None:
    status, body, _ = await harness.request("GET", "/admin/openapi.json")
    assert status == 200
    assert body == msgspec.json.decode(msgspec.json.encode(document))
    status, _, _ = await harness.request("GET", "/admin/openapi.json", token=None)
    assert status == 401
