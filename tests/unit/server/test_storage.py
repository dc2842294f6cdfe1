"""The serving process never loads Alembic (about 9 MiB of RSS, kept for its lifetime),
nor, on SQLite, the PostgreSQL dialect (about 2 MiB).

Alembic is needed only to upgrade an existing database that is behind; a fresh SQLite
database is created from ``store/schema.py`` and one at head is only read. Checked in a
child process, since this test process imports Alembic for other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from skyroute.store.revision import HEAD_REVISION

_START_TWICE = """
import asyncio, json, sys, time

import skyroute.cli, skyroute.server.app, skyroute.server.run  # what `skyroute serve` loads
from skyroute.core.config import StoreConfig
from skyroute.core.secret import Secret
from skyroute.governance.budget import BudgetLedger
from skyroute.governance.directory import KeyDirectory
from skyroute.governance.keys import KeyHasher
from skyroute.server.storage import Storage
from skyroute.store.revision import current_revision


async def start_and_stop() -> str | None:
    master = Secret("sk-master-storage-test")
    directory = KeyDirectory(KeyHasher(master), master)
    storage = Storage(
        StoreConfig(data_dir=sys.argv[1]), directory, BudgetLedger(), wall_clock=time.time
    )
    await storage.start()
    try:
        assert storage.engine is not None
        return await current_revision(storage.engine)
    finally:
        await storage.stop()


revisions = [asyncio.run(start_and_stop()) for _ in ("fresh", "at head")]
alembic = sorted(name for name in sys.modules if name.split(".")[0] == "alembic")
postgresql = sorted(
    name for name in sys.modules if name.startswith("sqlalchemy.dialects.postgresql")
)
print(json.dumps({"revisions": revisions, "alembic": alembic, "postgresql": postgresql}))
"""


def test_storage_starts_on_fresh_and_current_sqlite_without_alembic_or_postgresql(
    tmp_path: Path,
) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _START_TWICE, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.splitlines()[-1])
    assert report == {
        "revisions": [HEAD_REVISION, HEAD_REVISION],
        "alembic": [],
        "postgresql": [],
    }
