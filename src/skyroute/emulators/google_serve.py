"""Answering one admitted request to a Google emulator, with its fault (if any) played.

Each `serve_*` takes the `Exchange` the emulator admitted and writes the whole response.
Fault kinds map to the three protocols as follows (faults that strike before the answer,
reset, hang and delay, were already played by `delivery.play_preface`):

    status          Google's error shape (`google_errors.status_fault_reply`); on Claude a 529
                    is Anthropic's `overloaded_error`
    context_length  Gemini and OpenAI-compatible: 400 INVALID_ARGUMENT "The input token count
                    (N) exceeds the maximum number of tokens allowed (M)."; Claude: 400
                    `invalid_request_error` "prompt is too long: N tokens > M maximum"
    content_filter  Gemini: the candidate ends with finishReason SAFETY, no content and a
                    blocked safety rating (never promptFeedback); OpenAI-compatible:
                    finish_reason content_filter; Claude: stop_reason refusal, no content
    stream_error    Gemini: `data: {"error": {"code": 500, "status": "INTERNAL", ...}}`;
                    OpenAI-compatible: the same object; Claude: `event: error` with
                    `overloaded_error`. Not streaming: the same error as the HTTP answer
    malformed, cut, stall, slow_first_token, no_done: see `google_delivery.py`
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Final

import msgspec

from skyroute.emulators.answers import answer_chat, filtered, prompt_tokens
from skyroute.emulators.anthropic_messages import (
    MALFORMED_EVENT,
    anthropic_error_body,
    count_tokens_body,
    error_event,
    message_body,
    message_events,
    refused,
)
from skyroute.emulators.base import send_reply
from skyroute.emulators.bedrock_answer import answer_bedrock, wants_thinking
from skyroute.emulators.chat import ResponseMeta as ChatMeta
from skyroute.emulators.chat import completion_body, stream_events
from skyroute.emulators.dialect import Reply
from skyroute.emulators.faults import (
    ContentFilterFault,
    ContextLengthFault,
    Fault,
    StatusFault,
    StreamErrorFault,
)
from skyroute.emulators.google_answer import answer_gemini, blocked
from skyroute.emulators.google_delivery import StreamDialect, send_answer, send_events
from skyroute.emulators.google_errors import (
    GoogleSurface,
    context_length_reply,
    status_fault_reply,
    stream_error_reply,
)
from skyroute.emulators.google_gemini import (
    ResponseMeta,
    generate_array,
    generate_body,
    generate_chunks,
)
from skyroute.emulators.google_requests import ClaudeBody
from skyroute.emulators.google_routes import Endpoint, Route
from skyroute.emulators.google_wire import GenerateContentRequest
from skyroute.emulators.http import Responder
from skyroute.emulators.openai_wire import ChatRequest

__all__ = [
    "GEMINI_STREAM",
    "Exchange",
    "serve_chat_completion",
    "serve_claude",
    "serve_generate",
]


class Exchange(msgspec.Struct, frozen=True, kw_only=True):
    """One admitted request, on its way to an answer."""

    surface: GoogleSurface
    route: Route
    model: str
    request_id: str
    headers: list[tuple[str, str]]
    fault: Fault | None
    created: float
    """Wall-clock seconds when the request arrived (Vertex's `createTime`, OpenAI's `created`)."""
    alt_sse: bool = True


def _sse_error(fault: StreamErrorFault) -> bytes:
    return b"data: " + stream_error_reply(fault).body + b"\r\n\r\n"


GEMINI_STREAM: Final = StreamDialect(
    malformed=b'data: {"candidates": [\r\n\r\n',
    error_event=_sse_error,
    error_reply=stream_error_reply,
)
OPENAI_STREAM: Final = StreamDialect(
    malformed=b'data: {"choices": [\n\n',
    error_event=lambda fault: b"data: " + stream_error_reply(fault).body + b"\n\n",
    error_reply=stream_error_reply,
)


def _claude_error(fault: StreamErrorFault) -> tuple[str, str]:
    """Anthropic's words for a stream_error fault: overloaded unless told otherwise."""
    default = StreamErrorFault()
    kind = "overloaded_error" if fault.type == default.type else fault.type
    text = "Overloaded" if fault.message == default.message else fault.message
    return kind, text


def _claude_reply(fault: StreamErrorFault) -> Reply:
    kind, text = _claude_error(fault)
    return Reply(529 if kind == "overloaded_error" else 500, anthropic_error_body(kind, text))


CLAUDE_STREAM: Final = StreamDialect(
    malformed=MALFORMED_EVENT,
    error_event=lambda fault: error_event(*_claude_error(fault)),
    error_reply=_claude_reply,
)


