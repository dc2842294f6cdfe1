"""What to do after an attempt failed: the retry decision table as one pure function.

Rules are tried top to bottom; the first that matches decides. "Fits" means the delay is
at most ``retries.max_retry_after`` and strictly less than the remaining budget, so the
retry itself still has time to run. "Attempts remain" means
``attempt_on_deployment < retries.attempts``.

    error                                condition                         decision
    ───────────────────────────────────  ────────────────────────────────  ──────────────────
    ContextLengthExceeded                —                                 FallBackModel
    fault is CLIENT (ContentFiltered,    —                                 GiveUp
      UpstreamBadRequest, InvalidRequest)
    UpstreamTimeout                      — (it answered nothing: move on)  TryNext
    UpstreamRateLimited                  other candidates left             TryNext  (¹)
                                         retry_after fits, attempts remain RetrySame(retry_after)
                                         otherwise                         TryNext  (²)
    retry_same (UpstreamUnavailable,     attempts remain, delay fits (³)   RetrySame(delay)
      UpstreamProtocolError)             otherwise                         TryNext
    try_another (UpstreamRejected, ...)  —                                 TryNext
    anything else (GatewayFault, ...)    —                                 GiveUp

    (¹) the caller cools the deployment down for ``retry_after``.
    (²) with nothing left to try, the caller ends with 429 and ``Retry-After``.
    (³) delay = ``retry_after`` when given and it fits, else full-jitter backoff.

``ContextLengthExceeded`` is the provider's "client" fault too, so it is matched before the
client rule: a model with a longer context may still take the request.
"""

from __future__ import annotations

import random

import msgspec

from skyroute.core.config import Retries
from skyroute.core.errors import (
    ContextLengthExceeded,
    Fault,
    GatewayError,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from skyroute.routing.backoff import full_jitter


class RetrySame(msgspec.Struct, frozen=True, tag=True):
    """Wait ``delay`` seconds, then send to the same deployment again."""

    delay: float


class TryNext(msgspec.Struct, frozen=True, tag=True):
    """Move on to the next candidate deployment (or fallback model when none is left)."""


class FallBackModel(msgspec.Struct, frozen=True, tag=True):
    """Skip this model's remaining deployments and go on to its fallback models."""


class GiveUp(msgspec.Struct, frozen=True, tag=True):
    """Stop and answer the client with this error."""


Decision = RetrySame | TryNext | FallBackModel | GiveUp


def decide(
    error: GatewayError,
    *,
    attempt_on_deployment: int,
    retries: Retries,
    retry_after: float | None,
    remaining_budget: float,
    other_candidates_left: bool,
    rng: random.Random,
) -> Decision:
    """Decide after ``error`` ended attempt number ``attempt_on_deployment`` (0 for the
    first try on this deployment) with ``remaining_budget`` seconds left of the request's
    total deadline. ``retry_after`` is the upstream's hint; when ``None``, the one carried
    on ``error`` is used instead."""
    if retry_after is None:
        retry_after = error.retry_after
    attempts_remain = attempt_on_deployment < retries.attempts
    if isinstance(error, ContextLengthExceeded):
        return FallBackModel()
    if error.fault is Fault.CLIENT:
        return GiveUp()
    if isinstance(error, UpstreamTimeout):
        return TryNext()
    if isinstance(error, UpstreamRateLimited):
        # Another deployment is likely to have quota now; waiting here only adds latency.
        if other_candidates_left or not attempts_remain:
            return TryNext()
        if retry_after is not None and _fits(retry_after, retries, remaining_budget):
            return RetrySame(retry_after)
        return TryNext()
    if error.retry_same:
        if not attempts_remain:
            return TryNext()
        delay = _backoff(retry_after, attempt_on_deployment, retries, remaining_budget, rng)
        return RetrySame(delay) if delay is not None else TryNext()
    if error.try_another:
        return TryNext()
    return GiveUp()


def _backoff(
    retry_after: float | None,
    attempt: int,
    retries: Retries,
    remaining_budget: float,
    rng: random.Random,
) -> float | None:
    """The delay before retrying the same deployment, or ``None`` when it won't fit."""
    if retry_after is not None and _fits(retry_after, retries, remaining_budget):
        return retry_after
    delay = full_jitter(attempt, retries.backoff_base, retries.backoff_max, rng)
    return delay if delay < remaining_budget else None


def _fits(delay: float, retries: Retries, remaining_budget: float) -> bool:
    return 0.0 <= delay <= retries.max_retry_after and delay < remaining_budget
