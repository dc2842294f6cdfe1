"""The price table, and the exact cost of one attempt in integer micro-dollars.

Decided, and why:

- Prices are written as decimal strings of USD per million tokens (``"2.50"``) and held as
  integer micro-dollars per million tokens, so at most 6 decimal places are allowed and no
  float ever touches money.
- An entry is keyed by provider type (``openai``, ``azure``, ``anthropic``, ``bedrock``,
  ``vertex``, ``gemini``) and an ``fnmatch`` pattern over the upstream model id. Lookup takes
  the entries in force on a date (latest ``effective`` not after it), an exact id before any
  pattern, then the longest pattern.
- The table ships as ``prices.json`` with a ``version``; every entry says where its numbers
  came from. Operator overrides from config replace every shipped entry with the same
  (provider, model) pair, whatever their dates, so an override always wins.
- ``cost_micros``: prompt tokens include cached reads and cache writes (the canonical usage,
  OpenAI style); those are charged at their own rates when set, the rest at the input rate.
  Completion tokens include reasoning tokens; reasoning is charged at the reasoning rate when
  set, otherwise it is plain output. The sum is exact (tokens times micro-dollars per million)
  and divided by a million once, rounding half up. Reservations round up instead.
- Tiered prices (for example Gemini 2.5 Pro above 200k prompt tokens) are not modelled yet;
  entries use the lower tier and say so.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from importlib import resources

import msgspec

from skyroute.core.usage import Usage

MILLION = 1_000_000


def to_micros(usd: str) -> int:
    """``"2.50"`` (USD) → 2_500_000 micro-dollars; more than 6 decimals is an error."""
    try:
        value = Decimal(usd) * MILLION
    except InvalidOperation:
        raise ValueError(f"not a decimal price: {usd!r}") from None
    if not value.is_finite() or value < 0 or value != value.to_integral_value():
        raise ValueError(f"price must be >= 0 with at most 6 decimals: {usd!r}")
    return int(value)


class PriceEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Prices in USD per million tokens, as decimal strings; ``None``: use the base rate."""

    provider: str
    model: str
    effective: date
    source: str
    input: str
    output: str
    cached_read: str | None = None
    cache_write: str | None = None
    reasoning: str | None = None

    def __post_init__(self) -> None:
        for name in ("input", "output", "cached_read", "cache_write", "reasoning"):
            value = getattr(self, name)
            if value is not None:
                to_micros(value)

    def price(self) -> Price:
        def opt(value: str | None) -> int | None:
            return None if value is None else to_micros(value)

        return Price(
            input=to_micros(self.input),
            output=to_micros(self.output),
            cached_read=opt(self.cached_read),
            cache_write=opt(self.cache_write),
            reasoning=opt(self.reasoning),
        )


class Price(msgspec.Struct, frozen=True, kw_only=True):
    """Integer micro-dollars per million tokens."""

    input: int
    output: int
    cached_read: int | None = None
    cache_write: int | None = None
    reasoning: int | None = None


class PriceTable(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: str
    entries: tuple[PriceEntry, ...]

    def lookup(self, provider: str, model: str, on: date | None = None) -> Price | None:
        candidates = [
            e
            for e in self.entries
            if e.provider == provider
            and (on is None or e.effective <= on)
            and fnmatch.fnmatchcase(model, e.model)
        ]
        if not candidates:
            return None
        best = max(candidates, key=lambda e: (e.model == model, len(e.model), e.effective))
        return best.price()


def load_default() -> PriceTable:
    raw = resources.files("skyroute.governance").joinpath("prices.json").read_bytes()
    return msgspec.json.decode(raw, type=PriceTable)


class _Overrides(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    entries: tuple[PriceEntry, ...] = ()
    version: str | None = None


def with_overrides(table: PriceTable, overrides: Mapping[str, object]) -> PriceTable:
    """Merge config's ``prices:`` section (``{"version"?, "entries": [...]}``) on top.

    Raises ``msgspec.ValidationError`` naming the path of a bad field."""
    # Round-trip through JSON so dates arrive as strings whatever the YAML loader made.
    parsed = msgspec.json.decode(json.dumps(overrides, default=str), type=_Overrides)
    replaced = {(e.provider, e.model) for e in parsed.entries}
    kept = tuple(e for e in table.entries if (e.provider, e.model) not in replaced)
    version = parsed.version or f"{table.version}+overrides"
    return PriceTable(version=version, entries=kept + parsed.entries)


def cost_micros(usage: Usage, price: Price) -> int:
    """Exact cost of one attempt in micro-dollars, rounded half up once at the end."""
    # Comparisons and no helpers (it runs once per attempt): the same sum as
    # plain * input + cached * (cached_read or input) + written * (cache_write or input)
    # + (completion - reasoning) * output + reasoning * (reasoning rate or output).
    cached = written = reasoning = 0
    prompt_details = usage.prompt_tokens_details
    if prompt_details is not None:
        cached, written = prompt_details.cached_tokens, prompt_details.cache_write_tokens
    completion = usage.completion_tokens
    completion_details = usage.completion_tokens_details
    if completion_details is not None:
        reasoning = completion_details.reasoning_tokens
    if reasoning > completion:
        reasoning = completion
    plain_input = usage.prompt_tokens - cached - written
    if plain_input < 0:
        plain_input = 0
    numerator = plain_input * price.input + (completion - reasoning) * price.output
    if cached:
        numerator += cached * (price.input if price.cached_read is None else price.cached_read)
    if written:
        numerator += written * (price.input if price.cache_write is None else price.cache_write)
    if reasoning:
        numerator += reasoning * (price.output if price.reasoning is None else price.reasoning)
    return (numerator + MILLION // 2) // MILLION  # half up


def estimate_micros(prompt_tokens: int, max_tokens: int, price: Price) -> int:
    """The most a request may cost, for a budget reservation: the whole prompt at the
    dearest input rate, every output token at the dearest output rate, rounded up."""
    # Comparisons rather than max(): this runs on every admitted request.
    input_rate, cache_write = price.input, price.cache_write or 0
    if cache_write > input_rate:
        input_rate = cache_write
    output_rate, reasoning = price.output, price.reasoning or 0
    if reasoning > output_rate:
        output_rate = reasoning
    numerator = prompt_tokens * input_rate + max_tokens * output_rate
    return -(-numerator // MILLION)
