"""Memory per open stream, and proof that a client leaving ends the relay.

The emulator is told to stall every stream of one model after 3 chunks, so streams stay
open as long as the client wants. The load generator ("hold" mode) opens N of them through
the gateway, says when each has its first event, and closes them all when told. Meanwhile
the gateway's RSS is sampled; afterwards its CPU must fall to idle: every relay cancelled,
every upstream connection given up.
"""

from __future__ import annotations

import http.client
import json
import select
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from procs import cpu_seconds, kill_group, memory_kib

STALL = {"kind": "stall", "after_tokens": 3, "seconds": 120, "repeat": True}


def measure(
    *, gateway_pid: int, emu_port: int, model: str, count: int, loadgen: list[str], logs: Path
) -> dict[str, Any]:
    """Hold `count` streams of `model` open with the `loadgen` command (its spec included)."""
    _emulator_call(emu_port, "POST", "/_emulator/faults", {"model": model, "faults": [STALL]})
    try:
        time.sleep(1.0)
        before = memory_kib(gateway_pid)["VmRSS"]
        with _holding(loadgen, logs / "hold.stderr") as held:
            time.sleep(0.5)
            cpu0 = cpu_seconds(gateway_pid)
            samples = []
            for _ in range(10):
                samples.append(memory_kib(gateway_pid)["VmRSS"])
                time.sleep(0.1)
            cpu_held = cpu_seconds(gateway_pid) - cpu0
        time.sleep(1.0)  # the clients are gone; give the gateway a moment to notice
        cpu0 = cpu_seconds(gateway_pid)
        time.sleep(1.0)
        cpu_after = cpu_seconds(gateway_pid) - cpu0
    finally:
        _emulator_call(emu_port, "DELETE", "/_emulator/faults", None)
    during = max(samples)
    return {
        "requested": count,
        "held": held["held"],
        "errors": held["errors"],
        "rss_before_kib": before,
        "rss_held_kib": during,
        "per_stream_kib": (during - before) / held["held"] if held["held"] else None,
        "cpu_while_held_s_per_s": cpu_held,
        "cpu_after_release_s_per_s": cpu_after,
        "rss_after_release_kib": memory_kib(gateway_pid)["VmRSS"],
    }


@contextmanager
def _holding(cmd: list[str], stderr_path: Path) -> Iterator[dict[str, Any]]:
    """Run the hold-mode load generator; inside the block its streams are open. The dict
    gets "held" on entry and the generator's summary ("errors") on exit."""
    with stderr_path.open("w") as stderr:  # a file: a full pipe would block the child
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    try:
        line = _read_line(proc, timeout=60)
        if not line.startswith("HELD "):
            raise RuntimeError(f"hold: unexpected {line!r}: {stderr_path.read_text()[-2000:]}")
        state: dict[str, Any] = {"held": int(line.split()[1])}
        yield state
        assert proc.stdin is not None
        proc.stdin.write("\n")  # let go of every stream
        proc.stdin.flush()
        out, _ = proc.communicate(timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"hold loadgen failed: {stderr_path.read_text()[-2000:]}")
        state["errors"] = json.loads(out.strip().splitlines()[-1])["errors"]
    finally:
        if proc.poll() is None:
            kill_group(proc.pid)
            proc.wait(5)


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError("load generator did not report in time")
    return proc.stdout.readline().strip()


def _emulator_call(port: int, method: str, path: str, payload: dict[str, Any] | None) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = None if payload is None else json.dumps(payload)
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"{method} {path} on the emulator: HTTP {response.status}")
