"""Throwaway PostgreSQL clusters for tests, from the Debian package's binaries.

``Cluster.create(root)`` runs initdb in ``root/data`` and starts the server on a free
loopback port; ``stop`` and ``start`` bring the same cluster down and up again on the same
port and data directory (a test of a database outage does that), ``remove`` stops it for
good. ``skip_reason`` says why no cluster can be made here, or None.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["Cluster", "free_port", "skip_reason"]

StopMode = Literal["smart", "fast", "immediate"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def skip_reason() -> str | None:
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        return (
            "no PostgreSQL binaries (/usr/lib/postgresql/*/bin/initdb); apt-get install postgresql"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' OS user to run initdb"
    return None


def _bindir() -> Path:
    return Path(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))[-1]).parent


def _as_postgres(args: list[str]) -> list[str]:
    # initdb refuses to run as root; run the cluster as the package's OS user.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@dataclass(frozen=True)
class Cluster:
    """One cluster: its files under ``root``, its server on ``port`` (trust auth)."""

    root: Path
    port: int

    @property
    def url(self) -> str:
        """The admin URL (user and database ``postgres``)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def create(cls, root: Path) -> Cluster:
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(root, user.pw_uid, user.pw_gid)
        data = root / "data"
        init = [str(_bindir() / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
        subprocess.run(_as_postgres([*init, "-E", "UTF8", "-N"]), check=True, capture_output=True)
        cluster = cls(root, free_port())
        cluster.start()
        return cluster

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._pg_ctl("-l", str(self.root / "log"), "-w", "-o", options, "start", check=True)

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server and wait until it is down (connections are refused from then)."""
        self._pg_ctl("-m", mode, "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _pg_ctl(self, *args: str, check: bool) -> None:
        command = [str(_bindir() / "pg_ctl"), "-D", str(self.root / "data"), *args]
        subprocess.run(_as_postgres(command), check=check, capture_output=True)
