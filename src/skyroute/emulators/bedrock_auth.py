"""Checks a Bedrock request's credentials: a SigV4 signature, or a Bedrock API key (Bearer).

SigV4 is verified as AWS does, on the path *as sent* (boto3 sends `:` as `%3A`, while
AnthropicBedrock leaves it raw; both sign what they send) and the SHA-256 of the body, with the
client's own region and the signing name `bedrock`. The time is an argument, so tests can
move the clock; a request whose `x-amz-date` is more than five minutes off is refused.

Refusals carry AWS's own error types and texts (all HTTP 403):

    MissingAuthenticationTokenException  no Authorization header at all
    IncompleteSignatureException         an Authorization header that does not parse
    UnrecognizedClientException          unknown access key id, session token or API key
    InvalidSignatureException            wrong signature, scope, date or clock skew

With no credentials configured, every request is let through unchecked.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from typing import Final

import msgspec

from skyroute.core.secret import Secret
from skyroute.emulators.http import Request
from skyroute.providers.sigv4 import (
    AwsCredentials,
    ParsedAuthorization,
    canonical_request,
    parse_authorization,
    signature,
    signing_key,
    string_to_sign,
)

__all__ = ["AuthRefusal", "BedrockAuth", "check_auth"]

SERVICE: Final = "bedrock"
_AMZ_DATE: Final = "%Y%m%dT%H%M%SZ"
_BAD_TOKEN: Final = "The security token included in the request is invalid."
_BAD_SIGNATURE: Final = (
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details."
)


class BedrockAuth(msgspec.Struct, frozen=True, kw_only=True):
    """Who may call: SigV4 credentials, a Bedrock API key, or both (or neither: no check)."""

    credentials: AwsCredentials | None = None
    """With `session_token` None, any session token is accepted (it must still be signed)."""
    api_key: Secret | None = None
    max_skew: float = 300.0
    """Seconds `x-amz-date` may differ from the emulator's clock."""

    @property
    def enabled(self) -> bool:
        return self.credentials is not None or self.api_key is not None


class AuthRefusal(msgspec.Struct, frozen=True):
    error_type: str
    message: str
    status: int = 403


def check_auth(request: Request, auth: BedrockAuth, now: float) -> AuthRefusal | None:
    """None if the request may go on; `now` is the wall-clock time in epoch seconds."""
    if not auth.enabled:
        return None
    header = request.headers.get("authorization", "")
    if not header:
        return AuthRefusal("MissingAuthenticationTokenException", "Missing Authentication Token")
    if header.startswith("Bearer "):
        return _check_api_key(header[7:].strip(), auth.api_key)
    if auth.credentials is None:
        return AuthRefusal("UnrecognizedClientException", _BAD_TOKEN)
    try:
        parsed = parse_authorization(header)
    except ValueError as error:
        return AuthRefusal("IncompleteSignatureException", f"Authorization header: {error}")
    return _check_sigv4(request, parsed, auth.credentials, now, auth.max_skew)


def _check_api_key(presented: str, api_key: Secret | None) -> AuthRefusal | None:
    if api_key is not None and presented and api_key.matches(presented):
        return None
    return AuthRefusal("UnrecognizedClientException", _BAD_TOKEN)


def _check_sigv4(
    request: Request,
    parsed: ParsedAuthorization,
    credentials: AwsCredentials,
    now: float,
    max_skew: float,
) -> AuthRefusal | None:
    refusal = _check_identity(request, parsed, credentials) or _check_scope(
        request, parsed, now, max_skew
    )
    if refusal is not None:
        return refusal
    amz_date = request.headers["x-amz-date"]
    body_hash = hashlib.sha256(request.body).hexdigest()
    claimed = request.headers.get("x-amz-content-sha256")
    if claimed is not None and claimed != body_hash:
        message = "The provided 'x-amz-content-sha256' header does not match what was computed."
        return AuthRefusal("InvalidSignatureException", message)
    try:
        canonical = canonical_request(
            request.method,
            request.path,
            request.query,
            request.headers,
            parsed.signed_headers,
            body_hash,
        )
    except ValueError:  # a signed header that is not in the request
        return AuthRefusal("InvalidSignatureException", _BAD_SIGNATURE)
    secret = credentials.secret_access_key.reveal()
    key = signing_key(secret, parsed.date, parsed.region, parsed.service)
    expected = signature(key, string_to_sign(amz_date, parsed.scope, canonical))
    if not hmac.compare_digest(expected, parsed.signature):
        return AuthRefusal("InvalidSignatureException", _BAD_SIGNATURE)
    return None


def _check_identity(
    request: Request, parsed: ParsedAuthorization, credentials: AwsCredentials
) -> AuthRefusal | None:
    if not hmac.compare_digest(parsed.access_key_id, credentials.access_key_id):
        return AuthRefusal("UnrecognizedClientException", _BAD_TOKEN)
    token = request.headers.get("x-amz-security-token")
    expected = credentials.session_token
    if expected is not None and (token is None or not expected.matches(token)):
        return AuthRefusal("UnrecognizedClientException", _BAD_TOKEN)
    signed = {name.lower() for name in parsed.signed_headers}
    if token is not None and "x-amz-security-token" not in signed:
        message = "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization."
        return AuthRefusal("InvalidSignatureException", message)
    if "host" not in signed:
        message = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        return AuthRefusal("InvalidSignatureException", message)
    return None


def _check_scope(
    request: Request, parsed: ParsedAuthorization, now: float, max_skew: float
) -> AuthRefusal | None:
    if parsed.service != SERVICE:
        message = f"Credential should be scoped to correct service: '{SERVICE}'."
        return AuthRefusal("InvalidSignatureException", message)
    amz_date = request.headers.get("x-amz-date", "")
    try:
        signed_at = datetime.datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=datetime.UTC)
    except ValueError:
        message = "Authorization header requires existence of a valid 'X-Amz-Date' header."
        return AuthRefusal("IncompleteSignatureException", message)
    if amz_date[:8] != parsed.date:
        message = (
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{parsed.date}' != '{amz_date[:8]}', from '{amz_date}'."
        )
        return AuthRefusal("InvalidSignatureException", message)
    return _check_skew(signed_at, now, max_skew)


def _check_skew(signed_at: datetime.datetime, now: float, max_skew: float) -> AuthRefusal | None:
    current = datetime.datetime.fromtimestamp(now, datetime.UTC)
    window = datetime.timedelta(seconds=max_skew)
    minutes = f"{max_skew / 60:g} min."

    def stamp(moment: datetime.datetime) -> str:
        return moment.strftime(_AMZ_DATE)

    if signed_at < current - window:
        message = (
            f"Signature expired: {stamp(signed_at)} is now earlier than "
            f"{stamp(current - window)} ({stamp(current)} - {minutes})"
        )
        return AuthRefusal("InvalidSignatureException", message)
    if signed_at > current + window:
        message = (
            f"Signature not yet current: {stamp(signed_at)} is still later than "
            f"{stamp(current + window)} ({stamp(current)} + {minutes})"
        )
        return AuthRefusal("InvalidSignatureException", message)
    return None
