"""Prompt-caching accounts for the Anthropic emulator: which input tokens were written, read.

A block that carries `cache_control` (a tool, a system block, a message's content block) is a
breakpoint: it ends a cacheable prefix. A top-level `cache_control` makes the last block one.
Prefixes run in the order the API caches: tools, then system, then messages. A prefix is
named by a digest of the model and of its blocks, `cache_control` markers left out (a marker
that moves does not change what came before it), string content read as one text block.

For one request, the longest prefix seen before is read (`cache_read_input_tokens`). As on the
real API, a hit is looked for at every block boundary up to 20 blocks before each breakpoint,
so a conversation cached at its end on one turn is read on the next, whose breakpoint has
moved on. The tokens from there to the last breakpoint are written
(`cache_creation_input_tokens`, split by each breakpoint's `ttl`); the rest is `input_tokens`.
The three add up to the request's whole input (protocols.md §6). Only breakpoints are
remembered.

Tokens are those of `answers.prompt_tokens` over the chat messages `read_invoke` makes of the
turns (words, plus 4 a message; tools count nothing), counted here prefix by prefix. Unlike
the real API there is no minimum cacheable length and no expiry: the cache forgets only the
least recently used prefixes beyond its bound, or everything on `clear`.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Final, NamedTuple

import msgspec

from skyroute.emulators.anthropic_wire import (
    Block,
    CacheControl,
    CacheCreation,
    FullUsage,
    ToolDef,
    Turn,
)

__all__ = ["Boundary", "PromptCache", "boundaries", "prompt_total"]

_ENCODER: Final = msgspec.json.Encoder()
_PER_MESSAGE: Final = 4
_LOOKBACK: Final = 20


class Boundary(NamedTuple):
    """The end of a block, and so of the prefix that leads up to it."""

    key: bytes
    """A digest of the model and of the prefix's content."""
    tokens: int
    """The prefix's input tokens."""
    ttl: str | None
    """The breakpoint's time to live, or None where the block carries no marker."""


def _words(text: str | None) -> int:
    return len((text or "").split())


def _system_tokens(blocks: Sequence[Block] | str | None) -> int:
    """`read_invoke` joins system blocks with spaces and makes a message of a non-empty join."""
    if blocks is None or isinstance(blocks, str):
        return _words(blocks) + _PER_MESSAGE if blocks else 0
    joined = " ".join(block.text or "" for block in blocks)
    return _words(joined) + _PER_MESSAGE if joined else 0


def _result_text(block: Block) -> str:
    content = block.content
    if content is None or isinstance(content, str):
        return content or ""
    return " ".join(inner.text for inner in content if inner.text)


def _turn_tokens(content: str | Sequence[Block]) -> int:
    """A turn's chat messages: one per tool_result, then one for its text, images and calls."""
    if isinstance(content, str):
        return _words(content) + _PER_MESSAGE if content else 0
    tokens = sum(_words(_result_text(b)) + _PER_MESSAGE for b in content if b.type == "tool_result")
    said = [b for b in content if b.type in ("text", "image", "tool_use")]
    if said:
        tokens += sum(_words(b.text) for b in said if b.type == "text") + _PER_MESSAGE
    return tokens


def prompt_total(system: str | Sequence[Block] | None, turns: Sequence[Turn]) -> int:
    """The whole input, as `answers.prompt_tokens` counts it."""
    return _system_tokens(system) + sum(_turn_tokens(turn.content) for turn in turns)


class _Marked(NamedTuple):
    """One block: its bytes, the input tokens up to and including it, its marker."""

    content: bytes
    tokens: int
    marker: CacheControl | None


def _units(
    tools: Sequence[ToolDef], system: str | Sequence[Block] | None, turns: Sequence[Turn]
) -> Iterator[_Marked]:
    for tool in tools:
        yield _Marked(_plain(tool), 0, tool.cache_control)
    if isinstance(system, str):
        system = [Block(type="text", text=system)] if system else None
    for index, block in enumerate(system or ()):
        tokens = _system_tokens((system or [])[: index + 1])
        yield _Marked(b"system:" + _plain(block), tokens, block.cache_control)
    before = _system_tokens(system)
    for turn in turns:
        content = turn.content
        if isinstance(content, str):
            content = [Block(type="text", text=content)] if content else []
        role = turn.role.encode() + b":"
        for index, block in enumerate(content):
            tokens = before + _turn_tokens(content[: index + 1])
            yield _Marked(role + _plain(block), tokens, block.cache_control)
        before += _turn_tokens(content)


def _plain(item: Block | ToolDef) -> bytes:
    return _ENCODER.encode(msgspec.structs.replace(item, cache_control=None))


def boundaries(
    model: str,
    tools: Sequence[ToolDef],
    system: str | Sequence[Block] | None,
    turns: Sequence[Turn],
    marker: CacheControl | None,
) -> list[Boundary]:
    """Every block boundary of the request, in order; `marker` is the top-level one."""
    digest = hashlib.blake2b(model.encode(), digest_size=16)
    found: list[Boundary] = []
    for unit in _units(tools, system, turns):
        digest.update(len(unit.content).to_bytes(8, "big") + unit.content)
        ttl = unit.marker.ttl if unit.marker is not None else None
        found.append(Boundary(digest.copy().digest(), unit.tokens, ttl))
    if marker is not None and found and found[-1].ttl is None:
        found[-1] = found[-1]._replace(ttl=marker.ttl)
    return found


class PromptCache:
    """The prefixes written so far, least recently used first, at most `limit` of them."""

    def __init__(self, limit: int = 4096) -> None:
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._limit = limit

    def clear(self) -> None:
        self._seen.clear()

    def account(self, points: Sequence[Boundary], total: int, output_tokens: int) -> FullUsage:
        """The usage of a request with these boundaries; remembers its breakpoints."""
        breaks = [i for i, point in enumerate(points) if point.ttl is not None]
        probes = {j for i in breaks for j in range(max(i - _LOOKBACK, 0), i + 1)}
        hit = max((j for j in probes if points[j].key in self._seen), default=-1)
        read = points[hit].tokens if hit >= 0 else 0
        written = {"5m": 0, "1h": 0}
        for i in breaks:
            ttl = points[i].ttl or "5m"
            if i > hit:
                written[ttl] += points[i].tokens - read - sum(written.values())
            self._seen[points[i].key] = None
            self._seen.move_to_end(points[i].key)
        while len(self._seen) > self._limit:
            self._seen.popitem(last=False)
        cached = points[breaks[-1]].tokens if breaks else 0
        return FullUsage(
            input_tokens=max(total - cached, 0),
            output_tokens=output_tokens,
            cache_creation_input_tokens=written["5m"] + written["1h"],
            cache_read_input_tokens=read,
            cache_creation=CacheCreation(
                ephemeral_5m_input_tokens=written["5m"], ephemeral_1h_input_tokens=written["1h"]
            ),
        )
