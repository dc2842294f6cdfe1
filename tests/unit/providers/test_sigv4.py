"""SigV4: AWS's published test-suite values, botocore as an oracle, and real SDK requests."""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock
from urllib.parse import quote, urlsplit

import boto3
import botocore.auth
import httpx2
import pytest
from anthropic import AnthropicBedrock
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from skyroute.core.secret import Secret
from skyroute.providers.sigv4 import (
    AwsCredentials,
    ParsedAuthorization,
    canonical_request,
    parse_authorization,
    sign_request,
    signature,
    signing_key,
    string_to_sign,
)

# The inputs of AWS's SigV4 test suite (the aws-sdk-js fixture and botocore's
# tests/unit/auth/aws4_testsuite): fixed keys, region, service and time.
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SUITE_DATE = "20150830T123600Z"
SUITE_NOW = datetime.datetime(2015, 8, 30, 12, 36, tzinfo=datetime.UTC)
SUITE_SCOPE = "20150830/us-east-1/service/aws4_request"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
SUITE_CREDENTIALS = AwsCredentials(access_key_id=ACCESS_KEY, secret_access_key=Secret(SECRET_KEY))


def _botocore_signer(
    service: str, region: str, token: str | None = None
) -> botocore.auth.SigV4Auth:
    return botocore.auth.SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, token), service, region)


@contextmanager
def _frozen_botocore_clock(now: datetime.datetime) -> Iterator[None]:
    # botocore 1.44.8's SigV4Auth.add_auth reads botocore.auth.get_current_datetime().
    naive_utc = now.astimezone(datetime.UTC).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=naive_utc):
        yield


# --------------------------------------------------------------------------------------------
# (a) The test suite. Each case: request line and headers as in the suite's .req file, and the
# signature AWS publishes for it (None where we rely on botocore alone). Every case is checked
# against botocore too. The suite writes paths unencoded ("/example space/", "/ሴ") and expects
# them encoded once; a client sends them encoded ("/example%20space/"), which the canonical
# URI then encodes a second time, as test_bedrock_model_path_is_encoded_a_second_time shows.

