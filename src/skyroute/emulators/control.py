"""The emulator's control API under `/_emulator/` (no auth): ledger and fault script.

GET    /_emulator/requests   every request received (see `ledger.RequestRecord`)
GET    /_emulator/faults     the faults still queued, by model
POST   /_emulator/faults     {"model": "<name or *>", "faults": [spec, ...]} appends
DELETE /_emulator/faults     clears the script
POST   /_emulator/reset      clears the ledger and the script
"""

from __future__ import annotations

import msgspec

from skyroute.emulators.dialect import Reply, openai_error
from skyroute.emulators.faults import FaultScript, decode_fault_order, encode_faults
from skyroute.emulators.http import Request
from skyroute.emulators.ledger import Ledger

__all__ = ["CONTROL_PREFIX", "control_reply"]

CONTROL_PREFIX = "/_emulator/"
_OK = b'{"ok":true}'


def control_reply(request: Request, ledger: Ledger, script: FaultScript) -> Reply:
    match (request.method, request.path.removeprefix(CONTROL_PREFIX).strip("/")):
        case ("GET", "requests"):
            return Reply(200, ledger.encode())
        case ("GET", "faults"):
            return Reply(200, encode_faults(script.pending()))
        case ("POST", "faults"):
            return _add_faults(request.body, script)
        case ("DELETE", "faults"):
            script.clear()
            return Reply(200, _OK)
        case ("POST", "reset"):
            ledger.clear()
            script.clear()
            return Reply(200, _OK)
    return openai_error(404, f"No control endpoint {request.method} {request.path}", None)


def _add_faults(body: bytes, script: FaultScript) -> Reply:
    try:
        order = decode_fault_order(body)
        script.add(order.model, order.faults)
    except (msgspec.DecodeError, ValueError) as error:
        return openai_error(400, f"Bad fault order: {error}", "invalid_request_error")
    return Reply(200, _OK)
