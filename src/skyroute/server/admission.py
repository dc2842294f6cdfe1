"""Load shedding: refuse new model requests quickly while the gateway is overloaded.

A gateway past its capacity that keeps accepting work gets slower for everyone: every
request waits behind the ones before it, the event loop stalls for longer and longer, and
clients time out on answers that were computed anyway. Refusing early is cheaper: a shed
request costs a fraction of a served one and tells the client, with ``Retry-After``, to
come back or go to another replica.

Two signals, either one sheds:

- **Requests in flight** above ``server.max_in_flight``: a bound on memory (each open
  stream holds buffers) and on the work already promised.
- **Event-loop lag** above ``server.shed_loop_lag_ms`` in two samples in a row of the loop
  monitor (one every 10 ms): the process is behind on CPU and staying behind. One late
  sample is a burst or a single slow callback, already over by the time it is measured;
  shedding then would refuse requests the gateway has room for. The first timely sample
  ends shedding. The default, 100 ms, is a trade: an LLM answer takes seconds, so waiting
  100 ms is better than a refusal and a retry a second later; much more, and every chunk
  of every stream is late by as much.

Only model requests are shed (chat completions, messages, token counts): health checks
and the admin API stay available, so operators can see and fix an overloaded gateway.
"""

from __future__ import annotations

from skyroute.core.errors import ServiceUnavailable

# How long a shed client is told to wait: shedding may end within 10 ms, but a client
# retrying at once would land in the same overload.
RETRY_AFTER_SECONDS = 1.0
# Late samples in a row that mean "overloaded" rather than "a burst".
LATE_SAMPLES_TO_SHED = 2


class Admission:
    __slots__ = ("_lag_limit_s", "_late", "_max_in_flight", "in_flight", "shed", "shedding")

    def __init__(self, *, max_in_flight: int, shed_loop_lag_ms: float) -> None:
        self._max_in_flight = max_in_flight
        # 0 turns lag shedding off: no lag is ever above infinity.
        self._lag_limit_s = shed_loop_lag_ms / 1000 if shed_loop_lag_ms > 0 else float("inf")
        self._late = 0  # late samples in a row
        self.shedding = False  # the lag signal: shed every model request while True
        self.in_flight = 0
        self.shed = 0  # requests refused since start

    def observe_lag(self, lag: float) -> None:
        """One loop-lag sample, in seconds (the loop monitor calls this)."""
        if lag > self._lag_limit_s:
            self._late += 1
        else:
            self._late = 0
        self.shedding = self._late >= LATE_SAMPLES_TO_SHED

    def enter(self) -> None:
        """Count one more request in flight, or raise 503 if the gateway is overloaded.
        Every successful ``enter`` must be paired with one ``leave``."""
        if self.shedding or self.in_flight >= self._max_in_flight:
            self.shed += 1
            raise ServiceUnavailable(
                "The gateway is overloaded; retry shortly.",
                code="overloaded",
                retry_after=RETRY_AFTER_SECONDS,
            )
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
