"""Google's error shape (Vertex AI and the Gemini API), and how the fault kinds map to it.

    {"error": {"code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED",
               "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": "38s"}]}}

There is no `Retry-After` header on Google's 429s (protocols.md §0.10): a status fault's
`retry_after` (or `retry_after_ms`) becomes a `google.rpc.RetryInfo` detail instead, and
`should_retry` is ignored. google-genai raises `ClientError` for 4xx and `ServerError` for
5xx, with the body's `status` and `details` on the exception.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Final, Literal

import msgspec
from msgspec import UNSET, UnsetType

from skyroute.emulators.dialect import Reply
from skyroute.emulators.faults import ContextLengthFault, StatusFault, StreamErrorFault

__all__ = [
    "INVALID_ARGUMENT",
    "GoogleSurface",
    "context_length_reply",
    "google_error",
    "google_error_body",
    "oauth_error",
    "status_fault_reply",
    "stream_error_reply",
]

GoogleSurface = Literal["vertex", "gemini"]
INVALID_ARGUMENT: Final = "INVALID_ARGUMENT"
_TYPE_PREFIX: Final = "type.googleapis.com/google.rpc."
_ENCODER: Final = msgspec.json.Encoder()
# A stream_error fault's default message is OpenAI's text; Google's own replaces it.
_OPENAI_WORDED: Final = StreamErrorFault().message

# HTTP status -> the canonical code Google names it by.
_CANONICAL: Final = MappingProxyType(
    {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
     404: "NOT_FOUND", 409: "ABORTED", 412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED",
     499: "CANCELLED", 500: "INTERNAL", 501: "NOT_IMPLEMENTED", 503: "UNAVAILABLE",
     504: "DEADLINE_EXCEEDED"}
)  # fmt: skip

# Google's own texts, as seen in the wild (protocols.md §4, "Google error format").
_MESSAGES: Final = MappingProxyType(
    {
        400: "Request contains an invalid argument.",
        401: "Request had invalid authentication credentials. Expected OAuth 2 access token, "
        "login cookie or other valid authentication credential. See "
        "https://developers.google.com/identity/sign-in/web/devconsole-project.",
        403: "The caller does not have permission",
        404: "Requested entity was not found.",
        500: "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
        503: "The model is overloaded. Please try again later.",
        504: "Deadline expired before operation could complete.",
    }
)
_QUOTA: Final = MappingProxyType(
    {
        "gemini": "You exceeded your current quota, please check your plan and billing details. "
        "For more information on this error, head to: "
        "https://ai.google.dev/gemini-api/docs/rate-limits.",
        "vertex": "Resource exhausted. Please try again later. Please refer to "
        "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.",
    }
)


class _Status(msgspec.Struct, frozen=True, kw_only=True):
    code: int
    message: str
    status: str
    details: list[dict[str, Any]] | UnsetType = UNSET


class _ErrorBody(msgspec.Struct, frozen=True):
    error: _Status


class _OAuthError(msgspec.Struct, frozen=True):
    error: str
    error_description: str


def canonical(status: int) -> str:
    return _CANONICAL.get(status, "UNKNOWN")


def google_error_body(
    status: int, message: str, code: str | None = None, details: list[dict[str, Any]] | None = None
) -> bytes:
    error = _Status(
        code=status,
        message=message,
        status=code or canonical(status),
        details=details if details else UNSET,
    )
    return _ENCODER.encode(_ErrorBody(error))


def google_error(
    status: int, message: str, code: str | None = None, details: list[dict[str, Any]] | None = None
) -> Reply:
    return Reply(status, google_error_body(status, message, code, details))


def _retry_info(fault: StatusFault) -> list[dict[str, Any]]:
    if fault.retry_after is not None:
        delay = f"{fault.retry_after:g}s"
    elif fault.retry_after_ms is not None:
        delay = f"{fault.retry_after_ms / 1000:g}s"
    else:
        return []
    return [{"@type": _TYPE_PREFIX + "RetryInfo", "retryDelay": delay}]


def status_fault_reply(fault: StatusFault, surface: GoogleSurface) -> Reply:
    """A status fault in Google's shape; a 429 carries its retry delay in the body only."""
    default = _QUOTA[surface] if fault.status == 429 else _MESSAGES.get(fault.status, "Error.")
    details = _retry_info(fault)
    if fault.status == 429 and surface == "gemini":
        details.insert(0, _quota_failure())
    return google_error(fault.status, fault.message or default, fault.code, details)


def _quota_failure() -> dict[str, Any]:
    metric = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
    violation = {"quotaMetric": metric, "quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}
    return {"@type": _TYPE_PREFIX + "QuotaFailure", "violations": [violation]}


def context_length_reply(fault: ContextLengthFault, prompt_tokens: int) -> Reply:
    given = fault.max_context + prompt_tokens
    message = (
        f"The input token count ({given}) exceeds the maximum number of tokens allowed "
        f"({fault.max_context})."
    )
    return google_error(400, message)


def stream_error_reply(fault: StreamErrorFault) -> Reply:
    """The `{"error": ...}` of a stream_error fault, in a stream or as the HTTP answer: 500
    INTERNAL unless its `code` names another canonical code (`UNAVAILABLE` gives 503)."""
    status = next((s for s, name in _CANONICAL.items() if name == fault.code), 500)
    message = _MESSAGES[500] if fault.message == _OPENAI_WORDED else fault.message
    return google_error(status, message, fault.code if status != 500 else None)


def oauth_error(error: str, description: str, status: int = 400) -> Reply:
    """The token endpoint's RFC 6749 error, as oauth2.googleapis.com words it."""
    return Reply(status, _ENCODER.encode(_OAuthError(error, description)))
