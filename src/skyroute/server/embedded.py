"""Running a gateway inside another program, on a background thread.

Used by the scripted demo and by the integration tests: both need a real gateway on a
real socket while the calling thread acts as the client.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from skyroute.core.config import Config
from skyroute.server.app import SkyrouteApp, create_app
from skyroute.server.run import uvicorn_config


class GatewayThread:
    """``with GatewayThread(config) as gw:`` serves on ``gw.base_url`` until the block ends."""

    def __init__(self, config: Config, *, app: SkyrouteApp | None = None) -> None:
        self.app = app or create_app(config)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.url + "/v1"
        self._server = uvicorn.Server(uvicorn_config(self.app, "127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._run, name="skyroute-gateway", daemon=True)

    def _run(self) -> None:
        self._server.run(sockets=[self._socket])

    def start(self) -> GatewayThread:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the embedded gateway did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)

    def __enter__(self) -> GatewayThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
