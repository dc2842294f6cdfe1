"""The ASGI application: route table, body limits, request ids, the error edge.

A plain ASGI callable (no framework): measured, uvicorn with a bare ASGI app costs about
two thirds of uvicorn with Starlette per request. Paths are matched exactly on the raw
path as sent, so the route that authenticates a request is the route that serves it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from skyroute.api.anthropic_messages import Messages, count_tokens
from skyroute.api.chat import ChatEngine
from skyroute.api.context import Message, Receive, RequestContext, Send
from skyroute.api.health import health, models_list, readiness
from skyroute.api.openai_chat import ChatCompletions
from skyroute.api.responses import send_error
from skyroute.api.state import GatewayState
from skyroute.api.surface import ANTHROPIC, OPENAI, Surface
from skyroute.core.config import Config
from skyroute.core.errors import (
    BodyTooLarge,
    GatewayError,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    RouteNotFound,
    ServiceUnavailable,
)
from skyroute.governance.budget import BudgetBackend, BudgetLedger
from skyroute.governance.directory import Caller, KeyDirectory
from skyroute.governance.gate import Gate
from skyroute.governance.keys import KeyHasher
from skyroute.governance.limits import LimitBackend, MemoryLimits
from skyroute.governance.prices import Price, PriceTable, load_default, with_overrides
from skyroute.providers.entra import TokenProvider
from skyroute.providers.registry import build_providers
from skyroute.routing.attempts import AttemptLoop
from skyroute.routing.plan import ModelRoute, build_routes
from skyroute.server.admission import Admission
from skyroute.server.counters import WorkerShare
from skyroute.server.loop_monitor import LoopMonitor
from skyroute.server.runtime import GatewayRuntime
from skyroute.server.storage import Storage
from skyroute.transport.client import HttpClient

log = logging.getLogger("skyroute.server")

Handler = Callable[[RequestContext], Awaitable[None]]
_SAFE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")


class _Route:
    """``sheddable``: a model request, refused with a fast 503 while the gateway is
    overloaded (server/admission.py)."""

    __slots__ = ("handler", "method", "needs_auth", "reads_body", "sheddable", "surface")

    def __init__(
        self,
        method: str,
        handler: Handler,
        *,
        needs_auth: bool,
        surface: Surface = OPENAI,
        sheddable: bool = False,
    ) -> None:
        self.method = method
        self.handler = handler
        self.needs_auth = needs_auth
        self.reads_body = method == "POST"
        self.surface = surface
        self.sheddable = sheddable


# Admin requests are small; their bodies are capped well below the chat body limit.
_ADMIN_BODY_LIMIT = 1 << 20


class SkyrouteApp:
    def __init__(self, state: GatewayState, storage: Storage, *, worker: int = 0) -> None:
        self.state = state
        self.worker = worker
        self.storage = storage
        self._admin: Handler | None = None  # set once the store is open
        server = state.config.server
        self.admission = Admission(
            max_in_flight=server.max_in_flight, shed_loop_lag_ms=server.shed_loop_lag_ms
        )
        # Runs between start() and aclose().
        self.loop_monitor = LoopMonitor(on_sample=self.admission.observe_lag)
        # Called when start-up is complete (the server uses it to tune the collector).
        self.after_start: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._max_body = state.config.server.max_body_bytes
        engine = ChatEngine(state)
        self._routes: dict[bytes, _Route] = {
            b"/healthz": _Route("GET", health, needs_auth=False),
            b"/readyz": _Route("GET", lambda ctx: readiness(state, ctx), needs_auth=False),
            b"/v1/models": _Route("GET", lambda ctx: models_list(state, ctx), needs_auth=True),
            b"/v1/chat/completions": _Route(
                "POST", ChatCompletions(engine), needs_auth=True, sheddable=True
            ),
            b"/v1/messages": _Route(
                "POST", Messages(engine), needs_auth=True, surface=ANTHROPIC, sheddable=True
            ),
            b"/v1/messages/count_tokens": _Route(
                "POST", count_tokens, needs_auth=True, surface=ANTHROPIC, sheddable=True
            ),
        }

    async def __call__(self, scope: Mapping[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Mapping[str, Any], receive: Receive, send: Send) -> None:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        request_id = _request_id(headers)
        responder = _Responder(send)
        surface = OPENAI
        try:
            raw_path = _raw_path(scope)
            if raw_path == b"/admin" or raw_path.startswith(b"/admin/"):
                await self._admin_request(scope, raw_path, receive, responder, request_id)
                return
            route = self._route_for(scope["method"], raw_path)
            surface = route.surface
            # Before authentication and the body: a shed request must cost little.
            admission = self.admission if route.sheddable else None
            if admission is not None:
                admission.enter()
            try:
                caller = None
                if route.needs_auth:
                    state = self.state
                    credential = surface.credential(headers)
                    caller = state.directory.resolve(credential, state.wall_clock())
                body = (
                    await _read_body(receive, headers, self._max_body) if route.reads_body else b""
                )
                ctx = _context(scope, raw_path, body, request_id, responder, caller)
                if route.reads_body:
                    await _cancel_on_disconnect(route.handler(ctx), receive, responder)
                else:
                    await route.handler(ctx)
            finally:
                if admission is not None:
                    admission.leave()
        except _ClientGone:
            return
        except GatewayError as error:
            if not responder.started:
                await send_error(send, request_id, error, surface.error_body)
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id})
            if not responder.started:
                await send_error(send, request_id, InternalError(), surface.error_body)

    def _route_for(self, method: str, raw_path: bytes) -> _Route:
        route = self._routes.get(raw_path)
        if route is None:
            raise RouteNotFound()
        if method != route.method:
            raise MethodNotAllowed()
        return route

    async def _admin_request(
        self,
        scope: Mapping[str, Any],
        raw_path: bytes,
        receive: Receive,
        responder: _Responder,
        request_id: str,
    ) -> None:
        """``/admin/...``: the admin API authenticates, routes and authorizes itself, on
        the same raw path the check above matched."""
        if self._admin is None:
            raise ServiceUnavailable("The gateway is starting.", retry_after=1.0)
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        has_body = scope["method"] in ("POST", "PATCH", "PUT", "DELETE")
        limit = min(self._max_body, _ADMIN_BODY_LIMIT)
        body = await _read_body(receive, headers, limit) if has_body else b""
        await self._admin(_context(scope, raw_path, body, request_id, responder, None))

    def request_drain(self) -> None:
        """Begin draining; safe to call from a signal handler or another thread."""
        state = self.state
        state.lifecycle.begin_drain(state.clock(), state.config.server.drain_seconds)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._schedule_stream_end)

    def _schedule_stream_end(self) -> None:
        assert self._loop is not None
        deadline = self.state.lifecycle.drain_deadline or self.state.clock()
        delay = max(0.0, deadline - self.state.clock())
        self._loop.call_later(delay, self.state.lifecycle.end_streams)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._loop = asyncio.get_running_loop()
                try:
                    await self.start()
                except Exception as exc:
                    log.error("start-up failed: %s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def start(self) -> None:
        """Open the store (keys, budgets, the usage outbox) and the admin API."""
        # Imported here: the admin API pulls in the key manager, which only the
        # started gateway needs.
        from skyroute.api.admin import AdminApi
        from skyroute.governance.manage import KeyManager

        state = self.state
        await self.storage.start()
        self.loop_monitor.start()
        assert self.storage.engine is not None
        manager = KeyManager(
            self.storage.engine,
            state.directory.hasher,
            state.directory,
            wall_clock=state.wall_clock,
        )
        runtime = GatewayRuntime(
            self.loop_monitor, state.lifecycle, self.storage, self.admission, self.worker
        )
        self._admin = AdminApi(
            manager, state.directory, wall_clock=state.wall_clock, runtime=runtime
        )
        if self.after_start is not None:
            self.after_start()

    async def aclose(self) -> None:
        await self.loop_monitor.aclose()
        for provider in self.state.providers.values():
            await provider.aclose()
        await self.state.client.aclose()
        await self.storage.stop()


class _ClientGone(Exception):
    """The client disconnected before its request body was complete."""


class _Responder:
    """Wraps ASGI ``send`` to know whether the response has started (then errors go
    in-band instead of as a status) and to stop the disconnect watcher at the end."""

    __slots__ = ("_send", "finished", "started")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        self.finished = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        elif not message.get("more_body", False):
            self.finished = True
        await self._send(message)


# Answers faster than this never start a watcher: creating the task costs more than the
# work of a fast plain request's disconnect check is worth (about 6 µs a request).
_WATCH_AFTER = 0.05


async def _cancel_on_disconnect(
    work: Awaitable[None], receive: Receive, responder: _Responder
) -> None:
    """Run ``work``; if the client goes away first, cancel it (and so the upstream call)."""
    task = asyncio.current_task()
    assert task is not None
    watcher: list[asyncio.Task[None]] = []

    async def watch() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if not responder.finished:
                    task.cancel("client disconnected")
                return

    def start_watching() -> None:
        watcher.append(asyncio.ensure_future(watch()))

    timer = asyncio.get_running_loop().call_later(_WATCH_AFTER, start_watching)
    try:
        await work
    except asyncio.CancelledError:
        if watcher and watcher[0].done() and not watcher[0].cancelled() and not responder.finished:
            # Our own cancellation: the client left. Nothing to answer, nothing to log.
            task.uncancel()
            return
        raise
    finally:
        timer.cancel()
        if watcher:
            watcher[0].cancel()


async def _read_body(receive: Receive, headers: list[tuple[bytes, bytes]], limit: int) -> bytes:
    declared = _find(headers, b"content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("Invalid Content-Length header.")
        if int(declared) > limit:
            raise BodyTooLarge(limit)
    content_type = _find(headers, b"content-type")
    if content_type is not None and not _is_json(content_type):
        raise InvalidRequest("Content-Type must be application/json.")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _is_json(content_type: bytes) -> bool:
    media = content_type.partition(b";")[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


def _find(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _context(
    scope: Mapping[str, Any],
    raw_path: bytes,
    body: bytes,
    request_id: str,
    send: Send,
    caller: Caller | None,
) -> RequestContext:
    return RequestContext(
        method=scope["method"],
        path=raw_path.decode("latin-1"),
        headers=scope["headers"],
        body=body,
        request_id=request_id,
        send=send,
        query=scope.get("query_string", b""),
        caller=caller,
    )


def _raw_path(scope: Mapping[str, Any]) -> bytes:
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    return raw.partition(b"?")[0]


def _request_id(headers: list[tuple[bytes, bytes]]) -> str:
    given = _find(headers, b"x-request-id")
    if given is not None and _SAFE_REQUEST_ID.fullmatch(given):
        return given.decode()
    return os.urandom(12).hex()


def create_app(
    config: Config,
    *,
    client: HttpClient | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    token_providers: Mapping[str, TokenProvider] | None = None,
    env: Mapping[str, str] | None = None,
    share: WorkerShare | None = None,
) -> SkyrouteApp:
    """Build the whole object graph from a validated config; tests pass their own effects.
    ``share``: this process is one of several workers, counting in their shared tables."""
    master_key = config.auth.master_key
    assert master_key is not None, "validated configs always have a master key"
    client = client or HttpClient()
    directory = KeyDirectory(KeyHasher(config.auth.root_secret or master_key), master_key)
    limits: LimitBackend
    budgets: BudgetBackend
    if share is None:
        routes = build_routes(config.models)
        limits, budgets, outbox = MemoryLimits(), BudgetLedger(), "outbox"
    else:
        routes = build_routes(config.models, share.quota_windows)
        limits, budgets, outbox = share.limits, share.budgets, worker_outbox(share.index)
    storage = Storage(
        config.store,
        directory,
        budgets,
        wall_clock=wall_clock,
        outbox_name=outbox,
        adopt_strays=share is None,
    )
    state = GatewayState(
        config=config,
        routes=routes,
        providers=build_providers(
            config.providers, client, os.environ if env is None else env, token_providers
        ),
        client=client,
        attempts=AttemptLoop(routes, clock=clock, rng=rng or random.Random()),
        directory=directory,
        gate=Gate(
            limits,
            budgets,
            clock=clock,
            wall_clock=wall_clock,
            hold=None if share is None else share.lock,
        ),
        usage=storage,
        prices=deployment_prices(config, routes, price_table(config)),
        clock=clock,
        wall_clock=wall_clock,
    )
    return SkyrouteApp(state, storage, worker=0 if share is None else share.index)


def worker_outbox(index: int) -> str:
    """The outbox directory (under ``store.data_dir``) of worker ``index``: worker 0 keeps
    the single process's, so changing the number of workers strands nothing."""
    return "outbox" if index == 0 else f"outbox.{index}"


def price_table(config: Config) -> PriceTable:
    """The shipped price table with the config's overrides (checked at config load)."""
    table = load_default()
    return with_overrides(table, config.prices) if config.prices else table


def deployment_prices(
    config: Config, routes: Mapping[str, ModelRoute], table: PriceTable
) -> dict[str, Price | None]:
    prices: dict[str, Price | None] = {}
    unpriced = []
    for route in routes.values():
        for deployment in route.deployments:
            provider = config.providers[deployment.config.provider]
            kind = type(provider).__struct_config__.tag
            assert isinstance(kind, str)
            price = table.lookup(kind, deployment.config.model)
            prices[deployment.key] = price
            if price is None:
                unpriced.append(f"{deployment.config.provider}/{deployment.config.model}")
    if unpriced:
        log.warning(
            "no price for %s: their usage is recorded at cost 0 (add `prices:` entries)",
            ", ".join(sorted(set(unpriced))),
        )
    return prices
