"""Accounting for one logical request: a ledger row per upstream attempt, then settling.

Every attempt the attempt loop makes leaves exactly one ``UsageRow`` in the outbox: failed
ones (status and error code, no tokens), answered ones (the usage the upstream reported),
streams (the reported usage, or, when the stream was cut or the client left before the
usage chunk, an estimate flagged ``estimated``), and attempts cancelled because the client
went away (an estimate, status 499). A row is appended before the response that it
accounts for is completed, so a crash after the client saw its answer cannot lose it.

When the request is over, ``close`` settles the gate's ticket with the summed tokens and
cost of all its attempts, or releases it when nothing was used.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from skyroute.core.errors import GatewayError
from skyroute.core.usage import Usage
from skyroute.governance.directory import Caller
from skyroute.governance.gate import Gate, Ticket
from skyroute.governance.prices import Price, cost_micros
from skyroute.routing.deployment import DeploymentState
from skyroute.store.ledger import UsageRow

# Not an HTTP status anyone sent: nginx's "client closed request", as is customary.
CLIENT_CLOSED = 499


# Row ids: random per process, then a counter (unique without a syscall per request); a
# forked child draws its own prefix.
_process_prefix = os.urandom(8).hex()
_counter = itertools.count(1)


def _new_process_prefix() -> None:
    global _process_prefix
    _process_prefix = os.urandom(8).hex()


os.register_at_fork(after_in_child=_new_process_prefix)


def _next_request_id() -> str:
    return f"{_process_prefix}{next(_counter):08x}"


class UsageSink(Protocol):
    def append(self, row: UsageRow) -> None: ...


class Pricing(Protocol):
    def price(self, deployment: DeploymentState) -> Price | None:
        """The deployment's price; ``None`` when the price table has none (cost 0)."""
        ...


class StreamOutcome:
    """How a relayed stream ended, as the meter needs to know it."""

    __slots__ = ("cancelled", "chunks", "error", "finish_reason", "usage")

    def __init__(
        self,
        *,
        usage: Usage | None,
        chunks: int,
        finish_reason: str | None,
        error: GatewayError | None,
        cancelled: bool,
    ) -> None:
        self.usage = usage
        self.chunks = chunks
        self.finish_reason = finish_reason
        self.error = error
        self.cancelled = cancelled


