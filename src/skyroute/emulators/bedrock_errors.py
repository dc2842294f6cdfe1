"""Bedrock's error shapes: HTTP errors, in-stream exception names, and how faults map to them.

An HTTP error is the status, the header `x-amzn-ErrorType: <Type>:<namespace>` (botocore takes
the code from it, cut at `:`) and the body `{"message": "..."}`. There is no Retry-After header
on Bedrock, so a status fault's `retry_after` is deliberately ignored.

An error inside an event stream is a frame whose `:exception-type` is the lowerCamel member
name of the stream union (`throttlingException`); botocore cannot map any other spelling.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

import msgspec

from skyroute.emulators.dialect import Reply
from skyroute.emulators.faults import StatusFault, StreamErrorFault

__all__ = [
    "CONTEXT_TOO_LONG",
    "ErrorMessage",
    "bedrock_error",
    "status_fault_reply",
    "stream_exception",
    "stream_fault_reply",
]

_NAMESPACE: Final = "http://internal.amazon.com/coral/com.amazon.bedrock/"
CONTEXT_TOO_LONG: Final = "Input is too long for requested model."

# status -> (error type, Bedrock's own message where known)
_BY_STATUS: Final = MappingProxyType(
    {
        400: (
            "ValidationException",
            "Malformed input request, please reformat your input and try again.",
        ),
        403: (
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
        ),
        404: ("ResourceNotFoundException", "The provided model identifier is invalid."),
        408: (
            "ModelTimeoutException",
            "Model has timed out in processing the request. Try your request again.",
        ),
        424: ("ModelErrorException", "The model returned an error. Try your request again."),
        429: ("ThrottlingException", "Too many requests, please wait before trying again."),
        500: (
            "InternalServerException",
            "The system encountered an unexpected error during processing. Try your request again.",
        ),
        503: ("ServiceUnavailableException", "Bedrock is unable to process your request."),
    }
)

# The exception members a stream may carry, with the HTTP status of the same error.
_STREAM_STATUS: Final = MappingProxyType(
    {
        "internalServerException": 500,
        "modelStreamErrorException": 424,
        "validationException": 400,
        "throttlingException": 429,
        "serviceUnavailableException": 503,
        "modelTimeoutException": 408,  # invoke-with-response-stream only
    }
)
_DEFAULT_STREAM_EXCEPTION: Final = "throttlingException"
_OPENAI_DEFAULT_MESSAGE: Final = StreamErrorFault().message


class ErrorMessage(msgspec.Struct, frozen=True):
    message: str


class ModelStreamError(msgspec.Struct, frozen=True, rename="camel"):
    message: str
    original_status_code: int
    original_message: str


_ENCODER = msgspec.json.Encoder()


def bedrock_error(status: int, error_type: str, message: str) -> Reply:
    """An HTTP error the way Bedrock sends it."""
    headers = (("x-amzn-ErrorType", f"{error_type}:{_NAMESPACE}"),)
    return Reply(status, _ENCODER.encode(ErrorMessage(message)), headers)


def _by_status(status: int) -> tuple[str, str]:
    fallback = _BY_STATUS[500] if status >= 500 else _BY_STATUS[400]
    return _BY_STATUS.get(status, fallback)


def status_fault_reply(fault: StatusFault) -> Reply:
    """A status fault as Bedrock's error: `code` may name the type, `message` the text."""
    error_type, message = _by_status(fault.status)
    return bedrock_error(fault.status, fault.code or error_type, fault.message or message)


def stream_exception(fault: StreamErrorFault) -> tuple[str, bytes]:
    """The (`:exception-type`, payload) of a stream_error fault.

    The fault's `code` may name the member, in lowerCamel or PascalCase; anything else (or
    nothing) gives `throttlingException`. The OpenAI-flavored default message is replaced by
    Bedrock's own text for that exception.
    """
    name = _member_name(fault.code)
    status = _STREAM_STATUS[name]
    message = fault.message
    if message == _OPENAI_DEFAULT_MESSAGE:
        message = _by_status(status)[1]
    if name == "modelStreamErrorException":
        detail = ModelStreamError(message, original_status_code=500, original_message=message)
        return name, _ENCODER.encode(detail)
    return name, _ENCODER.encode(ErrorMessage(message))


def stream_fault_reply(fault: StreamErrorFault) -> Reply:
    """A stream_error fault on a request that does not stream: the same error over HTTP."""
    name, payload = stream_exception(fault)
    error_type = name[0].upper() + name[1:]
    message = msgspec.json.decode(payload, type=ErrorMessage).message
    return bedrock_error(_STREAM_STATUS[name], error_type, message)


def _member_name(code: str | None) -> str:
    if not code:
        return _DEFAULT_STREAM_EXCEPTION
    name = code[0].lower() + code[1:]
    return name if name in _STREAM_STATUS else _DEFAULT_STREAM_EXCEPTION
