"""Google: Vertex AI (Gemini, Claude, the OpenAI-compatible endpoint) and the Gemini API.

Both speak generateContent for Gemini models: the client's OpenAI request is translated
(``wire.gemini``), streamed as ``streamGenerateContent?alt=sse``, and translated back one
SSE event at a time. On Vertex, a ``claude-…`` model goes to Anthropic's rawPredict /
streamRawPredict in Anthropic's body format, and a model written ``publisher/model`` goes
to the OpenAI-compatible endpoint and is relayed without translation.
"""

from __future__ import annotations

import re
from collections import deque
from typing import ClassVar
from urllib.parse import quote

from skyroute.core.chat import StreamEvent
from skyroute.core.config import GeminiProviderConfig, VertexProviderConfig
from skyroute.core.errors import GatewayError, UpstreamProtocolError
from skyroute.providers.anthropic import (
    AnthropicSSEChunks,
    anthropic_body,
    chunk_writer,
    read_anthropic_answer,
)
from skyroute.providers.base import (
    Answer,
    ChatCall,
    Headers,
    Provider,
    UpstreamEvents,
    UpstreamRequest,
    common_headers,
)
from skyroute.providers.google_auth import AccessTokens, access_tokens
from skyroute.providers.openai_family import SSEChunks
from skyroute.providers.translated import canonical_of
from skyroute.transport.client import Response
from skyroute.transport.events import EventReader
from skyroute.transport.sse import SSEError
from skyroute.wire.anthropic import map_anthropic_error
from skyroute.wire.gemini import GeminiStreamTranslator, from_gemini, map_google_error, to_gemini
from skyroute.wire.openai import probe_response, upstream_chat_body
from skyroute.wire.openai_response import OpenAIChunkWriter, response_to_openai

_ANTHROPIC_ERROR = re.compile(rb'"type"\s*:\s*"error"')


class _GenerateContent(Provider):
    """What Vertex (for Gemini models) and the Gemini API share."""

    def gemini_body(self, call: ChatCall) -> bytes:
        return to_gemini(canonical_of(call))

    def read_answer(self, call: ChatCall, body: bytes) -> Answer:
        response = from_gemini(
            body, model=call.model, response_id=call.response_id, created=call.created
        )
        return Answer(response_to_openai(response), response.usage)

    def open_events(self, call: ChatCall, response: Response) -> UpstreamEvents:
        writer = OpenAIChunkWriter(call.response_id, call.model, call.created, True)
        return GeminiChunks(response, GeminiStreamTranslator(call.response_id), writer)

    def map_error(self, status: int, headers: Headers, body: bytes, now: float) -> GatewayError:
        return map_google_error(status, body)


class GeminiProvider(_GenerateContent):
    type_name: ClassVar[str] = "gemini"

    def __init__(self, name: str, config: GeminiProviderConfig) -> None:
        super().__init__(name)
        self._base = f"{config.base_url.rstrip('/')}/{config.api_version}/models/"
        self._key = config.api_key

    async def chat_request(self, call: ChatCall) -> UpstreamRequest:
        action = ":streamGenerateContent?alt=sse" if call.inbound.stream else ":generateContent"
        url = self._base + quote(call.model, safe="") + action
        headers = common_headers(call.request_id, call.attempt)
        # Always the header, never ?key=: a key in a URL ends up in someone's log.
        headers.append(("x-goog-api-key", self._key.reveal()))
        return UpstreamRequest("POST", url, headers, self.gemini_body(call))


class VertexProvider(_GenerateContent):
    type_name: ClassVar[str] = "vertex"

    def __init__(
        self, name: str, config: VertexProviderConfig, tokens: AccessTokens | None = None
    ) -> None:
        super().__init__(name)
        host = (
            "https://aiplatform.googleapis.com"
            if config.location == "global"
            else f"https://{config.location}-aiplatform.googleapis.com"
        )
        base = (config.endpoint or host).rstrip("/")
        where = f"projects/{config.project}/locations/{config.location}"
        self._models = f"{base}/{config.api_version}/{where}/publishers/google/models/"
        self._openai_url = f"{base}/v1/{where}/endpoints/openapi/chat/completions"
        self._claude = f"{base}/v1/{where}/publishers/anthropic/models/"
        self._tokens = tokens or access_tokens(config)

    @staticmethod
    def _api(model: str) -> str:
        if "/" in model:
            return "openai"
        return "anthropic" if model.startswith("claude") else "gemini"

    async def chat_request(self, call: ChatCall) -> UpstreamRequest:
        headers = common_headers(call.request_id, call.attempt)
        headers.append(("authorization", f"Bearer {await self._tokens.token()}"))
        stream = call.inbound.stream
        match self._api(call.model):
            case "openai":
                body = upstream_chat_body(call.inbound, call.model)
                return UpstreamRequest("POST", self._openai_url, headers, body)
            case "anthropic":
                action = ":streamRawPredict" if stream else ":rawPredict"
                url = self._claude + quote(call.model, safe="") + action
                return UpstreamRequest("POST", url, headers, anthropic_body(call, "vertex"))
            case _:
                action = ":streamGenerateContent?alt=sse" if stream else ":generateContent"
                url = self._models + quote(call.model, safe="") + action
                return UpstreamRequest("POST", url, headers, self.gemini_body(call))

    def read_answer(self, call: ChatCall, body: bytes) -> Answer:
        match self._api(call.model):
            case "openai":
                return Answer(body, probe_response(body))
            case "anthropic":
                return read_anthropic_answer(call, body)
            case _:
                return super().read_answer(call, body)

    def open_events(self, call: ChatCall, response: Response) -> UpstreamEvents:
        match self._api(call.model):
            case "openai":
                return SSEChunks(response)
            case "anthropic":
                return AnthropicSSEChunks(response, chunk_writer(call))
            case _:
                return super().open_events(call, response)

    def map_error(self, status: int, headers: Headers, body: bytes, now: float) -> GatewayError:
        # Claude on Vertex answers errors in Anthropic's shape, the rest in Google's.
        if _ANTHROPIC_ERROR.search(body[:200]):
            return map_anthropic_error(status, headers.header, body, now)
        return map_google_error(status, body)


class GeminiChunks:
    """A ``streamGenerateContent?alt=sse`` response as OpenAI chunk payloads."""

    __slots__ = ("_closed", "_pending", "_reader", "_translator", "_writer")

    def __init__(
        self, response: Response, translator: GeminiStreamTranslator, writer: OpenAIChunkWriter
    ) -> None:
        self._reader = EventReader(response)
        self._translator = translator
        self._writer = writer
        self._pending: deque[bytes] = deque()
        self._closed = False

    @property
    def ended(self) -> bool:
        return self._closed and not self._pending

    async def next_event(self, timeout: float) -> bytes | None:
        while not self._pending:
            try:
                event = await self._reader.next_event(timeout)
            except SSEError:
                raise UpstreamProtocolError("The upstream sent a malformed stream.") from None
            if event is None:
                if self._closed:
                    return None
                # Usage (and a check that every candidate finished) comes at the end.
                self._closed = True
                self._write(self._translator.close())
                continue
            self._write(self._translator.feed(event.data))
        return self._pending.popleft()

    def ready(self) -> bytes | None:
        while not self._pending:
            event = self._reader.ready()
            if event is None:
                return None
            self._write(self._translator.feed(event.data))
        return self._pending.popleft()

    def _write(self, events: list[StreamEvent]) -> None:
        for canonical in events:
            self._pending.extend(self._writer.write(canonical))