class Meter:
    __slots__ = (
        "_caller",
        "_clock",
        "_gate",
        "_logical_id",
        "_model",
        "_open",
        "_pricing",
        "_request_id",
        "_sink",
        "_started",
        "_stream",
        "_ticket",
        "_wall_clock",
        "cost_micros",
        "first_output",
        "prompt_estimate",
        "tokens",
    )

    def __init__(
        self,
        *,
        sink: UsageSink,
        gate: Gate,
        ticket: Ticket,
        pricing: Pricing,
        caller: Caller,
        logical_id: str,
        model: str,
        stream: bool,
        prompt_estimate: int,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self._sink = sink
        self._gate = gate
        self._ticket = ticket
        self._pricing = pricing
        self._caller = caller
        # The id the client sees may be its own (x-request-id) and so not unique: rows are
        # keyed by an id of ours, and carry the client's as the logical request id.
        self._request_id = _next_request_id()
        self._logical_id = logical_id
        self._model = model
        self._stream = stream
        self.prompt_estimate = prompt_estimate
        self._clock = clock
        self._wall_clock = wall_clock
        self._started: dict[int, float] = {}
        self._open: tuple[DeploymentState, int] | None = None
        self.first_output: float | None = None
        self.tokens = 0
        self.cost_micros = 0

    def attempt_started(self, number: int) -> None:
        self._started[number] = self._clock()
        self.first_output = None

    def attempt_failed(self, deployment: DeploymentState, number: int, error: GatewayError) -> None:
        # The upstream's own status when it answered (reconcilable with its bill), else
        # ours (a timeout, a reset).
        status = error.upstream_status or error.status
        self._write(deployment, number, status=status, error_code=error.code)

    def attempt_cancelled(self, deployment: DeploymentState, number: int) -> None:
        """The client left while the upstream was working: bill the prompt, flagged."""
        usage = Usage(prompt_tokens=self.prompt_estimate)
        self._write(
            deployment,
            number,
            status=CLIENT_CLOSED,
            error_code="client_closed_request",
            usage=usage,
            estimated=True,
        )

    def answered(self, deployment: DeploymentState, number: int, usage: Usage | None) -> None:
        estimated = usage is None
        if usage is None:
            usage = Usage(prompt_tokens=self.prompt_estimate)
        self._write(deployment, number, status=200, usage=usage, estimated=estimated)

    def stream_opened(self, deployment: DeploymentState, number: int) -> None:
        """The attempt produced output; its row is written when the stream ends."""
        self.first_output = self._clock()
        self._open = (deployment, number)

    def stream_ended(self, end: StreamOutcome) -> None:
        if self._open is None:
            return
        (deployment, number), self._open = self._open, None
        usage, estimated = end.usage, False
        if usage is None:
            # No usage chunk came: about one token per content chunk, flagged as a guess.
            usage = Usage(prompt_tokens=self.prompt_estimate, completion_tokens=end.chunks)
            estimated = True
        code: str | None
        if end.cancelled:
            status, code = CLIENT_CLOSED, "client_closed_request"
        elif end.error is not None:
            status, code = end.error.status, end.error.code
        else:
            status, code = 200, None
        self._write(
            deployment,
            number,
            status=status,
            error_code=code,
            usage=usage,
            estimated=estimated,
            finish_reason=end.finish_reason,
        )

    def close(self) -> None:
        """Settle the gate with everything the attempts used (idempotent). A stream still
        open here never reached its end (the handler failed or was cancelled first)."""
        if self._open is not None:
            self.stream_ended(
                StreamOutcome(usage=None, chunks=0, finish_reason=None, error=None, cancelled=True)
            )
        self._gate.settle(self._ticket, tokens=self.tokens, cost_micros=self.cost_micros)

    def _write(
        self,
        deployment: DeploymentState,
        number: int,
        *,
        status: int,
        error_code: str | None = None,
        usage: Usage | None = None,
        estimated: bool = False,
        finish_reason: str | None = None,
    ) -> None:
        now = self._clock()
        started = self._started.get(number, now)
        cost = 0
        row_usage = usage or Usage()
        price = self._pricing.price(deployment)
        if usage is not None and price is not None:
            cost = cost_micros(usage, price)
        self.cost_micros += cost
        self.tokens += row_usage.tokens
        cached = written = reasoning = 0
        if (prompt_details := row_usage.prompt_tokens_details) is not None:
            cached, written = prompt_details.cached_tokens, prompt_details.cache_write_tokens
        if (completion_details := row_usage.completion_tokens_details) is not None:
            reasoning = completion_details.reasoning_tokens
        key = self._caller.key
        config = deployment.config
        ttft = None
        if self._stream and self.first_output is not None:
            ttft = round((self.first_output - started) * 1000)
        # Positional, in UsageRow's field order (see its docstring for why).
        self._sink.append(
            UsageRow(
                self._request_id,  # request_id
                number,  # attempt
                self._logical_id,  # logical_request_id
                key.id,  # key_id
                key.team_id,  # team_id
                self._model,  # model
                f"{config.provider}/{config.model}",  # deployment
                config.provider,  # provider
                config.model,  # upstream_model
                status,  # status
                error_code,  # error_code
                row_usage.prompt_tokens,  # prompt_tokens
                row_usage.completion_tokens,  # completion_tokens
                cached,  # cached_tokens
                written,  # cache_write_tokens
                reasoning,  # reasoning_tokens
                cost,  # cost_micros
                round((now - started) * 1000),  # latency_ms
                ttft,  # ttft_ms
                self._stream,  # stream
                finish_reason,  # finish_reason
                estimated,  # estimated
                datetime.fromtimestamp(self._wall_clock(), UTC),  # created_at
            )
        )
