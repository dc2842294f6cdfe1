"""Google errors → the gateway's error tree (protocols.md "Google error format", §0.10, §9).

Vertex AI and the Gemini API write ``{"error": {"code", "message", "status", "details"}}``;
quota errors for partner models on Vertex sometimes come wrapped in a one-element list
(protocols.md §4c). The canonical ``status`` string picks the outcome through one table;
the HTTP status decides only when the body names no status this table knows.

Google sends no ``Retry-After`` header: a 429's delay is the body's
``details[@type=type.googleapis.com/google.rpc.RetryInfo].retryDelay``, a proto Duration
such as ``"38s"`` or ``"1.5s"`` (protocols.md §0.10).

Messages shown to clients never carry URLs, API keys, project paths or service-account
emails, and credential or permission failures never echo the upstream text at all.

Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

import enum
import math
import re
from typing import assert_never

import msgspec

from skyroute.core.errors import (
    ContextLengthExceeded,
    GatewayError,
    UpstreamBadRequest,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)

__all__ = ["map_google_error"]


class _Outcome(enum.Enum):
    RATE_LIMITED = "rate_limited"
    BAD_REQUEST = "bad_request"
    REJECTED = "rejected"
    UNAVAILABLE = "unavailable"


_TABLE: dict[str, _Outcome] = {
    "RESOURCE_EXHAUSTED": _Outcome.RATE_LIMITED,
    "INVALID_ARGUMENT": _Outcome.BAD_REQUEST,
    "OUT_OF_RANGE": _Outcome.BAD_REQUEST,
    # Gemini API troubleshooting guide: 400 FAILED_PRECONDITION "Gemini API free tier is not
    # available in your country. Please enable billing…": the deployment's fault, not the
    # request's, so another deployment may well succeed.
    "FAILED_PRECONDITION": _Outcome.REJECTED,
    "UNAUTHENTICATED": _Outcome.REJECTED,
    "PERMISSION_DENIED": _Outcome.REJECTED,
    "NOT_FOUND": _Outcome.REJECTED,
    "UNAVAILABLE": _Outcome.UNAVAILABLE,
    "INTERNAL": _Outcome.UNAVAILABLE,
    "DEADLINE_EXCEEDED": _Outcome.UNAVAILABLE,
    "UNKNOWN": _Outcome.UNAVAILABLE,
    "ABORTED": _Outcome.UNAVAILABLE,
}

# protocols.md §9: 400 INVALID_ARGUMENT "The input token count (N) exceeds the maximum
# number of tokens allowed (M)."
_CONTEXT_PHRASES = ("input token count", "exceeds the maximum number of tokens")
# The Gemini API answers a bad key with 400 INVALID_ARGUMENT "API key not valid. Please
# pass a valid API key." and ErrorInfo reason API_KEY_INVALID (troubleshooting guide).
_BAD_KEY_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED"})
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)s", re.ASCII)
_SECRETS = re.compile(
    r"https?://\S+"  # URLs: help links, and resource URLs that name the project
    r"|//[\w.-]+\.googleapis\.com/\S+"  # full resource names
    r"|\bAIza[0-9A-Za-z_-]{20,}"  # API keys
    r"|\bya29\.[0-9A-Za-z._-]+"  # OAuth access tokens
    r"|\bprojects/[^/\s'\"`]+"  # project ids and numbers
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # service-account and user emails
)
_MAX_MESSAGE = 500


class _Wire(msgspec.Struct, kw_only=True, rename="camel"):
    pass


class _Detail(_Wire):
    type: str | None = msgspec.field(default=None, name="@type")
    retry_delay: str | None = None
    reason: str | None = None


class _Error(_Wire):
    code: int | None = None
    message: str | None = None
    status: str | None = None
    details: list[_Detail] = []


class _Envelope(_Wire):
    error: _Error | None = None


_decode = msgspec.json.Decoder(_Envelope | list[_Envelope])


def map_google_error(status: int, body: bytes) -> GatewayError:
    """An error from Vertex AI or the Gemini API: an HTTP error body, or the ``error``
    object of a stream payload (with ``status`` taken from its ``code``)."""
    error = _parse(body)
    name = (error.status or "").upper()
    outcome = _TABLE.get(name) or _by_status(status)
    if any(d.reason in _BAD_KEY_REASONS for d in error.details):
        outcome = _Outcome.REJECTED
    label = f"Google {name or f'HTTP {status}'}"
    return _error(outcome, label, _message(error), error.details)


def _by_status(status: int) -> _Outcome:
    if status == 429:
        return _Outcome.RATE_LIMITED
    if status in (400, 413, 422):
        return _Outcome.BAD_REQUEST
    if status >= 500 or status == 408:
        return _Outcome.UNAVAILABLE
    return _Outcome.REJECTED


def _error(outcome: _Outcome, label: str, message: str, details: list[_Detail]) -> GatewayError:
    detail = f"{label}: {message}" if message else f"{label}."
    match outcome:
        case _Outcome.RATE_LIMITED:
            return UpstreamRateLimited(detail, retry_after=_retry_delay(details))
        case _Outcome.BAD_REQUEST:
            lowered = message.lower()
            if any(phrase in lowered for phrase in _CONTEXT_PHRASES):
                return ContextLengthExceeded(detail, param="messages")
            return UpstreamBadRequest(detail)
        case _Outcome.REJECTED:
            return UpstreamRejected(
                f"{label}: the deployment's credentials, permissions, project or model "
                "were refused."
            )
        case _Outcome.UNAVAILABLE:
            return UpstreamUnavailable(detail)
        case _:
            assert_never(outcome)


def _retry_delay(details: list[_Detail]) -> float | None:
    for detail in details:
        if detail.type == _RETRY_INFO and detail.retry_delay is not None:
            match = _DURATION.fullmatch(detail.retry_delay.strip())
            if match is not None:
                seconds = float(match.group(1))
                return seconds if math.isfinite(seconds) else None
    return None


def _parse(body: bytes) -> _Error:
    try:
        envelope = _decode.decode(body)
    except (msgspec.DecodeError, ValueError):
        return _Error()
    if isinstance(envelope, list):
        envelope = envelope[0] if envelope else _Envelope()
    return envelope.error or _Error()


def _message(error: _Error) -> str:
    text = _SECRETS.sub("[redacted]", (error.message or "").strip())
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "..."
