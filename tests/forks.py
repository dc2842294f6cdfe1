"""Forked children for tests of state shared between processes: always reaped, every wait
bounded, a child's failure reported with its traceback."""

from __future__ import annotations

import os
import select
import signal
import time
import traceback
from collections.abc import Callable


def fork(body: Callable[[], str]) -> tuple[int, int]:
    """Run ``body`` in a forked child; its pid and the read end of what it reports."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read)
            report = body()
            code = 0
        except BaseException:
            report = traceback.format_exc()
        try:
            data = report.encode()
            while data:
                data = data[os.write(write, data) :]
        finally:
            os._exit(code)
    os.close(write)
    return pid, read


def reap(pid: int, deadline: float) -> int | None:
    """The child's exit code, or None if it overran ``deadline`` (it is killed and reaped)."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.002)


def read_line(fd: int, deadline: float) -> str:
    """One line a child wrote, or what it wrote before it stopped (bounded by ``deadline``)."""
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 1)
        if not chunk:
            break
        data += chunk
    return data.decode()


def finish(children: list[tuple[int, int]], deadline: float) -> list[str]:
    """The rest of every child's report, after reaping all of them; fails if any failed."""
    reports: list[str] = []
    failures: list[str] = []
    for pid, read in children:
        chunks: list[bytes] = []
        try:
            while True:
                ready, _, _ = select.select([read], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    break
                chunk = os.read(read, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(read)
        code = reap(pid, deadline)
        report = b"".join(chunks).decode()
        if code != 0:
            failures.append(f"child {pid} exited {code}: {report}")
        reports.append(report)
    assert not failures, "\n".join(failures)
    return reports


class Gate:
    """Children wait at the gate until the parent opens it (closes its end of a pipe)."""

    def __init__(self) -> None:
        self.read, self.write = os.pipe()

    def wait(self) -> None:
        """In a child: drop the inherited write end, then wait (at most 5 s) for EOF."""
        os.close(self.write)
        ready, _, _ = select.select([self.read], [], [], 5.0)
        assert ready and os.read(self.read, 1) == b"", "the gate never opened"

    def open(self) -> None:
        if self.write >= 0:
            os.close(self.write)
            self.write = -1

    def close(self) -> None:
        self.open()
        os.close(self.read)


def wait_readable(fd: int, timeout: float) -> bytes:
    ready, _, _ = select.select([fd], [], [], timeout)
    assert ready, "timed out waiting on a pipe"
    return os.read(fd, 64)
