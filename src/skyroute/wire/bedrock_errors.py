"""Bedrock errors → the gateway's error tree (protocols.md §3 "Bedrock errors", §9).

An HTTP error names its type in ``x-amzn-ErrorType`` (``ThrottlingException:http://…``,
cut at ``:``), else in the body's ``__type`` or ``code``. An in-stream exception names it
in ``:exception-type`` as the lowerCamel union member (``throttlingException``). Both go
through one table, keyed case-insensitively.

Messages shown to clients never carry URLs, ARNs (they hold account ids) or key ids, and
credential or permission failures never echo the upstream text at all. Bedrock sends no
``Retry-After``, so ``retry_after`` stays ``None`` and routing backs off on its own.

Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

import enum
import re
from typing import assert_never

import msgspec

from skyroute.core.errors import (
    ContextLengthExceeded,
    GatewayError,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)

__all__ = ["map_bedrock_error", "map_stream_exception"]


class _Outcome(enum.Enum):
    RATE_LIMITED = "rate_limited"
    REJECTED = "rejected"
    UNAVAILABLE = "unavailable"
    VALIDATION = "validation"


_RATE_LIMITED = _Outcome.RATE_LIMITED
_REJECTED = _Outcome.REJECTED
_UNAVAILABLE = _Outcome.UNAVAILABLE
_VALIDATION = _Outcome.VALIDATION

# Lowercased error type → outcome.
_TABLE: dict[str, _Outcome] = {
    "throttlingexception": _RATE_LIMITED,
    "servicequotaexceededexception": _RATE_LIMITED,
    "accessdeniedexception": _REJECTED,
    "unrecognizedclientexception": _REJECTED,
    "invalidsignatureexception": _REJECTED,
    "expiredtokenexception": _REJECTED,
    "resourcenotfoundexception": _REJECTED,
    "modelnotreadyexception": _UNAVAILABLE,
    "serviceunavailableexception": _UNAVAILABLE,
    "internalserverexception": _UNAVAILABLE,
    "modeltimeoutexception": _UNAVAILABLE,
    "modelerrorexception": _UNAVAILABLE,
    "modelstreamerrorexception": _UNAVAILABLE,
    "validationexception": _VALIDATION,
}

# ValidationException texts that mean "too long for this model" (protocols.md §3 and §9:
# "Input is too long for requested model."; Claude's own "prompt is too long: N tokens").
_CONTEXT_PHRASES = (
    "input is too long",
    "too many input tokens",
    "prompt is too long",
    "context length",
    "context window",
    "maximum context",
)

_SECRETS = re.compile(
    r"https?://\S+"  # URLs
    r"|arn:aws[\w-]*:\S+"  # ARNs, which name the account
    r"|\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"  # access key ids
)
_MAX_MESSAGE = 500


class _ErrorBody(msgspec.Struct):
    message: str | None = None
    Message: str | None = None
    type: str | None = msgspec.field(default=None, name="__type")
    code: str | None = None
    originalStatusCode: int | None = None


_decode_body = msgspec.json.Decoder(_ErrorBody)


def map_bedrock_error(status: int, error_type: str | None, body: bytes) -> GatewayError:
    """An HTTP error from Bedrock; ``error_type`` is the ``x-amzn-ErrorType`` header."""
    parsed = _parse(body)
    name = (error_type or parsed.type or parsed.code or "").split(":")[0].rpartition("#")[2]
    outcome = _TABLE.get(name.lower()) or _by_status(status)
    return _error(outcome, name or f"HTTP {status}", _message(parsed))


def map_stream_exception(exception_type: str, payload: bytes) -> GatewayError:
    """An exception message inside a ConverseStream (``:message-type`` ``exception``)."""
    parsed = _parse(payload)
    outcome = _TABLE.get(exception_type.lower(), _UNAVAILABLE)
    if outcome == _REJECTED:
        outcome = _UNAVAILABLE  # credentials were accepted once the stream began
    if exception_type == "modelStreamErrorException" and parsed.originalStatusCode == 429:
        outcome = _RATE_LIMITED
    return _error(outcome, exception_type, _message(parsed))


def _by_status(status: int) -> _Outcome:
    if status == 429:
        return _RATE_LIMITED
    if status in (400, 413, 422):
        return _VALIDATION
    if status >= 500 or status in (408, 424):
        return _UNAVAILABLE
    return _REJECTED


def _error(outcome: _Outcome, name: str, message: str) -> UpstreamError:
    detail = f"Bedrock {name}: {message}" if message else f"Bedrock {name}."
    match outcome:
        case _Outcome.RATE_LIMITED:
            return UpstreamRateLimited(detail, retry_after=None)
        case _Outcome.REJECTED:
            return UpstreamRejected(
                f"Bedrock {name}: the deployment's credentials, permissions or model id "
                "were refused."
            )
        case _Outcome.VALIDATION:
            lowered = message.lower()
            if any(phrase in lowered for phrase in _CONTEXT_PHRASES):
                return ContextLengthExceeded(detail, param="messages")
            return UpstreamBadRequest(detail)
        case _Outcome.UNAVAILABLE:
            return UpstreamUnavailable(detail)
        case _:
            assert_never(outcome)


def _parse(body: bytes) -> _ErrorBody:
    try:
        return _decode_body.decode(body)
    except (msgspec.DecodeError, ValueError):
        return _ErrorBody()


def _message(parsed: _ErrorBody) -> str:
    text = parsed.message or parsed.Message or ""
    text = _SECRETS.sub("[redacted]", text.strip())
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "..."
