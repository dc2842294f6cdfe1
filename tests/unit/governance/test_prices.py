"""The price table and exact integer costs."""

from __future__ import annotations

from datetime import date

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from skyroute.core.usage import CompletionDetails, PromptDetails, Usage
from skyroute.governance.prices import (
    Price,
    cost_micros,
    estimate_micros,
    load_default,
    to_micros,
    with_overrides,
)

GPT_4O = Price(input=2_500_000, output=10_000_000, cached_read=1_250_000)


def test_shipped_table_loads_and_every_entry_names_its_source() -> None:
    table = load_default()
    assert table.version
    assert all("verify" in e.source for e in table.entries)
    providers = {e.provider for e in table.entries}
    assert {"openai", "azure", "anthropic", "bedrock", "vertex", "gemini"} <= providers


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o"),
        ("openai", "gpt-4o-mini-2024-07-18"),
        ("anthropic", "claude-sonnet-4-20250514"),
        ("bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0"),
        ("bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0"),
        ("vertex", "claude-sonnet-4@20250514"),
        ("gemini", "gemini-2.5-flash"),
        ("vertex", "gemini-2.5-pro"),
        ("bedrock", "openai.gpt-oss-120b-1:0"),
    ],
)
def test_known_models_have_prices(provider: str, model: str) -> None:
    assert load_default().lookup(provider, model) is not None


def test_lookup_prefers_exact_then_longest_pattern_then_latest_effective() -> None:
    table = load_default()
    assert table.lookup("openai", "gpt-4o") == GPT_4O
    mini = table.lookup("openai", "gpt-4o-mini")
    assert mini is not None and mini.input == 150_000
    assert table.lookup("openai", "unknown-model") is None
    assert table.lookup("openai", "gpt-4o", on=date(2020, 1, 1)) is None


def test_overrides_replace_shipped_entries_and_name_bad_fields() -> None:
    table = load_default()
    merged = with_overrides(
        table,
        {
            "entries": [
                {
                    "provider": "openai",
                    "model": "gpt-4o",
                    "effective": date(2001, 1, 1),
                    "source": "our negotiated rate",
                    "input": "2.00",
                    "output": "8",
                }
            ]
        },
    )
    price = merged.lookup("openai", "gpt-4o")
    assert price == Price(input=2_000_000, output=8_000_000)
    assert merged.version.endswith("+overrides")
    with pytest.raises(msgspec.ValidationError, match=r"entries\[0\]"):
        with_overrides(table, {"entries": [{"provider": "openai", "typo": 1}]})
    with pytest.raises(msgspec.ValidationError):
        with_overrides(table, {"entries": [{**_entry(), "input": "0.0000001"}]})


def _entry() -> dict[str, str]:
    return {
        "provider": "p",
        "model": "m",
        "effective": "2025-01-01",
        "source": "s",
        "input": "1",
        "output": "2",
    }


def test_to_micros_is_exact_and_refuses_floats_in_disguise() -> None:
    assert to_micros("0.075") == 75_000
    assert to_micros("15") == 15_000_000
    for bad in ("1e-7", "-1", "NaN", "abc"):
        with pytest.raises(ValueError):
            to_micros(bad)


def test_cost_of_cached_and_plain_prompt_tokens() -> None:
    usage = Usage(
        prompt_tokens=1_000_000,
        completion_tokens=100_000,
        prompt_tokens_details=PromptDetails(cached_tokens=400_000),
    )
    # 600k at 2.50 + 400k at 1.25 + 100k at 10 = 1.5 + 0.5 + 1.0 USD
    assert cost_micros(usage, GPT_4O) == 3_000_000


def test_cache_writes_and_reasoning_are_not_double_counted() -> None:
    price = Price(
        input=3_000_000,
        output=15_000_000,
        cached_read=300_000,
        cache_write=3_750_000,
        reasoning=20_000_000,
    )
    usage = Usage(
        prompt_tokens=1000,
        completion_tokens=500,
        prompt_tokens_details=PromptDetails(cached_tokens=200, cache_write_tokens=300),
        completion_tokens_details=CompletionDetails(reasoning_tokens=100),
    )
    expected_numerator = 500 * 3_000_000 + 200 * 300_000 + 300 * 3_750_000
    expected_numerator += 400 * 15_000_000 + 100 * 20_000_000
    assert cost_micros(usage, price) == (expected_numerator + 500_000) // 1_000_000
    without_reasoning_rate = Price(input=3_000_000, output=15_000_000)
    plain = Usage(prompt_tokens=1000, completion_tokens=500)
    assert cost_micros(usage, without_reasoning_rate) == cost_micros(plain, without_reasoning_rate)


def test_rounding_is_half_up_once() -> None:
    price = Price(input=500_000, output=0)  # 0.5 micro-dollar per token
    assert cost_micros(Usage(prompt_tokens=1), price) == 1  # 0.5 rounds up
    assert cost_micros(Usage(prompt_tokens=3), price) == 2  # 1.5 rounds up
    assert cost_micros(Usage(prompt_tokens=2), price) == 1


@given(
    prompt=st.integers(0, 10**7),
    cached=st.integers(0, 10**7),
    completion=st.integers(0, 10**6),
    reasoning=st.integers(0, 10**6),
)
def test_estimate_bounds_the_actual_cost(
    prompt: int, cached: int, completion: int, reasoning: int
) -> None:
    price = Price(
        input=3_000_000,
        output=15_000_000,
        cached_read=300_000,
        cache_write=3_750_000,
        reasoning=20_000_000,
    )
    cached = min(cached, prompt)
    reasoning = min(reasoning, completion)
    usage = Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        prompt_tokens_details=PromptDetails(cached_tokens=cached),
        completion_tokens_details=CompletionDetails(reasoning_tokens=reasoning),
    )
    assert 0 <= cost_micros(usage, price) <= estimate_micros(prompt, completion, price)


def _rate(value: int | None, default: int) -> int:
    return default if value is None else value


_tokens = st.integers(-3, 10**6)
_rates = st.one_of(st.none(), st.integers(0, 10**8))


@given(
    prompt=_tokens,
    completion=_tokens,
    details=st.one_of(st.none(), st.tuples(_tokens, _tokens)),
    reasoning=st.one_of(st.none(), _tokens),
    rates=st.tuples(st.integers(0, 10**8), st.integers(0, 10**8), _rates, _rates, _rates),
)
def test_cost_is_the_documented_sum_rounded_half_up(
    prompt: int,
    completion: int,
    details: tuple[int, int] | None,
    reasoning: int | None,
    rates: tuple[int, int, int | None, int | None, int | None],
) -> None:
    # The plain formula from the module docstring, against the tuned code (odd counts too).
    price = Price(
        input=rates[0],
        output=rates[1],
        cached_read=rates[2],
        cache_write=rates[3],
        reasoning=rates[4],
    )
    usage = Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        prompt_tokens_details=None
        if details is None
        else PromptDetails(cached_tokens=details[0], cache_write_tokens=details[1]),
        completion_tokens_details=None
        if reasoning is None
        else CompletionDetails(reasoning_tokens=reasoning),
    )
    cached, written = details or (0, 0)
    thinking = min(reasoning or 0, completion)
    numerator = (
        max(0, prompt - cached - written) * price.input
        + cached * _rate(price.cached_read, price.input)
        + written * _rate(price.cache_write, price.input)
        + (completion - thinking) * price.output
        + thinking * _rate(price.reasoning, price.output)
    )
    assert cost_micros(usage, price) == (numerator + 500_000) // 1_000_000
