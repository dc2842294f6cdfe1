"""Rows for store tests."""

from __future__ import annotations

from typing import Any

from skyroute.store import KeyRow, UsageRow

# Strings shaped like SQL injection; they must be stored and found verbatim.
INJECTION = [
    "'; DROP TABLE usage_ledger; --",
    "x' OR '1'='1",
    'Robert"); DELETE FROM api_keys; --',
    "%s %(name)s :param ? $1",
    "\\'; SELECT pg_sleep(10); --",
]


def usage_row(i: int, *, attempt: int = 0, **overrides: Any) -> UsageRow:
    fields: dict[str, Any] = {
        "request_id": f"req-{i}",
        "attempt": attempt,
        "logical_request_id": f"logical-{i}",
        "key_id": f"key-{i % 3}",
        "team_id": f"team-{i % 2}",
        "model": "gpt-4o",
        "deployment": "azure-eastus",
        "provider": "azure",
        "upstream_model": "gpt-4o-2024-08-06",
        "status": 200,
        "prompt_tokens": 100 + i,
        "completion_tokens": 20,
        "cached_tokens": 5,
        "cache_write_tokens": 1,
        "reasoning_tokens": 2,
        "cost_micros": 1_000 + i,
        "latency_ms": 250,
        "ttft_ms": 40,
        "stream": i % 2 == 0,
        "finish_reason": "stop",
    }
    fields.update(overrides)
    return UsageRow(**fields)


def key_row(i: int, **overrides: Any) -> KeyRow:
    fields: dict[str, Any] = {
        "id": f"key-{i}",
        "key_hash": f"{i:064x}",
        "prefix": "sk-sr-",
        "last4": f"{i:04d}"[-4:],
        "role": "member",
        "name": f"key number {i}",
    }
    fields.update(overrides)
    return KeyRow(**fields)
