from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from skyroute.store import InsertResult, UsageRow, dead_letters, insert_usage, usage_report
from skyroute.store.schema import usage_ledger

from .conftest import Database
from .factories import INJECTION, usage_row

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


async def _stored(engine: AsyncEngine) -> list[tuple[str, int]]:
    query = sa.select(usage_ledger.c.request_id, usage_ledger.c.attempt).order_by(
        usage_ledger.c.request_id, usage_ledger.c.attempt
    )
    async with engine.connect() as conn:
        return [(r, a) for r, a in (await conn.execute(query)).all()]


async def test_rows_are_stored_as_given(engine: AsyncEngine) -> None:
    row = usage_row(1, error_code="rate_limited", estimated=True, created_at=LONG_AGO)
    assert await insert_usage(engine, [row]) == InsertResult(
        inserted=1, duplicates=0, dead_lettered=0
    )
    async with engine.connect() as conn:
        stored = (await conn.execute(sa.select(usage_ledger))).one()._mapping
    expected = msgspec.structs.asdict(row)
    got = {str(name): stored[name] for name in expected}
    got["created_at"] = got["created_at"].replace(tzinfo=UTC)
    assert got == expected


def _created(i: int) -> datetime:
    """An instant in UTC, in another zone, or naive (taken as UTC), in turn."""
    moment = LONG_AGO + timedelta(seconds=i, microseconds=i % 7)
    match i % 3:
        case 0:
            return moment
        case 1:
            return moment.astimezone(timezone(timedelta(hours=5, minutes=30)))
        case _:
            return moment.replace(tzinfo=None)


async def test_a_batch_of_many_statements_is_stored_as_given(engine: AsyncEngine) -> None:
    # 250 rows: SQLite writes them as whole multi-row statements and a shorter last one.
    rows = [
        usage_row(
            i,
            error_code=None if i % 3 else "rate_limited",
            estimated=i % 5 == 0,
            ttft_ms=None if i % 2 else i,
            created_at=_created(i),
        )
        for i in range(250)
    ]
    assert await insert_usage(engine, rows + rows[:3]) == InsertResult(
        inserted=250, duplicates=3, dead_lettered=0
    )
    async with engine.connect() as conn:
        stored = (await conn.execute(sa.select(usage_ledger))).all()
    by_key = {(r.request_id, r.attempt): r._mapping for r in stored}
    for row in rows:
        expected = msgspec.structs.asdict(row)
        got = by_key[(row.request_id, row.attempt)]
        found = {name: got[name] for name in expected}
        created = row.created_at
        assert created is not None
        want = created.astimezone(UTC) if created.tzinfo else created.replace(tzinfo=UTC)
        assert found.pop("created_at").replace(tzinfo=UTC) == want
        expected.pop("created_at")
        assert found == expected


async def test_duplicates_are_skipped_across_batches(engine: AsyncEngine) -> None:
    first = [usage_row(i) for i in range(10)]
    assert (await insert_usage(engine, first)).inserted == 10
    second = [usage_row(i) for i in range(5, 15)] + [usage_row(3, attempt=1)]
    assert await insert_usage(engine, second) == InsertResult(
        inserted=6, duplicates=5, dead_lettered=0
    )
    assert len(await _stored(engine)) == 16


async def test_duplicates_inside_one_batch_count_once(engine: AsyncEngine) -> None:
    rows = [usage_row(1), usage_row(1), usage_row(2), usage_row(1, attempt=1)]
    assert await insert_usage(engine, rows) == InsertResult(
        inserted=3, duplicates=1, dead_lettered=0
    )


async def test_empty_batch(engine: AsyncEngine) -> None:
    assert await insert_usage(engine, []) == InsertResult(inserted=0, duplicates=0, dead_lettered=0)


async def test_concurrent_overlapping_batches_store_each_row_once(engine: AsyncEngine) -> None:
    # Eight writers, each a window of 300 rows overlapping its neighbours, in both orders.
    batches = [[usage_row(i) for i in range(start, start + 300)] for start in range(0, 800, 100)]
    batches += [list(reversed(batch)) for batch in batches]
    results = await asyncio.gather(*(insert_usage(engine, batch) for batch in batches))
    assert sum(result.inserted for result in results) == 1000
    assert sum(r.inserted + r.duplicates for r in results) == sum(map(len, batches))
    assert all(result.dead_lettered == 0 for result in results)
    assert await _stored(engine) == sorted((f"req-{i}", 0) for i in range(1000))


