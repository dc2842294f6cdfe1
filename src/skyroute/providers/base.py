"""The provider interface, and the one place transport errors become gateway errors.

A provider turns a chat call for one deployment into an HTTP request (URL, auth, body)
and turns an upstream error response into the gateway's error tree. It does not send
anything itself: the attempt loop sends through the shared transport, so pooling,
timeouts and cancellation behave the same for every cloud.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import msgspec

from skyroute.core.errors import (
    GatewayError,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from skyroute.transport import errors as transport_errors


class UpstreamRequest(msgspec.Struct, frozen=True):
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes


class Headers(abc.ABC):
    """What a provider may read of an upstream response's headers."""

    @abc.abstractmethod
    def header(self, name: str) -> str | None: ...


class Provider(abc.ABC):
    """One configured upstream (an entry under ``providers:``)."""

    type_name: ClassVar[str]

    def __init__(self, name: str) -> None:
        self.name = name

    @abc.abstractmethod
    async def chat_request(
        self, model: str, body: bytes, *, stream: bool, request_id: str, attempt: int
    ) -> UpstreamRequest:
        """The HTTP request for a chat completion on ``model`` (the deployment's name)."""

    @abc.abstractmethod
    def map_error(self, status: int, headers: Headers, body: bytes, now: float) -> GatewayError:
        """The gateway error for an upstream non-2xx response (``now``: wall-clock epoch)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release what the provider holds (token refreshers); most hold nothing."""


def map_transport_error(exc: transport_errors.TransportError) -> GatewayError:
    """Sockets and HTTP framing, mapped once. Messages never name the upstream host."""
    match exc:
        case transport_errors.ResponseTimeout():
            return UpstreamTimeout("The upstream did not answer in time.")
        case transport_errors.ReadTimeout():
            return UpstreamTimeout("The upstream stopped sending.")
        case transport_errors.ConnectTimeout():
            return UpstreamUnavailable("Timed out connecting to the upstream.")
        case transport_errors.ConnectError():
            return UpstreamUnavailable("Could not connect to the upstream.")
        case transport_errors.ConnectionLost():
            return UpstreamUnavailable("The upstream closed the connection.")
        case transport_errors.ResponseTooLarge():
            return UpstreamProtocolError("The upstream response was too large.")
        case _:
            return UpstreamProtocolError("The upstream sent a malformed HTTP response.")


def common_headers(request_id: str, attempt: int) -> list[tuple[str, str]]:
    """Headers every upstream gets: JSON in and out, and ids for reconciliation."""
    return [
        ("content-type", "application/json"),
        ("accept", "application/json"),
        ("x-request-id", request_id),
        ("x-skyroute-attempt", str(attempt)),
    ]
