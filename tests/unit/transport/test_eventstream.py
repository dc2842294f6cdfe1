"""AWS event-stream codec: botocore's decoder as the oracle; slicing must never change a result."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import EventStreamError as BotocoreEventStreamError
from hypothesis import given, settings
from hypothesis import strategies as st

from skyroute.transport.eventstream import (
    EventStreamDecoder,
    EventStreamError,
    EventStreamMessage,
    HeaderValue,
    encode_event,
    encode_exception,
    encode_message,
)


def _frame(header_block: bytes, payload: bytes) -> bytes:
    """A message around raw header bytes, for types our encoder never writes and for bad
    headers; the CRCs are right, so only the headers can be at fault."""
    prelude = struct.pack(">II", 16 + len(header_block) + len(payload), len(header_block))
    head = prelude + struct.pack(">I", zlib.crc32(prelude))
    body = head + header_block + payload
    return body + struct.pack(">I", zlib.crc32(body))


def _header(name: str, kind: int, value: bytes) -> bytes:
    raw = name.encode()
    return bytes([len(raw)]) + raw + bytes([kind]) + value


def _botocore_decode(stream: bytes) -> list[tuple[dict[str, Any], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(stream)
    return [(message.headers, message.payload) for message in buffer]


def _ours(messages: list[EventStreamMessage]) -> list[tuple[dict[str, Any], bytes]]:
    return [(message.headers, message.payload) for message in messages]


def _decode_in_pieces(stream: bytes, cuts: list[int], **kwargs: int) -> list[EventStreamMessage]:
    decoder = EventStreamDecoder(**kwargs)
    messages: list[EventStreamMessage] = []
    start = 0
    for cut in [*sorted(cuts), len(stream)]:
        messages += decoder.feed(stream[start:cut])
        start = cut
    decoder.finish()
    return messages


def _converse_stream() -> bytes:
    """A realistic Bedrock ConverseStream body, padding key "p" included as AWS sends it."""
    events: list[tuple[str, dict[str, Any]]] = [
        ("messageStart", {"role": "assistant", "p": "abcdefgh"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hé"}, "p": "ab"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "llo 🚀"}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("messageStop", {"stopReason": "end_turn"}),
        (
            "metadata",
            {
                "usage": {"inputTokens": 9, "outputTokens": 3, "totalTokens": 12},
                "metrics": {"latencyMs": 210},
            },
        ),
    ]
    return b"".join(
        encode_event(name, json.dumps(body, ensure_ascii=False).encode()) for name, body in events
    )


CONVERSE_STREAM = _converse_stream()


# --------------------------------------------------------------------------------------------
# Round trips and botocore agreement


def test_round_trip_keeps_every_header_type_the_encoder_writes() -> None:
    headers: dict[str, HeaderValue] = {
        "s": "text ✓",
        "b": b"\x00\xffraw",
        "t": True,
        "f": False,
        "i": -(2**31),
        "big": 2**40,
        "": "empty name",
    }
    frame = encode_message(headers, b"payload \x00 bytes")
    [message] = EventStreamDecoder().feed(frame)
    assert message == EventStreamMessage(headers, b"payload \x00 bytes")
    assert _botocore_decode(frame) == [(headers, b"payload \x00 bytes")]


def test_integers_are_int32_unless_they_need_64_bits() -> None:
    assert encode_message({"n": 7}, b"")[12:19] == b"\x01n\x04\x00\x00\x00\x07"
    assert encode_message({"n": 2**31}, b"")[12:23] == b"\x01n\x05" + struct.pack(">q", 2**31)
    assert encode_message({"n": True}, b"")[12:15] == b"\x01n\x00"
    assert encode_message({"n": False}, b"")[12:15] == b"\x01n\x01"


def test_every_wire_type_decodes_like_botocore() -> None:
    block = b"".join(
        [
            _header("true", 0, b""),
            _header("false", 1, b""),
            _header("byte", 2, struct.pack(">b", -5)),
            _header("short", 3, struct.pack(">h", -300)),
            _header("int", 4, struct.pack(">i", 70000)),
            _header("long", 5, struct.pack(">q", -(2**40))),
            _header("bytes", 6, struct.pack(">H", 3) + b"\x01\x02\x03"),
            _header("string", 7, struct.pack(">H", 5) + b"hello"),
            _header("timestamp", 8, struct.pack(">q", 1_700_000_000_123)),
            _header("uuid", 9, bytes(range(16))),
        ]
    )
    frame = _frame(block, b"{}")
    [message] = EventStreamDecoder().feed(frame)
    assert _ours([message]) == _botocore_decode(frame)
    assert message.headers["timestamp"] == 1_700_000_000_123
    assert message.headers["uuid"] == bytes(range(16))


_header_names = st.text(min_size=0, max_size=20).filter(lambda s: len(s.encode()) <= 255)
_header_values: st.SearchStrategy[HeaderValue] = st.one_of(
    st.text(max_size=50),
    st.binary(max_size=50),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
)
_messages = st.tuples(
    st.dictionaries(_header_names, _header_values, max_size=6), st.binary(max_size=300)
)


@settings(max_examples=300, deadline=None)
@given(message=_messages)
def test_botocore_decodes_what_we_encode(message: tuple[dict[str, HeaderValue], bytes]) -> None:
    headers, payload = message
    frame = encode_message(headers, payload)
    assert _botocore_decode(frame) == [(headers, payload)]
    assert _ours(EventStreamDecoder().feed(frame)) == [(headers, payload)]


@settings(max_examples=200, deadline=None)
@given(
    messages=st.lists(_messages, min_size=1, max_size=6),
    data=st.data(),
)
def test_random_slicing_never_changes_the_messages(
    messages: list[tuple[dict[str, HeaderValue], bytes]], data: st.DataObject
) -> None:
    stream = b"".join(encode_message(headers, payload) for headers, payload in messages)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20))
    assert _ours(_decode_in_pieces(stream, cuts)) == messages == _botocore_decode(stream)


def test_every_byte_boundary_split_of_a_three_message_stream() -> None:
    stream = (
        encode_event("contentBlockDelta", b'{"contentBlockIndex":0,"delta":{"text":"Hi"}}')
        + encode_exception("throttlingException", b'{"message":"Too many requests"}')
        + encode_message({":message-type": "event", "n": 5}, b"")
    )
    expected = _ours(EventStreamDecoder().feed(stream))
    assert len(expected) == 3
    for cut in range(len(stream) + 1):
        assert _ours(_decode_in_pieces(stream, [cut])) == expected, cut
    one_at_a_time = _decode_in_pieces(stream, list(range(1, len(stream))))
    assert _ours(one_at_a_time) == expected


def test_converse_stream_fixture_decodes_in_order() -> None:
    messages = EventStreamDecoder().feed(CONVERSE_STREAM)
    assert [m.event_type for m in messages] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    assert {m.message_type for m in messages} == {"event"}
    assert {m.content_type for m in messages} == {"application/json"}
    assert json.loads(messages[2].payload)["delta"]["text"] == "llo 🚀"


def test_exception_frame_properties() -> None:
    [message] = EventStreamDecoder().feed(encode_exception("throttlingException", b"{}"))
    assert message.message_type == "exception"
    assert message.exception_type == "throttlingException"
    assert message.event_type is None
    assert message.content_type == "application/json"


def test_a_header_of_another_type_is_not_read_as_text() -> None:
    [message] = EventStreamDecoder().feed(encode_message({":event-type": b"raw"}, b""))
    assert message.event_type is None


# --------------------------------------------------------------------------------------------
# boto3 itself parses our encoder's output (the emulator depends on this)


class _CannedStream:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: object) -> Iterator[bytes]:
        # Awkward chunks, as a network would deliver them.
        for start in range(0, len(self._data), 7):
            yield self._data[start : start + 7]


def _boto3_converse_stream(body: bytes) -> list[dict[str, Any]]:
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )

    def answer(request: Any, **_: object) -> AWSResponse:
        headers = {"content-type": "application/vnd.amazon.eventstream"}
        return AWSResponse(request.url, 200, headers, _CannedStream(body))

    client.meta.events.register("before-send.bedrock-runtime.ConverseStream", answer)
    response = client.converse_stream(
        modelId="anthropic.claude-3-haiku-20240307-v1:0",
        messages=[{"role": "user", "content": [{"text": "hi"}]}],
    )
    return list(response["stream"])


def test_boto3_converse_stream_reads_our_frames() -> None:
    events = _boto3_converse_stream(CONVERSE_STREAM)
    assert [next(iter(event)) for event in events] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    assert events[1]["contentBlockDelta"]["delta"] == {"text": "Hé"}
    assert events[5]["metadata"]["usage"]["totalTokens"] == 12


def test_boto3_maps_our_exception_frame_by_its_lower_camel_name() -> None:
    body = encode_event("messageStart", b'{"role":"assistant"}') + encode_exception(
        "throttlingException", b'{"message":"Too many requests, please wait."}'
    )
    with pytest.raises(BotocoreEventStreamError) as caught:
        _boto3_converse_stream(body)
    assert caught.value.response["Error"]["Code"] == "throttlingException"


# --------------------------------------------------------------------------------------------
# Corruption and bounds

GOOD = encode_event("contentBlockDelta", b'{"contentBlockIndex":0,"delta":{"text":"x"}}')


def _flip(frame: bytes, index: int) -> bytes:
    return frame[:index] + bytes([frame[index] ^ 0x01]) + frame[index + 1 :]


def _with_prelude(total: int, headers_length: int) -> bytes:
    prelude = struct.pack(">II", total, headers_length)
    return prelude + struct.pack(">I", zlib.crc32(prelude))


@pytest.mark.parametrize(
    ("stream", "error"),
    [
        (_flip(GOOD, 9), "prelude CRC"),  # the prelude CRC itself
        (_flip(GOOD, 2), "prelude CRC"),  # a length the CRC covers
        (_flip(GOOD, len(GOOD) - 10), "message CRC"),  # the payload
        (_flip(GOOD, 20), "message CRC"),  # the headers
        (_flip(GOOD, len(GOOD) - 1), "message CRC"),  # the message CRC itself
        (_with_prelude(15, 0), "below 16"),
        (_with_prelude(0, 0), "below 16"),
        (_with_prelude(40, 30), "headers are longer"),
        (_with_prelude(2**32 - 1, 0), "exceeds"),
    ],
)
def test_corrupt_frames_raise(stream: bytes, error: str) -> None:
    decoder = EventStreamDecoder()
    with pytest.raises(EventStreamError, match=error):
        decoder.feed(GOOD + stream)
    with pytest.raises(EventStreamError, match="already failed"):
        decoder.feed(GOOD)
    assert decoder.buffered_bytes == 0


@pytest.mark.parametrize(
    "block",
    [
        _header("t", 10, b""),  # no such type
        _header("s", 7, struct.pack(">H", 10) + b"short"),  # value runs past the block
        _header("s", 7, struct.pack(">H", 2) + b"\xff\xfe"),  # not UTF-8
        _header("i", 4, b"\x00\x00"),  # a truncated int32
        _header("u", 9, b"\x00" * 15),  # a truncated uuid
        b"\x05ab",  # the name runs past the block
        b"\x01a",  # a name with no type
        _header("d", 0, b"") + _header("d", 1, b""),  # duplicate
        b"\x02\xff\xfe\x00",  # a name that is not UTF-8
    ],
)
def test_malformed_headers_raise(block: bytes) -> None:
    with pytest.raises(EventStreamError):
        EventStreamDecoder().feed(_frame(block, b"{}"))


def test_oversize_message_fails_on_its_prelude_before_the_body_is_buffered() -> None:
    big = encode_message({}, b"x" * 1000)
    decoder = EventStreamDecoder(max_message_bytes=1015)
    with pytest.raises(EventStreamError, match="exceeds 1015"):
        decoder.feed(big[:12])
    assert EventStreamDecoder(max_message_bytes=1016).feed(big)[0].payload == b"x" * 1000


def test_buffered_bytes_stay_below_the_limit_however_the_stream_arrives() -> None:
    limit = 4096
    stream = b"".join(encode_message({"i": i}, bytes(i * 37 % 4000)) for i in range(60))
    for step in (1, 5, 12, 13, 333, 4095, 10_000):
        decoder = EventStreamDecoder(max_message_bytes=limit)
        count = 0
        for start in range(0, len(stream), step):
            count += len(decoder.feed(stream[start : start + step]))
            assert decoder.buffered_bytes < limit
        decoder.finish()
        assert count == 60


def test_finish_reports_a_stream_cut_inside_a_message() -> None:
    decoder = EventStreamDecoder()
    assert decoder.feed(GOOD + GOOD[:5]) != []
    with pytest.raises(EventStreamError, match="ended inside a message"):
        decoder.finish()


def test_encoder_refuses_what_the_format_cannot_hold() -> None:
    with pytest.raises(ValueError, match="name"):
        encode_message({"n" * 256: "x"}, b"")
    with pytest.raises(ValueError, match="65535"):
        encode_message({"s": "x" * 65536}, b"")
    with pytest.raises(ValueError, match="64-bit"):
        encode_message({"i": 2**63}, b"")


def test_decoder_accepts_bytearray_and_memoryview_pieces() -> None:
    decoder = EventStreamDecoder()
    piece = bytearray(GOOD + GOOD[:20])
    assert len(decoder.feed(piece)) == 1
    piece.clear()  # the decoder kept no view of the caller's buffer
    assert len(decoder.feed(memoryview(GOOD[20:]))) == 1
