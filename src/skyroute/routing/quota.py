"""Requests-per-minute and tokens-per-minute accounting for one deployment.

A ``SlidingWindow`` keeps a ring of ``buckets`` counters, each ``window / buckets``
seconds wide. Bucket ``i`` holds the events whose time ``t`` has ``floor(t / width) == i``;
the window at ``now`` is the ``buckets`` newest buckets up to and including now's. So an
event stops counting between ``window - width`` and ``window`` seconds after it happened:
slightly early, never late, which is the safe side against a provider's own limiter.

The ring is advanced lazily when it is read or written, clearing only the buckets that
time has passed over, so each call costs O(1) amortised and at most O(buckets).

With ``--workers N`` the windows are ``SharedSlidingWindow``s, the same ring in memory the
workers share (``core/shared_cells.py``), so a deployment's quota holds for all of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, Protocol

from skyroute.core.shared_cells import CellWindow, SharedTable

QuotaKind = Literal["rpm", "tpm"]


class SlidingWindow:
    __slots__ = ("_counts", "_head", "_total", "_width", "limit", "window")

    def __init__(self, limit: int, window: float = 60.0, buckets: int = 60) -> None:
        if limit < 0:
            raise ValueError("limit must not be negative")
        if not window > 0 or buckets < 1:
            raise ValueError("need window > 0 and buckets >= 1")
        self.limit = limit
        self.window = window
        self._width = window / buckets
        self._counts = [0] * buckets
        self._total = 0
        self._head: int | None = None  # absolute index of the newest bucket seen

    def used(self, now: float) -> int:
        self._advance(now)
        return self._total

    def headroom(self, now: float) -> int:
        """How much of ``limit`` is left in the window ending at ``now`` (never negative)."""
        return max(0, self.limit - self.used(now))

    def add(self, now: float, amount: int = 1) -> None:
        head = self._advance(now)
        self._counts[head % len(self._counts)] += amount
        self._total += amount

    def _advance(self, now: float) -> int:
        """Move the ring forward to ``now`` and return the index of the current bucket."""
        index = math.floor(now / self._width)
        head = self._head
        if head is None:
            self._head = index
            return index
        if index <= head:
            # The clock is monotonic, so this is the same bucket; were it ever to step
            # back, counting into the newest bucket keeps the total honest.
            return head
        size = len(self._counts)
        if index - head >= size:
            self._counts = [0] * size
            self._total = 0
        else:
            for i in range(head + 1, index + 1):
                slot = i % size
                self._total -= self._counts[slot]
                self._counts[slot] = 0
        self._head = index
        return index


class QuotaWindow(Protocol):
    def headroom(self, now: float) -> int: ...

    def add(self, now: float, amount: int = 1) -> None: ...


# (limit, "rpm" or "tpm") -> the window counting against it
WindowFactory = Callable[[int, QuotaKind], QuotaWindow]


def _own_window(limit: int, kind: QuotaKind) -> QuotaWindow:
    return SlidingWindow(limit)


class SharedSlidingWindow:
    """``SlidingWindow``'s contract over a shared table record named ``name``."""

    __slots__ = ("_table", "_width", "_window", "limit")

    def __init__(
        self, table: SharedTable, name: str, limit: int, window: float = 60.0, buckets: int = 60
    ) -> None:
        if limit < 0:
            raise ValueError("limit must not be negative")
        if table.record_cells != CellWindow.cells_for(buckets):
            raise ValueError("the table's records are not laid out for this window")
        self.limit = limit
        self._table = table
        self._width = window / buckets
        with table:
            base = table.record(name)
        self._window = CellWindow(table.cells, base, buckets, self._width)

    def used(self, now: float) -> int:
        with self._table:
            return self._window.used(math.floor(now / self._width))

    def headroom(self, now: float) -> int:
        return max(0, self.limit - self.used(now))

    def add(self, now: float, amount: int = 1) -> None:
        with self._table:
            self._window.add_at(math.floor(now / self._width), amount)


def shared_windows(table: SharedTable, deployment: str) -> WindowFactory:
    """Windows for ``deployment`` (its key) that every worker sharing ``table`` counts in."""

    def window(limit: int, kind: QuotaKind) -> QuotaWindow:
        return SharedSlidingWindow(table, f"deployment:{deployment}:{kind}", limit)

    return window


class DeploymentQuota:
    """The configured ``rpm`` and ``tpm`` of one deployment; ``None`` means unlimited."""

    __slots__ = ("_requests", "_tokens")

    def __init__(
        self, rpm: int | None, tpm: int | None, windows: WindowFactory = _own_window
    ) -> None:
        self._requests = windows(rpm, "rpm") if rpm is not None else None
        self._tokens = windows(tpm, "tpm") if tpm is not None else None

    def has_headroom(self, now: float, est_tokens: int = 0) -> bool:
        """Whether one more request of about ``est_tokens`` tokens fits. Without an
        estimate, any tokens left will do: the request is let through and its real usage
        is recorded afterwards."""
        if self._requests is not None and self._requests.headroom(now) < 1:
            return False
        if self._tokens is not None:
            left = self._tokens.headroom(now)
            return left >= est_tokens if est_tokens > 0 else left > 0
        return True

    def requests_left(self, now: float) -> int | None:
        return self._requests.headroom(now) if self._requests is not None else None

    def tokens_left(self, now: float) -> int | None:
        return self._tokens.headroom(now) if self._tokens is not None else None

    def record_request(self, now: float) -> None:
        if self._requests is not None:
            self._requests.add(now, 1)

    def record_tokens(self, now: float, tokens: int) -> None:
        if self._tokens is not None and tokens > 0:
            self._tokens.add(now, tokens)
