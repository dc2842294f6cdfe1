"""Canonical chat request → Gemini generateContent body (protocols.md §4a "Request", §5).

The body is the same for Vertex AI and the Gemini API, and for ``:generateContent`` and
``:streamGenerateContent``; the model is named only in the URL. Keys are camelCase, the
proto JSON names (Google also reads snake_case, protocols.md §0.2, but one form is easier
to check). Where Gemini differs from OpenAI:

- system and developer messages go to ``systemInstruction``;
- there is no tool role: tool results are ``functionResponse`` parts of a user turn, and
  name the function, which the gateway finds from the call's id in the history;
- consecutive turns of the same role are merged into one, so turns alternate;
- images and documents go as ``inlineData`` with their bytes; URL-only ones are refused,
  as the gateway fetches nothing and Gemini's ``fileData`` takes uploaded files;
- the Gemini 3 ``thoughtSignature`` of each function call, carried in its tool-call id
  (see ``wire.gemini``), goes back on the functionCall part (protocols.md §0.11).

Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

from typing import Any, Literal, assert_never

import msgspec

from skyroute.core.chat import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    TextPart,
    Tool,
    ToolCall,
)
from skyroute.core.errors import InvalidRequest
from skyroute.wire.gemini_response import ToolCallRef, read_tool_call_id

__all__ = ["to_gemini"]


class _Wire(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    pass


# --- contents -------------------------------------------------------------------------


class _Blob(_Wire):
    mime_type: str
    data: bytes  # base64 in JSON, as msgspec writes bytes and proto JSON reads them


class _FunctionCall(_Wire):
    name: str
    args: dict[str, Any]
    id: str | None = None


class _FunctionResponse(_Wire):
    name: str
    response: dict[str, Any]
    id: str | None = None


class _Part(_Wire):
    """One part: exactly one of the data fields, plus an optional ``thoughtSignature``."""

    text: str | None = None
    thought: bool | None = None
    inline_data: _Blob | None = None
    function_call: _FunctionCall | None = None
    function_response: _FunctionResponse | None = None
    thought_signature: str | None = None


class _Content(_Wire):
    role: Literal["user", "model"]
    parts: list[_Part]


class _SystemInstruction(_Wire):
    parts: list[_Part]


# --- tools and generation config ------------------------------------------------------


class _FunctionDeclaration(_Wire):
    name: str
    description: str | None = None
    parameters_json_schema: dict[str, Any] | None = None


class _Tool(_Wire):
    function_declarations: list[_FunctionDeclaration]


class _FunctionCallingConfig(_Wire):
    mode: Literal["AUTO", "ANY", "NONE"]
    allowed_function_names: list[str] = []


class _ToolConfig(_Wire):
    function_calling_config: _FunctionCallingConfig


class _ThinkingConfig(_Wire):
    thinking_budget: int | None = None
    thinking_level: str | None = None
    include_thoughts: bool | None = None


class _GenerationConfig(_Wire):
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    stop_sequences: list[str] = []
    seed: int | None = None
    candidate_count: int | None = None
    response_mime_type: str | None = None
    response_json_schema: dict[str, Any] | None = None
    thinking_config: _ThinkingConfig | None = None


class _Request(_Wire):
    contents: list[_Content]
    system_instruction: _SystemInstruction | None = None
    tools: list[_Tool] = []
    tool_config: _ToolConfig | None = None
    generation_config: _GenerationConfig | None = None


_encode = msgspec.json.Encoder()
_EMPTY_CONFIG = _GenerationConfig()
_MODES: dict[str, Literal["AUTO", "ANY", "NONE"]] = {
    "auto": "AUTO",
    "none": "NONE",
    "required": "ANY",
    "tool": "ANY",
}


def to_gemini(request: ChatRequest) -> bytes:
    """The generateContent JSON body for ``request``. Raises ``InvalidRequest`` naming the
    parameter for what Gemini cannot take."""
    calls = _calls_by_id(request.messages)
    system: list[_Part] = []
    turns: list[_Content] = []
    for i, message in enumerate(request.messages):
        match message.role:
            case "system" | "developer":
                system.extend(_system_parts(message, i))
            case "user":
                _append(turns, "user", _content_parts(message, i))
            case "assistant":
                _append(turns, "model", _model_parts(message, i, calls))
            case "tool":
                _append(turns, "user", [_function_response(message, i, calls)])
            case _:
                assert_never(message.role)
    if not turns:
        raise InvalidRequest(
            "Gemini needs at least one user or assistant message with content.", param="messages"
        )
    return _encode.encode(
        _Request(
            contents=turns,
            system_instruction=_SystemInstruction(parts=system) if system else None,
            tools=_tools(request.tools),
            tool_config=_tool_config(request),
            generation_config=_generation_config(request),
        )
    )


def _append(turns: list[_Content], role: Literal["user", "model"], parts: list[_Part]) -> None:
    """Add a turn, merged into the last one when the role repeats (Gemini wants turns
    to alternate, and wants parallel function responses together in one turn)."""
    if not parts:
        return
    if turns and turns[-1].role == role:
        turns[-1].parts.extend(parts)
    else:
        turns.append(_Content(role=role, parts=parts))


# --- messages -------------------------------------------------------------------------

_Calls = dict[str, tuple[str, ToolCallRef]]
"""Assistant tool-call id → (function name, what the id carries)."""


def _calls_by_id(messages: list[Message]) -> _Calls:
    calls: _Calls = {}
    for i, message in enumerate(messages):
        for k, call in enumerate(message.tool_calls):
            calls[call.id] = (call.name, _ref(call.id, f"messages[{i}].tool_calls[{k}].id"))
    return calls


def _ref(call_id: str, param: str) -> ToolCallRef:
    try:
        return read_tool_call_id(call_id)
    except ValueError:
        raise InvalidRequest(
            f"'{param}' looks like a tool-call id this gateway issued for Gemini, but it has "
            "been altered; send tool-call ids back exactly as they were received.",
            param=param,
        ) from None


def _system_parts(message: Message, i: int) -> list[_Part]:
    parts = []
    for j, part in enumerate(message.content):
        if not isinstance(part, TextPart):
            raise InvalidRequest(
                "Gemini system instructions hold text only.", param=f"messages[{i}].content[{j}]"
            )
        if part.text:
            parts.append(_Part(text=part.text))
    return parts


def _content_parts(message: Message, i: int) -> list[_Part]:
    parts: list[_Part] = []
    for j, part in enumerate(message.content):
        match part:
            case TextPart(text=text):
                if text:  # "" draws 400 "…it has an empty text parameter." (see _sign_answer)
                    parts.append(_Part(text=text))
            case ImagePart():
                parts.append(_image(part, f"messages[{i}].content[{j}].image_url"))
            case DocumentPart():
                parts.append(_document(part, f"messages[{i}].content[{j}]"))
            case _:
                assert_never(part)
    return parts


def _image(part: ImagePart, param: str) -> _Part:
    # protocols.md §4a lists fileData{mimeType, fileUri} but does not say that Gemini
    # fetches http(s) URIs (only uploaded files and gs:// URIs are documented to work), and
    # the gateway does not fetch images itself: a URL is refused with a clear 400.
    if part.data is None:
        raise InvalidRequest(
            "Remote image URLs are not fetched for this deployment; send the image as a "
            "base64 data URL.",
            param=param,
        )
    if not part.media_type:
        raise InvalidRequest(
            "The image needs a media type (data:image/png;base64,...).", param=param
        )
    return _Part(inline_data=_Blob(mime_type=part.media_type, data=part.data))


def _document(part: DocumentPart, param: str) -> _Part:
    # As for images: Gemini documents fileData for uploaded files and gs:// URIs, and the
    # gateway fetches nothing, so a URL-only document is refused.
    if part.data is None:
        raise InvalidRequest(
            "Remote document URLs are not fetched for this deployment; send the document "
            "as base64 data.",
            param=param,
        )
    return _Part(inline_data=_Blob(mime_type=part.media_type, data=part.data))


def _model_parts(message: Message, i: int, calls: _Calls) -> list[_Part]:
    # Signed reasoning text goes back as thought parts with their signature. Unsigned
    # reasoning (thought summaries a client kept as reasoning_content) means nothing to
    # Gemini and redacted reasoning is another provider's, so neither is sent.
    parts = [
        _Part(text=r.text, thought=True, thought_signature=r.signature)
        for r in message.reasoning
        if r.signature and r.text
    ]
    parts.extend(_content_parts(message, i))
    answer_signature = next(
        (r.signature for r in message.reasoning if r.signature and not r.text), None
    )
    if answer_signature is not None:
        _sign_answer(parts, answer_signature)
    for k, call in enumerate(message.tool_calls):
        parts.append(_call_part(call, calls[call.id][1], f"messages[{i}].tool_calls[{k}]"))
    return parts


def _sign_answer(parts: list[_Part], signature: str) -> None:
    """Signed reasoning with no text is the signature Gemini 3 put on the last part of a
    plain answer (``from_gemini`` keeps it so): it goes back on the last text part, where
    Gemini wrote it. With no text to carry it, it is dropped: Gemini requires signatures
    only on function calls, and an empty text part draws 400 INVALID_ARGUMENT "Unable to
    submit request because it has an empty text parameter."."""
    for part in reversed(parts):
        if part.text and not part.thought and part.thought_signature is None:
            part.thought_signature = signature
            return


