"""SSEDecoder / encode_event: events must not depend on how the stream was sliced."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyroute.transport.sse import SSEDecoder, SSEError, SSEEvent, encode_event


def _openai_stream() -> bytes:
    """A realistic chat.completion.chunk stream, multi-byte UTF-8 included, as OpenAI sends it."""
    pieces = ["Hé", "llo", " wörld", " ✓", " 🚀", "!"]
    frames = [b": keep-alive\n\n"]
    for i, text in enumerate(pieces):
        chunk = {
            "id": "chatcmpl-9xYz",
            "object": "chat.completion.chunk",
            "created": 1718000000,
            "model": "gpt-4o-2024-08-06",
            "system_fingerprint": "fp_abc123",
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": text}
                    if i == 0
                    else {"content": text},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ],
        }
        frames.append(b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n")
    usage = {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 6}}
    frames.append(b"data: " + json.dumps(usage).encode() + b"\n\n")
    frames.append(b"data: [DONE]\n\n")
    return b"".join(frames)


OPENAI_STREAM = _openai_stream()


def _decode_in_pieces(stream: bytes, cuts: list[int], **kwargs: int) -> list[SSEEvent]:
    decoder = SSEDecoder(**kwargs)
    events: list[SSEEvent] = []
    start = 0
    for cut in [*sorted(cuts), len(stream)]:
        events += decoder.feed(stream[start:cut])
        start = cut
    return events


def test_openai_stream_decodes_to_its_data_frames() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(OPENAI_STREAM)
    assert len(events) == 8
    assert events[-1] == SSEEvent(data=b"[DONE]")
    first = json.loads(events[0].data)
    assert first["choices"][0]["delta"]["content"] == "Hé"
    text = "".join(json.loads(e.data)["choices"][0]["delta"]["content"] for e in events[:6])
    assert text == "Héllo wörld ✓ 🚀!"
    assert decoder.comments_seen == 1
    assert decoder.buffered_bytes == 0


def test_openai_stream_split_at_every_byte_boundary() -> None:
    whole = SSEDecoder().feed(OPENAI_STREAM)
    for cut in range(len(OPENAI_STREAM) + 1):
        assert _decode_in_pieces(OPENAI_STREAM, [cut]) == whole, cut


def test_openai_stream_fed_one_byte_at_a_time() -> None:
    assert _decode_in_pieces(OPENAI_STREAM, list(range(len(OPENAI_STREAM)))) == SSEDecoder().feed(
        OPENAI_STREAM
    )


def test_crlf_and_cr_line_endings() -> None:
    for eol in (b"\r\n", b"\r"):
        stream = b"event: delta" + eol + b"data: a" + eol + b"data: b" + eol + eol
        expected = [SSEEvent(event="delta", data=b"a\nb")]
        assert SSEDecoder().feed(stream) == expected
        for cut in range(len(stream) + 1):
            assert _decode_in_pieces(stream, [cut]) == expected


def test_cr_at_the_end_of_a_piece_pairs_with_lf_at_the_start_of_the_next() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    # Had the LF counted as its own line ending, this would be a blank line and dispatch "a".
    assert decoder.feed(b"\ndata: b\r") == []
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\n\r\n") == [SSEEvent(data=b"a\nb")]


def test_comments_are_counted_and_never_dispatched() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b": ping\n\n:\n\n: another\r\n\r\n") == []
    assert decoder.comments_seen == 3
    assert decoder.feed(b"data: x\n: inside an event\n\n") == [SSEEvent(data=b"x")]
    assert decoder.comments_seen == 4


def test_data_space_is_optional_and_only_one_is_removed() -> None:
    stream = b"data:x\n\ndata: x\n\ndata:  x\n\ndata\n\ndata:\n\n"
    assert [e.data for e in SSEDecoder().feed(stream)] == [b"x", b"x", b" x", b"", b""]


def test_multi_line_data_joins_with_newline() -> None:
    stream = b'data: {\ndata:   "a": 1\ndata: }\n\n'
    assert SSEDecoder().feed(stream) == [SSEEvent(data=b'{\n  "a": 1\n}')]


def test_event_and_id_fields_belong_to_their_block() -> None:
    stream = b"event: error\nid: 42\nretry: 10\nfoo: bar\ndata: boom\n\ndata: next\n\n"
    assert SSEDecoder().feed(stream) == [
        SSEEvent(event="error", id="42", data=b"boom"),
        SSEEvent(data=b"next"),
    ]


def test_block_without_data_dispatches_nothing_and_forgets_its_event_name() -> None:
    assert SSEDecoder().feed(b"event: lonely\n\ndata: x\n\n") == [SSEEvent(data=b"x")]


def test_id_with_nul_is_ignored() -> None:
    assert SSEDecoder().feed(b"id: a\0b\ndata: x\n\n") == [SSEEvent(data=b"x")]


def test_utf8_split_inside_a_character() -> None:
    payload = "data: 🚀é\n\n".encode()
    rocket_middle = payload.index(b"\xf0") + 2
    decoder = SSEDecoder()
    assert decoder.feed(payload[:rocket_middle]) == []
    [event] = decoder.feed(payload[rocket_middle:])
    assert event.data.decode() == "🚀é"


def test_byte_order_mark_is_stripped_even_when_split() -> None:
    stream = b"\xef\xbb\xbfdata: x\n\n"
    for cut in range(len(stream) + 1):
        assert _decode_in_pieces(stream, [cut]) == [SSEEvent(data=b"x")]
    assert SSEDecoder().feed(b"data: \xef\xbb\xbf\n\n") == [SSEEvent(data=b"\xef\xbb\xbf")]


def test_over_long_line_raises_with_bounded_memory() -> None:
    decoder = SSEDecoder(max_line_bytes=1024)
    piece = b"x" * 100
    with pytest.raises(SSEError, match="longer than 1024"):
        for _ in range(1000):  # would be 100 KB; must stop just past 1 KB
            decoder.feed(piece)
            assert decoder.buffered_bytes <= 1024
    assert decoder.buffered_bytes <= 1024 + len(piece)


def test_over_long_complete_line_raises_however_it_is_sliced() -> None:
    stream = b"data: " + b"y" * 2000 + b"\n\n"
    with pytest.raises(SSEError):
        SSEDecoder(max_line_bytes=1024).feed(stream)
    with pytest.raises(SSEError):
        _decode_in_pieces(stream, [500, 1000], max_line_bytes=1024)
    assert _decode_in_pieces(stream, [500, 1000], max_line_bytes=4096)[0].data == b"y" * 2000


def test_long_line_in_many_small_pieces_is_joined_once() -> None:
    line = b"data: " + b"q" * 900_000 + b"\n\n"
    decoder = SSEDecoder()
    events = []
    for start in range(0, len(line), 1024):  # ~880 pieces: quadratic copying would crawl
        events += decoder.feed(line[start : start + 1024])
    assert events == [SSEEvent(data=b"q" * 900_000)]
    assert decoder.buffered_bytes == 0


def test_event_with_too_much_data_raises() -> None:
    decoder = SSEDecoder(max_line_bytes=100, max_event_bytes=1000)
    with pytest.raises(SSEError, match="larger than 1000"):
        for _ in range(100):
            decoder.feed(b"data: " + b"z" * 50 + b"\n")
    assert decoder.buffered_bytes <= 1000


def test_encode_event_always_writes_the_space() -> None:
    assert encode_event(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert encode_event(b"x", event="ping") == b"event: ping\ndata: x\n\n"
    assert encode_event(b"") == b"data: \n\n"
    assert encode_event(b"a\nb\r\nc") == b"data: a\ndata: b\ndata: c\n\n"


@pytest.mark.parametrize("data", [b"", b" lead", b"a\nb", b"a\n", b"\n", b"x\r\ny", "é✓".encode()])
def test_encode_event_round_trips(data: bytes) -> None:
    [event] = SSEDecoder().feed(encode_event(data, event="e"))
    assert event == SSEEvent(event="e", data=data.replace(b"\r\n", b"\n"))


def test_encode_event_rejects_a_newline_in_the_event_name() -> None:
    with pytest.raises(ValueError):
        encode_event(b"x", event="a\nb")


# -- property: any slicing of any stream gives the events it was built from ---------------------

_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\0"), max_size=12)
_name = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=":"))
_event = st.tuples(
    st.none() | _name.filter(bool),
    st.lists(_text.map(str.encode), min_size=1, max_size=3),
    st.none() | _name,
    st.booleans(),  # put a comment line inside the block
)
_endings = st.lists(st.sampled_from([b"\n", b"\r", b"\r\n"]), min_size=1)


def _render(
    events: list[tuple[str | None, list[bytes], str | None, bool]], endings: list[bytes]
) -> tuple[bytes, list[SSEEvent]]:
    out: list[bytes] = []
    previous = b""
    count = 0

    def line(text: bytes) -> None:
        nonlocal previous, count
        eol = endings[count % len(endings)]
        count += 1
        if previous == b"\r" and eol == b"\n":
            eol = b"\r\n"  # CR then LF would read as one CRLF: an ambiguity of the format
        out.append(text + eol)
        previous = eol

    expected = []
    for name, data, event_id, comment in events:
        if name is not None:
            line(b"event: " + name.encode())
        for i, value in enumerate(data):
            spaced = i % 2 == 0 or value.startswith(b" ")
            line((b"data: " if spaced else b"data:") + value)
        if comment:
            line(b": ping")
        if event_id is not None:
            line(b"id:" + event_id.encode())
        line(b"")
        expected.append(SSEEvent(event=name, data=b"\n".join(data), id=event_id))
    return b"".join(out), expected


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.lists(_event, max_size=6),
    _endings,
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_any_slicing_yields_the_same_events(
    events: list[tuple[str | None, list[bytes], str | None, bool]],
    endings: list[bytes],
    cuts: list[int],
) -> None:
    stream, expected = _render(events, endings)
    cut_points = [c % (len(stream) + 1) for c in cuts]
    assert SSEDecoder().feed(stream) == expected
    assert _decode_in_pieces(stream, cut_points) == expected
