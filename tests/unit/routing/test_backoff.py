from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skyroute.routing.backoff import full_jitter
from skyroute.wire.retry_after import parse_retry_after

# Wed, 21 Oct 2015 07:28:00 GMT, the example date of RFC 9110.
RFC_DATE = "Wed, 21 Oct 2015 07:28:00 GMT"
RFC_EPOCH = 1445412480.0


def test_full_jitter_stays_under_the_exponential_ceiling() -> None:
    rng = random.Random(7)
    for attempt in range(8):
        ceiling = min(8.0, 0.25 * 2**attempt)
        draws = [full_jitter(attempt, 0.25, 8.0, rng) for _ in range(500)]
        assert all(0.0 <= d <= ceiling for d in draws)
        assert max(draws) > ceiling * 0.9, "draws should spread over the whole range"


def test_full_jitter_survives_huge_attempts() -> None:
    rng = random.Random(1)
    assert 0.0 <= full_jitter(10_000, 0.5, 20.0, rng) <= 20.0
    assert full_jitter(-3, 0.5, 20.0, rng) <= 0.5


def test_full_jitter_is_reproducible_with_a_seed() -> None:
    a = [full_jitter(2, 0.25, 8.0, random.Random(42)) for _ in range(3)]
    assert a[0] == a[1] == a[2]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "12.5", "retry-after": "9"}, 0.0125),
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": " 2.5 "}, 2.5),
        ({"retry-after": RFC_DATE}, 30.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:27:00 GMT"}, 0.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 -0000"}, 30.0),
        ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
        ({"x-ratelimit-reset-requests": "12ms"}, 0.012),
        ({"x-ratelimit-reset-requests": "1.5s", "x-ratelimit-reset-tokens": "6m0s"}, 360.0),
        ({"x-ratelimit-reset-tokens": "1h2m3s"}, 3723.0),
        ({"x-ratelimit-reset-tokens": "2m59.56s"}, 179.56),
        ({"x-ratelimit-reset-tokens": "250us", "x-ratelimit-reset-requests": "bogus"}, 0.00025),
        ({"x-ratelimit-reset-requests": "20"}, 20.0),
        ({"retry-after": "4", "x-ratelimit-reset-requests": "1h"}, 4.0),
        ({}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "-5"}, None),
        ({"retry-after": "1_000"}, None),
        ({"retry-after": "9" * 400}, None),
        ({"retry-after-ms": "1e3"}, None),
        ({"x-ratelimit-reset-requests": "-1s"}, None),
        ({"x-ratelimit-reset-requests": "1d"}, None),
        ({"x-ratelimit-reset-requests": "s"}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    got = parse_retry_after(headers, now_wall=RFC_EPOCH - 30.0)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


def test_accepts_a_lookup_callable() -> None:
    headers = {"retry-after": "3"}
    asked: list[str] = []

    def lookup(name: str) -> str | None:
        asked.append(name)
        return headers.get(name)

    assert parse_retry_after(lookup, now_wall=0.0) == 3.0
    assert asked == ["retry-after-ms", "retry-after"]


HEADER_NAMES = st.sampled_from(
    ["retry-after-ms", "retry-after", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"]
)
DURATIONISH = st.text(alphabet="0123456789.smhnuµμ-+ eE", max_size=20)


@given(
    headers=st.dictionaries(HEADER_NAMES, st.one_of(st.text(max_size=60), DURATIONISH)),
    now_wall=st.floats(allow_nan=True, allow_infinity=True),
)
def test_never_raises_and_never_negative(headers: dict[str, str], now_wall: float) -> None:
    got = parse_retry_after(headers, now_wall)
    assert got is None or got >= 0.0


# Years below 100 are read as two-digit years by the RFC 5322 parser, so start at 1000.
@given(
    date=st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(UTC)),
    now_wall=st.floats(-1e12, 1e12),
)
def test_http_dates_always_parse(date: datetime, now_wall: float) -> None:
    got = parse_retry_after({"retry-after": format_datetime(date, usegmt=True)}, now_wall)
    assert got is not None
    assert got == pytest.approx(max(0.0, date.timestamp() - now_wall), abs=1.0)
