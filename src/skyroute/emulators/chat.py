"""Chat completion bodies and SSE streams, built from an `Answer`. Pure: bytes out.

The stream follows OpenAI's order: for each choice a role chunk, one chunk per token (or per
tool-argument fragment; the first tool fragment carries the call's id, type and name), then a
chunk with `finish_reason`; with `include_usage` a last chunk with `choices: []` and the usage
(every other chunk then carries `"usage": null`); then `data: [DONE]`. Azure streams lead with
a chunk that has `choices: []` and `prompt_filter_results`, and annotate every choice.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import NamedTuple

import msgspec
from msgspec import UNSET, UnsetType

from skyroute.emulators.answers import Answer, ChoiceAnswer
from skyroute.emulators.openai_wire import (
    ChatChunk,
    ChatCompletion,
    ChoiceOut,
    ChunkChoice,
    ContentFilterResults,
    Delta,
    FunctionCallOut,
    FunctionDelta,
    MessageOut,
    PromptFilterResult,
    ToolCallDelta,
    ToolCallOut,
    Usage,
)

__all__ = ["DONE", "EventKind", "ResponseMeta", "StreamEvent", "completion_body", "stream_events"]

_ENCODER = msgspec.json.Encoder()
DONE = b"data: [DONE]\n\n"


class ResponseMeta(msgspec.Struct, frozen=True, kw_only=True):
    """What every chunk of one response repeats, and the flavor's annotations."""

    id: str
    created: int
    model: str
    system_fingerprint: str = "fp_emulator"
    choice_filters: ContentFilterResults | UnsetType = UNSET
    prompt_filters: list[PromptFilterResult] | UnsetType = UNSET


class EventKind(enum.Enum):
    PRELUDE = "prelude"  # prompt filter results, a choice's role chunk
    CONTENT = "content"  # a token or a tool-argument fragment
    TAIL = "tail"  # finish chunks, the usage chunk
    DONE = "done"  # data: [DONE]


class StreamEvent(NamedTuple):
    data: bytes
    kind: EventKind
    tokens: int = 0
    """Completion tokens the event carries (what a stream cut after it has billed)."""


def usage_of(answer: Answer) -> Usage:
    completion = answer.completion_tokens
    return Usage(
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=completion,
        total_tokens=answer.prompt_tokens + completion,
    )


def completion_body(meta: ResponseMeta, answer: Answer) -> bytes:
    choices = [
        ChoiceOut(
            index=index,
            message=_message(choice),
            finish_reason=choice.finish_reason,
            content_filter_results=meta.choice_filters,
        )
        for index, choice in enumerate(answer.choices)
    ]
    completion = ChatCompletion(
        id=meta.id,
        created=meta.created,
        model=meta.model,
        choices=choices,
        usage=usage_of(answer),
        system_fingerprint=meta.system_fingerprint,
        prompt_filter_results=meta.prompt_filters,
    )
    return _ENCODER.encode(completion)


def _message(choice: ChoiceAnswer) -> MessageOut:
    call = choice.tool_call
    if call is None:
        return MessageOut(content=choice.text)
    function = FunctionCallOut(name=call.name, arguments=call.arguments)
    return MessageOut(content=None, tool_calls=[ToolCallOut(id=call.id, function=function)])


def stream_events(meta: ResponseMeta, answer: Answer, include_usage: bool) -> Iterator[StreamEvent]:
    usage: UnsetType | None = None if include_usage else UNSET
    if meta.prompt_filters is not UNSET:
        # Azure's first chunk: empty id, model and object, no choices.
        lead = ChatChunk(
            id="",
            object="",
            created=0,
            model="",
            choices=[],
            service_tier=UNSET,
            system_fingerprint=UNSET,
            usage=usage,
            prompt_filter_results=meta.prompt_filters,
        )
        yield StreamEvent(_frame(lead), EventKind.PRELUDE)
    for index, choice in enumerate(answer.choices):
        yield from _choice_events(meta, index, choice, usage)
    if include_usage:
        yield StreamEvent(_frame(_chunk(meta, [], usage_of(answer))), EventKind.TAIL)
    yield StreamEvent(DONE, EventKind.DONE)


def _choice_events(
    meta: ResponseMeta, index: int, choice: ChoiceAnswer, usage: UnsetType | None
) -> Iterator[StreamEvent]:
    filters = meta.choice_filters
    call = choice.tool_call
    role = Delta(role="assistant", content=None if call else "", refusal=None)
    yield StreamEvent(_frame(_chunk(meta, [ChunkChoice(index, role)], usage)), EventKind.PRELUDE)
    for position, piece in enumerate(choice.pieces):
        if call is None:
            delta = Delta(content=piece)
        elif position == 0:
            head = FunctionDelta(arguments="", name=call.name)
            first = ToolCallDelta(0, head, id=call.id, type="function")
            yield _content(meta, index, Delta(tool_calls=[first]), filters, usage, tokens=0)
            delta = Delta(tool_calls=[ToolCallDelta(0, FunctionDelta(arguments=piece))])
        else:
            delta = Delta(tool_calls=[ToolCallDelta(0, FunctionDelta(arguments=piece))])
        yield _content(meta, index, delta, filters, usage)
    finish = ChunkChoice(
        index, Delta(), finish_reason=choice.finish_reason, content_filter_results=filters
    )
    yield StreamEvent(_frame(_chunk(meta, [finish], usage)), EventKind.TAIL)


def _content(
    meta: ResponseMeta,
    index: int,
    delta: Delta,
    filters: ContentFilterResults | UnsetType,
    usage: UnsetType | None,
    tokens: int = 1,
) -> StreamEvent:
    choice = ChunkChoice(index, delta, content_filter_results=filters)
    return StreamEvent(_frame(_chunk(meta, [choice], usage)), EventKind.CONTENT, tokens)


def _chunk(
    meta: ResponseMeta, choices: list[ChunkChoice], usage: Usage | UnsetType | None
) -> ChatChunk:
    return ChatChunk(
        id=meta.id,
        created=meta.created,
        model=meta.model,
        choices=choices,
        system_fingerprint=meta.system_fingerprint,
        usage=usage,
    )


def _frame(chunk: ChatChunk) -> bytes:
    return b"data: " + _ENCODER.encode(chunk) + b"\n\n"
