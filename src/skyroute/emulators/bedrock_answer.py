"""The deterministic answer of a Bedrock model, shared by Converse and InvokeModel.

Both request shapes are first read into the OpenAI emulator's `ChatRequest`, so the answer
rules are those of `answers.py` ("You said: ...", "I received N images.", "The tool returned:
...", a tool call with schema-valid input, a JSON document for a schema); this module adds
what Bedrock models have beyond it:

- extended thinking: when asked for, a reasoning block comes first, with a signature. Its
  words count as output tokens but not against the text's token limit.
- stop reasons in Bedrock's words (`end_turn`, `tool_use`, `max_tokens`, `stop_sequence`),
  and `guardrail_intervened` for the content_filter fault.

Thinking is asked for in `additionalModelRequestFields` (Converse) or the body (InvokeModel)
as Anthropic's `{"thinking": {"type": "enabled", "budget_tokens": N}}` (or `adaptive`), or as
`{"reasoning_config": {"type": "enabled", ...}}`, the spelling Bedrock's Claude 3.7 docs use.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import re
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from skyroute.emulators.answers import answer_chat
from skyroute.emulators.openai_wire import ChatRequest

__all__ = [
    "GUARDRAIL_TEXT",
    "BedrockAnswer",
    "StopReason",
    "ToolUseAnswer",
    "answer_bedrock",
    "blocked",
    "thinking_problem",
    "wants_thinking",
]

GUARDRAIL_TEXT: Final = "Sorry, the model cannot answer this question."
_WORD: Final = re.compile(r"\s*\S+")
_THINKING_TYPES: Final = frozenset({"enabled", "adaptive"})
_MIN_BUDGET: Final = 1024


class StopReason(enum.Enum):
    END_TURN = "end_turn"
    TOOL_USE = "tool_use"
    MAX_TOKENS = "max_tokens"
    STOP_SEQUENCE = "stop_sequence"
    GUARDRAIL = "guardrail_intervened"


class ToolUseAnswer(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    """A hex digest; each protocol adds its own prefix (`tooluse_`, `toolu_bdrk_`)."""
    name: str
    input_json: str
    fragments: list[str]
    """`input_json` in pieces: the stream's input deltas, at least two."""


class BedrockAnswer(msgspec.Struct, frozen=True, kw_only=True):
    reasoning: list[str] = []
    """Words of the reasoning text; empty when thinking was not asked for."""
    signature: str = ""
    pieces: list[str] = []
    """Words (or JSON fragments) of the text block; empty for a tool use."""
    tool_use: ToolUseAnswer | None = None
    stop: StopReason = StopReason.END_TURN
    stop_sequence: str | None = None
    input_tokens: int = 0

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def reasoning_text(self) -> str:
        return "".join(self.reasoning)

    @property
    def output_tokens(self) -> int:
        body = len(self.tool_use.fragments) if self.tool_use else len(self.pieces)
        return len(self.reasoning) + body


def wants_thinking(fields: Mapping[str, Any] | None) -> bool:
    """Whether model-native fields ask for extended thinking."""
    return _thinking_config(fields) is not None


def _thinking_config(fields: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    for key in ("thinking", "reasoning_config"):
        config = (fields or {}).get(key)
        if isinstance(config, Mapping) and config.get("type") in _THINKING_TYPES:
            return config
    return None


def thinking_problem(
    fields: Mapping[str, Any] | None, max_tokens: int | None, forced_tool: bool
) -> str | None:
    """Anthropic's own refusal of a thinking request, or None when it is acceptable."""
    config = _thinking_config(fields)
    if config is None or config.get("type") != "enabled":
        return None
    budget = config.get("budget_tokens")
    if not isinstance(budget, int) or budget < _MIN_BUDGET:
        return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    if max_tokens is not None and max_tokens <= budget:
        return "`max_tokens` must be greater than `thinking.budget_tokens`."
    if forced_tool:
        return "Thinking may not be enabled when tool_choice forces tool use."
    return None


def answer_bedrock(chat: ChatRequest, *, thinking: bool) -> BedrockAnswer:
    answer = answer_chat(chat)
    choice, prompt = answer.choices[0], answer.prompt_tokens
    reasoning = _reasoning(chat) if thinking else []
    signature = _signature("".join(reasoning)) if thinking else ""
    call = choice.tool_call
    if call is not None:
        tool = ToolUseAnswer(
            id=call.id.removeprefix("call_"),
            name=call.name,
            input_json=call.arguments,
            fragments=choice.pieces,
        )
        return BedrockAnswer(
            reasoning=reasoning,
            signature=signature,
            tool_use=tool,
            stop=StopReason.TOOL_USE,
            input_tokens=prompt,
        )
    stop, matched = _stop_reason(chat, choice.finish_reason, "".join(choice.pieces))
    return BedrockAnswer(
        reasoning=reasoning,
        signature=signature,
        pieces=choice.pieces,
        stop=stop,
        stop_sequence=matched,
        input_tokens=prompt,
    )


def blocked(answer: BedrockAnswer) -> BedrockAnswer:
    """The answer as a guardrail replaces it: the blocked-output message, and no tool use."""
    return BedrockAnswer(
        pieces=_WORD.findall(GUARDRAIL_TEXT),
        stop=StopReason.GUARDRAIL,
        input_tokens=answer.input_tokens,
    )


def _stop_reason(chat: ChatRequest, finish: str, text: str) -> tuple[StopReason, str | None]:
    if finish == "length":
        return StopReason.MAX_TOKENS, None
    if not chat.stop:
        return StopReason.END_TURN, None
    # A stop sequence cut the answer if, without it, the answer would be longer.
    full = answer_chat(msgspec.structs.replace(chat, stop=None)).choices[0]
    rest = "".join(full.pieces)[len(text) :]
    stops = [chat.stop] if isinstance(chat.stop, str) else chat.stop
    matched = next((s for s in stops if s and rest.startswith(s)), None)
    if matched is None:
        return StopReason.END_TURN, None
    return StopReason.STOP_SEQUENCE, matched


def _reasoning(chat: ChatRequest) -> list[str]:
    users = [m for m in chat.messages if m.role in ("user", "tool")]
    return _WORD.findall(f"The user sent {len(users)} message(s). I should answer briefly.")


def _signature(reasoning: str) -> str:
    digest = hashlib.blake2b(reasoning.encode(), digest_size=48).digest()
    return base64.b64encode(digest).decode()
