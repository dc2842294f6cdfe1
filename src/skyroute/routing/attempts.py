"""The attempt loop: one logical request, tried on deployments until one serves it.

Order: the requested model's deployments by priority tier (weighted within a tier,
skipping open circuits, spent quotas and cooling deployments), then each fallback model
the same way. After every failed attempt ``retry.decide`` says what comes next: the same
deployment again (after a backoff or the upstream's Retry-After), the next deployment,
the next model (context too long), or give up. The loop knows nothing about HTTP: the
caller's ``attempt`` callable does the I/O and either returns a result or raises a
``GatewayError``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, TypeVar

from skyroute.core.errors import (
    Fault,
    GatewayError,
    NoCapacity,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from skyroute.routing.deployment import DeploymentState
from skyroute.routing.plan import ModelRoute, fallback_chain
from skyroute.routing.retry import FallBackModel, GiveUp, RetrySame, TryNext, decide

T = TypeVar("T")

# When a 429 names no wait, keep the deployment out of rotation this long.
_DEFAULT_COOLDOWN = 1.0


class Served(Generic[T]):
    """A successful attempt: the caller's result and where it came from."""

    __slots__ = ("attempts", "deployment", "model", "result")

    def __init__(self, result: T, deployment: DeploymentState, model: str, attempts: int) -> None:
        self.result = result
        self.deployment = deployment
        self.model = model
        self.attempts = attempts


Attempt = Callable[[DeploymentState, int, float], Awaitable[T]]
"""``attempt(deployment, attempt_number, remaining_seconds)``."""


class AttemptLoop:
    def __init__(
        self,
        routes: Mapping[str, ModelRoute],
        *,
        clock: Callable[[], float],
        rng: random.Random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._routes = routes
        self._clock = clock
        self._rng = rng
        self._sleep = sleep

    async def run(self, model: str, attempt: Attempt[T], *, est_tokens: int = 0) -> Served[T]:
        chain = fallback_chain(self._routes, model)
        deadline = self._clock() + self._routes[model].config.timeouts.total
        tracker = _Outcome()
        for position, name in enumerate(chain):
            route = self._routes[name]
            candidates = route.candidates(self._clock(), self._rng, est_tokens)
            tracker.note_skipped(route, candidates, self._clock())
            more_models = position + 1 < len(chain)
            for index, deployment in enumerate(candidates):
                others_left = index + 1 < len(candidates) or more_models
                outcome = await self._on_deployment(
                    route, deployment, attempt, deadline, others_left, tracker
                )
                if isinstance(outcome, Served):
                    return outcome
                if outcome is _NEXT_MODEL:
                    break
        raise tracker.final_error(self._clock())

    async def _on_deployment(
        self,
        route: ModelRoute,
        deployment: DeploymentState,
        attempt: Attempt[T],
        deadline: float,
        others_left: bool,
        tracker: _Outcome,
    ) -> Served[T] | object:
        tries = 0
        while True:
            now = self._clock()
            remaining = deadline - now
            if remaining <= 0:
                raise tracker.last_error or UpstreamTimeout("The request ran out of time.")
            if not deployment.breaker.allow(now):
                return _NEXT_DEPLOYMENT
            deployment.quota.record_request(now)
            tracker.attempts += 1
            number = tracker.attempts
            try:
                result = await attempt(deployment, number, remaining)
            except GatewayError as caught:
                error = caught
                self._record_failure(deployment, error)
                tracker.record(error)
                decision = decide(
                    error,
                    attempt_on_deployment=tries,
                    retries=route.config.retries,
                    retry_after=error.retry_after,
                    remaining_budget=deadline - self._clock(),
                    other_candidates_left=others_left,
                    rng=self._rng,
                )
            except BaseException:
                deployment.breaker.release_probe()
                raise
            else:
                deployment.breaker.record_success(self._clock())
                return Served(result, deployment, route.name, number)
            match decision:
                case RetrySame(delay=delay):
                    tries += 1
                    if delay > 0:
                        await self._sleep(delay)
                case TryNext():
                    return _NEXT_DEPLOYMENT
                case FallBackModel():
                    return _NEXT_MODEL
                case GiveUp():
                    raise error

    def _record_failure(self, deployment: DeploymentState, error: GatewayError) -> None:
        now = self._clock()
        if isinstance(error, UpstreamRateLimited):
            # A 429 is the upstream asking for room, not a fault: cool down, don't eject.
            deployment.cool_down(now, error.retry_after or _DEFAULT_COOLDOWN)
            deployment.breaker.release_probe()
        elif error.fault is Fault.PROVIDER:
            deployment.breaker.record_failure(now)
        else:
            # The request was at fault; the deployment answered, so it is healthy.
            deployment.breaker.record_success(now)


_NEXT_DEPLOYMENT = object()
_NEXT_MODEL = object()


class _Outcome:
    """What the attempts so far amount to, to pick the error the client finally sees."""

    def __init__(self) -> None:
        self.attempts = 0
        self.last_error: GatewayError | None = None
        self.only_rate_limited = True
        self.soonest_free: float | None = None

    def record(self, error: GatewayError) -> None:
        self.last_error = error
        if not isinstance(error, UpstreamRateLimited):
            self.only_rate_limited = False

    def note_skipped(
        self, route: ModelRoute, candidates: list[DeploymentState], now: float
    ) -> None:
        chosen = {id(d) for d in candidates}
        for deployment in route.deployments:
            if id(deployment) in chosen:
                continue
            reason = deployment.reason_unavailable(now)
            if reason in ("quota", "cooling_down"):
                free_at = max(deployment.cooldown_until, now + 1.0)
                if self.soonest_free is None or free_at < self.soonest_free:
                    self.soonest_free = free_at
            else:
                self.only_rate_limited = False

    def final_error(self, now: float) -> GatewayError:
        if self.only_rate_limited and (self.last_error or self.soonest_free):
            wait = None
            if self.soonest_free is not None:
                wait = max(1.0, self.soonest_free - now)
            if isinstance(self.last_error, UpstreamRateLimited) and self.last_error.retry_after:
                wait = min(wait or self.last_error.retry_after, self.last_error.retry_after)
            return UpstreamRateLimited(
                "Every deployment of this model is rate limited; retry later.",
                retry_after=wait,
            )
        if self.last_error is not None:
            return self.last_error
        return NoCapacity("No deployment of this model is available right now.", retry_after=1.0)
