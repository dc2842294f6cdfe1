"""Anthropic's Messages API as an upstream: first party, and Claude on Vertex AI.

The client's request goes through the canonical form into a Messages body
(``wire.anthropic``); answers and SSE streams come back through it into OpenAI's shape.
Claude on Bedrock's InvokeModel uses the same body and answers, framed in AWS event
streams instead of SSE (``providers.bedrock``).
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

from skyroute.core.chat import StreamEvent
from skyroute.core.config import AnthropicProviderConfig
from skyroute.core.errors import GatewayError, UpstreamProtocolError
from skyroute.providers.base import (
    Answer,
    ChatCall,
    Headers,
    Provider,
    UpstreamEvents,
    UpstreamRequest,
    common_headers,
)
from skyroute.providers.translated import canonical_of
from skyroute.transport.client import Response
from skyroute.transport.events import EventReader
from skyroute.transport.sse import SSEError
from skyroute.wire.anthropic import (
    AnthropicStreamTranslator,
    Dialect,
    from_anthropic,
    map_anthropic_error,
    to_anthropic,
)
from skyroute.wire.openai_response import OpenAIChunkWriter, response_to_openai


def anthropic_body(call: ChatCall, dialect: Dialect) -> bytes:
    model = call.model if dialect == "anthropic" else None
    return to_anthropic(canonical_of(call), model=model, dialect=dialect)


def read_anthropic_answer(call: ChatCall, body: bytes) -> Answer:
    response = from_anthropic(
        body, model=call.model, response_id=call.response_id, created=call.created
    )
    return Answer(response_to_openai(response), response.usage)


def chunk_writer(call: ChatCall) -> OpenAIChunkWriter:
    return OpenAIChunkWriter(call.response_id, call.model, call.created, True)


class AnthropicProvider(Provider):
    type_name: ClassVar[str] = "anthropic"

    def __init__(self, name: str, config: AnthropicProviderConfig) -> None:
        super().__init__(name)
        self._url = config.base_url.rstrip("/") + "/v1/messages"
        self._version = config.version
        self._key = config.api_key

    async def chat_request(self, call: ChatCall) -> UpstreamRequest:
        headers = common_headers(call.request_id, call.attempt)
        headers.append(("anthropic-version", self._version))
        headers.append(("x-api-key", self._key.reveal()))
        return UpstreamRequest("POST", self._url, headers, anthropic_body(call, "anthropic"))

    def read_answer(self, call: ChatCall, body: bytes) -> Answer:
        return read_anthropic_answer(call, body)

    def open_events(self, call: ChatCall, response: Response) -> UpstreamEvents:
        return AnthropicSSEChunks(response, chunk_writer(call))

    def map_error(self, status: int, headers: Headers, body: bytes, now: float) -> GatewayError:
        return map_anthropic_error(status, headers.header, body, now)


class AnthropicSSEChunks:
    """An Anthropic SSE stream (``event:`` + ``data:``) as OpenAI chunk payloads."""

    __slots__ = ("_pending", "_reader", "_translator", "_writer")

    def __init__(self, response: Response, writer: OpenAIChunkWriter) -> None:
        self._reader = EventReader(response)
        self._translator = AnthropicStreamTranslator()
        self._writer = writer
        self._pending: deque[bytes] = deque()

    @property
    def ended(self) -> bool:
        return self._reader.ended and not self._pending

    async def next_event(self, timeout: float) -> bytes | None:
        while not self._pending:
            try:
                event = await self._reader.next_event(timeout)
            except SSEError:
                raise UpstreamProtocolError("The upstream sent a malformed stream.") from None
            if event is None:
                return None
            self._write(self._translator.feed(event.event or "", event.data))
        return self._pending.popleft()

    def ready(self) -> bytes | None:
        while not self._pending:
            event = self._reader.ready()
            if event is None:
                return None
            self._write(self._translator.feed(event.event or "", event.data))
        return self._pending.popleft()

    def _write(self, events: list[StreamEvent]) -> None:
        for canonical in events:
            self._pending.extend(self._writer.write(canonical))
