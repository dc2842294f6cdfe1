"""Bedrock Converse response → canonical chat response (protocols.md §3 and §8).

Also the two mappings every Bedrock reply shares with the stream: ``stopReason`` to
``finish_reason`` and ``usage`` to the canonical usage.

Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

from typing import Any

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
from skyroute.core.usage import PromptDetails, Usage

__all__ = ["ConverseUsage", "from_converse", "map_stop_reason", "to_usage"]


class _Wire(msgspec.Struct, kw_only=True, rename="camel"):
    pass


class ConverseUsage(_Wire):
    """``usage`` of a Converse response and of a ConverseStream ``metadata`` event."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cache_read_input_tokens: int | None = None
    cache_write_input_tokens: int | None = None


class _ToolUse(_Wire):
    tool_use_id: str
    name: str
    input: Any = None
    type: str | None = None


class _ReasoningText(_Wire):
    text: str = ""
    signature: str | None = None


class _ReasoningContent(_Wire):
    reasoning_text: _ReasoningText | None = None
    redacted_content: bytes | None = None


class _Block(_Wire):
    """One ContentBlock; members the gateway does not relay (citations, images) are
    skipped by the decoder."""

    text: str | None = None
    tool_use: _ToolUse | None = None
    reasoning_content: _ReasoningContent | None = None


class _Message(_Wire):
    content: list[_Block] = []


class _Output(_Wire):
    message: _Message


class _Response(_Wire):
    output: _Output
    stop_reason: str
    usage: ConverseUsage | None = None


_decode_response = msgspec.json.Decoder(_Response)
_encode = msgspec.json.Encoder()

# protocols.md §8, the Bedrock row. malformed_model_output and malformed_tool_use end the
# answer as "stop"; the raw reason stays on the choice for logs.
_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "malformed_model_output": "stop",
    "malformed_tool_use": "stop",
}


def map_stop_reason(stop_reason: str) -> FinishReason:
    """Bedrock ``stopReason`` → OpenAI ``finish_reason``; unknown reasons end as ``stop``."""
    return _FINISH.get(stop_reason, "stop")


def to_usage(usage: ConverseUsage) -> Usage:
    """protocols.md §8: Bedrock's ``inputTokens`` excludes cache reads and writes, so the
    prompt is their sum; ``cached_tokens`` is the cache reads."""
    cache_read = usage.cache_read_input_tokens
    cache_write = usage.cache_write_input_tokens
    prompt = usage.input_tokens + (cache_read or 0) + (cache_write or 0)
    details = None
    if cache_read is not None or cache_write is not None:
        details = PromptDetails(cached_tokens=cache_read or 0, cache_write_tokens=cache_write or 0)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=usage.output_tokens,
        total_tokens=prompt + usage.output_tokens,
        prompt_tokens_details=details,
    )


def from_converse(body: bytes, *, model: str, response_id: str, created: int) -> ChatResponse:
    """A Converse 200 body → the canonical response; ``UpstreamProtocolError`` if malformed."""
    try:
        response = _decode_response.decode(body)
    except (msgspec.DecodeError, ValueError):
        raise UpstreamProtocolError("Bedrock returned a malformed Converse response.") from None
    message = _message(response.output.message.content)
    choice = Choice(
        index=0,
        message=message,
        finish_reason=map_stop_reason(response.stop_reason),
        raw_finish_reason=response.stop_reason,
    )
    usage = to_usage(response.usage) if response.usage is not None else None
    return ChatResponse(id=response_id, model=model, created=created, choices=[choice], usage=usage)


def _message(blocks: list[_Block]) -> Message:
    content: list[ContentPart] = []
    calls: list[ToolCall] = []
    reasoning: list[Reasoning] = []
    for block in blocks:
        if block.text is not None:
            content.append(TextPart(text=block.text))
        elif block.tool_use is not None and block.tool_use.type != "server_tool_use":
            # Server tools ran inside Bedrock; only client tools are the caller's to run.
            calls.append(_tool_call(block.tool_use))
        elif block.reasoning_content is not None:
            reasoning.append(_reasoning(block.reasoning_content))
    return Message(role="assistant", content=content, tool_calls=calls, reasoning=reasoning)


def _tool_call(tool_use: _ToolUse) -> ToolCall:
    arguments = {} if tool_use.input is None else tool_use.input
    return ToolCall(
        id=tool_use.tool_use_id,
        name=tool_use.name,
        arguments=_encode.encode(arguments).decode(),
    )


def _reasoning(content: _ReasoningContent) -> Reasoning:
    if content.redacted_content is not None:
        return Reasoning(redacted=content.redacted_content)
    text = content.reasoning_text or _ReasoningText()
    return Reasoning(text=text.text, signature=text.signature)
