"""Running an emulator: in the current event loop, in a background thread, or as a process.

emu = await serve_emulator("openai", "127.0.0.1", 0, api_key="sk-test")
client = openai.AsyncOpenAI(base_url=emu.base_url, api_key="sk-test")
...
await emu.close()

with EmulatorThread("azure", api_key="k") as emu:      # for synchronous tests
    emu.add_faults("gpt-4o", [{"kind": "status", "status": 429}])
    openai.AzureOpenAI(azure_endpoint=emu.base_url, api_key="k", api_version="2024-10-21")

with EmulatorThread("bedrock", access_key_id="AKIDEXAMPLE", secret_access_key="s") as emu:
    boto3.client("bedrock-runtime", endpoint_url=emu.base_url, ...)

with EmulatorThread("vertex", token="ya29.test") as emu:    # or ("gemini", api_key="AIza-test")
    genai.Client(vertexai=True, ..., http_options=types.HttpOptions(base_url=emu.base_url))

with EmulatorThread("anthropic", api_key="sk-ant-test") as emu:
    anthropic.Anthropic(base_url=emu.base_url, api_key="sk-ant-test", max_retries=0)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine, Iterable
from types import TracebackType
from typing import Any, Literal, TypeAlias, TypeVar

from skyroute.emulators.anthropic import AnthropicEmulator
from skyroute.emulators.bedrock import BedrockEmulator
from skyroute.emulators.faults import Fault, to_fault
from skyroute.emulators.google import GoogleEmulator
from skyroute.emulators.http import ConnectionSet, HttpLimits, start_server
from skyroute.emulators.ledger import RequestRecord
from skyroute.emulators.openai import OpenAIEmulator

__all__ = [
    "Emulator",
    "EmulatorThread",
    "Flavor",
    "RunningEmulator",
    "run_emulator_forever",
    "serve_emulator",
]

_T = TypeVar("_T")
_START_TIMEOUT = 10.0
_BASE_PATHS = {
    "openai": "/v1",
    "azure": "",
    "bedrock": "",
    "vertex": "",
    "gemini": "",
    "anthropic": "",
}

Flavor = Literal["openai", "azure", "bedrock", "vertex", "gemini", "anthropic"]
Emulator: TypeAlias = OpenAIEmulator | BedrockEmulator | GoogleEmulator | AnthropicEmulator


class RunningEmulator:
    """An emulator listening in the current event loop."""

    def __init__(
        self,
        emulator: Emulator,
        server: asyncio.Server,
        connections: ConnectionSet,
        host: str,
        port: int,
    ) -> None:
        self.emulator = emulator
        self.host = host
        self.port = port
        self._server = server
        self._connections = connections

    @property
    def base_url(self) -> str:
        """What an SDK takes: `http://h:p/v1` (OpenAI `base_url`) or `http://h:p` (Azure,
        Bedrock's `endpoint_url` / AnthropicBedrock's `base_url`)."""
        return f"http://{self.host}:{self.port}{_BASE_PATHS[self.emulator.flavor]}"

    async def close(self) -> None:
        """Stop listening and abort every open connection (hanging ones included)."""
        self._server.close()
        self._connections.abort_all()
        await self._server.wait_closed()


async def serve_emulator(
    flavor: Flavor,
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str | None = None,
    *,
    limits: HttpLimits | None = None,
    **kw: Any,
) -> RunningEmulator:
    """Start an emulator; `kw` goes to `OpenAIEmulator` (faults, model_ids, ...) or, for
    "bedrock", to `BedrockEmulator` (access_key_id, secret_access_key, session_token, ...),
    where `api_key` is the Bedrock API key accepted as `Authorization: Bearer`; for "vertex"
    and "gemini", to `GoogleEmulator` (token, service_accounts, model_ids, ...); for
    "anthropic", to `AnthropicEmulator` (model_ids, cache_limit, ...), where `api_key` is
    accepted as `x-api-key` or `Authorization: Bearer`."""
    emulator = _build(flavor, api_key, kw)
    connections = ConnectionSet()
    server, bound = await start_server(
        emulator.handle, host, port, limits=limits, connections=connections
    )
    return RunningEmulator(emulator, server, connections, host, bound)


def _build(flavor: Flavor, api_key: str | None, kw: dict[str, Any]) -> Emulator:
    if flavor == "bedrock":
        return BedrockEmulator(api_key=api_key, **kw)
    if flavor == "vertex" or flavor == "gemini":
        return GoogleEmulator(flavor, api_key, **kw)  # token, service_accounts, ...
    if flavor == "anthropic":
        return AnthropicEmulator(api_key, **kw)  # model_ids, cache_limit, ...
    return OpenAIEmulator(flavor, api_key, **kw)


class EmulatorThread:
    """An emulator on its own event loop in a daemon thread, for synchronous code.

    Everything that touches the emulator runs on that loop, so the helpers are thread-safe.
    """

    def __init__(
        self,
        flavor: Flavor,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        *,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
        **kw: Any,
    ) -> None:
        self._flavor = flavor
        self._api_key = api_key
        self._host = host
        self._kw = kw
        self._loop = loop_factory()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._running: RunningEmulator | None = None

    def start(self) -> EmulatorThread:
        self._thread.start()
        start = serve_emulator(self._flavor, self._host, 0, self._api_key, **self._kw)
        self._running = self._call(start)
        return self

    def stop(self) -> None:
        if self._running is not None:
            self._call(self._running.close())
            self._running = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(_START_TIMEOUT)
        with contextlib.suppress(RuntimeError):
            self._loop.close()

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def _live(self) -> RunningEmulator:
        if self._running is None:
            raise RuntimeError("the emulator thread is not running")
        return self._running

    @property
    def port(self) -> int:
        return self._live.port

    @property
    def base_url(self) -> str:
        return self._live.base_url

    @property
    def emulator(self) -> Emulator:
        return self._live.emulator

    def add_faults(self, model: str, faults: Iterable[Fault | dict[str, object]]) -> None:
        specs = [to_fault(spec) for spec in faults]
        self._run(lambda: self.emulator.script.add(model, specs))

    def clear_faults(self) -> None:
        self._run(self.emulator.script.clear)

    def requests(self) -> list[RequestRecord]:
        return self._run(lambda: list(self.emulator.requests))

    def reset(self) -> None:
        self._run(self.emulator.reset)

    def _run(self, action: Callable[[], _T]) -> _T:
        async def on_loop() -> _T:
            return action()

        return self._call(on_loop())

    def _call(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(_START_TIMEOUT)


def run_emulator_forever(
    flavor: Flavor,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    **kw: Any,
) -> None:
    """Serve until interrupted (`skyroute emulate <flavor>`, any `Flavor`); uses
    uvloop when present. `kw` goes to the emulator (for bedrock: access_key_id,
    secret_access_key, ...; for vertex: token, service_accounts)."""

    async def main() -> None:
        running = await serve_emulator(flavor, host, port, api_key, **kw)
        url = f"http://{host}:{running.port}"
        print(f"skyroute emulator ({flavor}) listening on {url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await running.close()

    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(main())
