from __future__ import annotations

import textwrap

import pytest

from skyroute.core.config import AzureProviderConfig, ConfigError, OpenAIProviderConfig
from skyroute.server.config_loader import load_config, load_config_text

EXAMPLE = textwrap.dedent(
    """
    auth:
      master_key: ${SKYROUTE_MASTER_KEY}
    providers:
      azure-east:
        type: azure
        endpoint: https://contoso.openai.azure.com
        api_key: ${AZURE_OPENAI_API_KEY}
        api_version: "2024-10-21"
      local-vllm:
        type: openai
        base_url: http://127.0.0.1:8000/v1
    models:
      gpt-4o:
        deployments:
          - {provider: azure-east, model: gpt-4o-prod, priority: 0, rpm: 600, tpm: 150000}
          - {provider: local-vllm, model: Qwen/Qwen3-8B, priority: 1, weight: 3}
        fallbacks: [gpt-4o-mini]
        timeouts: {connect: 5, first_token: 30, idle: 30, total: 600}
        retries: {attempts: 2}
      gpt-4o-mini:
        deployments:
          - {provider: local-vllm, model: Qwen/Qwen3-4B}
    """
)
ENV = {"SKYROUTE_MASTER_KEY": "sk-master-canary", "AZURE_OPENAI_API_KEY": "az-canary-key"}


def _errors(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config_text(textwrap.dedent(text), ENV if env is None else env)
    return caught.value.errors


def test_the_documented_example_loads() -> None:
    config = load_config_text(EXAMPLE, ENV)
    azure = config.providers["azure-east"]
    assert isinstance(azure, AzureProviderConfig)
    assert azure.api_key is not None and azure.api_key.reveal() == "az-canary-key"
    assert isinstance(config.providers["local-vllm"], OpenAIProviderConfig)
    model = config.models["gpt-4o"]
    assert [d.priority for d in model.deployments] == [0, 1]
    assert model.deployments[0].rpm == 600 and model.deployments[1].weight == 3
    assert model.fallbacks == ["gpt-4o-mini"]
    assert model.timeouts.first_token == 30 and model.retries.attempts == 2


def test_secrets_never_show_in_repr() -> None:
    config = load_config_text(EXAMPLE, ENV)
    text = repr(config)
    assert "az-canary-key" not in text and "sk-master-canary" not in text


def test_missing_environment_variables_are_named_with_their_path() -> None:
    errors = _errors(EXAMPLE, {})
    assert "auth.master_key: environment variable SKYROUTE_MASTER_KEY is not set" in errors
    assert (
        "providers.azure-east.api_key: environment variable AZURE_OPENAI_API_KEY is not set"
        in errors
    )


def test_every_error_is_collected_with_its_path() -> None:
    errors = _errors(
        """
        auth: {master_key: k}
        surprise: 1
        providers:
          a: {type: openai}
          b: {type: gcp}
        models:
          m:
            deployments:
              - {provider: a, model: x, colour: red}
              - {provider: x, model: y}
            fallbacks: [m, nope]
          n:
            deployments: []
        """
    )
    assert errors == [
        "surprise: unknown field",
        "providers.b.type: Invalid value 'gcp'",
        "models.m.deployments[0]: Object contains unknown field `colour`",
        "models.m.deployments[1].provider: unknown provider 'x'",
        "models.m.fallbacks[0]: a model cannot fall back to itself",
        "models.m.fallbacks[1]: unknown model 'nope'",
        "models.n.deployments: at least one deployment is required",
    ]


def test_values_are_checked() -> None:
    errors = _errors(
        """
        auth: {master_key: k}
        providers:
          a: {type: openai, base_url: "ftp://x"}
          z: {type: azure, endpoint: "https://user:pw@h.example"}
        models:
          m:
            deployments:
              - {provider: a, model: x, weight: 0, rpm: -1, priority: -2}
            timeouts: {first_token: 0}
            retries: {attempts: 50}
            circuit: {failures: 0}
        """
    )
    assert "providers.a.base_url: must be an http:// or https:// URL with a host" in errors
    assert "providers.z.endpoint: credentials in the URL are not allowed; use api_key" in errors
    assert "providers.z: set exactly one of api_key, ad_token, entra" in errors
    assert "models.m.deployments[0].weight: must be positive" in errors
    assert "models.m.deployments[0].rpm: must be positive" in errors
    assert "models.m.deployments[0].priority: must not be negative" in errors
    assert "models.m.timeouts.first_token: must be positive" in errors
    assert "models.m.retries.attempts: must be between 0 and 10" in errors
    assert "models.m.circuit.failures: must be at least 1" in errors


def test_load_shedding_settings_are_checked() -> None:
    errors = _errors(
        """
        auth: {master_key: k}
        server: {max_in_flight: 0, shed_loop_lag_ms: -1}
        """
    )
    assert "server.max_in_flight: must be at least 1" in errors
    assert "server.shed_loop_lag_ms: must not be negative (0 turns it off)" in errors


def test_worker_settings_are_checked() -> None:
    errors = _errors(
        """
        auth: {master_key: k}
        server: {workers: 0, shared_subjects: 0}
        """
    )
    assert "server.workers: must be from 1 to 64" in errors
    assert "server.shared_subjects: must be from 1 to 1,048,576" in errors
    assert "server.workers: must be from 1 to 64" in _errors(
        "auth: {master_key: k}\nserver: {workers: 65}"
    )


def test_wrong_types_name_the_field() -> None:
    errors = _errors(
        """
        auth: {master_key: k}
        providers: {a: {type: openai}}
        models:
          m:
            deployments: [{provider: a, model: x, rpm: lots}]
        """
    )
    assert errors == ["models.m.deployments[0].rpm: Expected `int | null`, got `str`"]


def test_master_key_is_required() -> None:
    assert "auth.master_key: required (use an env reference like ${SKYROUTE_MASTER_KEY})" in (
        _errors("providers: {}\nmodels: {}\n")
    )


def test_invalid_yaml_and_missing_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert _errors("models: [unclosed\n") == ["<config>: invalid YAML at line 2"]
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml", {})
    assert "cannot read the file" in caught.value.errors[0]


def test_yaml_cannot_build_python_objects() -> None:
    errors = _errors("auth: !!python/object/apply:os.system ['true']\n")
    assert errors == ["<config>: invalid YAML at line 1"]