def _call_part(call: ToolCall, ref: ToolCallRef, at: str) -> _Part:
    args = _arguments(call.arguments, f"{at}.function.arguments")
    # Without its signature Gemini 3 answers 400 "Function call is missing a
    # thought_signature in functionCall parts" (protocols.md §0.11).
    signature = call.signature or ref.signature
    function_call = _FunctionCall(name=call.name, args=args, id=ref.upstream_id)
    return _Part(function_call=function_call, thought_signature=signature)


def _arguments(arguments: str, param: str) -> dict[str, Any]:
    if not arguments.strip():
        return {}
    try:
        value = msgspec.json.decode(arguments)
    except msgspec.DecodeError:
        raise InvalidRequest(f"'{param}' is not valid JSON.", param=param) from None
    if not isinstance(value, dict):
        raise InvalidRequest(f"'{param}' must be a JSON object.", param=param)
    return value


def _function_response(message: Message, i: int, calls: _Calls) -> _Part:
    param = f"messages[{i}].tool_call_id"
    call_id = message.tool_call_id or ""
    known = calls.get(call_id)
    name, ref = known if known is not None else (message.name, _ref(call_id, param))
    if not name:
        raise InvalidRequest(
            f"'{param}' matches no tool call of an earlier assistant message; Gemini needs "
            "the function's name with its result.",
            param=param,
        )
    texts = []
    for j, part in enumerate(message.content):
        if not isinstance(part, TextPart):
            raise InvalidRequest(
                "Gemini tool results hold text only.", param=f"messages[{i}].content[{j}]"
            )
        texts.append(part.text)
    response = _FunctionResponse(
        name=name, response=_tool_output("".join(texts)), id=ref.upstream_id
    )
    return _Part(function_response=response)


