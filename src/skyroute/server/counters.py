"""The counters that the worker processes of one gateway share, and one worker's view.

The supervisor (server/workers.py) makes ``SharedCounters`` before it forks, so every
worker maps the same tables: one for rate limits, one for budgets, one for deployment
quotas. A worker builds its app with ``WorkerShare`` (the tables and its index).
"""

from __future__ import annotations

from skyroute.core.shared_cells import CellWindow, SharedLock, SharedTable
from skyroute.governance.shared import (
    SharedBudgets,
    SharedLimits,
    budget_record_cells,
    limit_record_cells,
)
from skyroute.routing.quota import WindowFactory, shared_windows

_BUCKETS = 60  # the limit and quota windows' sub-windows, as in their memory versions


class SharedCounters:
    def __init__(self, *, workers: int, subjects: int, deployments: int) -> None:
        """``subjects``: keys and teams with limits or budgets that the tables can hold."""
        self.workers = workers
        # One lock for all three: the gate holds it once across a budget reservation and a
        # limit admission (and once across both settlements), not once for each.
        self.lock = SharedLock()
        self.limits = SharedTable(limit_record_cells(_BUCKETS, workers), subjects, self.lock)
        self.budgets = SharedTable(budget_record_cells(workers), subjects, self.lock)
        # rpm and tpm for each deployment, with room to spare for open addressing
        deployment_records = 4 * max(1, deployments)
        self.quotas = SharedTable(CellWindow.cells_for(_BUCKETS), deployment_records, self.lock)


class WorkerShare:
    """What worker ``index`` uses of the shared counters."""

    def __init__(self, counters: SharedCounters, index: int) -> None:
        self.index = index
        self.lock = counters.lock
        workers = counters.workers
        self.limits = SharedLimits(counters.limits, worker=index, workers=workers, buckets=_BUCKETS)
        self.budgets = SharedBudgets(counters.budgets, worker=index, workers=workers)
        self._quotas = counters.quotas

    def quota_windows(self, deployment: str) -> WindowFactory:
        return shared_windows(self._quotas, deployment)

    def forget_predecessor(self) -> None:
        """Drop what a previous worker with this index held when it died."""
        self.limits.forget_worker(self.index)
        self.budgets.forget_worker(self.index)
