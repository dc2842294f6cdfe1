"""The gateway's CPU per request split into user and system time, at concurrency 1 and 64.

    .venv/bin/python bench/cpu_split.py [--ref COMMIT]

Starts the emulator and the gateway as bench/gateway_bench.py does (gateway pinned to core
0, the rest on core 1), then reads the gateway's utime and stime (/proc/<pid>/stat) around
a paired concurrency-1 run (22,000 requests, gateway and direct alternating) and a wrk cell
at 64 connections (2 s warm-up + 10 s, both counted). ``--ref`` measures src/ as of that
commit instead of the working tree, for a before/after on the same machine in the same hour.
Prints; writes nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import gateway_bench as gb

_TICK = os.sysconf("SC_CLK_TCK")
_PLAN = gb.Plan(
    latency_samples=20_000,
    latency_warmup=2_000,
    cell_seconds=10,
    cell_warmup_seconds=2,
    held_streams=10,
    retries=0,
)


def user_and_system_s(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / _TICK, int(fields[12]) / _TICK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", help="measure src/ as of this git commit")
    args = argparse.Namespace(
        no_pin=False, gateway_core=0, load_core=1, ref=parser.parse_args().ref
    )
    with tempfile.TemporaryDirectory(prefix="skyroute-cpu-") as tmp:
        bench = gb.Bench(Path(tmp), _PLAN, args, "wrk")
        try:
            bench.start()
            assert bench.gateway is not None
            pid = bench.gateway.pid
            user, system = user_and_system_s(pid)
            bench.latency("plain")
            requests = _PLAN.latency_samples + _PLAN.latency_warmup
            user2, system2 = user_and_system_s(pid)
            print(
                f"c=1:  user {1e6 * (user2 - user) / requests:.0f} µs/request, "
                f"system {1e6 * (system2 - system) / requests:.0f} µs/request"
            )
            cell = bench.cell("gateway", "plain", 64)
            user3, system3 = user_and_system_s(pid)
            print(
                f"c=64: {cell['rps']:,.0f} req/s measured; over warm-up and measurement "
                f"user {user3 - user2:.2f} s, system {system3 - system2:.2f} s"
            )
        finally:
            bench.close()


if __name__ == "__main__":
    main()
