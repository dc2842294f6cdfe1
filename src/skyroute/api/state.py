"""The gateway's object graph as endpoint handlers see it; built by ``server.app``."""

from __future__ import annotations

from collections.abc import Callable

from skyroute.core.config import Config
from skyroute.core.secret import Secret
from skyroute.providers.base import Provider
from skyroute.routing.attempts import AttemptLoop
from skyroute.routing.plan import ModelRoute
from skyroute.transport.client import HttpClient


class Lifecycle:
    """Readiness and draining. ``drain_deadline`` is a monotonic time once draining."""

    def __init__(self) -> None:
        self.draining = False
        self.drain_deadline: float | None = None

    def begin_drain(self, now: float, seconds: float) -> None:
        if not self.draining:
            self.draining = True
            self.drain_deadline = now + seconds


class GatewayState:
    def __init__(
        self,
        *,
        config: Config,
        master_key: Secret,
        routes: dict[str, ModelRoute],
        providers: dict[str, Provider],
        client: HttpClient,
        attempts: AttemptLoop,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.master_key = master_key
        self.routes = routes
        self.providers = providers
        self.client = client
        self.attempts = attempts
        self.clock = clock
        self.wall_clock = wall_clock
        self.lifecycle = Lifecycle()
        # deployment key -> the model route it belongs to (for its timeouts)
        self.route_of = {d.key: route for route in routes.values() for d in route.deployments}
