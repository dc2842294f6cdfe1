"""Full-jitter exponential backoff between retries of one deployment."""

from __future__ import annotations

import random

# 2.0 ** 1024 overflows a float; any cap is reached long before this many doublings.
_MAX_DOUBLINGS = 1000


def full_jitter(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """A delay drawn uniformly from ``[0, min(cap, base * 2**attempt)]`` ("Exponential
    Backoff And Jitter", AWS Architecture Blog, 2015): retries of many clients spread
    out instead of arriving together."""
    doublings = min(max(attempt, 0), _MAX_DOUBLINGS)
    return rng.uniform(0.0, min(cap, base * 2.0**doublings))
