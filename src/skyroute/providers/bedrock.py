"""AWS Bedrock Runtime, through the Converse and ConverseStream APIs.

The client's OpenAI request is translated to Converse (``wire.bedrock``), signed with
SigV4 (``providers.sigv4``) or sent with a Bedrock API key as a bearer token, and the
answer is translated back: a JSON body for plain requests, an AWS event stream of
Converse events for streams, turned into OpenAI chunks one frame at a time.
"""

from __future__ import annotations

import base64
import datetime
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import ClassVar
from urllib.parse import quote

import msgspec

from skyroute.core.chat import StreamEvent
from skyroute.core.config import BedrockProviderConfig
from skyroute.core.errors import GatewayError, UpstreamProtocolError
from skyroute.core.secret import Secret
from skyroute.providers.anthropic import read_anthropic_answer
from skyroute.providers.aws_credentials import CredentialSource, credential_source
from skyroute.providers.base import (
    Answer,
    ChatCall,
    Headers,
    Provider,
    UpstreamEvents,
    UpstreamRequest,
    common_headers,
)
from skyroute.providers.sigv4 import sign_request
from skyroute.providers.translated import canonical_of
from skyroute.transport.client import Response
from skyroute.transport.eventstream import EventStreamDecoder, EventStreamError
from skyroute.wire.anthropic import AnthropicStreamTranslator, to_anthropic
from skyroute.wire.bedrock import (
    ConverseStreamTranslator,
    from_converse,
    map_bedrock_error,
    map_stream_exception,
    model_family,
    to_converse,
)
from skyroute.wire.openai_response import OpenAIChunkWriter, response_to_openai

_EVENT_STREAM = "application/vnd.amazon.eventstream"


class BedrockProvider(Provider):
    type_name: ClassVar[str] = "bedrock"

    def __init__(
        self,
        name: str,
        config: BedrockProviderConfig,
        env: Mapping[str, str],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name)
        self._region = config.region
        endpoint = config.endpoint_url or f"https://bedrock-runtime.{config.region}.amazonaws.com"
        self._endpoint = endpoint.rstrip("/")
        self._drop_unsupported = config.drop_unsupported_params
        self._api = config.api
        self._credentials: CredentialSource | None = None
        self._bearer: Secret | None = config.api_key
        if (
            self._bearer is None
            and config.access_key_id is None
            and env.get("AWS_BEARER_TOKEN_BEDROCK")
        ):
            self._bearer = Secret(env["AWS_BEARER_TOKEN_BEDROCK"])
        if self._bearer is None:
            self._credentials = credential_source(config, env)
        self._wall_clock = wall_clock

    def _invokes(self, model: str) -> bool:
        """InvokeModel with Anthropic's own body, for Claude when the operator asks."""
        return self._api == "invoke" and model_family(model) == "anthropic"

    async def chat_request(self, call: ChatCall) -> UpstreamRequest:
        canonical = canonical_of(call, drop_unsupported=self._drop_unsupported)
        stream = call.inbound.stream
        if self._invokes(call.model):
            body = to_anthropic(canonical, model=None, dialect="bedrock")
            action = "invoke-with-response-stream" if stream else "invoke"
        else:
            body = to_converse(canonical, model_id=call.model)
            action = "converse-stream" if stream else "converse"
        # Model ids hold ':' and, as ARNs, '/': both are percent-encoded in the path, and
        # SigV4 signs that encoded path encoded once more (protocols.md §0.5).
        url = f"{self._endpoint}/model/{quote(call.model, safe='')}/{action}"
        headers = common_headers(call.request_id, call.attempt)
        if call.inbound.stream:
            headers[1] = ("accept", _EVENT_STREAM)
        if self._bearer is not None:
            headers.append(("authorization", f"Bearer {self._bearer.reveal()}"))
        else:
            assert self._credentials is not None
            now = datetime.datetime.fromtimestamp(self._wall_clock(), datetime.UTC)
            headers.extend(
                sign_request(
                    method="POST",
                    url=url,
                    headers=headers,
                    body=body,
                    credentials=await self._credentials.get(),
                    region=self._region,
                    service="bedrock",
                    now=now,
                )
            )
        return UpstreamRequest("POST", url, headers, body)

    def read_answer(self, call: ChatCall, body: bytes) -> Answer:
        if self._invokes(call.model):
            return read_anthropic_answer(call, body)
        response = from_converse(
            body, model=call.model, response_id=call.response_id, created=call.created
        )
        return Answer(response_to_openai(response), response.usage)

    def open_events(self, call: ChatCall, response: Response) -> UpstreamEvents:
        writer = OpenAIChunkWriter(call.response_id, call.model, call.created, True)
        if self._invokes(call.model):
            return ConverseChunks(response, InvokeStreamTranslator(), writer)
        return ConverseChunks(response, ConverseStreamTranslator(), writer)

    def map_error(self, status: int, headers: Headers, body: bytes, now: float) -> GatewayError:
        return map_bedrock_error(status, headers.header("x-amzn-errortype"), body)