SUITE: dict[str, tuple[str, str, dict[str, str], bytes, str | None]] = {
    "get-vanilla": (
        "GET",
        "/",
        {},
        b"",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ),
    "get-vanilla-query-order-key-case": (
        "GET",
        "/?Param2=value2&Param1=value1",
        {},
        b"",
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    ),
    "get-vanilla-empty-query-key": (
        "GET",
        "/?Param1=value1",
        {},
        b"",
        "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb",
    ),
    "get-vanilla-query-unreserved": (
        "GET",
        "/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        "=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        {},
        b"",
        None,
    ),
    "get-vanilla-utf8-query": (
        "GET",
        "/?%E1%88%B4=bar",
        {},
        b"",
        "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
    ),
    "get-utf8": (
        "GET",
        "/ሴ",
        {},
        b"",
        "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
    ),
    "get-space": (
        "GET",
        "/example space/",
        {},
        b"",
        "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
    ),
    "get-header-value-trim": (
        "GET",
        "/",
        {"My-Header1": " value1", "My-Header2": ' "a   b   c"'},
        b"",
        "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    ),
    "post-vanilla": (
        "POST",
        "/",
        {},
        b"",
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    ),
    "post-vanilla-query": (
        "POST",
        "/?Param1=value1",
        {},
        b"",
        "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
    ),
    "post-header-key-sort": (
        "POST",
        "/",
        {"My-Header1": "value1"},
        b"",
        "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
    ),
    "post-header-value-case": (
        "POST",
        "/",
        {"My-Header1": "VALUE1"},
        b"",
        "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
    ),
    "post-x-www-form-urlencoded": (
        "POST",
        "/",
        {"Content-Type": "application/x-www-form-urlencoded"},
        b"Param1=value1",
        "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
    ),
    # normalize-path: these canonicalise to "/" and so share get-vanilla's signature.
    "get-slash": (
        "GET",
        "//",
        {},
        b"",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ),
    "get-relative": (
        "GET",
        "/example/..",
        {},
        b"",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ),
    "get-relative-relative": (
        "GET",
        "/example1/example2/../..",
        {},
        b"",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ),
    "get-slash-dot-slash": (
        "GET",
        "/./",
        {},
        b"",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ),
    "get-slashes": ("GET", "//example//", {}, b"", None),
    "get-slash-pointless-dot": ("GET", "/./example", {}, b"", None),
}


def _suite_parts(name: str) -> tuple[str, str, str, dict[str, str], bytes]:
    method, target, extra, body, _ = SUITE[name]
    path, _, query = target.partition("?")
    headers = {"Host": "example.amazonaws.com", **extra, "X-Amz-Date": SUITE_DATE}
    return method, path, query, headers, body


def _suite_botocore(name: str) -> tuple[botocore.auth.SigV4Auth, AWSRequest]:
    method, _, _, headers, body = _suite_parts(name)
    url = "https://example.amazonaws.com" + SUITE[name][1]
    request = AWSRequest(method=method, url=url, headers=headers, data=body)
    request.context["timestamp"] = SUITE_DATE
    return _botocore_signer("service", "us-east-1"), request


@pytest.mark.parametrize("name", sorted(SUITE))
def test_suite_case_matches_botocore_and_published_signature(name: str) -> None:
    method, path, query, headers, body = _suite_parts(name)
    creq = canonical_request(
        method, path, query, headers, list(headers), hashlib.sha256(body).hexdigest()
    )
    sts = string_to_sign(SUITE_DATE, SUITE_SCOPE, creq)
    proof = signature(signing_key(SECRET_KEY, "20150830", "us-east-1", "service"), sts)

    oracle, request = _suite_botocore(name)
    assert creq == oracle.canonical_request(request)
    assert sts == oracle.string_to_sign(request, creq)
    assert proof == oracle.signature(sts, request)
    published = SUITE[name][4]
    if published is not None:
        assert proof == published


def test_get_vanilla_intermediate_values_are_the_published_ones() -> None:
    headers = {"host": "example.amazonaws.com", "x-amz-date": SUITE_DATE}
    creq = canonical_request("GET", "/", "", headers, ["host", "x-amz-date"], EMPTY_SHA256)
    assert creq == (
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
        "host;x-amz-date\n" + EMPTY_SHA256
    )
    assert string_to_sign(SUITE_DATE, SUITE_SCOPE, creq) == (
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
        "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
    )


def test_sign_request_reproduces_get_vanilla() -> None:
    added = sign_request(
        method="GET",
        url="https://example.amazonaws.com/",
        headers=[],
        body=b"",
        credentials=SUITE_CREDENTIALS,
        region="us-east-1",
        service="service",
        now=SUITE_NOW,
    )
    assert added == [
        ("x-amz-date", SUITE_DATE),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
    ]


def test_sign_request_signs_the_suite_form_post_with_its_content_type() -> None:
    added = sign_request(
        method="POST",
        url="https://example.amazonaws.com/",
        headers=[("Content-Type", "application/x-www-form-urlencoded"), ("User-Agent", "x")],
        body=b"Param1=value1",
        credentials=SUITE_CREDENTIALS,
        region="us-east-1",
        service="service",
        now=SUITE_NOW,
    )
    assert dict(added)["authorization"].endswith(
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
    )


def test_raw_and_percent_encoded_query_canonicalise_alike() -> None:
    args: tuple[dict[str, str], list[str], str] = ({"host": "h"}, ["host"], EMPTY_SHA256)
    raw = canonical_request("GET", "/", "ሴ=bar&a=b c&a=+", *args)
    encoded = canonical_request("GET", "/", "%E1%88%B4=bar&a=b%20c&a=%2B", *args)
    assert raw == encoded
    assert raw.split("\n")[2] == "%E1%88%B4=bar&a=%2B&a=b%20c"


def test_bedrock_model_path_is_encoded_a_second_time() -> None:
    creq = canonical_request(
        "POST",
        "/model/us.anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse",
        "",
        {"host": "h"},
        ["host"],
        EMPTY_SHA256,
    )
    assert creq.split("\n")[1] == "/model/us.anthropic.claude-3-7-sonnet-20250219-v1%253A0/converse"
    s3 = canonical_request(
        "GET", "/a%3Ab//c", "", {"host": "h"}, ["host"], EMPTY_SHA256, double_encode=False
    )
    assert s3.split("\n")[1] == "/a%3Ab//c"


def test_canonical_request_refuses_a_signed_header_the_request_lacks() -> None:
    with pytest.raises(ValueError, match="x-amz-date"):
        canonical_request("GET", "/", "", {"Host": "h"}, ["host", "x-amz-date"], EMPTY_SHA256)


def test_sign_request_refuses_naive_time_and_headers_it_writes_itself() -> None:
    common: dict[str, Any] = {
        "method": "GET",
        "url": "https://example.amazonaws.com/",
        "body": b"",
        "credentials": SUITE_CREDENTIALS,
        "region": "us-east-1",
        "service": "service",
    }
    with pytest.raises(ValueError, match="timezone"):
        sign_request(headers=[], now=datetime.datetime(2015, 8, 30), **common)
    with pytest.raises(ValueError, match="x-amz-date"):
        sign_request(headers=[("X-Amz-Date", SUITE_DATE)], now=SUITE_NOW, **common)


def test_credentials_repr_hides_the_secrets() -> None:
    creds = AwsCredentials(
        access_key_id="AKID", secret_access_key=Secret("s3cr3t"), session_token=Secret("t0k3n")
    )
    assert "s3cr3t" not in repr(creds)
    assert "t0k3n" not in repr(creds)


# --------------------------------------------------------------------------------------------
# parse_authorization


def test_parse_authorization_reads_every_part() -> None:
    parsed = parse_authorization(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )
    assert parsed == ParsedAuthorization(
        access_key_id="AKIDEXAMPLE",
        date="20150830",
        region="us-east-1",
        service="service",
        signed_headers=("host", "x-amz-date"),
        signature="5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    )
    assert parsed.scope == SUITE_SCOPE


GOOD_SIG = "0" * 64


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Bearer abc",
        "AWS4-HMAC-SHA1 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, Signature=",
        f"AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, "
        f"Signature={GOOD_SIG[:-1]}",
        f"AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, "
        f"Signature={GOOD_SIG.upper().replace('0', 'G')}",
        f"AWS4-HMAC-SHA256 Credential=A/20150830/r/s, SignedHeaders=host, Signature={GOOD_SIG}",
        f"AWS4-HMAC-SHA256 Credential=A/2015083/r/s/aws4_request, SignedHeaders=host, "
        f"Signature={GOOD_SIG}",
        f"AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=, "
        f"Signature={GOOD_SIG}",
        f"AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, Signature={GOOD_SIG}",
        f"AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, "
        f"Signature={GOOD_SIG}, Signature={GOOD_SIG}",
        f"AWS4-HMAC-SHA256 Credential=//20150830/r/s/aws4_request, SignedHeaders=host, "
        f"Signature={GOOD_SIG}",
    ],
)
def test_parse_authorization_rejects_malformed_values(value: str) -> None:
    with pytest.raises(ValueError):
        parse_authorization(value)


