"""From configured providers to provider objects: a table, not a chain of ifs."""

from __future__ import annotations

from collections.abc import Mapping

from skyroute.core.config import (
    AnthropicProviderConfig,
    AzureProviderConfig,
    BedrockProviderConfig,
    GeminiProviderConfig,
    OpenAIProviderConfig,
    ProviderConfig,
    VertexProviderConfig,
)
from skyroute.providers.anthropic import AnthropicProvider
from skyroute.providers.azure import AzureProvider
from skyroute.providers.base import Provider
from skyroute.providers.bedrock import BedrockProvider
from skyroute.providers.entra import ClientCredentials, StaticToken, TokenProvider
from skyroute.providers.google import GeminiProvider, VertexProvider
from skyroute.providers.openai import OpenAIProvider
from skyroute.transport.client import HttpClient


def build_providers(
    configs: Mapping[str, ProviderConfig],
    client: HttpClient,
    env: Mapping[str, str],
    token_providers: Mapping[str, TokenProvider] | None = None,
) -> dict[str, Provider]:
    """``env`` is where default credentials come from (AWS variables); ``token_providers``
    lets an embedding program supply Azure tokens by provider name."""
    token_providers = token_providers or {}
    providers: dict[str, Provider] = {}
    for name, config in configs.items():
        match config:
            case OpenAIProviderConfig():
                providers[name] = OpenAIProvider(name, config)
            case AzureProviderConfig():
                tokens = token_providers.get(name) or _azure_tokens(config, client)
                providers[name] = AzureProvider(name, config, tokens)
            case BedrockProviderConfig():
                providers[name] = BedrockProvider(name, config, env)
            case VertexProviderConfig():
                providers[name] = VertexProvider(name, config)
            case GeminiProviderConfig():
                providers[name] = GeminiProvider(name, config)
            case AnthropicProviderConfig():
                providers[name] = AnthropicProvider(name, config)
    return providers


def _azure_tokens(config: AzureProviderConfig, client: HttpClient) -> TokenProvider | None:
    if config.ad_token is not None:
        return StaticToken(config.ad_token)
    if config.entra is not None:
        return ClientCredentials(config.entra, client)
    return None
