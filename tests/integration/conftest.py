"""The gateway on loopback in front of emulated clouds, driven by the official openai SDK.

Two emulators stand for two clouds: an Azure OpenAI resource (the priority tier) and an
OpenAI-compatible server (the second tier, and home of the fallback model). Their keys are
canaries: no response body, header or log line may ever contain them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

from skyroute.core.config import Config, parse_config
from skyroute.emulators.ledger import RequestRecord
from skyroute.emulators.runner import EmulatorThread
from skyroute.server.embedded import GatewayThread

MASTER_KEY = "sk-master-canary-7f3a"
AZURE_KEY = "az-canary-key-91c2"
LOCAL_KEY = "oa-canary-key-5d8e"
CANARIES = (MASTER_KEY, AZURE_KEY, LOCAL_KEY)

PRIMARY = "gpt-4o-prod"  # Azure deployment, priority 0
SECONDARY = "gpt-4o-backup"  # OpenAI-compatible server, priority 1
LARGE = "gpt-4o-128k"  # the fallback model's deployment


def base_document(azure_url: str, local_url: str) -> dict[str, Any]:
    return {
        "auth": {"master_key": MASTER_KEY},
        "providers": {
            "azure-east": {"type": "azure", "endpoint": azure_url, "api_key": AZURE_KEY},
            "local-vllm": {"type": "openai", "base_url": local_url, "api_key": LOCAL_KEY},
        },
        "models": {
            "gpt-4o": {
                "deployments": [
                    {"provider": "azure-east", "model": PRIMARY, "priority": 0},
                    {"provider": "local-vllm", "model": SECONDARY, "priority": 1},
                ],
                "fallbacks": ["gpt-4o-large"],
                "timeouts": {"connect": 1, "first_token": 1.0, "idle": 1.0, "total": 20},
                "retries": {"attempts": 2, "backoff_base": 0.01, "backoff_max": 0.05},
                "circuit": {"failures": 3, "cooldown": 0.5, "max_cooldown": 1.0},
            },
            "gpt-4o-large": {
                "deployments": [{"provider": "local-vllm", "model": LARGE}],
                "timeouts": {"connect": 1, "first_token": 2.0, "idle": 2.0, "total": 20},
            },
        },
        # Lag shedding off: these tests' clients run in the gateway's process and share its
        # GIL, so a burst of them shows up as the gateway's loop lag. test_overload.py
        # turns it on where it is the subject.
        "server": {"max_body_bytes": 64 * 1024, "drain_seconds": 1, "shed_loop_lag_ms": 0},
    }


@pytest.fixture(scope="session")
def azure() -> Iterator[EmulatorThread]:
    with EmulatorThread("azure", api_key=AZURE_KEY) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def local() -> Iterator[EmulatorThread]:
    with EmulatorThread("openai", api_key=LOCAL_KEY) as emulator:
        yield emulator


@pytest.fixture
def clouds(azure: EmulatorThread, local: EmulatorThread) -> Iterator[None]:
    azure.reset()
    local.reset()
    yield
    azure.reset()
    local.reset()


GatewayFactory = Callable[..., GatewayThread]


@pytest.fixture
def start_gateway(
    azure: EmulatorThread, local: EmulatorThread, clouds: None
) -> Iterator[GatewayFactory]:
    """``start_gateway(edit=lambda doc: ...)`` starts a gateway on a (possibly edited) config."""
    running: list[GatewayThread] = []

    def start(edit: Callable[[dict[str, Any]], None] | None = None) -> GatewayThread:
        document = copy.deepcopy(base_document(azure.base_url, local.base_url))
        if edit is not None:
            edit(document)
        config: Config = parse_config(document, {})
        gateway = GatewayThread(config).start()
        running.append(gateway)
        return gateway

    yield start
    for gateway in running:
        gateway.stop()


@pytest.fixture
def gateway(start_gateway: GatewayFactory) -> GatewayThread:
    return start_gateway()


@pytest.fixture
def client(gateway: GatewayThread) -> openai.OpenAI:
    return sdk(gateway)


def sdk(gateway: GatewayThread, key: str = MASTER_KEY, **kw: Any) -> openai.OpenAI:
    # max_retries=0: exactly one retry layer, the gateway's.
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0, **kw)


def chats(emulator: EmulatorThread, model: str) -> list[RequestRecord]:
    """The chat requests an emulator received for one upstream model."""
    return [r for r in emulator.requests() if r.model == model and "chat" in r.path]


def hello(text: str = "Hello there, how are you today") -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]
