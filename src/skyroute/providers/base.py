"""The provider interface, and the one place transport errors become gateway errors.

A provider turns a chat call for one deployment into an HTTP request (URL, auth, body)
and turns an upstream error response into the gateway's error tree. It does not send
anything itself: the attempt loop sends through the shared transport, so pooling,
timeouts and cancellation behave the same for every cloud.
"""

from __future__ import annotations

import abc
from typing import ClassVar, Protocol

import msgspec

from skyroute.core.errors import (
    GatewayError,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from skyroute.core.usage import Usage
from skyroute.transport import errors as transport_errors
from skyroute.transport.client import Response
from skyroute.wire.openai import ChatRequest


class UpstreamRequest(msgspec.Struct, frozen=True):
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes


class Headers(Protocol):
    """What a provider may read of an upstream response's headers."""

    def header(self, name: str) -> str | None: ...


class ChatCall:
    """One attempt at a chat completion, as a provider sees it.

    ``inbound`` is the client's request as decoded once by the API layer; ``model`` is the
    deployment's upstream model name. ``created`` (epoch seconds) and ``response_id`` are
    what a translating provider writes into the OpenAI response it builds.
    """

    __slots__ = ("attempt", "created", "inbound", "model", "request_id", "response_id")

    def __init__(
        self, inbound: ChatRequest, *, model: str, request_id: str, attempt: int, created: int
    ) -> None:
        self.inbound = inbound
        self.model = model
        self.request_id = request_id
        self.attempt = attempt
        self.created = created
        self.response_id = "chatcmpl-" + request_id


class Answer:
    """A complete non-stream answer in OpenAI's format, and its usage."""

    __slots__ = ("body", "usage")

    def __init__(self, body: bytes, usage: Usage | None) -> None:
        self.body = body
        self.usage = usage


class UpstreamEvents(Protocol):
    """An upstream stream as OpenAI chat-chunk payloads (the JSON after ``data: ``), or
    ``b"[DONE]"``. ``next_event`` returns ``None`` at the end of the body and raises
    ``TransportError`` for socket trouble and ``GatewayError`` for anything the upstream
    said or garbled (an in-stream exception, a malformed frame)."""

    @property
    def ended(self) -> bool:
        """The upstream body has been read to its end."""
        ...

    async def next_event(self, timeout: float) -> bytes | None: ...

    def ready(self) -> bytes | None:
        """A payload already read and decoded, returned without waiting; ``None`` if the
        next one needs more bytes from the upstream."""
        ...


class Provider(abc.ABC):
    """One configured upstream (an entry under ``providers:``)."""

    type_name: ClassVar[str]

    def __init__(self, name: str) -> None:
        self.name = name

    @abc.abstractmethod
    async def chat_request(self, call: ChatCall) -> UpstreamRequest:
        """The HTTP request for one attempt (URL, auth, body)."""

    @abc.abstractmethod
    def read_answer(self, call: ChatCall, body: bytes) -> Answer:
        """A 2xx non-stream body as an OpenAI chat completion; raise on garbage."""

    @abc.abstractmethod
    def open_events(self, call: ChatCall, response: Response) -> UpstreamEvents:
        """A 2xx streamed response as OpenAI chunk payloads."""

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
