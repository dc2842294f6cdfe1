"""Anthropic errors ⇄ the gateway's error tree (protocols.md §6 "Errors", §9).

Upstream: an HTTP error body ``{"type": "error", "error": {"type", "message"}}`` or an
in-band ``error`` event of a stream (which may come after HTTP 200) maps through one table
keyed by ``error.type``; the HTTP status decides only when the body names no type this
table knows. Claude on Vertex answers quota errors in Google's format (protocols.md §4c),
so such bodies go to ``map_google_error``.

Inbound: ``error_type`` and ``error_body`` write the gateway's own errors the way
Anthropic does, for clients of ``POST /v1/messages``.

Messages shown to clients never carry URLs or keys, and credential or permission failures
never echo the upstream text at all.

Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

import enum
import re
from typing import Any, assert_never

import msgspec

from skyroute.core.errors import (
    ContextLengthExceeded,
    GatewayError,
    UpstreamBadRequest,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from skyroute.wire.gemini_errors import map_google_error
from skyroute.wire.retry_after import HeaderLookup, parse_retry_after

__all__ = ["error_body", "error_type", "map_anthropic_error", "map_stream_error"]


class _Outcome(enum.Enum):
    RATE_LIMITED = "rate_limited"
    SPEND_LIMITED = "spend_limited"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    BAD_REQUEST = "bad_request"
    REJECTED = "rejected"


# protocols.md §6, the table of error types.
_TABLE: dict[str, _Outcome] = {
    "rate_limit_error": _Outcome.RATE_LIMITED,
    "overloaded_error": _Outcome.UNAVAILABLE,  # 529: retry, or fail over
    "api_error": _Outcome.UNAVAILABLE,
    "timeout_error": _Outcome.TIMEOUT,
    "invalid_request_error": _Outcome.BAD_REQUEST,
    "request_too_large": _Outcome.BAD_REQUEST,  # 413, the 32 MB cap
    "authentication_error": _Outcome.REJECTED,
    "permission_error": _Outcome.REJECTED,
    "not_found_error": _Outcome.REJECTED,
    "billing_error": _Outcome.REJECTED,
}

# protocols.md §9: "prompt is too long: 207791 tokens > 200000 maximum" and "input length
# and `max_tokens` exceed context limit: a + b > c".
_CONTEXT_PHRASES = ("prompt is too long", "exceed context limit")
# protocols.md §6: spend-limit 429s carry this code and should not be retried; SDK 2.14
# types a contract-level twin of it (anthropic/types/shared/*_spend_limit_reached_*).
_SPEND_LIMITS = frozenset({"enforced_spend_limit_reached", "contract_spend_limit_reached"})
_SECRETS = re.compile(
    r"https?://\S+"  # URLs
    r"|\bsk-ant-[\w-]+"  # Anthropic API keys
    r"|\bprojects/[^/\s'\"`]+"  # Vertex project ids
)
_MAX_MESSAGE = 500


class _Error(msgspec.Struct, kw_only=True):
    type: str | None = None
    message: str | None = None
    details: Any = None
    status: str | None = None
    """Set only in Google-format bodies (Claude on Vertex)."""
    code: int | None = None


class _Envelope(msgspec.Struct):
    error: _Error | None = None


_decode: msgspec.json.Decoder[_Envelope | list[Any]] = msgspec.json.Decoder(_Envelope | list[Any])


def map_anthropic_error(
    status: int, headers_get: HeaderLookup, body: bytes, now: float
) -> GatewayError:
    """An HTTP error from Anthropic, Claude on Bedrock (InvokeModel) or on Vertex.
    ``now`` is the wall clock in epoch seconds, for an HTTP-date ``retry-after``."""
    envelope = _parse(body)
    if isinstance(envelope, list) or (
        envelope.error is not None and envelope.error.type is None and envelope.error.status
    ):
        return map_google_error(status, body)
    error = envelope.error or _Error()
    outcome = _TABLE.get(error.type or "") or _by_status(status)
    if _code(error) in _SPEND_LIMITS:
        outcome = _Outcome.SPEND_LIMITED
    retry_after = parse_retry_after(headers_get, now)
    return _error(outcome, error.type or f"HTTP {status}", _message(error), retry_after)


def map_stream_error(data: bytes) -> GatewayError:
    """The ``data`` of an in-band ``error`` event; ends the stream."""
    envelope = _parse(data)
    error = (None if isinstance(envelope, list) else envelope.error) or _Error()
    outcome = _TABLE.get(error.type or "", _Outcome.UNAVAILABLE)
    if outcome is _Outcome.REJECTED:
        outcome = _Outcome.UNAVAILABLE  # the credentials were accepted when the stream began
    return _error(outcome, error.type or "error event", _message(error), None)


def _by_status(status: int) -> _Outcome:
    if status == 429:
        return _Outcome.RATE_LIMITED
    if status in (400, 413, 422):
        return _Outcome.BAD_REQUEST
    if status in (408, 504):
        return _Outcome.TIMEOUT
    if status >= 500 or status == 409:
        return _Outcome.UNAVAILABLE
    return _Outcome.REJECTED


def _error(outcome: _Outcome, name: str, message: str, retry_after: float | None) -> GatewayError:
    detail = f"Anthropic {name}: {message}" if message else f"Anthropic {name}."
    match outcome:
        case _Outcome.RATE_LIMITED:
            return UpstreamRateLimited(detail, retry_after=retry_after)
        case _Outcome.SPEND_LIMITED:
            return UpstreamRejected(f"Anthropic {name}: the account's spend limit is reached.")
        case _Outcome.UNAVAILABLE:
            return UpstreamUnavailable(detail, retry_after=retry_after)
        case _Outcome.TIMEOUT:
            return UpstreamTimeout(detail)
        case _Outcome.BAD_REQUEST:
            if any(phrase in message.lower() for phrase in _CONTEXT_PHRASES):
                return ContextLengthExceeded(detail, param="messages")
            return UpstreamBadRequest(detail)
        case _Outcome.REJECTED:
            return UpstreamRejected(
                f"Anthropic {name}: the deployment's credentials, permissions, account or "
                "model were refused."
            )
        case _:
            assert_never(outcome)


def _parse(body: bytes) -> _Envelope | list[Any]:
    try:
        return _decode.decode(body)
    except (msgspec.DecodeError, ValueError):
        return _Envelope()


def _code(error: _Error) -> str | None:
    details = error.details
    return details.get("error_code") if isinstance(details, dict) else None


def _message(error: _Error) -> str:
    text = _SECRETS.sub("[redacted]", (error.message or "").strip())
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "..."


# --- the gateway's own errors, as Anthropic writes them -------------------------------

# protocols.md §6, the table of error types, read the other way.
_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class _ErrorOut(msgspec.Struct):
    type: str
    message: str


class _EnvelopeOut(msgspec.Struct, kw_only=True):
    type: str = "error"
    error: _ErrorOut


_encode = msgspec.json.Encoder()


def error_type(error: GatewayError) -> str:
    """Anthropic's ``error.type`` for the gateway error's HTTP status."""
    found = _TYPES.get(error.status)
    if found is not None:
        return found
    return "invalid_request_error" if 400 <= error.status < 500 else "api_error"


def error_body(error: GatewayError) -> bytes:
    """``{"type": "error", "error": {"type", "message"}}``, the body Anthropic answers
    errors with (also the ``data`` of an in-band ``error`` event)."""
    return _encode.encode(
        _EnvelopeOut(error=_ErrorOut(type=error_type(error), message=error.message))
    )
