"""The paths the Google emulators answer, as google-genai 3.6.1 and the other SDKs send them.

Gemini API (AI Studio), versions v1 (the SDK's default), v1beta and v1alpha:

    POST /{v}/models/{model}:generateContent | :streamGenerateContent | :countTokens
                             | :embedContent | :batchEmbedContents
    GET  /{v}/models            GET /{v}/models/{model}

Vertex AI, versions v1 and v1beta1 (google-genai's default):

    POST /{v}/projects/{p}/locations/{l}/publishers/google/models/{model}:generateContent
         ... | :streamGenerateContent | :countTokens | :embedContent | :batchEmbedContents
         ... | :predict (text-embedding-00x)
    POST /{v}/projects/{p}/locations/{l}/publishers/anthropic/models/{model}:rawPredict
         ... | :streamRawPredict          (Claude; `count-tokens:rawPredict` counts tokens)
    POST /{v}/projects/{p}/locations/{l}/endpoints/openapi/chat/completions
    GET  /{v}/publishers/google/models
    POST /token                          (the OAuth token endpoint a key file points at)
"""

from __future__ import annotations

import enum
from types import MappingProxyType
from typing import Final, Literal
from urllib.parse import unquote

import msgspec

__all__ = ["Endpoint", "GoogleFlavor", "Route", "find_route"]

GoogleFlavor = Literal["vertex", "gemini"]


class Endpoint(enum.Enum):
    GENERATE = "generateContent"
    STREAM = "streamGenerateContent"
    COUNT_TOKENS = "countTokens"
    EMBED = "embedContent"
    BATCH_EMBED = "batchEmbedContents"
    PREDICT = "predict"
    MODELS = "models"
    MODEL = "model"
    TOKEN = "token"
    OPENAI_CHAT = "openai_chat"
    CLAUDE = "rawPredict"
    CLAUDE_STREAM = "streamRawPredict"
    CLAUDE_COUNT = "count-tokens:rawPredict"

    @property
    def streams(self) -> bool:
        return self in (Endpoint.STREAM, Endpoint.CLAUDE_STREAM)

    @property
    def chat_like(self) -> bool:
        """Whether it answers a conversation, so that every fault kind applies to it."""
        return self in _CHAT_LIKE


_CHAT_LIKE: Final = frozenset(
    {Endpoint.GENERATE, Endpoint.STREAM, Endpoint.OPENAI_CHAT, Endpoint.CLAUDE,
     Endpoint.CLAUDE_STREAM}
)  # fmt: skip
_GEMINI_VERSIONS: Final = frozenset({"v1", "v1beta", "v1alpha"})
_VERTEX_VERSIONS: Final = frozenset({"v1", "v1beta1"})
_GOOGLE_METHODS: Final = MappingProxyType(
    {e.value: e for e in (Endpoint.GENERATE, Endpoint.STREAM, Endpoint.COUNT_TOKENS,
                          Endpoint.EMBED, Endpoint.BATCH_EMBED)}
)  # fmt: skip
_VERTEX_METHODS: Final = MappingProxyType({**_GOOGLE_METHODS, "predict": Endpoint.PREDICT})
_CLAUDE_METHODS: Final = MappingProxyType(
    {"rawPredict": Endpoint.CLAUDE, "streamRawPredict": Endpoint.CLAUDE_STREAM}
)


class Route(msgspec.Struct, frozen=True, kw_only=True):
    endpoint: Endpoint
    version: str = ""
    model: str | None = None
    """The model named in the path (`gemini-2.5-flash`, `claude-sonnet-4@20250514`)."""


def find_route(flavor: GoogleFlavor, method: str, path: str) -> Route | None:
    segments = [unquote(segment) for segment in path.strip("/").split("/")]
    if flavor == "gemini":
        return _gemini_route(method, segments)
    return _vertex_route(method, segments)


def _model_method(segment: str, methods: MappingProxyType[str, Endpoint]) -> tuple[str, Endpoint]:
    model, _, name = segment.rpartition(":")
    endpoint = methods.get(name)
    if not model or endpoint is None:
        raise LookupError(segment)
    return model, endpoint


def _gemini_route(method: str, segments: list[str]) -> Route | None:
    if not segments or segments[0] not in _GEMINI_VERSIONS or segments[1:2] != ["models"]:
        return None
    version, rest = segments[0], segments[2:]
    match (method, rest):
        case ("GET", []):
            return Route(endpoint=Endpoint.MODELS, version=version)
        case ("GET", [model]) if ":" not in model:
            return Route(endpoint=Endpoint.MODEL, version=version, model=model)
        case ("POST", [target]):
            try:
                model, endpoint = _model_method(target, _GOOGLE_METHODS)
            except LookupError:
                return None
            return Route(endpoint=endpoint, version=version, model=model)
    return None


def _vertex_route(method: str, segments: list[str]) -> Route | None:
    if method == "POST" and segments == ["token"]:
        return Route(endpoint=Endpoint.TOKEN)
    if not segments or segments[0] not in _VERTEX_VERSIONS:
        return None
    version, rest = segments[0], segments[1:]
    match (method, rest):
        case ("GET", ["publishers", "google", "models"]):
            return Route(endpoint=Endpoint.MODELS, version=version)
        case (
            "POST",
            ["projects", _, "locations", _, "endpoints", "openapi", "chat", "completions"],
        ):
            return Route(endpoint=Endpoint.OPENAI_CHAT, version=version)
        case ("POST", ["projects", _, "locations", _, "publishers", publisher, "models", target]):
            return _publisher_route(version, publisher, target)
    return None


def _publisher_route(version: str, publisher: str, target: str) -> Route | None:
    if target == Endpoint.CLAUDE_COUNT.value and publisher == "anthropic":
        return Route(endpoint=Endpoint.CLAUDE_COUNT, version=version)
    methods = {"google": _VERTEX_METHODS, "anthropic": _CLAUDE_METHODS}.get(publisher)
    if methods is None:
        return None
    try:
        model, endpoint = _model_method(target, methods)
    except LookupError:
        return None
    return Route(endpoint=endpoint, version=version, model=model)
