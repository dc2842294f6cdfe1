"""The checks api.anthropic.com makes on a Messages body, with its own error texts. Pure.

Each check raises `MessagesRejected`, whose text is the `message` of Anthropic's 400
`invalid_request_error`. Paths in the texts are Anthropic's (`messages.2.content.0`), not
msgspec's (`$.messages[2].content[0]`).

Consecutive turns of the same role are allowed: the API combines them into one turn (the
SDK's own documentation of `messages`, anthropic 2.14), so the pairing of `tool_use` and
`tool_result` is checked on the combined turns. The signature of a thinking block sent back
must be the one this emulator gave it (a digest of its text, as `bedrock_answer` makes it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterator, Sequence
from typing import Final

from skyroute.emulators.anthropic_wire import Block, MessagesRequest, ToolChoiceIn, ToolDef, Turn

__all__ = [
    "MessagesRejected",
    "check_sampling",
    "check_thinking_turns",
    "check_tool_pairs",
    "check_tools",
    "check_turns",
    "merged_turns",
    "thinking_on",
    "thinking_signature",
]

_BLOCK_TYPES: Final = frozenset(
    {
        "text",
        "image",
        "document",
        "search_result",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "mcp_tool_use",
        "mcp_tool_result",
        "container_upload",
    }
)
_MEDIA_TYPES: Final = ("image/jpeg", "image/png", "image/gif", "image/webp")
_THINKING_DOCS: Final = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"


class MessagesRejected(ValueError):
    """The body is not one Anthropic would accept; the text is the error's message."""

    model: str | None = None
    """The body's model, when it named one (for the ledger)."""


# -- turns ------------------------------------------------------------------------------------


def check_turns(turns: Sequence[Turn]) -> None:
    """Non-empty, led by a user turn, every turn with content (bar a final assistant prefill)."""
    if not turns:
        raise MessagesRejected("messages: at least one message is required")
    if turns[0].role != "user":
        raise MessagesRejected('messages: first message must use the "user" role')
    last = len(turns) - 1
    for index, turn in enumerate(turns):
        if not turn.content and not (index == last and turn.role == "assistant"):
            raise MessagesRejected(
                f"messages.{index}: all messages must have non-empty content except for the "
                "optional final assistant message"
            )
        if isinstance(turn.content, list):
            for position, block in enumerate(turn.content):
                _check_block(block, f"messages.{index}.content.{position}")


def _check_block(block: Block, path: str) -> None:
    if block.type not in _BLOCK_TYPES:
        expected = ", ".join(f"'{kind}'" for kind in sorted(_BLOCK_TYPES))
        raise MessagesRejected(
            f"{path}: Input tag '{block.type}' found using 'type' does not match any of the "
            f"expected tags: {expected}"
        )
    if block.type == "text" and not block.text:
        raise MessagesRejected("messages: text content blocks must be non-empty")
    if block.type == "image":
        _check_image(block, path)
    if block.type == "thinking" and not block.signature:
        raise MessagesRejected(f"{path}.thinking.signature: Field required")


def _check_image(block: Block, path: str) -> None:
    source = block.source
    if source is None:
        raise MessagesRejected(f"{path}.image.source: Field required")
    if source.type != "base64":
        return
    if source.media_type not in _MEDIA_TYPES:
        allowed = ", ".join(f"'{kind}'" for kind in _MEDIA_TYPES[:-1])
        raise MessagesRejected(
            f"{path}.image.source.base64.media_type: Input should be {allowed} or "
            f"'{_MEDIA_TYPES[-1]}'"
        )
    try:
        base64.b64decode(source.data or "", validate=True)
    except binascii.Error:
        raise MessagesRejected(f"{path}.image.source.base64.data: Invalid base64 data") from None


def merged_turns(turns: Sequence[Turn]) -> list[Turn]:
    """Consecutive turns of one role combined into one, as the API does."""
    merged: list[Turn] = []
    for turn in turns:
        if merged and merged[-1].role == turn.role:
            merged[-1] = Turn(turn.role, [*_as_blocks(merged[-1]), *_as_blocks(turn)])
        else:
            merged.append(turn)
    return merged


def _as_blocks(turn: Turn) -> list[Block]:
    if isinstance(turn.content, str):
        return [Block(type="text", text=turn.content)] if turn.content else []
    return turn.content


# -- tools ------------------------------------------------------------------------------------


