"""InvokeModel and InvokeModelWithResponseStream with Anthropic bodies. Pure: bytes in and out.

`read_invoke` checks the body as Bedrock and the model do (Bedrock's "Malformed input
request: #: ..." texts for the JSON schema, Anthropic's texts for the rest; raising
`InvokeRejected`) and reads it into the OpenAI emulator's `ChatRequest`. `invoke_body` writes
the answer as an Anthropic Message; `invoke_events` as the stream Bedrock sends: every
Anthropic streaming event (message_start, content_block_start/delta/stop, message_delta,
message_stop) JSON-encoded, base64-encoded into `{"bytes": ...}`, in an event-stream message
named `chunk`. The last event carries `amazon-bedrock-invocationMetrics`.

A guardrail that intervenes (the content_filter fault) ends the message with `stop_reason`
`refusal` and, on the whole body, `"amazon-bedrock-guardrailAction": "INTERVENED"`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import msgspec

from skyroute.emulators.anthropic_messages import STOP_REASONS, block_streams, content_blocks
from skyroute.emulators.bedrock_answer import BedrockAnswer, StopReason, thinking_problem
from skyroute.emulators.bedrock_invoke_wire import (
    ALLOWED_KEYS,
    AnthropicBlock,
    AnthropicMessage,
    BlockDelta,
    BlockStart,
    BlockStop,
    Chunk,
    InvocationMetrics,
    InvokeRequest,
    MessageDelta,
    MessageOut,
    MessageStart,
    MessageStop,
    OutputUsage,
    StopDelta,
    Usage,
)
from skyroute.emulators.bedrock_stream import event_frame, padding
from skyroute.emulators.chat import EventKind, StreamEvent
from skyroute.emulators.openai_wire import (
    ChatRequest,
    ContentPart,
    FunctionCallIn,
    FunctionDef,
    JsonSchemaFormat,
    Message,
    ResponseFormat,
    Tool,
    ToolCallIn,
    ToolChoice,
    ToolChoiceFunction,
)

__all__ = ["InvokeRejected", "invoke_body", "invoke_events", "read_invoke"]

_ENCODER: Final = msgspec.json.Encoder()
_REQUIRED: Final = ("anthropic_version", "max_tokens", "messages")
_TOOL_PREFIX: Final = "toolu_bdrk_01"


class InvokeRejected(ValueError):
    """The body is not one Bedrock (or the model) would accept; the text is the error's."""


def _malformed(detail: str) -> InvokeRejected:
    return InvokeRejected(
        f"Malformed input request: {detail}, please reformat your input and try again."
    )


def read_invoke(body: bytes) -> tuple[InvokeRequest, ChatRequest]:
    """Decode and validate an Anthropic body; raises InvokeRejected."""
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise _malformed("#: expected type: JSONObject, found: String") from None
    if not isinstance(raw, dict):
        raise _malformed(f"#: expected type: JSONObject, found: {type(raw).__name__}")
    extra = sorted(set(raw) - ALLOWED_KEYS)
    if extra:
        raise _malformed(f"#: extraneous key [{extra[0]}] is not permitted")
    missing = next((key for key in _REQUIRED if key not in raw), None)
    if missing is not None:
        raise _malformed(f"#: required key [{missing}] not found")
    try:
        request = msgspec.convert(raw, InvokeRequest)
    except msgspec.ValidationError as error:
        raise _malformed(str(error)) from None
    _check_messages(request.messages)
    chat = _to_chat(request)
    forced = isinstance(chat.tool_choice, ToolChoice) or chat.tool_choice == "required"
    problem = thinking_problem({"thinking": request.thinking}, request.max_tokens, forced)
    if problem is not None:
        raise InvokeRejected(problem)
    return request, chat


def _check_messages(messages: list[AnthropicMessage]) -> None:
    if not messages:
        raise InvokeRejected("messages: at least one message is required")
    if messages[0].role != "user":
        raise InvokeRejected('messages: first message must use the "user" role')
    for index, message in enumerate(messages):
        if not message.content:
            raise InvokeRejected(f"messages.{index}: all messages must have non-empty content")


# -- into the OpenAI emulator's request --------------------------------------------------------


