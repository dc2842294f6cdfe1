"""Where the gateway's CPU goes under load: py-spy samples, grouped by component.

    .venv/bin/python bench/profile.py [--concurrency 64] [--seconds 15] [--workers N]
                                      [--out stacks.txt]

Starts the bench gateway as bench/gateway_bench.py does (pinned to core 0, virtual key with
limits and a budget), drives it with wrk at ``--concurrency`` connections (closed loop: 1
is one request at a time) and samples it with py-spy
(``record --format raw --nonblocking --gil``: only samples holding the GIL, i.e. Python
work, not waiting). Each sample is charged to the innermost frame that belongs to a known
component, so the table reads as "self time of that part of the stack". Needs py-spy
(``.venv/bin/pip install py-spy``) and wrk. Prints; ``--out`` keeps the raw stacks.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import tempfile
import threading
from pathlib import Path

import gateway_bench as gb

# (component, a substring of the frame's file path), innermost match wins; order matters
# only among patterns that could match the same file.
_COMPONENTS = (
    ("HTTP server (uvicorn, httptools)", "uvicorn/"),
    ("upstream client (transport/)", "skyroute/transport/"),
    ("governance (keys, gate, limits, budgets)", "skyroute/governance/"),
    ("usage ledger (row, outbox, shipping)", "skyroute/store/"),
    ("usage ledger (row, outbox, shipping)", "skyroute/api/accounting.py"),
    ("routing (plan, attempts, breaker)", "skyroute/routing/"),
    ("shared counters (--workers)", "skyroute/core/shared_cells.py"),
    ("server app (routes, admission)", "skyroute/server/"),
    ("endpoint + wire (api/, wire/, providers/)", "skyroute/api/"),
    ("endpoint + wire (api/, wire/, providers/)", "skyroute/wire/"),
    ("endpoint + wire (api/, wire/, providers/)", "skyroute/providers/"),
    ("database driver (SQLAlchemy, aiosqlite)", "sqlalchemy/"),
    ("database driver (SQLAlchemy, aiosqlite)", "aiosqlite/"),
    ("event loop (asyncio, uvloop)", "asyncio/"),
    ("event loop (asyncio, uvloop)", "uvloop/"),
)


def component(frame: str) -> str | None:
    for name, pattern in _COMPONENTS:
        if pattern in frame:
            return name
    return None


def breakdown(stacks: str) -> collections.Counter[str]:
    """Samples per component from py-spy's raw (collapsed) output."""
    counts: collections.Counter[str] = collections.Counter()
    for line in stacks.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        owner = "other"
        for frame in reversed(stack.split(";")):  # innermost first
            found = component(frame)
            if found is not None:
                owner = found
                break
        counts[owner] += int(count)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    plan = gb.Plan(
        latency_samples=0,
        latency_warmup=0,
        cell_seconds=args.seconds,
        cell_warmup_seconds=2,
        held_streams=0,
        retries=0,
    )
    pins = argparse.Namespace(no_pin=False, gateway_core=0, load_core=1, ref=None)
    with tempfile.TemporaryDirectory(prefix="skyroute-profile-") as tmp:
        bench = gb.Bench(Path(tmp), plan, pins, "wrk")
        if args.workers > 1:
            bench.gateway_args = ["--workers", str(args.workers)]
        raw = Path(tmp) / "stacks.txt"
        try:
            bench.start()
            assert bench.gateway is not None
            spy = [
                str(Path(gb.sys.executable).parent / "py-spy"),
                "record",
                "--format",
                "raw",
                "--nonblocking",
                "--gil",
                "--subprocesses",
                "--rate",
                "200",
                "--duration",
                str(args.seconds),
                "--output",
                str(raw),
                "--pid",
                str(bench.gateway.pid),
            ]
            sampler = threading.Thread(
                target=subprocess.run,
                args=(gb.pinned(spy, 1),),
                kwargs={"capture_output": True, "check": True},
            )
            sampler.start()
            cell = bench.cell("gateway", "plain", args.concurrency)
            sampler.join()
        finally:
            bench.close()
        stacks = raw.read_text()
        if args.out is not None:
            args.out.write_text(stacks)
    counts = breakdown(stacks)
    total = sum(counts.values())
    print(f"wrk c={args.concurrency}: {cell['rps']:,.0f} req/s; {total:,} samples holding the GIL")
    for name, n in counts.most_common():
        print(f"  {100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
