"""The outbox's files: naming and opening segments, crash recovery, reading rows back.

Blocking file I/O, no asyncio. ``Outbox`` calls ``recover`` when it opens a directory and
the segment helpers when it rotates or persists its checkpoint; ``OutboxWriter`` calls
``read_batch`` in a worker thread. A line that does not decode is quarantined here,
whether recovery or a batch meets it. The file layout and the recovery rules are
described in ``outbox.py``; logs go to its logger, ``skyroute.outbox``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import NamedTuple

import msgspec

from skyroute.store.ledger import UsageRow

logger = logging.getLogger("skyroute.outbox")

_DECODER = msgspec.json.Decoder(UsageRow)
_SEGMENT_PREFIX = "segment-"
_SEGMENT_SUFFIX = ".jsonl"


class Position(NamedTuple):
    """A byte in the outbox: segment number and offset inside that segment."""

    segment: int
    offset: int


class _Batch(NamedTuple):
    rows: list[UsageRow]
    end: Position  # the first byte after the batch
    consumed: int  # rows read, including lines quarantined while reading


class _RequestId(msgspec.Struct):
    """Just enough of a corrupt line to name it in a log."""

    request_id: str | None = None


def segment_path(directory: Path, number: int) -> Path:
    return directory / f"{_SEGMENT_PREFIX}{number:06d}{_SEGMENT_SUFFIX}"


def segment_numbers(directory: Path) -> list[int]:
    numbers = []
    for path in directory.glob(f"{_SEGMENT_PREFIX}*{_SEGMENT_SUFFIX}"):
        digits = path.name[len(_SEGMENT_PREFIX) : -len(_SEGMENT_SUFFIX)]
        if digits.isdigit():
            numbers.append(int(digits))
    return sorted(numbers)


def open_segment(directory: Path, number: int) -> int:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
    return os.open(segment_path(directory, number), flags, 0o600)


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_checkpoint(directory: Path, first_segment: int) -> Position:
    try:
        text = (directory / "checkpoint").read_text(encoding="ascii")
    except FileNotFoundError:
        return Position(first_segment, 0)
    try:
        segment, offset = (int(part) for part in text.split())
        return Position(segment, offset)
    except ValueError:
        # An OS crash may leave it empty; shipping everything again is safe (duplicates).
        logger.warning("outbox %s: unreadable checkpoint, replaying all segments", directory)
        return Position(first_segment, 0)


def recover(directory: Path, *, fsync: bool) -> tuple[Position, int]:
    """Repair the segments after a crash; the checkpoint and the count of pending rows."""
    segments = segment_numbers(directory)
    cursor = _read_checkpoint(directory, segments[0] if segments else 1)
    for number in segments:
        if number < cursor.segment:  # shipped, but the deletion did not happen
            segment_path(directory, number).unlink(missing_ok=True)
    found = 0
    live = [number for number in segments if number >= cursor.segment]
    for number in live:
        start = cursor.offset if number == cursor.segment else 0
        found += _recover_segment(directory, number, start, newest=number == live[-1], fsync=fsync)
    if live and cursor.segment == live[0]:
        size = segment_path(directory, live[0]).stat().st_size
        cursor = Position(cursor.segment, min(cursor.offset, size))
    else:  # its segment is gone: start at the next one, or a fresh one
        cursor = Position(live[0] if live else max(cursor.segment, 1), 0)
    if found:
        logger.info("outbox %s: %d rows from a previous run are pending", directory, found)
    return cursor, found


def _recover_segment(directory: Path, number: int, start: int, *, newest: bool, fsync: bool) -> int:
    path = segment_path(directory, number)
    with open(path, "r+b") as file:
        data = file.read()
        complete = data.rfind(b"\n") + 1
        if complete < len(data):
            if not newest:  # only an OS crash leaves this; keep the bytes for a person
                _quarantine(directory, data[complete:], number, complete, "no final newline")
            logger.warning(
                "outbox %s: cut %d bytes of a torn write from %s",
                directory,
                len(data) - complete,
                path.name,
            )
            file.truncate(complete)
            if fsync:
                os.fsync(file.fileno())
    found = 0
    offset = start
    while offset < complete:
        stop = data.index(b"\n", offset)
        line = data[offset:stop]
        if line.strip() and _decode(directory, line, number, offset) is not None:
            found += 1
        offset = stop + 1
    return found


def _decode(directory: Path, line: bytes, segment: int, offset: int) -> UsageRow | None:
    """The row on ``line``, or None when it is corrupt (then it is quarantined)."""
    try:
        return _DECODER.decode(line)
    except msgspec.DecodeError as exc:
        _quarantine(directory, line, segment, offset, str(exc))
        return None


def _quarantine(directory: Path, line: bytes, segment: int, offset: int, reason: str) -> None:
    """Copy ``line`` to corrupt.jsonl, then blank it in place so it is met only once."""
    try:
        request_id = msgspec.json.decode(line, type=_RequestId).request_id
    except msgspec.DecodeError:
        request_id = None
    with open(directory / "corrupt.jsonl", "ab") as corrupt:
        corrupt.write(line + b"\n")
        corrupt.flush()
        os.fsync(corrupt.fileno())
    with open(segment_path(directory, segment), "r+b") as file:
        file.seek(offset)
        file.write(b" " * len(line))
    logger.warning(
        "outbox %s: moved an undecodable row (request_id %s) at %s byte %d to corrupt.jsonl: %s",
        directory,
        request_id,
        segment_path(directory, segment).name,
        offset,
        reason,
    )


def read_batch(directory: Path, start: Position, end: Position, limit: int) -> _Batch:
    """Up to ``limit`` rows from ``start``, never past ``end`` (blocking: run in a thread).

    Before ``end`` every line is whole: recovery trimmed the older segments and ``end``
    was taken after the last write returned.
    """
    rows: list[UsageRow] = []
    consumed = 0
    segment, offset = start
    while len(rows) < limit and Position(segment, offset) < end:
        stop = end.offset if segment == end.segment else None
        with (
            contextlib.suppress(FileNotFoundError),
            open(segment_path(directory, segment), "rb") as file,
        ):
            file.seek(offset)
            while len(rows) < limit and (stop is None or offset < stop):
                line = file.readline()
                if not line.endswith(b"\n"):
                    break
                line_offset, offset = offset, offset + len(line)
                if not line.strip():  # a quarantined line
                    continue
                consumed += 1
                row = _decode(directory, line[:-1], segment, line_offset)
                if row is not None:
                    rows.append(row)
        if len(rows) >= limit or segment == end.segment:
            break
        segment, offset = segment + 1, 0
    return _Batch(rows, Position(segment, offset), consumed)
