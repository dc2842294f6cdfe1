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
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from itertools import count
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
from skyroute.emulators.bedrock_answer import answer_bedrock
from skyroute.emulators.chat import EventKind
from skyroute.emulators.control import CONTROL_PREFIX, control_reply
from skyroute.emulators.delivery import Headers, play_preface
from skyroute.emulators.dialect import Reply
from skyroute.emulators.faults import (
    ContentFilterFault,
    ContextLengthFault,
    Fault,
    FaultScript,
    StatusFault,
    applies_to_any_endpoint,
    decode_fault,
)
from skyroute.emulators.google_delivery import send_answer, send_events
from skyroute.emulators.http import Request, Responder
from skyroute.emulators.ledger import Ledger, RequestRecord, redacted

__all__ = ["DEFAULT_MODEL_IDS", "AnthropicEmulator"]

FAULT_HEADER: Final = "x-emulator-fault"
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


class _Refused(Exception):
    def __init__(self, reply: Reply, model: str | None = None) -> None:
        super().__init__(reply.status)
        self.reply = reply
        self.model = model


class AnthropicEmulator:
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
        self.script = faults if faults is not None else FaultScript()
        self.model_ids = tuple(model_ids)
        self._api_key = Secret(api_key) if isinstance(api_key, str) else api_key
        self._clock = clock
        self._wall_clock = wall_clock
        self._ledger = Ledger(ledger_limit)
        self._cache = PromptCache(cache_limit)
        self._id_prefix = secrets.token_hex(4)
        self._ids = count(1)

    @property
    def requests(self) -> deque[RequestRecord]:
        """Every request received, oldest first (bounded by `ledger_limit`)."""
        return self._ledger.records

    def reset(self) -> None:
        """Forget the ledger, the fault script and the prompt cache."""
        self._ledger.clear()
        self.script.clear()
        self._cache.clear()

    async def handle(self, request: Request, responder: Responder) -> None:
        if request.path.startswith(CONTROL_PREFIX):
            if request.method == "POST" and request.path.rstrip("/").endswith("/reset"):
                self._cache.clear()
            _reply(responder, control_reply(request, self._ledger, self.script), ())
            return
        request_id = f"req_{self._id_prefix}{next(self._ids):024x}"
        headers = [("request-id", request_id), ("x-request-id", request_id)]
        try:
            exchange = self._admit(request, request_id, headers)
        except _Refused as refusal:
            self._record(request, request_id, refusal.model, False, None)
            _reply(responder, refusal.reply, headers)
            return
        body = exchange.conversation.request if exchange.conversation else None
        stream = isinstance(body, MessagesRequest) and body.stream
        self._record(request, request_id, exchange.model, stream, exchange.fault)
        if not await play_preface(exchange.fault, responder):
            await self._serve(exchange, responder)

    # -- admission -------------------------------------------------------------------------

    def _admit(self, request: Request, request_id: str, headers: Headers) -> _Exchange:
        route = _route(request.method, request.path)
        if route is None:
            raise _Refused(error_reply(404, "not_found_error", "Not Found", request_id))
        refusal = self._authenticate(request, request_id)
        if refusal is not None:
            raise _Refused(refusal, route.model_id)
        try:
            conversation = _read(route, request.body)
        except MessagesRejected as error:
            raise _Refused(_invalid(str(error), request_id), error.model) from None
        model = conversation.request.model if conversation else route.model_id
        return _Exchange(
            request=request,
            route=route,
            conversation=conversation,
            model=model,
            request_id=request_id,
            headers=list(headers),
            fault=self._fault(request, route, model, request_id),
        )

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

    def _fault(
        self, request: Request, route: _Route, model: str | None, request_id: str
    ) -> Fault | None:
        spec = request.headers.get(FAULT_HEADER)
        if spec is not None:
            try:
                return decode_fault(spec)
            except msgspec.DecodeError as error:
                raise _Refused(
                    _invalid(f"Bad {FAULT_HEADER}: {error}", request_id), model
                ) from None
        # The models list names no model, and a gateway polls it on its own schedule.
        if route.endpoint is _Endpoint.MODELS or not self.script:
            return None
        if route.endpoint is _Endpoint.MESSAGES:
            return self.script.take(model)
        return self.script.take(model, applies_to_any_endpoint)

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
        fault, request_id = exchange.fault, exchange.request_id
        if isinstance(fault, StatusFault):
            reply = status_fault_reply(fault, exchange.model, request_id, self._wall_clock())
            _reply(responder, reply, exchange.headers)
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
            _reply(responder, reply, exchange.headers)
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
            _reply(responder, reply, headers)
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


def _kind(fault: Fault | None) -> str | None:
    if fault is None:
        return None
    kind: str = type(fault).__struct_config__.tag  # type: ignore[assignment]
    return kind


def _reply(responder: Responder, reply: Reply, headers: Headers) -> None:
    responder.send(reply.status, reply.body, [*headers, *reply.headers])
