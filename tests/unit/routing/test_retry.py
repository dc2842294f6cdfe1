from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skyroute.core.config import Retries
from skyroute.core.errors import (
    AuthenticationFailed,
    ContentFiltered,
    ContextLengthExceeded,
    GatewayError,
    InternalError,
    InvalidRequest,
    NoCapacity,
    ServiceUnavailable,
    UpstreamBadRequest,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from skyroute.routing.retry import Decision, FallBackModel, GiveUp, RetrySame, TryNext, decide

RETRIES = Retries(attempts=2, backoff_base=0.5, backoff_max=4.0, max_retry_after=30.0)


def run(
    error: GatewayError,
    *,
    attempt: int = 0,
    retry_after: float | None = None,
    budget: float = 600.0,
    others: bool = True,
    seed: int = 0,
) -> Decision:
    return decide(
        error,
        attempt_on_deployment=attempt,
        retries=RETRIES,
        retry_after=retry_after,
        remaining_budget=budget,
        other_candidates_left=others,
        rng=random.Random(seed),
    )


@pytest.mark.parametrize(
    "error",
    [
        InvalidRequest("bad"),
        AuthenticationFailed(),
        ContentFiltered("filtered"),
        UpstreamBadRequest("the provider says the request is wrong"),
    ],
)
@pytest.mark.parametrize("others", [True, False])
def test_client_faults_give_up(error: GatewayError, others: bool) -> None:
    assert run(error, others=others) == GiveUp()


@pytest.mark.parametrize("others", [True, False])
def test_context_length_falls_back_to_another_model(others: bool) -> None:
    assert run(ContextLengthExceeded("too long"), others=others) == FallBackModel()


@pytest.mark.parametrize("others", [True, False])
def test_timeout_moves_on_and_never_retries_same(others: bool) -> None:
    assert run(UpstreamTimeout("no first token"), others=others) == TryNext()


def test_rate_limited_prefers_another_deployment() -> None:
    assert run(UpstreamRateLimited("429"), retry_after=1.0, others=True) == TryNext()


def test_rate_limited_alone_waits_for_retry_after() -> None:
    assert run(UpstreamRateLimited("429"), retry_after=2.0, others=False) == RetrySame(2.0)


def test_rate_limited_uses_the_hint_on_the_error() -> None:
    error = UpstreamRateLimited("429", retry_after=3.0)
    assert run(error, others=False) == RetrySame(3.0)
    assert run(error, retry_after=1.0, others=False) == RetrySame(1.0)


@pytest.mark.parametrize(
    ("retry_after", "attempt", "budget"),
    [
        (None, 0, 600.0),  # no hint: nothing tells us when capacity returns
        (31.0, 0, 600.0),  # longer than max_retry_after
        (5.0, 0, 5.0),  # would use up the whole budget
        (5.0, 2, 600.0),  # attempts on this deployment used up
    ],
)
def test_rate_limited_alone_otherwise_moves_on(
    retry_after: float | None, attempt: int, budget: float
) -> None:
    error = UpstreamRateLimited("429")
    decision = run(error, retry_after=retry_after, attempt=attempt, budget=budget, others=False)
    assert decision == TryNext()


@pytest.mark.parametrize("error", [UpstreamUnavailable("503"), UpstreamProtocolError("bad stream")])
def test_transient_errors_retry_same_with_jitter(error: GatewayError) -> None:
    for attempt, ceiling in [(0, 0.5), (1, 1.0)]:
        decision = run(error, attempt=attempt)
        assert isinstance(decision, RetrySame)
        assert 0.0 <= decision.delay <= ceiling
    assert run(error, attempt=2) == TryNext()


def test_transient_retry_honours_a_fitting_retry_after() -> None:
    assert run(UpstreamUnavailable("503"), retry_after=7.0) == RetrySame(7.0)
    decision = run(UpstreamUnavailable("503"), retry_after=120.0)
    assert isinstance(decision, RetrySame) and decision.delay <= 0.5


def test_transient_retry_must_fit_the_budget() -> None:
    assert run(UpstreamUnavailable("503"), budget=0.0) == TryNext()
    # A hint that would eat the whole budget is dropped for the (short) jittered backoff.
    decision = run(UpstreamUnavailable("503"), retry_after=7.0, budget=7.0)
    assert isinstance(decision, RetrySame) and decision.delay <= 0.5


def test_transient_retry_is_reproducible_with_a_seed() -> None:
    assert run(UpstreamUnavailable("503"), seed=4) == run(UpstreamUnavailable("503"), seed=4)


def test_provider_rejections_move_on() -> None:
    assert run(UpstreamRejected("401 from upstream")) == TryNext()
    assert run(UpstreamRejected("401 from upstream"), others=False) == TryNext()


@pytest.mark.parametrize(
    "error", [InternalError(), NoCapacity("none"), ServiceUnavailable("draining")]
)
def test_gateway_faults_give_up(error: GatewayError) -> None:
    assert run(error) == GiveUp()


ERRORS = st.sampled_from(
    [
        UpstreamRateLimited("429"),
        UpstreamUnavailable("503"),
        UpstreamProtocolError("x"),
        UpstreamTimeout("t"),
        UpstreamRejected("r"),
    ]
)


@given(
    error=ERRORS,
    attempt=st.integers(0, 5),
    retry_after=st.one_of(st.none(), st.floats(0.0, 100.0)),
    budget=st.floats(-1.0, 100.0),
    others=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_retry_same_always_fits_budget_and_attempts(
    error: GatewayError,
    attempt: int,
    retry_after: float | None,
    budget: float,
    others: bool,
    seed: int,
) -> None:
    decision = run(
        error, attempt=attempt, retry_after=retry_after, budget=budget, others=others, seed=seed
    )
    if isinstance(decision, RetrySame):
        assert attempt < RETRIES.attempts
        assert 0.0 <= decision.delay < budget
        assert decision.delay <= max(RETRIES.max_retry_after, RETRIES.backoff_max)
        assert not isinstance(error, UpstreamTimeout)
    else:
        assert decision == TryNext()
