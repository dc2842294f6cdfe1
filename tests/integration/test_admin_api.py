"""The admin API on a real gateway on loopback, with its SQLite store, driven by httpx.

The authorization matrix is generated from ``governance.policy.POLICY`` (reliability S10):
for every role, every admin route and both ownerships of the target (the caller's own team
A, another team B), the expected outcome is computed with ``policy.can`` and compared with
what the server answers. Mass assignment (S11), uniform 401s (S9) and a secret canary
(S14) follow.
"""

from __future__ import annotations

import copy
import itertools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from skyroute.api.admin import ROUTES
from skyroute.core.config import parse_config
from skyroute.emulators.runner import EmulatorThread
from skyroute.governance import policy
from skyroute.governance.keys import KeyRecord, Role
from skyroute.server.embedded import GatewayThread
from tests.integration.conftest import MASTER_KEY, base_document

ADMIN_ROLES = (Role.ADMIN, Role.TEAM_ADMIN, Role.VIEWER)


@dataclass
class World:
    """A running gateway with teams A and B and one key of each role."""

    gateway: GatewayThread
    data_dir: Path
    team_a: str
    team_b: str
    tokens: dict[Role, str]  # plaintext key per role
    records: dict[Role, KeyRecord]  # what policy.can needs: role and team

    def client(self, token: str | None = MASTER_KEY) -> httpx.Client:
        headers = {} if token is None else {"authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.gateway.url, headers=headers, timeout=10)

    def master(self) -> httpx.Client:
        return self.client(MASTER_KEY)


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def world(
    azure: EmulatorThread, local: EmulatorThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("admin-store")
    document = copy.deepcopy(base_document(azure.base_url, local.base_url))
    document["store"] = {"data_dir": str(data_dir)}
    with GatewayThread(parse_config(document, {})) as gateway:
        world = World(gateway, data_dir, "", "", {}, {})
        with world.master() as master:
            budget = {"usd": "100", "period": "month"}
            world.team_a = created(
                master.post("/admin/teams", json={"name": "A", "budget": budget, "rpm": 100})
            )["id"]
            world.team_b = created(master.post("/admin/teams", json={"name": "B"}))["id"]
            for role in Role:
                team = None if role is Role.ADMIN else world.team_a
                answer = created(
                    master.post(
                        "/admin/keys",
                        json={"name": f"{role.value} key", "team_id": team, "role": role.value},
                    )
                )
                world.tokens[role] = answer["key"]
                world.records[role] = KeyRecord(
                    id=answer["info"]["id"], hash="", role=role, team_id=team
                )
        yield world


# --- the matrix, generated from POLICY ------------------------------------------------


@dataclass(frozen=True)
class Case:
    """How to exercise one route against a target in ``team``."""

    method: str
    template: str
    action: str | None  # None: any admin role
    targeted: bool  # False: the route has no target team; run once
    hides: bool  # a target outside the caller's reach is 404, not 403 (no enumeration)
    request: Callable[[World, httpx.Client, str], httpx.Response]


def _target_key(world: World, team: str) -> str:
    with world.master() as master:
        answer = created(master.post("/admin/keys", json={"name": "target", "team_id": team}))
    key_id: str = answer["info"]["id"]
    return key_id


_NAMES = itertools.count()

CASES: tuple[Case, ...] = (
    Case("GET", "/admin/teams", "keys.list", False, False, lambda w, c, t: c.get("/admin/teams")),
    Case(
        "POST",
        "/admin/teams",
        "teams.create",
        False,
        False,
        lambda w, c, t: c.post("/admin/teams", json={"name": f"made-{next(_NAMES)}"}),
    ),
    Case(
        "PATCH",
        "/admin/teams/{team_id}",
        "teams.update",
        True,
        False,
        lambda w, c, t: c.patch(f"/admin/teams/{t}", json={"metadata": {"touched": "yes"}}),
    ),
    Case(
        "GET",
        "/admin/keys",
        "keys.list",
        True,
        True,
        lambda w, c, t: c.get("/admin/keys", params={"team_id": t}),
    ),
    Case(
        "POST",
        "/admin/keys",
        "keys.create",
        True,
        False,
        lambda w, c, t: c.post("/admin/keys", json={"name": "made", "team_id": t}),
    ),
    Case(
        "GET",
        "/admin/keys/{key_id}",
        "keys.list",
        True,
        True,
        lambda w, c, t: c.get(f"/admin/keys/{_target_key(w, t)}"),
    ),
    Case(
        "PATCH",
        "/admin/keys/{key_id}",
        "keys.update",
        True,
        True,
        lambda w, c, t: c.patch(f"/admin/keys/{_target_key(w, t)}", json={"name": "renamed"}),
    ),
    Case(
        "POST",
        "/admin/keys/{key_id}/revoke",
        "keys.revoke",
        True,
        True,
        lambda w, c, t: c.post(f"/admin/keys/{_target_key(w, t)}/revoke"),
    ),
    Case(
        "POST",
        "/admin/keys/{key_id}/rotate",
        "keys.update",
        True,
        True,
        lambda w, c, t: c.post(
            f"/admin/keys/{_target_key(w, t)}/rotate", json={"overlap_seconds": 60}
        ),
    ),
    Case(
        "GET",
        "/admin/usage",
        "usage.read",
        True,
        True,
        lambda w, c, t: c.get("/admin/usage", params={"by": "model", "since": "7d", "team_id": t}),
    ),
    Case(
        "GET",
        "/admin/runtime",
        "config.read",
        False,
        False,
        lambda w, c, t: c.get("/admin/runtime"),
    ),
    Case("GET", "/admin/whoami", None, False, False, lambda w, c, t: c.get("/admin/whoami")),
    Case(
        "GET",
        "/admin/openapi.json",
        None,
        False,
        False,
        lambda w, c, t: c.get("/admin/openapi.json"),
    ),
)

# Rotation creates a key too; the manager checks both actions.
EXTRA_ACTIONS = {("POST", "/admin/keys/{key_id}/rotate"): ("keys.create",)}


def test_the_matrix_covers_every_admin_route() -> None:
    assert {(c.method, c.template) for c in CASES} == {(r.method, r.template) for r in ROUTES}
    table = {(r.method, r.template): r.action for r in ROUTES}
    for case in CASES:
        assert case.action == table[(case.method, case.template)]


def expected_status(world: World, role: Role, case: Case, team: str | None) -> int:
    """What POLICY says the server must answer; 0 stands for the route's success status."""
    actor = world.records[role]
    granted = policy.POLICY.get(role, {})
    if not granted:
        return 403  # no admin action at all: refused before routing
    if case.action is None:
        return 0
    target = team if case.targeted else (None if case.method == "POST" else actor.team_id)
    actions = (case.action, *EXTRA_ACTIONS.get((case.method, case.template), ()))
    if all(policy.can(actor, action, target) for action in actions):
        return 0
    return 404 if case.hides and case.action in granted else 403


MATRIX = [
    pytest.param(
        role, case, ownership, id=f"{role.value}-{case.method}-{case.template}-{ownership}"
    )
    for role in Role
    for case in CASES
    for ownership in (("own", "other") if case.targeted else ("-",))
]


@pytest.mark.parametrize(("role", "case", "ownership"), MATRIX)
def test_authorization_matrix(world: World, role: Role, case: Case, ownership: str) -> None:
    team = world.team_b if ownership == "other" else world.team_a
    want = expected_status(world, role, case, team)
    success = next(
        r.status for r in ROUTES if (r.method, r.template) == (case.method, case.template)
    )
    with world.client(world.tokens[role]) as client:
        response = case.request(world, client, team)
    assert response.status_code == (want or success), (want, response.text)
    if want:
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize("role", [Role.TEAM_ADMIN, Role.VIEWER])
def test_team_scoped_roles_list_only_their_own_team(world: World, role: Role) -> None:
    with world.client(world.tokens[role]) as client:
        teams = client.get("/admin/teams").json()
        keys = client.get("/admin/keys").json()
    assert {t["id"] for t in teams} == {world.team_a}
    assert keys
    assert {k["team_id"] for k in keys} == {world.team_a}


# --- runtime facts --------------------------------------------------------------------


def test_runtime_reports_loop_lag_memory_streams_outbox_and_tasks(world: World) -> None:
    with world.master() as master:
        response = master.get("/admin/runtime")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "loop_lag_ms",
        "rss_kib",
        "open_streams",
        "outbox_pending",
        "tasks",
        "in_flight",
        "shed",
        "pid",
        "worker",
    }
    assert (body["pid"], body["worker"]) == (os.getpid(), 0)  # the embedded gateway, alone
    lag = body["loop_lag_ms"]
    assert set(lag) == {"max", "p50", "p99", "p999", "stalls_over_20ms", "samples"}
    assert lag["samples"] > 0
    assert 0 <= lag["p50"] <= lag["p99"] <= lag["p999"] <= lag["max"]
    assert body["open_streams"] == 0
    assert (body["in_flight"], body["shed"]) == (0, 0)
    assert body["outbox_pending"] >= 0
    assert body["tasks"] >= 2  # at least the loop monitor and the key refresh
    assert body["rss_kib"] is None or body["rss_kib"] > 1024


def test_runtime_reset_starts_a_new_lag_window(world: World) -> None:
    with world.master() as master:
        assert master.get("/admin/runtime", params={"reset": "1"}).status_code == 200
        time.sleep(0.2)
        lag = master.get("/admin/runtime").json()["loop_lag_ms"]
    # About 20 wake-ups of 10 ms in 0.2 s; far fewer than everything since start-up.
    assert 3 <= lag["samples"] <= 60, lag
    assert lag["max"] < 2000


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("plain", 403)])
def test_runtime_needs_an_admin_key(world: World, token: str | None, status: int) -> None:
    with world.client(None if token is None else world.tokens[Role.KEY]) as client:
        response = client.get("/admin/runtime")
    assert response.status_code == status, response.text
    assert "loop_lag_ms" not in response.text


