"""An emulator of the first-party Anthropic API (api.anthropic.com), faithful enough for the SDK.

    POST /v1/messages                  a Message, or its SSE stream with `"stream": true`
    POST /v1/messages/count_tokens     {"input_tokens": N}
    GET  /v1/models, /v1/models/{id}   the catalogue (`anthropic_catalog.py`)
    *    /_emulator/...                the control API (`control.py`), no auth

The key comes as `x-api-key` (the documented header) or `Authorization: Bearer` (what
anthropic 2.13+ sends for `api_key=` and `auth_token=` alike, protocols.md §0.1); any
`anthropic-version` is accepted. A request goes:

    control API? -> route (404 not_found_error) -> key (401 authentication_error)
    -> read the body (400 invalid_request_error, `anthropic_requests.py`)
    -> pick a fault (x-emulator-fault header, else the script, keyed by the body's model or
       the path's model id) -> record it in the ledger -> play the fault or answer

Answers are Claude's deterministic answers (`bedrock_answer.answer_bedrock`), framed by
`anthropic_messages` with the first party's additions: `msg_01...`/`toolu_01...` ids, the
usage's prompt-cache accounts (`anthropic_cache.py`), a `ping` after `message_start`.

Fault kinds, as this emulator plays them (reset, hang and delay strike before the answer,
`delivery.play_preface`; cut, stall and slow_first_token as in `delivery.py`):

    status          Anthropic's error for the status (`anthropic_errors.py`): 429
                    rate_limit_error with retry-after and anthropic-ratelimit-*, 529
                    overloaded_error, ...
    stream_error    after HTTP 200, `event: error` with overloaded_error (or the fault's
                    code/type); not streaming: that error as the HTTP answer
    malformed       an SSE event whose JSON is broken; not streaming: a broken body
    no_done         the stream ends without `message_stop` (held open `hold` seconds)
    context_length  400 "prompt is too long: N tokens > M maximum"
    content_filter  stop_reason `refusal`, no content
"""

from __future__ import annotations

import enum
import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Final, assert_never

import msgspec

from skyroute.core.secret import Secret
from skyroute.emulators.answers import prompt_tokens
from skyroute.emulators.anthropic_cache import PromptCache, boundaries
from skyroute.emulators.anthropic_catalog import DEFAULT_MODEL_IDS, model_reply, models_reply
from skyroute.emulators.anthropic_errors import (
    context_length_reply,
    error_reply,
    status_fault_reply,
    stream_dialect,
)
from skyroute.emulators.anthropic_messages import (
    MessageExtras,
    count_tokens_body,
    message_body,
    message_events,
    refused,
)
from skyroute.emulators.anthropic_requests import (
    Conversation,
    MessagesRejected,
    read_count_tokens,
    read_messages,
)
from skyroute.emulators.anthropic_wire import MessagesRequest
from skyroute.emulators.base import Admitted, Emulator, Refused, Scripted, Ticket, send_reply
from skyroute.emulators.bedrock_answer import answer_bedrock
from skyroute.emulators.chat import EventKind
from skyroute.emulators.dialect import Reply
from skyroute.emulators.faults import (
    ContentFilterFault,
    ContextLengthFault,
    Fault,
    FaultScript,
    StatusFault,
)
from skyroute.emulators.google_delivery import send_answer, send_events
from skyroute.emulators.http import Request, Responder

__all__ = ["DEFAULT_MODEL_IDS", "AnthropicEmulator"]

_BASE62: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_FIRST_PARTY: Final = MessageExtras(tool_prefix="toolu_01", ping=True, stop_kind=EventKind.DONE)


class _Endpoint(enum.Enum):
    MESSAGES = "messages"
    COUNT_TOKENS = "count_tokens"
    MODELS = "models"
    MODEL = "model"


class _Route(msgspec.Struct, frozen=True):
    endpoint: _Endpoint
    model_id: str | None = None


def _route(method: str, path: str) -> _Route | None:
    match (method, path.strip("/").split("/")):
        case ("POST", ["v1", "messages"]):
            return _Route(_Endpoint.MESSAGES)
        case ("POST", ["v1", "messages", "count_tokens"]):
            return _Route(_Endpoint.COUNT_TOKENS)
        case ("GET", ["v1", "models"]):
            return _Route(_Endpoint.MODELS)
        case ("GET", ["v1", "models", model_id]) if model_id:
            return _Route(_Endpoint.MODEL, model_id)
    return None


class _Exchange(msgspec.Struct, frozen=True, kw_only=True):
    """One admitted request, on its way to an answer."""

    request: Request
    route: _Route
    conversation: Conversation | None
    model: str | None
    request_id: str
    headers: list[tuple[str, str]]
    fault: Fault | None


