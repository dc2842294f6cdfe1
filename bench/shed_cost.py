"""What a shed request costs the gateway, against a served one.

    .venv/bin/python bench/shed_cost.py

Starts the emulator (core 1) and, in turn, two gateways (core 0) with the master key: one
with the default `server.max_in_flight`, one with `max_in_flight: 1`, so that under wrk at
64 connections (core 1, 2 s warm-up, then 8 s) nearly every request is shed with a 503.
Prints each gateway's answers per second and CPU per answer (/proc/<pid>/stat). Writes
nothing but a temporary folder.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import gateway_bench as gb
import procs
import wrk_runner

_SKYROUTE = str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "skyroute")


def measure(tmp: Path, emu_port: int, max_in_flight: int | None) -> str:
    config = gb._gateway_config(emu_port, None)
    if max_in_flight is not None:
        config += f"  max_in_flight: {max_in_flight}\n"
    path = tmp / f"gateway-{max_in_flight}.yaml"
    path.write_text(config)
    port = procs.free_port()
    cmd = procs.pinned([_SKYROUTE, "serve", "--config", str(path), "--port", str(port)], 0)
    gateway = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(4)
        headers = [
            ("Authorization", f"Bearer {gb.MASTER_KEY}"),
            ("Content-Type", "application/json"),
        ]
        script = wrk_runner.write_script(tmp / "plain.lua", gb.PLAIN_BODY, headers)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        pin = ["taskset", "-c", "1"]
        wrk_runner.run_wrk(url, script, connections=64, seconds=2, pin=pin)
        before = procs.cpu_seconds(gateway.pid)
        result = wrk_runner.run_wrk(url, script, connections=64, seconds=8, pin=pin)
        cpu = procs.cpu_seconds(gateway.pid) - before
    finally:
        gateway.terminate()
        gateway.wait()
    answers = result["requests"]
    return f"{answers / 8:,.0f} answers/s, {1e6 * cpu / answers:.0f} µs CPU per answer"


def main() -> None:
    emu_port = procs.free_port()
    cmd = [_SKYROUTE, "emulate", "openai", "--port", str(emu_port), "--api-key", gb.UPSTREAM_KEY]
    emulator = subprocess.Popen(
        procs.pinned(cmd, 1), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        time.sleep(3)
        with tempfile.TemporaryDirectory(prefix="skyroute-shed-") as tmp:
            print("served (default max_in_flight):", measure(Path(tmp), emu_port, None))
            print("shed (max_in_flight: 1):        ", measure(Path(tmp), emu_port, 1))
    finally:
        emulator.terminate()
        emulator.wait()


if __name__ == "__main__":
    main()
