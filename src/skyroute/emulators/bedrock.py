"""An emulator of AWS Bedrock Runtime, faithful enough for boto3 and AnthropicBedrock.

Operations (all POST; the model id is percent-encoded in the path, `%3A` for `:` from boto3
and a raw `:` from AnthropicBedrock, `%2F` for the `/` of an ARN):

    /model/{modelId}/converse                      Converse (`bedrock_converse.py`)
    /model/{modelId}/converse-stream               ConverseStream, an event stream
    /model/{modelId}/invoke                        InvokeModel, Anthropic body (`bedrock_invoke.py`)
    /model/{modelId}/invoke-with-response-stream   the same, streamed as `chunk` events

A request goes:

    control API? -> route (404 UnknownOperationException) -> SigV4 or API key (403,
    `bedrock_auth.py`) -> decode and validate the body (400 ValidationException)
    -> pick a fault (x-emulator-fault header, else the script, keyed by the decoded model id)
    -> record it in the ledger -> play the fault or answer

Fault kinds map to Bedrock as `bedrock_errors.py` (status, stream_error) and
`bedrock_stream.py` (cut, stall, malformed, slow_first_token, no_done) say; context_length is
400 ValidationException "Input is too long for requested model."; content_filter ends the
answer as a guardrail does (`guardrail_intervened`).
"""

from __future__ import annotations

import enum
import secrets
import time
from collections import deque
from collections.abc import Callable
from itertools import count
from typing import Final, Literal
from urllib.parse import unquote

import msgspec

from skyroute.core.secret import Secret
from skyroute.emulators.bedrock_answer import (
    BedrockAnswer,
    answer_bedrock,
    blocked,
    wants_thinking,
)
from skyroute.emulators.bedrock_auth import BedrockAuth, check_auth
from skyroute.emulators.bedrock_converse import (
    ConverseRejected,
    converse_body,
    converse_events,
    read_converse,
)
from skyroute.emulators.bedrock_errors import CONTEXT_TOO_LONG, bedrock_error, status_fault_reply
from skyroute.emulators.bedrock_invoke import (
    InvokeRejected,
    invoke_body,
    invoke_events,
    read_invoke,
)
from skyroute.emulators.bedrock_stream import send_bedrock_body, send_event_stream
from skyroute.emulators.control import CONTROL_PREFIX, control_reply
from skyroute.emulators.delivery import Headers, play_preface
from skyroute.emulators.dialect import Reply
from skyroute.emulators.faults import (
    ContentFilterFault,
    ContextLengthFault,
    Fault,
    FaultScript,
    StatusFault,
    decode_fault,
)
from skyroute.emulators.http import Request, Responder
from skyroute.emulators.ledger import Ledger, RequestRecord, redacted
from skyroute.emulators.openai_wire import ChatRequest
from skyroute.providers.sigv4 import AwsCredentials

__all__ = ["BedrockEmulator", "Operation"]

FAULT_HEADER: Final = "x-emulator-fault"
_TOKEN_HEADER: Final = "x-amz-security-token"


class Operation(enum.Enum):
    CONVERSE = "converse"
    CONVERSE_STREAM = "converse-stream"
    INVOKE = "invoke"
    INVOKE_STREAM = "invoke-with-response-stream"

    @property
    def streams(self) -> bool:
        return self in (Operation.CONVERSE_STREAM, Operation.INVOKE_STREAM)


_OPERATIONS: Final = {operation.value: operation for operation in Operation}


class _Exchange(msgspec.Struct, frozen=True, kw_only=True):
    """One admitted request, on its way to an answer."""

    operation: Operation
    model: str
    chat: ChatRequest
    thinking: bool
    request_id: str
    serial: int
    headers: list[tuple[str, str]]
    fault: Fault | None