class InvokeStreamTranslator:
    """InvokeModelWithResponseStream for Claude: each ``chunk`` event carries one Anthropic
    SSE event's JSON, base64-encoded, in ``{"bytes": ...}``."""

    __slots__ = ("_anthropic",)

    def __init__(self) -> None:
        self._anthropic = AnthropicStreamTranslator()

    def feed(self, event_type: str, payload: bytes) -> list[StreamEvent]:
        if event_type != "chunk":
            return []
        try:
            inner = base64.b64decode(_decode_chunk.decode(payload).bytes, validate=True)
            kind = _decode_kind.decode(inner).type
        except (msgspec.DecodeError, ValueError):
            raise UpstreamProtocolError("The upstream sent a malformed stream chunk.") from None
        return self._anthropic.feed(kind, inner)

    def exception(self, exception_type: str, payload: bytes) -> GatewayError:
        return map_stream_exception(exception_type, payload)


class _Chunk(msgspec.Struct):
    bytes: str


class _Kind(msgspec.Struct):
    type: str


_decode_chunk = msgspec.json.Decoder(_Chunk)
_decode_kind = msgspec.json.Decoder(_Kind)


class ConverseChunks:
    """An AWS event-stream response as OpenAI chunk payloads, translated frame by frame."""

    __slots__ = ("_decoder", "_failure", "_pending", "_response", "_translator", "_writer", "ended")

    def __init__(
        self,
        response: Response,
        translator: ConverseStreamTranslator | InvokeStreamTranslator,
        writer: OpenAIChunkWriter,
    ) -> None:
        self._response = response
        self._translator = translator
        self._writer = writer
        self._decoder = EventStreamDecoder()
        self._pending: deque[bytes] = deque()
        self._failure: GatewayError | None = None
        self.ended = False

    async def next_event(self, timeout: float) -> bytes | None:
        while not self._pending:
            if self._failure is not None:
                raise self._failure
            if self.ended:
                return None
            chunk = await self._response.next_chunk(timeout)
            if chunk is None:
                self.ended = True
                return None
            self._translate(chunk)
        return self._pending.popleft()

    def ready(self) -> bytes | None:
        return self._pending.popleft() if self._pending else None

    def _translate(self, chunk: bytes) -> None:
        try:
            messages = self._decoder.feed(chunk)
        except EventStreamError:
            self._failure = UpstreamProtocolError("The upstream sent a malformed event stream.")
            return
        for message in messages:
            if message.message_type == "event":
                for event in self._translator.feed(message.event_type or "", message.payload):
                    self._pending.extend(self._writer.write(event))
            else:
                # "exception" (a modelled error such as throttlingException) or "error"
                kind = message.exception_type or str(message.headers.get(":error-code", ""))
                self._failure = self._translator.exception(kind, message.payload)
                return
