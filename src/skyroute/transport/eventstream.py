"""The AWS event-stream codec (``application/vnd.amazon.eventstream``), used by Bedrock streams.

Each message, all integers big-endian::

    u32 total_length      the whole message, both CRCs included
    u32 headers_length
    u32 prelude_crc       CRC32 of the 8 bytes above
    headers               headers_length bytes
    payload               total_length - headers_length - 16 bytes
    u32 message_crc       CRC32 of everything before it

A header is ``u8 name_len, name, u8 type, value``; the value types are listed at ``_BOOL_TRUE``
and below. The decoder is incremental: frames may be split anywhere across reads. It holds at
most one unfinished message, and checks the prelude (CRC and size) as soon as its 12 bytes are
in, so an oversized or corrupt frame fails before its body is buffered. A failure is final:
once the framing is lost, the stream cannot be resynchronised.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from typing import Final, TypeAlias

import msgspec

__all__ = [
    "EventStreamDecoder",
    "EventStreamError",
    "EventStreamMessage",
    "HeaderValue",
    "encode_event",
    "encode_exception",
    "encode_message",
]

HeaderValue: TypeAlias = str | bytes | int | bool

_PRELUDE: Final = struct.Struct(">III")
_U32: Final = struct.Struct(">I")
_PRELUDE_BYTES: Final = 12
_MIN_MESSAGE: Final = 16  # prelude + message CRC, no headers, empty payload
_MAX_TOTAL_LENGTH: Final = 0xFFFFFFFF

# Header value types, as the wire numbers them.
_BOOL_TRUE: Final = 0
_BOOL_FALSE: Final = 1
_STRING: Final = 7
_BYTES: Final = 6
_INT32: Final = 4
_INT64: Final = 5
_TIMESTAMP: Final = 8  # i64 milliseconds since the epoch, decoded as int
_UUID: Final = 9  # 16 raw bytes, decoded as bytes
# Fixed-size integer types: type -> (struct, size).
_FIXED: Final = {
    2: struct.Struct(">b"),
    3: struct.Struct(">h"),
    _INT32: struct.Struct(">i"),
    _INT64: struct.Struct(">q"),
    _TIMESTAMP: struct.Struct(">q"),
}
_U16: Final = struct.Struct(">H")
_INT32_RANGE: Final = range(-(2**31), 2**31)
_INT64_RANGE: Final = range(-(2**63), 2**63)


class EventStreamError(ValueError):
    """The bytes are not a valid event stream: a CRC mismatch, a bad length or bad headers."""


class EventStreamMessage(msgspec.Struct, frozen=True):
    """One decoded message. Timestamps are int milliseconds and UUIDs 16 bytes."""

    headers: dict[str, HeaderValue]
    payload: bytes

    @property
    def message_type(self) -> str | None:
        """``event``, ``exception`` (a modeled error) or ``error`` (an unmodeled one)."""
        return self._text(":message-type")

    @property
    def event_type(self) -> str | None:
        return self._text(":event-type")

    @property
    def exception_type(self) -> str | None:
        return self._text(":exception-type")

    @property
    def content_type(self) -> str | None:
        return self._text(":content-type")

    def _text(self, name: str) -> str | None:
        value = self.headers.get(name)
        return value if isinstance(value, str) else None


class EventStreamDecoder:
    """Turns body pieces into messages; never holds more than one unfinished message."""

    __slots__ = ("_failed", "_held", "_max", "_need")

    def __init__(self, *, max_message_bytes: int = 16 * 1024 * 1024) -> None:
        if max_message_bytes < _MIN_MESSAGE:
            raise ValueError(f"max_message_bytes must be at least {_MIN_MESSAGE}")
        self._max = max_message_bytes
        self._held = bytearray()  # the start of an unfinished message
        self._need = 0  # its total_length once its prelude is checked, else 0
        self._failed = False

    @property
    def buffered_bytes(self) -> int:
        """Bytes of the unfinished message held (less than ``max_message_bytes``)."""
        return len(self._held)

    def feed(self, data: bytes | bytearray | memoryview) -> list[EventStreamMessage]:
        """Decode one more piece of the stream; returns the messages it completed, in order."""
        if self._failed:
            raise EventStreamError("event stream already failed")
        try:
            return self._feed(memoryview(data).cast("B"))
        except EventStreamError:
            self._failed = True
            self._held = bytearray()
            raise

    def finish(self) -> None:
        """Call at the end of the body: raises if it stopped in the middle of a message."""
        if self._held:
            raise EventStreamError(f"event stream ended inside a message ({len(self._held)} bytes)")

    def _feed(self, view: memoryview) -> list[EventStreamMessage]:
        messages: list[EventStreamMessage] = []
        if self._held:
            view = self._complete_held(view, messages)
            if self._held:
                return messages
        # Whole messages are decoded straight from the caller's bytes, without copying them
        # into the buffer; only an unfinished tail is kept.
        start, end = 0, len(view)
        while end - start >= _PRELUDE_BYTES:
            total = self._check_prelude(view[start : start + _PRELUDE_BYTES])
            if end - start < total:
                self._need = total  # checked: the tail kept below is shorter than the limit
                break
            messages.append(_decode_message(view[start : start + total]))
            start += total
        self._held += view[start:]
        return messages

    def _complete_held(self, view: memoryview, messages: list[EventStreamMessage]) -> memoryview:
        """Top up the held message from ``view``: first to a full prelude, then to its total
        length. Returns what is left of ``view``."""
        held = self._held
        if not self._need:
            take = _PRELUDE_BYTES - len(held)
            held += view[:take]
            view = view[take:]
            if len(held) < _PRELUDE_BYTES:
                return view
            self._need = self._check_prelude(held)
        take = self._need - len(held)
        held += view[:take]
        view = view[take:]
        if len(held) == self._need:
            # A fresh buffer replaces this one, so viewing it without a copy is safe.
            messages.append(_decode_message(memoryview(held)))
            self._held = bytearray()
            self._need = 0
        return view

    def _check_prelude(self, prelude: bytes | bytearray | memoryview) -> int:
        total, headers_length, crc = _PRELUDE.unpack_from(prelude)
        if zlib.crc32(prelude[:8]) != crc:
            raise EventStreamError("event stream prelude CRC mismatch")
        if total < _MIN_MESSAGE:
            raise EventStreamError(f"event stream message length {total} is below 16")
        if total > self._max:
            raise EventStreamError(f"event stream message of {total} bytes exceeds {self._max}")
        if headers_length > total - _MIN_MESSAGE:
            raise EventStreamError("event stream headers are longer than the message")
        return int(total)  # unpack_from is typed Any


def _decode_message(frame: memoryview) -> EventStreamMessage:
    """Decode one complete frame whose prelude has been checked."""
    (crc,) = _U32.unpack_from(frame, len(frame) - 4)
    if zlib.crc32(frame[:-4]) != crc:
        raise EventStreamError("event stream message CRC mismatch")
    (headers_length,) = _U32.unpack_from(frame, 4)
    headers_end = _PRELUDE_BYTES + headers_length
    headers = _decode_headers(frame[_PRELUDE_BYTES:headers_end])
    return EventStreamMessage(headers, bytes(frame[headers_end:-4]))


def _decode_headers(block: memoryview) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    pos, end = 0, len(block)
    try:
        while pos < end:
            name_end = pos + 1 + block[pos]
            name = str(block[pos + 1 : name_end], "utf-8")
            if name_end >= end:
                raise EventStreamError(f"event stream header {name!r} has no value")
            value, pos = _decode_value(block, block[name_end], name_end + 1)
            if name in headers:  # botocore refuses these too (DuplicateHeader)
                raise EventStreamError(f"duplicate event stream header {name!r}")
            headers[name] = value
    except (struct.error, UnicodeDecodeError, IndexError) as exc:
        raise EventStreamError(f"malformed event stream headers: {exc}") from exc
    return headers


def _decode_value(block: memoryview, kind: int, pos: int) -> tuple[HeaderValue, int]:
    """One header value of type ``kind`` starting at ``pos``: (value, position after it)."""
    if kind in (_BOOL_TRUE, _BOOL_FALSE):
        return kind == _BOOL_TRUE, pos
    fixed = _FIXED.get(kind)
    if fixed is not None:
        return fixed.unpack_from(block, pos)[0], pos + fixed.size
    if kind == _UUID:
        size = 16
    elif kind in (_BYTES, _STRING):
        (size,) = _U16.unpack_from(block, pos)
        pos += 2
    else:
        raise EventStreamError(f"unknown event stream header type {kind}")
    end = pos + size
    if end > len(block):
        raise EventStreamError("event stream header value runs past the headers")
    raw = block[pos:end]
    return (str(raw, "utf-8") if kind == _STRING else bytes(raw)), end


def encode_message(headers: Mapping[str, HeaderValue], payload: bytes) -> bytes:
    """One framed message. str -> string, bytes -> bytes, bool -> bool, int -> int32 (int64
    when it does not fit 32 bits)."""
    block = b"".join([_encode_header(name, value) for name, value in headers.items()])
    total = _MIN_MESSAGE + len(block) + len(payload)
    if total > _MAX_TOTAL_LENGTH:
        raise ValueError("event stream message longer than 4 GiB")
    prelude = struct.pack(">II", total, len(block))
    head = prelude + _U32.pack(zlib.crc32(prelude))
    crc = zlib.crc32(payload, zlib.crc32(block, zlib.crc32(head)))
    return b"".join([head, block, payload, _U32.pack(crc)])


def encode_event(event_type: str, payload: bytes, content_type: str = "application/json") -> bytes:
    return encode_message(
        {":message-type": "event", ":event-type": event_type, ":content-type": content_type},
        payload,
    )


def encode_exception(exception_type: str, payload: bytes) -> bytes:
    """A modeled exception. botocore maps it only when ``exception_type`` is the lowerCamel
    union member name (``throttlingException``), not the shape name."""
    return encode_message(
        {
            ":message-type": "exception",
            ":exception-type": exception_type,
            ":content-type": "application/json",
        },
        payload,
    )


def _encode_header(name: str, value: HeaderValue) -> bytes:
    raw_name = name.encode("utf-8")
    if len(raw_name) > 0xFF:
        raise ValueError(f"event stream header name longer than 255 bytes: {name[:40]!r}")
    head = bytes([len(raw_name)]) + raw_name
    # bool before int: bool is a subclass of int.
    if isinstance(value, bool):
        return head + bytes([_BOOL_TRUE if value else _BOOL_FALSE])
    if isinstance(value, int):
        if value in _INT32_RANGE:
            return head + bytes([_INT32]) + _FIXED[_INT32].pack(value)
        if value in _INT64_RANGE:
            return head + bytes([_INT64]) + _FIXED[_INT64].pack(value)
        raise ValueError(f"event stream header {name!r}: integer out of 64-bit range")
    kind, raw = (_STRING, value.encode("utf-8")) if isinstance(value, str) else (_BYTES, value)
    if len(raw) > 0xFFFF:
        raise ValueError(f"event stream header {name!r}: value longer than 65535 bytes")
    return head + bytes([kind]) + _U16.pack(len(raw)) + raw
