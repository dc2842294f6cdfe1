"""The emulated OAuth token endpoint and bearer check, on a fake clock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from google.auth import crypt, jwt

from skyroute.core.secret import Secret
from skyroute.emulators.google_auth import (
    JWT_BEARER,
    GoogleAuth,
    load_service_account,
    write_service_account_file,
)
from skyroute.emulators.http import Request

NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return write_service_account_file(tmp_path / "sa.json", "http://127.0.0.1:1/token")


def grant_request(key_file: Path, **changes: Any) -> Request:
    info = json.loads(key_file.read_text())
    claims = {"iss": info["client_email"], "aud": "https://oauth2.googleapis.com/token",
              "scope": "https://www.googleapis.com/auth/cloud-platform", "iat": int(NOW),
              "exp": int(NOW) + 3600, **changes}  # fmt: skip
    assertion = jwt.encode(crypt.RSASigner.from_service_account_info(info), claims).decode()
    body = urlencode({"grant_type": JWT_BEARER, "assertion": assertion}).encode()
    return Request("POST", "/token", "", {}, body)


def bearer(token: str) -> Request:
    return Request("POST", "/v1/x", "", {"authorization": f"Bearer {token}"}, b"")


def test_key_file_is_what_google_auth_reads(key_file: Path) -> None:
    info = json.loads(key_file.read_text())
    assert info["type"] == "service_account" and info["token_uri"].endswith("/token")
    assert oct(key_file.stat().st_mode)[-3:] == "600"
    account = load_service_account(key_file)
    assert account.key_id == info["private_key_id"] and b"PUBLIC KEY" in account.public_key_pem


def test_issued_tokens_are_accepted_until_they_expire(key_file: Path) -> None:
    clock = Clock()
    auth = GoogleAuth(api_key=None, token=None, accounts=[load_service_account(key_file)],
                      wall_clock=clock, token_factory=lambda: "ya29.t1")  # fmt: skip
    granted = auth.grant(grant_request(key_file))
    assert granted.status == 200
    assert json.loads(granted.body) == {"access_token": "ya29.t1", "expires_in": 3599,
                                        "token_type": "Bearer"}  # fmt: skip
    assert auth.grants == 1 and auth.check_bearer(bearer("ya29.t1")) is None
    clock.now += 3600
    expired = auth.check_bearer(bearer("ya29.t1"))
    assert expired is not None and b"ACCESS_TOKEN_EXPIRED" in expired.body


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"exp": int(NOW) - 1}, "invalid_grant"),
        ({"iat": int(NOW) - 7200, "exp": int(NOW) + 60}, "invalid_grant"),
        ({"scope": None}, "invalid_scope"),
        ({"iss": "someone@else"}, "invalid_grant"),
    ],
)
def test_bad_claims_are_refused(key_file: Path, changes: dict[str, Any], error: str) -> None:
    auth = GoogleAuth(api_key=None, token=None, accounts=[load_service_account(key_file)],
                      wall_clock=Clock())  # fmt: skip
    refused = auth.grant(grant_request(key_file, **changes))
    assert refused.status == 400 and json.loads(refused.body)["error"] == error
    assert auth.grants == 0


def test_audience_is_not_tied_to_the_emulator(key_file: Path) -> None:
    auth = GoogleAuth(api_key=None, token=None, accounts=[load_service_account(key_file)],
                      wall_clock=Clock())  # fmt: skip
    assert auth.grant(grant_request(key_file, aud="https://elsewhere.example/token")).status == 200


def test_static_token_and_api_key() -> None:
    auth = GoogleAuth(api_key=Secret("k"), token=Secret("ya29.s"), accounts=[], wall_clock=Clock())
    assert auth.check_bearer(bearer("ya29.s")) is None
    unknown = auth.check_bearer(bearer("ya29.other"))
    assert unknown is not None and unknown.status == 401
    keyed = Request("POST", "/v1/x", "key=k", {}, b"")
    assert auth.check_api_key(keyed) is None
    wrong = auth.check_api_key(Request("POST", "/v1/x", "", {"x-goog-api-key": "z"}, b""))
    assert wrong is not None and wrong.status == 400 and b"API_KEY_INVALID" in wrong.body
    missing = auth.check_api_key(Request("POST", "/v1/x", "", {}, b""))
    assert missing is not None and missing.status == 403
