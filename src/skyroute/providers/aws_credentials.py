"""Where Bedrock's credentials come from, and keeping temporary ones fresh.

In order: keys in the provider's config (env references); a Bedrock API key (a bearer
token); the standard AWS environment variables; then, when the ``aws`` extra (botocore)
is installed, botocore's full chain: shared files and profiles, web identity (EKS IRSA),
container and instance metadata. botocore's chain does blocking I/O, so it runs in a
worker thread, and temporary credentials are refreshed ahead of expiry by one caller
while the others keep using the current ones.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from skyroute.core.config import BedrockProviderConfig
from skyroute.core.errors import UpstreamRejected
from skyroute.core.secret import Secret
from skyroute.providers.sigv4 import AwsCredentials

# Refresh temporary credentials this long before they expire.
_REFRESH_AHEAD = 300.0


class CredentialSource(Protocol):
    async def get(self) -> AwsCredentials: ...


class StaticCredentials:
    def __init__(self, credentials: AwsCredentials) -> None:
        self._credentials = credentials

    async def get(self) -> AwsCredentials:
        return self._credentials


class BotocoreCredentials:
    """botocore's default chain, resolved in a thread and refreshed before expiry."""

    def __init__(self, profile: str | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._profile = profile
        self._clock = clock
        self._current: AwsCredentials | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> AwsCredentials:
        if self._current is not None and self._clock() < self._refresh_at:
            return self._current
        async with self._lock:
            if self._current is None or self._clock() >= self._refresh_at:
                self._current, lifetime = await asyncio.to_thread(self._resolve)
                self._refresh_at = self._clock() + max(1.0, lifetime - _REFRESH_AHEAD)
        assert self._current is not None
        return self._current

    def _resolve(self) -> tuple[AwsCredentials, float]:
        try:
            import botocore.session  # type: ignore[import-untyped]
        except ImportError:
            raise UpstreamRejected(
                "Bedrock needs credentials: set keys in the config, or install skyroute[aws] "
                "for the standard AWS credential chain."
            ) from None

        session = botocore.session.Session(profile=self._profile)
        found: Any = session.get_credentials()
        if found is None:
            raise UpstreamRejected("No AWS credentials were found for Bedrock.")
        frozen = found.get_frozen_credentials()
        token = Secret(frozen.token) if frozen.token else None
        credentials = AwsCredentials(
            access_key_id=frozen.access_key,
            secret_access_key=Secret(frozen.secret_key),
            session_token=token,
        )
        expiry = getattr(found, "_expiry_time", None)
        lifetime = expiry.timestamp() - time.time() if expiry is not None else 3600.0
        return credentials, lifetime


def credential_source(
    config: BedrockProviderConfig, env: Mapping[str, str]
) -> CredentialSource | None:
    """The SigV4 credential source for a Bedrock provider; ``None`` when it uses an API
    key (bearer auth) instead."""
    if config.api_key is not None:
        return None
    if config.access_key_id is not None and config.secret_access_key is not None:
        return StaticCredentials(
            AwsCredentials(
                access_key_id=config.access_key_id,
                secret_access_key=config.secret_access_key,
                session_token=config.session_token,
            )
        )
    if config.profile is None and env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        token = env.get("AWS_SESSION_TOKEN")
        return StaticCredentials(
            AwsCredentials(
                access_key_id=env["AWS_ACCESS_KEY_ID"],
                secret_access_key=Secret(env["AWS_SECRET_ACCESS_KEY"]),
                session_token=Secret(token) if token else None,
            )
        )
    return BotocoreCredentials(config.profile)
