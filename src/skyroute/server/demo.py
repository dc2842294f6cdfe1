"""The demo: skyroute in front of emulated clouds, with priority access and failover.

``skyroute serve --demo`` serves the gateway on a fixed port for you to try by hand.
``skyroute demo`` runs a short script instead: the priority provider (emulated Azure)
serves, then fails, traffic moves to the next tier, and returns once Azure recovers.
Every cloud here is an in-process emulator; nothing leaves this machine.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack

from skyroute.core.config import Config, parse_config
from skyroute.emulators.runner import EmulatorThread
from skyroute.server.app import create_app
from skyroute.server.embedded import GatewayThread
from skyroute.server.run import serve
from skyroute.telemetry.logs import collect_secrets, configure_logging

_AZURE_KEY = "demo-azure-key"
_LOCAL_KEY = "demo-local-key"
_PRIMARY = "gpt-4o-prod"


def demo_config(
    azure_url: str, local_url: str, master_key: str, data_dir: str = "skyroute-data"
) -> Config:
    """Azure first (priority 0), a self-hosted OpenAI-compatible server second, and a
    smaller model as the fallback of last resort. Prices are made up for the demo, so
    that usage reports show costs (an Azure price is keyed by the deployment's name)."""
    document = {
        "auth": {"master_key": master_key},
        "store": {"data_dir": data_dir},
        "prices": {
            "entries": [
                _demo_price("azure", _PRIMARY, "2.50", "10.00"),
                _demo_price("openai", "Qwen/Qwen3-*", "0.10", "0.40"),
            ]
        },
        "providers": {
            "azure-east": {"type": "azure", "endpoint": azure_url, "api_key": _AZURE_KEY},
            "local-vllm": {"type": "openai", "base_url": local_url, "api_key": _LOCAL_KEY},
        },
        "models": {
            "gpt-4o": {
                "deployments": [
                    {"provider": "azure-east", "model": _PRIMARY, "priority": 0, "rpm": 600},
                    {"provider": "local-vllm", "model": "Qwen/Qwen3-8B", "priority": 1},
                ],
                "fallbacks": ["gpt-4o-mini"],
                "retries": {"attempts": 1, "backoff_base": 0.05, "backoff_max": 0.2},
                "circuit": {"failures": 2, "cooldown": 2.0, "max_cooldown": 4.0},
                "timeouts": {"connect": 2, "first_token": 10, "idle": 10, "total": 30},
            },
            "gpt-4o-mini": {
                "deployments": [{"provider": "local-vllm", "model": "Qwen/Qwen3-4B"}],
            },
        },
    }
    return parse_config(document, {})


def _demo_price(provider: str, model: str, input_usd: str, output_usd: str) -> dict[str, str]:
    return {
        "provider": provider,
        "model": model,
        "effective": "2025-01-01",
        "source": "demo price, not a real list price",
        "input": input_usd,
        "output": output_usd,
    }


def _master_key() -> tuple[str, bool]:
    given = os.environ.get("SKYROUTE_MASTER_KEY")
    if given:
        return given, False
    return "sk-demo-" + secrets.token_urlsafe(18), True


def serve_demo(host: str, port: int) -> None:
    key, generated = _master_key()
    with ExitStack() as stack:
        azure = stack.enter_context(EmulatorThread("azure", api_key=_AZURE_KEY))
        local = stack.enter_context(EmulatorThread("openai", api_key=_LOCAL_KEY))
        config = demo_config(azure.base_url, local.base_url, key)
        configure_logging(config.server.log_level, collect_secrets(config))
        shown = key if generated else "(from SKYROUTE_MASTER_KEY)"
        print(
            "skyroute demo: EMULATED clouds, nothing leaves this machine\n"
            f"  azure-east  (emulated Azure OpenAI)      {azure.base_url}\n"
            f"  local-vllm  (emulated OpenAI-compatible) {local.base_url}\n"
            f"  gateway     http://{host}:{port}/v1   model: gpt-4o\n"
            f"  master key  {shown}\n",
            flush=True,
        )
        serve(create_app(config), host, port)


def run_scripted_demo() -> int:
    key, _ = _master_key()
    with ExitStack() as stack:
        azure = stack.enter_context(EmulatorThread("azure", api_key=_AZURE_KEY))
        local = stack.enter_context(EmulatorThread("openai", api_key=_LOCAL_KEY))
        data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="skyroute-demo-"))
        gateway = stack.enter_context(
            GatewayThread(demo_config(azure.base_url, local.base_url, key, data_dir))
        )
        print("skyroute demo against EMULATED clouds (azure-east first, local-vllm second)\n")
        _phase("1. Azure healthy: the priority tier serves", gateway.base_url, key, 3)
        azure.add_faults(_PRIMARY, [{"kind": "status", "status": 503, "repeat": True}])
        _phase(
            "2. Azure failing with 503: traffic moves to the next tier", gateway.base_url, key, 4
        )
        azure.clear_faults()
        print("   (Azure recovers; waiting for its circuit to probe it again)")
        time.sleep(2.2)
        _phase(
            "3. Azure healthy again: traffic returns to the priority tier", gateway.base_url, key, 3
        )
    return 0


def _phase(title: str, base_url: str, key: str, count: int) -> None:
    print(title)
    for i in range(count):
        started = time.perf_counter()
        status, served_by, text = _ask(base_url, key, f"request {i + 1}: hello skyroute")
        took = (time.perf_counter() - started) * 1000
        print(f"   {status}  served by {served_by:<34} {took:6.1f} ms  {text[:40]!r}")
    print()


def _ask(base_url: str, key: str, prompt: str) -> tuple[int, str, str]:
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}]})
    request = urllib.request.Request(
        base_url + "/chat/completions",
        data=body.encode(),
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
            served = (
                f"{response.headers['x-skyroute-provider']} "
                f"({response.headers['x-skyroute-deployment']})"
            )
            return response.status, served, answer["choices"][0]["message"]["content"]
    except urllib.error.HTTPError as error:
        return error.code, "-", error.read().decode(errors="replace")
