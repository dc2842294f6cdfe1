"""Rate limits per key and per team: requests and tokens per minute, parallel requests.

Decided, and why:

- The backend is an interface (``LimitBackend``) because one process keeps counters in
  memory and many replicas will keep them in Redis (atomic Lua, Redis server time). Both
  keep this contract; only the memory backend lives here.
- Windows slide over ``buckets`` sub-windows, as in ``routing/quota.py``: an event stops
  counting between ``window - width`` and ``window`` after it happened.
- **Tokens are checked before dispatch** with an estimate (prompt estimate + max tokens) and
  settled to the real count afterwards; the difference is written back into the bucket the
  estimate went to while it is still in the window, and excess that arrives later is
  counted now. An estimate larger than the whole limit is admitted only into an empty window
  (otherwise it could never run), and then counts in full.
- A request counts against RPM when admitted, even if it later fails: the limit is about
  load on us and the upstream. ``release`` (no usage produced) gives back the token estimate
  and the parallel slot; ``settle`` gives back the slot and fixes the tokens.
- Admission checks every subject (the key and its team) before committing to any, so a
  team limit caps its keys and a refusal leaves no trace.
- ``Denied.retry_after`` is the time until enough of the window has slid out for the request
  to fit; for parallel limits it is a short fixed hint, since we cannot know.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import msgspec

PARALLEL_RETRY_AFTER = 1.0


class LimitSpec(msgspec.Struct, frozen=True, kw_only=True):
    """``None`` means unlimited."""

    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None


class LimitSubject(msgspec.Struct, frozen=True):
    """One limit holder (``"key:<id>"`` or ``"team:<id>"``) and its current limits."""

    id: str
    spec: LimitSpec


class Admission(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    subjects: tuple[str, ...]
    est_tokens: int
    bucket: int  # absolute index of the sub-window the estimate went to


class Denied(msgspec.Struct, frozen=True, kw_only=True):
    subject: str
    reason: Literal["rpm", "tpm", "parallel"]
    retry_after: float


class LimitBackend(Protocol):
    def admit(
        self, subjects: Sequence[LimitSubject], now: float, est_tokens: int
    ) -> Admission | Denied: ...

    def settle(self, admission: Admission, now: float, actual_tokens: int) -> bool: ...

    def release(self, admission: Admission) -> bool: ...


class OpenAdmissions:
    """The admissions a backend has made and not yet settled or released."""

    __slots__ = ("_ids", "_open")

    def __init__(self) -> None:
        self._open: dict[int, Admission] = {}
        self._ids = itertools.count(1)

    def open(self, subjects: Sequence[LimitSubject], est_tokens: int, bucket: int) -> Admission:
        admission = Admission(
            id=next(self._ids),
            subjects=tuple(s.id for s in subjects),
            est_tokens=est_tokens,
            bucket=bucket,
        )
        self._open[admission.id] = admission
        return admission

    def close(self, admission: Admission) -> bool:
        """False if it was closed already (a second settle or release does nothing)."""
        return self._open.pop(admission.id, None) is not None


class Window:
    """Counts per absolute sub-window index, only the last ``buckets`` of them kept."""

    # ``_total`` is the sum of ``_counts``; ``_oldest`` its smallest key (or +inf), so the
    # common call finds nothing to expire without looking at every sub-window.
    __slots__ = ("_counts", "_oldest", "_total", "buckets", "width")

    def __init__(self, window: float = 60.0, buckets: int = 60) -> None:
        if not window > 0 or buckets < 1:
            raise ValueError("need window > 0 and buckets >= 1")
        self.width = window / buckets
        self.buckets = buckets
        self._counts: dict[int, int] = {}
        self._total = 0
        self._oldest = math.inf

    def index(self, now: float) -> int:
        return math.floor(now / self.width)

    def used(self, now: float) -> int:
        self._expire(self.index(now))
        return self._total

    def add(self, now: float, amount: int) -> None:
        self.add_at(self.index(now), amount)

    def add_at(self, current: int, amount: int) -> None:
        """``add`` at a sub-window index the caller has computed already."""
        self._expire(current)
        counts = self._counts
        counts[current] = counts.get(current, 0) + amount
        self._total += amount
        if current < self._oldest:
            self._oldest = current

    def adjust(self, bucket: int, delta: int) -> bool:
        """Change an existing sub-window's count (never below zero); False if it is gone."""
        count = self._counts.get(bucket)
        if count is None:
            return False
        changed = max(0, count + delta)
        self._counts[bucket] = changed
        self._total += changed - count
        return True

    def live_at(self, bucket: int, current: int) -> bool:
        """Whether ``bucket`` is still inside the window ending at index ``current``."""
        return bucket > current - self.buckets

    def retry_after(self, now: float, limit: int, amount: int) -> float:
        """Seconds until ``amount`` more fits under ``limit``: 0 if it fits now, the whole
        window if it never can."""
        return self.retry_after_at(self.index(now), now, limit, amount)

    def retry_after_at(self, current: int, now: float, limit: int, amount: int) -> float:
        """``retry_after`` at a sub-window index (of ``now``) the caller has computed."""
        self._expire(current)
        excess = self._total + amount - limit
        if excess <= 0:
            return 0.0
        for bucket in sorted(self._counts):
            excess -= self._counts[bucket]
            if excess <= 0:
                return max(0.0, (bucket + self.buckets) * self.width - now)
        return self.buckets * self.width

    def _expire(self, current: int) -> None:
        oldest = current - self.buckets
        if self._oldest > oldest:
            return
        for bucket in [b for b in self._counts if b <= oldest]:
            self._total -= self._counts.pop(bucket)
        self._oldest = min(self._counts, default=math.inf)


