"""The Bedrock emulator's credential check, with botocore's own signer as the client."""

from __future__ import annotations

import datetime
from unittest import mock
from urllib.parse import urlsplit

import botocore.auth
import msgspec
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from skyroute.core.secret import Secret
from skyroute.emulators.bedrock_auth import AuthRefusal, BedrockAuth, check_auth
from skyroute.emulators.http import Request
from skyroute.providers.sigv4 import AwsCredentials

KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
NOW = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.UTC)
URL = "http://127.0.0.1:8080/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
BODY = b'{"messages":[]}'
AUTH = BedrockAuth(
    credentials=AwsCredentials(access_key_id=KEY_ID, secret_access_key=Secret(SECRET))
)


def signed(
    url: str = URL,
    body: bytes = BODY,
    *,
    service: str = "bedrock",
    token: str | None = None,
    at: datetime.datetime = NOW,
) -> Request:
    """A request as botocore signs it at `at`, as the emulator's HTTP server would parse it."""
    aws = AWSRequest("POST", url, data=body, headers={"content-type": "application/json"})
    naive = at.astimezone(datetime.UTC).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=naive):
        botocore.auth.SigV4Auth(Credentials(KEY_ID, SECRET, token), service, "eu-west-1").add_auth(
            aws
        )
    parts = urlsplit(url)
    headers = {name.lower(): value for name, value in aws.headers.items()}
    headers["host"] = parts.netloc
    return Request("POST", parts.path, parts.query, headers, body)


def refusal(request: Request, auth: BedrockAuth = AUTH, now: datetime.datetime = NOW) -> str:
    result = check_auth(request, auth, now.timestamp())
    return "ok" if result is None else result.error_type


def changed(request: Request, **fields: object) -> Request:
    return msgspec.structs.replace(request, **fields)


@pytest.mark.parametrize(
    "url",
    [
        URL,
        URL.replace("%3A", ":"),  # AnthropicBedrock leaves ':' raw
        "http://127.0.0.1:8080/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/invoke",
        URL + "?b=2&a=1",
    ],
    ids=["encoded", "raw-colon", "arn", "query"],
)
def test_botocore_signatures_are_accepted(url: str) -> None:
    assert refusal(signed(url)) == "ok"


def test_tampering_breaks_the_signature() -> None:
    request = signed()
    assert refusal(changed(request, body=b'{"messages":[1]}')) == "InvalidSignatureException"
    decoded = request.path.replace("%3A", ":")
    assert refusal(changed(request, path=decoded)) == "InvalidSignatureException"
    headers = {**request.headers, "content-type": "text/plain"}
    assert refusal(changed(request, headers=headers)) == "InvalidSignatureException"


def test_wrong_secret_and_unknown_key() -> None:
    other = AwsCredentials(access_key_id=KEY_ID, secret_access_key=Secret("other"))
    assert refusal(signed(), BedrockAuth(credentials=other)) == "InvalidSignatureException"
    stranger = AwsCredentials(access_key_id="AKIDOTHER", secret_access_key=Secret(SECRET))
    assert refusal(signed(), BedrockAuth(credentials=stranger)) == "UnrecognizedClientException"


def test_service_must_be_bedrock() -> None:
    result = check_auth(signed(service="bedrock-runtime"), AUTH, NOW.timestamp())
    assert result == AuthRefusal(
        "InvalidSignatureException", "Credential should be scoped to correct service: 'bedrock'."
    )


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(0, "ok"), (299, "ok"), (-299, "ok"), (301, "Signature expired"), (-301, "not yet current")],
)
def test_clock_skew_window(offset: int, expected: str) -> None:
    result = check_auth(signed(), AUTH, NOW.timestamp() + offset)
    assert expected in ("ok" if result is None else result.message)


def test_expired_message_names_the_times() -> None:
    result = check_auth(signed(), AUTH, NOW.timestamp() + 600)
    assert result is not None
    assert result.message == (
        "Signature expired: 20261125T120000Z is now earlier than 20261125T120500Z "
        "(20261125T121000Z - 5 min.)"
    )


def test_session_tokens() -> None:
    assert refusal(signed(token="any")) == "ok"
    pinned = BedrockAuth(
        credentials=AwsCredentials(
            access_key_id=KEY_ID, secret_access_key=Secret(SECRET), session_token=Secret("t1")
        )
    )
    assert refusal(signed(token="t1"), pinned) == "ok"
    assert refusal(signed(token="t2"), pinned) == "UnrecognizedClientException"
    assert refusal(signed(), pinned) == "UnrecognizedClientException"
    unsigned = signed()
    unsigned.headers["x-amz-security-token"] = "any"
    result = check_auth(unsigned, AUTH, NOW.timestamp())
    assert result is not None and "X-Amz-Security-Token" in result.message


def test_payload_hash_header_must_match_the_body() -> None:
    request = signed()
    request.headers["x-amz-content-sha256"] = "0" * 64
    assert refusal(request) == "InvalidSignatureException"


def test_scope_date_must_match_x_amz_date() -> None:
    request = signed()
    request.headers["x-amz-date"] = "20261126T000100Z"
    result = check_auth(request, AUTH, NOW.timestamp())
    assert result is not None and result.message.startswith("Date in Credential scope")


def test_missing_and_malformed_authorization() -> None:
    request = signed()
    bare = {k: v for k, v in request.headers.items() if k != "authorization"}
    assert refusal(changed(request, headers=bare)) == "MissingAuthenticationTokenException"
    broken = {**request.headers, "authorization": "AWS4-HMAC-SHA256 Credential=x"}
    assert refusal(changed(request, headers=broken)) == "IncompleteSignatureException"
    no_date = {k: v for k, v in request.headers.items() if k != "x-amz-date"}
    assert refusal(changed(request, headers=no_date)) == "IncompleteSignatureException"


def test_bearer_api_keys() -> None:
    request = changed(signed(), headers={"authorization": "Bearer k-1"})
    with_key = BedrockAuth(api_key=Secret("k-1"))
    assert refusal(request, with_key) == "ok"
    assert refusal(request, BedrockAuth(api_key=Secret("k-2"))) == "UnrecognizedClientException"
    assert refusal(request) == "UnrecognizedClientException"  # SigV4 only


def test_no_credentials_means_no_check() -> None:
    assert check_auth(Request("POST", "/", "", {}, b""), BedrockAuth(), 0.0) is None
