"""One configured deployment together with its runtime state.

A deployment can be out of rotation for three reasons, reported in this order:

    circuit_open   its breaker is open, or half-open with the probe already out
    quota          its configured rpm / tpm is spent for the current window
    cooling_down   it answered 429 and asked us to wait (``Retry-After``)

Cooling down is kept apart from the breaker on purpose: a 429 says the deployment is
healthy but busy, so it must not count towards opening the circuit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from skyroute.core.config import Circuit, DeploymentConfig
from skyroute.routing.breaker import CircuitBreaker
from skyroute.routing.quota import DeploymentQuota, WindowFactory

UnavailableReason = Literal["circuit_open", "quota", "cooling_down"]


class DeploymentState:
    __slots__ = ("breaker", "config", "cooldown_until", "key", "quota")

    def __init__(
        self,
        *,
        model: str,
        index: int,
        config: DeploymentConfig,
        circuit: Circuit,
        quota_windows: Callable[[str], WindowFactory] | None = None,
    ) -> None:
        """``quota_windows(key)``, when given, makes the quota's windows (shared ones for
        worker processes); by default they are this process's own."""
        self.key = f"{model}/{index}"
        self.config = config
        self.breaker = CircuitBreaker(circuit)
        if quota_windows is None:
            self.quota = DeploymentQuota(config.rpm, config.tpm)
        else:
            self.quota = DeploymentQuota(config.rpm, config.tpm, quota_windows(self.key))
        self.cooldown_until = float("-inf")

    def cool_down(self, now: float, seconds: float) -> None:
        """Keep the deployment out of rotation for ``seconds``. A shorter request never
        cuts an existing cooldown short: two 429s in a row both have to be honoured."""
        self.cooldown_until = max(self.cooldown_until, now + max(0.0, seconds))

    def cooling(self, now: float) -> bool:
        return now < self.cooldown_until

    def available(self, now: float, est_tokens: int = 0) -> bool:
        """Read-only: whether a request could go here now. Sending still has to ask
        ``breaker.allow(now)``, which takes the half-open probe."""
        return self.reason_unavailable(now, est_tokens) is None

    def reason_unavailable(self, now: float, est_tokens: int = 0) -> UnavailableReason | None:
        if not self.breaker.available(now):
            return "circuit_open"
        if not self.quota.has_headroom(now, est_tokens):
            return "quota"
        if self.cooling(now):
            return "cooling_down"
        return None

    def __repr__(self) -> str:
        return f"DeploymentState({self.key!r}, {self.config.provider}/{self.config.model})"
