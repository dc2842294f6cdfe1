"""Error responses of OpenAI-family upstreams (OpenAI, Azure, vLLM, Ollama, llama.cpp),
mapped to the gateway's error tree by one table.

The bodies vary by server: OpenAI and Azure write ``{"error": {"message", "type",
"param", "code"}}`` (Azure's ``code`` is a string such as ``"429"``); vLLM writes
``code`` as an integer; llama.cpp signals context overflow with
``type: "exceed_context_size_error"``; older vLLM used a top-level ``{"object": "error"}``.
"""

from __future__ import annotations

import msgspec

from skyroute.core.errors import (
    ContentFiltered,
    ContextLengthExceeded,
    GatewayError,
    UpstreamBadRequest,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)
from skyroute.providers.base import Headers
from skyroute.wire.retry_after import parse_retry_after


class _Detail(msgspec.Struct):
    message: str | None = None
    type: str | None = None
    param: str | None = None
    code: str | int | None = None


class _Envelope(msgspec.Struct):
    error: _Detail | str | None = None
    message: str | None = None
    type: str | None = None
    code: str | int | None = None


_decode = msgspec.json.Decoder(_Envelope)

# Phrases upstreams use for an over-long prompt when they set no code (vLLM, llama.cpp).
_CONTEXT_PHRASES = ("maximum context length", "context length", "context window")
_MAX_MESSAGE = 1000


def read_error(body: bytes) -> _Detail:
    try:
        envelope = _decode.decode(body)
    except (msgspec.DecodeError, ValueError):
        return _Detail()
    if isinstance(envelope.error, _Detail):
        return envelope.error
    if isinstance(envelope.error, str):
        return _Detail(message=envelope.error)
    return _Detail(message=envelope.message, type=envelope.type, code=envelope.code)


def map_openai_error(status: int, headers: Headers, body: bytes, now: float) -> GatewayError:
    detail = read_error(body)
    code = str(detail.code) if detail.code is not None else None
    message = (detail.message or "")[:_MAX_MESSAGE]
    if status == 400 or status == 413 or status == 422:
        return _bad_request(code, detail.type, message, detail.param)
    if status == 429:
        if code == "insufficient_quota":
            return UpstreamRejected("The upstream account is out of quota.")
        retry_after = parse_retry_after(headers.header, now)
        return UpstreamRateLimited("The upstream is rate limiting.", retry_after=retry_after)
    if status in (401, 403):
        return UpstreamRejected(f"The upstream rejected the gateway's credentials ({status}).")
    if status == 404:
        return UpstreamRejected("The upstream does not know this deployment (404).")
    if status in (408, 409) or status >= 500:
        retry_after = parse_retry_after(headers.header, now)
        return UpstreamUnavailable(
            f"The upstream failed with HTTP {status}.", retry_after=retry_after
        )
    return UpstreamRejected(f"The upstream refused the request with HTTP {status}.")


def _bad_request(
    code: str | None, kind: str | None, message: str, param: str | None
) -> GatewayError:
    lowered = message.lower()
    if (
        code == "context_length_exceeded"
        or kind == "exceed_context_size_error"
        or any(phrase in lowered for phrase in _CONTEXT_PHRASES)
    ):
        return ContextLengthExceeded(message or "The prompt is too long for this model.")
    if code == "content_filter":
        return ContentFiltered(
            message or "The prompt was blocked by the provider's content filter.",
            param=param or "prompt",
        )
    return UpstreamBadRequest(message or "The upstream rejected the request.", param=param)
