"""First-party Anthropic Messages wire types, for the emulator (`anthropic.py`).

The request side is typed as far as the emulator reads it: content blocks keep their
`cache_control` (prompt caching is accounted from it), tools their schema. Nested objects
ignore fields they do not name; the top level is checked against the SDK's own list of
parameters by `anthropic_requests.py` before it is converted. The response side reuses
`bedrock_invoke_wire` (Claude answers alike wherever it is hosted) and adds what the first
party sends beyond it: the usage's cache breakdown and service tier, and the model list.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

from skyroute.emulators.bedrock_invoke_wire import Usage

__all__ = [
    "COUNT_KEYS",
    "MESSAGES_KEYS",
    "Block",
    "CacheControl",
    "CacheCreation",
    "CountTokensRequest",
    "FullUsage",
    "MessagesRequest",
    "ModelInfo",
    "ModelPage",
    "ThinkingConfig",
    "ToolChoiceIn",
    "ToolDef",
    "Turn",
]

# The body parameters of `messages.create` in anthropic 2.14 (resources/messages), plus the
# sampling parameters the API documents but the SDK only sends through `extra_body`
# (protocols.md §0.1), and the beta members it lets through to the same endpoint.
MESSAGES_KEYS: Final = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "system",
        "stop_sequences",
        "stream",
        "tools",
        "tool_choice",
        "thinking",
        "metadata",
        "output_config",
        "service_tier",
        "cache_control",
        "container",
        "diagnostics",
        "inference_geo",
        "speed",
        "temperature",
        "top_p",
        "top_k",
        "context_management",
        "mcp_servers",
    }
)
# `messages.count_tokens` takes no `max_tokens`, `stream`, `stop_sequences` or sampling.
COUNT_KEYS: Final = frozenset(
    {
        "model",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
        "cache_control",
        "speed",
        "context_management",
        "mcp_servers",
    }
)


# -- request ----------------------------------------------------------------------------------


class CacheControl(msgspec.Struct, frozen=True, kw_only=True):
    type: Literal["ephemeral"] = "ephemeral"
    ttl: Literal["5m", "1h"] = "5m"


class ImageSource(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    file_id: str | None = None


class Block(msgspec.Struct, frozen=True, kw_only=True):
    """Any input content block; `type` says which fields matter."""

    type: str
    text: str | None = None
    source: ImageSource | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None
    tool_use_id: str | None = None
    content: str | list[Block] | None = None
    is_error: bool | None = None
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None
    cache_control: CacheControl | None = None


class Turn(msgspec.Struct, frozen=True):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class ToolDef(msgspec.Struct, frozen=True, kw_only=True):
    """A custom tool (`input_schema`) or a server tool (`type`, e.g. `web_search_20250305`)."""

    name: str
    type: str | None = None
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    strict: bool | None = None
    cache_control: CacheControl | None = None


class ToolChoiceIn(msgspec.Struct, frozen=True, kw_only=True):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class ThinkingConfig(msgspec.Struct, frozen=True, kw_only=True):
    type: Literal["enabled", "adaptive", "disabled"]
    budget_tokens: int | None = None
    display: Literal["summarized", "omitted"] | None = None


class OutputFormat(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    schema: dict[str, Any] | None = None


class OutputConfig(msgspec.Struct, frozen=True, kw_only=True):
    effort: str | None = None
    format: OutputFormat | None = None


class _Conversation(msgspec.Struct, frozen=True, kw_only=True):
    """What both `messages` and `messages/count_tokens` take."""

    model: str
    messages: list[Turn]
    system: str | list[Block] | None = None
    tools: list[ToolDef] | None = None
    tool_choice: ToolChoiceIn | None = None
    thinking: ThinkingConfig | None = None
    output_config: OutputConfig | None = None
    cache_control: CacheControl | None = None


class MessagesRequest(_Conversation, frozen=True, kw_only=True):
    max_tokens: int
    stop_sequences: list[str] | None = None
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    metadata: dict[str, Any] | None = None
    service_tier: Literal["auto", "standard_only"] | None = None


class CountTokensRequest(_Conversation, frozen=True, kw_only=True):
    pass


# -- response ---------------------------------------------------------------------------------


class CacheCreation(msgspec.Struct, frozen=True, kw_only=True):
    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0


class FullUsage(Usage, frozen=True, kw_only=True):
    """Usage as api.anthropic.com writes it: Bedrock's four counts, plus where they went."""

    cache_creation: CacheCreation = msgspec.field(default_factory=CacheCreation)
    service_tier: str = "standard"


class ModelInfo(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="model"):
    id: str
    display_name: str
    created_at: str
    """RFC 3339."""
    lifecycle: str = "active"
    max_input_tokens: int = 200_000
    max_tokens: int = 64_000


class ModelPage(msgspec.Struct, frozen=True, kw_only=True):
    data: list[ModelInfo]
    has_more: bool
    first_id: str | None
    last_id: str | None
