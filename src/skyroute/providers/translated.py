"""The canonical form of a call, for providers that translate OpenAI into another protocol."""

from __future__ import annotations

from skyroute.core.chat import ChatRequest as CanonicalRequest
from skyroute.core.errors import InvalidRequest
from skyroute.providers.base import ChatCall
from skyroute.wire.openai_chat import to_canonical, unsupported_fields


def canonical_of(call: ChatCall, *, drop_unsupported: bool = False) -> CanonicalRequest:
    """The canonical request, translated once per logical request, not once per attempt.

    OpenAI parameters the canonical form cannot carry are refused with a 400 naming the
    first one, unless the operator chose to drop them for this provider.
    """
    inbound = call.inbound
    if inbound.canonical is None:
        unsupported = unsupported_fields(inbound.body)
        if unsupported and not drop_unsupported:
            raise InvalidRequest(
                f"Parameter not supported by this deployment: '{unsupported[0]}'.",
                param=unsupported[0],
            )
        inbound.canonical = to_canonical(inbound.body)
    assert isinstance(inbound.canonical, CanonicalRequest)
    return inbound.canonical
