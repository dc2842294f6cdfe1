"""Anthropic Messages responses ⇄ the canonical chat response (protocols.md §6 and §8).

``from_anthropic`` reads a Message that Anthropic, Claude on Bedrock (InvokeModel) or
Claude on Vertex (rawPredict) returned; ``response_to_anthropic`` writes one for a client
that called skyroute's ``POST /v1/messages``. The stop-reason and usage mappings both
directions share live here, and the stream modules use them too.

Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

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

__all__ = [
    "AnthropicUsage",
    "UsageOut",
    "from_anthropic",
    "map_stop_reason",
    "redacted_bytes",
    "response_to_anthropic",
    "stop_reason_out",
    "to_usage",
    "tool_input_json",
    "usage_out",
    "with_tool_calls",
]

StopReason = Literal[
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
]


# --- reading --------------------------------------------------------------------------


class _OutputDetails(msgspec.Struct):
    thinking_tokens: int = 0


class AnthropicUsage(msgspec.Struct, kw_only=True):
    """``usage`` of a Message, of ``message_start`` and (as running totals) of
    ``message_delta``, where every field may be absent."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    output_tokens_details: _OutputDetails | None = None


class _Block(msgspec.Struct, kw_only=True):
    """One content block, read loosely: blocks the gateway does not relay (server tool
    uses and their results, for example) are skipped, not refused."""

    type: str
    text: str | None = None
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None


class _Message(msgspec.Struct, kw_only=True):
    content: list[_Block]
    stop_reason: str | None = None
    usage: AnthropicUsage | None = None


_decode_message = msgspec.json.Decoder(_Message)
_encode = msgspec.json.Encoder()

# protocols.md §8, the Anthropic row. pause_turn (a server tool paused the turn) ends the
# answer as "stop"; the raw reason stays on the choice.
_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def map_stop_reason(stop_reason: str | None) -> FinishReason:
    """Anthropic ``stop_reason`` → ``finish_reason``; unknown reasons end as ``stop``."""
    return _FINISH.get(stop_reason or "", "stop")


def to_usage(usage: AnthropicUsage) -> Usage:
    """protocols.md §8: the prompt is input + cache writes + cache reads; cached tokens
    are the cache reads; output tokens already include the thinking."""
    cache_read = usage.cache_read_input_tokens
    cache_write = usage.cache_creation_input_tokens
    prompt = (usage.input_tokens or 0) + (cache_read or 0) + (cache_write or 0)
    completion = usage.output_tokens or 0
    details = usage.output_tokens_details
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=(
            PromptDetails(cached_tokens=cache_read or 0, cache_write_tokens=cache_write or 0)
            if cache_read is not None or cache_write is not None
            else None
        ),
        completion_tokens_details=(
            CompletionDetails(reasoning_tokens=details.thinking_tokens) if details else None
        ),
    )


def from_anthropic(body: bytes, *, model: str, response_id: str, created: int) -> ChatResponse:
    """An Anthropic Message → the canonical response; ``UpstreamProtocolError`` if
    malformed."""
    try:
        message = _decode_message.decode(body)
    except (msgspec.DecodeError, ValueError):
        raise UpstreamProtocolError("Anthropic returned a malformed Message.") from None
    choice = Choice(
        index=0,
        message=_message(message.content),
        finish_reason=map_stop_reason(message.stop_reason),
        raw_finish_reason=message.stop_reason,
    )
    usage = to_usage(message.usage) if message.usage is not None else None
    return ChatResponse(id=response_id, model=model, created=created, choices=[choice], usage=usage)


def _message(blocks: list[_Block]) -> Message:
    content: list[ContentPart] = []
    calls: list[ToolCall] = []
    reasoning: list[Reasoning] = []
    for block in blocks:
        match block.type:
            case "text":
                content.append(TextPart(text=block.text or ""))
            case "thinking":
                reasoning.append(Reasoning(text=block.thinking or "", signature=block.signature))
            case "redacted_thinking":
                reasoning.append(Reasoning(redacted=redacted_bytes(block.data)))
            case "tool_use":
                if not block.id or not block.name:
                    raise UpstreamProtocolError("Anthropic returned a tool_use without id or name.")
                arguments = _encode.encode({} if block.input is None else block.input).decode()
                calls.append(ToolCall(id=block.id, name=block.name, arguments=arguments))
            # Server tools ran inside Anthropic; the caller has nothing to execute.
    return Message(role="assistant", content=content, tool_calls=calls, reasoning=reasoning)


def redacted_bytes(data: str | None) -> bytes:
    """``redacted_thinking.data`` (opaque base64) as the bytes canonical carries."""
    try:
        return base64.b64decode(data or "", validate=True)
    except (binascii.Error, ValueError):
        raise UpstreamProtocolError(
            "Anthropic returned redacted thinking that is not base64."
        ) from None


