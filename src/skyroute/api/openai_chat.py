"""``POST /v1/chat/completions``: OpenAI in, any OpenAI-family deployment out.

The handler decodes the body once, asks the attempt loop for a deployment, and relays
the answer. One attempt is: build the upstream request, send it, and read far enough to
know the deployment really answers (the whole body for a plain request, the first event
for a stream). Until then a failure is free to fail over; after it, a stream can only end
with an in-band error.
"""

from __future__ import annotations

from skyroute.api.context import RequestContext
from skyroute.api.relay import OpenStream, open_stream, relay_stream
from skyroute.api.responses import JSON, base_headers, send_json
from skyroute.api.state import GatewayState
from skyroute.core.errors import GatewayError, ModelNotFound
from skyroute.core.usage import Usage
from skyroute.providers.base import Answer, ChatCall, Provider, map_transport_error
from skyroute.routing.attempts import Served
from skyroute.routing.deployment import DeploymentState
from skyroute.transport.client import Response
from skyroute.transport.errors import TransportError
from skyroute.wire.openai import DONE_EVENT, error_event, parse_chat_request

_MAX_ERROR_BODY = 1 << 20
_MAX_RESPONSE_BODY = 64 << 20


class ChatCompletions:
    def __init__(self, state: GatewayState) -> None:
        self._state = state

    async def __call__(self, ctx: RequestContext) -> None:
        request = parse_chat_request(ctx.body)
        if request.model not in self._state.routes:
            raise ModelNotFound(request.model)
        est_tokens = request.prompt_chars // 4

        created = int(self._state.wall_clock())

        async def attempt(
            deployment: DeploymentState, number: int, remaining: float
        ) -> Answer | OpenStream:
            call = ChatCall(
                request,
                model=deployment.config.model,
                request_id=ctx.request_id,
                attempt=number,
                created=created,
            )
            return await self._attempt(call, deployment, remaining)

        served = await self._state.attempts.run(request.model, attempt, est_tokens=est_tokens)
        headers = served_headers(ctx.request_id, served)
        result = served.result
        if isinstance(result, Answer):
            self._record_tokens(served.deployment, result.usage)
            await send_json(ctx.send, 200, result.body, headers)
        else:
            output = OpenAIOutput(request.include_usage)
            usage = await relay_stream(self._state, ctx, output, result, headers, served)
            self._record_tokens(served.deployment, usage)

    async def _attempt(
        self, call: ChatCall, deployment: DeploymentState, remaining: float
    ) -> Answer | OpenStream:
        state = self._state
        provider = state.providers[deployment.config.provider]
        timeouts = state.route_of[deployment.key].config.timeouts
        upstream = await provider.chat_request(call)
        started = state.clock()
        first_byte = min(timeouts.first_token, remaining)
        try:
            response = await state.client.request(
                upstream.method,
                upstream.url,
                upstream.headers,
                upstream.body,
                connect_timeout=min(timeouts.connect, remaining),
                header_timeout=first_byte,
            )
        except TransportError as exc:
            raise map_transport_error(exc) from None
        try:
            if response.status >= 300:
                raise await self._upstream_error(provider, response, timeouts.idle)
            if call.inbound.stream:
                left = max(0.001, started + first_byte - state.clock())
                events = provider.open_events(call, response)
                return await open_stream(provider, response, events, left, state.clock)
            return await self._read_answer(provider, call, response, timeouts.idle)
        except BaseException:
            response.close()
            raise

    async def _upstream_error(
        self, provider: Provider, response: Response, idle: float
    ) -> GatewayError:
        try:
            body = await response.read(limit=_MAX_ERROR_BODY, timeout=idle)
        except TransportError:
            body = b""
        finally:
            response.close()
        return provider.map_error(response.status, response, body, self._state.wall_clock())

    async def _read_answer(
        self, provider: Provider, call: ChatCall, response: Response, idle: float
    ) -> Answer:
        try:
            body = await response.read(limit=_MAX_RESPONSE_BODY, timeout=idle)
        except TransportError as exc:
            raise map_transport_error(exc) from None
        finally:
            response.close()
        return provider.read_answer(call, body)

    def _record_tokens(self, deployment: DeploymentState, usage: Usage | None) -> None:
        if usage is not None:
            deployment.quota.record_tokens(self._state.clock(), usage.tokens)


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


def served_headers(request_id: str, served: Served[object]) -> list[tuple[bytes, bytes]]:
    content = JSON if isinstance(served.result, Answer) else b"text/event-stream"
    headers = base_headers(request_id, content)
    config = served.deployment.config
    headers.append((b"x-skyroute-provider", config.provider.encode()))
    headers.append((b"x-skyroute-deployment", config.model.encode()))
    headers.append((b"x-skyroute-attempts", str(served.attempts).encode()))
    return headers
