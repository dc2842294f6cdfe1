"""The gateway's object graph as endpoint handlers see it; built by ``server.app``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator

from skyroute.api.accounting import UsageSink
from skyroute.core.config import Config
from skyroute.governance.directory import KeyDirectory
from skyroute.governance.gate import Gate
from skyroute.governance.prices import Price
from skyroute.providers.base import Provider
from skyroute.routing.attempts import AttemptLoop
from skyroute.routing.deployment import DeploymentState
from skyroute.routing.plan import ModelRoute, fallback_chain
from skyroute.transport.client import HttpClient


class Lifecycle:
    """Readiness and draining. ``drain_deadline`` is a monotonic time once draining.

    Streams register while they relay; when the drain deadline passes, ``end_streams``
    cancels those still running, and each one ends itself with an in-band
    ``server_shutting_down`` error (it sees ``expired``) instead of a silent close.
    """

    def __init__(self) -> None:
        self.draining = False
        self.drain_deadline: float | None = None
        self.streams_ended = False
        self._streams: set[asyncio.Task[object]] = set()

    @property
    def open_streams(self) -> int:
        """Streams relaying now."""
        return len(self._streams)

    def begin_drain(self, now: float, seconds: float) -> None:
        if not self.draining:
            self.draining = True
            self.drain_deadline = now + seconds

    def expired(self, now: float) -> bool:
        # ``streams_ended`` too: event-loop timers may fire a hair before their deadline.
        return self.streams_ended or (
            self.drain_deadline is not None and now >= self.drain_deadline
        )

    @contextlib.contextmanager
    def stream(self) -> Iterator[None]:
        task = asyncio.current_task()
        assert task is not None
        self._streams.add(task)
        try:
            yield
        finally:
            self._streams.discard(task)

    def end_streams(self) -> None:
        self.streams_ended = True
        for task in list(self._streams):
            task.cancel("drain deadline")


class GatewayState:
    def __init__(
        self,
        *,
        config: Config,
        routes: dict[str, ModelRoute],
        providers: dict[str, Provider],
        client: HttpClient,
        attempts: AttemptLoop,
        directory: KeyDirectory,
        gate: Gate,
        usage: UsageSink,
        prices: dict[str, Price | None],
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.routes = routes
        self.providers = providers
        self.client = client
        self.attempts = attempts
        self.directory = directory
        self.gate = gate
        self.usage = usage
        # deployment key -> its price (None: not in the price table, recorded at cost 0)
        self.prices = prices
        # model name -> the dearest price among every deployment a request for it may
        # reach (its own and its fallbacks'), for budget reservations
        self.reserve_price = {name: _dearest(name, routes, prices) for name in routes}
        self.clock = clock
        self.wall_clock = wall_clock
        self.lifecycle = Lifecycle()
        # deployment key -> the model route it belongs to (for its timeouts)
        self.route_of = {d.key: route for route in routes.values() for d in route.deployments}

    def price(self, deployment: DeploymentState) -> Price | None:
        return self.prices.get(deployment.key)


def _dearest(
    model: str, routes: dict[str, ModelRoute], prices: dict[str, Price | None]
) -> Price | None:
    found = [
        price
        for name in fallback_chain(routes, model)
        for deployment in routes[name].deployments
        if (price := prices.get(deployment.key)) is not None
    ]
    if not found:
        return None
    return Price(
        input=max(p.input for p in found),
        output=max(p.output for p in found),
        cached_read=max((p.cached_read or 0) for p in found) or None,
        cache_write=max((p.cache_write or 0) for p in found) or None,
        reasoning=max((p.reasoning or 0) for p in found) or None,
    )
