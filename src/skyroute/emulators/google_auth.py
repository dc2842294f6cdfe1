"""Google credentials for the emulators: API keys, bearer tokens and the OAuth token endpoint.

- Gemini API: `x-goog-api-key: <key>` (or `?key=<key>` in the URL). A missing key is 403
  PERMISSION_DENIED and a wrong one 400 INVALID_ARGUMENT `API_KEY_INVALID`, as Google answers.
- Vertex AI: `Authorization: Bearer <token>`, where the token is the configured static one or
  one this emulator issued at `POST /token` and that has not expired; else 401 UNAUTHENTICATED.
- `POST /token` is the service-account JWT grant that google-auth makes against the
  `token_uri` of a key file (protocols.md §10, §0.12): `grant_type=urn:ietf:params:oauth:
  grant-type:jwt-bearer&assertion=<RS256 JWT>`. The JWT must be signed by a trusted service
  account's key, with `iss` = its `client_email`, a `scope`, and a short-lived `iat`/`exp`;
  `aud` is `https://oauth2.googleapis.com/token` and deliberately not checked against this
  emulator's URL. Errors are oauth2.googleapis.com's `{"error", "error_description"}`.

`write_service_account_file` makes a fresh RSA key and a key file pointing at the emulator;
`load_service_account` reads such a file (or Google's own) back as the public half to trust.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from skyroute.core.secret import Secret
from skyroute.emulators.dialect import Reply
from skyroute.emulators.google_errors import google_error, oauth_error
from skyroute.emulators.http import Request

__all__ = [
    "JWT_BEARER",
    "GoogleAuth",
    "ServiceAccount",
    "api_key_source",
    "load_service_account",
    "write_service_account_file",
]

JWT_BEARER: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_LIFETIME: Final = 3599
_MAX_JWT_LIFETIME: Final = 3600
_SKEW: Final = 300.0
_ENCODER: Final = msgspec.json.Encoder()
_ERROR_INFO: Final = "type.googleapis.com/google.rpc.ErrorInfo"
_BAD_SIGNATURE: Final = "Invalid JWT Signature."
_BAD_TIMES: Final = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
    "Check your iat and exp values in the JWT claim."
)
_NO_CREDENTIALS: Final = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_BAD_CREDENTIALS: Final = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_UNREGISTERED: Final = (
    "Method doesn't allow unregistered callers (callers without established identity). Please "
    "use API Key or other form of API consumer identity to call this API."
)
_BAD_KEY: Final = "API key not valid. Please pass a valid API key."


class ServiceAccount(msgspec.Struct, frozen=True, kw_only=True):
    """The public half of a service account key: what the token endpoint trusts."""

    client_email: str
    public_key_pem: bytes
    key_id: str | None = None


class _TokenGrant(msgspec.Struct, frozen=True):
    access_token: str
    expires_in: int
    token_type: str = "Bearer"


class _Rejected(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def write_service_account_file(
    path: str | os.PathLike[str],
    token_uri: str,
    *,
    project_id: str = "emulated-project",
    client_email: str | None = None,
) -> Path:
    """Write a new service-account key file whose `token_uri` is the emulator's `/token`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem.decode("ascii"),
        "client_email": client_email or f"emulator@{project_id}.iam.gserviceaccount.com",
        "client_id": str(secrets.randbelow(10**20)),
        "token_uri": token_uri,
    }
    target = Path(path)
    target.write_text(json.dumps(info, indent=2), encoding="utf-8")
    target.chmod(0o600)
    return target


def load_service_account(path: str | os.PathLike[str]) -> ServiceAccount:
    """The public half of a service-account key file (written here or by Google)."""
    info = json.loads(Path(path).read_text(encoding="utf-8"))
    key = serialization.load_pem_private_key(info["private_key"].encode("ascii"), password=None)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return ServiceAccount(
        client_email=info["client_email"], public_key_pem=public, key_id=info.get("private_key_id")
    )


def api_key_source(request: Request) -> tuple[str | None, bool]:
    """The Gemini API key of a request and whether it came in the URL (`?key=`)."""
    header = request.headers.get("x-goog-api-key")
    if header is not None:
        return header, False
    query = request.query_param("key")
    return query, query is not None


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _error_info(reason: str, service: str) -> list[dict[str, Any]]:
    return [
        {
            "@type": _ERROR_INFO,
            "reason": reason,
            "domain": "googleapis.com",
            "metadata": {"service": service},
        }
    ]


