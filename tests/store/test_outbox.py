from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from skyroute.store import InsertResult, StoreUnavailable, UsageRow, create_engine, outbox_files
from skyroute.store import outbox as outbox_module
from skyroute.store.outbox import Outbox, OutboxLocked, OutboxWriter
from skyroute.store.schema import usage_ledger

from .conftest import Database
from .factories import usage_row

CREATED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PASSWORD = "canary-pw-0b7e"


def _row(i: int) -> UsageRow:
    return usage_row(i, created_at=CREATED)


def _keys(numbers: range) -> list[tuple[str, int]]:
    return sorted((f"req-{i}", 0) for i in numbers)


async def _stored(engine: AsyncEngine) -> list[tuple[str, int]]:
    query = sa.select(usage_ledger.c.request_id, usage_ledger.c.attempt)
    async with engine.connect() as conn:
        return sorted((r, a) for r, a in (await conn.execute(query)).all())


def _segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("segment-*.jsonl"))


async def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


@asynccontextmanager
async def _running(
    outbox: Outbox, engine: AsyncEngine, **options: Any
) -> AsyncIterator[OutboxWriter]:
    writer = OutboxWriter(outbox, engine, interval=0.01, max_backoff=0.05, **options)
    writer.start()
    try:
        yield writer
    finally:
        await writer.aclose(timeout=2)


def _writer_tasks() -> list[asyncio.Task[Any]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == "skyroute-outbox-writer"]


async def test_appended_rows_reach_the_ledger_once(engine: AsyncEngine, tmp_path: Path) -> None:
    directory = tmp_path / "outbox"
    outbox = Outbox(directory)
    async with _running(outbox, engine) as writer:
        for i in range(50):
            outbox.append(_row(i))
        assert await writer.flush(5)
        assert outbox.pending == 0
    assert _writer_tasks() == []
    outbox.close()
    assert await _stored(engine) == _keys(range(50))
    assert (writer.shipped, writer.duplicates, writer.dead_lettered) == (50, 0, 0)
    (segment,) = _segment_files(directory)
    checkpoint = (directory / "checkpoint").read_text()
    assert checkpoint == f"1 {segment.stat().st_size}\n"


async def test_rows_left_by_a_crash_are_shipped_after_restart(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    directory = tmp_path / "outbox"
    first = Outbox(directory)
    for i in range(30):
        first.append(_row(i))
    first.close()  # no writer ever ran: as if the process had died here
    second = Outbox(directory)
    assert second.pending == 30
    async with _running(second, engine) as writer:
        assert await writer.flush(5)
    second.close()
    assert await _stored(engine) == _keys(range(30))
    assert (writer.shipped, writer.duplicates) == (30, 0)


async def test_rows_sent_again_after_a_crash_count_as_duplicates(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    directory = tmp_path / "outbox"
    outbox = Outbox(directory)
    for i in range(20):
        outbox.append(_row(i))
    async with _running(outbox, engine) as writer:
        assert await writer.flush(5)
    outbox.close()
    # A crash after the rows were stored and before the checkpoint was replaced.
    (directory / "checkpoint").write_text("1 0\n")
    outbox = Outbox(directory)
    assert outbox.pending == 20
    outbox.append(_row(20))
    async with _running(outbox, engine) as writer:
        assert await writer.flush(5)
    outbox.close()
    assert (writer.shipped, writer.duplicates, writer.dead_lettered) == (1, 20, 0)
    assert await _stored(engine) == _keys(range(21))


_CHILD = """
import sys
from skyroute.store.ledger import UsageRow
from skyroute.store.outbox import Outbox

outbox = Outbox(sys.argv[1], segment_bytes=64 * 1024)
i = 0
while True:
    outbox.append(UsageRow(
        request_id=f"req-{i}", attempt=0, logical_request_id=f"logical-{i}", key_id=None,
        team_id=None, model="gpt-4o", deployment="azure", provider="azure",
        upstream_model="gpt-4o-2024-08-06", status=200, prompt_tokens=i,
    ))
    i += 1
    print(i, flush=True)
"""


def _appends_until_killed(directory: Path, at_least: int) -> int:
    """Run a child that appends until SIGKILL; how many of its appends surely returned."""
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(directory)], stdout=subprocess.PIPE)
    watchdog = threading.Timer(20, child.kill)
    watchdog.start()
    try:
        assert child.stdout is not None
        printed = 0
        for line in child.stdout:
            printed = int(line)
            if printed >= at_least:
                break
        os.kill(child.pid, signal.SIGKILL)
        rest = child.stdout.read()
        child.wait(timeout=10)
    finally:
        watchdog.cancel()
        child.kill()
    assert child.returncode == -signal.SIGKILL
    complete = rest[: rest.rfind(b"\n") + 1].split()
    return int(complete[-1]) if complete else printed