# --- writing --------------------------------------------------------------------------


class _TextOut(msgspec.Struct, tag_field="type", tag="text"):
    text: str


class _ThinkingOut(msgspec.Struct, tag_field="type", tag="thinking"):
    thinking: str
    signature: str


class _RedactedOut(msgspec.Struct, tag_field="type", tag="redacted_thinking"):
    data: str


class _ToolUseOut(msgspec.Struct, tag_field="type", tag="tool_use"):
    id: str
    name: str
    input: msgspec.Raw


_BlockOut = _TextOut | _ThinkingOut | _RedactedOut | _ToolUseOut


class UsageOut(msgspec.Struct, omit_defaults=True):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class _MessageOut(msgspec.Struct, kw_only=True):
    id: str
    type: str = "message"
    role: str = "assistant"
    model: str
    content: list[_BlockOut]
    stop_reason: StopReason
    stop_sequence: None = None
    usage: UsageOut


_STOP_OUT: dict[FinishReason, StopReason] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def stop_reason_out(finish: FinishReason | None, raw: str | None) -> StopReason:
    """``finish_reason`` → Anthropic ``stop_reason`` (protocols.md §8, last line). The
    upstream's own reason is kept when it is an Anthropic one that means the same
    (Claude behind Bedrock Converse also says ``stop_sequence``, ``pause_turn``)."""
    mapped = _STOP_OUT[finish or "stop"]
    if raw is not None and raw != mapped and raw in _FINISH and _FINISH[raw] == (finish or "stop"):
        return raw  # type: ignore[return-value]  # checked: a key of _FINISH
    return mapped


def with_tool_calls(finish: FinishReason | None, has_tool_calls: bool) -> FinishReason | None:
    """``tool_calls`` when the answer calls tools but says ``stop``: OpenAI does so for a
    forced named tool choice, and Anthropic clients loop on ``stop_reason: tool_use``."""
    return "tool_calls" if has_tool_calls and finish in (None, "stop") else finish


def usage_out(usage: Usage | None) -> UsageOut:
    """Canonical usage → Anthropic's, where input tokens exclude cache reads and writes."""
    if usage is None:
        return UsageOut(input_tokens=0, output_tokens=0)
    details = usage.prompt_tokens_details
    if details is None:
        return UsageOut(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens)
    cached = details.cached_tokens + details.cache_write_tokens
    return UsageOut(
        input_tokens=max(0, usage.prompt_tokens - cached),
        output_tokens=usage.completion_tokens,
        cache_creation_input_tokens=details.cache_write_tokens,
        cache_read_input_tokens=details.cached_tokens,
    )


def response_to_anthropic(response: ChatResponse) -> bytes:
    """An Anthropic Message body: thinking first, then text, then tool uses. Raises
    ``UpstreamProtocolError`` when a tool call's arguments are not a JSON object."""
    if not response.choices:
        raise UpstreamProtocolError("The upstream answered without a choice.")
    choice = response.choices[0]
    finish = with_tool_calls(choice.finish_reason, bool(choice.message.tool_calls))
    message = _MessageOut(
        id=response.id if response.id.startswith("msg_") else f"msg_{response.id}",
        model=response.model,
        content=_blocks_out(choice.message),
        stop_reason=stop_reason_out(finish, choice.raw_finish_reason),
        usage=usage_out(response.usage),
    )
    return _encode.encode(message)


def _blocks_out(message: Message) -> list[_BlockOut]:
    blocks: list[_BlockOut] = []
    for reasoning in message.reasoning:
        if reasoning.redacted is not None:
            blocks.append(_RedactedOut(data=base64.b64encode(reasoning.redacted).decode()))
        elif reasoning.text or reasoning.signature:
            # Unsigned reasoning (another model's) gets an empty signature: the SDK types
            # want one, and to_anthropic leaves such a block out when it comes back.
            blocks.append(
                _ThinkingOut(thinking=reasoning.text, signature=reasoning.signature or "")
            )
    blocks.extend(
        _TextOut(text=p.text) for p in message.content if isinstance(p, TextPart) and p.text
    )
    for call in message.tool_calls:
        blocks.append(
            _ToolUseOut(id=call.id, name=call.name, input=tool_input_json(call.arguments))
        )
    return blocks


def tool_input_json(arguments: str) -> msgspec.Raw:
    """A tool call's arguments as the JSON object ``tool_use.input`` holds."""
    if not arguments.strip():
        return msgspec.Raw(b"{}")
    try:
        value = msgspec.json.decode(arguments)
    except msgspec.DecodeError:
        value = None
    if not isinstance(value, dict):
        raise UpstreamProtocolError(
            "The upstream returned tool arguments that are not a JSON object."
        )
    return msgspec.Raw(_encode.encode(value))
