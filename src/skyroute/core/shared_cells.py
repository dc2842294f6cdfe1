"""Counters shared by the worker processes of one gateway on one host.

``skyroute serve --workers N`` forks N processes that accept on one port. Rate limits,
budgets and deployment quotas must hold across all of them, so their counters live in
shared memory instead of each process's heap.

Decided, and why:

- **An anonymous shared mapping, made before the fork.** Every worker sees the same pages;
  nothing is on disk and nothing is left to clean up; a worker forked again after a crash
  maps the same pages.
- **A POSIX record lock (``lockf``) on an unnamed temporary file** guards every change
  (``SharedLock``; the tables of one gateway share one, and a process may take it again
  while it holds it, so a caller can make several changes for the price of one round trip).
  The kernel drops it when its holder dies, so a killed worker never wedges the others
  (a worker killed inside its few-microsecond critical section can leave one request
  miscounted, never a lock held). Record locks belong to a process, which is what is
  wanted: each worker is one thread, and a forked child does not share its parent's lock.
- **A table of fixed-size records**, one per name (``key:<id>``, ``deployment:<key>:rpm``),
  found by open addressing on a 128-bit BLAKE2b digest of the name. Records are never
  moved or freed, so each process remembers where a name's record is.
- Cells are signed 64-bit integers, read and written through a ``memoryview``.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import tempfile
from collections.abc import Iterator
from types import TracebackType

from skyroute.core.errors import ServiceUnavailable

_DIGEST_CELLS = 2
_TRIES = 64  # non-blocking tries (~1 µs each) before waiting for the lock in the kernel
_MASK = (1 << 64) - 1


class TableFull(ServiceUnavailable):
    """Every record of a shared table is taken: requests that need a new one get a 503
    until the gateway restarts with a larger ``server.shared_subjects``."""


class SharedLock:
    """The cross-process lock; taken again by the process holding it, it only counts.

    Each process has its own copy of this object after the fork, so the count is per
    process; the supervisor never takes the lock, so every worker starts at zero.
    """

    __slots__ = ("_depth", "_fd", "_file")

    def __init__(self) -> None:
        # Unnamed (O_TMPFILE): nothing to clean up; closed with the lock or by GC.
        self._file = tempfile.TemporaryFile(prefix="skyroute-shared-")  # noqa: SIM115
        self._fd = self._file.fileno()
        self._depth = 0

    def __enter__(self) -> None:
        if self._depth == 0:
            self._acquire()
        self._depth += 1

    def _acquire(self) -> None:
        # Held for a few microseconds at a time, so a busy lock is usually free again
        # after a few tries: asking again costs less than sleeping and being woken
        # (measured with two workers: 12% of takes found it busy, waits fell from ~67 µs
        # to a few). A holder that was preempted keeps it longer: then wait in the kernel.
        fd = self._fd
        for _ in range(_TRIES):
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError:  # EAGAIN or EACCES: held by another process
                pass
        fcntl.lockf(fd, fcntl.LOCK_EX)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth == 0:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._file.close()


class SharedTable:
    """``capacity`` records of ``record_cells`` cells each, shared with forked children.

    ``with table:`` holds the cross-process lock (``lock``, or one of its own);
    ``record(name)`` must be called under it.
    """

    __slots__ = ("_lock", "_map", "_records", "_stride", "capacity", "cells", "record_cells")

    def __init__(self, record_cells: int, capacity: int, lock: SharedLock | None = None) -> None:
        if record_cells < 1 or capacity < 1:
            raise ValueError("need record_cells >= 1 and capacity >= 1")
        self.record_cells = record_cells
        self.capacity = capacity
        self._stride = _DIGEST_CELLS + record_cells
        # Untouched pages cost nothing: a table sized for many subjects stays small in RSS.
        self._map = mmap.mmap(-1, self._stride * capacity * 8, flags=mmap.MAP_SHARED)
        self.cells = memoryview(self._map).cast("q")
        self._lock = SharedLock() if lock is None else lock
        self._records: dict[str, int] = {}

    def __enter__(self) -> SharedTable:
        self._lock.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._lock.__exit__(kind, value, traceback)

    def record(self, name: str) -> int:
        """The index of the first cell of ``name``'s record, claiming one if it is new."""
        found = self._records.get(name)
        if found is not None:
            return found
        digest = hashlib.blake2b(name.encode(), digest_size=16).digest()
        high = int.from_bytes(digest[:8], "little", signed=True)
        low = int.from_bytes(digest[8:], "little", signed=True)
        if high == 0 and low == 0:  # (0, 0) marks a free slot
            low = 1
        cells, stride = self.cells, self._stride
        slot = (high & _MASK) % self.capacity
        for _ in range(self.capacity):
            base = slot * stride
            if cells[base] == high and cells[base + 1] == low:
                break
            if cells[base] == 0 and cells[base + 1] == 0:
                cells[base], cells[base + 1] = high, low
                break
            slot = (slot + 1) % self.capacity
        else:
            raise TableFull(
                f"The gateway's shared counters are full ({self.capacity} records); "
                "its operator must raise server.shared_subjects.",
                retry_after=60.0,
            )
        self._records[name] = found = base + _DIGEST_CELLS
        return found

    def records(self) -> Iterator[int]:
        """The first cell of every record taken so far (by any process)."""
        cells, stride = self.cells, self._stride
        for base in range(0, stride * self.capacity, stride):
            if cells[base] != 0 or cells[base + 1] != 0:
                yield base + _DIGEST_CELLS

    def close(self) -> None:
        """Unmap the cells (the lock is closed by whoever made it, or with the table)."""
        self.cells.release()
        self._map.close()


