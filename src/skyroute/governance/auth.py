"""Reading the bearer token of an ``Authorization`` header (keys: ``directory.py``)."""

from __future__ import annotations

_BEARER = b"bearer "


def bearer_token(authorization: bytes | None) -> bytes | None:
    if authorization is None or len(authorization) <= len(_BEARER):
        return None
    if authorization[: len(_BEARER)].lower() != _BEARER:
        return None
    return authorization[len(_BEARER) :].strip()