# --- mass assignment ------------------------------------------------------------------


def _all_keys(world: World) -> list[dict[str, Any]]:
    with world.master() as master:
        response = master.get("/admin/keys")
    assert response.status_code == 200
    keys: list[dict[str, Any]] = response.json()
    return keys


@pytest.mark.parametrize(
    "body",
    [
        {"name": "up", "role": "admin"},
        {"name": "up", "role": "team_admin", "team_id": "FOREIGN"},
        {"name": "up", "team_id": "FOREIGN"},
        {"name": "up", "budget": {"usd": "1000", "period": "month"}},
        {"name": "up", "rpm": 1_000_000},
        {"name": "up", "key_hash": "0" * 64},
        {"name": "up", "hash": "0" * 64},
        {"name": "up", "id": "key_chosen"},
        {"name": "up", "created_by": "master"},
        {"name": "up", "revoked_at": None},
    ],
    ids=lambda b: ",".join(sorted(set(b) - {"name"})) + ("-" + str(b.get("role", ""))),
)
def test_a_team_admin_cannot_create_more_than_it_holds(world: World, body: dict[str, Any]) -> None:
    if body.get("team_id") == "FOREIGN":
        body = {**body, "team_id": world.team_b}
    before = _all_keys(world)
    with world.client(world.tokens[Role.TEAM_ADMIN]) as client:
        response = client.post("/admin/keys", json=body)
    assert response.status_code in (400, 403), response.text
    assert "key" not in response.json()
    assert _all_keys(world) == before  # nothing stored