def _to_chat(request: InvokeRequest) -> ChatRequest:
    system = request.system
    if isinstance(system, list):
        system = " ".join(block.text for block in system)
    head = [Message("system", system)] if system else []
    messages = [m for message in request.messages for m in _chat_messages(message)]
    return ChatRequest(
        messages=head + messages,
        max_tokens=request.max_tokens,
        stop=request.stop_sequences,
        tools=[
            Tool(FunctionDef(tool.name, tool.description, tool.input_schema))
            for tool in request.tools or ()
            if tool.input_schema is not None
        ]
        or None,
        tool_choice=_chat_tool_choice(request),
        response_format=_chat_format(request),
    )


def _chat_messages(message: AnthropicMessage) -> list[Message]:
    if isinstance(message.content, str):
        return [Message(message.role, message.content)]
    results = [
        Message("tool", _block_text(block.content), tool_call_id=block.tool_use_id)
        for block in message.content
        if block.type == "tool_result"
    ]
    parts = [_part(block) for block in message.content if block.type in ("text", "image")]
    calls = [
        ToolCallIn(block.id or "", FunctionCallIn(block.name or "", _json(block.input)))
        for block in message.content
        if block.type == "tool_use"
    ]
    if not parts and not calls:
        return results
    return [*results, Message(message.role, parts or None, tool_calls=calls or None)]


def _part(block: AnthropicBlock) -> ContentPart:
    if block.type == "image":
        return ContentPart("image_url")
    return ContentPart("text", text=block.text)


def _block_text(content: str | list[AnthropicBlock] | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    return " ".join(block.text for block in content if block.text)


def _json(value: Any) -> str:
    return _ENCODER.encode(value).decode()


def _chat_tool_choice(request: InvokeRequest) -> str | ToolChoice | None:
    choice = request.tool_choice
    if choice is None:
        return None
    if choice.type == "tool":
        return ToolChoice(ToolChoiceFunction(choice.name or ""))
    return {"any": "required"}.get(choice.type, choice.type)


def _chat_format(request: InvokeRequest) -> ResponseFormat | None:
    config = request.output_config
    if config is None or config.format is None or config.format.type != "json_schema":
        return None
    return ResponseFormat("json_schema", JsonSchemaFormat("output", config.format.schema))


# -- the answer, written back ------------------------------------------------------------------


def invoke_body(answer: BedrockAnswer, message_id: str, model: str) -> bytes:
    guarded = answer.stop is StopReason.GUARDRAIL
    message = MessageOut(
        id=message_id,
        model=model,
        content=content_blocks(answer, _TOOL_PREFIX),
        stop_reason=STOP_REASONS[answer.stop],
        stop_sequence=answer.stop_sequence,
        usage=Usage(input_tokens=answer.input_tokens, output_tokens=answer.output_tokens),
        guardrail_action="INTERVENED" if guarded else msgspec.UNSET,
    )
    return _ENCODER.encode(message)


class _Chunks:
    """Wraps Anthropic events into `chunk` frames, numbering them for their padding."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, event: msgspec.Struct, kind: EventKind) -> StreamEvent:
        chunk = Chunk(_ENCODER.encode(event), padding(self.count))
        self.count += 1
        return event_frame("chunk", _ENCODER.encode(chunk), kind)


def invoke_events(answer: BedrockAnswer, message_id: str, model: str) -> Iterator[StreamEvent]:
    chunk = _Chunks()
    start = MessageOut(
        id=message_id,
        model=model,
        content=[],
        stop_reason=None,
        stop_sequence=None,
        usage=Usage(input_tokens=answer.input_tokens, output_tokens=1),
    )
    yield chunk(MessageStart(message=start), EventKind.PRELUDE)
    for index, (opening, deltas) in enumerate(block_streams(answer, _TOOL_PREFIX)):
        yield chunk(BlockStart(index=index, content_block=opening), EventKind.PRELUDE)
        for delta, kind in deltas:
            yield chunk(BlockDelta(index=index, delta=delta), kind)
        yield chunk(BlockStop(index=index), EventKind.TAIL)
    stop = StopDelta(STOP_REASONS[answer.stop], answer.stop_sequence)
    yield chunk(MessageDelta(delta=stop, usage=OutputUsage(answer.output_tokens)), EventKind.TAIL)
    metrics = InvocationMetrics(
        input_token_count=answer.input_tokens,
        output_token_count=answer.output_tokens,
        invocation_latency=200 + 10 * answer.output_tokens,
        first_byte_latency=200,
    )
    yield chunk(MessageStop(metrics=metrics), EventKind.DONE)