def test_every_returned_append_survives_sigkill(tmp_path: Path) -> None:
    directory = tmp_path / "outbox"
    returned = _appends_until_killed(directory, at_least=3000)
    newest = _segment_files(directory)[-1]
    whole = newest.read_bytes()
    whole = whole[: whole.rfind(b"\n") + 1]
    with open(newest, "ab") as file:  # a write cut short (SIGKILL rarely manages one)
        file.write(b'{"request_id":"req-torn","attem')

    outbox = Outbox(directory)  # the dead child's lock is gone with it
    try:
        assert outbox.pending >= returned
        assert newest.read_bytes() == whole
        lines = b"".join(path.read_bytes() for path in _segment_files(directory)).splitlines()
        rows = [msgspec.json.decode(line, type=UsageRow) for line in lines]
        assert [row.request_id for row in rows] == [f"req-{i}" for i in range(outbox.pending)]
        assert len(_segment_files(directory)) > 1
        assert not (directory / "corrupt.jsonl").exists()
    finally:
        outbox.close()


def test_a_torn_last_line_is_cut_off(tmp_path: Path) -> None:
    directory = tmp_path / "outbox"
    outbox = Outbox(directory)
    outbox.append(_row(0))
    outbox.append(_row(1))
    outbox.close()
    segment = directory / "segment-000001.jsonl"
    whole = segment.read_bytes()
    with open(segment, "ab") as file:
        file.write(b'{"request_id":"req-2","att')
    outbox = Outbox(directory)
    assert outbox.pending == 2
    assert segment.read_bytes() == whole
    outbox.append(_row(2))
    outbox.close()
    outbox = Outbox(directory)
    assert outbox.pending == 3
    outbox.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends


def _unreachable(backend: str, tmp_path: Path) -> AsyncEngine:
    if backend == "sqlite":
        return create_engine(None, sqlite_path=str(tmp_path / "missing" / "store.db"))
    url = f"postgresql://skyroute:{PASSWORD}@127.0.0.1:{_closed_port()}/skyroute"
    return create_engine(url)


async def test_rows_wait_out_an_outage_then_ship(
    database: Database,
    engine: AsyncEngine,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="skyroute.outbox")
    broken = _unreachable(database.backend, tmp_path)
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)
        await asyncio.sleep(0.001)

    outbox = Outbox(tmp_path / "outbox")
    for i in range(5):
        outbox.append(_row(i))
    writer = OutboxWriter(outbox, broken, interval=0.01, max_backoff=0.05, sleep=sleep)
    writer.start()
    try:
        await _wait_until(lambda: writer.failures >= 5)
        assert writer.outage
        assert (outbox.pending, writer.shipped) == (5, 0)
        assert delays[:5] == pytest.approx([0.01, 0.02, 0.04, 0.05, 0.05])
        assert not await writer.flush(0.05)
        writer.engine = engine  # the database is back
        assert await writer.flush(5)
        assert not writer.outage
    finally:
        await writer.aclose(timeout=1)
        outbox.close()
        await broken.dispose()
    assert await _stored(engine) == _keys(range(5))
    levels = [(r.levelno, r.getMessage()) for r in caplog.records]
    warnings = [message for level, message in levels if level == logging.WARNING]
    assert len(warnings) == 1 and "unavailable" in warnings[0]
    assert [m for _, m in levels if "available again" in m] == [
        "usage ledger is available again; 5 rows were waiting"
    ]
    assert PASSWORD not in caplog.text


async def test_corrupt_lines_are_quarantined_once_and_block_nothing(
    engine: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="skyroute.outbox")
    directory = tmp_path / "outbox"
    directory.mkdir()
    good = [msgspec.json.encode(_row(i)) for i in range(4)]
    bad = [
        b'{"request_id": "req-bad", "attempt": "one", "model": "secret-prompt-text"}',
        b"\x00\x00 not json at all",
    ]
    lines = [good[0], bad[0], good[1], bad[1], good[2], good[3]]
    (directory / "segment-000001.jsonl").write_bytes(b"\n".join(lines) + b"\n")

    outbox = Outbox(directory)
    assert outbox.pending == 4
    quarantined = b"".join(line + b"\n" for line in bad)
    assert (directory / "corrupt.jsonl").read_bytes() == quarantined
    assert "req-bad" in caplog.text
    assert "secret-prompt-text" not in caplog.text
    outbox.close()

    outbox = Outbox(directory)  # met again on the next open: not reported twice
    assert outbox.pending == 4
    assert (directory / "corrupt.jsonl").read_bytes() == quarantined
    async with _running(outbox, engine) as writer:
        assert await writer.flush(5)
    outbox.close()
    assert await _stored(engine) == _keys(range(4))
    assert writer.shipped == 4


