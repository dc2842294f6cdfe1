"""What every OpenAI-family upstream shares: the body is the client's (with the
deployment's model), answers and stream chunks are relayed as they arrive."""

from __future__ import annotations

from skyroute.core.errors import GatewayError, UpstreamProtocolError
from skyroute.providers.base import Answer, ChatCall, Headers, Provider, UpstreamEvents
from skyroute.providers.openai_errors import map_openai_error
from skyroute.transport.client import Response
from skyroute.transport.events import EventReader
from skyroute.transport.sse import SSEError
from skyroute.wire.openai import probe_response, upstream_chat_body


class SSEChunks:
    """An OpenAI-family stream: the SSE ``data`` payloads, unchanged."""

    __slots__ = ("_reader",)

    def __init__(self, response: Response) -> None:
        self._reader = EventReader(response)

    @property
    def ended(self) -> bool:
        return self._reader.ended

    async def next_event(self, timeout: float) -> bytes | None:
        try:
            event = await self._reader.next_event(timeout)
        except SSEError:
            raise UpstreamProtocolError("The upstream sent a malformed stream.") from None
        return None if event is None else event.data

    def ready(self) -> bytes | None:
        event = self._reader.ready()
        return None if event is None else event.data


class OpenAIFamily(Provider):
    """Base for providers that speak OpenAI's chat completions on the wire."""

    def chat_body(self, call: ChatCall) -> bytes:
        return upstream_chat_body(call.inbound, call.model)

    def read_answer(self, call: ChatCall, body: bytes) -> Answer:
        return Answer(body, probe_response(body))

    def open_events(self, call: ChatCall, response: Response) -> UpstreamEvents:
        return SSEChunks(response)

    def map_error(self, status: int, headers: Headers, body: bytes, now: float) -> GatewayError:
        return map_openai_error(status, headers, body, now)
