"""``Secret``: a credential whose value never shows up in a repr, a log line or an error."""

from __future__ import annotations

import hmac


class Secret:
    """Holds a credential. ``str()`` and ``repr()`` are redacted; only ``reveal()`` reads it.

    Only the transport and the key check call ``reveal()``; everything else passes the
    object along untouched.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def matches(self, candidate: str | bytes) -> bool:
        """Constant-time comparison against a caller-supplied value."""
        if isinstance(candidate, str):
            candidate = candidate.encode("utf-8", "surrogateescape")
        return hmac.compare_digest(self._value.encode("utf-8", "surrogateescape"), candidate)

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)
