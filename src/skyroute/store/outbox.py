"""The durable local outbox: usage rows go to disk first, to the ledger in the background.

The request path must not wait for the database, and a database outage must not lose
spend. So ``Outbox.append`` writes the row as one JSON line to a local segment file and
returns; ``OutboxWriter`` reads the lines back and ships them with ``insert_usage``.

Decisions, and why:

- **Durability: a process crash, not an OS crash.** ``append`` is one ``os.write`` to a
  file opened with O_APPEND and no fsync, a few microseconds. Once it returns the bytes
  are in the kernel's page cache and survive SIGKILL or an OOM kill of the gateway; a
  kernel panic or power loss may lose the last seconds. ``fsync=True`` closes that gap
  at the price of a disk flush per row.
- **Order.** Rows are shipped in the order they were appended; the checkpoint is one
  position, "<segment> <offset>" of the first byte not yet shipped, replaced atomically
  after each batch is stored.
- **At least once, deduplicated.** A crash between storing a batch and writing the
  checkpoint re-sends that batch on restart. ``insert_usage`` is idempotent on
  (request_id, attempt), so a re-sent row is counted as a duplicate, never stored twice.
- **Bounded memory.** Nothing but positions and counts is kept in memory; the writer
  reads at most ``batch_rows`` rows back from the files per batch, however long the
  database is down. The disk is the buffer.
- **Recovery.** One process owns a directory (``flock`` on ``<dir>/lock``, released by
  the kernel when the process dies). On open, a trailing line without its newline is a
  write that never returned and is cut off; a line that does not decode as a
  ``UsageRow`` is copied to ``corrupt.jsonl`` and blanked in place, so it is reported
  once and never blocks the rows after it.

Files: ``<dir>/segment-000001.jsonl`` and up (a new one once the current reaches
``segment_bytes``; shipped ones are deleted), ``<dir>/checkpoint``, ``<dir>/lock``,
``<dir>/corrupt.jsonl``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from skyroute.store.errors import StoreUnavailable
from skyroute.store.ledger import UsageRow, insert_usage
from skyroute.store.outbox_files import (
    Position,
    fsync_directory,
    open_segment,
    read_batch,
    recover,
    segment_numbers,
    segment_path,
)

logger = logging.getLogger("skyroute.outbox")

_ENCODER = msgspec.json.Encoder()

T = TypeVar("T")


class OutboxLocked(RuntimeError):
    """Another live process holds the outbox directory."""

    def __init__(self, directory: Path) -> None:
        super().__init__(
            f"outbox directory {directory} is in use by another process "
            f"(it holds the lock on {directory / 'lock'}); give each gateway process its own"
        )
        self.directory = directory


class Outbox:
    """Segment files of usage rows not yet in the ledger; one owner process per directory.

    ``append`` is synchronous and meant for the event loop thread; ``close`` after the
    writer's ``aclose``.
    """

    def __init__(
        self, directory: str | Path, *, segment_bytes: int = 16 << 20, fsync: bool = False
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._buffer = bytearray()
        # Set by every append; the writer waits on it when nothing is pending.
        self._wakeup = asyncio.Event()
        self._lock_fd = _lock(self.directory)
        try:
            self._cursor, found = recover(self.directory, fsync=fsync)
            segments = segment_numbers(self.directory)
            self._segment = segments[-1] if segments else max(self._cursor.segment, 1)
            self._fd = open_segment(self.directory, self._segment)
            self._size = os.fstat(self._fd).st_size
        except BaseException:
            os.close(self._lock_fd)
            raise
        # Rows appended (or found at open) and rows shipped, both counted since open;
        # shipping is in order, so "everything appended before now" is a number.
        self._appended = found
        self._shipped = 0

    @property
    def pending(self) -> int:
        """Rows appended (or found at open) and not yet shipped."""
        return self._appended - self._shipped

    def append(self, row: UsageRow) -> None:
        """Write ``row`` to the current segment; it survives a process crash once this returns.

        Raises ``OSError`` when the disk refuses the write (full, say); then the row is not
        in the outbox and the segment is as it was.
        """
        if self._fd < 0:
            raise RuntimeError(f"outbox {self.directory} is closed")
        if self._size >= self._segment_bytes:
            self._rotate()
        buffer = self._buffer
        _ENCODER.encode_into(row, buffer)
        buffer.extend(b"\n")
        _write_all(self._fd, buffer, self._size)
        if self._fsync:
            os.fsync(self._fd)
        self._size += len(buffer)
        self._appended += 1
        self._wakeup.set()

    def close(self) -> None:
        """Close the segment and release the lock; rows not shipped stay for the next open."""
        if self._fd >= 0:
            os.close(self._fd)
            os.close(self._lock_fd)
            self._fd = -1

    # The writer's side: it reads between ``_cursor`` and ``_end()`` in a thread, and
    # reports progress with ``_advance`` and ``_persist``.

    def _end(self) -> Position:
        """The first byte after the last row whose ``append`` returned."""
        return Position(self._segment, self._size)

    def _advance(self, end: Position, consumed: int) -> None:
        self._cursor = end
        self._shipped += consumed

    def _persist(self, cursor: Position) -> None:
        """Write the checkpoint atomically and delete the segments wholly before it.

        Blocking file I/O: the writer runs it in a thread.
        """
        temporary = self.directory / "checkpoint.tmp"
        with open(temporary, "w", encoding="ascii") as file:
            file.write(f"{cursor.segment} {cursor.offset}\n")
            if self._fsync:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temporary, self.directory / "checkpoint")
        if self._fsync:
            fsync_directory(self.directory)
        for number in segment_numbers(self.directory):
            if number >= cursor.segment:
                break
            segment_path(self.directory, number).unlink(missing_ok=True)

    def _rotate(self) -> None:
        # Open the next segment before closing this one: if that fails, appends go on here.
        fd = open_segment(self.directory, self._segment + 1)
        os.close(self._fd)
        self._fd, self._segment, self._size = fd, self._segment + 1, 0
        if self._fsync:
            fsync_directory(self.directory)


class OutboxWriter:
    """Ships the outbox to the ledger in batches, in order, riding out database outages.

    ``engine`` is read for every batch, so it may be replaced while running. Counters:
    ``shipped`` (rows the ledger newly stored), ``duplicates`` (rows it already had),
    ``dead_lettered`` (rows it quarantined), ``failures`` (batch attempts that failed) and
    ``outage`` (whether the ledger is unavailable right now). A batch that is not full
    waits ``linger`` seconds for more rows first (``flush`` cuts the wait short): a busy
    gateway ships one INSERT per thousand requests rather than one per request, and a
    quiet one pays a batch's fixed cost (a transaction, a commit) once a second. Measured
    at concurrency 1: with 0.1 s, the requests that met a batch made the added p99 0.5-1 ms;
    with 1 s, 0.3 ms (``bench/ci_guard.py``).
    """

    def __init__(
        self,
        outbox: Outbox,
        engine: AsyncEngine,
        *,
        batch_rows: int = 1000,
        interval: float = 0.2,
        max_backoff: float = 5.0,
        linger: float = 1.0,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.outbox = outbox
        self.engine = engine
        self._batch_rows = batch_rows
        # How long to let rows gather before shipping a batch that is not full: one
        # INSERT per request would cost more CPU than the request itself.
        self._linger = linger
        # Set by ``flush``: ship now instead of lingering.
        self._hurry = asyncio.Event()
        self._interval = interval
        self._max_backoff = max_backoff
        self._sleep = sleep
        self._progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.shipped = 0
        self.duplicates = 0
        self.dead_lettered = 0
        self.failures = 0
        self.outage = False

    def start(self) -> None:
        """Start the background task (once); ``aclose`` ends it."""
        if self._task is not None:
            raise RuntimeError("outbox writer already started")
        self._task = asyncio.create_task(self._run(), name="skyroute-outbox-writer")

    async def flush(self, timeout: float) -> bool:
        """Wait until every row appended before this call is stored; False on timeout."""
        target = self.outbox._appended
        self._hurry.set()
        try:
            async with asyncio.timeout(timeout):
                while self.outbox._shipped < target:
                    self._progress.clear()
                    await self._progress.wait()
        except TimeoutError:
            return False
        finally:
            self._hurry.clear()
        return True

    async def aclose(self, timeout: float = 5.0) -> None:
        """Try to ship what is pending within ``timeout``, then stop the task and await it."""
        task = self._task
        if task is None:
            return
        try:
            if not task.done():
                await self.flush(timeout)
        finally:
            task.cancel()
            # wait() instead of awaiting the task, so our own cancellation is not swallowed.
            await asyncio.wait([task])
            self._task = None
            if not task.cancelled() and task.exception() is not None:
                logger.error("outbox writer had stopped", exc_info=task.exception())

    async def _run(self) -> None:
        delay = self._interval
        retrying = False  # after a failure the backoff has waited already: no lingering
        while True:
            if self.outbox.pending == 0:
                await self._wait_for_rows()
                continue
            if not retrying and self.outbox.pending < self._batch_rows and self._linger > 0:
                await self._linger_for_rows()
            retrying = True
            try:
                await self._ship_batch()
            except StoreUnavailable as exc:
                self.failures += 1
                if not self.outage:
                    self.outage = True
                    logger.warning(
                        "usage ledger unavailable, keeping rows in the outbox: %s", exc.detail
                    )
            except Exception:
                # A bug or a disk error must not stop accounting for good; the rows stay on
                # disk and the next attempt starts from the same checkpoint.
                self.failures += 1
                logger.exception("outbox batch failed; will retry")
            else:
                delay = self._interval
                retrying = False
                continue
            await self._sleep(delay)
            delay = min(delay * 2, self._max_backoff)

    async def _linger_for_rows(self) -> None:
        """Let rows gather for ``linger`` seconds, unless a full batch or a flush comes."""
        if self._hurry.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._linger):
                await self._hurry.wait()

    async def _wait_for_rows(self) -> None:
        wakeup = self.outbox._wakeup
        wakeup.clear()
        if self.outbox.pending:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._interval):
                await wakeup.wait()

    async def _ship_batch(self) -> None:
        outbox = self.outbox
        waiting = outbox.pending
        start, end = outbox._cursor, outbox._end()
        limit = self._batch_rows
        batch = await _in_thread(lambda: read_batch(outbox.directory, start, end, limit))
        if batch.end == start:
            raise RuntimeError(f"{waiting} rows pending but none found after {start}")
        if batch.rows:
            result = await insert_usage(self.engine, batch.rows)
            self.shipped += result.inserted
            self.duplicates += result.duplicates
            self.dead_lettered += result.dead_lettered
        if self.outage:
            self.outage = False
            logger.info("usage ledger is available again; %d rows were waiting", waiting)
        outbox._advance(batch.end, batch.consumed)
        self._progress.set()
        await _in_thread(lambda: outbox._persist(batch.end))


async def _in_thread(call: Callable[[], T]) -> T:
    """``call()`` in a worker thread; if cancelled, still wait for the thread to finish.

    A thread cannot be stopped, so this keeps ``aclose`` from returning while one is
    still reading segments or replacing the checkpoint.
    """
    future = asyncio.ensure_future(asyncio.to_thread(call))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


def _write_all(fd: int, data: bytearray, size_before: int) -> None:
    try:
        written = os.write(fd, data)
        while written < len(data):  # a short write: rare, so a copy is fine
            written += os.write(fd, data[written:])
    except OSError:
        # Cut off whatever part was written, or the next row would be glued to it.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size_before)
        raise


def _lock(directory: Path) -> int:
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OutboxLocked(directory) from None
    return fd