async def test_segments_rotate_and_shipped_ones_are_deleted(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    directory = tmp_path / "outbox"
    outbox = Outbox(directory, segment_bytes=1000)
    for i in range(20):
        outbox.append(_row(i))
    assert len(_segment_files(directory)) >= 5
    async with _running(outbox, engine, batch_rows=3) as writer:
        assert await writer.flush(5)
        await _wait_until(lambda: len(_segment_files(directory)) == 1)
        for i in range(20, 25):
            outbox.append(_row(i))
        assert await writer.flush(5)
    outbox.close()
    (newest,) = _segment_files(directory)
    number = int(newest.name.removeprefix("segment-").removesuffix(".jsonl"))
    assert number >= 5
    checkpoint = (directory / "checkpoint").read_text()
    assert checkpoint == f"{number} {newest.stat().st_size}\n"
    assert await _stored(engine) == _keys(range(25))
    reopened = Outbox(directory, segment_bytes=1000)
    assert reopened.pending == 0
    reopened.close()


def test_a_directory_has_one_owner(tmp_path: Path) -> None:
    directory = tmp_path / "outbox"
    first = Outbox(directory)
    with pytest.raises(OutboxLocked, match=str(directory)):
        Outbox(directory)
    first.close()
    Outbox(directory).close()


async def test_pending_rows_stay_on_disk_and_ship_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[list[str]] = []

    async def down(engine: AsyncEngine, rows: Sequence[UsageRow]) -> InsertResult:
        batches.append([row.request_id for row in rows])
        raise StoreUnavailable("connection refused")

    async def up(engine: AsyncEngine, rows: Sequence[UsageRow]) -> InsertResult:
        batches.append([row.request_id for row in rows])
        return InsertResult(inserted=len(rows), duplicates=0, dead_lettered=0)

    monkeypatch.setattr(outbox_module, "insert_usage", down)
    outbox = Outbox(tmp_path / "outbox", segment_bytes=1 << 20)
    rows = [usage_row(i) for i in range(20_000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        started = time.perf_counter()
        for row in rows:
            outbox.append(row)
        elapsed = time.perf_counter() - started
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del rows
    # Keeping the rows (or their JSON) would take megabytes; the outbox keeps positions.
    assert grown < 16 * 1024
    assert elapsed < 5  # a generous bound: an append is a few microseconds

    engine = create_engine(None, sqlite_path=str(tmp_path / "unused.db"))  # never connected
    async with _running(outbox, engine, batch_rows=500) as writer:
        await _wait_until(lambda: writer.failures >= 3)
        assert outbox.pending == 20_000 and writer.outage
        monkeypatch.setattr(outbox_module, "insert_usage", up)
        assert await writer.flush(5)
    outbox.close()
    await engine.dispose()
    assert max(map(len, batches)) == 500
    shipped = [request_id for batch in batches[writer.failures :] for request_id in batch]
    assert shipped == [f"req-{i}" for i in range(20_000)]
    assert writer.shipped == 20_000


async def test_flush_with_nothing_appended_is_immediate(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    engine = create_engine(None, sqlite_path=str(tmp_path / "unused.db"))
    writer = OutboxWriter(outbox, engine)
    assert await writer.flush(0.01)
    await writer.aclose()  # never started: nothing to stop
    outbox.close()
    await engine.dispose()
    with pytest.raises(RuntimeError, match="closed"):
        outbox.append(_row(0))


def test_batches_skip_quarantined_lines_and_cross_segments(tmp_path: Path) -> None:
    directory = tmp_path / "outbox"
    outbox = Outbox(directory, segment_bytes=2000)
    for i in range(12):
        outbox.append(_row(i))
    first = _segment_files(directory)[0]
    data = first.read_bytes()
    second_line = slice(data.index(b"\n") + 1, data.index(b"\n", data.index(b"\n") + 1))
    first.write_bytes(
        data[: second_line.start] + b" " * len(data[second_line]) + data[second_line.stop :]
    )
    start, end = outbox._cursor, outbox._end()
    shipped: list[str] = []
    consumed = 0
    while start < end:
        batch = outbox_files.read_batch(directory, start, end, 5)
        assert len(batch.rows) <= 5
        shipped += [row.request_id for row in batch.rows]
        consumed += batch.consumed
        start = batch.end
    outbox.close()
    assert shipped == [f"req-{i}" for i in range(12) if i != 1]
    assert consumed == 11 and start == end
