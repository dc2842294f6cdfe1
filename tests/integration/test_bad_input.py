"""Bad requests get a clear OpenAI-format error with the right status, and never reach an
upstream. Raw HTTP is used where the SDK would refuse to send the bad shape."""

from __future__ import annotations

import json
import socket

import httpx
import openai
import pytest

from skyroute.emulators.runner import EmulatorThread
from skyroute.server.embedded import GatewayThread
from tests.integration.conftest import CANARIES, MASTER_KEY, hello, sdk

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


def post(gateway: GatewayThread, body: bytes, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    headers = {"content-type": "application/json", **AUTH, **(headers or {})}
    return httpx.post(gateway.base_url + "/chat/completions", content=body, headers=headers)


def error_of(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


@pytest.fixture(autouse=True)
def no_upstream_calls(azure: EmulatorThread, local: EmulatorThread, clouds: None):  # type: ignore[no-untyped-def]
    yield
    assert not azure.requests() and not local.requests(), "a bad request reached an upstream"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
        (b'{"model": NaN}', "not valid JSON"),
        (b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "\\ud800"}]', "JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
    ],
    ids=["malformed", "empty", "array", "string", "deep", "nan", "truncated", "bad-utf8"],
)
def test_malformed_bodies_are_400(gateway: GatewayThread, body: bytes, fragment: str) -> None:
    response = post(gateway, body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["type"] == "invalid_request_error" and fragment in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": hello()}, "model"),
        ({"model": "gpt-4o"}, "messages"),
        ({"model": "gpt-4o", "messages": []}, "messages"),
        ({"model": 42, "messages": hello()}, "model"),
        ({"model": "gpt-4o", "messages": [{"content": "hi"}]}, "messages[0].role"),
        ({"model": "gpt-4o", "messages": ["hi"]}, "messages[0]"),
        ({"model": "gpt-4o", "messages": hello(), "stream": "yes"}, "stream"),
    ],
)
def test_missing_or_wrong_fields_name_the_field(
    gateway: GatewayThread, body: dict, param: str
) -> None:
    response = post(gateway, json.dumps(body).encode())
    assert response.status_code == 400
    assert error_of(response)["param"] == param


@pytest.mark.parametrize(
    "extra",
    [
        {"api_base": "http://127.0.0.2:9/v1"},
        {"base_url": "http://169.254.169.254/"},
        {"api_key": "sk-mine"},
        {"metadata": {"api_base": "http://127.0.0.2:9"}},
        {"extra_body": {"base_url": "http://127.0.0.2:9"}},
    ],
    ids=["api_base", "base_url", "api_key", "nested-metadata", "nested-extra-body"],
)
def test_caller_supplied_upstream_urls_and_keys_are_refused(
    gateway: GatewayThread, extra: dict
) -> None:
    body = {"model": "gpt-4o", "messages": hello(), **extra}
    response = post(gateway, json.dumps(body).encode())
    assert response.status_code == 400
    assert "not allowed" in error_of(response)["message"]


def test_a_tool_schema_may_use_any_property_name(gateway: GatewayThread, azure) -> None:  # type: ignore[no-untyped-def]
    tool = {
        "type": "function",
        "function": {
            "name": "f",
            "parameters": {"type": "object", "properties": {"base_url": {"type": "string"}}},
        },
    }
    body = {"model": "gpt-4o", "messages": hello(), "tools": [tool]}
    assert post(gateway, json.dumps(body).encode()).status_code == 200
    azure.reset()  # this one was meant to reach the upstream


def test_unknown_model_is_404_without_upstream_call(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-5-secret", messages=hello())
    assert caught.value.code == "model_not_found"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer wrong",
        f"Basic {MASTER_KEY}",
        f"Bearer {MASTER_KEY}x",
        "Bearer ' OR pg_sleep(8)--",
        f"bearer {MASTER_KEY[:-1]}",
    ],
)
def test_every_bad_key_gets_the_same_401(gateway: GatewayThread, authorization: str | None) -> None:
    headers = {"content-type": "application/json"}
    if authorization is not None:
        headers["authorization"] = authorization
    body = json.dumps({"model": "gpt-4o", "messages": hello()}).encode()
    response = httpx.post(gateway.base_url + "/chat/completions", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "message": "Invalid or missing API key.",
            "type": "authentication_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }


def test_bearer_scheme_is_case_insensitive(gateway: GatewayThread) -> None:
    response = httpx.get(
        gateway.base_url + "/models", headers={"authorization": f"bearer {MASTER_KEY}"}
    )
    assert response.status_code == 200


def test_models_needs_a_key_too(gateway: GatewayThread) -> None:
    with pytest.raises(openai.AuthenticationError):
        sdk(gateway, key="nope").models.list()


def test_body_over_the_limit_is_413_by_declared_length(gateway: GatewayThread) -> None:
    # The limit in the test config is 64 KiB; declare 1 GiB and send nothing more.
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + MASTER_KEY.encode() + b"\r\n"
            b"Content-Length: 1073741824\r\n\r\n"
        )
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 413")


def test_body_over_the_limit_is_413_when_chunked(gateway: GatewayThread) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(100):
            yield b"x" * 4096

    response = httpx.post(
        gateway.base_url + "/chat/completions",
        content=chunks(),
        headers={"content-type": "application/json", **AUTH},
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_too_large"


def test_wrong_content_type_is_400(gateway: GatewayThread) -> None:
    body = json.dumps({"model": "gpt-4o", "messages": hello()}).encode()
    response = post(gateway, body, {"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400


def raw_get(gateway: GatewayThread, target: bytes, host: bytes = b"x") -> bytes:
    """Send a request line exactly as given (clients would normalise these paths)."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(
            b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\n"
            b"Authorization: Bearer " + MASTER_KEY.encode() + b"\r\n"
            b"Connection: close\r\n\r\n"
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


@pytest.mark.parametrize(
    "target",
    [
        b"/v1/nope",
        b"/v1/../v1/models",
        b"//v1/models",
        b"/v1/models/",
        b"/V1/models",
        b"/v1/%6dodels",
        b"/v1/models%2F",
        b"/v1/./models",
        b"http://x/v1/nope",
    ],
)
def test_path_variants_are_not_routes(gateway: GatewayThread, target: bytes) -> None:
    # Routes match the raw path exactly, so the path that is authorised is the path served.
    assert raw_get(gateway, target).startswith(b"HTTP/1.1 404")


def test_path_confusion_never_skips_auth(gateway: GatewayThread) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x/#\r\nConnection: close\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 401")


def test_wrong_method_is_405(gateway: GatewayThread) -> None:
    response = httpx.get(gateway.base_url + "/chat/completions", headers=AUTH)
    assert response.status_code == 405
    error_of(response)


def test_no_secret_in_any_error_response(gateway: GatewayThread) -> None:
    responses = [
        post(gateway, b"{bad"),
        post(gateway, json.dumps({"model": "gpt-4o"}).encode()),
        httpx.get(gateway.base_url + "/models"),
        httpx.get(gateway.url + "/nope"),
    ]
    for response in responses:
        text = response.text + repr(dict(response.headers))
        assert not any(canary in text for canary in CANARIES)
