"""A client-facing protocol's conventions: where the caller's key is, how errors look.

skyroute answers OpenAI clients in OpenAI's error shape and Anthropic clients in
Anthropic's, from the same error tree, on every path, the 401s and 404s included.
"""

from __future__ import annotations

from collections.abc import Callable

from skyroute.core.errors import GatewayError
from skyroute.governance.auth import bearer_token
from skyroute.wire import anthropic
from skyroute.wire import openai as openai_wire


class Surface:
    __slots__ = ("error_body", "key_headers", "name")

    def __init__(
        self,
        name: str,
        error_body: Callable[[GatewayError], bytes],
        key_headers: tuple[bytes, ...],
    ) -> None:
        self.name = name
        self.error_body = error_body
        self.key_headers = key_headers

    def credential(self, headers: list[tuple[bytes, bytes]]) -> bytes | None:
        """The caller's key: the first of this surface's key headers that is present."""
        for wanted in self.key_headers:
            for name, value in headers:
                if name == wanted:
                    return bearer_token(value) if name == b"authorization" else value.strip()
        return None


OPENAI = Surface("openai", openai_wire.error_body, (b"authorization",))
# The Anthropic SDK sends x-api-key (older) or Authorization: Bearer (2.13 and later).
ANTHROPIC = Surface("anthropic", anthropic.error_body, (b"x-api-key", b"authorization"))
