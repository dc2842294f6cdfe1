"""OAuth access tokens for Vertex AI.

A static token from config, or google-auth's credentials (a service-account key file, or
Application Default Credentials, which cover the metadata server and workload identity
federation). google-auth refreshes with blocking HTTP, so refreshes run in a worker
thread; one caller refreshes while the others wait for it, and tokens are refreshed five
minutes before they expire, so a request never waits on Google in the common case.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Callable
from typing import Any, Protocol

from skyroute.core.config import VertexProviderConfig
from skyroute.core.errors import UpstreamRejected
from skyroute.core.secret import Secret

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_REFRESH_AHEAD = 300.0


class AccessTokens(Protocol):
    async def token(self) -> str: ...


class StaticAccessToken:
    def __init__(self, token: Secret) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token.reveal()


class GoogleCredentials:
    """google-auth credentials, refreshed off the event loop."""

    def __init__(
        self, credentials_file: str | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._file = credentials_file
        self._clock = clock
        self._credentials: Any = None
        self._token: Secret | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token.reveal()
        async with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                token, lifetime = await asyncio.to_thread(self._refresh)
                self._token = Secret(token)
                self._refresh_at = self._clock() + max(1.0, lifetime - _REFRESH_AHEAD)
        return self._token.reveal()

    def _refresh(self) -> tuple[str, float]:
        import google.auth
        import google.auth.exceptions
        import google.auth.transport.requests
        from google.oauth2 import service_account

        try:
            if self._credentials is None:
                if self._file is not None:
                    self._credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                        self._file, scopes=[SCOPE]
                    )
                else:
                    self._credentials, _ = google.auth.default(scopes=[SCOPE])
            self._credentials.refresh(google.auth.transport.requests.Request())
        except (google.auth.exceptions.GoogleAuthError, OSError, ValueError):
            # The exception text can hold the token endpoint's answer; keep it out.
            raise UpstreamRejected("Could not obtain a Google access token.") from None
        expiry = self._credentials.expiry  # google-auth keeps a naive UTC datetime
        lifetime = 3600.0
        if expiry is not None:
            if expiry.tzinfo is None:
                expiry = expiry.replace(tzinfo=datetime.UTC)
            lifetime = expiry.timestamp() - time.time()
        return str(self._credentials.token), lifetime


def access_tokens(config: VertexProviderConfig) -> AccessTokens:
    if config.access_token is not None:
        return StaticAccessToken(config.access_token)
    return GoogleCredentials(config.credentials_file)