@dataclass(slots=True)
class _State:
    requests: Window = field(default_factory=Window)
    tokens: Window = field(default_factory=Window)
    parallel: int = 0


class MemoryLimits:
    """``LimitBackend`` in memory, for one process; single-threaded, so each call is atomic."""

    def __init__(self, window: float = 60.0, buckets: int = 60) -> None:
        self._window = window
        self._buckets = buckets
        # The sub-window width, as every ``Window`` here computes it: one index for all.
        self._width = window / buckets
        self._states: dict[str, _State] = {}
        self._book = OpenAdmissions()

    def admit(
        self, subjects: Sequence[LimitSubject], now: float, est_tokens: int
    ) -> Admission | Denied:
        if est_tokens < 0:
            raise ValueError("est_tokens must not be negative")
        current = math.floor(now / self._width)
        states = [self._states.get(s.id) or self._state(s.id) for s in subjects]
        denial = longest_refusal(subjects, states, current, now, est_tokens)
        if denial is not None:
            return denial
        for state in states:
            state.requests.add_at(current, 1)
            state.tokens.add_at(current, est_tokens)
            state.parallel += 1
        return self._book.open(subjects, est_tokens, current)

    def settle(self, admission: Admission, now: float, actual_tokens: int) -> bool:
        """Correct the token estimate to the real count and free the parallel slot."""
        if actual_tokens < 0:
            raise ValueError("actual_tokens must not be negative")
        if not self._book.close(admission):
            return False
        delta = actual_tokens - admission.est_tokens
        bucket = admission.bucket
        current = math.floor(now / self._width)
        for subject_id in admission.subjects:
            state = self._states[subject_id]
            state.parallel -= 1
            tokens = state.tokens
            adjusted = tokens.live_at(bucket, current) and tokens.adjust(bucket, delta)
            if not adjusted and delta > 0:
                tokens.add_at(current, delta)  # its sub-window has gone: count the excess now
        return True

    def release(self, admission: Admission) -> bool:
        """The request produced no usage: give back its token estimate and its slot."""
        if not self._book.close(admission):
            return False
        for subject_id in admission.subjects:
            state = self._states[subject_id]
            state.parallel -= 1
            state.tokens.adjust(admission.bucket, -admission.est_tokens)
        return True

    def in_flight(self, subject_id: str) -> int:
        state = self._states.get(subject_id)
        return state.parallel if state else 0

    def tokens_used(self, subject_id: str, now: float) -> int:
        state = self._states.get(subject_id)
        return state.tokens.used(now) if state else 0

    def _state(self, subject_id: str) -> _State:
        state = self._states.get(subject_id)
        if state is None:
            state = self._states[subject_id] = _State(
                Window(self._window, self._buckets), Window(self._window, self._buckets)
            )
        return state


class SlidingCounts(Protocol):
    """What a limit check reads of a window: ``Window`` here, a shared one for workers."""

    buckets: int
    width: float

    def retry_after_at(self, current: int, now: float, limit: int, amount: int) -> float: ...


class Counts(Protocol):
    """One subject's counters as a limit check reads them."""

    @property
    def parallel(self) -> int: ...

    @property
    def requests(self) -> SlidingCounts: ...

    @property
    def tokens(self) -> SlidingCounts: ...


def longest_refusal(
    subjects: Sequence[LimitSubject],
    counts: Sequence[Counts],
    current: int,
    now: float,
    est: int,
) -> Denied | None:
    """None if one more request of ``est`` tokens fits every subject (each with its
    counters, at sub-window ``current`` of ``now``); else the refusal with the longest
    wait. Changes nothing but expiry."""
    denial: Denied | None = None
    for subject, counters in zip(subjects, counts, strict=True):
        found = _check(subject, counters, current, now, est)
        if found is not None and (denial is None or found.retry_after > denial.retry_after):
            denial = found
    return denial


def _check(
    subject: LimitSubject, counts: Counts, current: int, now: float, est: int
) -> Denied | None:
    """Whether one more request of ``est`` tokens fits ``subject``'s limits; the denial
    with its wait if not."""
    spec = subject.spec
    if spec.max_parallel is not None and counts.parallel >= spec.max_parallel:
        return Denied(subject=subject.id, reason="parallel", retry_after=PARALLEL_RETRY_AFTER)
    if spec.rpm is not None:
        wait = counts.requests.retry_after_at(current, now, spec.rpm, 1)
        if wait > 0:
            return Denied(subject=subject.id, reason="rpm", retry_after=wait)
    if spec.tpm is not None:
        # At least one token, so a zero estimate still needs some room left.
        tokens = counts.tokens
        wait = tokens.retry_after_at(current, now, spec.tpm, min(max(est, 1), spec.tpm))
        if wait > 0 or spec.tpm < 1:
            full = tokens.buckets * tokens.width
            return Denied(subject=subject.id, reason="tpm", retry_after=wait or full)
    return None
