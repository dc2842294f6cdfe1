"""``POST /v1/messages``: the Anthropic Messages API, in front of every deployment.

An Anthropic request is decoded into the canonical form once. Deployments that speak
OpenAI get it re-encoded as an OpenAI body; translating providers (Bedrock, Gemini,
Anthropic) start from the canonical form directly. Answers come back from the engine in
OpenAI's shape, are read into canonical events, and leave as Anthropic's: a Message, or
an event stream with ``event:`` lines and index bookkeeping.
"""

from __future__ import annotations

import msgspec

from skyroute.api.accounting import Meter
from skyroute.api.chat import ChatEngine, served_headers
from skyroute.api.context import RequestContext
from skyroute.api.relay import relay_stream
from skyroute.api.responses import JSON, base_headers, send_json
from skyroute.core.chat import ChatRequest as CanonicalRequest
from skyroute.core.errors import GatewayError, UpstreamProtocolError
from skyroute.providers.base import Answer
from skyroute.wire import anthropic
from skyroute.wire.openai import ChatRequest, decode_json_object
from skyroute.wire.openai_chat import OpenAIChunkReader, from_openai_response, to_openai_body

_decode = msgspec.json.Decoder(dict)


class Messages:
    def __init__(self, engine: ChatEngine) -> None:
        self._engine = engine

    async def __call__(self, ctx: RequestContext) -> None:
        canonical = anthropic.parse_messages_request(ctx.body)
        request = _as_openai_request(canonical, len(ctx.body))
        meter = self._engine.admit(ctx, request)
        try:
            await self._serve(ctx, request, meter)
        finally:
            meter.close()

    async def _serve(self, ctx: RequestContext, request: ChatRequest, meter: Meter) -> None:
        served = await self._engine.serve(ctx, request, meter)
        result = served.result
        message_id = "msg_" + ctx.request_id
        headers = served_headers(ctx.request_id, served)
        if isinstance(result, Answer):
            self._engine.record_tokens(served.deployment, result.usage)
            response = from_openai_response(result.body)
            body = anthropic.response_to_anthropic(msgspec.structs.replace(response, id=message_id))
            await send_json(ctx.send, 200, body, headers)
        else:
            output = AnthropicOutput(message_id, served.deployment.config.model)
            state = self._engine.state
            usage = await relay_stream(
                state, ctx, output, result, headers, served, meter.stream_ended
            )
            self._engine.record_tokens(served.deployment, usage)


def _as_openai_request(canonical: CanonicalRequest, size: int) -> ChatRequest:
    """The engine's request type: an OpenAI body for pass-through deployments, with the
    canonical form attached so translating providers need not rebuild it."""
    body = _decode.decode(to_openai_body(canonical))
    return ChatRequest(
        body=body,
        model=canonical.model,
        stream=canonical.stream,
        include_usage=True,
        prompt_chars=size,
        canonical=canonical,
    )


class AnthropicOutput:
    """Anthropic's stream format, written from OpenAI chunk payloads."""

    __slots__ = ("_reader", "_writer")

    def __init__(self, message_id: str, model: str) -> None:
        self._reader = OpenAIChunkReader()
        self._writer = anthropic.AnthropicEventWriter(message_id, model)

    def chunk(self, data: bytes, *, usage_only: bool) -> bytes:
        """Raises ``GatewayError`` when the chunks cannot be read as a stream (the relay
        then ends the stream with that error)."""
        try:
            events = self._reader.feed(data)
        except ValueError:
            raise UpstreamProtocolError("The upstream sent a malformed stream chunk.") from None
        return b"".join(frame for event in events for frame in self._writer.write(event))

    def done(self) -> bytes:
        return b"".join(self._writer.finish())

    def error(self, error: GatewayError) -> bytes:
        return self._writer.error_frame(error)


async def count_tokens(ctx: RequestContext) -> None:
    """``POST /v1/messages/count_tokens``: an estimate (about four characters a token),
    since the deployment that would serve the request is not chosen yet."""
    body = decode_json_object(ctx.body)
    # count_tokens takes a Messages request without max_tokens; lend it one to parse.
    body.setdefault("max_tokens", 1)
    body.pop("stream", None)
    canonical = anthropic.parse_messages_request(msgspec.json.encode(body))
    chars = sum(
        len(part.text)
        for message in canonical.messages
        for part in message.content
        if hasattr(part, "text")
    )
    answer = msgspec.json.encode({"input_tokens": max(1, chars // 4)})
    await send_json(ctx.send, 200, answer, base_headers(ctx.request_id, JSON))
