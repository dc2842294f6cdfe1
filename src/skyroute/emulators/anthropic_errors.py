"""Anthropic's errors as the emulator sends them: HTTP replies and in-band stream events. Pure.

Every body is `{"type": "error", "error": {"type", "message"}, "request_id": "req_..."}`
(protocols.md §6); the error type follows the status:

    400 invalid_request_error   401 authentication_error   402 billing_error
    403 permission_error        404 not_found_error        409 conflict_error
    413 request_too_large       429 rate_limit_error       500 api_error
    504 timeout_error           529 overloaded_error
    any other 5xx api_error, any other 4xx invalid_request_error

A status fault's `code` that names one of these types replaces the type; any other code goes
to `error.details.error_code`, which the SDK reads to pick its exception (a 429 with
`enforced_spend_limit_reached` raises `EnforcedSpendLimitReachedError`). A 429 always carries
`retry-after` (the fault's, else 0: "no advice", so the SDK uses its own backoff) and the
`anthropic-ratelimit-*` headers, their resets `retry_after` seconds from `now`.

A stream_error fault sends `event: error` with `overloaded_error` / "Overloaded", unless its
`code` or (non-default) `type` names another type, or its (non-default) `message` another text.
Without streaming, the same error is the HTTP answer, with the type's status.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Final

from skyroute.emulators.anthropic_messages import (
    MALFORMED_EVENT,
    anthropic_error_body,
    error_event,
)
from skyroute.emulators.dialect import Reply, fault_headers
from skyroute.emulators.faults import ContextLengthFault, StatusFault, StreamErrorFault
from skyroute.emulators.google_delivery import StreamDialect

__all__ = [
    "StreamDialect",
    "context_length_reply",
    "error_reply",
    "status_fault_reply",
    "stream_dialect",
]

# status -> (error type, message); Anthropic's own texts where known.
_BY_STATUS: Final = MappingProxyType(
    {
        400: ("invalid_request_error", "Invalid request."),
        401: ("authentication_error", "invalid x-api-key"),
        402: ("billing_error", "Your credit balance is too low to access the Anthropic API. "
              "Please go to Plans & Billing to upgrade or purchase credits."),
        403: ("permission_error",
              "Your API key does not have permission to use the specified resource."),
        404: ("not_found_error", "model: {model}"),
        409: ("conflict_error", "Conflict."),
        413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
        429: ("rate_limit_error",
              "This request would exceed the rate limit for your organization of 50 requests "
              "per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. "
              "You can see the response headers for current usage. Please reduce the prompt "
              "length or the maximum tokens requested, or try again later."),
        500: ("api_error", "Internal server error"),
        504: ("timeout_error", "Request timed out"),
        529: ("overloaded_error", "Overloaded"),
    }
)  # fmt: skip
_STATUS_OF: Final = MappingProxyType({kind: status for status, (kind, _) in _BY_STATUS.items()})
_RATE_LIMITS: Final = (("requests", 50), ("input-tokens", 30_000), ("output-tokens", 8_000))
_DEFAULT_STREAM_ERROR: Final = StreamErrorFault()


def error_reply(
    status: int,
    error_type: str,
    message: str,
    request_id: str,
    *,
    error_code: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> Reply:
    body = anthropic_error_body(error_type, message, request_id=request_id, error_code=error_code)
    return Reply(status, body, headers)


def _standard(status: int) -> tuple[str, str]:
    default = ("api_error", "Internal server error") if status >= 500 else None
    return _BY_STATUS.get(status) or default or ("invalid_request_error", "Invalid request.")


def status_fault_reply(fault: StatusFault, model: str | None, request_id: str, now: float) -> Reply:
    """The answer to a status fault, at wall-clock time `now` (seconds)."""
    kind, message = _standard(fault.status)
    code = fault.code
    if code is not None and code in _STATUS_OF:
        kind, message = _BY_STATUS[_STATUS_OF[code]]
        code = None
    text = fault.message or message.format(model=model or "unknown")
    headers = fault_headers(fault)
    if fault.status == 429:
        headers = _rate_limit_headers(fault, now, headers)
    return error_reply(fault.status, kind, text, request_id, error_code=code, headers=headers)


def _rate_limit_headers(
    fault: StatusFault, now: float, headers: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    wait = fault.retry_after or 0.0
    reset = (datetime.fromtimestamp(now, UTC) + timedelta(seconds=wait)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    limits: list[tuple[str, str]] = []
    for name, limit in (*_RATE_LIMITS, ("tokens", _RATE_LIMITS[1][1] + _RATE_LIMITS[2][1])):
        prefix = f"anthropic-ratelimit-{name}"
        limits += [(f"{prefix}-limit", str(limit)), (f"{prefix}-remaining", "0"),
                   (f"{prefix}-reset", reset)]  # fmt: skip
    if not any(name == "retry-after" for name, _ in headers):
        limits.append(("retry-after", "0"))
    return (*headers, *limits)


def context_length_reply(fault: ContextLengthFault, input_tokens: int, request_id: str) -> Reply:
    given = fault.max_context + input_tokens
    text = f"prompt is too long: {given} tokens > {fault.max_context} maximum"
    return error_reply(400, "invalid_request_error", text, request_id)


def _stream_error(fault: StreamErrorFault) -> tuple[str, str]:
    """The error type and message a stream_error fault sends."""
    kind = "overloaded_error"
    if fault.code is not None:
        kind = fault.code
    elif fault.type != _DEFAULT_STREAM_ERROR.type:
        kind = fault.type
    standard = next((text for name, text in _BY_STATUS.values() if name == kind), "Overloaded")
    message = standard if fault.message == _DEFAULT_STREAM_ERROR.message else fault.message
    return kind, message


def stream_dialect(request_id: str) -> StreamDialect:
    """How malformed and stream_error faults read on this request's stream or body."""

    def as_reply(fault: StreamErrorFault) -> Reply:
        kind, message = _stream_error(fault)
        return error_reply(_STATUS_OF.get(kind, 500), kind, message, request_id)

    return StreamDialect(
        malformed=MALFORMED_EVENT,
        error_event=lambda fault: error_event(*_stream_error(fault)),
        error_reply=as_reply,
    )
