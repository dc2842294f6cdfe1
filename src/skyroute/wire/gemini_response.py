"""Gemini generateContent response → canonical response (protocols.md §4a "Response", §8).

Also what the stream shares with it: the decoded wire types (camelCase, as Google writes
them), the ``finishReason`` and ``usageMetadata`` mappings, and the tool-call id scheme
that carries ``thoughtSignature`` through OpenAI clients (described in ``wire.gemini``).

Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any, NamedTuple

import msgspec

from skyroute.core.chat import (
    ChatResponse,
    Choice,
    ContentPart,
    FinishReason,
    Message,
    Reasoning,
    TextPart,
    ToolCall,
)
from skyroute.core.errors import UpstreamProtocolError
from skyroute.core.usage import CompletionDetails, PromptDetails, Usage
from skyroute.wire.gemini_errors import map_google_error

__all__ = [
    "GeminiCandidate",
    "GeminiPart",
    "GeminiUsage",
    "GenerateContentResponse",
    "ToolCallRef",
    "decode_response",
    "encode_signature",
    "from_gemini",
    "make_tool_call",
    "map_finish_reason",
    "read_tool_call_id",
    "signature_bytes",
    "to_usage",
    "tool_call_id",
]


class _Wire(msgspec.Struct, kw_only=True, rename="camel"):
    pass


class GeminiFunctionCall(_Wire):
    name: str
    args: dict[str, Any] | None = None
    id: str | None = None


class GeminiPart(_Wire):
    """One part; kinds the gateway does not relay (inlineData output, executableCode,
    codeExecutionResult) decode with every field unset and are skipped."""

    text: str | None = None
    thought: bool = False
    thought_signature: str | None = None
    function_call: GeminiFunctionCall | None = None


class GeminiContent(_Wire):
    parts: list[GeminiPart] = []


class GeminiCandidate(_Wire):
    content: GeminiContent | None = None
    finish_reason: str | None = None
    index: int | None = None
    """Proto JSON leaves out a zero, so candidate 0 usually has no ``index``."""


class GeminiPromptFeedback(_Wire):
    block_reason: str | None = None


class GeminiUsage(_Wire):
    prompt_token_count: int = 0
    candidates_token_count: int = 0
    thoughts_token_count: int | None = None
    cached_content_token_count: int | None = None
    tool_use_prompt_token_count: int = 0


class _ErrorCode(_Wire):
    code: int | None = None


class GenerateContentResponse(_Wire):
    candidates: list[GeminiCandidate] = []
    prompt_feedback: GeminiPromptFeedback | None = None
    usage_metadata: GeminiUsage | None = None
    error: _ErrorCode | None = None


_decode = msgspec.json.Decoder(GenerateContentResponse)
_encode = msgspec.json.Encoder()


def decode_response(body: bytes) -> GenerateContentResponse:
    """One GenerateContentResponse (a whole body, or one SSE payload of a stream).

    An ``{"error": …}`` object (protocols.md §0.3: it can arrive inside a 200 stream) is
    raised as the mapped ``GatewayError``; anything else malformed is
    ``UpstreamProtocolError``.
    """
    try:
        response = _decode.decode(body)
    except (msgspec.DecodeError, ValueError):
        raise UpstreamProtocolError(
            "Gemini returned a malformed generateContent response."
        ) from None
    if response.error is not None:
        raise map_google_error(response.error.code or 500, body)
    return response


# --- finishReason and usage (protocols.md §8, the Gemini rows) --------------------------

_CONTENT_FILTER: FinishReason = "content_filter"
_FINISH: dict[str, FinishReason] = {
    "STOP": "stop",
    "OTHER": "stop",
    "LANGUAGE": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": _CONTENT_FILTER,
    "RECITATION": _CONTENT_FILTER,
    "BLOCKLIST": _CONTENT_FILTER,
    "PROHIBITED_CONTENT": _CONTENT_FILTER,
    "SPII": _CONTENT_FILTER,
    "MODEL_ARMOR": _CONTENT_FILTER,
    # Failed tool use ends the answer as "stop"; the raw reason stays on the choice.
    "MALFORMED_FUNCTION_CALL": "stop",
    "UNEXPECTED_TOOL_CALL": "stop",
    "TOO_MANY_TOOL_CALLS": "stop",
    "MISSING_THOUGHT_SIGNATURE": "stop",
    "MALFORMED_RESPONSE": "stop",
    "NO_IMAGE": "stop",  # an image model made none: nothing was filtered
}


def map_finish_reason(reason: str, *, has_tool_calls: bool) -> FinishReason:
    """Gemini ``finishReason`` → OpenAI ``finish_reason``.

    Gemini says STOP even when the turn ends in a function call (protocols.md §4a), so
    STOP with calls is ``tool_calls``. Every ``IMAGE_*`` reason (IMAGE_SAFETY,
    IMAGE_PROHIBITED_CONTENT, IMAGE_OTHER, IMAGE_RECITATION and newer ones) is a filter;
    other unknown reasons end as ``stop``.
    """
    if reason == "STOP" and has_tool_calls:
        return "tool_calls"
    mapped = _FINISH.get(reason)
    if mapped is not None:
        return mapped
    return _CONTENT_FILTER if reason.startswith("IMAGE_") else "stop"


def to_usage(meta: GeminiUsage) -> Usage:
    """protocols.md §8: prompt = promptTokenCount (+ toolUsePromptTokenCount), which already
    includes cached tokens; completion = candidates + thoughts, since
    ``candidatesTokenCount`` leaves the thoughts out."""
    prompt = meta.prompt_token_count + meta.tool_use_prompt_token_count
    thoughts = meta.thoughts_token_count
    completion = meta.candidates_token_count + (thoughts or 0)
    cached = meta.cached_content_token_count
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptDetails(cached_tokens=cached) if cached is not None else None,
        completion_tokens_details=(
            CompletionDetails(reasoning_tokens=thoughts) if thoughts is not None else None
        ),
    )


# --- tool-call ids (the scheme is described in wire.gemini) ----------------------------

_ID = re.compile(r"call_([0-9a-f]{24})(?:_ts([A-Za-z0-9_-]+))?", re.ASCII)
_ENVELOPE_VERSION = 1
_CHECKSUM_BYTES = 4


class ToolCallRef(NamedTuple):
    """What a tool-call id carries back to Gemini."""

    upstream_id: str | None
    """``functionCall.id`` as Gemini gave it; ``None`` when it gave none."""
    signature: str | None
    """The ``thoughtSignature``, standard base64 as in proto JSON."""


def tool_call_id(
    response_id: str, choice: int, slot: int, *, upstream_id: str | None, signature: bytes | None
) -> str:
    """The id the client sees for the ``slot``-th call of choice ``choice``: stable for the
    same (response id, choice, slot), and carrying what Gemini needs back."""
    if not signature and upstream_id is not None and not _ID.fullmatch(upstream_id):
        return upstream_id
    digest = hashlib.sha256(f"{response_id}\0{choice}\0{slot}".encode()).hexdigest()[:24]
    if not signature and upstream_id is None:
        return f"call_{digest}"
    gid = (upstream_id or "").encode()
    body = bytes([_ENVELOPE_VERSION]) + len(gid).to_bytes(2, "big") + gid + (signature or b"")
    envelope = body + _checksum(body)
    return f"call_{digest}_ts{base64.urlsafe_b64encode(envelope).rstrip(b'=').decode()}"


def read_tool_call_id(call_id: str) -> ToolCallRef:
    """The inverse of ``tool_call_id``. Ids in no gateway form (another provider's, or
    Gemini's own) are Gemini ids. Raises ``ValueError`` for an altered envelope."""
    match = _ID.fullmatch(call_id)
    if match is None:
        return ToolCallRef(upstream_id=call_id, signature=None)
    payload = match.group(2)
    if payload is None:
        return ToolCallRef(upstream_id=None, signature=None)
    envelope = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    body, check = envelope[:-_CHECKSUM_BYTES], envelope[-_CHECKSUM_BYTES:]
    if len(body) < 3 or body[0] != _ENVELOPE_VERSION or _checksum(body) != check:
        raise ValueError("altered or unknown tool-call id envelope")
    size = int.from_bytes(body[1:3], "big")
    if len(body) < 3 + size:
        raise ValueError("truncated tool-call id envelope")
    gid = body[3 : 3 + size].decode()
    return ToolCallRef(upstream_id=gid or None, signature=encode_signature(body[3 + size :]))


def _checksum(body: bytes) -> bytes:
    """Catches ids a client cut short or edited, which would otherwise still decode."""
    return hashlib.sha256(body).digest()[:_CHECKSUM_BYTES]


def signature_bytes(text: str | None) -> bytes | None:
    """A ``thoughtSignature`` as bytes. Proto JSON parsers take both base64 alphabets, with
    or without padding, so this does too; ``UpstreamProtocolError`` if it is not base64."""
    if not text:
        return None
    standard = text.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise UpstreamProtocolError(
            "Gemini returned a thoughtSignature that is not base64."
        ) from None


def make_tool_call(
    call: GeminiFunctionCall, signature: bytes | None, response_id: str, choice: int, slot: int
) -> ToolCall:
    """A functionCall part as a canonical call; ``arguments`` is compact JSON text."""
    return ToolCall(
        id=tool_call_id(
            response_id, choice, slot, upstream_id=call.id or None, signature=signature
        ),
        name=call.name,
        arguments=_encode.encode(call.args or {}).decode(),
        signature=encode_signature(signature),
    )


def encode_signature(signature: bytes | None) -> str | None:
    """A signature in canonical form: standard base64, padded, as proto JSON writes bytes."""
    return base64.b64encode(signature).decode() if signature else None


# --- the whole response ---------------------------------------------------------------


def from_gemini(body: bytes, *, model: str, response_id: str, created: int) -> ChatResponse:
    """A generateContent 200 body → the canonical response.

    Raises ``UpstreamProtocolError`` if malformed, or the mapped error for an error body.
    """
    response = decode_response(body)
    usage = to_usage(response.usage_metadata) if response.usage_metadata is not None else None
    if response.candidates:
        choices = [
            _choice(c, position, response_id) for position, c in enumerate(response.candidates)
        ]
    else:
        choices = [_blocked_choice(response.prompt_feedback)]
    return ChatResponse(id=response_id, model=model, created=created, choices=choices, usage=usage)


def _blocked_choice(feedback: GeminiPromptFeedback | None) -> Choice:
    # A blocked prompt gets no candidates, only promptFeedback.blockReason (protocols.md §4a).
    reason = feedback.block_reason if feedback is not None else None
    if reason is None:
        raise UpstreamProtocolError("Gemini returned no candidates and no blockReason.")
    empty = Message(role="assistant")
    return Choice(index=0, message=empty, finish_reason=_CONTENT_FILTER, raw_finish_reason=reason)


def _choice(candidate: GeminiCandidate, position: int, response_id: str) -> Choice:
    index = candidate.index if candidate.index is not None else position
    parts = candidate.content.parts if candidate.content is not None else []
    content: list[ContentPart] = []
    reasoning: list[Reasoning] = []
    calls: list[ToolCall] = []
    for part in parts:
        signature = signature_bytes(part.thought_signature)
        if part.function_call is not None:
            calls.append(
                make_tool_call(part.function_call, signature, response_id, index, len(calls))
            )
        elif part.thought:
            if part.text or signature:
                reasoning.append(
                    Reasoning(text=part.text or "", signature=encode_signature(signature))
                )
        elif part.text is not None:
            if part.text:
                content.append(TextPart(text=part.text))
            if signature:
                # Gemini 3 signs the last part of a plain answer; it travels as signed, empty
                # reasoning so a client that keeps thinking_blocks can send it back.
                reasoning.append(Reasoning(signature=encode_signature(signature)))
    raw = candidate.finish_reason or "STOP"
    message = Message(role="assistant", content=content, tool_calls=calls, reasoning=reasoning)
    return Choice(
        index=index,
        message=message,
        finish_reason=map_finish_reason(raw, has_tool_calls=bool(calls)),
        raw_finish_reason=candidate.finish_reason,
    )