def _poisons(backend: str) -> dict[str, UsageRow]:
    poisons = {
        # A NOT NULL column left empty (a Struct built without validation).
        "not-null": usage_row(500, model=None),
        # Beyond a signed 64-bit BIGINT: sqlite3 and asyncpg both refuse to encode it.
        "int-overflow": usage_row(500, cost_micros=2**64),
    }
    if backend == "postgresql":
        # PostgreSQL text cannot hold NUL ("invalid byte sequence for encoding UTF8: 0x00").
        poisons["nul-byte"] = usage_row(500, finish_reason="stop\x00")
        # VARCHAR(64) overflows ("value too long for type character varying(64)").
        poisons["too-long"] = usage_row(500, provider="p" * 65)
    return poisons


@pytest.mark.parametrize("kind", ["not-null", "int-overflow", "nul-byte", "too-long"])
async def test_a_poison_row_is_quarantined_and_the_rest_commit(
    engine: AsyncEngine, database: Database, kind: str
) -> None:
    poison = _poisons(database.backend).get(kind)
    if poison is None:
        pytest.skip(f"{database.backend} accepts the {kind} value")
    rows = [usage_row(i) for i in range(1000) if i != 500] + [poison]
    result = await insert_usage(engine, rows)
    assert result == InsertResult(inserted=999, duplicates=0, dead_lettered=1)
    assert len(await _stored(engine)) == 999
    [letter] = await dead_letters(engine)
    assert msgspec.json.decode(letter.payload)["request_id"] == "req-500"
    assert letter.reason and "\x00" not in letter.reason
    assert "INSERT" not in letter.reason  # no SQL text or parameters in the reason


async def test_nul_bytes_are_kept_where_the_database_allows_them(
    engine: AsyncEngine, database: Database
) -> None:
    result = await insert_usage(engine, [usage_row(1, error_code="a\x00b")])
    if database.backend == "sqlite":
        assert result.inserted == 1
    else:
        assert result.dead_lettered == 1
        [letter] = await dead_letters(engine)
        assert msgspec.json.decode(letter.payload, type=UsageRow).error_code == "a\x00b"


@pytest.mark.parametrize("text", INJECTION)
async def test_injection_shaped_strings_are_stored_verbatim(engine: AsyncEngine, text: str) -> None:
    row = usage_row(1, request_id=text, key_id=text[:64], model=text, error_code=text)
    assert (await insert_usage(engine, [row, usage_row(2)])).inserted == 2
    assert (await insert_usage(engine, [row])).duplicates == 1
    report = await usage_report(engine, by="model", since=LONG_AGO)
    assert {r.group for r in report} == {text, "gpt-4o"}
    assert (text, 0) in await _stored(engine)


async def test_report_sums_match_the_rows(engine: AsyncEngine) -> None:
    rows = [usage_row(i, team_id="red" if i < 6 else "blue") for i in range(10)]
    # A failover: a second attempt at another provider for the same logical request.
    retry = usage_row(0, attempt=1, provider="bedrock", team_id="red", cost_micros=7)
    await insert_usage(engine, [*rows, retry])
    report = {r.group: r for r in await usage_report(engine, by="team", since=LONG_AGO)}
    red = [*rows[:6], retry]
    assert report["red"].requests == 6 and report["red"].attempts == 7
    assert report["red"].cost_micros == sum(r.cost_micros for r in red)
    assert report["red"].prompt_tokens == sum(r.prompt_tokens for r in red)
    assert report["red"].reasoning_tokens == 2 * 7 and report["red"].cached_tokens == 5 * 7
    assert report["blue"].requests == 4 and report["blue"].completion_tokens == 80
    by_provider = await usage_report(engine, by="provider", since=LONG_AGO)
    assert [(r.group, r.attempts) for r in by_provider] == [("azure", 10), ("bedrock", 1)]
    by_key = await usage_report(engine, by="key", since=LONG_AGO)
    assert sum(r.cost_micros for r in by_key) == sum(r.cost_micros for r in [*rows, retry])


async def test_report_counts_only_the_period(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    old = usage_row(1, created_at=now - timedelta(days=10))
    await insert_usage(
        engine, [old, usage_row(2), usage_row(3, created_at=now - timedelta(days=1))]
    )
    week = await usage_report(engine, by="model", since=now - timedelta(days=7))
    assert [(r.group, r.attempts) for r in week] == [("gpt-4o", 2)]
    window = await usage_report(
        engine, by="model", since=now - timedelta(days=11), until=now - timedelta(days=2)
    )
    assert [(r.group, r.attempts, r.cost_micros) for r in window] == [("gpt-4o", 1, 1001)]
    assert await usage_report(engine, by="model", since=now + timedelta(days=1)) == []


def test_sqlite_fast_path_covers_every_column_in_order() -> None:
    # The SQLite insert binds a UsageRow as a tuple: its fields must be the table's columns.
    from skyroute.store.ledger import _COLUMNS

    assert [column.name for column in _COLUMNS] == list(UsageRow.__struct_fields__)