class _Refused(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


def _secret(value: str | Secret | None) -> Secret | None:
    return Secret(value) if isinstance(value, str) else value


class BedrockEmulator:
    """Handles requests for one emulated Bedrock Runtime endpoint (any region)."""

    flavor: Literal["bedrock"] = "bedrock"

    def __init__(
        self,
        *,
        access_key_id: str | None = None,
        secret_access_key: str | Secret | None = None,
        session_token: str | Secret | None = None,
        api_key: str | Secret | None = None,
        faults: FaultScript | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        max_skew: float = 300.0,
        ledger_limit: int = 100_000,
    ) -> None:
        """With neither an access key nor an API key, requests are not authenticated.

        `session_token` None accepts any session token (it must still be signed);
        `wall_clock` (epoch seconds) is what `x-amz-date` is checked against.
        """
        secret = _secret(secret_access_key)
        if (access_key_id is None) != (secret is None):
            raise ValueError("access_key_id and secret_access_key go together")
        credentials = None
        if access_key_id is not None and secret is not None:
            credentials = AwsCredentials(
                access_key_id=access_key_id,
                secret_access_key=secret,
                session_token=_secret(session_token),
            )
        self._auth = BedrockAuth(
            credentials=credentials, api_key=_secret(api_key), max_skew=max_skew
        )
        self.script = faults if faults is not None else FaultScript()
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
        serial = next(self._ids)
        request_id = f"{self._id_prefix}-{serial >> 48:04x}-4000-8000-{serial:012x}"
        headers = [("x-amzn-RequestId", request_id)]
        route = _route(request)
        model, stream = (route[1], route[0].streams) if route else (None, False)
        try:
            exchange = self._admit(request, route, request_id, serial, headers)
        except _Refused as refusal:
            self._record(request, request_id, model, stream, None)
            _reply(responder, refusal.reply, headers)
            return
        self._record(request, request_id, model, stream, exchange.fault)
        if not await play_preface(exchange.fault, responder):
            await self._serve(exchange, responder)

    # -- admission -------------------------------------------------------------------------

    def _admit(
        self,
        request: Request,
        route: tuple[Operation, str] | None,
        request_id: str,
        serial: int,
        headers: list[tuple[str, str]],
    ) -> _Exchange:
        if route is None:
            message = f"Unknown operation {request.method} {request.path}"
            raise _Refused(bedrock_error(404, "UnknownOperationException", message))
        refusal = check_auth(request, self._auth, self._wall_clock())
        if refusal is not None:
            raise _Refused(bedrock_error(refusal.status, refusal.error_type, refusal.message))
        operation, model = route
        chat, thinking = _read_body(operation, request.body)
        return _Exchange(
            operation=operation,
            model=model,
            chat=chat,
            thinking=thinking,
            request_id=request_id,
            serial=serial,
            headers=headers,
            fault=self._fault(request, model),
        )

    def _fault(self, request: Request, model: str) -> Fault | None:
        spec = request.headers.get(FAULT_HEADER)
        if spec is not None:
            try:
                return decode_fault(spec)
            except msgspec.DecodeError as error:
                raise _Refused(_invalid(f"Bad {FAULT_HEADER}: {error}")) from None
        return self.script.take(model) if self.script else None

    def _record(
        self,
        request: Request,
        request_id: str,
        model: str | None,
        stream: bool,
        fault: Fault | None,
    ) -> None:
        headers = redacted(request.headers)
        if _TOKEN_HEADER in headers:
            headers[_TOKEN_HEADER] = "***"
        record = RequestRecord(
            method=request.method,
            path=request.path,
            model=model,
            stream=stream,
            headers=headers,
            request_id=request_id,
            attempt=request.headers.get("x-skyroute-attempt"),
            fault=_kind(fault),
            time=self._clock(),
        )
        self._ledger.add(record)

    # -- answers ---------------------------------------------------------------------------

    async def _serve(self, exchange: _Exchange, responder: Responder) -> None:
        fault, headers = exchange.fault, exchange.headers
        if isinstance(fault, StatusFault):
            _reply(responder, status_fault_reply(fault), headers)
            return
        if isinstance(fault, ContextLengthFault):
            _reply(responder, _invalid(CONTEXT_TOO_LONG), headers)
            return
        answer = answer_bedrock(exchange.chat, thinking=exchange.thinking)
        if isinstance(fault, ContentFilterFault):
            answer = blocked(answer)
        match exchange.operation:
            case Operation.CONVERSE:
                await send_bedrock_body(responder, converse_body(answer), headers, fault)
            case Operation.CONVERSE_STREAM:
                await send_event_stream(responder, headers, converse_events(answer), fault)
            case Operation.INVOKE:
                body = invoke_body(answer, _message_id(exchange), exchange.model)
                metered = [*headers, *_invoke_headers(answer)]
                await send_bedrock_body(responder, body, metered, fault)
            case Operation.INVOKE_STREAM:
                events = invoke_events(answer, _message_id(exchange), exchange.model)
                typed = [*headers, ("X-Amzn-Bedrock-Content-Type", "application/json")]
                await send_event_stream(responder, typed, events, fault)


def _route(request: Request) -> tuple[Operation, str] | None:
    """(operation, decoded model id) for `POST /model/{modelId}/{operation}`."""
    segments = request.path.split("/")
    if request.method != "POST" or len(segments) != 4 or segments[:2] != ["", "model"]:
        return None
    operation = _OPERATIONS.get(segments[3])
    model = unquote(segments[2])
    if operation is None or not model:
        return None
    return operation, model


def _read_body(operation: Operation, body: bytes) -> tuple[ChatRequest, bool]:
    """The body as a ChatRequest, and whether it asks for thinking; raises _Refused."""
    try:
        if operation in (Operation.CONVERSE, Operation.CONVERSE_STREAM):
            converse, chat = read_converse(body)
            return chat, wants_thinking(converse.additional_model_request_fields)
        invoke, chat = read_invoke(body)
        return chat, wants_thinking({"thinking": invoke.thinking})
    except (ConverseRejected, InvokeRejected) as error:
        raise _Refused(_invalid(str(error))) from None


def _invalid(message: str) -> Reply:
    return bedrock_error(400, "ValidationException", message)


def _message_id(exchange: _Exchange) -> str:
    return f"msg_bdrk_01{exchange.request_id[:8]}{exchange.serial:014x}"


def _invoke_headers(answer: BedrockAnswer) -> Headers:
    """The token counts InvokeModel reports in headers (its body is the model's own)."""
    return [
        ("X-Amzn-Bedrock-Input-Token-Count", str(answer.input_tokens)),
        ("X-Amzn-Bedrock-Output-Token-Count", str(answer.output_tokens)),
        ("X-Amzn-Bedrock-Invocation-Latency", str(200 + 10 * answer.output_tokens)),
    ]


def _kind(fault: Fault | None) -> str | None:
    if fault is None:
        return None
    kind: str = type(fault).__struct_config__.tag  # type: ignore[assignment]
    return kind


def _reply(responder: Responder, reply: Reply, headers: Headers) -> None:
    responder.send(reply.status, reply.body, [*headers, *reply.headers])
