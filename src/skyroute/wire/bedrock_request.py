"""Canonical chat request → Bedrock Converse request body (protocols.md §3, "Converse request").

The body is the same for ``/converse`` and ``/converse-stream``; the model is named only in
the URL. Bedrock is stricter than OpenAI about the shape of a conversation, so this is where
the differences are absorbed:

- system and developer messages go to the top-level ``system`` list;
- turns must alternate user/assistant and start with a user turn, so consecutive same-role
  turns are merged and tool results become ``toolResult`` blocks in a user turn;
- blank text blocks are refused by Bedrock, so they are dropped;
- any ``toolUse``/``toolResult`` block in the history requires a ``toolConfig``;
- documents go as ``document`` blocks with their bytes, under a name Bedrock accepts
  (``document_name``); a URL-only document is refused, as the gateway fetches nothing.
  Image and document blocks are built in ``bedrock_media``.

Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from skyroute.core.chat import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    ReasoningConfig,
    TextPart,
    Tool,
)
from skyroute.core.errors import InvalidRequest
from skyroute.wire.bedrock_media import (
    DocumentBlock,
    DocumentNames,
    ImageBlock,
    document_block,
    image_block,
)
from skyroute.wire.claude import thinking_budget, tool_input

__all__ = ["model_family", "to_converse"]


class _Wire(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    pass


# --- content blocks (each holds exactly one union member) -----------------------------


class _Text(_Wire):
    text: str


class _ToolUse(_Wire):
    tool_use_id: str
    name: str
    input: msgspec.Raw


class _ToolUseBlock(_Wire):
    tool_use: _ToolUse


class _ToolResult(_Wire):
    tool_use_id: str
    content: list[_Text | ImageBlock | DocumentBlock]


class _ToolResultBlock(_Wire):
    tool_result: _ToolResult


class _ReasoningText(_Wire):
    text: str
    signature: str | None = None


class _ReasoningContent(_Wire):
    reasoning_text: _ReasoningText | None = None
    redacted_content: bytes | None = None


class _ReasoningBlock(_Wire):
    reasoning_content: _ReasoningContent


_Block = _Text | ImageBlock | DocumentBlock | _ToolUseBlock | _ToolResultBlock | _ReasoningBlock


class _Message(_Wire):
    role: Literal["user", "assistant"]
    content: list[_Block]


# --- request --------------------------------------------------------------------------


class _InputSchema(_Wire):
    json: dict[str, Any]


class _ToolSpec(_Wire, kw_only=True):
    name: str
    description: str | None = None
    input_schema: _InputSchema
    strict: bool | None = None


class _ToolEntry(_Wire):
    tool_spec: _ToolSpec


class _Empty(_Wire):
    pass


class _ToolName(_Wire):
    name: str


class _ToolChoice(_Wire):
    auto: _Empty | None = None
    any: _Empty | None = None
    tool: _ToolName | None = None


class _ToolConfig(_Wire):
    tools: list[_ToolEntry]
    tool_choice: _ToolChoice | None = None


class _InferenceConfig(_Wire):
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop_sequences: list[str] = []


class _JsonSchema(_Wire):
    schema: str
    name: str | None = None


class _Structure(_Wire):
    json_schema: _JsonSchema


class _TextFormat(_Wire):
    type: Literal["json_schema"]
    structure: _Structure


class _OutputConfig(_Wire):
    text_format: _TextFormat


class _Converse(_Wire):
    messages: list[_Message]
    system: list[_Text] = []
    inference_config: _InferenceConfig | None = None
    tool_config: _ToolConfig | None = None
    additional_model_request_fields: dict[str, Any] | None = None
    output_config: _OutputConfig | None = None


_encode = msgspec.json.Encoder()

# Bedrock refuses a conversation whose first turn is not the user's ("A conversation must
# start with a user message."); a leading assistant turn (a prefill) gets this stand-in.
_LEADING_USER_TEXT = "."
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def to_converse(request: ChatRequest, *, model_id: str) -> bytes:
    """The Converse JSON body for ``request``; ``model_id`` (the deployment's Bedrock id)
    picks the model family's reasoning fields. Raises ``InvalidRequest`` naming the
    parameter for what Bedrock cannot take."""
    if request.n != 1:
        raise InvalidRequest("Bedrock returns one choice per request; 'n' must be 1.", param="n")
    system, messages = _conversation(request.messages)
    reasoning = _reasoning_fields(request, model_family(model_id))
    return _encode.encode(
        _Converse(
            messages=messages,
            system=system,
            inference_config=_inference_config(request, reasoning),
            tool_config=_tool_config(request, messages),
            additional_model_request_fields=reasoning.fields if reasoning else None,
            output_config=_output_config(request),
        )
    )


# --- messages -------------------------------------------------------------------------


def _conversation(messages: list[Message]) -> tuple[list[_Text], list[_Message]]:
    system: list[_Text] = []
    turns: list[_Message] = []
    names = DocumentNames()
    for i, message in enumerate(messages):
        match message.role:
            case "system" | "developer":
                system.extend(_system_blocks(message, i))
                continue
            case "user":
                turn = _Message(role="user", content=_content_blocks(message, i, names))
            case "tool":
                turn = _Message(role="user", content=[_tool_result(message, i, names)])
            case "assistant":
                turn = _Message(role="assistant", content=_assistant_blocks(message, i, names))
        if not turn.content:
            continue
        if turns and turns[-1].role == turn.role:
            turns[-1].content.extend(turn.content)
        else:
            turns.append(turn)
    if not turns:
        raise InvalidRequest(
            "Bedrock needs at least one user or assistant message with content.",
            param="messages",
        )
    if turns[0].role == "assistant":
        turns.insert(0, _Message(role="user", content=[_Text(text=_LEADING_USER_TEXT)]))
    for turn in turns:
        if turn.role == "user":
            _tool_results_first(turn.content)
    return system, turns


def _tool_results_first(blocks: list[_Block]) -> None:
    """Claude wants a user turn's tool results before its other blocks; a merged turn may
    hold user text first. Stable, in place."""
    blocks.sort(key=lambda block: not isinstance(block, _ToolResultBlock))


def _system_blocks(message: Message, i: int) -> list[_Text]:
    blocks = []
    for j, part in enumerate(message.content):
        if not isinstance(part, TextPart):
            raise InvalidRequest(
                "Bedrock system prompts hold text only.", param=f"messages[{i}].content[{j}]"
            )
        if part.text.strip():  # system text is a NonEmptyString in the service model
            blocks.append(_Text(text=part.text))
    return blocks


def _content_blocks(message: Message, i: int, names: DocumentNames) -> list[_Block]:
    blocks: list[_Block] = []
    for j, part in enumerate(message.content):
        match part:
            case TextPart(text=text):
                # Bedrock: "The text field in the ContentBlock object ... is blank."
                if text.strip():
                    blocks.append(_Text(text=text))
            case ImagePart():
                blocks.append(image_block(part, f"messages[{i}].content[{j}].image_url"))
            case DocumentPart():
                blocks.append(document_block(part, f"messages[{i}].content[{j}]", names))
    return blocks


def _assistant_blocks(message: Message, i: int, names: DocumentNames) -> list[_Block]:
    blocks: list[_Block] = []
    # Reasoning goes first and unchanged: Claude checks its signature (protocols.md §6).
    # Unsigned reasoning text (from a client that only kept reasoning_content) cannot be
    # verified by the model, so it is not sent back.
    for reasoning in message.reasoning:
        if reasoning.redacted is not None:
            content = _ReasoningContent(redacted_content=reasoning.redacted)
        elif reasoning.signature:
            content = _ReasoningContent(
                reasoning_text=_ReasoningText(text=reasoning.text, signature=reasoning.signature)
            )
        else:
            continue
        blocks.append(_ReasoningBlock(reasoning_content=content))
    blocks.extend(_content_blocks(message, i, names))
    for k, call in enumerate(message.tool_calls):
        arguments = tool_input(call.arguments, f"messages[{i}].tool_calls[{k}].function.arguments")
        blocks.append(
            _ToolUseBlock(tool_use=_ToolUse(tool_use_id=call.id, name=call.name, input=arguments))
        )
    return blocks


def _tool_result(message: Message, i: int, names: DocumentNames) -> _ToolResultBlock:
    content: list[_Text | ImageBlock | DocumentBlock] = []
    for j, part in enumerate(message.content):
        match part:
            case TextPart():
                content.append(_Text(text=part.text))
            case ImagePart():
                content.append(image_block(part, f"messages[{i}].content[{j}].image_url"))
            case DocumentPart():
                content.append(document_block(part, f"messages[{i}].content[{j}]", names))
    call_id = message.tool_call_id or ""
    return _ToolResultBlock(tool_result=_ToolResult(tool_use_id=call_id, content=content))


# --- tools ----------------------------------------------------------------------------


def _tool_config(request: ChatRequest, messages: list[_Message]) -> _ToolConfig | None:
    choice = request.tool_choice
    mode = choice.mode if choice is not None else None
    history = _history_uses_tools(messages)
    if mode == "none" or not request.tools:
        if mode in ("required", "tool"):
            raise InvalidRequest(
                "'tool_choice' asks for a tool call but no tools were given.", param="tool_choice"
            )
        if not history:
            return None
        # Bedrock requires toolConfig whenever the history holds toolUse or toolResult
        # blocks, so "none" keeps the tools and lets the model choose (auto).
        specs = [_tool_spec(t) for t in request.tools] or _specs_from_history(messages)
        auto = _ToolChoice(auto=_Empty()) if mode == "none" else None
        return _ToolConfig(tools=specs, tool_choice=auto) if specs else None
    specs = [_tool_spec(tool) for tool in request.tools]
    return _ToolConfig(tools=specs, tool_choice=_tool_choice(request, mode))


def _tool_choice(request: ChatRequest, mode: str | None) -> _ToolChoice | None:
    match mode:
        case None:
            return None
        case "auto":
            return _ToolChoice(auto=_Empty())
        case "required":
            return _ToolChoice(any=_Empty())
        case _:
            name = request.tool_choice.name if request.tool_choice else None
            if name is None or all(tool.name != name for tool in request.tools):
                raise InvalidRequest(
                    f"'tool_choice' names the tool {name!r}, which is not in 'tools'.",
                    param="tool_choice",
                )
            return _ToolChoice(tool=_ToolName(name=name))


def _tool_spec(tool: Tool) -> _ToolEntry:
    spec = _ToolSpec(
        name=tool.name,
        # description is a NonEmptyString in the service model: omit it rather than send "".
        description=tool.description or None,
        # Anthropic's input_schema must be an object schema, even with no parameters.
        input_schema=_InputSchema(json=tool.parameters or _EMPTY_SCHEMA),
        # Sent only when asked for; absent means non-strict, OpenAI's default too.
        strict=True if tool.strict else None,
    )
    return _ToolEntry(tool_spec=spec)


def _history_uses_tools(messages: list[_Message]) -> bool:
    return any(
        isinstance(block, _ToolUseBlock | _ToolResultBlock)
        for message in messages
        for block in message.content
    )


def _specs_from_history(messages: list[_Message]) -> list[_ToolEntry]:
    """Stand-in specs for the tools named in the history, when the request lists none."""
    names = {
        block.tool_use.name: None
        for message in messages
        for block in message.content
        if isinstance(block, _ToolUseBlock)
    }
    return [_tool_spec(Tool(name=name)) for name in names]


# --- sampling, output format, reasoning -----------------------------------------------


class _Reasoning(msgspec.Struct, frozen=True):
    fields: dict[str, Any]
    max_tokens: int | None = None
    """A ``maxTokens`` the reasoning needs when the client set none."""


def _inference_config(
    request: ChatRequest, reasoning: _Reasoning | None
) -> _InferenceConfig | None:
    temperature = request.temperature
    if temperature is not None and not 0 <= temperature <= 1:
        # InferenceConfiguration.temperature is bounded to [0, 1] in the service model.
        raise InvalidRequest("Bedrock accepts a temperature between 0 and 1.", param="temperature")
    max_tokens = request.max_tokens
    if max_tokens is None and reasoning is not None:
        max_tokens = reasoning.max_tokens
    config = _InferenceConfig(
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=request.top_p,
        stop_sequences=request.stop,
    )
    return config if config != _InferenceConfig() else None


def _output_config(request: ChatRequest) -> _OutputConfig | None:
    response_format = request.response_format
    # json_object has no Converse equivalent; OpenAI already requires such prompts to ask
    # for JSON in words, so the prompt alone carries the intent.
    if response_format is None or response_format.type != "json_schema":
        return None
    if response_format.schema is None:
        raise InvalidRequest(
            "Bedrock needs 'response_format.json_schema.schema'.",
            param="response_format.json_schema.schema",
        )
    # outputConfig.textFormat carries the schema as a JSON *string* (protocols.md §3).
    schema = _encode.encode(response_format.schema).decode()
    structure = _Structure(json_schema=_JsonSchema(schema=schema, name=response_format.name))
    return _OutputConfig(text_format=_TextFormat(type="json_schema", structure=structure))


Family = Literal["anthropic", "openai", "other"]
_PROVIDERS: dict[str, Family] = {"anthropic": "anthropic", "openai": "openai"}
_ANSWER_TOKENS = 4096
"""Room for the answer after the thinking budget, when the client set no max tokens."""


def model_family(model_id: str) -> Family:
    """The model family behind a Bedrock model id, inference profile or ARN.

    ``us.anthropic.claude-…``, ``anthropic.claude-…`` and ``arn:…/anthropic.claude-…`` are
    Claude; ``openai.gpt-oss-…`` is gpt-oss. Application inference profiles name no model.
    """
    name = model_id.rpartition("/")[2]
    for label in name.split(".")[:2]:  # an optional region prefix, then the provider
        family = _PROVIDERS.get(label)
        if family is not None:
            return family
    return "other"


def _reasoning_fields(request: ChatRequest, family: Family) -> _Reasoning | None:
    """``additionalModelRequestFields`` for the model family's native reasoning switch.

    Other families have no documented switch (protocols.md §3 names Claude's ``thinking``);
    their reasoning setting is dropped rather than failing a request that may fail over.
    """
    config = request.reasoning
    if config is None or (config.effort is None and config.budget_tokens is None):
        return None
    match family:
        case "anthropic":
            return _claude_thinking(config, request.max_tokens)
        case "openai":
            return _Reasoning(fields={"reasoning_effort": _gpt_oss_effort(config)})
        case "other":
            return None


def _claude_thinking(config: ReasoningConfig, max_tokens: int | None) -> _Reasoning:
    budget = thinking_budget(config, max_tokens, param="max_completion_tokens")
    fields = {"thinking": {"type": "enabled", "budget_tokens": budget}}
    return _Reasoning(fields=fields, max_tokens=budget + _ANSWER_TOKENS)


def _gpt_oss_effort(config: ReasoningConfig) -> str:
    """gpt-oss takes low, medium or high; a budget is mapped onto the nearest effort."""
    if config.effort is not None:
        return "low" if config.effort == "minimal" else config.effort
    budget = config.budget_tokens or 0
    return "low" if budget <= 2048 else "medium" if budget <= 8192 else "high"