class CellWindow:
    """A sliding window of ``buckets`` counters in shared cells, laid out as
    ``[newest bucket index, total, ring...]`` (``CellWindow.cells(buckets)`` of them).

    The same contract as ``governance.limits.Window`` and ``routing.quota.SlidingWindow``:
    bucket ``i`` counts the events with ``floor(t / width) == i``, and the window at
    bucket ``current`` is the ``buckets`` newest buckets up to it. The ring is cleared
    lazily as time passes over it. Callers hold the table's lock.
    """

    __slots__ = ("_base", "_cells", "buckets", "width")

    def __init__(self, cells: memoryview, base: int, buckets: int, width: float) -> None:
        self._cells = cells
        self._base = base
        self.buckets = buckets
        self.width = width

    @staticmethod
    def cells_for(buckets: int) -> int:
        return buckets + 2

    def advance(self, current: int) -> int:
        """Move the ring forward to bucket ``current``; the newest bucket index after it
        (another process may have moved it further already)."""
        cells, base, size = self._cells, self._base, self.buckets
        head = cells[base]
        if current <= head:
            return head
        ring = base + 2
        if current - head >= size:
            for slot in range(ring, ring + size):
                cells[slot] = 0
            cells[base + 1] = 0
        else:
            total = cells[base + 1]
            for index in range(head + 1, current + 1):
                slot = ring + index % size
                total -= cells[slot]
                cells[slot] = 0
            cells[base + 1] = total
        cells[base] = current
        return current

    def used(self, current: int) -> int:
        self.advance(current)
        return self._cells[self._base + 1]

    def add_at(self, current: int, amount: int) -> None:
        head = self.advance(current)
        if current <= head - self.buckets:  # too old for the ring: count it as newest
            current = head
        cells = self._cells
        cells[self._base + 2 + current % self.buckets] += amount
        cells[self._base + 1] += amount

    def adjust(self, bucket: int, delta: int) -> bool:
        """Change a bucket still in the ring (never below zero); False if it has left."""
        cells, base = self._cells, self._base
        head = cells[base]
        if not head - self.buckets < bucket <= head:
            return False
        slot = base + 2 + bucket % self.buckets
        count = cells[slot]
        changed = max(0, count + delta)
        cells[slot] = changed
        cells[base + 1] += changed - count
        return True

    def retry_after_at(self, current: int, now: float, limit: int, amount: int) -> float:
        """Seconds until ``amount`` more fits under ``limit``: 0 if it fits now, the
        whole window if it never can."""
        head = self.advance(current)
        cells, ring, size = self._cells, self._base + 2, self.buckets
        excess = cells[self._base + 1] + amount - limit
        if excess <= 0:
            return 0.0
        for bucket in range(head - size + 1, head + 1):
            excess -= cells[ring + bucket % size]
            if excess <= 0:
                return max(0.0, (bucket + size) * self.width - now)
        return size * self.width
