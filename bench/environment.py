"""Where a benchmark runs: the machine, the code under test, and the process limits."""

from __future__ import annotations

import contextlib
import io
import os
import platform
import resource
import subprocess
import tarfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import wrk_runner

REPO = Path(__file__).resolve().parent.parent
_PACKAGES = ("uvicorn", "uvloop", "httptools", "msgspec")


def git(*args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=30, check=True
    )
    return out.stdout.strip()


def export_src(ref: str, into: Path) -> Path:
    """`src/` as of commit `ref`, extracted under `into`; the directory for PYTHONPATH."""
    target = into / "src-at-ref"
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", ref, "src"],
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target / "src"


def raise_fd_limit() -> None:
    """Held streams need two descriptors each in the gateway; children inherit this."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def describe(ref: str | None) -> dict[str, Any]:
    """CPU, kernel, Python, package versions, wrk, and the skyroute commit measured."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        if ref is not None:
            commit = git("rev-parse", "--short", ref) + " (exported with --ref)"
        else:
            dirty = git("status", "--porcelain", "--", "src")
            commit = git("rev-parse", "--short", "HEAD")
            commit += " plus uncommitted changes in src/" if dirty else ""
    versions = {}
    for package in _PACKAGES:
        with contextlib.suppress(PackageNotFoundError):
            versions[package] = version(package)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "skyroute_commit": commit,
        "packages": versions,
        "wrk": wrk_runner.wrk_version(),
    }
