"""The gateway's stateful half: the database, the usage outbox, keys and budgets from it.

At start-up, in this order: open the database (SQLite is migrated automatically; a
PostgreSQL schema behind the code is refused with a pointer to ``skyroute migrate``), open
the outbox and ship what a previous run left in it, load every key and team into the
directory, and restore each budget's spend for its current period from the ledger. Only
then does the server accept requests, so budgets start from what was really spent.

While serving, one task reloads the directory every ``store.key_refresh_seconds`` (so keys
created, changed or revoked by another process take effect within that delay) and restores
budgets for keys and teams it had not seen. A database outage only delays both: the last
snapshot keeps serving, and usage waits in the outbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from skyroute.core.config import StoreConfig
from skyroute.core.errors import ServiceUnavailable
from skyroute.governance.budget import BudgetBackend, BudgetSpec, BudgetSubject, period_bounds
from skyroute.governance.directory import KeyDirectory
from skyroute.governance.gate import Holder, subject_id
from skyroute.store import StoreUnavailable, engine_for, migrate
from skyroute.store.engine import is_sqlite
from skyroute.store.ledger import UsageRow
from skyroute.store.outbox import Outbox, OutboxWriter
from skyroute.store.revision import HEAD_REVISION, current_revision
from skyroute.store.spend import spend_since

log = logging.getLogger("skyroute.storage")

_RETRY = 1.0


class StorageError(RuntimeError):
    """The gateway cannot start with this store (an operator must act)."""


class Storage:
    def __init__(
        self,
        config: StoreConfig,
        directory: KeyDirectory,
        budgets: BudgetBackend,
        *,
        wall_clock: Callable[[], float],
        outbox_name: str = "outbox",
        adopt_strays: bool = True,
    ) -> None:
        """``outbox_name``: this process's outbox under ``data_dir`` (one per worker).
        ``adopt_strays``: also ship the other outboxes there (left by workers of an earlier
        run); a worker must not, its siblings are using theirs."""
        self._config = config
        self._outbox_name = outbox_name
        self._adopt_strays = adopt_strays
        self._directory = directory
        self._budgets = budgets
        self._wall_clock = wall_clock
        self.engine: AsyncEngine | None = None
        self.outbox: Outbox | None = None
        self.writer: OutboxWriter | None = None
        self._refresher: asyncio.Task[None] | None = None
        # (subject id, period start) of budget accounts already seeded from the ledger
        self._restored: set[tuple[str, int]] = set()

    def append(self, row: UsageRow) -> None:
        if self.outbox is None:
            raise ServiceUnavailable("The gateway is starting.", retry_after=1.0)
        self.outbox.append(row)

    async def start(self) -> None:
        config = self._config
        url = config.database_url.reveal() if config.database_url is not None else None
        self.engine = engine_for(url, config.data_dir)
        deadline = asyncio.get_running_loop().time() + config.startup_timeout
        await self._until(deadline, self._prepare_schema)
        self.outbox = Outbox(Path(config.data_dir) / self._outbox_name, fsync=config.outbox_fsync)
        self.writer = OutboxWriter(self.outbox, self.engine)
        self.writer.start()
        left = max(0.1, deadline - asyncio.get_running_loop().time())
        if not await self.writer.flush(left):
            raise StorageError("the usage outbox could not be shipped to the database in time")
        if self._adopt_strays:
            strays = [p for p in outbox_dirs(config.data_dir) if p.name != self._outbox_name]
            await ship_outboxes(self.engine, strays, config, deadline)
        await self._until(deadline, self._load)
        self._refresher = asyncio.create_task(self._refresh_forever(), name="key-refresh")

    async def stop(self, timeout: float = 5.0) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
        if self.writer is not None:
            await self.writer.aclose(timeout)
        if self.outbox is not None:
            self.outbox.close()
        if self.engine is not None:
            await self.engine.dispose()

    async def _until(self, deadline: float, step: Callable[[], Awaitable[None]]) -> None:
        await until_available(deadline, step)

    async def _prepare_schema(self) -> None:
        assert self.engine is not None
        await prepare_schema(self.engine)

    async def _load(self) -> None:
        assert self.engine is not None
        await self._directory.refresh(self.engine)
        await self.restore_budgets()

    async def restore_budgets(self) -> None:
        """Seed every budget account not yet seeded for its current period."""
        assert self.engine is not None
        now = self._wall_clock()
        subjects: list[tuple[Holder, str, BudgetSpec]] = [
            ("key", key.id, key.budget) for key in self._directory.all_keys() if key.budget
        ]
        subjects += [
            ("team", team.id, team.budget) for team in self._directory.all_teams() if team.budget
        ]
        for holder, holder_id, spec in subjects:
            subject = BudgetSubject(subject_id(holder, holder_id), spec)
            start = period_bounds(subject.spec.period, now)[0]
            if (subject.id, start) in self._restored:
                continue
            since = datetime.fromtimestamp(start, UTC)
            spent = await spend_since(self.engine, holder, holder_id, since)
            # Spend made here (or by a sibling worker) and not shipped yet is in the
            # account already: restore only raises it.
            self._budgets.restore(subject, now, spent)
            self._restored.add((subject.id, start))

    async def _refresh_forever(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._config.key_refresh_seconds)
            try:
                await self._load()
            except StoreUnavailable as exc:
                if not failing:
                    log.warning("key refresh failed, serving the last snapshot: %s", exc.detail)
                failing = True
            except Exception:
                log.exception("key refresh failed")
            else:
                if failing:
                    log.info("key refresh recovered")
                failing = False


async def until_available(deadline: float, step: Callable[[], Awaitable[None]]) -> None:
    """Run ``step`` until it succeeds; the store may still be starting up."""
    while True:
        try:
            await step()
            return
        except StoreUnavailable as exc:
            if asyncio.get_running_loop().time() + _RETRY > deadline:
                raise StorageError(f"the database is unavailable: {exc.detail}") from None
            log.warning("database unavailable at start-up, retrying: %s", exc.detail)
            await asyncio.sleep(_RETRY)


async def prepare_schema(engine: AsyncEngine) -> None:
    """Migrate SQLite; refuse a PostgreSQL schema behind the code."""
    if is_sqlite(engine):
        await migrate(engine)
        return
    current = await current_revision(engine)
    if current != HEAD_REVISION:
        raise StorageError(
            f"the database schema is at revision {current}, "
            f"this version needs {HEAD_REVISION}: "
            "run `skyroute migrate` first"
        )


def outbox_dirs(data_dir: str) -> list[Path]:
    """Every outbox under ``data_dir``: ``outbox`` and the workers' ``outbox.<n>``."""
    root = Path(data_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("outbox*") if p.is_dir() and _is_outbox_name(p.name))


