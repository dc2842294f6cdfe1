"""Rules of Claude's request format that hold wherever Claude is called: directly, on
Vertex, and on Bedrock through Converse or InvokeModel."""

from __future__ import annotations

import msgspec

from skyroute.core.chat import ReasoningConfig
from skyroute.core.errors import InvalidRequest

# Thinking budget per OpenAI-style effort. 1024 is Claude's minimum (protocols.md §6).
EFFORT_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384}
MIN_BUDGET = 1024


def thinking_budget(config: ReasoningConfig, max_tokens: int | None, *, param: str) -> int:
    """The ``budget_tokens`` to ask for. It must be >= 1024 and below ``max_tokens``, which
    counts the thinking too (as OpenAI's ``max_completion_tokens`` does): a budget derived
    from an effort shrinks to fit; an explicit one that cannot fit is a 400 on ``param``."""
    budget = config.budget_tokens or EFFORT_BUDGET[config.effort or "medium"]
    if max_tokens is not None and budget >= max_tokens and config.budget_tokens is None:
        budget = max(MIN_BUDGET, max_tokens // 2)
    if max_tokens is not None and budget >= max_tokens:
        raise InvalidRequest(
            f"With reasoning on, this model needs more than {budget} max tokens.", param=param
        )
    return budget


def tool_input(arguments: str, param: str) -> msgspec.Raw:
    """Tool-call arguments as the JSON object a ``tool_use`` / ``toolUse`` block's
    ``input`` wants, kept verbatim; empty arguments are ``{}``."""
    if not arguments.strip():
        return msgspec.Raw(b"{}")
    try:
        raw = msgspec.json.decode(arguments, type=msgspec.Raw)
    except msgspec.DecodeError:
        raise InvalidRequest(f"'{param}' is not valid JSON.", param=param) from None
    if not bytes(raw).startswith(b"{"):
        raise InvalidRequest(f"'{param}' must be a JSON object.", param=param)
    return raw
