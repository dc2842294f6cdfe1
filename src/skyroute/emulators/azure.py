"""Azure OpenAI (classic, dated `api-version`) as a `Dialect`, and an Entra token endpoint.

Paths: `/openai/deployments/{deployment}/chat/completions|embeddings` and `/openai/models`,
each with `?api-version=`. Auth: `api-key: <key>`, or `Authorization: Bearer <token>` with any
non-empty token (the emulator never validates Entra tokens). Responses carry content filter
annotations; 429s and 401s use Azure's own error object, whose `code` is a string.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from urllib.parse import parse_qs

import msgspec

from skyroute.emulators.dialect import (
    Endpoint,
    Reply,
    Route,
    RouteTable,
    context_length_message,
    fault_headers,
    match_route,
    openai_error,
)
from skyroute.emulators.faults import ContextLengthFault, StatusFault
from skyroute.emulators.http import Request
from skyroute.emulators.openai_wire import (
    AzureCapabilities,
    AzureErrorDetail,
    AzureModelEntry,
    ContentFilterResults,
    DetectionResult,
    ErrorBody,
    ErrorDetail,
    InnerError,
    ModelList,
    PromptFilterResult,
)

__all__ = ["AzureDialect", "entra_token"]

_ENCODER = msgspec.json.Encoder()

_AZURE_ROUTES: RouteTable = (
    ("POST", ("openai", "deployments", "{}", "chat", "completions"), Endpoint.CHAT),
    ("POST", ("openai", "deployments", "{}", "embeddings"), Endpoint.EMBEDDINGS),
    ("GET", ("openai", "models"), Endpoint.MODELS),
    ("GET", ("openai", "models", "{}"), Endpoint.MODEL),
    # A client whose base URL already ends in /openai/deployments/{d} sends /models there.
    ("GET", ("openai", "deployments", "{}", "models"), Endpoint.MODELS),
    ("POST", ("{}", "oauth2", "v2.0", "token"), Endpoint.ENTRA_TOKEN),
)
_OPERATIONS = {Endpoint.CHAT: "ChatCompletions_Create", Endpoint.EMBEDDINGS: "Embeddings_Create"}

_SAFE = ContentFilterResults()
_PROMPT_SAFE = ContentFilterResults(jailbreak=DetectionResult())
_FILTERED = ContentFilterResults(jailbreak=DetectionResult(filtered=True, detected=True))

_ACCESS_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
    "a valid key for an active subscription and use a correct regional API endpoint for your "
    "resource."
)
_RATE_LIMITED = (
    "Requests to the {operation} Operation under Azure OpenAI API version {version} have "
    "exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after "
    "{seconds} seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to "
    "further increase the default rate limit."
)
_PROMPT_FILTERED = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management "
    "policy. Please modify your prompt and retry. To learn more about our content filtering "
    "policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
)


def _azure_error(
    status: int, code: str, message: str, headers: tuple[tuple[str, str], ...] = ()
) -> Reply:
    return Reply(status, _ENCODER.encode(ErrorBody(AzureErrorDetail(code, message))), headers)


class AzureDialect:
    """Azure OpenAI's classic data plane."""

    choice_filters = _SAFE
    prompt_filters = [PromptFilterResult(prompt_index=0, content_filter_results=_PROMPT_SAFE)]

    def __init__(self, api_key: str | None) -> None:
        self._api_key = api_key

    def route(self, method: str, path: str) -> Route | None:
        return match_route(_AZURE_ROUTES, method, path)

    def refuse(self, request: Request, route: Route) -> Reply | None:
        if route.endpoint is Endpoint.ENTRA_TOKEN:
            return None
        if not request.query_param("api-version"):
            return _azure_error(
                400,
                "BadRequest",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        return None if self._authorized(request) else _azure_error(401, "401", _ACCESS_DENIED)

    def _authorized(self, request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        if auth.startswith("Bearer ") and auth[7:].strip():
            return True  # an Entra token: never validated
        key = request.headers.get("api-key")
        return bool(key) and (self._api_key is None or key == self._api_key)

    def not_found(self, request: Request) -> Reply:
        return _azure_error(404, "404", "Resource not found")

    def status_error(
        self, fault: StatusFault, request: Request, route: Route, model: str | None
    ) -> Reply:
        headers = fault_headers(fault)
        match fault.status:
            case 429:
                operation = _OPERATIONS.get(route.endpoint, "Models_List")
                message = _RATE_LIMITED.format(
                    operation=operation,
                    version=request.query_param("api-version"),
                    seconds=f"{fault.retry_after or 1:g}",
                )
                return _azure_error(429, fault.code or "429", fault.message or message, headers)
            case 401:
                return _azure_error(
                    401, fault.code or "401", fault.message or _ACCESS_DENIED, headers
                )
            case 404:
                message = (
                    "The API deployment for this resource does not exist. If you created the "
                    "deployment within the last 5 minutes, please wait a moment and try again."
                )
                code = fault.code or "DeploymentNotFound"
                return _azure_error(404, code, fault.message or message, headers)
        type_ = "server_error" if fault.status >= 500 else "invalid_request_error"
        message = fault.message or (
            "The server had an error while processing your request. Sorry about that!"
            if fault.status >= 500
            else "Invalid request."
        )
        return openai_error(fault.status, message, type_, code=fault.code, headers=headers)

    def context_length_error(self, fault: ContextLengthFault, prompt_tokens: int) -> Reply:
        message = context_length_message(fault, prompt_tokens)
        return openai_error(
            400, message, "invalid_request_error", param="messages", code="context_length_exceeded"
        )

    def prompt_filtered(self) -> Reply | None:
        detail = ErrorDetail(
            message=_PROMPT_FILTERED,
            type=None,
            param="prompt",
            code="content_filter",
            status=400,
            innererror=InnerError("ResponsibleAIPolicyViolation", _FILTERED),
        )
        return Reply(400, _ENCODER.encode(ErrorBody(detail)))

    def models(self, model_ids: Sequence[str], created: int) -> bytes:
        return _ENCODER.encode(ModelList([_model_entry(m, created) for m in model_ids]))

    def model(self, model_id: str, model_ids: Sequence[str], created: int) -> Reply:
        if model_id in model_ids:
            return Reply(200, _ENCODER.encode(_model_entry(model_id, created)))
        return _azure_error(404, "404", "Resource not found")

    def response_headers(self, request_id: str) -> list[tuple[str, str]]:
        return [
            ("x-request-id", request_id),
            ("apim-request-id", request_id),
            ("x-ms-region", "Emulated Region"),
        ]


def _model_entry(model_id: str, created: int) -> AzureModelEntry:
    embeds = "embedding" in model_id
    capabilities = AzureCapabilities(chat_completion=not embeds, embeddings=embeds)
    return AzureModelEntry(id=model_id, created_at=created, capabilities=capabilities)


def entra_token(request: Request, client_secret: str | None) -> Reply:
    """Microsoft Entra's client-credentials grant: `POST /{tenant}/oauth2/v2.0/token`."""
    form = {k: v[0] for k, v in parse_qs(request.body.decode("latin-1")).items()}
    if form.get("grant_type") != "client_credentials":
        return _oauth_error(
            400,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        )
    if not form.get("client_id") or not form.get("scope"):
        return _oauth_error(
            400,
            "invalid_request",
            "AADSTS900144: The request body must contain "
            "the following parameter: 'client_id' and 'scope'.",
        )
    if client_secret is not None and form.get("client_secret") != client_secret:
        # Entra answers a wrong secret with 401 (not 400), error invalid_client.
        return _oauth_error(
            401,
            "invalid_client",
            "AADSTS7000215: Invalid client secret "
            "provided. Ensure the secret being sent in the request is the client "
            "secret value, not the client secret ID.",
        )
    token = EntraToken(
        access_token="eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0." + secrets.token_urlsafe(32)
    )
    return Reply(200, _ENCODER.encode(token))


class EntraToken(msgspec.Struct, frozen=True, kw_only=True):
    token_type: str = "Bearer"
    expires_in: int = 3599
    ext_expires_in: int = 3599
    access_token: str


class OAuthError(msgspec.Struct, frozen=True):
    error: str
    error_description: str


def _oauth_error(status: int, error: str, description: str) -> Reply:
    return Reply(status, _ENCODER.encode(OAuthError(error, description)))
