"""Canonical chat request → Anthropic Messages request body (protocols.md §6).

``to_anthropic`` writes the body skyroute sends to Anthropic, to Claude on Bedrock
(InvokeModel) and to Claude on Vertex (rawPredict). The wire Structs here are the whole
request shape and serve both directions: ``anthropic_inbound`` decodes an Anthropic SDK
client's request with them (they refuse unknown fields, as Anthropic does).

Anthropic-only request fields with no canonical meaning travel in
``ChatRequest.extensions`` under their Anthropic names, and ``to_anthropic`` writes them
back: ``top_k``; ``cache_control`` (the top-level automatic breakpoint); ``thinking``
(the exact thinking object when it is not a plain budget: adaptive, or a ``display``);
``effort`` (``output_config.effort``).

Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

import msgspec

from skyroute.core.chat import (
    CacheControl,
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    ReasoningConfig,
    TextPart,
    Tool,
)
from skyroute.core.errors import InvalidRequest
from skyroute.wire.claude import thinking_budget, tool_input

__all__ = ["Dialect", "MessagesBody", "to_anthropic"]

Dialect = Literal["anthropic", "bedrock", "vertex"]


class _Wire(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    pass


class Cache(_Wire):
    type: Literal["ephemeral"]
    ttl: Literal["5m", "1h"] | None = None


# --- content blocks -------------------------------------------------------------------


class TextBlock(_Wire, tag_field="type", tag="text"):
    text: str
    cache_control: Cache | None = None
    citations: list[Any] | None = None
    """An earlier answer's citations: read and dropped, never written."""


class Base64Source(_Wire, tag_field="type", tag="base64"):
    media_type: str
    data: str


class UrlSource(_Wire, tag_field="type", tag="url"):
    url: str


class FileSource(_Wire, tag_field="type", tag="file"):
    file_id: str


class ImageBlock(_Wire, tag_field="type", tag="image"):
    source: Base64Source | UrlSource | FileSource
    cache_control: Cache | None = None


class PlainTextSource(_Wire, tag_field="type", tag="text"):
    media_type: Literal["text/plain"]
    data: str


class CitationsConfig(_Wire):
    enabled: bool | None = None


class DocumentBlock(_Wire, tag_field="type", tag="document"):
    """A PDF (base64 or url source) or plain-text document. ``context`` and ``citations``
    are read and dropped (the canonical chat has no place for them); ``title`` is the
    document's name."""

    source: Base64Source | PlainTextSource | UrlSource | FileSource
    title: str | None = None
    context: str | None = None
    citations: CitationsConfig | None = None
    cache_control: Cache | None = None


class ToolUseBlock(_Wire, tag_field="type", tag="tool_use"):
    id: str
    name: str
    input: msgspec.Raw
    cache_control: Cache | None = None


ResultPart = TextBlock | ImageBlock | DocumentBlock


class ToolResultBlock(_Wire, tag_field="type", tag="tool_result"):
    tool_use_id: str
    content: str | list[ResultPart] | None = None
    is_error: bool | None = None
    cache_control: Cache | None = None


class ThinkingBlock(_Wire, tag_field="type", tag="thinking"):
    thinking: str
    signature: str


class RedactedThinkingBlock(_Wire, tag_field="type", tag="redacted_thinking"):
    data: str


Block = (
    TextBlock
    | ImageBlock
    | DocumentBlock
    | ToolUseBlock
    | ToolResultBlock
    | ThinkingBlock
    | RedactedThinkingBlock
)


class MessageParam(_Wire):
    # SDK 2.14's MessageParam also types a "system" role.
    role: Literal["user", "assistant", "system"]
    content: str | list[Block]


# --- the rest of the body -------------------------------------------------------------


class ToolParam(_Wire):
    name: str
    input_schema: dict[str, Any]
    description: str | None = None
    strict: bool | None = None
    cache_control: Cache | None = None
    type: Literal["custom"] | None = None
    eager_input_streaming: bool | None = None
    """How finely the tool input streams: read and dropped."""


class AutoChoice(_Wire, tag_field="type", tag="auto"):
    disable_parallel_tool_use: bool | None = None


class AnyChoice(_Wire, tag_field="type", tag="any"):
    disable_parallel_tool_use: bool | None = None


class NamedChoice(_Wire, tag_field="type", tag="tool"):
    name: str
    disable_parallel_tool_use: bool | None = None


