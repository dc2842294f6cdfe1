"""What every golden module shares: cases, expected files, errors and stream replays.

A protocol pair's module (``test_<client>_<provider>.py``) says only how its case runs:
which inputs it reads, which translation it calls, how its stream is framed. This module
does the rest:

- ``GoldenSuite`` finds the case folders and compares what a case produced with the
  expected files, or rewrites them (and deletes the ones no longer produced) when
  ``SKYROUTE_REGENERATE_GOLDEN=1``;
- ``to_json`` / ``to_jsonl`` / ``struct_json`` write expected files, ``parsed`` reads
  them back for comparison, so formatting never fails a case;
- ``request_outputs`` runs the request half of a case, and ``error_fields`` /
  ``error_with_retry_policy`` record the ``GatewayError`` a case may end with as
  ``expected_error.json``;
- ``Relay`` collects the canonical events and client output of a stream, and
  ``assert_every_split_replays`` / ``pieces_at`` with ``RANDOM_CUTS`` and
  ``RANDOM_REPLAYS`` cut the upstream bytes at every byte and at Hypothesis-chosen points;
- the ``openai_*`` helpers are the OpenAI-client half that three pairs share.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import msgspec
import pytest
from hypothesis import settings
from hypothesis import strategies as st

from skyroute.core.chat import ChatRequest, ChatResponse, StreamEvent
from skyroute.core.errors import GatewayError
from skyroute.wire.openai_chat import response_to_openai, to_canonical

REGENERATE = os.environ.get("SKYROUTE_REGENERATE_GOLDEN") == "1"
"""Rewrite the expected files instead of comparing them."""

CLIENT_REQUEST = "client_request.json"
"""The one input every case has; a folder without it is not a case."""

T = TypeVar("T")


def case_id(case: Path) -> str:
    """A case's test id: its folder name."""
    return case.name


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


# --- cases and their expected files ---------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class GoldenSuite:
    """The cases of one protocol pair, in ``folder``, one sub-folder per case.

    ``produced`` names every file the translation may write; a case folder holding one of
    them that its run no longer produces is stale. ``stream_input`` names the upstream
    stream file that marks a stream case.
    """

    folder: Path
    produced: frozenset[str]
    stream_input: str

    def cases(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if (p / CLIENT_REQUEST).is_file())

    def stream_cases(self) -> list[Path]:
        return [p for p in self.cases() if (p / self.stream_input).is_file()]

    def check(self, case: Path, produced: dict[str, str]) -> None:
        """Compare ``produced`` (file name → text) with the case's expected files, or
        rewrite them when regenerating."""
        stale = {p.name for p in case.iterdir()} & (self.produced - produced.keys())
        if REGENERATE:
            for name, text in produced.items():
                (case / name).write_text(text)
            for name in stale:
                (case / name).unlink()
            return
        assert not stale, f"expected files the translation no longer produces: {sorted(stale)}"
        for name, text in produced.items():
            path = case / name
            assert path.is_file(), (
                f"{case.name}/{name} is missing; run with SKYROUTE_REGENERATE_GOLDEN=1"
            )
            assert parsed(name, text) == parsed(name, path.read_text()), f"{case.name}/{name}"


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def to_jsonl(values: Iterable[Any]) -> str:
    return "".join(json.dumps(v, ensure_ascii=False) + "\n" for v in values)


def struct_json(value: msgspec.Struct) -> str:
    """A canonical Struct as an expected ``.json`` file."""
    return to_json(msgspec.to_builtins(value))


def parsed(name: str, text: str) -> Any:
    """An expected file's content, by its ending: JSON lines, plain text, or JSON."""
    if name.endswith(".jsonl"):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if name.endswith(".txt"):
        return text
    return json.loads(text)


# --- expected errors ------------------------------------------------------------------


def error_fields(exc: GatewayError) -> dict[str, Any]:
    """What a client sees of an error: its class, status and OpenAI-style fields."""
    return {
        "class": type(exc).__name__,
        "status": exc.status,
        "type": exc.error_type,
        "code": exc.code,
        "param": exc.param,
        "message": exc.message,
    }


def error_with_retry_policy(exc: GatewayError) -> dict[str, Any]:
    """``error_fields`` and what the router does next: retry, fail over, wait."""
    return {
        **error_fields(exc),
        "retry_same": exc.retry_same,
        "try_another": exc.try_another,
        "retry_after": exc.retry_after,
    }


def request_outputs(
    parse: Callable[[], ChatRequest],
    to_upstream: Callable[[ChatRequest], bytes],
    error_record: Callable[[GatewayError], dict[str, Any]],
) -> tuple[dict[str, str], ChatRequest | None]:
    """The request half of a case: ``canonical.json`` and ``upstream_request.json``, or
    ``expected_error.json`` for the error that refused it, with no canonical request."""
    out: dict[str, str] = {}
    try:
        canonical = parse()
        out["canonical.json"] = struct_json(canonical)
        upstream = to_upstream(canonical)
    except GatewayError as exc:
        out["expected_error.json"] = to_json(error_record(exc))
        return out, None
    out["upstream_request.json"] = to_json(json.loads(upstream))
    return out, canonical


