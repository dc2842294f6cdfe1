"""An emulator of the OpenAI API, or of Azure OpenAI, faithful enough for the official SDK.

One class serves both flavors; a `Dialect` (`dialect.OpenAIDialect`, `azure.AzureDialect`)
supplies paths, auth, error shapes and Azure's annotations. A request goes:

    control API? -> route (404) -> auth and parameters (401/400) -> decode the body (400)
    -> pick a fault (x-emulator-fault header, else the script) -> record it in the ledger
    -> play the fault or answer: chat, embeddings, models, Entra token

Answers are deterministic (see `answers.py`); the emulator adds no sleeps of its own.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from itertools import count
from typing import Literal, assert_never

import msgspec

from skyroute.emulators.answers import answer_chat, filtered
from skyroute.emulators.azure import AzureDialect, entra_token
from skyroute.emulators.chat import ResponseMeta, completion_body, stream_events
from skyroute.emulators.control import CONTROL_PREFIX, control_reply
from skyroute.emulators.delivery import Headers, play_preface, send_body, send_stream
from skyroute.emulators.dialect import Dialect, Endpoint, OpenAIDialect, Reply, Route, openai_error
from skyroute.emulators.embeddings import embeddings_body
from skyroute.emulators.faults import (
    ContentFilterFault,
    ContextLengthFault,
    Fault,
    FaultScript,
    StatusFault,
    applies_to_any_endpoint,
    decode_fault,
)
from skyroute.emulators.http import Request, Responder
from skyroute.emulators.ledger import Ledger, RequestRecord, redacted
from skyroute.emulators.openai_wire import ChatRequest, EmbeddingRequest

__all__ = ["DEFAULT_MODEL_IDS", "Flavor", "OpenAIEmulator"]

Flavor = Literal["openai", "azure"]
DEFAULT_MODEL_IDS = ("gpt-4o", "gpt-4o-mini", "o4-mini", "text-embedding-3-small")
FAULT_HEADER = "x-emulator-fault"
_MODELS_CREATED = 1_715_367_049  # a fixed date keeps /models deterministic
_DIALECTS: dict[str, Callable[[str | None], Dialect]] = {
    "openai": OpenAIDialect,
    "azure": AzureDialect,
}
_CHAT_DECODER = msgspec.json.Decoder(ChatRequest)
_EMBEDDING_DECODER = msgspec.json.Decoder(EmbeddingRequest)
# Requests that name a model consult the script; a models list or a token fetch (which a
# gateway makes on its own schedule) would otherwise eat faults meant for completions.
_SCRIPTED = frozenset({Endpoint.CHAT, Endpoint.EMBEDDINGS, Endpoint.MODEL})

Body = ChatRequest | EmbeddingRequest | None


class _Admitted(msgspec.Struct, frozen=True):
    route: Route
    body: Body
    model: str | None


class _Exchange(msgspec.Struct, frozen=True, kw_only=True):
    """One admitted request, on its way to an answer."""

    request: Request
    route: Route
    body: Body
    model: str
    request_id: str
    headers: list[tuple[str, str]]
    fault: Fault | None


class _Refused(Exception):
    def __init__(self, reply: Reply, model: str | None = None) -> None:
        super().__init__(reply.status)
        self.reply = reply
        self.model = model


class OpenAIEmulator:
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
        self.flavor = flavor
        self.script = faults if faults is not None else FaultScript()
        self.model_ids = tuple(model_ids)
        self._dialect = _DIALECTS[flavor](api_key)
        self._entra_secret = entra_client_secret
        self._clock = clock
        self._wall_clock = wall_clock
        self._ledger = Ledger(ledger_limit)
        self._id_prefix = secrets.token_hex(4)
        self._ids = count(1)

    @property
    def requests(self) -> deque[RequestRecord]:
        """Every request received, oldest first (bounded by `ledger_limit`)."""
        return self._ledger.records

    def reset(self) -> None:
        self._ledger.clear()
        self.script.clear()

    async def handle(self, request: Request, responder: Responder) -> None:
        if request.path.startswith(CONTROL_PREFIX):
            _reply(responder, control_reply(request, self._ledger, self.script), ())
            return
        request_id = f"req_{self._id_prefix}{next(self._ids):024x}"
        headers = self._dialect.response_headers(request_id)
        try:
            admitted = self._admit(request)
            fault = self._fault(request, admitted)
        except _Refused as refusal:
            self._record(request, request_id, refusal.model, False, None)
            _reply(responder, refusal.reply, headers)
            return
        stream = isinstance(admitted.body, ChatRequest) and admitted.body.stream
        self._record(request, request_id, admitted.model, stream, fault)
        exchange = _Exchange(
            request=request,
            route=admitted.route,
            body=admitted.body,
            model=admitted.model or "",
            request_id=request_id,
            headers=headers,
            fault=fault,
        )
        if not await play_preface(fault, responder):
            await self._serve(exchange, responder)

    # -- admission -------------------------------------------------------------------------

    def _admit(self, request: Request) -> _Admitted:
        route = self._dialect.route(request.method, request.path)
        if route is None:
            raise _Refused(self._dialect.not_found(request))
        refusal = self._dialect.refuse(request, route)
        if refusal is not None:
            raise _Refused(refusal, route.param)
        try:
            body = _decode_body(route.endpoint, request.body)
        except msgspec.DecodeError as error:
            raise _Refused(_invalid(str(error)), route.param) from None
        model = route.param if route.endpoint is not Endpoint.ENTRA_TOKEN else None
        if model is None and body is not None:
            if not body.model:
                raise _Refused(_invalid("you must provide a model parameter"))
            model = body.model
        return _Admitted(route, body, model)

    def _fault(self, request: Request, admitted: _Admitted) -> Fault | None:
        spec = request.headers.get(FAULT_HEADER)
        if spec is not None:
            try:
                return decode_fault(spec)
            except msgspec.DecodeError as error:
                raise _Refused(_invalid(f"Bad {FAULT_HEADER}: {error}"), admitted.model) from None
        endpoint = admitted.route.endpoint
        if endpoint not in _SCRIPTED or not self.script:
            return None
        if endpoint is Endpoint.CHAT:
            return self.script.take(admitted.model)
        return self.script.take(admitted.model, applies_to_any_endpoint)

    def _record(
        self,
        request: Request,
        request_id: str,
        model: str | None,
        stream: bool,
        fault: Fault | None,
    ) -> None:
        record = RequestRecord(
            method=request.method,
            path=request.path,
            model=model,
            stream=stream,
            headers=redacted(request.headers),
            request_id=request_id,
            attempt=request.headers.get("x-skyroute-attempt"),
            fault=_kind(fault),
            time=self._clock(),
        )
        self._ledger.add(record)

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
            _reply(responder, reply, headers)
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
                _reply(responder, reply, headers)
            case Endpoint.ENTRA_TOKEN:
                _reply(responder, entra_token(exchange.request, self._entra_secret), headers)
            case _:
                assert_never(exchange.route.endpoint)

    async def _chat(self, exchange: _Exchange, chat: ChatRequest, responder: Responder) -> None:
        answer, fault, headers = answer_chat(chat), exchange.fault, exchange.headers
        if isinstance(fault, ContextLengthFault):
            reply = self._dialect.context_length_error(fault, answer.prompt_tokens)
            _reply(responder, reply, headers)
            return
        if isinstance(fault, ContentFilterFault):
            blocked = self._dialect.prompt_filtered()
            if blocked is not None:
                _reply(responder, blocked, headers)
                return
            answer = filtered(answer)
        meta = ResponseMeta(
            id=f"chatcmpl-{exchange.request_id.removeprefix('req_')}",
            created=int(self._wall_clock()),
            model=exchange.model,
            choice_filters=self._dialect.choice_filters,
            prompt_filters=self._dialect.prompt_filters,
        )
        if chat.stream:
            include_usage = chat.stream_options is not None and chat.stream_options.include_usage
            events = stream_events(meta, answer, include_usage)
            await send_stream(responder, headers, events, fault)
        else:
            await send_body(responder, 200, completion_body(meta, answer), headers, fault)


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


def _kind(fault: Fault | None) -> str | None:
    if fault is None:
        return None
    kind: str = type(fault).__struct_config__.tag  # type: ignore[assignment]
    return kind


def _reply(responder: Responder, reply: Reply, headers: Headers) -> None:
    responder.send(reply.status, reply.body, [*headers, *reply.headers])
