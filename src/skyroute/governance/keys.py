"""Virtual keys: how they are made, hashed, shown, described and looked up.

Decided, and why:

- A key is ``sk-sr-`` + 32 random bytes in URL-safe base64 without padding (43 characters,
  256 bits). The prefix makes leaked keys recognisable to secret scanners.
- Only a keyed hash is stored: HMAC-SHA256 under a subkey derived from the root secret with
  HKDF-SHA256 (RFC 5869, written here with ``hmac``). Hashing, secret encryption and session
  signing each get their own subkey from a distinct label (reliability S16), so a value
  valid in one domain means nothing in another. A keyed hash (not a bare SHA-256) means a
  stolen table cannot be checked against guessed keys without the root secret.
- Keys are shown once; afterwards only ``display`` (prefix and last 4 characters).
- ``KeyCache`` keeps records in memory for ``ttl`` seconds, so the request path does not
  wait for SQL and a revocation is seen by every process within ``ttl`` (plus the loader's
  own staleness). Unknown hashes are remembered for ``negative_ttl`` so a flood of bad keys
  does not reach the loader. The cache is bounded; the oldest entries go first.
- Constant-time behaviour is the caller's job: ``resolve_key`` always hashes, looks up by
  hash (a dict lookup on an HMAC output leaks nothing useful) and raises the same
  ``AuthenticationFailed`` for every failure.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from skyroute.core.errors import AuthenticationFailed
from skyroute.core.secret import Secret
from skyroute.governance.budget import BudgetSpec

PREFIX = "sk-sr-"
ENTROPY_BYTES = 32

KEY_HASHING = b"skyroute key hashing"
SECRET_ENCRYPTION = b"skyroute secret encryption"
SESSION_SIGNING = b"skyroute session signing"
LABELS = (KEY_HASHING, SECRET_ENCRYPTION, SESSION_SIGNING)

# A fixed, public HKDF salt: RFC 5869 §3.1 allows it; the root secret carries the entropy.
_HKDF_SALT = b"skyroute hkdf v1"


def generate_key(rng_bytes: Callable[[int], bytes] = os.urandom) -> str:
    raw = rng_bytes(ENTROPY_BYTES)
    if len(raw) < ENTROPY_BYTES:
        raise ValueError("the random source returned too few bytes")
    return PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def display(key: str) -> str:
    """What may be shown after creation: the prefix and the last 4 characters."""
    if len(key) < len(PREFIX) + 8:
        return PREFIX + "…"  # too short to show any of it safely
    return PREFIX + "…" + key[-4:]


def hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF (RFC 5869) with SHA-256: extract, then expand."""
    if not 0 < length <= 255 * 32:
        raise ValueError("length out of range for HKDF-SHA256")
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    okm, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
    return okm[:length]


class KeyHasher:
    """Derives the per-domain subkeys from the root secret and hashes keys for lookup."""

    __slots__ = ("_subkeys",)

    def __init__(self, root_secret: Secret) -> None:
        if not root_secret:
            raise ValueError("the root secret must not be empty")
        ikm = root_secret.reveal().encode("utf-8")
        self._subkeys = {label: hkdf_sha256(ikm, salt=_HKDF_SALT, info=label) for label in LABELS}

    def subkey(self, label: bytes) -> bytes:
        try:
            return self._subkeys[label]
        except KeyError:
            raise ValueError("unknown key-derivation label") from None

    def hash(self, key: str) -> str:
        data = key.encode("utf-8", "surrogateescape")
        return hmac.new(self._subkeys[KEY_HASHING], data, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "KeyHasher(<redacted>)"


class Role(enum.StrEnum):
    ADMIN = "admin"
    TEAM_ADMIN = "team_admin"
    VIEWER = "viewer"
    KEY = "key"  # a plain virtual key: may call models, nothing under /admin/


class KeyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A virtual key as stored; ``None`` limits mean unlimited, empty ``models`` means all."""

    id: str
    hash: str
    team_id: str | None = None  # None: not bound to a team (only admins)
    name: str = ""
    models: tuple[str, ...] = ()
    budget: BudgetSpec | None = None
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    expires_at: float | None = None
    revoked_at: float | None = None
    created_by: str | None = None
    role: Role = Role.KEY
    metadata: dict[str, str] = msgspec.field(default_factory=dict)

    def is_active(self, now: float, leeway: float = 0.0) -> bool:
        """Not revoked and not expired; ``leeway`` tolerates replica clock skew (F17)."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or now < self.expires_at + leeway

    def allows_model(self, model: str) -> bool:
        return not self.models or model in self.models


Loader = Callable[[str], KeyRecord | None]


@dataclass(slots=True)
class _Entry:
    record: KeyRecord | None
    fresh_until: float


class KeyCache:
    """Lookup by hash with a TTL, a shorter negative TTL, and a bound on entries."""

    def __init__(
        self,
        loader: Loader,
        *,
        ttl: float = 10.0,
        negative_ttl: float = 2.0,
        max_entries: int = 100_000,
    ) -> None:
        if ttl <= 0 or negative_ttl <= 0 or max_entries < 1:
            raise ValueError("ttl, negative_ttl and max_entries must be positive")
        self._loader = loader
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max = max_entries
        self._entries: dict[str, _Entry] = {}

    def lookup(self, key_hash: str, now: float) -> KeyRecord | None:
        entry = self._entries.get(key_hash)
        # ``now < fresh_until - ttl`` means the clock stepped back: refetch to be safe.
        if entry is not None and entry.fresh_until - self._ttl <= now < entry.fresh_until:
            return entry.record
        record = self._loader(key_hash)
        ttl = self._ttl if record is not None else self._negative_ttl
        self._entries.pop(key_hash, None)
        if len(self._entries) >= self._max:
            del self._entries[next(iter(self._entries))]
        self._entries[key_hash] = _Entry(record, now + ttl)
        return record

    def invalidate(self, key_hash: str) -> None:
        """Forget one entry now (this process revoked or changed the key)."""
        self._entries.pop(key_hash, None)

    def __len__(self) -> int:
        return len(self._entries)


def resolve_key(token: str | None, hasher: KeyHasher, cache: KeyCache, now: float) -> KeyRecord:
    """The virtual key behind a bearer token, or ``AuthenticationFailed`` (one body for a
    missing, malformed, unknown, revoked or expired key)."""
    # Hash whatever came, so a malformed token costs about what a well-formed one does.
    key_hash = hasher.hash(token or "")
    record = cache.lookup(key_hash, now) if token and token.startswith(PREFIX) else None
    if record is None or not record.is_active(now):
        raise AuthenticationFailed()
    return record
