"""Liveness, readiness and the model list."""

from __future__ import annotations

import msgspec

from skyroute.api.context import RequestContext
from skyroute.api.responses import JSON, base_headers, send_json
from skyroute.api.state import GatewayState
from skyroute.core.errors import ServiceUnavailable

_OK = b'{"status":"ok"}'


async def health(ctx: RequestContext) -> None:
    """Liveness: the event loop answers. No dependency is consulted."""
    await send_json(ctx.send, 200, _OK, base_headers(ctx.request_id, JSON))


async def readiness(state: GatewayState, ctx: RequestContext) -> None:
    """Ready while the config is loaded and the process is not draining."""
    if state.lifecycle.draining:
        raise ServiceUnavailable("The gateway is draining.", code="draining")
    await send_json(ctx.send, 200, _OK, base_headers(ctx.request_id, JSON))


class _Model(msgspec.Struct):
    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = "skyroute"


class _ModelList(msgspec.Struct):
    data: list[_Model]
    object: str = "list"


async def models_list(state: GatewayState, ctx: RequestContext) -> None:
    """The model names this caller may ask for (not the upstream deployments behind them)."""
    caller = ctx.caller
    names = [n for n in state.routes if caller is None or caller.key.allows_model(n)]
    body = msgspec.json.encode(_ModelList([_Model(name) for name in names]))
    await send_json(ctx.send, 200, body, base_headers(ctx.request_id, JSON))