def _tool_output(text: str) -> dict[str, Any]:
    """``functionResponse.response`` must be a JSON object. A result that is one is sent as
    it is; any other text goes under ``output``, the key google-genai documents for it."""
    if text.lstrip().startswith("{"):
        try:
            value = msgspec.json.decode(text)
        except msgspec.DecodeError:
            value = None
        if isinstance(value, dict):
            return value
    return {"output": text}


# --- tools ----------------------------------------------------------------------------


def _tools(tools: list[Tool]) -> list[_Tool]:
    if not tools:
        return []
    # parametersJsonSchema takes JSON Schema as OpenAI clients write it; ``parameters``
    # wants Google's OpenAPI subset with upper-case types (protocols.md §4a).
    declarations = [
        _FunctionDeclaration(
            name=tool.name,
            description=tool.description or None,
            parameters_json_schema=tool.parameters or None,
        )
        for tool in tools
    ]
    return [_Tool(function_declarations=declarations)]


def _tool_config(request: ChatRequest) -> _ToolConfig | None:
    choice = request.tool_choice
    if choice is None:
        return None
    if not request.tools:
        if choice.mode in ("auto", "none"):
            return None
        raise InvalidRequest(
            "'tool_choice' asks for a tool call but no tools were given.", param="tool_choice"
        )
    names: list[str] = []
    if choice.mode == "tool":
        if choice.name is None or all(tool.name != choice.name for tool in request.tools):
            raise InvalidRequest(
                f"'tool_choice' names the tool {choice.name!r}, which is not in 'tools'.",
                param="tool_choice",
            )
        names = [choice.name]
    config = _FunctionCallingConfig(mode=_MODES[choice.mode], allowed_function_names=names)
    return _ToolConfig(function_calling_config=config)


# --- sampling, output format, reasoning -----------------------------------------------


def _generation_config(request: ChatRequest) -> _GenerationConfig | None:
    response_format = request.response_format
    kind = response_format.type if response_format is not None else "text"
    config = _GenerationConfig(
        temperature=request.temperature,
        top_p=request.top_p,
        max_output_tokens=request.max_tokens,
        stop_sequences=request.stop,
        seed=request.seed,
        candidate_count=request.n if request.n != 1 else None,
        response_mime_type="application/json" if kind != "text" else None,
        response_json_schema=(
            response_format.schema
            if response_format is not None and kind == "json_schema"
            else None
        ),
        thinking_config=_thinking_config(request),
    )
    return config if config != _EMPTY_CONFIG else None


def _thinking_config(request: ChatRequest) -> _ThinkingConfig | None:
    """protocols.md §4a: ``thinkingBudget`` (-1 dynamic, 0 off, N tokens) or, for Gemini 3,
    ``thinkingLevel`` (MINIMAL, LOW, MEDIUM, HIGH), never both. An explicit budget wins;
    an OpenAI effort names a level one to one."""
    reasoning = request.reasoning
    if reasoning is None:
        return None
    if reasoning.budget_tokens is not None:
        return _ThinkingConfig(thinking_budget=reasoning.budget_tokens, include_thoughts=True)
    if reasoning.effort is not None:
        return _ThinkingConfig(thinking_level=reasoning.effort.upper(), include_thoughts=True)
    return None