class NoneChoice(_Wire, tag_field="type", tag="none"):
    pass


ToolChoiceParam = AutoChoice | AnyChoice | NamedChoice | NoneChoice
Display = Literal["summarized", "omitted"]


class EnabledThinking(_Wire, tag_field="type", tag="enabled"):
    budget_tokens: int
    display: Display | None = None


class AdaptiveThinking(_Wire, tag_field="type", tag="adaptive"):
    display: Display | None = None


class DisabledThinking(_Wire, tag_field="type", tag="disabled"):
    pass


ThinkingParam = EnabledThinking | AdaptiveThinking | DisabledThinking
Effort = Literal["low", "medium", "high", "xhigh", "max"]


class JsonSchemaFormat(_Wire, tag_field="type", tag="json_schema"):
    schema: dict[str, Any]


class OutputConfig(_Wire):
    effort: Effort | None = None
    format: JsonSchemaFormat | None = None


class Metadata(_Wire):
    user_id: str | None = None


class MessagesBody(_Wire, kw_only=True):
    """The Messages request body; ``parse_messages_request`` reads a subclass of it."""

    model: str | None = None
    anthropic_version: str | None = None
    max_tokens: int
    messages: list[MessageParam]
    system: str | list[TextBlock] | None = None
    metadata: Metadata | None = None
    stop_sequences: list[str] = []
    stream: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    tools: list[ToolParam] = []
    tool_choice: ToolChoiceParam | None = None
    thinking: ThinkingParam | None = None
    output_config: OutputConfig | None = None
    cache_control: Cache | None = None


_encode = msgspec.json.Encoder()
# protocols.md §3 "InvokeModel with Anthropic models" and §4c: the documented body values.
_VERSIONS: dict[str, str] = {"bedrock": "bedrock-2023-05-31", "vertex": "vertex-2023-10-16"}
_DEFAULT_MAX_TOKENS = 4096
"""``max_tokens`` is required by Anthropic; an OpenAI client may leave it out."""
_MEDIA_TYPES = {
    "image/jpeg": "image/jpeg",
    "image/jpg": "image/jpeg",
    "image/png": "image/png",
    "image/gif": "image/gif",
    "image/webp": "image/webp",
}
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def to_anthropic(request: ChatRequest, *, model: str | None, dialect: Dialect) -> bytes:
    """The Messages body for ``request``. ``model`` goes in the body only for the
    ``anthropic`` dialect; Bedrock and Vertex name it in the URL and want
    ``anthropic_version`` instead. Raises ``InvalidRequest`` naming the parameter."""
    if request.n != 1:
        raise InvalidRequest("Anthropic returns one choice per request; 'n' must be 1.", param="n")
    system, messages = _conversation(request.messages)
    thinking, max_tokens = _thinking(request)
    tools = [_tool(tool) for tool in request.tools]
    body = MessagesBody(
        model=model if dialect == "anthropic" else None,
        anthropic_version=_VERSIONS.get(dialect),
        max_tokens=max_tokens,
        messages=messages,
        system=system,
        metadata=Metadata(user_id=request.user) if request.user else None,
        stop_sequences=request.stop,
        # Bedrock's InvokeModel body carries no stream flag (protocols.md §3); Vertex's
        # streamRawPredict body keeps "stream": true (§4c).
        stream=True if request.stream and dialect != "bedrock" else None,
        temperature=_temperature(request.temperature),
        top_p=request.top_p,
        top_k=_extension(request, "top_k", int),
        tools=tools,
        tool_choice=_tool_choice(request, has_tools=bool(tools)),
        thinking=thinking,
        output_config=_output_config(request),
        cache_control=_extension(request, "cache_control", Cache),
    )
    return _encode.encode(body)


def _extension(request: ChatRequest, key: str, kind: Any) -> Any:
    value = request.extensions.get(key)
    if value is None:
        return None
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"'{key}' is not valid for Anthropic: {exc}", param=key) from None


def _temperature(value: float | None) -> float | None:
    if value is not None and not 0 <= value <= 1:
        raise InvalidRequest(
            "Anthropic accepts a temperature between 0 and 1.", param="temperature"
        )
    return value


# --- messages -------------------------------------------------------------------------


