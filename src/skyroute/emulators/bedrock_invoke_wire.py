"""Anthropic Messages bodies as InvokeModel carries them on Bedrock, and the stream's events.

The request is Anthropic's Messages JSON without `model` and `stream` (the path names the model,
the operation says whether to stream), plus `anthropic_version` and optionally
`anthropic_beta`. Only the parts the emulator reads are typed. Response blocks, deltas and
events are tagged on `type`, as Anthropic writes them.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec
from msgspec import UNSET, UnsetType

__all__ = ["ALLOWED_KEYS", "AnthropicBlock", "InvokeRequest"]

# The top-level members Bedrock lets through to an Anthropic model; any other is refused.
ALLOWED_KEYS: Final = frozenset(
    {
        "anthropic_version",
        "anthropic_beta",
        "max_tokens",
        "messages",
        "system",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "metadata",
        "output_config",
        "service_tier",
        "context_management",
    }
)


# -- request ----------------------------------------------------------------------------------


class ImageSource(msgspec.Struct, frozen=True):
    type: str
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class AnthropicBlock(msgspec.Struct, frozen=True):
    """Any input content block; `type` says which fields matter."""

    type: str
    text: str | None = None
    source: ImageSource | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None
    tool_use_id: str | None = None
    content: str | list[AnthropicBlock] | None = None
    is_error: bool | None = None
    thinking: str | None = None
    signature: str | None = None


class AnthropicMessage(msgspec.Struct, frozen=True):
    role: Literal["user", "assistant"]
    content: str | list[AnthropicBlock]


class SystemText(msgspec.Struct, frozen=True):
    text: str
    type: str = "text"


class AnthropicTool(msgspec.Struct, frozen=True):
    name: str
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    type: str | None = None


class AnthropicToolChoice(msgspec.Struct, frozen=True):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class OutputFormat(msgspec.Struct, frozen=True):
    type: str
    schema: dict[str, Any] | None = None


class OutputConfig(msgspec.Struct, frozen=True):
    format: OutputFormat | None = None
    effort: str | None = None


class InvokeRequest(msgspec.Struct, frozen=True, kw_only=True):
    anthropic_version: str
    max_tokens: int
    messages: list[AnthropicMessage]
    system: str | list[SystemText] | None = None
    stop_sequences: list[str] | None = None
    tools: list[AnthropicTool] | None = None
    tool_choice: AnthropicToolChoice | None = None
    thinking: dict[str, Any] | None = None
    output_config: OutputConfig | None = None


# -- response ---------------------------------------------------------------------------------


class _Tagged(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    pass


class TextOut(_Tagged, tag="text", frozen=True, kw_only=True):
    text: str


class ThinkingOut(_Tagged, tag="thinking", frozen=True, kw_only=True):
    thinking: str
    signature: str


class ToolUseOut(_Tagged, tag="tool_use", frozen=True, kw_only=True):
    id: str
    name: str
    input: Any


BlockOut = TextOut | ThinkingOut | ToolUseOut


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


class MessageOut(_Tagged, tag="message", frozen=True, kw_only=True):
    id: str
    role: str = "assistant"
    model: str
    content: list[BlockOut]
    stop_reason: str | None
    stop_sequence: str | None
    usage: Usage
    guardrail_action: str | UnsetType = msgspec.field(
        default=UNSET, name="amazon-bedrock-guardrailAction"
    )


# -- stream events ----------------------------------------------------------------------------


class TextDelta(_Tagged, tag="text_delta", frozen=True, kw_only=True):
    text: str


class InputJsonDelta(_Tagged, tag="input_json_delta", frozen=True, kw_only=True):
    partial_json: str


class ThinkingDelta(_Tagged, tag="thinking_delta", frozen=True, kw_only=True):
    thinking: str


class SignatureDelta(_Tagged, tag="signature_delta", frozen=True, kw_only=True):
    signature: str


Delta = TextDelta | InputJsonDelta | ThinkingDelta | SignatureDelta


class MessageStart(_Tagged, tag="message_start", frozen=True, kw_only=True):
    message: MessageOut


class BlockStart(_Tagged, tag="content_block_start", frozen=True, kw_only=True):
    index: int
    content_block: BlockOut


class BlockDelta(_Tagged, tag="content_block_delta", frozen=True, kw_only=True):
    index: int
    delta: Delta


class BlockStop(_Tagged, tag="content_block_stop", frozen=True, kw_only=True):
    index: int


class StopDelta(msgspec.Struct, frozen=True):
    stop_reason: str
    stop_sequence: str | None


class OutputUsage(msgspec.Struct, frozen=True):
    output_tokens: int


class MessageDelta(_Tagged, tag="message_delta", frozen=True, kw_only=True):
    delta: StopDelta
    usage: OutputUsage


class InvocationMetrics(msgspec.Struct, frozen=True, rename="camel"):
    input_token_count: int
    output_token_count: int
    invocation_latency: int
    first_byte_latency: int


class MessageStop(_Tagged, tag="message_stop", frozen=True, kw_only=True):
    metrics: InvocationMetrics = msgspec.field(name="amazon-bedrock-invocationMetrics")


class Chunk(msgspec.Struct, frozen=True):
    """The payload of a `chunk` event: one Anthropic event's JSON, base64 in JSON."""

    data: bytes = msgspec.field(name="bytes")
    p: str = ""
