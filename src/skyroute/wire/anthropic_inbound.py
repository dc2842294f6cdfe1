"""An Anthropic Messages request from a client → the canonical chat request (protocols.md §6).

Clients that use the Anthropic SDK against skyroute's ``POST /v1/messages`` land here.
The body is decoded straight into the wire Structs of ``anthropic_request``, which refuse
unknown fields as Anthropic does; every refusal is an ``InvalidRequest`` whose message
names the field the way Anthropic's own errors do (``max_tokens: Field required``,
``messages.0.content.1.type: ...``), with the dotted path as ``param``.

Mapped, besides the obvious:

- a user turn's ``tool_result`` blocks become ``tool`` messages ahead of the rest of the
  turn (Anthropic wants them first anyway); ``is_error`` and ``cache_control`` ride on
  the tool message;
- ``thinking``: ``enabled`` → a reasoning budget; ``adaptive`` → an effort (from
  ``output_config.effort``, else medium); ``disabled`` → none;
- ``disable_parallel_tool_use`` → ``parallel_tool_calls: false``; ``metadata.user_id`` →
  ``user``; ``output_config.format`` → a json_schema response format;
- ``top_k``, top-level ``cache_control``, ``output_config.effort`` and a thinking object a
  budget cannot say exactly travel in ``extensions`` (see ``anthropic_request``).

- ``document`` blocks (in user turns and tool results) become document parts: a base64
  source keeps its media type and bytes, a plain ``text`` source becomes ``text/plain``
  bytes (UTF-8), a ``url`` source a URL-only PDF; ``title`` is the document's name, and
  ``context`` and ``citations`` are read and dropped (the canonical chat has no place
  for them, and no other upstream cites).

Refused: file sources (the Files API, for images and documents), ``content`` document
sources, server tools (``web_search_…``) and other block types the canonical chat
cannot carry. Turn order (alternation, tool results after tool uses) is the upstream's
to judge.

Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Literal, TypeVar

import msgspec

from skyroute.core.chat import (
    CacheControl,
    ChatRequest,
    ContentPart,
    DocumentPart,
    ImagePart,
    Message,
    Reasoning,
    ReasoningConfig,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
)
from skyroute.core.errors import InvalidRequest
from skyroute.wire.anthropic_request import (
    AdaptiveThinking,
    AnyChoice,
    AutoChoice,
    Base64Source,
    Block,
    Cache,
    DocumentBlock,
    EnabledThinking,
    FileSource,
    ImageBlock,
    MessageParam,
    MessagesBody,
    NamedChoice,
    NoneChoice,
    OutputConfig,
    PlainTextSource,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolChoiceParam,
    ToolParam,
    ToolResultBlock,
    ToolUseBlock,
    UrlSource,
)

__all__ = ["parse_messages_request"]

CanonicalEffort = Literal["minimal", "low", "medium", "high"]


class _InboundBody(MessagesBody):
    # Custom tools need no "type" tag and server tools have fields of their own, so each
    # tool is decoded on its own once its type is known (``_inbound_tool``).
    tools: list[msgspec.Raw] = []  # type: ignore[assignment]
    service_tier: str | None = None
    """Priority capacity, a choice about the operator's own account: read and dropped."""


class _ToolKind(msgspec.Struct):
    type: str | None = None


T = TypeVar("T")
_decode_body = msgspec.json.Decoder(_InboundBody)
_decode_tool = msgspec.json.Decoder(ToolParam)
_decode_tool_kind = msgspec.json.Decoder(_ToolKind)
_decode_any = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()
_AT = re.compile(r" - at `\$([^`]*)`$")
_INDEX = re.compile(r"\[(\d+)\]")
# msgspec's wording → the pydantic wording Anthropic's own errors use.
_WORDING = (
    ("Object missing required field `", "Field required"),
    ("Object contains unknown field `", "Extra inputs are not permitted"),
)
_EFFORTS: dict[str, CanonicalEffort] = {
    "low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"
}  # fmt: skip


def parse_messages_request(raw: bytes) -> ChatRequest:
    """Decode and check an Anthropic Messages request body; raise ``InvalidRequest`` whose
    message names the field the way Anthropic does. Turn order (alternation, tool results
    after tool uses) is left for the upstream to judge."""
    body = _decode(_decode_body, raw, "")
    if not body.model:
        raise InvalidRequest("model: Field required", param="model")
    if body.max_tokens < 1:
        raise InvalidRequest("max_tokens: Input should be at least 1", param="max_tokens")
    messages = _inbound_system(body.system)
    for i, message in enumerate(body.messages):
        messages.extend(_inbound_message(message, f"messages.{i}"))
    choice, parallel = _inbound_tool_choice(body.tool_choice)
    reasoning, extensions = _reasoning_and_extensions(body)
    return ChatRequest(
        model=body.model,
        messages=messages,
        tools=[_inbound_tool(tool, f"tools.{k}") for k, tool in enumerate(body.tools)],
        tool_choice=choice,
        parallel_tool_calls=parallel,
        response_format=_inbound_format(body.output_config),
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_tokens,
        stop=body.stop_sequences,
        reasoning=reasoning,
        stream=bool(body.stream),
        include_usage=bool(body.stream),  # an Anthropic stream always reports usage
        user=body.metadata.user_id if body.metadata else None,
        extensions=extensions,
    )