def check_tools(tools: Sequence[ToolDef] | None, choice: ToolChoiceIn | None) -> None:
    for index, tool in enumerate(tools or ()):
        if tool.type not in (None, "custom"):
            continue  # a server tool: the API runs it, its fields are its own
        if tool.input_schema is None:
            raise MessagesRejected(f"tools.{index}.custom.input_schema: Field required")
        if tool.input_schema.get("type") != "object":
            raise MessagesRejected(
                f"tools.{index}.custom.input_schema.type: Input should be 'object'"
            )
    if choice is None or choice.type in ("auto", "none"):
        return
    if not tools:
        raise MessagesRejected("tool_choice may only be specified while providing tools.")
    if choice.type == "tool" and choice.name not in {tool.name for tool in tools}:
        raise MessagesRejected(f"tool_choice: Tool '{choice.name}' not found in provided tools")


def check_tool_pairs(turns: Sequence[Turn]) -> None:
    """Every tool_result answers a tool_use of the turn before; every tool_use is answered."""
    for index, turn in enumerate(turns):
        if turn.role == "user":
            offered = _tool_use_ids(turns[index - 1]) if index > 0 else set()
            for position, block in _blocks_of(turn, "tool_result"):
                if block.tool_use_id not in offered:
                    raise MessagesRejected(
                        f"messages.{index}.content.{position}: unexpected `tool_use_id` found in "
                        f"`tool_result` blocks: {block.tool_use_id}. Each `tool_result` block "
                        "must have a corresponding `tool_use` block in the previous message."
                    )
        elif index + 1 < len(turns):
            answered = {
                block.tool_use_id for _, block in _blocks_of(turns[index + 1], "tool_result")
            }
            missing = sorted(_tool_use_ids(turn) - answered)
            if missing:
                raise MessagesRejected(
                    f"messages.{index}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(missing)}. Each `tool_use` block must have "
                    "a corresponding `tool_result` block in the next message."
                )


def _blocks_of(turn: Turn, kind: str) -> Iterator[tuple[int, Block]]:
    if isinstance(turn.content, list):
        for position, block in enumerate(turn.content):
            if block.type == kind:
                yield position, block


def _tool_use_ids(turn: Turn) -> set[str]:
    return {block.id or "" for _, block in _blocks_of(turn, "tool_use")}


# -- thinking ---------------------------------------------------------------------------------


def thinking_on(request: MessagesRequest) -> bool:
    return request.thinking is not None and request.thinking.type != "disabled"


def check_sampling(request: MessagesRequest) -> None:
    """Extended thinking leaves no room for changed sampling (Anthropic's texts)."""
    if not thinking_on(request):
        return
    if request.temperature is not None and request.temperature != 1:
        raise MessagesRejected(
            "`temperature` may only be set to 1 when thinking is enabled. Please consult our "
            f"documentation at {_THINKING_DOCS}#feature-compatibility"
        )
    if request.top_p is not None and request.top_p < 0.95:
        raise MessagesRejected("`top_p` must be unset or >= 0.95 when thinking is enabled.")
    if request.top_k is not None:
        raise MessagesRejected("`top_k` must be unset when thinking is enabled.")


def check_thinking_turns(turns: Sequence[Turn], thinking: bool) -> None:
    """Signatures must be ours; with thinking on, a tool loop's assistant turn leads with one."""
    for index, turn in enumerate(turns):
        for position, block in _blocks_of(turn, "thinking"):
            if block.signature != thinking_signature(block.thinking or ""):
                raise MessagesRejected(
                    f"messages.{index}.content.{position}: Invalid `signature` in `thinking` block"
                )
    if not thinking or len(turns) < 2 or not any(_blocks_of(turns[-1], "tool_result")):
        return
    index = len(turns) - 2
    head = turns[index].content
    first = head[0].type if isinstance(head, list) and head else "text"
    if first not in ("thinking", "redacted_thinking"):
        raise MessagesRejected(
            f"messages.{index}.content.0.type: Expected `thinking` or `redacted_thinking`, but "
            f"found `{first}`. When `thinking` is enabled, a final `assistant` message must start "
            "with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` "
            "blocks). We recommend you include thinking blocks from previous turns. To avoid "
            "this requirement, disable `thinking`. Please consult our documentation at "
            f"{_THINKING_DOCS}"
        )


def thinking_signature(thinking: str) -> str:
    """The signature `bedrock_answer` gives a reasoning text: base64 of its 48-byte BLAKE2b."""
    digest = hashlib.blake2b(thinking.encode(), digest_size=48).digest()
    return base64.b64encode(digest).decode()
