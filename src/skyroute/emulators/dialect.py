"""What differs between OpenAI and Azure OpenAI: paths, auth, error shapes, annotations.

The emulator is one class; a `Dialect` supplies everything flavor-specific, so that no code
asks "is this Azure?". `OpenAIDialect` lives here; `AzureDialect` in `azure.py`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from types import MappingProxyType
from typing import Protocol

import msgspec
from msgspec import UNSET, UnsetType

from skyroute.emulators.faults import ContextLengthFault, StatusFault
from skyroute.emulators.http import Request
from skyroute.emulators.openai_wire import (
    ContentFilterResults,
    ErrorBody,
    ErrorDetail,
    ModelEntry,
    ModelList,
    PromptFilterResult,
)

__all__ = [
    "Dialect",
    "Endpoint",
    "OpenAIDialect",
    "Reply",
    "Route",
    "RouteTable",
    "fault_headers",
    "match_route",
    "openai_error",
]

_ENCODER = msgspec.json.Encoder()


class Endpoint(enum.Enum):
    CHAT = "chat"
    EMBEDDINGS = "embeddings"
    MODELS = "models"
    MODEL = "model"
    ENTRA_TOKEN = "entra_token"


class Route(msgspec.Struct, frozen=True):
    endpoint: Endpoint
    param: str | None = None
    """The path's variable part: a model id, a deployment or an Entra tenant."""


class Reply(msgspec.Struct, frozen=True):
    """A complete response: status, JSON body, extra headers."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


RouteTable = Sequence[tuple[str, tuple[str, ...], Endpoint]]


def match_route(table: RouteTable, method: str, path: str) -> Route | None:
    """Match against (method, segments, endpoint) rows; a `{}` segment is the route's param."""
    segments = path.strip("/").split("/")
    for row_method, pattern, endpoint in table:
        if row_method != method or len(pattern) != len(segments):
            continue
        param: str | None = None
        for expected, actual in zip(pattern, segments, strict=True):
            if expected == "{}":
                param = actual
            elif expected != actual:
                break
        else:
            return Route(endpoint, param)
    return None


def openai_error(
    status: int,
    message: str,
    type_: str | None,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> Reply:
    detail = ErrorDetail(message=message, type=type_, param=param, code=code)
    return Reply(status, _ENCODER.encode(ErrorBody(detail)), headers)


def fault_headers(fault: StatusFault) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    if fault.retry_after is not None:
        headers.append(("retry-after", f"{fault.retry_after:g}"))
    if fault.retry_after_ms is not None:
        headers.append(("retry-after-ms", str(fault.retry_after_ms)))
    if fault.should_retry is not None:
        headers.append(("x-should-retry", "true" if fault.should_retry else "false"))
    return tuple(headers)


def context_length_message(fault: ContextLengthFault, prompt_tokens: int) -> str:
    return (
        f"This model's maximum context length is {fault.max_context} tokens. However, your "
        f"messages resulted in {fault.max_context + prompt_tokens} tokens. Please reduce the "
        "length of the messages."
    )


class Dialect(Protocol):
    """The flavor-specific half of an OpenAI-protocol emulator."""

    @property
    def choice_filters(self) -> ContentFilterResults | UnsetType:
        """Azure's annotation on every choice; UNSET for OpenAI."""
        ...

    @property
    def prompt_filters(self) -> list[PromptFilterResult] | UnsetType:
        """Azure's `prompt_filter_results`; UNSET for OpenAI."""
        ...

    def route(self, method: str, path: str) -> Route | None: ...

    def refuse(self, request: Request, route: Route) -> Reply | None:
        """An auth or parameter error that stops the request, or None to go on."""
        ...

    def not_found(self, request: Request) -> Reply: ...

    def status_error(
        self, fault: StatusFault, request: Request, route: Route, model: str | None
    ) -> Reply: ...

    def context_length_error(self, fault: ContextLengthFault, prompt_tokens: int) -> Reply: ...

    def prompt_filtered(self) -> Reply | None:
        """The answer to a content_filter fault, or None to finish with content_filter."""
        ...

    def models(self, model_ids: Sequence[str], created: int) -> bytes: ...

    def model(self, model_id: str, model_ids: Sequence[str], created: int) -> Reply: ...

    def response_headers(self, request_id: str) -> list[tuple[str, str]]: ...


# -- OpenAI ----------------------------------------------------------------------------------

_OPENAI_ROUTES: RouteTable = (
    ("POST", ("v1", "chat", "completions"), Endpoint.CHAT),
    ("POST", ("v1", "embeddings"), Endpoint.EMBEDDINGS),
    ("GET", ("v1", "models"), Endpoint.MODELS),
    ("GET", ("v1", "models", "{}"), Endpoint.MODEL),
)

# status -> (type, code, message); OpenAI's own texts where known.
_OPENAI_STATUS = MappingProxyType(
    {
        400: ("invalid_request_error", None, "Invalid request."),
        401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
        403: ("invalid_request_error", "unsupported_country_region_territory",
              "Country, region, or territory not supported"),
        404: ("invalid_request_error", "model_not_found",
              "The model `{model}` does not exist or you do not have access to it."),
        408: ("invalid_request_error", None, "Request timed out."),
        409: ("invalid_request_error", None, "Conflict."),
        429: ("requests", "rate_limit_exceeded",
              "Rate limit reached for {model} in organization org-emulator on requests per min "
              "(RPM): Limit 3, Used 3, Requested 1. Please try again in 20s."),
        500: ("server_error", None,
              "The server had an error while processing your request. Sorry about that!"),
        502: ("server_error", None, "Bad gateway."),
        503: ("server_error", None, "The server is overloaded or not ready yet."),
        504: ("server_error", None, "Gateway timeout."),
    }
)  # fmt: skip
_INSUFFICIENT_QUOTA = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors."
)


