"""Shared cells: records found by name, a lock that excludes across forked processes, and a
sliding window in cells with the same contract as ``governance.limits.Window``."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyroute.core.shared_cells import CellWindow, SharedLock, SharedTable, TableFull
from skyroute.governance.limits import Window
from tests.forks import finish, fork, reap, wait_readable


@pytest.fixture
def table() -> Iterator[SharedTable]:
    table = SharedTable(record_cells=4, capacity=16)
    yield table
    table.close()


# --- records ------------------------------------------------------------------------------


def test_same_name_same_record_and_different_names_different_records(table: SharedTable) -> None:
    with table:
        a = table.record("key:a")
        b = table.record("key:b")
        assert table.record("key:a") == a
        assert a != b
        assert a % (table.record_cells + 2) == 2, "a record starts after its digest cells"


def test_a_tiny_table_holds_exactly_its_capacity() -> None:
    table = SharedTable(record_cells=3, capacity=4)
    try:
        names = [f"key:{i}" for i in range(4)]
        with table:
            found = [table.record(name) for name in names]
            assert len(set(found)) == 4
            assert sorted(table.records()) == sorted(found)
            assert [table.record(name) for name in names] == found  # claimed: still found
            with pytest.raises(TableFull):
                table.record("key:4")
            # a fresh process's view (no name cache) still finds every record by probing
            table._records.clear()
            assert [table.record(name) for name in names] == found
            with pytest.raises(TableFull):
                table.record("key:5")
    finally:
        table.close()


def test_records_yields_only_the_claimed_ones(table: SharedTable) -> None:
    assert list(table.records()) == []
    with table:
        claimed = {table.record(f"team:{i}") for i in range(5)}
    assert set(table.records()) == claimed
    assert len(list(table.records())) == 5


def test_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        SharedTable(0, 4)
    with pytest.raises(ValueError):
        SharedTable(4, 0)


# --- across forked processes -------------------------------------------------------------


def test_a_record_claimed_in_a_child_is_seen_by_the_parent(table: SharedTable) -> None:
    with table:
        mine = table.record("parent")
        table.cells[mine] = 7

    def child() -> str:
        with table:
            theirs = table.record("child")
            table.cells[theirs + 1] = 42
            table._records.clear()  # find the parent's record as a fresh process would
            found = table.record("parent")
            seen = table.cells[found]
        return f"{theirs} {found} {seen}"

    [report] = finish([fork(child)], time.monotonic() + 5.0)
    theirs, found, seen = map(int, report.split())
    assert found == mine and seen == 7
    assert "child" not in table._records  # the parent never claimed it itself...
    with table:
        assert table.record("child") == theirs  # ...but finds it where the child put it
    assert table.cells[theirs + 1] == 42
    assert set(table.records()) == {mine, theirs}


def test_the_lock_excludes_another_process(table: SharedTable) -> None:
    with table:
        marker = table.record("marker")
    signal_read, signal_write = os.pipe()

    def child() -> str:
        os.close(signal_read)
        with table:
            os.write(signal_write, b"held")
            time.sleep(0.3)
            table.cells[marker] = 1
        return ""

    children = [fork(child)]
    os.close(signal_write)
    try:
        assert wait_readable(signal_read, 3.0) == b"held"
        started = time.monotonic()
        with table:
            assert table.cells[marker] == 1, "entered while the child held the lock"
        assert time.monotonic() - started > 0.1
    finally:
        os.close(signal_read)
        finish(children, time.monotonic() + 5.0)


def test_tables_sharing_a_lock_nest_and_exclude_until_the_outer_release() -> None:
    """The gate holds one lock across two tables: taking it again inside is free, and
    another process waits until the outermost hold ends, not the inner one."""
    lock = SharedLock()
    limits, budgets = SharedTable(4, 8, lock), SharedTable(4, 8, lock)
    with limits:
        marker = limits.record("marker")
    go_read, go_write = os.pipe()

    def child() -> str:
        os.close(go_write)
        assert wait_readable(go_read, 3.0) == b"go"
        with budgets:  # the other table, the same lock
            return str(limits.cells[marker])

    children = [fork(child)]
    os.close(go_read)
    try:
        with limits:
            with budgets:  # again, in the same process: no deadlock
                limits.cells[marker] = 1
            os.write(go_write, b"go")  # inner hold over, outer still on
            time.sleep(0.3)
            limits.cells[marker] = 2
    finally:
        os.close(go_write)
        [seen] = finish(children, time.monotonic() + 5.0)
    assert seen == "2", "the child got the lock when the inner hold ended"


def test_a_holder_that_dies_does_not_wedge_the_others(table: SharedTable) -> None:
    signal_read, signal_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: takes the lock and dies holding it
        try:
            os.close(signal_read)
            table.__enter__()
            os.write(signal_write, b"held")
            time.sleep(0.1)
        finally:
            os._exit(0)
    os.close(signal_write)
    acquired = threading.Event()

    def acquire() -> None:
        with table:
            acquired.set()

    try:
        assert wait_readable(signal_read, 3.0) == b"held"
        waiter = threading.Thread(target=acquire, daemon=True)
        waiter.start()
        waiter.join(timeout=2.0)
        assert acquired.is_set(), "the lock of a dead process was never released"
    finally:
        os.close(signal_read)
        assert reap(pid, time.monotonic() + 3.0) == 0


def test_increments_under_the_lock_are_never_lost(table: SharedTable) -> None:
    with table:
        counter = table.record("counter")
    # all four start together (the gate opens when the parent closes its write end)
    gate_read, gate_write = os.pipe()

    def child() -> str:
        os.close(gate_write)
        assert wait_readable(gate_read, 3.0) == b""
        cells = table.cells
        for _ in range(2_000):
            with table:
                cells[counter] += 1
        return ""

    children = []
    try:
        children = [fork(child) for _ in range(4)]
    finally:
        os.close(gate_write)
        os.close(gate_read)
        finish(children, time.monotonic() + 10.0)
    assert table.cells[counter] == 8_000


# --- CellWindow against Window -------------------------------------------------------------


def cell_window(buckets: int, width: float) -> tuple[SharedTable, CellWindow]:
    table = SharedTable(CellWindow.cells_for(buckets), capacity=1)
    with table:
        base = table.record("window")
    return table, CellWindow(table.cells, base, buckets, width)


def test_cells_for_counts_head_total_and_ring() -> None:
    assert CellWindow.cells_for(60) == 62


Step = tuple[float, int, int, int, int]  # gap, amount, limit, ask, which bucket to adjust


@settings(max_examples=150, deadline=None)
@given(
    window=st.sampled_from([1.0, 10.0, 60.0]),
    buckets=st.integers(1, 12),
    start=st.floats(0.0, 1e6),
    steps=st.lists(
        st.tuples(
            st.one_of(st.just(0.0), st.floats(0.0, 3.0), st.floats(0.0, 120.0)),
            st.integers(0, 100),
            st.integers(0, 500),
            st.integers(0, 200),
            st.integers(0, 15),
        ),
        max_size=40,
    ),
)
def test_cell_window_matches_window(
    window: float, buckets: int, start: float, steps: list[Step]
) -> None:
    width = window / buckets
    table, cells = cell_window(buckets, width)
    reference = Window(window, buckets)
    assert reference.width == width
    added: list[int] = []
    now = start
    try:
        for gap, amount, limit, ask, back in steps:
            now += gap
            current = math.floor(now / width)
            cells.add_at(current, amount)
            reference.add_at(current, amount)
            added.append(current)
            assert cells.used(current) == reference.used(now)
            assert cells.retry_after_at(current, now, limit, ask) == reference.retry_after_at(
                current, now, limit, ask
            )
            # settle-style adjust of a bucket something was added to, live or gone
            bucket = added[-1 - back % len(added)]
            delta = amount - limit // 5
            assert cells.adjust(bucket, delta) == reference.adjust(bucket, delta)
            assert reference.live_at(bucket, current) == cells.adjust(bucket, 0)
            assert cells.used(current) == reference.used(now)
            assert cells.retry_after_at(current, now, limit, ask) == reference.retry_after_at(
                current, now, limit, ask
            )
    finally:
        table.close()


def test_adjust_on_a_live_bucket_never_goes_below_zero() -> None:
    table, cells = cell_window(4, 1.0)
    reference = Window(4.0, 4)
    try:
        for window_ in (cells, reference):
            window_.add_at(10, 5)
            window_.add_at(11, 3)
        assert cells.adjust(10, -9) and reference.adjust(10, -9)
        assert cells.used(11) == reference.used(11.0) == 3
        assert cells.adjust(11, 4) and reference.adjust(11, 4)
        assert cells.used(13) == reference.used(13.5) == 7
        assert cells.used(14) == reference.used(14.0) == 7  # bucket 10 had nothing left
        assert cells.used(15) == reference.used(15.0) == 0
        assert not cells.adjust(11, 1) and not reference.adjust(11, 1)
    finally:
        table.close()