def _decode(decoder: msgspec.json.Decoder[T], raw: bytes | msgspec.Raw, at: str) -> T:
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise _invalid(str(exc), at) from None
    except msgspec.DecodeError:
        raise InvalidRequest("The request body is not valid JSON.") from None


def _invalid(text: str, at: str) -> InvalidRequest:
    """msgspec's ``Expected `int`, got `str` - at `$.messages[0].x``` → Anthropic's
    ``messages.0.x: Expected `int`, got `str```, with the dotted path as ``param``."""
    found = _AT.search(text)
    path = _INDEX.sub(r".\1", found.group(1)).lstrip(".") if found else ""
    what = text[: found.start()] if found else text
    for prefix, wording in _WORDING:
        if what.startswith(prefix):
            path = ".".join(p for p in (path, what[len(prefix) : -1]) if p)
            what = wording
    full = ".".join(p for p in (at, path) if p)
    return InvalidRequest(f"{full}: {what}" if full else what, param=full or None)


def _inbound_system(system: str | list[TextBlock] | None) -> list[Message]:
    if not system:
        return []
    if isinstance(system, str):
        return [Message(role="system", content=[TextPart(text=system)])]
    parts: list[ContentPart] = [_text_part(block) for block in system]
    return [Message(role="system", content=parts)]


def _inbound_message(message: MessageParam, at: str) -> list[Message]:
    content = message.content
    if isinstance(content, str):
        return [Message(role=message.role, content=[TextPart(text=content)])] if content else []
    if message.role == "assistant":
        return [_inbound_assistant(content, at)]
    # A user turn's tool results become tool messages, ahead of the rest of the turn.
    results: list[Message] = []
    parts: list[ContentPart] = []
    for j, block in enumerate(content):
        if isinstance(block, ToolResultBlock) and message.role == "user":
            results.append(_inbound_result(block, f"{at}.content.{j}"))
        else:
            parts.append(_inbound_part(block, f"{at}.content.{j}", message.role))
    return results + ([Message(role=message.role, content=parts)] if parts else [])


def _inbound_assistant(blocks: list[Block], at: str) -> Message:
    content: list[ContentPart] = []
    calls: list[ToolCall] = []
    reasoning: list[Reasoning] = []
    for j, block in enumerate(blocks):
        where = f"{at}.content.{j}"
        match block:
            case ThinkingBlock(thinking=text, signature=signature):
                reasoning.append(Reasoning(text=text, signature=signature))
            case RedactedThinkingBlock(data=data):
                reasoning.append(Reasoning(redacted=_redacted(data, f"{where}.data")))
            case ToolUseBlock(id=call_id, name=name, input=raw):
                arguments = _arguments(raw, f"{where}.input")
                calls.append(ToolCall(id=call_id, name=name, arguments=arguments))
            case _:
                content.append(_inbound_part(block, where, "assistant"))
    return Message(role="assistant", content=content, tool_calls=calls, reasoning=reasoning)


def _inbound_part(block: Block, at: str, role: str) -> ContentPart:
    match block:
        case TextBlock():
            return _text_part(block)
        case ImageBlock() if role != "system":
            return _inbound_image(block, at)
        case DocumentBlock() if role == "user":
            return _inbound_document(block, at)
    kind = type(block).__struct_config__.tag
    raise InvalidRequest(f"{at}: '{kind}' blocks are not allowed in {role} messages.", param=at)


def _text_part(block: TextBlock) -> TextPart:
    return TextPart(text=block.text, cache_control=_canonical_cache(block.cache_control))


def _inbound_image(block: ImageBlock, at: str) -> ImagePart:
    cache = _canonical_cache(block.cache_control)
    match block.source:
        case Base64Source(media_type=media_type, data=data):
            try:
                image = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                param = f"{at}.source.data"
                raise InvalidRequest(f"{param}: invalid base64 data", param=param) from None
            return ImagePart(media_type=media_type, data=image, cache_control=cache)
        case UrlSource(url=url):
            return ImagePart(url=url, cache_control=cache)
        case FileSource():
            param = f"{at}.source"
            raise InvalidRequest(
                f"{param}: file sources (the Files API) are not supported by this gateway.",
                param=param,
            )


