"""Deterministic answers to chat requests: text, tool calls and JSON documents.

Pure: the same request always gives the same answer, with no clock and no randomness, so
tests can predict every token. A "token" is a whitespace-separated word here (each carries its
leading space), or an 8-character fragment of a JSON document or of tool-call arguments.

- Prompt tokens: the words of every message's text, plus 4 per message.
- Text: "You said: <first 12 words of the last user message>", led by "I received N
  image(s)." when images were sent, or "The tool returned: ..." after a tool message.
- Tools: a call when `tool_choice` is "required" or names a function, or when it is "auto"
  (or absent) and the last user message names one of the functions; arguments are an example
  of the function's JSON Schema.
- `response_format`: json_schema gives an example of the schema; json_object gives
  `{"answer": "<text>"}`.
- `max_tokens`/`max_completion_tokens` keep that many tokens (finish "length"); `stop`
  truncates at the first match (finish "stop").
"""

from __future__ import annotations

import hashlib
import re

import msgspec

from skyroute.emulators.openai_wire import ChatRequest, FunctionDef, Message, ToolChoice
from skyroute.emulators.schema_example import schema_example

__all__ = ["Answer", "ChoiceAnswer", "ToolCallAnswer", "answer_chat", "prompt_tokens"]

_ANSWER_WORDS = 12
_FRAGMENT = 8
_WORD = re.compile(r"\s*\S+|\s+$")
_ENCODER = msgspec.json.Encoder()


class ToolCallAnswer(msgspec.Struct, frozen=True):
    id: str
    name: str
    arguments: str


class ChoiceAnswer(msgspec.Struct, frozen=True):
    """One choice: its content tokens (or argument fragments) and why it finished."""

    pieces: list[str]
    finish_reason: str
    tool_call: ToolCallAnswer | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)


class Answer(msgspec.Struct, frozen=True):
    choices: list[ChoiceAnswer]
    prompt_tokens: int

    @property
    def completion_tokens(self) -> int:
        return sum(len(choice.pieces) for choice in self.choices)


def message_text(message: Message) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return " ".join(part.text for part in content if part.text)


def prompt_tokens(messages: list[Message]) -> int:
    return sum(len(message_text(m).split()) + 4 for m in messages)


def answer_chat(request: ChatRequest) -> Answer:
    choice = _tool_choice(request) or _text_choice(request)
    n = max(request.n, 1)
    return Answer(choices=[choice] * n, prompt_tokens=prompt_tokens(request.messages))


def filtered(answer: Answer) -> Answer:
    """The same answer as stopped by an output content filter: no content."""
    blocked = ChoiceAnswer(pieces=[], finish_reason="content_filter")
    return Answer(choices=[blocked] * len(answer.choices), prompt_tokens=answer.prompt_tokens)


# -- text ------------------------------------------------------------------------------------


def _text_choice(request: ChatRequest) -> ChoiceAnswer:
    text = _reply_text(request.messages)
    pieces = _words(text)
    format_ = request.response_format
    if format_ is not None and format_.type == "json_object":
        pieces = _fragments(_ENCODER.encode({"answer": text}).decode())
    elif format_ is not None and format_.type == "json_schema" and format_.json_schema:
        document = schema_example(format_.json_schema.schema or {"type": "object"})
        pieces = _fragments(_ENCODER.encode(document).decode())
    limit = request.max_completion_tokens or request.max_tokens
    return _limited(pieces, limit, _stops(request.stop))


def _reply_text(messages: list[Message]) -> str:
    last = messages[-1] if messages else None
    if last is not None and last.role == "tool":
        return "The tool returned: " + _first_words(message_text(last))
    user = next((m for m in reversed(messages) if m.role == "user"), None)
    if user is None:
        return "Hello! How can I help you today?"
    said = "You said: " + _first_words(message_text(user))
    images = _image_count(messages)
    if images:
        noun = "image" if images == 1 else "images"
        return f"I received {images} {noun}. {said}"
    return said


def _first_words(text: str) -> str:
    return " ".join(text.split()[:_ANSWER_WORDS])


def _image_count(messages: list[Message]) -> int:
    return sum(
        1
        for m in messages
        if isinstance(m.content, list)
        for part in m.content
        if part.type == "image_url"
    )


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _fragments(text: str) -> list[str]:
    """Split into 8-character fragments, and at least two when the text allows."""
    size = _FRAGMENT if len(text) > _FRAGMENT else max(1, (len(text) + 1) // 2)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _stops(stop: str | list[str] | None) -> list[str]:
    if stop is None:
        return []
    return [s for s in ([stop] if isinstance(stop, str) else stop) if s]


def _limited(pieces: list[str], limit: int | None, stops: list[str]) -> ChoiceAnswer:
    finish = "stop"
    if limit is not None and len(pieces) > limit:
        pieces, finish = pieces[: max(limit, 0)], "length"
    text = "".join(pieces)
    cuts = [i for i in (text.find(s) for s in stops) if i >= 0]
    if cuts:
        return ChoiceAnswer(pieces=_prefix(pieces, min(cuts)), finish_reason="stop")
    return ChoiceAnswer(pieces=pieces, finish_reason=finish)


def _prefix(pieces: list[str], length: int) -> list[str]:
    """The pieces that make up the first `length` characters of their concatenation."""
    kept: list[str] = []
    for piece in pieces:
        if length <= 0:
            break
        kept.append(piece[:length])
        length -= len(piece)
    return kept


# -- tools -----------------------------------------------------------------------------------


def _tool_choice(request: ChatRequest) -> ChoiceAnswer | None:
    function = _called_function(request)
    if function is None:
        return None
    schema = function.parameters or {"type": "object", "properties": {}}
    arguments = _ENCODER.encode(schema_example(schema)).decode()
    call = ToolCallAnswer(
        id=_call_id(function.name, request.messages), name=function.name, arguments=arguments
    )
    return ChoiceAnswer(pieces=_fragments(arguments), finish_reason="tool_calls", tool_call=call)


def _called_function(request: ChatRequest) -> FunctionDef | None:
    functions = [tool.function for tool in request.tools or () if tool.type == "function"]
    if not functions:
        return None
    choice = request.tool_choice
    if isinstance(choice, ToolChoice):
        return next((f for f in functions if f.name == choice.function.name), None)
    if choice == "required":
        return functions[0]
    if choice not in (None, "auto") or not request.messages:
        return None
    last = request.messages[-1]
    if last.role != "user":
        return None
    text = message_text(last)
    return next((f for f in functions if f.name in text), None)


def _call_id(name: str, messages: list[Message]) -> str:
    seed = f"{name}:{len(messages)}:{message_text(messages[-1]) if messages else ''}"
    return "call_" + hashlib.blake2b(seed.encode(), digest_size=12).hexdigest()