class OpenAIDialect:
    """api.openai.com: `/v1/...`, `Authorization: Bearer <key>`."""

    choice_filters: ContentFilterResults | UnsetType = UNSET
    prompt_filters: list[PromptFilterResult] | UnsetType = UNSET

    def __init__(self, api_key: str | None) -> None:
        self._api_key = api_key

    def route(self, method: str, path: str) -> Route | None:
        return match_route(_OPENAI_ROUTES, method, path)

    def refuse(self, request: Request, route: Route) -> Reply | None:
        if self._api_key is None:
            return None
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return openai_error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
                "or as the password field (with blank username) if you're accessing the API "
                "from your browser and are prompted for a username and password. You can "
                "obtain an API key from https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
            )
        if auth[7:] != self._api_key:
            return openai_error(
                401,
                f"Incorrect API key provided: {_masked(auth[7:])}. You can find your API key "
                "at https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                code="invalid_api_key",
            )
        return None

    def not_found(self, request: Request) -> Reply:
        return openai_error(
            404, f"Invalid URL ({request.method} {request.path})", "invalid_request_error"
        )

    def status_error(
        self, fault: StatusFault, request: Request, route: Route, model: str | None
    ) -> Reply:
        default = "server_error" if fault.status >= 500 else "invalid_request_error"
        type_, code, message = _OPENAI_STATUS.get(fault.status, (default, None, "Error."))
        if fault.code == "insufficient_quota":
            type_, message = "insufficient_quota", _INSUFFICIENT_QUOTA
        text = fault.message or message.format(model=model or "the model")
        return openai_error(
            fault.status, text, type_, code=fault.code or code, headers=fault_headers(fault)
        )

    def context_length_error(self, fault: ContextLengthFault, prompt_tokens: int) -> Reply:
        message = context_length_message(fault, prompt_tokens)
        return openai_error(
            400, message, "invalid_request_error", param="messages", code="context_length_exceeded"
        )

    def prompt_filtered(self) -> Reply | None:
        return None

    def models(self, model_ids: Sequence[str], created: int) -> bytes:
        data = [ModelEntry(id=model_id, created=created) for model_id in model_ids]
        return _ENCODER.encode(ModelList(data))

    def model(self, model_id: str, model_ids: Sequence[str], created: int) -> Reply:
        if model_id in model_ids:
            return Reply(200, _ENCODER.encode(ModelEntry(id=model_id, created=created)))
        return openai_error(
            404,
            f"The model '{model_id}' does not exist",
            "invalid_request_error",
            param="model",
            code="model_not_found",
        )

    def response_headers(self, request_id: str) -> list[tuple[str, str]]:
        return [("x-request-id", request_id), ("openai-processing-ms", "1")]


def _masked(key: str) -> str:
    return f"{key[:3]}***{key[-4:]}" if len(key) > 8 else "***"
