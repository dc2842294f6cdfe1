"""``skyroute serve --workers N`` against one process: wrk at 64 connections, plain requests.

    .venv/bin/python bench/workers.py [--seconds 10] [--rounds 3] [--upstream nginx]

Runs the bench gateway (virtual key with limits and a budget, so the shared counters are on
the measured path) three ways, each a fresh gateway, ``--rounds`` times interleaved (this
VM's speed drifts), and prints requests/s and the CPU all gateway processes used per
request, each round and the median:

    1 worker,  pinned to core 0          the baseline (upstream and wrk on core 1)
    2 workers, both pinned to core 0     what two processes on one core cost
    2 workers, on cores 0 and 1          scaling, as far as the machine allows

On a 2-core machine the load side (wrk and the upstream) shares core 1 with the second
worker, so the third line understates scaling; by how much depends on what the load side
costs. The emulator costs about as much a request as the gateway, so with it the third
line shows nothing; ``--upstream nginx`` answers with the emulator's answer from nginx
(``apt-get install -y nginx-light``), about four times cheaper, which leaves most of core
1 to the second worker. Prints; writes nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

import gateway_bench as gb
from procs import Child, free_port, pinned

_TICK = os.sysconf("SC_CLK_TCK")
_ROWS = (
    ("1 worker, core 0", 1, {0}),
    ("2 workers, core 0", 2, {0}),
    ("2 workers, cores 0-1", 2, {0, 1}),
)


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


def emulator_answer(tmp: Path) -> bytes:
    """The emulator's plain answer to the bench request, to serve from nginx."""
    port = free_port()
    skyroute = str(Path(gb.sys.executable).parent / "skyroute")
    command = [skyroute, "emulate", "openai", "--port", str(port), "--api-key", gb.UPSTREAM_KEY]
    emulator = Child("answer-emulator", command, tmp / "answer-emulator.log")
    try:
        emulator.wait_for_log("listening on http://127.0.0.1", timeout=20)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            data=gb.PLAIN_BODY.encode(),
            headers={
                "content-type": "application/json",
                "authorization": f"Bearer {gb.UPSTREAM_KEY}",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: bytes = response.read()
            return answer
    finally:
        emulator.stop()


def start_nginx(tmp: Path) -> tuple[Child, int]:
    """nginx on core 1 answering every chat completion with the emulator's answer."""
    answer = emulator_answer(tmp).decode()
    if "'" in answer or "$" in answer:
        raise RuntimeError("the answer cannot be written into an nginx `return`")
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(f"""\
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    server {{
        listen 127.0.0.1:{port};
        location = /v1/chat/completions {{
            default_type application/json;
            return 200 '{answer}';
        }}
    }}
}}
""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    child = Child("nginx", pinned([nginx, "-c", str(conf), "-p", str(tmp)], 1), tmp / "nginx.log")
    deadline = time.monotonic() + 10
    while not (tmp / "nginx.pid").exists():
        child.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError("nginx did not start:\n" + child.log_tail())
        time.sleep(0.05)
    return child, port


def run(workers: int, cores: set[int], seconds: int, upstream: int | None) -> tuple[float, float]:
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
        bench.upstream_port = upstream
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
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--upstream", choices=["emulator", "nginx"], default="emulator")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="skyroute-nginx-") as tmp:
        nginx = None
        upstream = None
        if args.upstream == "nginx":
            nginx, upstream = start_nginx(Path(tmp))
        try:
            results: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _ in _ROWS}
            for round_ in range(1, args.rounds + 1):
                for label, workers, cores in _ROWS:
                    rps, cpu = run(workers, cores, args.seconds, upstream)
                    results[label].append((rps, cpu))
                    print(f"round {round_}: {label:<22} {rps:>8,.0f} req/s  {cpu:>5.0f} µs CPU")
        finally:
            if nginx is not None:
                nginx.stop()
    print(f"\nmedians over {args.rounds} rounds, upstream {args.upstream}:")
    baseline = statistics.median(rps for rps, _ in results[_ROWS[0][0]])
    for label, _, _ in _ROWS:
        rps = statistics.median(r for r, _ in results[label])
        cpu = statistics.median(c for _, c in results[label])
        print(
            f"{label:<22} {rps:>8,.0f} req/s ({rps / baseline:.2f}x)  "
            f"{cpu:>5.0f} µs CPU a request (all gateway processes)"
        )


if __name__ == "__main__":
    main()
