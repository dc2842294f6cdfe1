"""Errors raised by the upstream HTTP transport.

Every failure of :class:`skyroute.transport.client.HttpClient` is one of these; OS, TLS and
parser errors are mapped here at the transport's edge and chained as ``__cause__``::

    TransportError                 base; ``origin`` is "scheme://host:port" or ""
    ├── ConnectError               refused, DNS failure, unreachable, TLS handshake rejected
    ├── ConnectTimeout             TCP (+TLS) connect did not finish within connect_timeout
    │   └── PoolTimeout            no free connection to the origin within connect_timeout
    ├── ResponseTimeout            no complete response head within header_timeout
    ├── ReadTimeout                the body went quiet for longer than the read timeout
    ├── ConnectionLost             peer closed or reset before the response was complete;
    │                              ``before_response`` says whether no response byte had arrived
    ├── ProtocolError              the peer's bytes are not a valid HTTP/1.1 response
    └── ResponseTooLarge           response head or body exceeds its limit

``ConnectError`` and ``ConnectTimeout`` mean the request was never sent, so any request may be
retried elsewhere. Messages name at most the origin: never a path, query string, header or
credential, because they end up in logs and client-facing error bodies.
"""

from __future__ import annotations

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "ConnectionLost",
    "PoolTimeout",
    "ProtocolError",
    "ReadTimeout",
    "ResponseTimeout",
    "ResponseTooLarge",
    "TransportError",
]


class TransportError(Exception):
    """Base of every error the transport raises."""

    def __init__(self, message: str, *, origin: str = "") -> None:
        super().__init__(f"{message} ({origin})" if origin else message)
        self.origin = origin


class ConnectError(TransportError):
    """The connection could not be established (refused, DNS, unreachable, TLS)."""


class ConnectTimeout(TransportError):
    """The TCP (and TLS) connect did not finish in time; the request was not sent."""


class PoolTimeout(ConnectTimeout):
    """Every connection to the origin stayed busy for the whole connect_timeout."""


class ResponseTimeout(TransportError):
    """The request was sent but no complete response head arrived within header_timeout."""


class ReadTimeout(TransportError):
    """No body bytes arrived for longer than the read timeout."""


class ConnectionLost(TransportError):
    """The peer closed or reset the connection before the response was complete."""

    def __init__(self, message: str, *, before_response: bool, origin: str = "") -> None:
        super().__init__(message, origin=origin)
        # True when not a single response byte arrived: the upstream may never have seen the
        # request, which is what makes a transparent retry on a fresh connection reasonable.
        self.before_response = before_response


class ProtocolError(TransportError):
    """The peer sent bytes that are not a valid HTTP/1.1 response."""


class ResponseTooLarge(TransportError):
    """The response head exceeded max_header_bytes, or the body exceeded the read limit."""
