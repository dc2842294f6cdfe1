"""``POST /v1/chat/completions``: the OpenAI chat API, in front of every deployment."""

from __future__ import annotations

from skyroute.api.chat import ChatEngine, served_headers
from skyroute.api.context import RequestContext
from skyroute.api.relay import relay_stream
from skyroute.api.responses import send_json
from skyroute.core.errors import GatewayError
from skyroute.providers.base import Answer
from skyroute.wire.openai import DONE_EVENT, error_event, parse_chat_request


class ChatCompletions:
    def __init__(self, engine: ChatEngine) -> None:
        self._engine = engine

    async def __call__(self, ctx: RequestContext) -> None:
        request = parse_chat_request(ctx.body)
        meter = self._engine.admit(ctx, request)
        try:
            served = await self._engine.serve(ctx, request, meter)
            headers = served_headers(ctx.request_id, served)
            result = served.result
            if isinstance(result, Answer):
                self._engine.record_tokens(served.deployment, result.usage)
                await send_json(ctx.send, 200, result.body, headers)
            else:
                output = OpenAIOutput(request.include_usage)
                state = self._engine.state
                usage = await relay_stream(
                    state, ctx, output, result, headers, served, meter.stream_ended
                )
                self._engine.record_tokens(served.deployment, usage)
        finally:
            meter.close()


class OpenAIOutput:
    """OpenAI's stream format: each chunk as ``data: <json>``, then ``data: [DONE]``."""

    __slots__ = ("_include_usage",)

    def __init__(self, include_usage: bool) -> None:
        self._include_usage = include_usage

    def chunk(self, data: bytes, *, usage_only: bool) -> bytes:
        if usage_only and not self._include_usage:
            return b""  # the gateway asked for usage; the client did not
        return b"data: " + data + b"\n\n"

    def done(self) -> bytes:
        return DONE_EVENT

    def error(self, error: GatewayError) -> bytes:
        return error_event(error)
