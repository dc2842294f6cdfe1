"""Serving one chat request on the deployments of its model, whatever the client speaks.

The endpoints (OpenAI chat completions, Anthropic messages) decode their body once and
hand it here; the attempt loop picks deployments. One attempt is: build the upstream
request, send it, and read far enough to know the deployment really answers (the whole
body for a plain request, the first output event for a stream). Until then a failure is
free to fail over; after it, a stream can only end with an in-band error.
"""

from __future__ import annotations

import asyncio
from typing import Any

from skyroute.api.accounting import Meter
from skyroute.api.context import RequestContext
from skyroute.api.relay import OpenStream, open_stream
from skyroute.api.responses import JSON, base_headers
from skyroute.api.state import GatewayState
from skyroute.core.errors import GatewayError, InternalError, ModelNotFound
from skyroute.core.usage import Usage
from skyroute.providers.base import Answer, ChatCall, Provider, map_transport_error
from skyroute.routing.attempts import Served
from skyroute.routing.deployment import DeploymentState
from skyroute.transport.client import Response
from skyroute.transport.errors import TransportError
from skyroute.wire.openai import ChatRequest

_MAX_ERROR_BODY = 1 << 20
_MAX_RESPONSE_BODY = 64 << 20


class ChatEngine:
    def __init__(self, state: GatewayState) -> None:
        self.state = state

    def admit(self, ctx: RequestContext, request: ChatRequest) -> Meter:
        """Check the caller may send this request now (model, limits, budget) and open
        its accounting; raises ``ModelNotFound``, ``RateLimited`` or ``QuotaExceeded``.
        The caller must ``close`` the meter when the request is over."""
        state = self.state
        caller = ctx.caller
        assert caller is not None, "the server authenticates before it dispatches"
        model = request.model
        if model not in state.routes:
            raise ModelNotFound(model)
        prompt_tokens = request.prompt_chars // 4
        ticket = state.gate.admit(
            caller,
            model,
            prompt_tokens=prompt_tokens,
            max_tokens=_max_tokens(request),
            price=state.reserve_price[model],
        )
        return Meter(
            sink=state.usage,
            gate=state.gate,
            ticket=ticket,
            pricing=state,
            caller=caller,
            logical_id=ctx.request_id,
            model=model,
            stream=request.stream,
            prompt_estimate=prompt_tokens,
            clock=state.clock,
            wall_clock=state.wall_clock,
        )

    async def serve(
        self, ctx: RequestContext, request: ChatRequest, meter: Meter
    ) -> Served[Answer | OpenStream]:
        """Run the attempt loop; the result is a complete answer or an opened stream.
        Every attempt leaves its row in ``meter`` (an opened stream's, when it ends)."""
        created = int(self.state.wall_clock())

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
            meter.attempt_started(number)
            try:
                result = await self._attempt(call, deployment, remaining)
            except GatewayError as error:
                meter.attempt_failed(deployment, number, error)
                raise
            except asyncio.CancelledError:
                meter.attempt_cancelled(deployment, number)
                raise
            except Exception:
                meter.attempt_failed(deployment, number, InternalError())
                raise
            if isinstance(result, Answer):
                meter.answered(deployment, number, result.usage)
            else:
                meter.stream_opened(deployment, number)
            return result

        return await self.state.attempts.run(
            request.model, attempt, est_tokens=meter.prompt_estimate
        )

    async def _attempt(
        self, call: ChatCall, deployment: DeploymentState, remaining: float
    ) -> Answer | OpenStream:
        state = self.state
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
        error = provider.map_error(response.status, response, body, self.state.wall_clock())
        error.upstream_status = response.status
        return error

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

    def record_tokens(self, deployment: DeploymentState, usage: Usage | None) -> None:
        if usage is not None:
            deployment.quota.record_tokens(self.state.clock(), usage.tokens)


def _max_tokens(request: ChatRequest) -> int | None:
    body = request.body
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    return value if isinstance(value, int) and value >= 0 else None


def served_headers(request_id: str, served: Served[Any]) -> list[tuple[bytes, bytes]]:
    content = JSON if isinstance(served.result, Answer) else b"text/event-stream"
    headers = base_headers(request_id, content)
    config = served.deployment.config
    headers.append((b"x-skyroute-provider", config.provider.encode()))
    headers.append((b"x-skyroute-deployment", config.model.encode()))
    headers.append((b"x-skyroute-attempts", str(served.attempts).encode()))
    return headers
