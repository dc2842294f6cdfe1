"""Virtual keys: generation, HKDF domain separation, hashing, and display."""

from __future__ import annotations

import base64
import hashlib
import hmac

import msgspec
import pytest

from skyroute.core.secret import Secret
from skyroute.governance.budget import BudgetSpec, Period
from skyroute.governance.keys import (
    KEY_HASHING,
    LABELS,
    PREFIX,
    SECRET_ENCRYPTION,
    SESSION_SIGNING,
    KeyHasher,
    KeyRecord,
    display,
    generate_key,
    hkdf_sha256,
)

ROOT = Secret("root-secret-canary-7f3a")


def test_generated_key_has_prefix_and_256_bits() -> None:
    key = generate_key()
    assert key.startswith(PREFIX)
    body = key[len(PREFIX) :]
    assert "=" not in body
    assert len(base64.urlsafe_b64decode(body + "=")) == 32
    assert generate_key() != key


def test_generate_key_uses_injected_randomness() -> None:
    assert generate_key(lambda n: b"\x00" * n) == PREFIX + "A" * 43
    with pytest.raises(ValueError):
        generate_key(lambda n: b"\x00" * (n - 1))


def test_hkdf_matches_rfc5869_test_case_1() -> None:
    okm = hkdf_sha256(
        bytes.fromhex("0b" * 22),
        salt=bytes.fromhex("000102030405060708090a0b0c"),
        info=bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
        length=42,
    )
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_subkeys_are_distinct_per_domain_and_stable() -> None:
    hasher = KeyHasher(ROOT)
    keys = {label: hasher.subkey(label) for label in LABELS}
    assert len(set(keys.values())) == 3
    assert KeyHasher(ROOT).subkey(SESSION_SIGNING) == keys[SESSION_SIGNING]
    assert KeyHasher(Secret("another root")).subkey(KEY_HASHING) != keys[KEY_HASHING]
    with pytest.raises(ValueError):
        hasher.subkey(b"skyroute something else")


def test_value_from_one_domain_is_rejected_in_another() -> None:
    """S16: a key hash is not a valid session signature or encryption MAC."""
    hasher = KeyHasher(ROOT)
    key = generate_key()
    stored = hasher.hash(key)
    for label in (SECRET_ENCRYPTION, SESSION_SIGNING):
        other = hmac.new(hasher.subkey(label), key.encode(), hashlib.sha256).hexdigest()
        assert not hmac.compare_digest(other, stored)


def test_hash_is_keyed_hex_and_deterministic() -> None:
    hasher = KeyHasher(ROOT)
    key = generate_key()
    assert hasher.hash(key) == hasher.hash(key)
    assert len(hasher.hash(key)) == 64
    assert hasher.hash(key) != hashlib.sha256(key.encode()).hexdigest()
    assert hasher.hash(key) != hasher.hash(key + "x")


@pytest.mark.parametrize(
    "token",
    [b"", b"sk-sr-" + b"A" * 43, b"\xff\xfe not utf-8 \xed\xa0\x80", bytes(range(256)) * 3],
)
def test_hash_is_hmac_sha256_under_the_hashing_subkey(token: bytes) -> None:
    # The hasher computes HMAC from precomputed pad states: it must be HMAC exactly, for
    # tokens of every length (longer than a block too) and bytes that are not UTF-8.
    hasher = KeyHasher(ROOT)
    expected = hmac.new(hasher.subkey(KEY_HASHING), token, hashlib.sha256).hexdigest()
    assert hasher.hash_bytes(token) == expected
    assert hasher.hash(token.decode("utf-8", "surrogateescape")) == expected


def test_hasher_and_secret_never_show_the_root() -> None:
    hasher = KeyHasher(ROOT)
    assert "canary" not in repr(hasher)
    with pytest.raises(ValueError):
        KeyHasher(Secret(""))


def test_display_shows_prefix_and_last_four_only() -> None:
    key = generate_key()
    shown = display(key)
    assert shown == PREFIX + "…" + key[-4:]
    assert key[len(PREFIX) : -4] not in shown
    assert display("short") == PREFIX + "…"


def _record(**fields: object) -> KeyRecord:
    base: dict[str, object] = {"id": "k1", "hash": "h1", "team_id": "t1"}
    base.update(fields)
    return msgspec.convert(base, KeyRecord)


def test_key_record_round_trips_through_json() -> None:
    record = _record(
        models=["gpt-4o"],
        budget={"limit_micros": 5_000_000, "period": "day"},
        rpm=10,
        metadata={"owner": "ops"},
        role="team_admin",
    )
    assert record.budget == BudgetSpec(limit_micros=5_000_000, period=Period.DAY)
    assert msgspec.json.decode(msgspec.json.encode(record), type=KeyRecord) == record


def test_active_allows_revocation_expiry_and_leeway() -> None:
    assert _record().is_active(100)
    assert not _record(revoked_at=50.0).is_active(100)
    assert not _record(expires_at=100.0).is_active(100)
    assert _record(expires_at=100.0).is_active(100, leeway=5)
    assert _record().allows_model("anything")
    assert not _record(models=["a"]).allows_model("b")