def _inbound_document(block: DocumentBlock, at: str) -> DocumentPart:
    cache = _canonical_cache(block.cache_control)
    name = block.title or None
    match block.source:
        case Base64Source(media_type=media_type, data=data):
            try:
                document = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                param = f"{at}.source.data"
                raise InvalidRequest(f"{param}: invalid base64 data", param=param) from None
            return DocumentPart(
                media_type=media_type, data=document, name=name, cache_control=cache
            )
        case PlainTextSource(data=text):
            plain = text.encode()
            return DocumentPart(media_type="text/plain", data=plain, name=name, cache_control=cache)
        case UrlSource(url=url):
            # Anthropic's url documents are PDFs.
            return DocumentPart(
                media_type="application/pdf", url=url, name=name, cache_control=cache
            )
        case FileSource():
            param = f"{at}.source"
            raise InvalidRequest(
                f"{param}: file sources (the Files API) are not supported by this gateway.",
                param=param,
            )


def _inbound_result(block: ToolResultBlock, at: str) -> Message:
    content = block.content
    if isinstance(content, str):
        parts: list[ContentPart] = [TextPart(text=content)] if content else []
    else:
        parts = [_inbound_part(p, f"{at}.content.{k}", "user") for k, p in enumerate(content or [])]
    return Message(
        role="tool",
        content=parts,
        tool_call_id=block.tool_use_id,
        is_error=block.is_error or None,
        cache_control=_canonical_cache(block.cache_control),
    )


def _arguments(raw: msgspec.Raw, at: str) -> str:
    value = _decode_any.decode(raw)
    if not isinstance(value, dict):
        raise InvalidRequest(f"{at}: Input should be a valid dictionary", param=at)
    return _encode.encode(value).decode()


def _redacted(data: str, at: str) -> bytes:
    """Redacted thinking is opaque base64; canonical holds its bytes, so only data that
    encodes back to the very same text is taken (it must return unchanged, §6)."""
    try:
        decoded = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        decoded = None
    if decoded is None or base64.b64encode(decoded).decode() != data:
        raise InvalidRequest(f"{at}: redacted thinking must be base64 as Claude sent it", param=at)
    return decoded


def _canonical_cache(cache: Cache | None) -> CacheControl | None:
    return None if cache is None else CacheControl(type=cache.type, ttl=cache.ttl)


def _inbound_tool(raw: msgspec.Raw, at: str) -> Tool:
    kind = _decode(_decode_tool_kind, raw, at).type
    if kind not in (None, "custom"):
        raise InvalidRequest(
            f"{at}.type: server tools ('{kind}') are not supported by this gateway.",
            param=f"{at}.type",
        )
    tool = _decode(_decode_tool, raw, at)
    return Tool(
        name=tool.name,
        description=tool.description,
        parameters=tool.input_schema,
        strict=tool.strict,
        cache_control=_canonical_cache(tool.cache_control),
    )


def _inbound_tool_choice(choice: ToolChoiceParam | None) -> tuple[ToolChoice | None, bool | None]:
    """(tool choice, parallel_tool_calls): ``disable_parallel_tool_use`` is the latter."""
    match choice:
        case None:
            return None, None
        case NoneChoice():
            return ToolChoice(mode="none"), None
        case AutoChoice():
            result = ToolChoice(mode="auto")
        case AnyChoice():
            result = ToolChoice(mode="required")
        case NamedChoice(name=name):
            result = ToolChoice(mode="tool", name=name)
    return result, False if choice.disable_parallel_tool_use else None


def _reasoning_and_extensions(body: MessagesBody) -> tuple[ReasoningConfig | None, dict[str, Any]]:
    extensions: dict[str, Any] = {}
    if body.top_k is not None:
        extensions["top_k"] = body.top_k
    if body.cache_control is not None:
        extensions["cache_control"] = msgspec.to_builtins(body.cache_control)
    effort = body.output_config.effort if body.output_config else None
    if effort is not None:
        extensions["effort"] = effort
    match body.thinking:
        case EnabledThinking(budget_tokens=budget, display=display):
            reasoning: ReasoningConfig | None = ReasoningConfig(budget_tokens=budget)
            exact = display is not None
        case AdaptiveThinking():
            # Claude decides how much to think; upstreams without that switch get an
            # effort instead (medium: OpenAI's default).
            reasoning = ReasoningConfig(effort=_EFFORTS[effort or "medium"])
            exact = True
        case _:
            reasoning, exact = None, False
    if exact:
        extensions["thinking"] = msgspec.to_builtins(body.thinking)
    return reasoning, extensions


def _inbound_format(config: OutputConfig | None) -> ResponseFormat | None:
    if config is None or config.format is None:
        return None
    return ResponseFormat(type="json_schema", schema=config.format.schema)