@pytest.mark.parametrize(
    "body",
    [
        {"role": "admin"},
        {"team_id": "FOREIGN"},
        {"key_hash": "0" * 64},
        {"id": "key_other"},
        {"created_by": "master"},
        {"revoked_at": None},
        {"budget": {"usd": "1000", "period": "month"}},
    ],
    ids=lambda b: ",".join(b),
)
def test_a_team_admin_cannot_widen_a_key(world: World, body: dict[str, Any]) -> None:
    if body.get("team_id") == "FOREIGN":
        body = {"team_id": world.team_b}
    target = _target_key(world, world.team_a)
    before = _all_keys(world)
    for key_id in (target, world.records[Role.TEAM_ADMIN].id):  # another key, and itself
        with world.client(world.tokens[Role.TEAM_ADMIN]) as client:
            response = client.patch(f"/admin/keys/{key_id}", json=body)
        assert response.status_code in (400, 403), response.text
    assert _all_keys(world) == before


def test_a_team_admin_cannot_raise_its_own_team(world: World) -> None:
    with world.client(world.tokens[Role.TEAM_ADMIN]) as client:
        response = client.patch(
            f"/admin/teams/{world.team_a}", json={"budget": {"usd": "1000000"}, "rpm": None}
        )
    assert response.status_code == 403
    with world.master() as master:
        [team] = [t for t in master.get("/admin/teams").json() if t["id"] == world.team_a]
    assert team["budget"]["usd"] == "100"
    assert team["rpm"] == 100


# --- uniform 401s ---------------------------------------------------------------------