def _conversation(
    messages: list[Message],
) -> tuple[str | list[TextBlock] | None, list[MessageParam]]:
    system: list[TextBlock] = []
    turns: list[tuple[Literal["user", "assistant"], list[Block]]] = []
    for i, message in enumerate(messages):
        role: Literal["user", "assistant"] = "user"
        match message.role:
            case "system" | "developer":
                system.extend(_system_blocks(message, i))
                continue
            case "user":
                blocks = _user_blocks(message, i)
            case "tool":
                blocks = [_tool_result(message, i)]
            case "assistant":
                role, blocks = "assistant", _assistant_blocks(message, i)
        if not blocks:
            continue
        # Consecutive same-role turns are merged, as Anthropic itself would.
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
    if not turns:
        raise InvalidRequest(
            "Anthropic needs at least one user or assistant message with content.",
            param="messages",
        )
    return _system_value(system), [
        MessageParam(role=role, content=_results_first(role, blocks)) for role, blocks in turns
    ]


def _results_first(role: str, blocks: list[Block]) -> list[Block]:
    # "Messages following `tool_use` blocks must begin with a matching number of
    # `tool_result` blocks": a merged user turn may hold user text first. Stable.
    if role == "user":
        blocks.sort(key=lambda block: not isinstance(block, ToolResultBlock))
    return blocks


def _system_value(blocks: list[TextBlock]) -> str | list[TextBlock] | None:
    if not blocks:
        return None
    if len(blocks) == 1 and blocks[0].cache_control is None:
        return blocks[0].text
    return blocks


def _system_blocks(message: Message, i: int) -> list[TextBlock]:
    blocks = []
    for j, part in enumerate(message.content):
        if not isinstance(part, TextPart):
            raise InvalidRequest(
                "Anthropic system prompts hold text only.", param=f"messages[{i}].content[{j}]"
            )
        if part.text.strip():
            blocks.append(TextBlock(text=part.text, cache_control=_cache(part.cache_control)))
    return blocks


def _user_blocks(message: Message, i: int) -> list[Block]:
    blocks: list[Block] = []
    for j, part in enumerate(message.content):
        match part:
            case TextPart(text=text, cache_control=cache):
                # "text content blocks must contain non-whitespace text"
                if text.strip():
                    blocks.append(TextBlock(text=text, cache_control=_cache(cache)))
            case ImagePart():
                blocks.append(_image(part, f"messages[{i}].content[{j}]"))
            case DocumentPart():
                blocks.append(_document(part, f"messages[{i}].content[{j}]"))
    return blocks


def _assistant_blocks(message: Message, i: int) -> list[Block]:
    blocks: list[Block] = []
    # Thinking goes first and unchanged: Claude checks its signature (protocols.md §6).
    # Unsigned reasoning text (another model's) cannot be verified, so it is not sent.
    for reasoning in message.reasoning:
        if reasoning.redacted is not None:
            data = base64.b64encode(reasoning.redacted).decode()
            blocks.append(RedactedThinkingBlock(data=data))
        elif reasoning.signature:
            blocks.append(ThinkingBlock(thinking=reasoning.text, signature=reasoning.signature))
    blocks.extend(_user_blocks(message, i))
    for k, call in enumerate(message.tool_calls):
        arguments = tool_input(call.arguments, f"messages[{i}].tool_calls[{k}].function.arguments")
        blocks.append(ToolUseBlock(id=call.id, name=call.name, input=arguments))
    return blocks


def _tool_result(message: Message, i: int) -> ToolResultBlock:
    parts: list[ResultPart] = []
    for block in _user_blocks(message, i):
        assert isinstance(block, TextBlock | ImageBlock | DocumentBlock)
        parts.append(block)
    content: str | list[ResultPart] | None = parts or None
    if len(parts) == 1 and isinstance(parts[0], TextBlock) and parts[0].cache_control is None:
        content = parts[0].text
    return ToolResultBlock(
        tool_use_id=message.tool_call_id or "",
        content=content,
        is_error=True if message.is_error else None,
        cache_control=_cache(message.cache_control),
    )


def _image(part: ImagePart, param: str) -> ImageBlock:
    cache = _cache(part.cache_control)
    if part.data is None:
        # Anthropic fetches URL images itself (source type "url", protocols.md §6).
        return ImageBlock(source=UrlSource(url=part.url or ""), cache_control=cache)
    media_type = _MEDIA_TYPES.get(part.media_type or "") or _sniff(part.data)
    if media_type is None:
        raise InvalidRequest("Anthropic accepts jpeg, png, gif and webp images.", param=param)
    data = base64.b64encode(part.data).decode()
    return ImageBlock(source=Base64Source(media_type=media_type, data=data), cache_control=cache)


