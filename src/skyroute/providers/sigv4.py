"""AWS Signature Version 4 for requests with a header-borne signature (no presigned URLs).

Pure: the time is an argument, nothing is read from the clock, the environment or the network.
The gateway signs with ``sign_request``; the Bedrock emulator verifies with the lower-level
pieces (``parse_authorization``, ``canonical_request``, ``string_to_sign``, ``signing_key``,
``signature``), so both sides share one canonicalisation.

We sign only ``host``, ``x-amz-date``, ``x-amz-security-token`` and ``content-type``, unlike
botocore, which signs every header it sends: a header the HTTP client adds or rewrites after
signing (``user-agent``, ``accept-encoding``) then cannot break the signature.

Canonicalisation follows botocore 1.44.8 (``botocore.auth.SigV4Auth``), which the tests use as
the oracle:

- path: for every service but S3, the path *as sent* (already percent-encoded) is
  dot-segment-normalised (RFC 3986 5.2.4, empty segments dropped, as botocore does) and
  percent-encoded again with ``/`` and ``~`` kept, so ``%3A`` becomes ``%253A``. S3 signs the
  path as sent (``double_encode=False``).
- query: pairs split on ``&`` and ``=``, percent-decoded, re-encoded with only RFC 3986
  unreserved characters kept, sorted by key then value. botocore sorts the raw pairs without
  re-encoding; the two agree on any query that is already canonically encoded, which is all
  that botocore itself produces. ``+`` is taken literally (``%2B``), never as a space.
- header values: trimmed, inner whitespace runs collapsed to one space.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from typing import Final
from urllib.parse import quote, unquote, urlsplit

import msgspec

from skyroute.core.secret import Secret

__all__ = [
    "ALGORITHM",
    "AwsCredentials",
    "ParsedAuthorization",
    "canonical_request",
    "credential_scope",
    "parse_authorization",
    "sign_request",
    "signature",
    "signing_key",
    "string_to_sign",
]

ALGORITHM: Final = "AWS4-HMAC-SHA256"
_TERMINATOR: Final = "aws4_request"
_AMZ_DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# Headers sign_request writes itself: a caller passing its own would send them twice.
_RESERVED_HEADERS: Final = frozenset({"authorization", "x-amz-date", "x-amz-security-token"})
_SIGNATURE_RE: Final = re.compile(r"[0-9a-f]{64}")
_DATE_RE: Final = re.compile(r"[0-9]{8}")


class AwsCredentials(msgspec.Struct, frozen=True, kw_only=True):
    access_key_id: str
    secret_access_key: Secret
    session_token: Secret | None = None


class ParsedAuthorization(msgspec.Struct, frozen=True, kw_only=True):
    """The parts of an ``Authorization: AWS4-HMAC-SHA256 ...`` header."""

    access_key_id: str
    date: str  # YYYYMMDD, from the credential scope
    region: str
    service: str
    signed_headers: tuple[str, ...]  # as the client listed them
    signature: str  # lowercase hex

    @property
    def scope(self) -> str:
        return credential_scope(self.date, self.region, self.service)


def credential_scope(date: str, region: str, service: str) -> str:
    return f"{date}/{region}/{service}/{_TERMINATOR}"


def sign_request(
    *,
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: bytes,
    credentials: AwsCredentials,
    region: str,
    service: str,
    now: datetime.datetime,
) -> list[tuple[str, str]]:
    """Returns the headers to ADD: x-amz-date, x-amz-security-token (with a session token),
    authorization. ``url`` is absolute, its path exactly as it goes on the wire.

    ``now`` must be timezone-aware: a naive datetime would silently sign local time.
    The caller must send ``body`` byte for byte, since its SHA-256 is signed.
    """
    if now.tzinfo is None:
        raise ValueError("sign_request needs a timezone-aware datetime")
    amz_date = now.astimezone(datetime.UTC).strftime(_AMZ_DATE_FORMAT)
    parts = urlsplit(url)
    signed: dict[str, str] = {"host": _host_header(url), "x-amz-date": amz_date}
    content_types: list[str] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered in _RESERVED_HEADERS:
            raise ValueError(f"{lowered} is written by sign_request; do not pass it in")
        if lowered == "host":
            signed["host"] = value  # what will be sent wins over what the url implies
        elif lowered == "content-type":
            content_types.append(value)
    if content_types:
        signed["content-type"] = ",".join(content_types)  # repeated headers join with ","
    added = [("x-amz-date", amz_date)]
    if credentials.session_token is not None:
        token = credentials.session_token.reveal()
        signed["x-amz-security-token"] = token
        added.append(("x-amz-security-token", token))
    names = sorted(signed)
    request = canonical_request(
        method, parts.path, parts.query, signed, names, hashlib.sha256(body).hexdigest()
    )
    scope = credential_scope(amz_date[:8], region, service)
    key = signing_key(credentials.secret_access_key.reveal(), amz_date[:8], region, service)
    proof = signature(key, string_to_sign(amz_date, scope, request))
    authorization = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={proof}"
    )
    added.append(("authorization", authorization))
    return added


def canonical_request(
    method: str,
    raw_path: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    payload_hash: str,
    *,
    double_encode: bool = True,
) -> str:
    """The SigV4 canonical request. ``raw_path`` and ``query`` are as sent on the wire
    (in ASGI: ``scope["raw_path"]`` split at ``?``); ``headers`` is looked up case-insensitively
    and must hold every name in ``signed_headers`` (ValueError otherwise)."""
    by_name = {name.lower(): value for name, value in headers.items()}
    names = sorted({name.strip().lower() for name in signed_headers})
    lines: list[str] = []
    for name in names:
        if name not in by_name:
            raise ValueError(f"signed header {name!r} is not in the request")
        lines.append(f"{name}:{' '.join(by_name[name].split())}\n")
    path = _canonical_path(raw_path) if double_encode else (raw_path or "/")
    return "\n".join(
        [
            method.upper(),
            path,
            _canonical_query(query),
            "".join(lines),
            ";".join(names),
            payload_hash,
        ]
    )


def string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    """``scope`` is the credential scope, without the access key:
    ``date/region/service/aws4_request``."""
    digest = hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(("AWS4" + secret).encode("utf-8"), date)
    for part in (region, service, _TERMINATOR):
        key = _hmac(key, part)
    return key


def signature(signing_key: bytes, string_to_sign: str) -> str:
    return hmac.new(signing_key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def parse_authorization(value: str) -> ParsedAuthorization:
    """Parses ``AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/svc/aws4_request,
    SignedHeaders=a;b, Signature=hex``; raises ValueError if anything is off."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise ValueError(f"authorization algorithm is not {ALGORITHM}")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        key, equals, field = item.strip().partition("=")
        if not equals or key in fields:
            raise ValueError(f"malformed authorization component {key!r}")
        fields[key] = field
    if fields.keys() != {"Credential", "SignedHeaders", "Signature"}:
        raise ValueError("authorization needs exactly Credential, SignedHeaders and Signature")
    credential = fields["Credential"].split("/")
    if len(credential) != 5 or credential[4] != _TERMINATOR or not all(credential):
        raise ValueError("malformed authorization credential")
    if not _DATE_RE.fullmatch(credential[1]):
        raise ValueError("malformed date in authorization credential")
    signed = tuple(fields["SignedHeaders"].split(";"))
    if not all(signed):
        raise ValueError("malformed authorization SignedHeaders")
    if not _SIGNATURE_RE.fullmatch(fields["Signature"]):
        raise ValueError("authorization signature is not 64 lowercase hex digits")
    return ParsedAuthorization(
        access_key_id=credential[0],
        date=credential[1],
        region=credential[2],
        service=credential[3],
        signed_headers=signed,
        signature=fields["Signature"],
    )


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def _host_header(url: str) -> str:
    """The Host header an HTTP client sends for ``url``: lowercase, no userinfo, the port only
    when it is not the scheme's default, IPv6 literals in brackets."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host or parts.scheme not in _DEFAULT_PORTS:
        raise ValueError("url must be absolute http(s) with a host")
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        host = f"{host}:{port}"
    return host


def _canonical_path(raw_path: str) -> str:
    # AWS (and botocore) normalise the path before encoding it again; an empty path is "/".
    return quote(_remove_dot_segments(raw_path), safe="/~") if raw_path else "/"


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4, and empty segments dropped too, as botocore's ``remove_dot_segments``:
    AWS services treat ``a//b`` like ``a/b``."""
    kept: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment and segment != ".":
            kept.append(segment)
    head = "/" if path.startswith("/") else ""
    tail = "/" if path.endswith("/") and kept else ""
    return head + "/".join(kept) + tail


def _canonical_query(query: str) -> str:
    pairs: list[tuple[str, str]] = []
    for item in query.split("&"):
        if not item:
            continue  # "a=1&&b=2" has no third parameter
        key, _, value = item.partition("=")
        pairs.append((_encode(key), _encode(value)))
    return "&".join(f"{key}={value}" for key, value in sorted(pairs))


def _encode(component: str) -> str:
    # Decode first so an already-encoded query is not encoded twice; "+" stays a plus sign.
    return quote(unquote(component), safe="-_.~")
