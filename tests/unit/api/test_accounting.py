"""The meter's ledger rows: every field where it belongs (the row is built positionally)."""

from __future__ import annotations

from datetime import UTC, datetime

from skyroute.api.accounting import CLIENT_CLOSED, Meter, StreamOutcome
from skyroute.core.config import Circuit, DeploymentConfig
from skyroute.core.errors import UpstreamUnavailable
from skyroute.core.usage import CompletionDetails, PromptDetails, Usage
from skyroute.governance.budget import BudgetLedger
from skyroute.governance.directory import Caller
from skyroute.governance.gate import Gate, Ticket
from skyroute.governance.keys import KeyRecord
from skyroute.governance.limits import MemoryLimits
from skyroute.governance.prices import Price
from skyroute.routing.deployment import DeploymentState
from skyroute.store.ledger import UsageRow

WALL = 1_750_000_000.25
PRICE = Price(input=1_000_000, output=2_000_000)  # $1 / $2 per million tokens


class _Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


class _Pricing:
    def price(self, deployment: DeploymentState) -> Price | None:
        return PRICE


def _meter(rows: list[UsageRow], clock: _Clock, *, stream: bool) -> Meter:
    gate = Gate(MemoryLimits(), BudgetLedger(), clock=clock, wall_clock=lambda: WALL)
    caller = Caller(KeyRecord(id="k1", hash="h", team_id="t1"))
    return Meter(
        sink=_Sink(rows),
        gate=gate,
        ticket=Ticket(None, None),
        pricing=_Pricing(),
        caller=caller,
        logical_id="logical-1",
        model="gpt-4o",
        stream=stream,
        prompt_estimate=7,
        clock=clock,
        wall_clock=lambda: WALL,
    )


class _Sink:
    def __init__(self, rows: list[UsageRow]) -> None:
        self.rows = rows

    def append(self, row: UsageRow) -> None:
        self.rows.append(row)


def _deployment() -> DeploymentState:
    config = DeploymentConfig(provider="azure-east", model="gpt-4o-2024-08-06")
    circuit = Circuit(failures=2, cooldown=10.0, max_cooldown=40.0)
    return DeploymentState(model="gpt-4o", index=0, config=config, circuit=circuit)


def test_an_answered_attempt_fills_every_field_by_name() -> None:
    rows: list[UsageRow] = []
    clock = _Clock()
    meter = _meter(rows, clock, stream=False)
    meter.attempt_started(1)
    clock.now += 0.25
    usage = Usage(
        prompt_tokens=100,
        completion_tokens=40,
        prompt_tokens_details=PromptDetails(cached_tokens=10, cache_write_tokens=5),
        completion_tokens_details=CompletionDetails(reasoning_tokens=3),
    )
    meter.answered(_deployment(), 1, usage)
    (row,) = rows
    assert row.request_id and row.attempt == 1
    assert (row.logical_request_id, row.key_id, row.team_id) == ("logical-1", "k1", "t1")
    assert (row.model, row.deployment) == ("gpt-4o", "azure-east/gpt-4o-2024-08-06")
    assert (row.provider, row.upstream_model) == ("azure-east", "gpt-4o-2024-08-06")
    assert (row.status, row.error_code) == (200, None)
    assert (row.prompt_tokens, row.completion_tokens) == (100, 40)
    assert (row.cached_tokens, row.cache_write_tokens, row.reasoning_tokens) == (10, 5, 3)
    assert row.cost_micros == 180  # 100 prompt at $1 and 40 completion at $2 per million
    assert (row.latency_ms, row.ttft_ms, row.stream) == (250, None, False)
    assert (row.finish_reason, row.estimated) == (None, False)
    assert row.created_at == datetime.fromtimestamp(WALL, UTC)


def test_a_failed_attempt_has_its_status_and_code_and_no_usage() -> None:
    rows: list[UsageRow] = []
    meter = _meter(rows, _Clock(), stream=False)
    meter.attempt_started(2)
    error = UpstreamUnavailable("down")
    error.upstream_status = 503
    meter.attempt_failed(_deployment(), 2, error)
    (row,) = rows
    assert (row.attempt, row.status, row.error_code) == (2, 503, error.code)
    assert (row.prompt_tokens, row.completion_tokens, row.cost_micros) == (0, 0, 0)
    assert (row.cached_tokens, row.cache_write_tokens, row.reasoning_tokens) == (0, 0, 0)
    assert not row.estimated


def test_a_stream_cut_short_is_estimated_with_its_first_token_time() -> None:
    rows: list[UsageRow] = []
    clock = _Clock()
    meter = _meter(rows, clock, stream=True)
    meter.attempt_started(1)
    clock.now += 0.05
    meter.stream_opened(_deployment(), 1)
    clock.now += 0.5
    meter.stream_ended(
        StreamOutcome(usage=None, chunks=9, finish_reason="length", error=None, cancelled=True)
    )
    (row,) = rows
    assert (row.status, row.error_code) == (CLIENT_CLOSED, "client_closed_request")
    assert (row.prompt_tokens, row.completion_tokens, row.estimated) == (7, 9, True)
    assert (row.latency_ms, row.ttft_ms, row.stream) == (550, 50, True)
    assert row.finish_reason == "length"
