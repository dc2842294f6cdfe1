"""Microsoft Entra ID bearer tokens for Azure OpenAI.

A ``TokenProvider`` is anything with ``async token() -> str``: the same idea as the
``azure_ad_token_provider`` callable of the official SDK. Two ship here: a static token
from config, and the OAuth 2.0 client-credentials grant (one form POST, cached until
five minutes before expiry, refreshed by one caller while the others wait).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol
from urllib.parse import quote, urlencode

import msgspec

from skyroute.core.config import EntraConfig
from skyroute.core.errors import UpstreamRejected
from skyroute.core.secret import Secret
from skyroute.transport.client import HttpClient
from skyroute.transport.errors import TransportError

_REFRESH_MARGIN = 300.0


class TokenProvider(Protocol):
    async def token(self) -> str: ...

    async def aclose(self) -> None: ...


class StaticToken:
    def __init__(self, token: Secret) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token.reveal()

    async def aclose(self) -> None:
        return None


class _TokenAnswer(msgspec.Struct):
    access_token: str
    expires_in: int = 3600
    token_type: str = "Bearer"


_decode_answer = msgspec.json.Decoder(_TokenAnswer)


class ClientCredentials:
    """The client-credentials grant against ``{authority}/{tenant}/oauth2/v2.0/token``."""

    def __init__(
        self,
        config: EntraConfig,
        client: HttpClient,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._client = client
        self._clock = clock
        self._url = (
            f"{config.authority.rstrip('/')}/{quote(config.tenant_id, safe='')}/oauth2/v2.0/token"
        )
        self._token: Secret | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        if self._token is not None and self._clock() < self._expires_at:
            return self._token.reveal()
        async with self._lock:
            if self._token is None or self._clock() >= self._expires_at:
                await self._refresh()
            assert self._token is not None
            return self._token.reveal()

    async def _refresh(self) -> None:
        form = urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": self._config.client_id,
                "client_secret": self._config.client_secret.reveal(),
                "scope": self._config.scope,
            }
        ).encode()
        headers = [("content-type", "application/x-www-form-urlencoded")]
        try:
            response = await self._client.request(
                "POST", self._url, headers, form, connect_timeout=5.0, header_timeout=15.0
            )
            try:
                body = await response.read(limit=1 << 20, timeout=15.0)
            finally:
                response.close()
        except TransportError:
            raise UpstreamRejected("Could not obtain an Entra token for Azure.") from None
        if response.status != 200:
            raise UpstreamRejected(f"Entra refused the token request ({response.status}).")
        try:
            answer = _decode_answer.decode(body)
        except (msgspec.DecodeError, ValueError):
            raise UpstreamRejected("Entra returned an unreadable token response.") from None
        self._token = Secret(answer.access_token)
        lifetime = max(answer.expires_in - _REFRESH_MARGIN, answer.expires_in / 2)
        self._expires_at = self._clock() + lifetime

    async def aclose(self) -> None:
        return None
