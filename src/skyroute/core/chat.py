"""The canonical chat: what every protocol's request, response and stream translate through.

Translation between two different protocols (OpenAI in, Bedrock Converse out, say) goes
through these types: ``wire/<inbound>`` decodes into them, ``wire/<upstream>`` encodes
from them, and back. Same-protocol hops never build them.

Content parts and stream events are tagged unions (``type`` / ``kind``); match them
exhaustively. Anything a protocol carries that has no canonical field travels in the one
explicitly named ``extensions`` field, never as loose dict entries.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from skyroute.core.usage import Usage

Role = Literal["system", "developer", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


class _Value(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    pass


# --- content -------------------------------------------------------------------------


class CacheControl(_Value, frozen=True):
    """A prompt-cache breakpoint after this block (Anthropic's ``cache_control``,
    protocols.md §6); upstreams that cache on their own ignore it."""

    type: Literal["ephemeral"]
    ttl: Literal["5m", "1h"] | None = None


class TextPart(_Value, frozen=True, tag_field="type", tag="text"):
    text: str
    cache_control: CacheControl | None = None


class ImagePart(_Value, frozen=True, tag_field="type", tag="image"):
    """An image as bytes (from a data URL) or as a remote URL the caller gave.

    Remote URLs are never fetched by the gateway unless an operator enables it; a
    translation that needs bytes refuses a URL-only image with a clear 400.
    """

    media_type: str | None = None
    data: bytes | None = None
    url: str | None = None
    detail: str | None = None
    cache_control: CacheControl | None = None


class DocumentPart(_Value, frozen=True, tag_field="type", tag="document"):
    """A document (a PDF, plain text, a spreadsheet...) as bytes or as a remote URL.

    ``media_type`` names the format (``application/pdf``, ``text/plain``, ...); ``name``
    is the caller's file name or title, if any. As with images, remote URLs are never
    fetched by the gateway: a translation that needs bytes refuses a URL-only document
    with a clear 400.
    """

    media_type: str
    data: bytes | None = None
    url: str | None = None
    name: str | None = None
    cache_control: CacheControl | None = None


ContentPart = TextPart | ImagePart | DocumentPart


class ToolCall(_Value, frozen=True):
    """A function call the model made. ``arguments`` is JSON text, as OpenAI carries it."""

    id: str
    name: str
    arguments: str
    signature: str | None = None
    """Opaque provider token to send back with the call (e.g. Gemini's thoughtSignature)."""


class Reasoning(_Value, frozen=True):
    """Reasoning text the model showed, with the provider's signature to send it back."""

    text: str = ""
    signature: str | None = None
    redacted: bytes | None = None


class Message(_Value, frozen=True):
    role: Role
    content: list[ContentPart] = []
    tool_calls: list[ToolCall] = []
    tool_call_id: str | None = None
    """For ``role == "tool"``: which call this is the result of."""
    name: str | None = None
    reasoning: list[Reasoning] = []
    is_error: bool | None = None
    """For ``role == "tool"``: the tool reported a failure (Anthropic ``is_error``)."""
    cache_control: CacheControl | None = None
    """For ``role == "tool"``: a cache breakpoint after the whole tool result."""


# --- request -------------------------------------------------------------------------


class Tool(_Value, frozen=True):
    name: str
    description: str | None = None
    parameters: dict[str, Any] = {}
    strict: bool | None = None
    cache_control: CacheControl | None = None


class ToolChoice(_Value, frozen=True):
    """``auto``: the model decides; ``none``: no tools; ``required``: some tool;
    ``tool``: the one named."""

    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None


class ResponseFormat(_Value, frozen=True):
    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None


class ReasoningConfig(_Value, frozen=True):
    """How much the model should think: an OpenAI-style effort or an explicit budget."""

    effort: Literal["minimal", "low", "medium", "high"] | None = None
    budget_tokens: int | None = None


class ChatRequest(_Value, frozen=True):
    model: str
    messages: list[Message]
    tools: list[Tool] = []
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] = []
    n: int = 1
    seed: int | None = None
    reasoning: ReasoningConfig | None = None
    stream: bool = False
    include_usage: bool = False
    user: str | None = None
    extensions: dict[str, Any] = {}
    """Provider-specific fields the operator chose to pass through, by name."""


# --- response ------------------------------------------------------------------------


class Choice(_Value, frozen=True):
    index: int
    message: Message
    finish_reason: FinishReason | None = None
    raw_finish_reason: str | None = None
    """The upstream's own stop reason, kept for logs and extension fields."""


class ChatResponse(_Value, frozen=True):
    id: str
    model: str
    created: int
    choices: list[Choice]
    usage: Usage | None = None


# --- stream events -------------------------------------------------------------------


class TextDelta(_Value, frozen=True, tag_field="kind", tag="text", kw_only=True):
    choice: int = 0
    text: str


class ReasoningDelta(_Value, frozen=True, tag_field="kind", tag="reasoning", kw_only=True):
    """Reasoning text, then the signature that ends its block; ``redacted`` is a whole
    encrypted block (Anthropic's ``redacted_thinking``), sent back unchanged."""

    choice: int = 0
    text: str = ""
    signature: str | None = None
    redacted: bytes | None = None


class ToolCallStart(_Value, frozen=True, tag_field="kind", tag="tool_call_start", kw_only=True):
    """A new tool call; ``slot`` is its index among this choice's calls."""

    choice: int = 0
    slot: int
    id: str
    name: str
    signature: str | None = None


class ToolCallDelta(_Value, frozen=True, tag_field="kind", tag="tool_call_delta", kw_only=True):
    choice: int = 0
    slot: int
    arguments: str


class Finish(_Value, frozen=True, tag_field="kind", tag="finish", kw_only=True):
    choice: int = 0
    reason: FinishReason
    raw_reason: str | None = None


class UsageReport(_Value, frozen=True, tag_field="kind", tag="usage"):
    usage: Usage


StreamEvent = TextDelta | ReasoningDelta | ToolCallStart | ToolCallDelta | Finish | UsageReport