def _document(part: DocumentPart, param: str) -> DocumentBlock:
    """A PDF goes as base64 (or a url Anthropic fetches itself), plain text as a text
    source (protocols.md §6); Anthropic takes no other document formats."""
    source: Base64Source | PlainTextSource | UrlSource
    if part.data is None:
        source = UrlSource(url=part.url or "")
    elif part.media_type == "application/pdf":
        source = Base64Source(
            media_type="application/pdf", data=base64.b64encode(part.data).decode()
        )
    elif part.media_type == "text/plain":
        try:
            source = PlainTextSource(media_type="text/plain", data=part.data.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidRequest("A text/plain document must be UTF-8.", param=param) from None
    else:
        raise InvalidRequest(
            f"Anthropic accepts PDF (application/pdf) and plain-text (text/plain) documents, "
            f"not {part.media_type!r}.",
            param=param,
        )
    return DocumentBlock(source=source, title=part.name, cache_control=_cache(part.cache_control))


def _sniff(data: bytes) -> str | None:
    """The media type from the file's magic bytes, for images that came without one."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _cache(cache: CacheControl | None) -> Cache | None:
    return None if cache is None else Cache(type=cache.type, ttl=cache.ttl)


# --- tools, thinking, output ----------------------------------------------------------


def _tool(tool: Tool) -> ToolParam:
    return ToolParam(
        name=tool.name,
        description=tool.description or None,
        # input_schema must be an object schema, even with no parameters.
        input_schema=tool.parameters or _EMPTY_SCHEMA,
        strict=True if tool.strict else None,
        cache_control=_cache(tool.cache_control),
    )


def _tool_choice(request: ChatRequest, *, has_tools: bool) -> ToolChoiceParam | None:
    choice = request.tool_choice
    if not has_tools:
        if choice is not None and choice.mode in ("required", "tool"):
            raise InvalidRequest(
                "'tool_choice' asks for a tool call but no tools were given.", param="tool_choice"
            )
        return None
    # parallel_tool_calls=false is Anthropic's disable_parallel_tool_use (protocols.md §6).
    single = True if request.parallel_tool_calls is False else None
    match choice.mode if choice is not None else None:
        case None:
            return AutoChoice(disable_parallel_tool_use=True) if single else None
        case "auto":
            return AutoChoice(disable_parallel_tool_use=single)
        case "required":
            return AnyChoice(disable_parallel_tool_use=single)
        case "none":
            return NoneChoice()
        case _:
            name = choice.name if choice is not None else None
            if name is None or all(tool.name != name for tool in request.tools):
                raise InvalidRequest(
                    f"'tool_choice' names the tool {name!r}, which is not in 'tools'.",
                    param="tool_choice",
                )
            return NamedChoice(name=name, disable_parallel_tool_use=single)


def _thinking(request: ChatRequest) -> tuple[ThinkingParam | None, int]:
    """The ``thinking`` object and the ``max_tokens`` it needs."""
    exact: ThinkingParam | None = _extension(request, "thinking", ThinkingParam)
    config = request.reasoning
    if exact is not None or config is None:
        return exact, request.max_tokens or _DEFAULT_MAX_TOKENS
    if config.effort is None and config.budget_tokens is None:
        return None, request.max_tokens or _DEFAULT_MAX_TOKENS
    budget = _budget(config, request.max_tokens)
    return EnabledThinking(budget_tokens=budget), request.max_tokens or budget + _DEFAULT_MAX_TOKENS


def _budget(config: ReasoningConfig, max_tokens: int | None) -> int:
    return thinking_budget(config, max_tokens, param="max_tokens")


def _output_config(request: ChatRequest) -> OutputConfig | None:
    effort: Effort | None = _extension(request, "effort", Effort)
    response_format = request.response_format
    # json_object has no Anthropic equivalent; OpenAI already requires such prompts to ask
    # for JSON in words, so the prompt alone carries the intent.
    if response_format is None or response_format.type != "json_schema":
        return OutputConfig(effort=effort) if effort else None
    if response_format.schema is None:
        raise InvalidRequest(
            "Anthropic needs 'response_format.json_schema.schema'.",
            param="response_format.json_schema.schema",
        )
    # output_config.format (protocols.md §6); the schema's name has no Anthropic field.
    return OutputConfig(effort=effort, format=JsonSchemaFormat(schema=response_format.schema))
