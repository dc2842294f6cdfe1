"""The configuration schema (``skyroute.yaml``) and its validation.

Two phases, as in tensorzero: a raw parse of each section into frozen Structs that rejects
unknown fields, then a validation pass that resolves references (deployment → provider,
fallback → model). Both phases collect every error with its path, so an operator sees all
mistakes at once: ``models.gpt-4o.deployments[1].provider: unknown provider 'x'``.

``${VAR}`` references are resolved here from an environment passed in by the caller; they
are only honoured in this operator-owned file, never in anything written through an API.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from skyroute.core.secret import Secret

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class Timeouts(_Section, frozen=True):
    """Seconds. ``first_token`` bounds the wait for the first byte of a response (headers
    for a plain request, the first event of a stream); ``idle`` the gap between stream
    events; ``total`` the whole logical request, retries and failover included."""

    connect: float = 5.0
    first_token: float = 120.0
    idle: float = 120.0
    total: float = 600.0


class Retries(_Section, frozen=True):
    """Extra attempts on one deployment for retryable errors, with full-jitter backoff."""

    attempts: int = 2
    backoff_base: float = 0.25
    backoff_max: float = 8.0
    max_retry_after: float = 30.0


class Circuit(_Section, frozen=True):
    """Per deployment: open after ``failures`` consecutive failures, probe after
    ``cooldown`` seconds (doubling on each failed probe, up to ``max_cooldown``)."""

    failures: int = 5
    cooldown: float = 30.0
    max_cooldown: float = 300.0


class DeploymentConfig(_Section, frozen=True):
    provider: str
    model: str
    priority: int = 0
    weight: float = 1.0
    rpm: int | None = None
    tpm: int | None = None


class ModelConfig(_Section, frozen=True):
    deployments: list[DeploymentConfig]
    fallbacks: list[str] = []
    timeouts: Timeouts = Timeouts()
    retries: Retries = Retries()
    circuit: Circuit = Circuit()


class OpenAIProviderConfig(_Section, frozen=True, tag_field="type", tag="openai"):
    """OpenAI itself or any OpenAI-compatible server (vLLM, Ollama, llama.cpp)."""

    base_url: str = "https://api.openai.com/v1"
    api_key: Secret | None = None
    organization: str | None = None
    project: str | None = None


class EntraConfig(_Section, frozen=True):
    """Microsoft Entra ID client-credentials grant, for Azure without API keys."""

    tenant_id: str
    client_id: str
    client_secret: Secret
    authority: str = "https://login.microsoftonline.com"
    scope: str = "https://cognitiveservices.azure.com/.default"


class AzureProviderConfig(_Section, frozen=True, tag_field="type", tag="azure"):
    """Azure OpenAI, classic ``/openai/deployments/{d}`` API with a dated api-version."""

    endpoint: str
    api_key: Secret | None = None
    ad_token: Secret | None = None
    entra: EntraConfig | None = None
    api_version: str = "2024-10-21"


class BedrockProviderConfig(_Section, frozen=True, tag_field="type", tag="bedrock"):
    # ``api: invoke`` sends Claude models through InvokeModel in Anthropic's own body
    # format instead of Converse (see docs/bedrock.md).
    """AWS Bedrock Runtime through the Converse API, signed with SigV4.

    Credentials: ``access_key_id`` + ``secret_access_key`` (+ ``session_token``) from env
    references; or ``api_key`` (a Bedrock API key, sent as a bearer token); or, when none
    is set, the standard AWS chain (environment variables, then, with the ``aws`` extra,
    shared files and profiles, web identity, container and instance metadata).
    """

    region: str
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: Secret | None = None
    session_token: Secret | None = None
    api_key: Secret | None = None
    profile: str | None = None
    drop_unsupported_params: bool = False
    api: Literal["converse", "invoke"] = "converse"


class VertexProviderConfig(_Section, frozen=True, tag_field="type", tag="vertex"):
    """Google Vertex AI. The deployment's ``model`` picks the API: a Gemini model name
    (``gemini-2.5-flash``) uses generateContent; a ``publisher/model`` name
    (``meta/llama-3.3-70b-instruct-maas``) uses Vertex's OpenAI-compatible endpoint.

    Credentials: a static ``access_token``; a service-account key file
    (``credentials_file``); or Application Default Credentials (which include workload
    identity federation), through google-auth.
    """

    project: str
    location: str
    endpoint: str | None = None
    access_token: Secret | None = None
    credentials_file: str | None = None
    api_version: str = "v1"


class GeminiProviderConfig(_Section, frozen=True, tag_field="type", tag="gemini"):
    """The Gemini API (Google AI Studio). The key goes in the ``x-goog-api-key`` header,
    never in a URL, so it cannot leak through a logged URL."""

    api_key: Secret
    base_url: str = "https://generativelanguage.googleapis.com"
    api_version: str = "v1beta"


class AnthropicProviderConfig(_Section, frozen=True, tag_field="type", tag="anthropic"):
    """Anthropic's Messages API, or anything that speaks it (Azure AI Foundry's Anthropic
    endpoint, proxies): ``base_url`` without the ``/v1`` suffix."""

    api_key: Secret
    base_url: str = "https://api.anthropic.com"
    version: str = "2023-06-01"


ProviderConfig = (
    OpenAIProviderConfig
    | AnthropicProviderConfig
    | AzureProviderConfig
    | BedrockProviderConfig
    | VertexProviderConfig
    | GeminiProviderConfig
)


class AuthConfig(_Section, frozen=True):
    """``root_secret`` derives the keys that hash virtual keys (and, later, encrypt stored
    secrets and sign sessions). Unset, the master key is the root secret: then changing the
    master key invalidates every virtual key, so production configs should set both."""

    master_key: Secret | None = None
    root_secret: Secret | None = None


class StoreConfig(_Section, frozen=True):
    """Where state lives. ``database_url`` unset: a SQLite file in ``data_dir``; set
    (``postgresql://user:pass@host/db``): PostgreSQL. The usage outbox is always a local
    directory (``data_dir/outbox``): spend is written there before a response completes
    and shipped to the database in batches."""

    database_url: Secret | None = None
    data_dir: str = "skyroute-data"
    outbox_fsync: bool = False
    key_refresh_seconds: float = 5.0
    startup_timeout: float = 30.0


MAX_WORKERS = 64
MAX_SHARED_SUBJECTS = 1 << 20


class ServerConfig(_Section, frozen=True):
    """``max_in_flight`` and ``shed_loop_lag_ms`` shed model requests with a fast 503 while
    the gateway is overloaded (server/admission.py); ``shed_loop_lag_ms: 0`` turns the lag
    signal off. ``workers`` processes accept on one port (server/workers.py) and share
    limits, budgets and quotas in a table of ``shared_subjects`` records."""

    host: str = "127.0.0.1"
    port: int = 4000
    max_body_bytes: int = 32 * 1024 * 1024
    drain_seconds: float = 25.0
    max_in_flight: int = 10_000
    shed_loop_lag_ms: float = 100.0
    workers: int = 1
    shared_subjects: int = 65_536
    log_level: Literal["debug", "info", "warning", "error"] = "info"


class Config(_Section, frozen=True):
    auth: AuthConfig = AuthConfig()
    providers: dict[str, ProviderConfig] = {}
    models: dict[str, ModelConfig] = {}
    server: ServerConfig = ServerConfig()
    store: StoreConfig = StoreConfig()
    # Price overrides ({"version"?, "entries": [...]}), merged over the shipped table and
    # checked by ``governance.prices`` when the config is loaded.
    prices: dict[str, Any] = {}


class ConfigError(Exception):
    """Raised with every problem found; ``errors`` holds one ``path: message`` each."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def parse_config(data: object, env: Mapping[str, str]) -> Config:
    """Turn a parsed YAML document into a validated ``Config`` or raise ``ConfigError``."""
    errors: list[str] = []
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(["<root>: expected a mapping"])
    data = _resolve_env(data, env, "", errors)
    assert isinstance(data, dict)
    known = set(Config.__struct_fields__)
    for key in data:
        if key not in known:
            errors.append(f"{key}: unknown field")

    auth = _convert(data.get("auth", {}), AuthConfig, "auth", errors) or AuthConfig()
    server = _convert(data.get("server", {}), ServerConfig, "server", errors) or ServerConfig()
    store = _convert(data.get("store", {}), StoreConfig, "store", errors) or StoreConfig()
    prices = data.get("prices") or {}
    if not isinstance(prices, dict):
        errors.append("prices: expected a mapping")
        prices = {}
    providers = _convert_each(data.get("providers", {}), ProviderConfig, "providers", errors)
    models = _convert_models(data.get("models", {}), errors)

    config = Config(
        auth=auth, providers=providers, models=models, server=server, store=store, prices=prices
    )
    errors.extend(_check_references(data.get("models"), _names(data.get("providers"))))
    errors.extend(_check_values(config))
    if errors:
        raise ConfigError(errors)
    return config


def _convert_models(section: object, errors: list[str]) -> dict[str, ModelConfig]:
    """Like ``_convert_each``, but each deployment is parsed on its own, so one bad
    deployment does not hide the errors of its siblings or of the rest of the model."""
    if not isinstance(section, dict):
        return _convert_each(section, ModelConfig, "models", errors)
    models: dict[str, ModelConfig] = {}
    for name, raw in section.items():
        path = f"models.{name}"
        if isinstance(raw, dict) and isinstance(raw.get("deployments"), list):
            deployments = [
                _convert(dep, DeploymentConfig, f"{path}.deployments[{i}]", errors)
                for i, dep in enumerate(raw["deployments"])
            ]
            rest = {k: v for k, v in raw.items() if k != "deployments"}
            model = _convert(rest | {"deployments": []}, ModelConfig, path, errors)
            if model is None or None in deployments:
                continue
            models[str(name)] = msgspec.structs.replace(model, deployments=deployments)
        else:
            model = _convert(raw, ModelConfig, path, errors)
            if model is not None:
                models[str(name)] = model
    return models


def _names(section: object) -> set[str]:
    """Names declared in a section, including entries that failed to parse."""
    return {str(k) for k in section} if isinstance(section, dict) else set()


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is Secret:
        if isinstance(value, Secret):
            return value
        if isinstance(value, str):
            return Secret(value)
        raise msgspec.ValidationError("expected a string")
    # msgspec's dec_hook protocol: NotImplementedError means "not a type this hook
    # handles", and msgspec then reports its own error with the field's path.
    raise NotImplementedError(f"no decoder for {kind!r}")


def _convert(value: object, kind: Any, path: str, errors: list[str]) -> Any:
    try:
        return msgspec.convert(value, kind, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        errors.append(_with_path(str(exc), path))
        return None


def _convert_each(section: object, kind: Any, path: str, errors: list[str]) -> dict[str, Any]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        errors.append(f"{path}: expected a mapping of names")
        return {}
    converted: dict[str, Any] = {}
    for name, value in section.items():
        item = _convert(value, kind, f"{path}.{name}", errors)
        if item is not None:
            converted[str(name)] = item
    return converted


def _with_path(message: str, path: str) -> str:
    """Rewrite msgspec's ``msg - at `$.a[1].b``` into ``path.a[1].b: msg``."""
    text, sep, where = message.rpartition(" - at `")
    if not sep:
        return f"{path}: {message}"
    where = where.rstrip("`")
    return f"{path}{where[1:]}: {text}"


def _resolve_env(value: Any, env: Mapping[str, str], path: str, errors: list[str]) -> Any:
    if isinstance(value, str):
        missing = [name for name in _ENV_REF.findall(value) if name not in env]
        for name in missing:
            errors.append(f"{path or '<root>'}: environment variable {name} is not set")
        if missing:
            return value
        return _ENV_REF.sub(lambda m: env[m.group(1)], value)
    if isinstance(value, dict):
        return {
            k: _resolve_env(v, env, f"{path}.{k}" if path else str(k), errors)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_resolve_env(v, env, f"{path}[{i}]", errors) for i, v in enumerate(value)]
    return value


def _check_references(models: object, provider_names: set[str]) -> list[str]:
    """Resolve deployment → provider and fallback → model on the raw document, so that
    references are checked even in entries that failed to parse for another reason."""
    if not isinstance(models, dict):
        return []
    errors = []
    for name, model in models.items():
        if not isinstance(model, dict):
            continue
        deployments = model.get("deployments")
        if isinstance(deployments, list) and not deployments:
            errors.append(f"models.{name}.deployments: at least one deployment is required")
        for i, dep in enumerate(deployments if isinstance(deployments, list) else []):
            provider = dep.get("provider") if isinstance(dep, dict) else None
            if isinstance(provider, str) and provider not in provider_names:
                errors.append(
                    f"models.{name}.deployments[{i}].provider: unknown provider '{provider}'"
                )
        fallbacks = model.get("fallbacks")
        for i, fallback in enumerate(fallbacks if isinstance(fallbacks, list) else []):
            if fallback == name:
                errors.append(f"models.{name}.fallbacks[{i}]: a model cannot fall back to itself")
            elif isinstance(fallback, str) and fallback not in models:
                errors.append(f"models.{name}.fallbacks[{i}]: unknown model '{fallback}'")
    return errors


def _check_values(config: Config) -> list[str]:
    errors = []
    if config.auth.master_key is None or not config.auth.master_key.reveal():
        errors.append(
            "auth.master_key: required (use an env reference like ${SKYROUTE_MASTER_KEY})"
        )
    for name, provider in config.providers.items():
        errors.extend(_check_provider(f"providers.{name}", provider))
    for name, model in config.models.items():
        errors.extend(_check_model(f"models.{name}", model))
    if not 0 < config.server.port < 65536:
        errors.append("server.port: must be between 1 and 65535")
    if config.server.max_body_bytes < 1024:
        errors.append("server.max_body_bytes: must be at least 1024")
    if config.server.drain_seconds < 0:
        errors.append("server.drain_seconds: must not be negative")
    if config.server.max_in_flight < 1:
        errors.append("server.max_in_flight: must be at least 1")
    if config.server.shed_loop_lag_ms < 0:
        errors.append("server.shed_loop_lag_ms: must not be negative (0 turns it off)")
    if not 1 <= config.server.workers <= MAX_WORKERS:
        errors.append(f"server.workers: must be from 1 to {MAX_WORKERS}")
    if not 1 <= config.server.shared_subjects <= MAX_SHARED_SUBJECTS:
        # ~1 KiB of address space each in the limits table, touched only when used
        errors.append(f"server.shared_subjects: must be from 1 to {MAX_SHARED_SUBJECTS:,}")
    if not config.store.data_dir:
        errors.append("store.data_dir: must not be empty")
    if not 0 < config.store.key_refresh_seconds <= 300:
        errors.append("store.key_refresh_seconds: must be between 0 and 300")
    if config.store.startup_timeout <= 0:
        errors.append("store.startup_timeout: must be positive")
    url = config.store.database_url
    if url is not None and not url.reveal().startswith(("postgresql://", "postgres://", "sqlite")):
        errors.append("store.database_url: expected postgresql://... (or sqlite:///path)")
    return errors


def _check_provider(path: str, provider: ProviderConfig) -> list[str]:
    match provider:
        case OpenAIProviderConfig():
            return _check_url(f"{path}.base_url", provider.base_url)
        case AzureProviderConfig():
            errors = _check_url(f"{path}.endpoint", provider.endpoint)
            chosen = [provider.api_key, provider.ad_token, provider.entra]
            if sum(x is not None for x in chosen) != 1:
                errors.append(f"{path}: set exactly one of api_key, ad_token, entra")
            if provider.entra is not None:
                errors.extend(_check_url(f"{path}.entra.authority", provider.entra.authority))
            return errors
        case BedrockProviderConfig():
            return _check_bedrock(path, provider)
        case VertexProviderConfig():
            return _check_vertex(path, provider)
        case GeminiProviderConfig() | AnthropicProviderConfig():
            return _check_url(f"{path}.base_url", provider.base_url)


def _check_vertex(path: str, provider: VertexProviderConfig) -> list[str]:
    errors = []
    if not re.fullmatch(r"[a-z0-9-]+", provider.location):
        errors.append(f"{path}.location: not a Google Cloud location like us-central1 or global")
    if not re.fullmatch(r"[a-z][a-z0-9-]{4,61}[a-z0-9]", provider.project):
        errors.append(f"{path}.project: not a Google Cloud project id")
    if provider.endpoint is not None:
        errors.extend(_check_url(f"{path}.endpoint", provider.endpoint))
    if provider.access_token is not None and provider.credentials_file is not None:
        errors.append(f"{path}: set either access_token or credentials_file, not both")
    return errors


def _check_bedrock(path: str, provider: BedrockProviderConfig) -> list[str]:
    errors = []
    if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", provider.region):
        errors.append(f"{path}.region: not an AWS region name like us-east-1")
    if provider.endpoint_url is not None:
        errors.extend(_check_url(f"{path}.endpoint_url", provider.endpoint_url))
    if (provider.access_key_id is None) != (provider.secret_access_key is None):
        errors.append(f"{path}: set access_key_id and secret_access_key together")
    if provider.session_token is not None and provider.access_key_id is None:
        errors.append(f"{path}.session_token: needs access_key_id and secret_access_key")
    if provider.api_key is not None and provider.access_key_id is not None:
        errors.append(f"{path}: set either api_key or access keys, not both")
    return errors


def _check_url(path: str, url: str) -> list[str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"{path}: must be an http:// or https:// URL with a host"]
    if parts.username or parts.password:
        return [f"{path}: credentials in the URL are not allowed; use api_key"]
    if parts.query or parts.fragment:
        return [f"{path}: must not have a query or fragment"]
    return []


def _check_model(path: str, model: ModelConfig) -> list[str]:
    errors = []
    for i, dep in enumerate(model.deployments):
        where = f"{path}.deployments[{i}]"
        if dep.priority < 0:
            errors.append(f"{where}.priority: must not be negative")
        if dep.weight <= 0:
            errors.append(f"{where}.weight: must be positive")
        for field in ("rpm", "tpm"):
            limit = getattr(dep, field)
            if limit is not None and limit <= 0:
                errors.append(f"{where}.{field}: must be positive")
        if not dep.model:
            errors.append(f"{where}.model: must not be empty")
    t = model.timeouts
    for field in ("connect", "first_token", "idle", "total"):
        if getattr(t, field) <= 0:
            errors.append(f"{path}.timeouts.{field}: must be positive")
    r = model.retries
    if not 0 <= r.attempts <= 10:
        errors.append(f"{path}.retries.attempts: must be between 0 and 10")
    if r.backoff_base < 0 or r.backoff_max < r.backoff_base:
        errors.append(f"{path}.retries: need 0 <= backoff_base <= backoff_max")
    c = model.circuit
    if c.failures < 1:
        errors.append(f"{path}.circuit.failures: must be at least 1")
    if c.cooldown <= 0 or c.max_cooldown < c.cooldown:
        errors.append(f"{path}.circuit: need 0 < cooldown <= max_cooldown")
    return errors