# --- streams --------------------------------------------------------------------------


class StreamRun(NamedTuple):
    """A stream as the gateway ran it: canonical events, client output, and the error it
    ended with (``None`` when it ended cleanly)."""

    events: list[StreamEvent]
    chunks: list[bytes]
    error: GatewayError | None


@dataclass
class Relay:
    """Passes canonical events to the client writer, keeping both sides."""

    write: Callable[[StreamEvent], Iterable[bytes]]
    events: list[StreamEvent] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)

    def send(self, events: Iterable[StreamEvent]) -> None:
        for event in events:
            self.events.append(event)
            self.chunks.extend(self.write(event))

    def emit(self, chunks: Iterable[bytes]) -> None:
        """Client output that no event stands for (a stream's opening or closing frames)."""
        self.chunks.extend(chunks)

    def result(self, error: GatewayError | None = None) -> StreamRun:
        return StreamRun(self.events, self.chunks, error)


def every_split(data: bytes) -> Iterator[tuple[str, list[bytes]]]:
    """``data`` whole, one byte at a time, and cut in two at every byte."""
    yield "whole", [data]
    yield "one byte at a time", [data[i : i + 1] for i in range(len(data))]
    for cut in range(len(data) + 1):
        yield f"split at byte {cut}", [data[:cut], data[cut:]]


def assert_every_split_replays(
    data: bytes, replay: Callable[[list[bytes]], T], expected: T
) -> None:
    """``replay`` of every ``every_split`` of ``data`` gives ``expected``."""
    for label, pieces in every_split(data):
        assert replay(pieces) == expected, label


RANDOM_CUTS = st.lists(st.floats(min_value=0, max_value=1), max_size=12)
"""Cut points as fractions of the stream's length, for ``pieces_at``."""

RANDOM_REPLAYS = settings(max_examples=50, deadline=None)
"""Hypothesis settings of a random-points replay; no deadline, as a long stream's replay
may outlast the default one on a busy machine."""


def pieces_at(data: bytes, cuts: list[float]) -> list[bytes]:
    """``data`` cut at the given fractions of its length."""
    points = sorted({int(c * len(data)) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# --- the OpenAI client side, shared by the openai__* pairs ----------------------------

OPENAI_CLIENT_PRODUCED = frozenset(
    {
        "canonical.json",
        "upstream_request.json",
        "canonical_response.json",
        "client_response.json",
        "canonical_stream.jsonl",
        "client_stream.jsonl",
        "expected_error.json",
    }
)
"""Every file an ``openai__*`` case may produce."""


class OpenAIStreamRequest(NamedTuple):
    """What a stream replay needs from the client request."""

    model: str
    include_usage: bool


def openai_stream_request(case: Path) -> OpenAIStreamRequest:
    request = read_json(case / CLIENT_REQUEST)
    return OpenAIStreamRequest(request["model"], to_canonical(request).include_usage)


def openai_request_outputs(
    request: dict[str, Any], to_upstream: Callable[[ChatRequest], bytes]
) -> tuple[dict[str, str], ChatRequest | None]:
    """``request_outputs`` for an OpenAI chat body."""
    return request_outputs(lambda: to_canonical(request), to_upstream, error_with_retry_policy)


def openai_response_outputs(response: ChatResponse) -> dict[str, str]:
    """The expected files of a non-stream answer."""
    return {
        "canonical_response.json": struct_json(response),
        "client_response.json": to_json(json.loads(response_to_openai(response))),
    }


def openai_error_output(exc: GatewayError) -> dict[str, str]:
    """The expected file of an error an OpenAI client receives."""
    return {"expected_error.json": to_json(error_with_retry_policy(exc))}


def openai_stream_outputs(run: StreamRun) -> dict[str, str]:
    """The expected files of a stream: events, chunks, and the error it may end with."""
    out = {
        "canonical_stream.jsonl": to_jsonl(msgspec.to_builtins(e) for e in run.events),
        "client_stream.jsonl": to_jsonl(json.loads(c) for c in run.chunks),
    }
    if run.error is not None:
        out |= openai_error_output(run.error)
    return out


def client_view(run: StreamRun) -> tuple[list[bytes], str | None]:
    """What a replay compares: the client chunks and the error, by its repr."""
    return run.chunks, None if run.error is None else repr(run.error)


def validate_openai_client_output(case: Path) -> list[Any]:
    """Parse the case's client files with the openai SDK's types; the stream's
    ``ChatCompletionChunk``s are returned for further checks."""
    types = pytest.importorskip("openai.types.chat")
    if (case / "client_response.json").is_file():
        types.ChatCompletion.model_validate(read_json(case / "client_response.json"))
    if not (case / "client_stream.jsonl").is_file():
        return []
    lines = (case / "client_stream.jsonl").read_text().splitlines()
    return [types.ChatCompletionChunk.model_validate(json.loads(line)) for line in lines]