# --------------------------------------------------------------------------------------------
# (b) botocore as an oracle, over Bedrock-shaped requests.

_MODEL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:/.-_"
_ENDPOINTS = [
    "https://bedrock-runtime.us-east-1.amazonaws.com",
    "https://BEDROCK-runtime.eu-west-3.amazonaws.com:443",
    "http://127.0.0.1:8123",
    "http://localhost:80",
    "https://[::1]:8443",
]
_OPERATIONS = ["converse", "converse-stream", "invoke", "invoke-with-response-stream"]


@st.composite
def _bedrock_urls(draw: st.DrawFn) -> str:
    model = draw(st.text(_MODEL_CHARS, min_size=1, max_size=80))
    # boto3 encodes ":" and "/" (safe="-_.~"); AnthropicBedrock leaves ":" as it is.
    encoded = quote(model, safe=draw(st.sampled_from(["-_.~", "-_.~:"])))
    url = (
        f"{draw(st.sampled_from(_ENDPOINTS))}/model/{encoded}/{draw(st.sampled_from(_OPERATIONS))}"
    )
    pairs = draw(st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=4))
    if pairs:
        # botocore signs a url's query as it is, so give it the canonical (RFC 3986) form.
        url += "?" + "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)
    return url


_content_types = st.one_of(
    st.none(),
    st.sampled_from(["application/json", "application/x-amz-json-1.1"]),
    st.text("abcxyz/;= \t-", max_size=30),
)
_tokens = st.one_of(st.none(), st.text("ABCxyz0123456789+/=", min_size=1, max_size=200))
_times = st.datetimes(
    min_value=datetime.datetime(2000, 1, 1),
    max_value=datetime.datetime(2099, 12, 31),
    timezones=st.sampled_from(
        [datetime.UTC, datetime.timezone(datetime.timedelta(hours=-7, minutes=-30))]
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    url=_bedrock_urls(),
    content_type=_content_types,
    token=_tokens,
    body=st.binary(max_size=300),
    method=st.sampled_from(["POST", "GET"]),
    region=st.sampled_from(["us-east-1", "eu-central-1", "ap-southeast-2"]),
    service=st.sampled_from(["bedrock", "service"]),
    now=_times,
)
def test_authorization_equals_botocore_for_the_same_signed_headers(
    url: str,
    content_type: str | None,
    token: str | None,
    body: bytes,
    method: str,
    region: str,
    service: str,
    now: datetime.datetime,
) -> None:
    headers = [] if content_type is None else [("Content-Type", content_type)]
    credentials = AwsCredentials(
        access_key_id=ACCESS_KEY,
        secret_access_key=Secret(SECRET_KEY),
        session_token=None if token is None else Secret(token),
    )
    added = dict(
        sign_request(
            method=method,
            url=url,
            headers=headers,
            body=body,
            credentials=credentials,
            region=region,
            service=service,
            now=now,
        )
    )
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    with _frozen_botocore_clock(now):
        _botocore_signer(service, region, token).add_auth(request)
    assert added["authorization"] == request.headers["Authorization"]
    assert added["x-amz-date"] == request.headers["X-Amz-Date"]
    assert added.get("x-amz-security-token") == request.headers.get("X-Amz-Security-Token")


# --------------------------------------------------------------------------------------------
# (c) Requests signed by the real SDKs, recomputed from the raw path they sent.


class _CannedBody:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: object) -> Iterator[bytes]:
        yield self._data


