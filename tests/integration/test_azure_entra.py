"""Azure with Microsoft Entra ID instead of an API key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from skyroute.core.config import parse_config
from skyroute.emulators.runner import EmulatorThread
from skyroute.server.app import create_app
from skyroute.server.embedded import GatewayThread
from tests.integration.conftest import MASTER_KEY, PRIMARY, hello, sdk

SECRET = "entra-client-secret-canary"


@pytest.fixture
def entra_azure() -> Iterator[EmulatorThread]:
    with EmulatorThread("azure", api_key="unused-key", entra_client_secret=SECRET) as emulator:
        yield emulator


def config_for(emulator: EmulatorThread, entra: dict) -> dict:
    return {
        "auth": {"master_key": MASTER_KEY},
        "providers": {"azure": {"type": "azure", "endpoint": emulator.base_url, **entra}},
        "models": {"gpt-4o": {"deployments": [{"provider": "azure", "model": PRIMARY}]}},
    }


def test_client_credentials_token_is_fetched_once_and_used(entra_azure: EmulatorThread) -> None:
    entra = {
        "entra": {
            "tenant_id": "tenant-1",
            "client_id": "app-1",
            "client_secret": SECRET,
            "authority": entra_azure.base_url,
        }
    }
    with GatewayThread(parse_config(config_for(entra_azure, entra), {})) as gateway:
        client = sdk(gateway)
        for _ in range(3):
            client.chat.completions.create(model="gpt-4o", messages=hello())
    token_calls = [r for r in entra_azure.requests() if r.path.endswith("/oauth2/v2.0/token")]
    chats = [r for r in entra_azure.requests() if "chat" in r.path]
    assert len(token_calls) == 1 and token_calls[0].path == "/tenant-1/oauth2/v2.0/token"
    assert len(chats) == 3
    assert all(r.headers["authorization"] == "***" for r in chats)  # a bearer was sent
    assert all("api-key" not in r.headers for r in chats)


def test_wrong_client_secret_fails_over_as_a_provider_fault(entra_azure: EmulatorThread) -> None:
    entra = {
        "entra": {
            "tenant_id": "t",
            "client_id": "app",
            "client_secret": "wrong",
            "authority": entra_azure.base_url,
        }
    }
    with GatewayThread(parse_config(config_for(entra_azure, entra), {})) as gateway:
        import openai

        with pytest.raises(openai.APIStatusError) as caught:
            sdk(gateway).chat.completions.create(model="gpt-4o", messages=hello())
    assert caught.value.status_code == 502
    assert "wrong" not in caught.value.response.text and SECRET not in caught.value.response.text


def test_a_token_provider_can_be_passed_in(entra_azure: EmulatorThread) -> None:
    class Tokens:
        calls = 0

        async def token(self) -> str:
            Tokens.calls += 1
            return "token-from-my-code"

        async def aclose(self) -> None:
            return None

    document = config_for(entra_azure, {"ad_token": "placeholder"})
    app = create_app(parse_config(document, {}), token_providers={"azure": Tokens()})
    with GatewayThread(app.state.config, app=app) as gateway:
        sdk(gateway).chat.completions.create(model="gpt-4o", messages=hello())
    assert Tokens.calls == 1
