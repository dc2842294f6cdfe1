"""An emulator of the OpenAI API, or of Azure OpenAI, faithful enough for the official SDK.

One class serves both flavors; a `Dialect` (`dialect.OpenAIDialect`, `azure.AzureDialect`)
supplies paths, auth, error shapes and Azure's annotations. A request goes:

    control API? -> route (404) -> auth and parameters (401/400) -> decode the body (400)
    -> pick a fault (x-emulator-fault header, else the script) -> record it in the ledger
    -> play the fault or answer: chat, embeddings, models, Entra token
    -> the ledger record gets the status answered and, for chat, the usage billed

Answers are deterministic (see `answers.py`); the emulator adds no sleeps of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Literal, assert_never

import msgspec

from skyroute.emulators.answers import answer_chat, filtered
from skyroute.emulators.azure import AzureDialect, entra_token
from skyroute.emulators.base import Admitted, Emulator, Refused, Scripted, Ticket, send_reply
from skyroute.emulators.chat import ResponseMeta, completion_body, stream_events
from skyroute.emulators.delivery import send_body, send_stream
from skyroute.emulators.dialect import Dialect, Endpoint, OpenAIDialect, Reply, Route, openai_error
from skyroute.emulators.embeddings import embeddings_body
from skyroute.emulators.faults import (
    ContentFilterFault,
    ContextLengthFault,
    Fault,
    FaultScript,
    StallFault,
    StatusFault,
)
from skyroute.emulators.http import Request, Responder
from skyroute.emulators.openai_wire import ChatRequest, EmbeddingRequest

__all__ = ["DEFAULT_MODEL_IDS", "Flavor", "OpenAIEmulator"]

Flavor = Literal["openai", "azure"]
DEFAULT_MODEL_IDS = ("gpt-4o", "gpt-4o-mini", "o4-mini", "text-embedding-3-small")
_MODELS_CREATED = 1_715_367_049  # a fixed date keeps /models deterministic
_DIALECTS: dict[str, Callable[[str | None], Dialect]] = {
    "openai": OpenAIDialect,
    "azure": AzureDialect,
}
_CHAT_DECODER = msgspec.json.Decoder(ChatRequest)
_EMBEDDING_DECODER = msgspec.json.Decoder(EmbeddingRequest)

Body = ChatRequest | EmbeddingRequest | None


class _Exchange(msgspec.Struct, frozen=True, kw_only=True):
    """One admitted request, on its way to an answer."""

    request: Request
    route: Route
    body: Body
    model: str
    request_id: str
    headers: list[tuple[str, str]]
    fault: Fault | None


class OpenAIEmulator(Emulator[_Exchange]):
    """Handles requests for one emulated OpenAI or Azure OpenAI endpoint."""

    def __init__(
        self,
        flavor: Flavor,
        api_key: str | None,
        *,
        faults: FaultScript | None = None,
        model_ids: Sequence[str] = DEFAULT_MODEL_IDS,
        entra_client_secret: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        ledger_limit: int = 100_000,
    ) -> None:
        super().__init__(
            faults=faults, clock=clock, wall_clock=wall_clock, ledger_limit=ledger_limit
        )
        self.flavor = flavor
        self.model_ids = tuple(model_ids)
        self._dialect = _DIALECTS[flavor](api_key)
        self._entra_secret = entra_client_secret

    def _ticket(self, serial: int) -> Ticket:
        request_id = self._request_id(serial)
        return Ticket(serial, request_id, self._dialect.response_headers(request_id))

    # -- admission -------------------------------------------------------------------------

    def _admit(self, request: Request, ticket: Ticket) -> Admitted[_Exchange]:
        route = self._dialect.route(request.method, request.path)
        if route is None:
            raise Refused(self._dialect.not_found(request))
        refusal = self._dialect.refuse(request, route)
        if refusal is not None:
            raise Refused(refusal, route.param)
        try:
            body = _decode_body(route.endpoint, request.body)
        except msgspec.DecodeError as error:
            raise Refused(_invalid(str(error)), route.param) from None
        model = route.param if route.endpoint is not Endpoint.ENTRA_TOKEN else None
        if model is None and body is not None:
            if not body.model:
                raise Refused(_invalid("you must provide a model parameter"))
            model = body.model
        fault = self._pick_fault(request, model, _scripted(route.endpoint), _invalid)
        exchange = _Exchange(
            request=request,
            route=route,
            body=body,
            model=model or "",
            request_id=ticket.request_id,
            headers=ticket.headers,
            fault=fault,
        )
        stream = isinstance(body, ChatRequest) and body.stream
        return Admitted(exchange=exchange, model=model, stream=stream, fault=fault)

    # -- answers ---------------------------------------------------------------------------

    async def _serve(self, exchange: _Exchange, responder: Responder) -> None:
        body, model, headers, fault = (
            exchange.body,
            exchange.model,
            exchange.headers,
            exchange.fault,
        )
        if isinstance(fault, StatusFault):
            reply = self._dialect.status_error(fault, exchange.request, exchange.route, model)
            send_reply(responder, reply, headers)
            return
        match exchange.route.endpoint:
            case Endpoint.CHAT:
                assert isinstance(body, ChatRequest)
                await self._chat(exchange, body, responder)
            case Endpoint.EMBEDDINGS:
                assert isinstance(body, EmbeddingRequest)
                await send_body(responder, 200, embeddings_body(body, model), headers, fault)
            case Endpoint.MODELS:
                models = self._dialect.models(self.model_ids, _MODELS_CREATED)
                await send_body(responder, 200, models, headers, fault)
            case Endpoint.MODEL:
                reply = self._dialect.model(model, self.model_ids, _MODELS_CREATED)
                send_reply(responder, reply, headers)
            case Endpoint.ENTRA_TOKEN:
                send_reply(responder, entra_token(exchange.request, self._entra_secret), headers)
            case _:
                assert_never(exchange.route.endpoint)

    async def _chat(self, exchange: _Exchange, chat: ChatRequest, responder: Responder) -> None:
        answer, fault, headers = answer_chat(chat), exchange.fault, exchange.headers
        if isinstance(fault, ContextLengthFault):
            reply = self._dialect.context_length_error(fault, answer.prompt_tokens)
            send_reply(responder, reply, headers)
            return
        if isinstance(fault, ContentFilterFault):
            blocked = self._dialect.prompt_filtered()
            if blocked is not None:
                send_reply(responder, blocked, headers)
                return
            answer = filtered(answer)
        meta = ResponseMeta(
            id=f"chatcmpl-{exchange.request_id.removeprefix('req_')}",
            created=int(self._wall_clock()),
            model=exchange.model,
            choice_filters=self._dialect.choice_filters,
            prompt_filters=self._dialect.prompt_filters,
        )
        request_id = exchange.request_id
        if not chat.stream:
            if not isinstance(fault, StallFault):  # a stall answers nothing
                self._bill(request_id, answer.prompt_tokens, answer.completion_tokens)
            await send_body(responder, 200, completion_body(meta, answer), headers, fault)
            return
        include_usage = chat.stream_options is not None and chat.stream_options.include_usage
        events = stream_events(meta, answer, include_usage)
        self._bill(request_id, answer.prompt_tokens, answer.completion_tokens)

        def cut(sent: int) -> None:
            self._bill(request_id, answer.prompt_tokens, sent)

        await send_stream(responder, headers, events, fault, on_cut=cut)


def _decode_body(endpoint: Endpoint, body: bytes) -> Body:
    match endpoint:
        case Endpoint.CHAT:
            chat = _CHAT_DECODER.decode(body)
            if not chat.messages:
                raise msgspec.ValidationError("[] is too short - 'messages'")
            if not 1 <= chat.n <= 128:
                raise msgspec.ValidationError(f"{chat.n} is not in [1, 128] - 'n'")
            return chat
        case Endpoint.EMBEDDINGS:
            return _EMBEDDING_DECODER.decode(body)
        case Endpoint.MODELS | Endpoint.MODEL | Endpoint.ENTRA_TOKEN:
            return None
        case _:
            assert_never(endpoint)


def _invalid(message: str) -> Reply:
    return openai_error(400, message, "invalid_request_error")


def _scripted(endpoint: Endpoint) -> Scripted:
    # Requests that name a model consult the script; a models list or a token fetch (which a
    # gateway makes on its own schedule) would otherwise eat faults meant for completions.
    match endpoint:
        case Endpoint.CHAT:
            return Scripted.ANY_FAULT
        case Endpoint.EMBEDDINGS | Endpoint.MODEL:
            return Scripted.ANY_ENDPOINT
        case Endpoint.MODELS | Endpoint.ENTRA_TOKEN:
            return Scripted.NEVER
        case _:
            assert_never(endpoint)