class AnthropicEmulator(Emulator[_Exchange]):
    """Handles requests for one emulated api.anthropic.com."""

    flavor: Final = "anthropic"

    def __init__(
        self,
        api_key: str | Secret | None = None,
        *,
        faults: FaultScript | None = None,
        model_ids: Sequence[str] = DEFAULT_MODEL_IDS,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        ledger_limit: int = 100_000,
        cache_limit: int = 4096,
    ) -> None:
        """With no `api_key`, any key (or none) is accepted."""
        super().__init__(
            faults=faults, clock=clock, wall_clock=wall_clock, ledger_limit=ledger_limit
        )
        self.model_ids = tuple(model_ids)
        self._api_key = Secret(api_key) if isinstance(api_key, str) else api_key
        self._cache = PromptCache(cache_limit)

    def reset(self) -> None:
        """Forget the ledger, the fault script and the prompt cache."""
        super().reset()
        self._cache.clear()

    def _control(self, request: Request) -> Reply:
        if request.method == "POST" and request.path.rstrip("/").endswith("/reset"):
            self._cache.clear()
        return super()._control(request)

    def _ticket(self, serial: int) -> Ticket:
        request_id = self._request_id(serial)
        return Ticket(
            serial, request_id, [("request-id", request_id), ("x-request-id", request_id)]
        )

    # -- admission -------------------------------------------------------------------------

    def _admit(self, request: Request, ticket: Ticket) -> Admitted[_Exchange]:
        request_id = ticket.request_id
        route = _route(request.method, request.path)
        if route is None:
            raise Refused(error_reply(404, "not_found_error", "Not Found", request_id))
        refusal = self._authenticate(request, request_id)
        if refusal is not None:
            raise Refused(refusal, route.model_id)
        try:
            conversation = _read(route, request.body)
        except MessagesRejected as error:
            raise Refused(_invalid(str(error), request_id), error.model) from None
        model = conversation.request.model if conversation else route.model_id
        fault = self._pick_fault(
            request,
            model,
            _scripted(route.endpoint),
            lambda message: _invalid(message, request_id),
        )
        exchange = _Exchange(
            request=request,
            route=route,
            conversation=conversation,
            model=model,
            request_id=request_id,
            headers=list(ticket.headers),
            fault=fault,
        )
        body = conversation.request if conversation else None
        stream = isinstance(body, MessagesRequest) and body.stream
        return Admitted(exchange=exchange, model=model, stream=stream, fault=fault)

    def _authenticate(self, request: Request, request_id: str) -> Reply | None:
        if self._api_key is None:
            return None
        key = request.headers.get("x-api-key")
        if key is None:
            auth = request.headers.get("authorization", "")
            key = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        if not key:
            message = "x-api-key header is required"
        elif not self._api_key.matches(key):
            message = "invalid x-api-key"
        else:
            return None
        return error_reply(401, "authentication_error", message, request_id)

    # -- answers ---------------------------------------------------------------------------

    async def _serve(self, exchange: _Exchange, responder: Responder) -> None:
        fault, request_id = exchange.fault, exchange.request_id
        if isinstance(fault, StatusFault):
            reply = status_fault_reply(fault, exchange.model, request_id, self._wall_clock())
            send_reply(responder, reply, exchange.headers)
            return
        conversation = exchange.conversation
        match exchange.route.endpoint:
            case _Endpoint.MESSAGES:
                assert conversation is not None
                await self._message(exchange, conversation, responder)
                return
            case _Endpoint.COUNT_TOKENS:
                assert conversation is not None
                reply = Reply(200, count_tokens_body(prompt_tokens(conversation.chat.messages)))
            case _Endpoint.MODELS:
                reply = models_reply(exchange.request, self.model_ids, request_id)
            case _Endpoint.MODEL:
                reply = model_reply(exchange.route.model_id or "", self.model_ids, request_id)
            case _:
                assert_never(exchange.route.endpoint)
        if reply.status != 200:
            send_reply(responder, reply, exchange.headers)
            return
        await send_answer(
            responder, reply.body, exchange.headers, fault, stream_dialect(request_id)
        )

    async def _message(
        self, exchange: _Exchange, conversation: Conversation, responder: Responder
    ) -> None:
        fault, headers, request_id = exchange.fault, exchange.headers, exchange.request_id
        request = conversation.request
        assert isinstance(request, MessagesRequest)
        answer = answer_bedrock(conversation.chat, thinking=conversation.thinking)
        if isinstance(fault, ContextLengthFault):
            reply = context_length_reply(fault, answer.input_tokens, request_id)
            send_reply(responder, reply, headers)
            return
        if isinstance(fault, ContentFilterFault):
            answer = refused(answer)
        points = boundaries(
            request.model,
            request.tools or (),
            request.system,
            conversation.turns,
            request.cache_control,
        )
        usage = self._cache.account(points, answer.input_tokens, answer.output_tokens)
        extras = msgspec.structs.replace(_FIRST_PARTY, usage=usage)
        message_id = _message_id(request_id)
        dialect = stream_dialect(request_id)
        if request.stream:
            events = message_events(answer, message_id, request.model, extras)
            await send_events(responder, headers, events, fault, dialect)
        else:
            body = message_body(answer, message_id, request.model, extras)
            await send_answer(responder, body, headers, fault, dialect)


def _read(route: _Route, body: bytes) -> Conversation | None:
    match route.endpoint:
        case _Endpoint.MESSAGES:
            return read_messages(body)
        case _Endpoint.COUNT_TOKENS:
            return read_count_tokens(body)
        case _Endpoint.MODELS | _Endpoint.MODEL:
            return None
        case _:
            assert_never(route.endpoint)


def _message_id(request_id: str) -> str:
    """`msg_01` and 22 base62 characters, as Anthropic's ids look, from the request id."""
    number = int.from_bytes(hashlib.blake2b(request_id.encode(), digest_size=16).digest(), "big")
    digits = []
    for _ in range(22):
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return "msg_01" + "".join(digits)


def _invalid(message: str, request_id: str) -> Reply:
    return error_reply(400, "invalid_request_error", message, request_id)


def _scripted(endpoint: _Endpoint) -> Scripted:
    match endpoint:
        case _Endpoint.MESSAGES:
            return Scripted.ANY_FAULT
        case _Endpoint.COUNT_TOKENS | _Endpoint.MODEL:
            return Scripted.ANY_ENDPOINT
        case _Endpoint.MODELS:
            # The models list names no model, and a gateway polls it on its own schedule.
            return Scripted.NEVER
        case _:
            assert_never(endpoint)
