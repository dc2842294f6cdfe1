"""Processes for the benchmark: start them pinned to a core, wait until ready, stop them, and
read their CPU time and memory from /proc.

Every child starts in its own session (its own process group), so stopping it signals the
whole group and nothing it spawned outlives the benchmark.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

_CLK_TCK = os.sysconf("SC_CLK_TCK")
# Pins a command to a core without taskset: set the affinity, then exec the command.
_PIN_SHIM = (
    "import os, sys; os.sched_setaffinity(0, {int(sys.argv[1])}); "
    "os.execvp(sys.argv[2], sys.argv[2:])"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cmd: list[str], core: int | None) -> list[str]:
    """`cmd` run on one core: with taskset when installed, else with a Python shim."""
    if core is None:
        return cmd
    if shutil.which("taskset"):
        return ["taskset", "-c", str(core), *cmd]
    return [sys.executable, "-c", _PIN_SHIM, str(core), *cmd]


class Child:
    """A started process, its log file, and how to stop it (group-wide, always)."""

    def __init__(self, name: str, cmd: list[str], log: Path, env: dict[str, str] | None = None):
        self.name = name
        self.log = log
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
        self.pid = self.proc.pid

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
            )

    def wait_for_log(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if text in self.log.read_text(errors="replace"):
                return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name}: no {text!r} within {timeout}s:\n{self.log_tail()}")

    def wait_for_http(self, port: int, path: str, timeout: float) -> float:
        """Poll GET path until it answers 200; the seconds it took."""
        began = time.monotonic()
        deadline = began + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                try:
                    conn.request("GET", path)
                    if conn.getresponse().status == 200:
                        return time.monotonic() - began
                finally:
                    conn.close()
            time.sleep(0.05)
        raise TimeoutError(f"{self.name}: {path} not 200 within {timeout}s:\n{self.log_tail()}")

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds."""
        try:
            if self.proc.poll() is None:
                _signal_group(self.pid, signal.SIGTERM)
                try:
                    self.proc.wait(grace)
                except subprocess.TimeoutExpired:
                    _signal_group(self.pid, signal.SIGKILL)
                    self.proc.wait(grace)
            # The leader may be gone while something it started lives on in its group.
            _signal_group(self.pid, signal.SIGKILL)
        finally:
            self._log_file.close()


def kill_group(pgid: int) -> None:
    _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rpartition(b")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def syscalls(pid: int) -> dict[str, int]:
    """Read and write system calls made so far (syscr, syscw in /proc/<pid>/io)."""
    found = {"reads": 0, "writes": 0}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/io", "rb") as f:
        for line in f:
            if line.startswith(b"syscr:"):
                found["reads"] = int(line.split()[1])
            elif line.startswith(b"syscw:"):
                found["writes"] = int(line.split()[1])
    return found


def core_busy_seconds(core: int) -> float:
    """Time one core spent on anything but idle and iowait, from /proc/stat."""
    prefix = f"cpu{core} ".encode()
    with open("/proc/stat", "rb") as f:
        for line in f:
            if line.startswith(prefix):
                ticks = [int(v) for v in line.split()[1:]]
                return (sum(ticks[:8]) - ticks[3] - ticks[4]) / _CLK_TCK
    raise ValueError(f"no cpu{core} in /proc/stat")


def tcp_counters() -> dict[str, int]:
    """System-wide TCP counters: connections opened, and SYNs dropped by full listen queues
    (what `nstat` shows as TcpActiveOpens and TcpExtListenDrops)."""
    found = {"active_opens": 0, "listen_drops": 0}
    for path, section, field, name in (
        ("/proc/net/snmp", "Tcp:", "ActiveOpens", "active_opens"),
        ("/proc/net/netstat", "TcpExt:", "ListenDrops", "listen_drops"),
    ):
        with contextlib.suppress(OSError, ValueError, IndexError):
            rows = [ln.split() for ln in Path(path).read_text().splitlines()]
            names, values = [r for r in rows if r and r[0] == section][:2]
            found[name] = int(values[names.index(field)])
    return found


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak so far), in KiB."""
    found: dict[str, int] = {}
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith((b"VmRSS:", b"VmHWM:")):
                name, value = line.split(b":", 1)
                found[name.decode()] = int(value.split()[0])
    return found


class RssSampler:
    """Samples a process's VmRSS at ~10 Hz in a daemon thread; peaks per time window."""

    def __init__(self, pid: int, interval: float = 0.1, keep: int = 20_000) -> None:
        self._pid = pid
        self._interval = interval
        self._samples: deque[tuple[float, int]] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                rss = memory_kib(self._pid)["VmRSS"]
            except (OSError, KeyError):
                return
            with self._lock:
                self._samples.append((time.monotonic(), rss))

    def window(self, since: float, until: float | None = None) -> dict[str, int]:
        """Sample count, min and max VmRSS (KiB) between two time.monotonic() instants."""
        until = until if until is not None else time.monotonic()
        with self._lock:
            values = [rss for t, rss in self._samples if since <= t <= until]
        if not values:
            return {"samples": 0}
        return {"samples": len(values), "min_kib": min(values), "max_kib": max(values)}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
