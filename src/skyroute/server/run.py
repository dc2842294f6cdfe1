"""Running the app under uvicorn, with a drain on SIGTERM.

On SIGTERM (or SIGINT) readiness fails at once and uvicorn stops accepting; streams in
flight keep going until ``server.drain_seconds`` and are then ended with an in-band
``server_shutting_down`` error; uvicorn's own graceful timeout, a little longer, is the
backstop for anything still running.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
from types import FrameType

import uvicorn

from skyroute.server.app import SkyrouteApp

# uvicorn's backstop comes this long after our drain deadline, so our error events win.
_BACKSTOP = 3


class DrainingServer(uvicorn.Server):
    """``parent``: a worker's supervisor; if it is gone, the worker drains and exits."""

    def __init__(self, config: uvicorn.Config, app: SkyrouteApp, parent: int | None = None) -> None:
        super().__init__(config)
        self._app = app
        self._parent = parent
        self._interrupts = 0

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # uvicorn re-raises a captured signal after shutdown, so the process would die by
        # SIGTERM; a drained gateway exits 0 instead. A second Ctrl-C forces exit (a
        # worker gets the terminal's Ctrl-C and its supervisor's SIGTERM: one each).
        self._app.request_drain()
        if sig == signal.SIGINT:
            self._interrupts += 1
            if self._interrupts > 1:
                self.force_exit = True
        self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        # uvicorn calls this every 0.1 s; once a second, is the supervisor still there?
        if self._parent is not None and counter % 10 == 0 and os.getppid() != self._parent:
            self.handle_exit(signal.SIGTERM, None)
        return await super().on_tick(counter)


def uvicorn_config(app: SkyrouteApp, host: str, port: int) -> uvicorn.Config:
    server = app.state.config.server
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop=_best_loop(),
        http="httptools",
        ws="none",  # no websocket routes; not loading the library saves ~0.5 MiB
        lifespan="on",
        access_log=False,
        log_config=None,
        log_level=server.log_level,
        server_header=False,
        # Behind a load balancer the client address is the balancer's; trusting
        # X-Forwarded-For from anything is not ours to decide by default.
        proxy_headers=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=int(server.drain_seconds) + _BACKSTOP,
    )
    # No per-request access log on the hot path: uvicorn's costs ~10 µs a request.
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False
    return config


def serve(
    app: SkyrouteApp,
    host: str,
    port: int,
    *,
    sock: socket.socket | None = None,
    parent: int | None = None,
) -> bool:
    """Serve until drained; False if start-up failed. A worker passes its listening
    ``sock`` and its supervisor's pid."""
    tune_gc()
    # The store's start-up (SQLAlchemy, the key snapshot) makes many long-lived
    # objects after the freeze above; freeze again once it is done.
    app.after_start = _freeze
    server = DrainingServer(uvicorn_config(app, host, port), app, parent)
    server.run(sockets=None if sock is None else [sock])
    return server.started


def tune_gc() -> None:
    """Move start-up objects out of the collector's sight and collect less often.

    Measured under load (docs/performance.md): full collections ran about four times a
    second at ~7 ms each and cost ~7% of the CPU; after this, one in 16 s, and CPU per
    plain request fell from 77 to 64 µs. Request-path objects are short-lived and freed
    by reference counting; the cyclic collector rarely finds anything there.
    """
    _freeze()
    gc.set_threshold(20_000, 50, 100)


def _freeze() -> None:
    gc.collect()
    gc.freeze()


def _best_loop() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"
