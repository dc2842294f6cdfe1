"""A per-deployment circuit breaker: closed, open, half-open with a single probe.

    closed ──(``failures`` consecutive failures)──▶ open
    open ──(cooldown elapsed, ``allow`` grants the one probe)──▶ half_open
    half_open ──(probe succeeds)──▶ closed          cooldown back to ``config.cooldown``
    half_open ──(probe fails)──▶ open               cooldown doubled, up to ``max_cooldown``
    half_open ──(``release_probe``: no verdict)──▶ half_open, and another probe may go

The breaker never reads a clock: every call takes ``now`` (monotonic seconds), so tests
drive it with plain numbers. It is not thread-safe; skyroute runs one event loop per
process and none of these methods awaits.
"""

from __future__ import annotations

import enum

from skyroute.core.config import Circuit


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    __slots__ = ("_config", "_cooldown", "_failures", "_opened_at", "_probe_out", "_state")

    def __init__(self, config: Circuit) -> None:
        self._config = config
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._cooldown = config.cooldown
        self._probe_out = False

    @property
    def cooldown(self) -> float:
        """The wait the next (or current) open period uses, in seconds."""
        return self._cooldown

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def state(self, now: float) -> BreakerState:
        """The state as an observer sees it: an open breaker whose cooldown has elapsed
        reports half-open, although the transition itself waits for ``allow``."""
        if self._state is BreakerState.OPEN and self._cooldown_over(now):
            return BreakerState.HALF_OPEN
        return self._state

    def available(self, now: float) -> bool:
        """Whether ``allow(now)`` would say yes, without taking the probe."""
        match self._state:
            case BreakerState.CLOSED:
                return True
            case BreakerState.OPEN:
                return self._cooldown_over(now)
            case BreakerState.HALF_OPEN:
                return not self._probe_out

    def allow(self, now: float) -> bool:
        """Ask to send one request. In half-open this hands out the single probe, so the
        caller must later report it with ``record_success``, ``record_failure`` or
        ``release_probe``; otherwise the deployment stays shut."""
        match self._state:
            case BreakerState.CLOSED:
                return True
            case BreakerState.OPEN:
                if not self._cooldown_over(now):
                    return False
                self._state = BreakerState.HALF_OPEN
                self._probe_out = True
                return True
            case BreakerState.HALF_OPEN:
                if self._probe_out:
                    return False
                self._probe_out = True
                return True

    def record_success(self, now: float) -> None:
        # Any success is fresh evidence that the deployment works, including one from a
        # request that was already in flight when the breaker opened.
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._cooldown = self._config.cooldown
        self._probe_out = False

    def record_failure(self, now: float) -> None:
        match self._state:
            case BreakerState.CLOSED:
                self._failures += 1
                if self._failures >= self._config.failures:
                    self._open(now)
            case BreakerState.HALF_OPEN:
                self._cooldown = min(self._cooldown * 2, self._config.max_cooldown)
                self._open(now)
            case BreakerState.OPEN:
                # A straggler that was sent before the breaker opened: the breaker already
                # knows, and extending the cooldown for it would punish the deployment twice.
                pass

    def release_probe(self) -> None:
        """The probe ended without a verdict (the client went away, the request was
        cancelled): let the next caller probe instead."""
        if self._state is BreakerState.HALF_OPEN:
            self._probe_out = False

    def _open(self, now: float) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = now
        self._probe_out = False

    def _cooldown_over(self, now: float) -> bool:
        return now >= self._opened_at + self._cooldown

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(state={self._state.value}, failures={self._failures}, "
            f"cooldown={self._cooldown})"
        )