def _bad_tokens(world: World) -> dict[str, dict[str, str]]:
    with world.master() as master:
        revoked = created(master.post("/admin/keys", json={"team_id": world.team_a}))
        assert master.post(f"/admin/keys/{revoked['info']['id']}/revoke").status_code == 200
        expired = created(master.post("/admin/keys", json={"team_id": world.team_a}))
        # Rotating with no overlap ends the old key now: it is expired, without a sleep.
        rotated = master.post(
            f"/admin/keys/{expired['info']['id']}/rotate", json={"overlap_seconds": 0}
        )
        assert rotated.status_code == 201
    unknown = "sk-sr-" + "A" * 43
    return {
        "missing": {},
        "empty bearer": {"authorization": "Bearer"},
        "not bearer": {"authorization": f"Basic {MASTER_KEY}"},
        "malformed": {"authorization": "Bearer not-a-key"},
        "unknown": {"authorization": f"Bearer {unknown}"},
        "revoked": {"authorization": f"Bearer {revoked['key']}"},
        "expired": {"authorization": f"Bearer {expired['key']}"},
        "sql": {"authorization": "Bearer ' OR 1=1--"},
        "sql with prefix": {"authorization": "Bearer sk-sr-' OR '1'='1"},
        "sql sleep": {"authorization": "Bearer sk-sr-'; SELECT pg_sleep(8)--"},
        "master plus one": {"authorization": f"Bearer {MASTER_KEY}x"},
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/admin/keys"), ("POST", "/admin/keys"), ("POST", "/v1/chat/completions")],
)
def test_every_bad_key_gets_one_401_body(world: World, method: str, path: str) -> None:
    bodies = {}
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    for name, headers in _bad_tokens(world).items():
        with httpx.Client(base_url=world.gateway.url, timeout=10) as client:
            response = client.request(method, path, headers=headers, json=body)
        assert response.status_code == 401, (name, response.text)
        bodies[name] = response.content
    assert len(set(bodies.values())) == 1, bodies


def test_the_401_is_the_same_on_admin_and_model_routes(world: World) -> None:
    with httpx.Client(base_url=world.gateway.url, timeout=10) as client:
        admin = client.get("/admin/keys").content
        chat = client.post("/v1/chat/completions", json={"model": "gpt-4o"}).content
    assert admin == chat


# --- path confusion over the wire -----------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/admin/keys/",
        "//admin/keys",
        "/admin//keys",
        "/ADMIN/keys",
        "/admin/KEYS",
        "/admin/keys/../teams",
        "/admin/keys/%2e%2e/teams",
        "/admin/%6beys",
        "/admin/keys%2F",
        "/admin/./keys",
        "/admin/keys;x",
    ],
)
def test_confused_paths_are_401_then_404(world: World, path: str) -> None:
    # httpx would normalise dot segments; send the raw target as written.
    with httpx.Client(base_url=world.gateway.url, timeout=10) as client:
        anonymous = client.send(
            client.build_request("GET", world.gateway.url, extensions={"target": path.encode()})
        )
        with world.master() as master:
            admin = master.send(
                master.build_request("GET", world.gateway.url, extensions={"target": path.encode()})
            )
    assert anonymous.status_code in (401, 404)  # a non-/admin spelling falls to the 404
    assert admin.status_code == 404, admin.text


# --- the secret canary ----------------------------------------------------------------


def test_a_plaintext_key_appears_only_in_its_creation_answer(world: World) -> None:
    with world.master() as master:
        creation = master.post("/admin/keys", json={"name": "canary", "team_id": world.team_a})
        answer = created(creation)
        plaintext: str = answer["key"]
        key_id = answer["info"]["id"]
        assert plaintext in creation.text
        seen = [
            master.get("/admin/keys"),
            master.get(f"/admin/keys/{key_id}"),
            master.get("/admin/keys", params={"team_id": world.team_a}),
            master.patch(f"/admin/keys/{key_id}", json={"name": "canary 2"}),
            master.get("/admin/usage", params={"by": "key"}),
            master.get("/admin/whoami"),
            master.get("/admin/runtime"),
            master.get("/admin/openapi.json"),
            master.get("/admin/teams"),
            master.post(f"/admin/keys/{key_id}/rotate", json={"overlap_seconds": 5}),
            master.post(f"/admin/keys/{key_id}/revoke"),
        ]
    with world.client(plaintext) as itself:
        seen.append(itself.get("/admin/whoami"))  # a plain key: 403
        seen.append(itself.get("/v1/models"))
    for response in seen:
        assert response.status_code < 500, response.text
        raw = response.content + b"".join(k + v for k, v in response.headers.raw)
        assert plaintext.encode() not in raw, response.request.url
        assert plaintext[-12:].encode() not in raw
    for path in world.data_dir.rglob("*"):
        if path.is_file():
            assert plaintext.encode() not in path.read_bytes(), path
            assert plaintext[6:].encode() not in path.read_bytes(), path
