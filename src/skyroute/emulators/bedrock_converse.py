"""Converse and ConverseStream: check a request as Bedrock does, answer it, frame the answer.

Pure: bytes in, bytes out. `read_converse` decodes and validates the body (raising
`ConverseRejected` with Bedrock's own ValidationException text) and reads it into the OpenAI
emulator's `ChatRequest`, which `bedrock_answer` answers. `converse_body` and
`converse_events` write the answer back as a Converse response or as ConverseStream frames:

    messageStart
    [reasoning]  contentBlockDelta{reasoningContent:{text}}*, {reasoningContent:{signature}},
                 contentBlockStop
    [text]       contentBlockDelta{text}*, contentBlockStop
    [tool use]   contentBlockStart{toolUse:{toolUseId,name}}, contentBlockDelta{toolUse:{input}}*,
                 contentBlockStop
    messageStop{stopReason}
    metadata{usage, metrics}

There is no contentBlockStart for text or reasoning blocks: Bedrock sends none, and an empty
`start` union makes boto3 fail with ResponseParserError.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import msgspec

from skyroute.emulators.bedrock_answer import BedrockAnswer, thinking_problem
from skyroute.emulators.bedrock_converse_wire import (
    BlockDelta,
    BlockStart,
    ContentBlock,
    ContentBlockDeltaEvent,
    ContentBlockStartEvent,
    ContentBlockStopEvent,
    ConverseRequest,
    ConverseResponse,
    Message,
    MessageStartEvent,
    MessageStopEvent,
    MetadataEvent,
    Metrics,
    OutBlock,
    OutMessage,
    Output,
    OutReasoning,
    OutReasoningText,
    OutToolUse,
    ReasoningDelta,
    TokenUsage,
    ToolUseDelta,
    ToolUseStart,
)
from skyroute.emulators.bedrock_stream import event_frame, padding
from skyroute.emulators.chat import EventKind, StreamEvent
from skyroute.emulators.openai_wire import (
    ChatRequest,
    ContentPart,
    FunctionCallIn,
    FunctionDef,
    JsonSchemaFormat,
    ResponseFormat,
    Tool,
    ToolCallIn,
    ToolChoice,
    ToolChoiceFunction,
)
from skyroute.emulators.openai_wire import Message as ChatMessage

__all__ = ["ConverseRejected", "converse_body", "converse_events", "read_converse", "tool_use_id"]

_DECODER: Final = msgspec.json.Decoder(ConverseRequest)
_ENCODER: Final = msgspec.json.Encoder()
_FIRST_USER: Final = (
    "A conversation must start with a user message. Try again with a conversation that starts "
    "with a user message."
)
_ALTERNATE: Final = (
    "A conversation must alternate between user and assistant roles. Make sure the "
    "conversation alternates between user and assistant roles and try again."
)
_NO_TOOL_CONFIG: Final = (
    "The toolConfig field must be defined when using toolUse and toolResult content blocks."
)


class ConverseRejected(ValueError):
    """The request is not one Bedrock would accept; the text is its ValidationException's."""


def read_converse(body: bytes) -> tuple[ConverseRequest, ChatRequest]:
    """Decode and validate a Converse body; raises ConverseRejected."""
    try:
        request = _DECODER.decode(body)
    except msgspec.DecodeError as error:
        raise ConverseRejected(f"1 validation error detected: {error}") from None
    problem = _conversation_problem(request.messages) or _tool_problem(request)
    if problem is not None:
        raise ConverseRejected(problem)
    chat = _to_chat(request)
    forced = isinstance(chat.tool_choice, ToolChoice) or chat.tool_choice == "required"
    max_tokens = request.inference_config.max_tokens
    fields = request.additional_model_request_fields
    problem = thinking_problem(fields, max_tokens, forced)
    if problem is not None:
        raise ConverseRejected(problem)
    return request, chat


def tool_use_id(answer_id: str) -> str:
    return "tooluse_" + answer_id[:22]


# -- validation -------------------------------------------------------------------------------