def _create_time(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat().replace("+00:00", "Z")


async def serve_generate(
    exchange: Exchange, body: GenerateContentRequest, responder: Responder
) -> None:
    """generateContent and streamGenerateContent."""
    fault, headers = exchange.fault, exchange.headers
    if isinstance(fault, StatusFault):
        send_reply(responder, status_fault_reply(fault, exchange.surface), headers)
        return
    answer = answer_gemini(body, exchange.model)
    if isinstance(fault, ContextLengthFault):
        send_reply(responder, context_length_reply(fault, answer.prompt_tokens), headers)
        return
    if isinstance(fault, ContentFilterFault):
        answer = blocked(answer)
    vertex = exchange.surface == "vertex"
    meta = ResponseMeta(
        model_version=exchange.model,
        response_id=_response_id(exchange.request_id),
        create_time=_create_time(exchange.created) if vertex else msgspec.UNSET,
        traffic_type="ON_DEMAND" if vertex else msgspec.UNSET,
    )
    if not exchange.route.endpoint.streams:
        await send_answer(responder, generate_body(meta, answer), headers, fault, GEMINI_STREAM)
    elif exchange.alt_sse:
        await send_events(responder, headers, generate_chunks(meta, answer), fault, GEMINI_STREAM)
    else:
        await send_answer(responder, generate_array(meta, answer), headers, fault, GEMINI_STREAM)


def _response_id(request_id: str) -> str:
    """22 URL-safe characters, as Google's response ids look, derived from the request id."""
    digest = hashlib.blake2b(request_id.encode(), digest_size=16).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


async def serve_chat_completion(
    exchange: Exchange, chat: ChatRequest, responder: Responder
) -> None:
    """Vertex's OpenAI-compatible `chat/completions`."""
    fault, headers = exchange.fault, exchange.headers
    if isinstance(fault, StatusFault):
        send_reply(responder, status_fault_reply(fault, "vertex"), headers)
        return
    answer = answer_chat(chat)
    if isinstance(fault, ContextLengthFault):
        send_reply(responder, context_length_reply(fault, answer.prompt_tokens), headers)
        return
    if isinstance(fault, ContentFilterFault):
        answer = filtered(answer)
    meta = ChatMeta(
        id=f"chatcmpl-{exchange.request_id.removeprefix('req_')}",
        created=int(exchange.created),
        model=exchange.model,
    )
    if chat.stream:
        include_usage = chat.stream_options is not None and chat.stream_options.include_usage
        events = stream_events(meta, answer, include_usage)
        await send_events(responder, headers, events, fault, OPENAI_STREAM)
    else:
        await send_answer(responder, completion_body(meta, answer), headers, fault, OPENAI_STREAM)


async def serve_claude(exchange: Exchange, body: ClaudeBody, responder: Responder) -> None:
    """Claude's `:rawPredict`, `:streamRawPredict` and `count-tokens:rawPredict`."""
    fault, headers = exchange.fault, exchange.headers
    if isinstance(fault, StatusFault):
        send_reply(responder, _claude_status(fault), headers)
        return
    if exchange.route.endpoint is Endpoint.CLAUDE_COUNT:
        count = count_tokens_body(prompt_tokens(body.chat.messages))
        await send_answer(responder, count, headers, fault, CLAUDE_STREAM)
        return
    thinking = wants_thinking({"thinking": body.invoke.thinking})
    answer = answer_bedrock(body.chat, thinking=thinking)
    if isinstance(fault, ContextLengthFault):
        given = fault.max_context + answer.input_tokens
        text = f"prompt is too long: {given} tokens > {fault.max_context} maximum"
        error = anthropic_error_body("invalid_request_error", text)
        send_reply(responder, Reply(400, error), headers)
        return
    if isinstance(fault, ContentFilterFault):
        answer = refused(answer)
    message_id = "msg_vrtx_01" + _response_id(exchange.request_id)
    if exchange.route.endpoint.streams:
        events = message_events(answer, message_id, exchange.model)
        await send_events(responder, headers, events, fault, CLAUDE_STREAM)
    else:
        body_out = message_body(answer, message_id, exchange.model)
        await send_answer(responder, body_out, headers, fault, CLAUDE_STREAM)


def _claude_status(fault: StatusFault) -> Reply:
    """Platform errors (quota, auth) are Google's; an overloaded model speaks Anthropic."""
    if fault.status == 529:
        text = fault.message or "Overloaded"
        return Reply(529, anthropic_error_body("overloaded_error", text))
    return status_fault_reply(fault, "vertex")