_CONVERSE_ANSWER = {
    "output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
    "metrics": {"latencyMs": 1},
}
_ANTHROPIC_MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude",
    "content": [{"type": "text", "text": "hi"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 1, "output_tokens": 1},
}
_MODEL_ID = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"


def _verify(
    method: str, url: str, raw_path: str, headers: dict[str, str], body: bytes, secret: str
) -> ParsedAuthorization:
    """What the Bedrock emulator does: recompute the signature from the request as received."""
    auth = parse_authorization(headers["authorization"])
    path, _, query = raw_path.partition("?")
    creq = canonical_request(
        method, path, query, headers, auth.signed_headers, hashlib.sha256(body).hexdigest()
    )
    key = signing_key(secret, auth.date, auth.region, auth.service)
    assert signature(key, string_to_sign(headers["x-amz-date"], auth.scope, creq)) == auth.signature
    return auth


def _boto3_capture(operation: str, token: str | None) -> tuple[Any, dict[str, str]]:
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-west-2",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=token,
    )
    captured: list[Any] = []

    def answer(request: Any, **_: object) -> AWSResponse:
        captured.append(request)
        body = json.dumps(_CONVERSE_ANSWER if operation == "Converse" else {"ok": True}).encode()
        return AWSResponse(
            request.url, 200, {"content-type": "application/json"}, _CannedBody(body)
        )

    client.meta.events.register(f"before-send.bedrock-runtime.{operation}", answer)
    if operation == "Converse":
        client.converse(modelId=_MODEL_ID, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    else:
        client.invoke_model(modelId=_MODEL_ID, body=b'{"max_tokens": 5}', accept="application/json")
    request = captured[0]
    headers = {
        name.lower(): value.decode() if isinstance(value, bytes) else value
        for name, value in request.headers.items()
    }
    return request, headers


@pytest.mark.parametrize("operation", ["Converse", "InvokeModel"])
@pytest.mark.parametrize("token", [None, "FQoGZXIvYXdzEXAMPLE+token/=="])
def test_boto3_bedrock_signature_verifies_from_the_raw_path(
    operation: str, token: str | None
) -> None:
    request, headers = _boto3_capture(operation, token)
    raw_path = urlsplit(request.url).path
    assert "%3A0" in raw_path  # boto3 percent-encodes the ":" of the model id
    headers.setdefault("host", "bedrock-runtime.us-west-2.amazonaws.com")
    auth = _verify(request.method, request.url, raw_path, headers, request.body, SECRET_KEY)
    assert auth.service == "bedrock"
    if operation == "Converse":
        # boto3 signs exactly the headers sign_request signs, so the two must agree outright.
        assert set(auth.signed_headers) <= {
            "content-type",
            "host",
            "x-amz-date",
            "x-amz-security-token",
        }
        now = datetime.datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.UTC
        )
        ours = sign_request(
            method="POST",
            url=request.url,
            headers=[("Content-Type", headers["content-type"])],
            body=request.body,
            credentials=AwsCredentials(
                access_key_id=ACCESS_KEY,
                secret_access_key=Secret(SECRET_KEY),
                session_token=None if token is None else Secret(token),
            ),
            region="us-west-2",
            service="bedrock",
            now=now,
        )
        assert dict(ours)["authorization"] == headers["authorization"]


def test_anthropic_bedrock_signature_verifies_from_the_raw_path() -> None:
    """AnthropicBedrock leaves ":" unencoded and signs every header it sends."""
    seen: list[httpx2.Request] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json=_ANTHROPIC_MESSAGE)

    client = AnthropicBedrock(
        aws_access_key=ACCESS_KEY,
        aws_secret_key=SECRET_KEY,
        aws_session_token="tok",
        aws_region="us-east-1",
        http_client=httpx2.Client(transport=httpx2.MockTransport(answer)),
        max_retries=0,
    )
    client.messages.create(
        model=_MODEL_ID, max_tokens=5, messages=[{"role": "user", "content": "hi"}]
    )
    request = seen[0]
    raw_path = request.url.raw_path.decode("ascii")
    assert ":0/" in raw_path
    headers = {name.lower(): value for name, value in request.headers.items()}
    auth = _verify(request.method, str(request.url), raw_path, headers, request.content, SECRET_KEY)
    assert "x-stainless-lang" in auth.signed_headers
