"""How long an upstream asks us to wait: retry hints read from response headers.

``parse_retry_after`` reads, in order, the first of these that parses:

    retry-after-ms               milliseconds, a decimal number (OpenAI, Azure OpenAI)
    retry-after                  seconds, or an HTTP-date (RFC 9110 section 10.2.3)
    x-ratelimit-reset-requests   Go durations such as ``6m0s`` or ``12ms`` (OpenAI);
    x-ratelimit-reset-tokens     when both are present the longer one wins

A header that is present but unreadable is skipped rather than trusted, so a garbage
``retry-after-ms`` does not hide a good ``retry-after``. Nothing here raises on
upstream input: a hint we cannot read is the same as no hint.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime

HeaderLookup = Callable[[str], str | None]

# Plain decimals only: float() would also take "nan", "inf", "1_000" and non-ASCII digits.
_DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)", re.ASCII)
_DURATION = re.compile(rf"(?:{_DURATION_PART.pattern})+", re.ASCII)
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 MICRO SIGN
    "μs": 1e-6,  # U+03BC GREEK SMALL LETTER MU; Go accepts both
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_retry_after(headers: HeaderLookup | Mapping[str, str], now_wall: float) -> float | None:
    """Seconds the upstream asks us to wait, or ``None`` when it gave no usable hint.

    ``headers`` is either a lookup called with lower-case names (the transport's
    case-insensitive headers) or a mapping, whose keys are matched case-insensitively.
    ``now_wall`` is the wall clock in epoch seconds, used only for an HTTP-date.
    """
    get = _lookup(headers)
    millis = _decimal(get("retry-after-ms"))
    if millis is not None:
        return millis / 1000.0
    seconds = _retry_after(get("retry-after"), now_wall)
    if seconds is not None:
        return seconds
    resets = [
        d
        for d in (
            _duration(get("x-ratelimit-reset-requests")),
            _duration(get("x-ratelimit-reset-tokens")),
        )
        if d is not None
    ]
    return max(resets) if resets else None


def _lookup(headers: HeaderLookup | Mapping[str, str]) -> HeaderLookup:
    if isinstance(headers, Mapping):
        lowered = {str(k).lower(): v for k, v in headers.items()}
        return lowered.get
    return headers


def _decimal(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not _DECIMAL.fullmatch(text):
        return None
    number = float(text)
    # Hundreds of digits make float() return inf rather than raise.
    return number if math.isfinite(number) else None


def _retry_after(value: object, now_wall: float) -> float | None:
    seconds = _decimal(value)
    if seconds is not None or not isinstance(value, str):
        return seconds
    try:
        when = parsedate_to_datetime(value.strip())
        if when.tzinfo is None:
            # RFC 5322 "-0000" gives a naive datetime; HTTP-dates are always GMT.
            when = when.replace(tzinfo=UTC)
        delay = when.timestamp() - now_wall
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    if not math.isfinite(delay):
        return None
    # A date already past means "now"; it is still a hint, just a spent one.
    return max(0.0, delay)


def _duration(value: object) -> float | None:
    """A Go ``time.Duration`` string without a sign. A bare number is read as seconds,
    since some OpenAI-compatible servers send ``x-ratelimit-reset-*`` that way."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    bare = _decimal(text)
    if bare is not None:
        return bare
    if not _DURATION.fullmatch(text):
        return None
    total = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    return total if math.isfinite(total) else None
