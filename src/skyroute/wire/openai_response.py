"""Canonical chat → OpenAI's wire format: ``chat.completion`` bodies and stream chunks.

What every translating provider hands back to the engine, and so to OpenAI clients (and,
read back by ``openai_upstream.OpenAIChunkReader``, to Anthropic clients). Pure.
"""

from __future__ import annotations

from typing import assert_never

import msgspec

from skyroute.core.chat import (
    ChatResponse,
    Finish,
    Message,
    Reasoning,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallStart,
    UsageReport,
)
from skyroute.core.usage import Usage

_encode = msgspec.json.Encoder()


class _Function(msgspec.Struct):
    name: str
    arguments: str


class _ToolCallOut(msgspec.Struct, kw_only=True):
    id: str
    type: str = "function"
    function: _Function


class _ThinkingBlock(msgspec.Struct, omit_defaults=True):
    type: str
    index: int | None = None
    thinking: str | None = None
    signature: str | None = None
    data: bytes | None = None


class _MessageOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    role: str
    content: str | None
    tool_calls: list[_ToolCallOut] = []
    reasoning_content: str | None = None
    thinking_blocks: list[_ThinkingBlock] = []


class _ChoiceOut(msgspec.Struct):
    index: int
    message: _MessageOut
    finish_reason: str | None
    logprobs: None = None


class _PromptDetailsOut(msgspec.Struct, omit_defaults=True):
    cached_tokens: int
    cache_write_tokens: int = 0


class _CompletionDetailsOut(msgspec.Struct):
    reasoning_tokens: int


class _UsageOut(msgspec.Struct, omit_defaults=True):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: _PromptDetailsOut | None = None
    completion_tokens_details: _CompletionDetailsOut | None = None


class _CompletionOut(msgspec.Struct, kw_only=True):
    id: str
    object: str = "chat.completion"
    created: int
    model: str
    choices: list[_ChoiceOut]
    usage: _UsageOut | None


def response_to_openai(response: ChatResponse) -> bytes:
    """A ``chat.completion`` body, as OpenAI writes it."""
    choices = [
        _ChoiceOut(index=c.index, message=_message_out(c.message), finish_reason=c.finish_reason)
        for c in response.choices
    ]
    usage = _usage_out(response.usage) if response.usage is not None else None
    return _encode.encode(
        _CompletionOut(
            id=response.id,
            created=response.created,
            model=response.model,
            choices=choices,
            usage=usage,
        )
    )


def _message_out(message: Message) -> _MessageOut:
    texts = [part.text for part in message.content if isinstance(part, TextPart)]
    reasoning = "".join(r.text for r in message.reasoning)
    signed = any(r.signature or r.redacted for r in message.reasoning)
    return _MessageOut(
        role="assistant",
        content="".join(texts) if texts else None,
        tool_calls=[
            _ToolCallOut(id=c.id, function=_Function(name=c.name, arguments=c.arguments))
            for c in message.tool_calls
        ],
        reasoning_content=reasoning or None,
        thinking_blocks=[_thinking_out(r) for r in message.reasoning] if signed else [],
    )


def _thinking_out(reasoning: Reasoning) -> _ThinkingBlock:
    if reasoning.redacted is not None:
        return _ThinkingBlock(type="redacted_thinking", data=reasoning.redacted)
    return _ThinkingBlock(type="thinking", thinking=reasoning.text, signature=reasoning.signature)


def _usage_out(usage: Usage) -> _UsageOut:
    prompt = usage.prompt_tokens_details
    completion = usage.completion_tokens_details
    return _UsageOut(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.tokens,
        prompt_tokens_details=(
            _PromptDetailsOut(prompt.cached_tokens, prompt.cache_write_tokens) if prompt else None
        ),
        completion_tokens_details=(
            _CompletionDetailsOut(completion.reasoning_tokens) if completion else None
        ),
    )


# --- stream ---------------------------------------------------------------------------

_ROLE = b'"role":"assistant"'
_FINISH_NULL = b"null"


class OpenAIChunkWriter:
    """Canonical stream events → ``chat.completion.chunk`` JSON payloads (no SSE framing).

    The envelope around each choice is encoded once; a chunk is then a few concatenations.
    With ``include_usage`` every chunk carries ``"usage": null`` and the usage arrives in a
    chunk of its own with ``"choices": []`` (protocols.md §1).
    """

    __slots__ = ("_blocks", "_head", "_include_usage", "_started", "_tail")

    def __init__(self, id: str, model: str, created: int, include_usage: bool) -> None:
        self._head = (
            b'{"id":' + _encode.encode(id) + b',"object":"chat.completion.chunk","created":'
            + b"%d" % created + b',"model":' + _encode.encode(model) + b',"choices":['
        )  # fmt: skip
        self._tail = b'],"usage":null}' if include_usage else b"]}"
        self._include_usage = include_usage
        self._started: set[int] = set()
        self._blocks: dict[int, int] = {}  # thinking blocks written so far, per choice

    def write(self, event: StreamEvent) -> list[bytes]:
        match event:
            case TextDelta(choice=choice, text=text):
                return [self._chunk(choice, b'"content":' + _encode.encode(text))]
            case ReasoningDelta():
                return self._reasoning(event)
            case ToolCallStart(choice=choice, slot=slot, id=call_id, name=name):
                call = (
                    b'{"index":%d,"id":' % slot + _encode.encode(call_id)
                    + b',"type":"function","function":{"name":' + _encode.encode(name)
                    + b',"arguments":""}}'
                )  # fmt: skip
                return [self._chunk(choice, b'"tool_calls":[' + call + b"]")]
            case ToolCallDelta(choice=choice, slot=slot, arguments=arguments):
                call = b'{"index":%d,"function":{"arguments":' % slot + _encode.encode(arguments)
                return [self._chunk(choice, b'"tool_calls":[' + call + b"}}]")]
            case Finish(choice=choice, reason=reason):
                return [self._chunk(choice, b"", b'"' + reason.encode() + b'"')]
            case UsageReport(usage=usage):
                if not self._include_usage:
                    return []
                return [self._head + b'],"usage":' + _encode.encode(_usage_out(usage)) + b"}"]
            case _:
                assert_never(event)

    def _reasoning(self, event: ReasoningDelta) -> list[bytes]:
        fields = []
        if event.text:
            fields.append(b'"reasoning_content":' + _encode.encode(event.text))
        block = None
        if event.signature:
            block = _ThinkingBlock(type="thinking", thinking="", signature=event.signature)
        elif event.redacted:
            # Claude's redacted thinking must go back unchanged in a tool loop; it travels
            # as an opaque block, as in non-stream answers.
            block = _ThinkingBlock(type="redacted_thinking", data=event.redacted)
        if block is not None:
            # Stream accumulators (the OpenAI SDK's among them) merge list deltas by
            # ``index``, like tool calls: each block gets its own.
            index = self._blocks.get(event.choice, 0)
            self._blocks[event.choice] = index + 1
            block = msgspec.structs.replace(block, index=index)
            fields.append(b'"thinking_blocks":[' + _encode.encode(block) + b"]")
        return [self._chunk(event.choice, b",".join(fields))] if fields else []

    def _chunk(self, choice: int, delta: bytes, finish: bytes = _FINISH_NULL) -> bytes:
        if choice not in self._started:
            # The first chunk of each choice names the role (protocols.md §1).
            self._started.add(choice)
            delta = _ROLE + b"," + delta if delta else _ROLE
        return (
            self._head + b'{"index":%d,"delta":{' % choice + delta
            + b'},"logprobs":null,"finish_reason":' + finish + b"}" + self._tail
        )  # fmt: skip
