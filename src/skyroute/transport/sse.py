"""Incremental Server-Sent Events decoding and encoding (WHATWG HTML, "event stream").

The decoder takes body pieces exactly as the network delivers them, split anywhere: inside a
field name, between CR and LF, inside a multi-byte UTF-8 character. It works on whole lines
with ``bytes.find`` / ``split`` and never loops over bytes in Python, because upstream streams
usually deliver one small ``data: {...}\\n\\n`` event per read and this runs for every one.

Differences from the browser algorithm, on purpose: ``data`` stays bytes (the gateway parses or
relays it, and decoding would be wasted), and ``id`` is the id given inside this event block
(None if none) rather than the sticky last-event-id, which is what a relay needs.
"""

from __future__ import annotations

from typing import Final

import msgspec

__all__ = ["SSEDecoder", "SSEError", "SSEEvent", "encode_event"]

_BOM: Final = b"\xef\xbb\xbf"


class SSEError(ValueError):
    """The stream breaks a limit (a line or an event too long) or is not an event stream."""


class SSEEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One dispatched event. ``data`` joins the event's data lines with b"\\n"."""

    event: str | None = None
    data: bytes
    id: str | None = None


class SSEDecoder:
    """Turns body pieces into events; keeps at most one partial line and one partial event.

    ``comments_seen`` counts ``:`` comment lines, which upstreams send as keep-alive pings.
    """

    __slots__ = (
        "_data",
        "_data_bytes",
        "_event",
        "_held",
        "_held_bytes",
        "_id",
        "_max_event",
        "_max_line",
        "_skip_lf",
        "_started",
        "comments_seen",
    )

    def __init__(self, *, max_line_bytes: int = 1 << 20, max_event_bytes: int = 16 << 20) -> None:
        self._max_line = max_line_bytes
        self._max_event = max_event_bytes
        self._held: list[bytes] = []  # bytes after the last line ending seen, in pieces
        self._held_bytes = 0
        self._skip_lf = False  # the last piece ended in CR: an LF starting the next one pairs it
        self._started = False  # past the optional byte-order mark at the very start
        self._data: list[bytes] = []
        self._data_bytes = 0
        self._event: str | None = None
        self._id: str | None = None
        self.comments_seen = 0

    @property
    def buffered_bytes(self) -> int:
        """Bytes held for the unfinished line and event (bounded by the two limits)."""
        return self._held_bytes + self._data_bytes

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Decode one more piece of the stream; returns the events it completed, in order."""
        if not data:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        if self._started and b"\n" not in data and b"\r" not in data:
            return self._hold(data)
        held = self._held
        buf = b"".join([*held, data]) if held else data
        if not self._started:
            if len(buf) < 3 and _BOM.startswith(buf):
                self._held = [buf]  # could still be a BOM: decide when more bytes come
                self._held_bytes = len(buf)
                return []
            self._started = True
            if buf.startswith(_BOM):
                buf = buf[3:]
        if b"\r" in buf:
            lines, tail = self._split_mixed(buf)
        else:
            lines = buf.split(b"\n")  # the fast path: LF-only streams, as nearly all are
            tail = lines.pop()
        self._held = [tail] if tail else []
        self._held_bytes = len(tail)
        # Only a buffer past the limit can hold a line past it, so the usual small piece skips
        # the scan. Complete lines are checked too, so how the stream was sliced never changes
        # the outcome.
        if len(buf) > self._max_line and self._has_long_line(lines):
            raise SSEError(f"SSE line longer than {self._max_line} bytes")
        return self._process(lines) if lines else []

    def _hold(self, data: bytes) -> list[SSEEvent]:
        """Keep a piece with no line ending. A long line arriving in many pieces is then joined
        once, not copied and rescanned with every piece."""
        self._held_bytes += len(data)
        if self._held_bytes > self._max_line:
            raise SSEError(f"SSE line longer than {self._max_line} bytes")
        self._held.append(data)
        return []

    def _has_long_line(self, lines: list[bytes]) -> bool:
        limit = self._max_line
        return self._held_bytes > limit or any(len(line) > limit for line in lines)

    def _split_mixed(self, buf: bytes) -> tuple[list[bytes], bytes]:
        """Split on CRLF, CR or LF: (complete lines, unterminated tail)."""
        lines = buf.splitlines(keepends=True)  # bytes.splitlines knows only \r, \n and \r\n
        tail = b""
        if lines[-1].endswith(b"\r"):
            # Maybe the first half of CRLF: end the line now (no waiting for the next read),
            # and drop an LF that starts the next piece.
            self._skip_lf = True
        elif not lines[-1].endswith(b"\n"):
            tail = lines.pop()
        return [line.rstrip(b"\r\n") for line in lines], tail

    def _process(self, lines: list[bytes]) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(self._dispatch())
                else:  # a block with no data line dispatches nothing (per the standard)
                    self._event = self._id = None
            elif line.startswith(b"data:"):
                self._add_data(line[6:] if line[5:6] == b" " else line[5:])
            elif line[0] == 0x3A:  # b":"
                self.comments_seen += 1
            else:
                self._field(line)
        return events

    def _add_data(self, value: bytes) -> None:
        size = self._data_bytes + len(value) + 1
        if size > self._max_event:
            raise SSEError(f"SSE event larger than {self._max_event} bytes")
        self._data_bytes = size
        self._data.append(value)

    def _field(self, line: bytes) -> None:
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\0" not in value:  # the standard ignores ids containing NUL
                self._id = value.decode("utf-8", "replace")
        elif name == b"data":  # "data" without a colon: an empty data line
            self._add_data(value)
        # "retry" and unknown fields are ignored, as the standard says.

    def _dispatch(self) -> SSEEvent:
        data = self._data
        event = SSEEvent(
            event=self._event,
            data=data[0] if len(data) == 1 else b"\n".join(data),
            id=self._id,
        )
        self._data = []
        self._data_bytes = 0
        self._event = self._id = None
        return event


def encode_event(data: bytes, event: str | None = None) -> bytes:
    """One event frame, ``event: x`` first when given; each line of data is its own
    ``data: `` line (always with the space), so the decoder gives `data` back."""
    if event is not None and ("\n" in event or "\r" in event):
        raise ValueError("SSE event name contains CR or LF")
    head = b"" if event is None else b"event: " + event.encode() + b"\n"
    if b"\n" not in data and b"\r" not in data:
        return head + b"data: " + data + b"\n\n"
    lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return head + b"".join([b"data: " + line + b"\n" for line in lines]) + b"\n"
