"""``skyroute serve --workers N`` against one process: wrk at 64 connections, plain requests.

    .venv/bin/python bench/workers.py [--seconds 10]

Runs the bench gateway (virtual key with limits and a budget, so the shared counters are on
the measured path) three ways, each a fresh gateway, and prints requests/s and the CPU all
gateway processes used per request:

    1 worker,  pinned to core 0          the baseline (emulator and wrk on core 1)
    2 workers, both pinned to core 0     what sharing the counters costs: same CPU, two
                                         processes and a cross-process lock per change
    2 workers, on both cores             scaling, where the machine allows it

On a 2-core machine the third line is not a scaling figure: the workers share core 1 with
wrk and the emulator. The ≥ 1.7x target needs at least four cores (two for the gateway).
Prints; writes nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import gateway_bench as gb

_TICK = os.sysconf("SC_CLK_TCK")


def family(root: int) -> dict[int, list[str]]:
    """``root`` and its children (the workers): pid -> the fields of /proc/<pid>/stat."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == root or int(fields[1]) == root:
            found[int(entry.name)] = fields
    return found


def cpu_seconds(root: int) -> float:
    """User + system CPU of ``root`` and its children, now."""
    return sum((int(f[11]) + int(f[12])) / _TICK for f in family(root).values())


def run(workers: int, cores: set[int], seconds: int) -> tuple[float, float]:
    plan = gb.Plan(
        latency_samples=0,
        latency_warmup=0,
        cell_seconds=seconds,
        cell_warmup_seconds=2,
        held_streams=0,
        retries=0,
    )
    args = argparse.Namespace(no_pin=False, gateway_core=0, load_core=1, ref=None)
    with tempfile.TemporaryDirectory(prefix="skyroute-workers-") as tmp:
        bench = gb.Bench(Path(tmp), plan, args, "wrk")
        if workers > 1:
            bench.gateway_args = ["--workers", str(workers)]
        try:
            bench.start()  # the gateway starts on core 0
            assert bench.gateway is not None
            for pid in family(bench.gateway.pid):
                os.sched_setaffinity(pid, cores)
            before = cpu_seconds(bench.gateway.pid)
            cell = bench.cell("gateway", "plain", 64)
            used = cpu_seconds(bench.gateway.pid) - before
        finally:
            bench.close()
    served = cell["rps"] * (seconds + plan.cell_warmup_seconds)
    return cell["rps"], 1e6 * used / served


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    seconds = parser.parse_args().seconds
    rows = [
        ("1 worker, core 0", 1, {0}),
        ("2 workers, core 0", 2, {0}),
        ("2 workers, cores 0-1", 2, {0, 1}),
    ]
    baseline = None
    for label, workers, core in rows:
        rps, cpu = run(workers, core, seconds)
        baseline = baseline or rps
        print(
            f"{label:<22} {rps:>8,.0f} req/s ({rps / baseline:.2f}x)  "
            f"{cpu:>5.0f} µs CPU a request (all gateway processes)"
        )


if __name__ == "__main__":
    main()
