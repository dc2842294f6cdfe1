"""Emulators of Google's model APIs: Vertex AI and the Gemini API (AI Studio).

One class serves both flavors (`google_routes.py` lists the paths):

- `gemini`: generateContent, streamGenerateContent, countTokens, embedContent,
  batchEmbedContents and the model list, with an API key (`x-goog-api-key` or `?key=`).
- `vertex`: the same Gemini methods under `projects/{p}/locations/{l}/publishers/google`, plus
  `:predict` embeddings, Claude (`publishers/anthropic/...:rawPredict|:streamRawPredict`), the
  OpenAI-compatible `endpoints/openapi/chat/completions`, and `POST /token`, the OAuth
  endpoint a service-account key file points at. Requests carry `Authorization: Bearer` with
  the static `token` or one that `/token` issued.

A request goes:

    control API? -> route (404 NOT_FOUND) -> credentials (400/401/403, `google_auth.py`)
    -> read the body (400 INVALID_ARGUMENT, `google_requests.py`)
    -> pick a fault (x-emulator-fault header, else the script, keyed by the model as named
       in the path, or in the body for the OpenAI-compatible endpoint)
    -> record it in the ledger -> play the fault or answer (`google_serve.py`)

The ledger redacts `x-goog-api-key` and `authorization`; a Gemini key that came in the URL
shows as the pseudo-header `?key: ***` (the path is recorded without its query).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final, NamedTuple

from skyroute.core.secret import Secret
from skyroute.emulators.base import Admitted, Emulator, Refused, Scripted, Ticket, send_reply
from skyroute.emulators.dialect import Reply
from skyroute.emulators.faults import FaultScript, StatusFault
from skyroute.emulators.google_answer import count_tokens
from skyroute.emulators.google_auth import (
    GoogleAuth,
    ServiceAccount,
    api_key_source,
    load_service_account,
)
from skyroute.emulators.google_delivery import send_answer
from skyroute.emulators.google_errors import google_error, status_fault_reply
from skyroute.emulators.google_gemini import (
    batch_embed_body,
    count_tokens_body,
    embed_content_body,
    model_info,
    models_body,
    predict_body,
    publisher_models_body,
)
from skyroute.emulators.google_requests import Body, ClaudeBody, read_body
from skyroute.emulators.google_routes import Endpoint, GoogleFlavor, Route, find_route
from skyroute.emulators.google_serve import (
    GEMINI_STREAM,
    Exchange,
    serve_chat_completion,
    serve_claude,
    serve_generate,
)
from skyroute.emulators.google_wire import (
    BatchEmbedRequest,
    CountTokensRequest,
    EmbedContentRequest,
    GenerateContentRequest,
    PredictRequest,
)
from skyroute.emulators.http import Request, Responder
from skyroute.emulators.ledger import REDACTED_HEADERS
from skyroute.emulators.openai_wire import ChatRequest

__all__ = ["DEFAULT_MODEL_IDS", "GoogleEmulator", "GoogleFlavor"]

DEFAULT_MODEL_IDS: Final = (
    "gemini-2.5-flash",
    "gemini-2.5-pro",
    "gemini-3-pro-preview",
    "gemini-embedding-001",
)
_SECRET_HEADERS: Final = REDACTED_HEADERS | {"x-goog-api-key"}
_UNSCRIPTED: Final = frozenset({Endpoint.MODELS, Endpoint.MODEL, Endpoint.TOKEN})

AccountSource = ServiceAccount | str | os.PathLike[str]


def _secret(value: str | Secret | None) -> Secret | None:
    return Secret(value) if isinstance(value, str) else value


def _account(source: AccountSource) -> ServiceAccount:
    return source if isinstance(source, ServiceAccount) else load_service_account(source)


class _Job(NamedTuple):
    """One admitted request, on its way to an answer."""

    request: Request
    exchange: Exchange
    body: Body


class GoogleEmulator(Emulator[_Job]):
    """Handles requests for one emulated Vertex AI or Gemini API endpoint."""

    def __init__(
        self,
        flavor: GoogleFlavor,
        api_key: str | Secret | None = None,
        *,
        token: str | Secret | None = None,
        service_accounts: Iterable[AccountSource] = (),
        faults: FaultScript | None = None,
        model_ids: Sequence[str] = DEFAULT_MODEL_IDS,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        token_factory: Callable[[], str] | None = None,
        ledger_limit: int = 100_000,
    ) -> None:
        """`api_key` guards the gemini flavor; `token` and `service_accounts` (key files, or
        their public halves) the vertex flavor. With none of them, nothing is checked."""
        if flavor not in ("vertex", "gemini"):
            raise ValueError(f"unknown Google flavor {flavor!r}")
        super().__init__(
            faults=faults, clock=clock, wall_clock=wall_clock, ledger_limit=ledger_limit
        )
        self.flavor: GoogleFlavor = flavor
        self.model_ids = tuple(model_ids)
        self._auth = GoogleAuth(
            api_key=_secret(api_key),
            token=_secret(token),
            accounts=[_account(source) for source in service_accounts],
            wall_clock=wall_clock,
            token_factory=token_factory,
        )

    @property
    def token_grants(self) -> int:
        """How many access tokens `POST /token` has issued."""
        return self._auth.grants

    def trust_service_account(self, source: AccountSource) -> None:
        """Let `/token` accept JWTs signed by this service account's key.

        One dict store: safe to call from another thread than the emulator's loop.
        """
        self._auth.trust(_account(source))

    def _ticket(self, serial: int) -> Ticket:
        request_id = self._request_id(serial)
        return Ticket(serial, request_id, [("x-request-id", request_id)])

    # -- admission -------------------------------------------------------------------------

    def _admit(self, request: Request, ticket: Ticket) -> Admitted[_Job]:
        route = find_route(self.flavor, request.method, request.path)
        if route is None:
            raise Refused(_not_found(request))
        refusal = self._check_credentials(request, route)
        if refusal is not None:
            raise Refused(refusal, route.model)
        body, model = read_body(route, request.body)
        fault = self._pick_fault(request, model, _scripted(route.endpoint), _invalid)
        exchange = Exchange(
            surface=self.flavor,
            route=route,
            model=model or "",
            request_id=ticket.request_id,
            headers=ticket.headers,
            fault=fault,
            created=self._wall_clock(),
            alt_sse=request.query_param("alt") == "sse",
        )
        stream = route.endpoint.streams or (isinstance(body, ChatRequest) and body.stream)
        job = _Job(request, exchange, body)
        return Admitted(exchange=job, model=model, stream=stream, fault=fault)

    def _check_credentials(self, request: Request, route: Route) -> Reply | None:
        if route.endpoint is Endpoint.TOKEN:
            return None
        if self.flavor == "gemini":
            return self._auth.check_api_key(request)
        return self._auth.check_bearer(request)

    def _ledger_headers(self, request: Request) -> dict[str, str]:
        headers = {k: ("***" if k in _SECRET_HEADERS else v) for k, v in request.headers.items()}
        if self.flavor == "gemini" and api_key_source(request)[1]:
            headers["?key"] = "***"
        return headers

    # -- answers ---------------------------------------------------------------------------

    async def _serve(self, job: _Job, responder: Responder) -> None:
        request, exchange, body = job
        match body:
            case GenerateContentRequest():
                await serve_generate(exchange, body, responder)
            case ChatRequest():
                await serve_chat_completion(exchange, body, responder)
            case ClaudeBody():
                await serve_claude(exchange, body, responder)
            case _:
                await self._serve_json(request, exchange, body, responder)

    async def _serve_json(
        self, request: Request, exchange: Exchange, body: Body, responder: Responder
    ) -> None:
        """countTokens, embeddings, model lists and the token endpoint: a JSON body each."""
        fault, headers = exchange.fault, exchange.headers
        if isinstance(fault, StatusFault):
            send_reply(responder, status_fault_reply(fault, self.flavor), headers)
            return
        vertex = self.flavor == "vertex"
        match body:
            case CountTokensRequest():
                tokens = count_tokens(body)
                answer = count_tokens_body(tokens, _characters(body) if vertex else None)
            case EmbedContentRequest():
                answer = embed_content_body(body, vertex=vertex)
            case BatchEmbedRequest():
                answer = batch_embed_body(body)
            case PredictRequest():
                dimensions = body.parameters.output_dimensionality if body.parameters else None
                answer = predict_body([item.content for item in body.instances], dimensions)
            case _:
                send_reply(responder, self._bodiless(request, exchange.route), headers)
                return
        await send_answer(responder, answer, headers, fault, GEMINI_STREAM)

    def _bodiless(self, request: Request, route: Route) -> Reply:
        """The token endpoint and the model lists, which read no JSON body."""
        match route.endpoint:
            case Endpoint.TOKEN:
                return self._auth.grant(request)
            case Endpoint.MODELS if self.flavor == "gemini":
                return _ok(models_body(self.model_ids))
            case Endpoint.MODELS:
                return _ok(publisher_models_body(self.model_ids))
            case Endpoint.MODEL if route.model in self.model_ids:
                return _ok(model_info(route.model or ""))
        return google_error(
            404,
            f"models/{route.model} is not found for API version {route.version}, or is not "
            "supported for generateContent. Call ListModels to see the list of available "
            "models and their supported methods.",
        )


def _ok(body: bytes) -> Reply:
    return Reply(200, body)


def _not_found(request: Request) -> Reply:
    # Google answers an unknown method or path with 404 NOT_FOUND (an HTML page for some).
    return google_error(404, f"The requested URL {request.path} was not found on this server.")


def _characters(request: CountTokensRequest) -> int:
    inner = request.generate_content_request
    contents = inner.contents if inner is not None else request.contents
    return sum(len((part.text or "").replace(" ", "")) for c in contents for part in c.parts)


def _scripted(endpoint: Endpoint) -> Scripted:
    if endpoint in _UNSCRIPTED:
        return Scripted.NEVER
    return Scripted.ANY_FAULT if endpoint.chat_like else Scripted.ANY_ENDPOINT


def _invalid(message: str) -> Reply:
    return google_error(400, message)
