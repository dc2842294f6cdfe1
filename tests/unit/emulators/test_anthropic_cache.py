"""Prompt-cache accounts and request reading of the Anthropic emulator: pure, no sockets."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from skyroute.emulators.answers import prompt_tokens
from skyroute.emulators.anthropic_cache import PromptCache, boundaries, prompt_total
from skyroute.emulators.anthropic_catalog import display_name, model_info
from skyroute.emulators.anthropic_requests import Conversation, MessagesRejected, read_messages
from skyroute.emulators.anthropic_wire import MessagesRequest

MODEL = "claude-sonnet-4-6"
MARK = {"type": "ephemeral"}
TOOL = {"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}
CALL = {"type": "tool_use", "id": "toolu_01a", "name": "get_weather", "input": {}}
RESULT = {"type": "tool_result", "tool_use_id": "toolu_01a", "content": "sunny and warm"}
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}


def read(**body: Any) -> Conversation:
    body.setdefault("model", MODEL)
    body.setdefault("max_tokens", 100)
    return read_messages(msgspec.json.encode(body))


def points(conversation: Conversation) -> Any:
    request = conversation.request
    assert isinstance(request, MessagesRequest)
    return boundaries(
        request.model,
        request.tools or (),
        request.system,
        conversation.turns,
        request.cache_control,
    )


CONVERSATIONS: list[dict[str, Any]] = [
    {"messages": [{"role": "user", "content": "alpha beta"}]},
    {"system": "Be brief.", "messages": [{"role": "user", "content": "hi"}]},
    {
        "system": [{"type": "text", "text": "one two"}, {"type": "text", "text": "three"}],
        "messages": [{"role": "user", "content": [IMAGE, {"type": "text", "text": "what"}]}],
    },
    {
        "tools": [TOOL],
        "messages": [
            {"role": "user", "content": "get_weather"},
            {"role": "assistant", "content": [{"type": "text", "text": "calling"}, CALL]},
            {"role": "user", "content": [RESULT, {"type": "text", "text": "thanks"}]},
            {"role": "assistant", "content": ""},
        ],
    },
    {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": [IMAGE]}]},
]


@pytest.mark.parametrize("body", CONVERSATIONS)
def test_prefix_counts_agree_with_the_answer(body: dict[str, Any]) -> None:
    conversation = read(**body)
    request = conversation.request
    total = prompt_tokens(conversation.chat.messages)
    assert prompt_total(request.system, conversation.turns) == total
    counts = [point.tokens for point in points(conversation)]
    assert counts == sorted(counts) and counts[-1] == total


def test_cache_writes_then_reads_and_splits_by_ttl() -> None:
    system = [{"type": "text", "text": "w " * 30, "cache_control": {**MARK, "ttl": "1h"}}]
    turns = [{"role": "user", "content": [{"type": "text", "text": "x y", "cache_control": MARK}]}]
    conversation = read(system=system, messages=turns)
    cache = PromptCache()
    first = cache.account(points(conversation), 40, 5)
    assert (first.cache_creation_input_tokens, first.cache_read_input_tokens) == (40, 0)
    assert (first.cache_creation.ephemeral_1h_input_tokens, first.input_tokens) == (34, 0)
    again = cache.account(points(conversation), 40, 5)
    assert (again.cache_creation_input_tokens, again.cache_read_input_tokens) == (0, 40)


def test_a_hit_is_looked_for_twenty_blocks_back_and_no_further() -> None:
    def turns(count: int) -> list[dict[str, Any]]:
        words = [{"type": "text", "text": f"w{i}"} for i in range(count)]
        return [{"role": "user", "content": words}]

    def cached_after(first: int, then: int) -> int:
        cache = PromptCache()
        cache.account(points(read(cache_control=MARK, messages=turns(first))), first + 4, 1)
        later = points(read(cache_control=MARK, messages=turns(then)))
        return cache.account(later, then + 4, 1).cache_read_input_tokens

    assert cached_after(5, 25) == 9  # the old end is 20 blocks before the new one
    assert cached_after(5, 26) == 0


def test_cache_is_bounded() -> None:
    cache = PromptCache(limit=2)
    bodies = [
        read(cache_control=MARK, messages=[{"role": "user", "content": f"m{i}"}]) for i in range(3)
    ]
    for body in bodies:
        cache.account(points(body), 5, 1)
    assert cache.account(points(bodies[0]), 5, 1).cache_read_input_tokens == 0
    assert cache.account(points(bodies[2]), 5, 1).cache_read_input_tokens == 5


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"messages": [{"role": "user"}]}, "messages.0.content: Field required"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]},
            "must be non-empty",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "video"}]}]}, "Input tag 'video'"),
        (
            {"system": [{"type": "image"}], "messages": [{"role": "user", "content": "x"}]},
            "system.0.type",
        ),
        (
            {"stop_sequences": [" "], "messages": [{"role": "user", "content": "x"}]},
            "non-whitespace",
        ),
        (
            {"max_tokens": -1, "messages": [{"role": "user", "content": "x"}]},
            "greater than or equal to 0",
        ),
    ],
)
def test_refusals_name_the_path(body: dict[str, Any], message: str) -> None:
    with pytest.raises(MessagesRejected, match=message) as caught:
        read(**body)
    assert caught.value.model == MODEL


@pytest.mark.parametrize(
    ("model_id", "name", "created"),
    [
        ("claude-sonnet-4-6", "Claude Sonnet 4.6", "2024-01-01T00:00:00Z"),
        ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-01T00:00:00Z"),
        ("claude-3-5-haiku-20241022", "Claude Haiku 3.5", "2024-10-22T00:00:00Z"),
        ("claude-opus-5", "Claude Opus 5", "2024-01-01T00:00:00Z"),
    ],
)
def test_model_info_comes_from_the_id(model_id: str, name: str, created: str) -> None:
    assert display_name(model_id) == name
    assert model_info(model_id).created_at == created
