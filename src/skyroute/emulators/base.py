"""What every emulator does with a request before and around its protocol's answer.

`Emulator.handle` is the skeleton the OpenAI/Azure, Bedrock, Google and Anthropic emulators
share:

    control API? -> a request id and response headers (`_ticket`)
    -> admit: route, credentials, body, fault (`_admit`; raises `Refused`)
    -> record it in the ledger -> play a preface fault (reset, hang, delay) -> `_serve`
    -> settle the record with the status answered (even when the client left)

A subclass supplies those three hooks and keeps its protocol's behaviour to itself; it may
also widen what the ledger redacts (`_ledger_headers`) or what the control API does
(`_control`), and record what an answer bills (`_bill`). `pick_fault` is the shared rule
for which fault a request meets.
"""

from __future__ import annotations

import enum
import secrets
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from itertools import count
from typing import Final, Generic, TypeVar

import msgspec

from skyroute.emulators.control import CONTROL_PREFIX, control_reply
from skyroute.emulators.delivery import Headers, play_preface
from skyroute.emulators.dialect import Reply
from skyroute.emulators.faults import Fault, FaultScript, applies_to_any_endpoint, decode_fault
from skyroute.emulators.http import Request, Responder
from skyroute.emulators.ledger import Ledger, RequestRecord, redacted

__all__ = [
    "FAULT_HEADER",
    "Admitted",
    "Emulator",
    "Refused",
    "Scripted",
    "Ticket",
    "fault_kind",
    "send_reply",
]

FAULT_HEADER: Final = "x-emulator-fault"

X = TypeVar("X")


class Refused(Exception):
    """A request answered with an error before any fault or answer."""

    def __init__(self, reply: Reply, model: str | None = None, stream: bool = False) -> None:
        super().__init__(reply.status)
        self.reply = reply
        self.model = model
        self.stream = stream


class Ticket(msgspec.Struct, frozen=True):
    """The id a request is answered under, and the headers every answer to it carries."""

    serial: int
    request_id: str
    headers: list[tuple[str, str]]


class Admitted(msgspec.Struct, Generic[X], frozen=True, kw_only=True):
    """An admitted request: what the ledger records of it, and the emulator's own exchange."""

    exchange: X
    model: str | None
    stream: bool
    fault: Fault | None


class Scripted(enum.Enum):
    """How a request consults the fault script when no header names a fault."""

    NEVER = "never"
    """Not at all: a gateway polls model lists and tokens on its own schedule, and would
    otherwise eat faults meant for completions."""
    ANY_FAULT = "any_fault"
    """The model's next fault, whatever its kind (chat-like endpoints)."""
    ANY_ENDPOINT = "any_endpoint"
    """The model's next fault of a kind that applies to any endpoint."""


class Emulator(ABC, Generic[X]):
    """The request-handling skeleton, the ledger and the fault script of one emulator."""

    def __init__(
        self,
        *,
        faults: FaultScript | None,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        ledger_limit: int,
    ) -> None:
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
            send_reply(responder, self._control(request), ())
            return
        ticket = self._ticket(next(self._ids))
        try:
            admitted = self._admit(request, ticket)
        except Refused as refusal:
            self._record(request, ticket.request_id, refusal.model, refusal.stream, None)
            send_reply(responder, refusal.reply, ticket.headers)
            self._ledger.settle(ticket.request_id, status=refusal.reply.status)
            return
        self._record(request, ticket.request_id, admitted.model, admitted.stream, admitted.fault)
        try:
            if not await play_preface(admitted.fault, responder):
                await self._serve(admitted.exchange, responder)
        finally:
            # Also when the handler is cancelled because the client went away.
            self._ledger.settle(ticket.request_id, status=responder.status)

    # -- hooks -----------------------------------------------------------------------------

    @abstractmethod
    def _ticket(self, serial: int) -> Ticket:
        """The request id and response headers of the serial-th request."""

    @abstractmethod
    def _admit(self, request: Request, ticket: Ticket) -> Admitted[X]:
        """Route, authenticate, read and pick the fault of a request; raises Refused."""

    @abstractmethod
    async def _serve(self, exchange: X, responder: Responder) -> None:
        """Answer an admitted request, broken as its fault says."""

    def _control(self, request: Request) -> Reply:
        return control_reply(request, self._ledger, self.script)

    def _ledger_headers(self, request: Request) -> dict[str, str]:
        """The request's headers as the ledger keeps them, secrets masked."""
        return redacted(request.headers)

    # -- shared steps ----------------------------------------------------------------------

    def _bill(self, request_id: str, prompt_tokens: int, completion_tokens: int) -> None:
        """Record the usage an answer bills (see `ledger`), before it is sent: a client that
        leaves mid-answer cancels the handler, and the cloud bills it all the same."""
        self._ledger.settle(
            request_id, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )

    def _request_id(self, serial: int) -> str:
        return f"req_{self._id_prefix}{serial:024x}"

    def _pick_fault(
        self,
        request: Request,
        model: str | None,
        scripted: Scripted,
        invalid: Callable[[str], Reply],
    ) -> Fault | None:
        """The fault the `x-emulator-fault` header names, else the script's next one."""
        spec = request.headers.get(FAULT_HEADER)
        if spec is not None:
            try:
                return decode_fault(spec)
            except msgspec.DecodeError as error:
                raise Refused(invalid(f"Bad {FAULT_HEADER}: {error}"), model) from None
        if scripted is Scripted.NEVER or not self.script:
            return None
        if scripted is Scripted.ANY_FAULT:
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
            headers=self._ledger_headers(request),
            request_id=request_id,
            attempt=request.headers.get("x-skyroute-attempt"),
            fault=fault_kind(fault),
            time=self._clock(),
        )
        self._ledger.add(record)


def fault_kind(fault: Fault | None) -> str | None:
    if fault is None:
        return None
    kind: str = type(fault).__struct_config__.tag  # type: ignore[assignment]
    return kind


def send_reply(responder: Responder, reply: Reply, headers: Headers) -> None:
    responder.send(reply.status, reply.body, [*headers, *reply.headers])
