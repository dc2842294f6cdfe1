"""Who is calling. For now: the master key, compared in constant time."""

from __future__ import annotations

from skyroute.core.errors import AuthenticationFailed
from skyroute.core.secret import Secret

_BEARER = b"bearer "


def bearer_token(authorization: bytes | None) -> bytes | None:
    if authorization is None or len(authorization) <= len(_BEARER):
        return None
    if authorization[: len(_BEARER)].lower() != _BEARER:
        return None
    return authorization[len(_BEARER) :].strip()


def authenticate(token: bytes | None, master_key: Secret) -> None:
    """Raise ``AuthenticationFailed`` (one body for every failure) unless the key matches."""
    # Compare even when absent, so a missing key costs the same as a wrong one.
    if not master_key.matches(token or b"") or token is None:
        raise AuthenticationFailed()
