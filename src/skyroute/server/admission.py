"""Load shedding: refuse new model requests quickly while the gateway is overloaded.

A gateway past its capacity that keeps accepting work gets slower for everyone: every
request waits behind the ones before it, the event loop stalls for longer and longer, and
clients time out on answers that were computed anyway. Refusing early is cheaper: a shed
request costs a fraction of a served one and tells the client, with ``Retry-After``, to
come back or go to another replica.

Two signals, either one sheds:

- **Requests in flight** above ``server.max_in_flight``: a bound on memory (each open
  stream holds buffers) and on the work already promised.
- **Event-loop lag** above ``server.shed_loop_lag_ms`` in the loop monitor's latest
  sample: the process is behind on CPU. The monitor samples every 10 ms, so shedding
  starts with the first late sample and stops with the first timely one.

Only model requests are shed (chat completions, messages, token counts): health checks
and the admin API stay available, so operators can see and fix an overloaded gateway.
"""

from __future__ import annotations

from skyroute.core.errors import ServiceUnavailable
from skyroute.server.loop_monitor import LoopMonitor

# How long a shed client is told to wait: the lag signal clears within one 10 ms sample,
# but a client retrying at once would land in the same overload.
RETRY_AFTER_SECONDS = 1.0


class Admission:
    __slots__ = ("_lag_limit_s", "_max_in_flight", "_monitor", "in_flight", "shed")

    def __init__(self, monitor: LoopMonitor, *, max_in_flight: int, shed_loop_lag_ms: float):
        self._monitor = monitor
        self._max_in_flight = max_in_flight
        # 0 turns lag shedding off: no lag sample is ever above infinity.
        self._lag_limit_s = shed_loop_lag_ms / 1000 if shed_loop_lag_ms > 0 else float("inf")
        self.in_flight = 0
        self.shed = 0  # requests refused since start

    def enter(self) -> None:
        """Count one more request in flight, or raise 503 if the gateway is overloaded.
        Every successful ``enter`` must be paired with one ``leave``."""
        if self.in_flight >= self._max_in_flight or self._monitor.last_lag > self._lag_limit_s:
            self.shed += 1
            raise ServiceUnavailable(
                "The gateway is overloaded; retry shortly.",
                code="overloaded",
                retry_after=RETRY_AFTER_SECONDS,
            )
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