def _conversation_problem(messages: list[Message]) -> str | None:
    if not messages or messages[0].role != "user":
        return _FIRST_USER
    for index, message in enumerate(messages):
        if index and message.role == messages[index - 1].role:
            return _ALTERNATE
        if not message.content:
            return (
                f"The content field in the Message object at messages.{index} is empty. Add a "
                "ContentBlock object to the content field and try again."
            )
        for position, block in enumerate(message.content):
            if _members_set(block) != 1:
                return (
                    f"Value at 'messages.{index + 1}.member.content.{position + 1}.member' "
                    "failed to satisfy constraint: Member must have exactly one member set"
                )
    return None


def _members_set(block: ContentBlock) -> int:
    return sum(getattr(block, name) is not None for name in block.__struct_fields__)


def _tool_problem(request: ConverseRequest) -> str | None:
    uses_tools = any(
        block.tool_use is not None or block.tool_result is not None
        for message in request.messages
        for block in message.content
    )
    if uses_tools and request.tool_config is None:
        return _NO_TOOL_CONFIG
    text_format = request.output_config and request.output_config.text_format
    if text_format:
        try:
            msgspec.json.decode(text_format.structure.json_schema.schema, type=dict)
        except msgspec.DecodeError:
            return "The JSON schema in outputConfig.textFormat is not a valid JSON object."
    return None


# -- into the OpenAI emulator's request --------------------------------------------------------


def _to_chat(request: ConverseRequest) -> ChatRequest:
    system = [ChatMessage("system", block.text) for block in request.system if block.text]
    messages = [m for message in request.messages for m in _chat_messages(message)]
    config = request.inference_config
    return ChatRequest(
        messages=system + messages,
        max_tokens=config.max_tokens,
        stop=config.stop_sequences,
        tools=_chat_tools(request) or None,
        tool_choice=_chat_tool_choice(request),
        response_format=_chat_format(request),
    )


def _chat_messages(message: Message) -> list[ChatMessage]:
    """Tool results become `tool` messages, ahead of the rest of the turn."""
    results = [
        ChatMessage("tool", _result_text(block), tool_call_id=block.tool_result.tool_use_id)
        for block in message.content
        if block.tool_result is not None
    ]
    parts = [_part(block) for block in message.content if block.text or block.image]
    calls = [
        ToolCallIn(b.tool_use.tool_use_id, FunctionCallIn(b.tool_use.name, _json(b.tool_use.input)))
        for b in message.content
        if b.tool_use is not None
    ]
    if not parts and not calls:
        return results
    turn = ChatMessage(message.role, parts or None, tool_calls=calls or None)
    return [*results, turn]


def _part(block: ContentBlock) -> ContentPart:
    if block.image is not None:
        return ContentPart("image_url")
    return ContentPart("text", text=block.text)


def _result_text(block: ContentBlock) -> str:
    assert block.tool_result is not None
    pieces = [
        item.text if item.text is not None else _json(item.json)
        for item in block.tool_result.content
        if item.text is not None or item.json is not msgspec.UNSET
    ]
    return " ".join(pieces)


def _json(value: object) -> str:
    return _ENCODER.encode(value).decode()


def _chat_tools(request: ConverseRequest) -> list[Tool]:
    entries = request.tool_config.tools if request.tool_config else []
    return [
        Tool(FunctionDef(spec.name, spec.description, spec.input_schema.json))
        for spec in (entry.tool_spec for entry in entries)
        if spec is not None
    ]


def _chat_tool_choice(request: ConverseRequest) -> str | ToolChoice | None:
    choice = request.tool_config.tool_choice if request.tool_config else None
    if choice is None:
        return None
    if choice.tool is not None:
        return ToolChoice(ToolChoiceFunction(choice.tool.name))
    return "required" if choice.any is not None else "auto"


def _chat_format(request: ConverseRequest) -> ResponseFormat | None:
    text_format = request.output_config and request.output_config.text_format
    if not text_format:
        return None
    structure = text_format.structure.json_schema
    schema = msgspec.json.decode(structure.schema, type=dict)
    return ResponseFormat("json_schema", JsonSchemaFormat(structure.name or "output", schema))


# -- the answer, written back ------------------------------------------------------------------


