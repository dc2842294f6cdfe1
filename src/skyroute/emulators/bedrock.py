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
import time
from collections.abc import Callable
from typing import Final, Literal
from urllib.parse import unquote

import msgspec

from skyroute.core.secret import Secret
from skyroute.emulators.base import Admitted, Emulator, Refused, Scripted, Ticket, send_reply
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
from skyroute.emulators.delivery import Headers
from skyroute.emulators.dialect import Reply
from skyroute.emulators.faults import (
    ContentFilterFault,
    ContextLengthFault,
    Fault,
    FaultScript,
    StatusFault,
)
from skyroute.emulators.http import Request, Responder
from skyroute.emulators.ledger import redacted
from skyroute.emulators.openai_wire import ChatRequest
from skyroute.providers.sigv4 import AwsCredentials

__all__ = ["BedrockEmulator", "Operation"]

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


def _secret(value: str | Secret | None) -> Secret | None:
    return Secret(value) if isinstance(value, str) else value


class BedrockEmulator(Emulator[_Exchange]):
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
        super().__init__(
            faults=faults, clock=clock, wall_clock=wall_clock, ledger_limit=ledger_limit
        )

    def _ticket(self, serial: int) -> Ticket:
        request_id = f"{self._id_prefix}-{serial >> 48:04x}-4000-8000-{serial:012x}"
        return Ticket(serial, request_id, [("x-amzn-RequestId", request_id)])

    # -- admission -------------------------------------------------------------------------

    def _admit(self, request: Request, ticket: Ticket) -> Admitted[_Exchange]:
        route = _route(request)
        if route is None:
            message = f"Unknown operation {request.method} {request.path}"
            raise Refused(bedrock_error(404, "UnknownOperationException", message))
        operation, model = route
        try:
            exchange = self._exchange(request, operation, model, ticket)
        except Refused as refusal:
            # The ledger keeps the model and the operation's streaming of every routed request.
            raise Refused(refusal.reply, model, operation.streams) from None
        return Admitted(
            exchange=exchange, model=model, stream=operation.streams, fault=exchange.fault
        )

    def _exchange(
        self, request: Request, operation: Operation, model: str, ticket: Ticket
    ) -> _Exchange:
        refusal = check_auth(request, self._auth, self._wall_clock())
        if refusal is not None:
            raise Refused(bedrock_error(refusal.status, refusal.error_type, refusal.message))
        chat, thinking = _read_body(operation, request.body)
        return _Exchange(
            operation=operation,
            model=model,
            chat=chat,
            thinking=thinking,
            request_id=ticket.request_id,
            serial=ticket.serial,
            headers=ticket.headers,
            fault=self._pick_fault(request, model, Scripted.ANY_FAULT, _invalid),
        )

    def _ledger_headers(self, request: Request) -> dict[str, str]:
        headers = redacted(request.headers)
        if _TOKEN_HEADER in headers:
            headers[_TOKEN_HEADER] = "***"
        return headers

    # -- answers ---------------------------------------------------------------------------

    async def _serve(self, exchange: _Exchange, responder: Responder) -> None:
        fault, headers = exchange.fault, exchange.headers
        if isinstance(fault, StatusFault):
            send_reply(responder, status_fault_reply(fault), headers)
            return
        if isinstance(fault, ContextLengthFault):
            send_reply(responder, _invalid(CONTEXT_TOO_LONG), headers)
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
    """The body as a ChatRequest, and whether it asks for thinking; raises Refused."""
    try:
        if operation in (Operation.CONVERSE, Operation.CONVERSE_STREAM):
            converse, chat = read_converse(body)
            return chat, wants_thinking(converse.additional_model_request_fields)
        invoke, chat = read_invoke(body)
        return chat, wants_thinking({"thinking": invoke.thinking})
    except (ConverseRejected, InvokeRejected) as error:
        raise Refused(_invalid(str(error))) from None


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