class GoogleAuth:
    """Checks credentials and issues access tokens. Runs on the emulator's event loop."""

    def __init__(
        self,
        *,
        api_key: Secret | None,
        token: Secret | None,
        accounts: Iterable[ServiceAccount],
        wall_clock: Callable[[], float],
        token_factory: Callable[[], str] | None = None,
        limit: int = 10_000,
    ) -> None:
        self._api_key = api_key
        self._token = token
        self._accounts = {account.client_email: account for account in accounts}
        self._wall_clock = wall_clock
        self._new_token = token_factory or (lambda: "ya29.emulated-" + secrets.token_urlsafe(24))
        self._issued: OrderedDict[str, float] = OrderedDict()
        self._limit = limit
        self.grants = 0
        """How many tokens `/token` has issued (a client that reuses its token asks once)."""

    def trust(self, account: ServiceAccount) -> None:
        self._accounts[account.client_email] = account

    # -- checks on API requests ------------------------------------------------------------

    def check_api_key(self, request: Request) -> Reply | None:
        """The Gemini API's answer to a missing or wrong key, or None to go on."""
        if self._api_key is None:
            return None
        key, _ = api_key_source(request)
        if not key:
            return google_error(403, _UNREGISTERED)
        if not self._api_key.matches(key):
            details = _error_info("API_KEY_INVALID", "generativelanguage.googleapis.com")
            return google_error(400, _BAD_KEY, details=details)
        return None

    def check_bearer(self, request: Request) -> Reply | None:
        """Vertex's answer to a missing, unknown or expired token, or None to go on."""
        if self._token is None and not self._accounts:
            return None
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not token:
            details = _error_info("CREDENTIALS_MISSING", "aiplatform.googleapis.com")
            return google_error(401, _NO_CREDENTIALS, details=details)
        if self._token is not None and self._token.matches(token):
            return None
        expiry = self._issued.get(token)
        if expiry is not None and expiry > self._wall_clock():
            return None
        reason = "ACCESS_TOKEN_EXPIRED" if expiry is not None else "ACCESS_TOKEN_TYPE_UNSUPPORTED"
        details = _error_info(reason, "aiplatform.googleapis.com")
        return google_error(401, _BAD_CREDENTIALS, details=details)

    # -- the token endpoint ----------------------------------------------------------------

    def grant(self, request: Request) -> Reply:
        """Answer `POST /token`: verify the JWT grant and issue an access token."""
        try:
            self._verify_grant(request.body)
        except _Rejected as rejected:
            return rejected.reply
        token = self._new_token()
        self._issued[token] = self._wall_clock() + TOKEN_LIFETIME
        while len(self._issued) > self._limit:
            self._issued.popitem(last=False)
        self.grants += 1
        return Reply(200, _ENCODER.encode(_TokenGrant(token, TOKEN_LIFETIME)))

    def _verify_grant(self, body: bytes) -> None:
        form = parse_qs(body.decode("utf-8", "replace"))
        grant_type = form.get("grant_type", [""])[0]
        if grant_type != JWT_BEARER:
            raise _Rejected(
                oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
            )
        assertion = form.get("assertion", [""])[0]
        if not assertion:
            raise _Rejected(oauth_error("invalid_request", "Missing required parameter: assertion"))
        header, claims, signed, signature = _parse_jwt(assertion)
        account = self._accounts.get(str(claims.get("iss")))
        if account is None:
            raise _Rejected(oauth_error("invalid_grant", "Invalid grant: account not found"))
        _verify_signature(account, header, signed, signature)
        self._check_claims(claims)

    def _check_claims(self, claims: dict[str, Any]) -> None:
        now = self._wall_clock()
        issued, expires = claims.get("iat"), claims.get("exp")
        if not isinstance(issued, int | float) or not isinstance(expires, int | float):
            raise _Rejected(oauth_error("invalid_grant", _BAD_TIMES))
        if expires <= now or issued > now + _SKEW or expires - issued > _MAX_JWT_LIFETIME:
            raise _Rejected(oauth_error("invalid_grant", _BAD_TIMES))
        if not claims.get("scope") and not claims.get("target_audience"):
            raise _Rejected(
                oauth_error("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
            )


def _parse_jwt(assertion: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Header, claims, the signed bytes and the signature of a compact JWS."""
    try:
        head, body, signature = assertion.split(".")
        header, claims = json.loads(_b64url(head)), json.loads(_b64url(body))
        raw_signature = _b64url(signature)
        signed = f"{head}.{body}".encode("ascii")
    except (ValueError, binascii.Error):
        raise _Rejected(oauth_error("invalid_grant", "Invalid JWT: malformed assertion.")) from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _Rejected(oauth_error("invalid_grant", "Invalid JWT: malformed assertion."))
    return header, claims, signed, raw_signature


def _verify_signature(
    account: ServiceAccount, header: dict[str, Any], signed: bytes, signature: bytes
) -> None:
    kid = header.get("kid")
    if header.get("alg") != "RS256" or (kid and account.key_id and kid != account.key_id):
        raise _Rejected(oauth_error("invalid_grant", _BAD_SIGNATURE))
    key = serialization.load_pem_public_key(account.public_key_pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise _Rejected(oauth_error("invalid_grant", _BAD_SIGNATURE))
    try:
        key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise _Rejected(oauth_error("invalid_grant", _BAD_SIGNATURE)) from None