def _usage(answer: BedrockAnswer) -> TokenUsage:
    output = answer.output_tokens
    return TokenUsage(
        input_tokens=answer.input_tokens,
        output_tokens=output,
        total_tokens=answer.input_tokens + output,
    )


def _metrics(answer: BedrockAnswer) -> Metrics:
    # Deterministic, and roughly what a small model takes: 200 ms plus 10 ms a token.
    return Metrics(latency_ms=200 + 10 * answer.output_tokens)


def converse_body(answer: BedrockAnswer) -> bytes:
    blocks: list[OutBlock] = []
    if answer.reasoning:
        text = OutReasoningText(text=answer.reasoning_text, signature=answer.signature)
        blocks.append(OutBlock(reasoning_content=OutReasoning(reasoning_text=text)))
    tool = answer.tool_use
    if tool is not None:
        use = OutToolUse(
            tool_use_id=tool_use_id(tool.id),
            name=tool.name,
            input=msgspec.json.decode(tool.input_json),
        )
        blocks.append(OutBlock(tool_use=use))
    elif answer.pieces:
        blocks.append(OutBlock(text=answer.text))
    response = ConverseResponse(
        output=Output(message=OutMessage(role="assistant", content=blocks)),
        stop_reason=answer.stop.value,
        usage=_usage(answer),
        metrics=_metrics(answer),
    )
    return _ENCODER.encode(response)


class _Frames:
    """Numbers the events of one stream, for their padding."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, event_type: str, event: msgspec.Struct, kind: EventKind) -> StreamEvent:
        self.count += 1
        return event_frame(event_type, _ENCODER.encode(event), kind)

    def pad(self) -> str:
        return padding(self.count)


def converse_events(answer: BedrockAnswer) -> Iterator[StreamEvent]:
    frame = _Frames()
    yield frame(
        "messageStart", MessageStartEvent(role="assistant", p=frame.pad()), EventKind.PRELUDE
    )
    index = 0
    if answer.reasoning:
        yield from _reasoning_events(frame, index, answer)
        index += 1
    if answer.tool_use is not None:
        yield from _tool_events(frame, index, answer)
    elif answer.pieces:
        for piece in answer.pieces:
            yield _delta(frame, index, BlockDelta(text=piece), EventKind.CONTENT)
        yield _stop(frame, index)
    stop = MessageStopEvent(stop_reason=answer.stop.value, p=frame.pad())
    yield frame("messageStop", stop, EventKind.TAIL)
    metadata = MetadataEvent(usage=_usage(answer), metrics=_metrics(answer), p=frame.pad())
    yield frame("metadata", metadata, EventKind.DONE)


def _reasoning_events(frame: _Frames, index: int, answer: BedrockAnswer) -> Iterator[StreamEvent]:
    for word in answer.reasoning:
        delta = BlockDelta(reasoning_content=ReasoningDelta(text=word))
        yield _delta(frame, index, delta, EventKind.CONTENT)
    signed = BlockDelta(reasoning_content=ReasoningDelta(signature=answer.signature))
    yield _delta(frame, index, signed, EventKind.TAIL)
    yield _stop(frame, index)


def _tool_events(frame: _Frames, index: int, answer: BedrockAnswer) -> Iterator[StreamEvent]:
    tool = answer.tool_use
    assert tool is not None
    start = BlockStart(tool_use=ToolUseStart(tool_use_id=tool_use_id(tool.id), name=tool.name))
    event = ContentBlockStartEvent(content_block_index=index, start=start, p=frame.pad())
    yield frame("contentBlockStart", event, EventKind.PRELUDE)
    for fragment in tool.fragments:
        delta = BlockDelta(tool_use=ToolUseDelta(input=fragment))
        yield _delta(frame, index, delta, EventKind.CONTENT)
    yield _stop(frame, index)


def _delta(frame: _Frames, index: int, delta: BlockDelta, kind: EventKind) -> StreamEvent:
    event = ContentBlockDeltaEvent(content_block_index=index, delta=delta, p=frame.pad())
    return frame("contentBlockDelta", event, kind)


def _stop(frame: _Frames, index: int) -> StreamEvent:
    event = ContentBlockStopEvent(content_block_index=index, p=frame.pad())
    return frame("contentBlockStop", event, EventKind.TAIL)
