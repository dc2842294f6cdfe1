"""The canonical chat → an OpenAI-shaped upstream, and its answers back (protocols.md §1).

When a client of another protocol (Anthropic's, say) is served by an OpenAI-compatible
upstream (OpenAI, Azure, vLLM, Ollama, ...), the canonical request is written as a chat
completions body (``to_openai_body``) and the upstream's ``chat.completion``
(``from_openai_response``) or ``chat.completion.chunk`` stream (``OpenAIChunkReader``)
is read back. The inverse half, OpenAI clients in front of other upstreams, is
``wire.openai_chat``, which re-exports these three.

Reasoning comes back from ``reasoning_content`` (llama.cpp, DeepSeek), ``reasoning``
(vLLM, Ollama, protocols.md §7) or, signed, from ``thinking_blocks`` (the field
``OpenAIChunkWriter`` and other gateways write for Claude's thinking).

Pure functions only: no I/O, no clock, no logging.
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from skyroute.core.chat import (
    ChatRequest,
    ChatResponse,
    Choice,
    ContentPart,
    DocumentPart,
    Finish,
    FinishReason,
    ImagePart,
    Message,
    Reasoning,
    ReasoningConfig,
    ReasoningDelta,
    ResponseFormat,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    ToolChoice,
    UsageReport,
)
from skyroute.core.errors import InvalidRequest, UpstreamProtocolError
from skyroute.core.usage import CompletionDetails, PromptDetails, Usage

__all__ = ["OpenAIChunkReader", "from_openai_response", "to_openai_body"]

_encode = msgspec.json.Encoder()


class _Function(msgspec.Struct):
    name: str
    arguments: str


class _ToolCallOut(msgspec.Struct, kw_only=True):
    id: str
    type: str = "function"
    function: _Function


# --- request --------------------------------------------------------------------------


class _ImageUrlOut(msgspec.Struct, omit_defaults=True):
    url: str
    detail: str | None = None


class _TextPartOut(msgspec.Struct, tag_field="type", tag="text"):
    text: str


class _ImagePartOut(msgspec.Struct, tag_field="type", tag="image_url"):
    image_url: _ImageUrlOut


class _FileOut(msgspec.Struct):
    file_data: str
    filename: str


class _FilePartOut(msgspec.Struct, tag_field="type", tag="file"):
    file: _FileOut


_PartOut = _TextPartOut | _ImagePartOut | _FilePartOut


class _RequestMessage(msgspec.Struct, kw_only=True, omit_defaults=True):
    role: str
    content: str | list[_PartOut] | None = None
    name: str | None = None
    tool_calls: list[_ToolCallOut] = []
    tool_call_id: str | None = None


class _FunctionDef(msgspec.Struct, omit_defaults=True):
    name: str
    description: str | None = None
    parameters: dict[str, Any] = {}
    strict: bool | None = None


class _ToolDef(msgspec.Struct, kw_only=True):
    type: str = "function"
    function: _FunctionDef


class _FunctionName(msgspec.Struct):
    name: str


class _NamedToolChoice(msgspec.Struct, kw_only=True):
    type: str = "function"
    function: _FunctionName


class _JsonSchemaOut(msgspec.Struct, omit_defaults=True):
    name: str
    schema: dict[str, Any] | None = None
    strict: bool | None = None


class _ResponseFormatOut(msgspec.Struct, omit_defaults=True):
    type: str
    json_schema: _JsonSchemaOut | None = None


class _StreamOptions(msgspec.Struct):
    include_usage: bool


class _ChatBody(msgspec.Struct, kw_only=True, omit_defaults=True):
    model: str
    messages: list[_RequestMessage]
    tools: list[_ToolDef] = []
    tool_choice: str | _NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: _ResponseFormatOut | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_completion_tokens: int | None = None
    stop: list[str] = []
    n: int = 1
    seed: int | None = None
    reasoning_effort: str | None = None
    stream: bool = False
    stream_options: _StreamOptions | None = None
    user: str | None = None


def to_openai_body(request: ChatRequest) -> bytes:
    """A chat completions body for ``request``. ``extensions`` (another protocol's own
    fields) are left out: OpenAI refuses parameters it does not know. Raises
    ``InvalidRequest`` for a tool result holding an image or a document (tool messages
    are text) and for a URL-only document (file parts carry the file itself)."""
    tools = [
        _ToolDef(function=_FunctionDef(t.name, t.description, t.parameters, t.strict))
        for t in request.tools
    ]
    stream_usage = _StreamOptions(True) if request.stream and request.include_usage else None
    body = _ChatBody(
        model=request.model,
        messages=[_request_message(i, m) for i, m in enumerate(request.messages)],
        tools=tools,
        tool_choice=_tool_choice_out(request.tool_choice),
        # "parallel_tool_calls is only allowed when 'tools' are specified"
        parallel_tool_calls=request.parallel_tool_calls if tools else None,
        response_format=_response_format_out(request.response_format),
        temperature=request.temperature,
        top_p=request.top_p,
        max_completion_tokens=request.max_tokens,
        stop=request.stop,
        n=request.n,
        seed=request.seed,
        reasoning_effort=_effort_out(request.reasoning),
        stream=request.stream,
        stream_options=stream_usage,
        user=request.user,
    )
    return _encode.encode(body)


def _request_message(i: int, message: Message) -> _RequestMessage:
    match message.role:
        case "tool":
            parts = _parts_out(i, message.content)
            if not all(isinstance(p, _TextPartOut) for p in parts):
                raise InvalidRequest(
                    "OpenAI-compatible upstreams take text only in tool results.",
                    param=f"messages[{i}].content",
                )
            text = "".join(p.text for p in parts if isinstance(p, _TextPartOut))
            return _RequestMessage(role="tool", content=text, tool_call_id=message.tool_call_id)
        case "assistant":
            # Reasoning is not sent back: OpenAI takes none in requests, and a signed
            # thinking block only means something to the model that wrote it.
            texts = [p.text for p in message.content if isinstance(p, TextPart)]
            calls = [
                _ToolCallOut(id=c.id, function=_Function(name=c.name, arguments=c.arguments))
                for c in message.tool_calls
            ]
            content = "".join(texts) if texts or not calls else None
            return _RequestMessage(role="assistant", content=content, tool_calls=calls)
        case _:
            parts = _parts_out(i, message.content)
            if len(parts) == 1 and isinstance(parts[0], _TextPartOut):
                return _RequestMessage(role=message.role, content=parts[0].text, name=message.name)
            return _RequestMessage(role=message.role, content=parts or "", name=message.name)


def _parts_out(i: int, content: list[ContentPart]) -> list[_PartOut]:
    parts: list[_PartOut] = []
    for j, part in enumerate(content):
        match part:
            case TextPart(text=text):
                parts.append(_TextPartOut(text=text))
            case ImagePart(data=None, url=url, detail=detail):
                parts.append(_ImagePartOut(image_url=_ImageUrlOut(url or "", detail)))
            case ImagePart(data=bytes(data), media_type=media_type, detail=detail):
                url = f"data:{media_type or 'image/png'};base64,{base64.b64encode(data).decode()}"
                parts.append(_ImagePartOut(image_url=_ImageUrlOut(url, detail)))
            case DocumentPart():
                parts.append(_file_out(part, f"messages[{i}].content[{j}]"))
    return parts


_FILE_EXTENSIONS = {"application/pdf": ".pdf", "text/plain": ".txt"}


def _file_out(part: DocumentPart, param: str) -> _FilePartOut:
    """A ``file`` part with the document inline as a data URL (protocols.md §1)."""
    if part.data is None:
        raise InvalidRequest(
            "Remote document URLs are not fetched for this deployment, and OpenAI-compatible "
            "upstreams take files inline only; send the document as base64 data.",
            param=param,
        )
    url = f"data:{part.media_type};base64,{base64.b64encode(part.data).decode()}"
    # OpenAI wants a filename with file_data.
    name = part.name or "document" + _FILE_EXTENSIONS.get(part.media_type, "")
    return _FilePartOut(file=_FileOut(file_data=url, filename=name))


def _tool_choice_out(choice: ToolChoice | None) -> str | _NamedToolChoice | None:
    if choice is None:
        return None
    if choice.mode == "tool":
        return _NamedToolChoice(function=_FunctionName(name=choice.name or ""))
    return choice.mode


def _response_format_out(response_format: ResponseFormat | None) -> _ResponseFormatOut | None:
    if response_format is None:
        return None
    if response_format.type != "json_schema":
        return _ResponseFormatOut(type=response_format.type)
    # OpenAI requires a name; a format from Anthropic's output_config has none.
    schema = _JsonSchemaOut(
        name=response_format.name or "response",
        schema=response_format.schema,
        strict=response_format.strict,
    )
    return _ResponseFormatOut(type="json_schema", json_schema=schema)


def _effort_out(config: ReasoningConfig | None) -> str | None:
    """An effort as given, or the effort nearest a token budget (the same steps as the
    Claude budgets in ``wire.bedrock_request``)."""
    if config is None or config.effort is not None:
        return config.effort if config is not None else None
    if config.budget_tokens is None:
        return None
    budget = config.budget_tokens
    return "low" if budget <= 2048 else "medium" if budget <= 8192 else "high"


# --- reading an OpenAI-shaped answer --------------------------------------------------


class _FunctionIn(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class _ToolCallIn(msgspec.Struct, kw_only=True):
    index: int = 0
    id: str | None = None
    function: _FunctionIn | None = None


class _ThinkingIn(msgspec.Struct, kw_only=True):
    type: str
    thinking: str = ""
    signature: str | None = None
    data: bytes | None = None


class _MessageIn(msgspec.Struct, kw_only=True):
    """A message, or a stream delta: the same fields, all optional."""

    content: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    reasoning: Any = None
    """vLLM and Ollama put reasoning text here; other servers an object (not read)."""
    tool_calls: list[_ToolCallIn] | None = None
    thinking_blocks: list[_ThinkingIn] | None = None


class _ChoiceIn(msgspec.Struct, kw_only=True):
    index: int = 0
    message: _MessageIn | None = None
    delta: _MessageIn | None = None
    finish_reason: str | None = None


class _PromptDetailsIn(msgspec.Struct):
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None


class _CompletionDetailsIn(msgspec.Struct):
    reasoning_tokens: int | None = None


class _UsageIn(msgspec.Struct, kw_only=True):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: _PromptDetailsIn | None = None
    completion_tokens_details: _CompletionDetailsIn | None = None


class _CompletionIn(msgspec.Struct, kw_only=True):
    id: str = ""
    created: int = 0
    model: str = ""
    choices: list[_ChoiceIn] | None = None
    usage: _UsageIn | None = None
    error: Any = None


_decode_completion = msgspec.json.Decoder(_CompletionIn)
_FINISH_IN: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def _finish_in(reason: str | None) -> FinishReason | None:
    return None if reason is None else _FINISH_IN.get(reason, "stop")


def _usage_in(usage: _UsageIn) -> Usage:
    prompt = usage.prompt_tokens_details
    completion = usage.completion_tokens_details
    return Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens or usage.prompt_tokens + usage.completion_tokens,
        prompt_tokens_details=(
            PromptDetails(
                cached_tokens=prompt.cached_tokens or 0,
                cache_write_tokens=prompt.cache_write_tokens or 0,
            )
            if prompt is not None
            else None
        ),
        completion_tokens_details=(
            CompletionDetails(reasoning_tokens=completion.reasoning_tokens or 0)
            if completion is not None
            else None
        ),
    )


def from_openai_response(body: bytes) -> ChatResponse:
    """A ``chat.completion`` body → the canonical response; ``UpstreamProtocolError`` if
    it is malformed, has no choices or is an error object."""
    try:
        completion = _decode_completion.decode(body)
    except (msgspec.DecodeError, ValueError):
        raise UpstreamProtocolError("The upstream returned a malformed chat.completion.") from None
    if completion.error is not None or not completion.choices:
        raise UpstreamProtocolError("The upstream returned a chat.completion without choices.")
    choices = [
        Choice(
            index=c.index,
            message=_message_in(c.message or _MessageIn()),
            finish_reason=_finish_in(c.finish_reason),
            raw_finish_reason=c.finish_reason,
        )
        for c in completion.choices
    ]
    usage = _usage_in(completion.usage) if completion.usage is not None else None
    return ChatResponse(
        id=completion.id,
        model=completion.model,
        created=completion.created,
        choices=choices,
        usage=usage,
    )


def _message_in(message: _MessageIn) -> Message:
    texts = [t for t in (message.content, message.refusal) if t]
    calls = [
        ToolCall(id=c.id or "", name=c.function.name or "", arguments=c.function.arguments or "")
        for c in message.tool_calls or []
        if c.function is not None
    ]
    return Message(
        role="assistant",
        content=[TextPart(text=t) for t in texts],
        tool_calls=calls,
        reasoning=_reasoning_in(message),
    )


def _reasoning_in(message: _MessageIn) -> list[Reasoning]:
    if message.thinking_blocks:
        return [
            Reasoning(redacted=b.data)
            if b.type == "redacted_thinking"
            else Reasoning(text=b.thinking, signature=b.signature)
            for b in message.thinking_blocks
        ]
    text = message.reasoning_content or message.reasoning
    return [Reasoning(text=text)] if isinstance(text, str) and text else []


class OpenAIChunkReader:
    """``chat.completion.chunk`` payloads → canonical stream events; the inverse of
    ``OpenAIChunkWriter``.

    A tool call's first fragment (with its id and name) is a ``ToolCallStart``; its
    argument fragments are ``ToolCallDelta``. Usage is reported from the chunk that
    ``stream_options.include_usage`` adds (``"choices": []``) or from a chunk that also
    finishes a choice; running usage on other chunks (vLLM's continuous stats) is not.
    An ``{"error": ...}`` payload or a malformed one raises ``ValueError``.
    """

    __slots__ = ("_slots",)

    def __init__(self) -> None:
        self._slots: dict[tuple[int, int], int] = {}
        """(choice, the upstream's tool-call index) → canonical slot."""

    def feed(self, data: bytes) -> list[StreamEvent]:
        """One SSE ``data`` payload (``[DONE]`` gives nothing)."""
        if data.strip() == b"[DONE]":
            return []
        try:
            chunk = _decode_completion.decode(data)
        except (msgspec.DecodeError, ValueError) as exc:
            raise ValueError(f"Malformed chat.completion.chunk: {exc}") from None
        if chunk.error is not None:
            raise ValueError(f"The upstream sent an error in the stream: {chunk.error!r}")
        events: list[StreamEvent] = []
        finished = False
        for choice in chunk.choices or []:
            events += self._choice(choice)
            finished = finished or choice.finish_reason is not None
        if chunk.usage is not None and (finished or not chunk.choices):
            events.append(UsageReport(usage=_usage_in(chunk.usage)))
        return events

    def _choice(self, choice: _ChoiceIn) -> list[StreamEvent]:
        delta = choice.delta or _MessageIn()
        index = choice.index
        events: list[StreamEvent] = [
            ReasoningDelta(choice=index, text=r.text, signature=r.signature, redacted=r.redacted)
            for r in _reasoning_in(delta)
        ]
        events += [TextDelta(choice=index, text=t) for t in (delta.content, delta.refusal) if t]
        for call in delta.tool_calls or []:
            events += self._tool_call(index, call)
        reason = _finish_in(choice.finish_reason)
        if reason is not None:
            events.append(Finish(choice=index, reason=reason, raw_reason=choice.finish_reason))
        return events

    def _tool_call(self, choice: int, call: _ToolCallIn) -> list[StreamEvent]:
        function = call.function or _FunctionIn()
        slot = self._slots.get((choice, call.index))
        events: list[StreamEvent] = []
        if slot is None:
            if not call.id or not function.name:
                raise ValueError(f"Tool call {call.index} began without an id and a name.")
            slot = sum(1 for c, _ in self._slots if c == choice)
            self._slots[choice, call.index] = slot
            events.append(ToolCallStart(choice=choice, slot=slot, id=call.id, name=function.name))
        if function.arguments:
            events.append(ToolCallDelta(choice=choice, slot=slot, arguments=function.arguments))
        return events