def _is_outbox_name(name: str) -> bool:
    return name == "outbox" or (name.startswith("outbox.") and name[7:].isdigit())


async def ship_outboxes(
    engine: AsyncEngine, directories: list[Path], config: StoreConfig, deadline: float
) -> None:
    """Ship what other processes left in ``directories`` to the database, by ``deadline``."""
    loop = asyncio.get_running_loop()
    for directory in directories:
        outbox = Outbox(directory, fsync=config.outbox_fsync)
        writer = OutboxWriter(outbox, engine)
        writer.start()
        try:
            shipped = await writer.flush(max(0.1, deadline - loop.time()))
        finally:
            await writer.aclose(1.0)
            outbox.close()
        if not shipped:
            raise StorageError(f"the usage outbox {directory.name} could not be shipped in time")
        log.info("shipped the usage left in %s", directory.name)


async def prepare_store(config: StoreConfig) -> None:
    """Before worker processes start: bring the schema to this version and ship every
    outbox left under ``data_dir``, so no two workers race to do either."""
    url = config.database_url.reveal() if config.database_url is not None else None
    engine = engine_for(url, config.data_dir)
    try:
        deadline = asyncio.get_running_loop().time() + config.startup_timeout
        await until_available(deadline, lambda: prepare_schema(engine))
        await ship_outboxes(engine, outbox_dirs(config.data_dir), config, deadline)
    finally:
        await engine.dispose()
