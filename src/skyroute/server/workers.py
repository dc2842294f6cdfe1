"""``skyroute serve --workers N``: N processes accepting on one port, sharing counters.

One Python process serves on one core. Workers let one gateway use several, with the
kernel spreading new connections across them (``SO_REUSEPORT``: each worker has its own
listening socket on the same port, so no worker waits on another's accept).

What the supervisor does, in order:

1. Prepares the store once (schema, and every outbox a previous run left is shipped), so
   workers do not race to migrate or to ship each other's usage.
2. Makes the shared counters (server/counters.py: rate limits, budgets and deployment
   quotas, exact across workers) and binds every worker's listening socket, so a port in
   use fails here, at once; then forks the workers. Each worker keeps its own outbox
   (``outbox``, ``outbox.1``, ...), key directory and circuit breakers.
3. Forks a worker again when one dies (the new one drops the slots and reservations its
   predecessor held and ships its outbox). If workers die five times within a minute, the
   supervisor stops the rest and exits 1: a crash loop needs a person.
4. On SIGTERM or SIGINT passes SIGTERM to every worker; each drains as a single gateway
   does, and the supervisor exits 0 once all have exited 0. A worker whose supervisor has
   gone drains and exits by itself.

Forking needs the supervisor to hold no threads and no event loop when it forks: the
store is prepared in an event loop that is closed before the first fork.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from types import FrameType

from skyroute.core.config import Config
from skyroute.server.counters import SharedCounters, WorkerShare
from skyroute.server.storage import StorageError, prepare_store
from skyroute.store.outbox import OutboxLocked

log = logging.getLogger("skyroute.workers")

_BACKLOG = 2048
_CRASHES_ALLOWED = 5
_CRASH_WINDOW = 60.0
_RESPAWN_DELAY = 0.5


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` in a ``SO_REUSEPORT`` group, listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(_BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


class Supervisor:
    def __init__(self, config: Config, host: str, port: int, workers: int) -> None:
        self._config = config
        self._host = host
        self._port = port
        self._workers = workers
        self._children: dict[int, int] = {}  # pid -> worker index
        self._crashes: list[float] = []
        self._stopping = False
        self._failed = False

    def run(self) -> int:
        config = self._config
        try:
            asyncio.run(prepare_store(config.store))
        except (StorageError, OutboxLocked) as exc:
            log.error("cannot start: %s", exc)
            return 1
        counters = SharedCounters(
            workers=self._workers,
            subjects=config.server.shared_subjects,
            deployments=sum(len(m.deployments) for m in config.models.values()),
        )
        try:
            sockets = [listening_socket(self._host, self._port)]
            self._port = sockets[0].getsockname()[1]  # port 0 picks one; all bind the same
            sockets += [listening_socket(self._host, self._port) for _ in range(self._workers - 1)]
        except OSError as exc:
            log.error("cannot listen on %s:%d: %s", self._host, self._port, exc)
            return 1
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        log.info("starting %d workers on %s:%d", self._workers, self._host, self._port)
        for index, sock in enumerate(sockets):
            self._start(counters, index, sock, sockets[index + 1 :])
        return self._watch(counters)

    def _start(
        self,
        counters: SharedCounters,
        index: int,
        sock: socket.socket,
        others: Sequence[socket.socket] = (),
    ) -> None:
        """Fork worker ``index`` on ``sock``; ``others``: sockets of workers not forked yet,
        which it must not keep open (a socket kept by a worker that does not accept on it
        would hold its share of new connections forever once its own worker dies)."""
        pid = os.fork()
        if pid == 0:
            for other in others:
                other.close()
            os._exit(_worker(self._config, counters, index, sock, self._host, self._port))
        sock.close()  # the worker has it; if it dies, new connections go to the others
        self._children[pid] = index

    def _watch(self, counters: SharedCounters) -> int:
        while self._children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            index = self._children.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            if self._stopping:
                if code != 0:
                    log.warning("worker %d (pid %d) exited with %d", index, pid, code)
                    self._failed = True
                continue
            now = time.monotonic()
            self._crashes = [t for t in self._crashes if now - t < _CRASH_WINDOW] + [now]
            if len(self._crashes) >= _CRASHES_ALLOWED:
                log.error(
                    "workers died %d times within %.0f s; stopping",
                    len(self._crashes),
                    _CRASH_WINDOW,
                )
                self._failed = True
                self._stop()
                continue
            log.error("worker %d (pid %d) exited with %d; starting it again", index, pid, code)
            time.sleep(_RESPAWN_DELAY)
            if self._stopping:  # a signal came while waiting
                continue
            try:
                sock = listening_socket(self._host, self._port)
            except OSError as exc:
                log.error("cannot listen again for worker %d: %s", index, exc)
                self._failed = True
                self._stop()
                continue
            self._start(counters, index, sock)
        return 1 if self._failed else 0

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self._stop()

    def _stop(self) -> None:
        self._stopping = True
        for pid in list(self._children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def _worker(
    config: Config,
    counters: SharedCounters,
    index: int,
    sock: socket.socket,
    host: str,
    port: int,
) -> int:
    """The body of worker ``index`` after the fork; its exit status."""
    from skyroute.server.app import create_app
    from skyroute.server.run import serve

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    parent = os.getppid()
    try:
        share = WorkerShare(counters, index)
        share.forget_predecessor()
        app = create_app(config, share=share)
        started = serve(app, host, port, sock=sock, parent=parent)
    except SystemExit as exc:  # uvicorn's way to report a failed start-up
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        log.exception("worker %d failed", index)
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0 if started else 3


def serve_workers(config: Config, host: str, port: int, workers: int) -> int:
    return Supervisor(config, host, port, workers).run()
