"""Deterministic Gemini answers, and the checks Google makes before it answers. Pure.

A generateContent request is checked as Google does (`check_generate`, raising
`GeminiRejected` with Google's 400 INVALID_ARGUMENT text), then read into the OpenAI
emulator's `ChatRequest` so that the answer rules are those of `answers.py`: "You said: ...",
"I received N image(s).", "The tool returned: ..." after a functionResponse turn, a function
call whose `args` follow the declared schema, a JSON document for `responseJsonSchema` or
`responseSchema`. What Gemini adds:

- `toolConfig.functionCallingConfig`: ANY calls the first allowed function (AUTO calls one
  when the last user text names it; NONE never calls). Every functionCall part carries an
  `id`; on `gemini-3*` models it also carries a `thoughtSignature`.
- Gemini 3 tool loops (protocols.md §0.11): in the current turn (after the last user message
  that is not only functionResponses), the first functionCall part of every model step must
  carry its `thoughtSignature`, or the request is refused. Signatures are not verified.
- Thinking, when `thinkingConfig` asks for it (`includeThoughts`, a `thinkingLevel`, or a
  `thinkingBudget` other than 0): thought words count in `thoughtsTokenCount`; they are shown as
  `thought: true` parts only with `includeThoughts`. `maxOutputTokens` limits the answer only.
- `responseMimeType: text/x.enum` answers the schema's first enum value.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any, Final

import msgspec

from skyroute.emulators.answers import ToolCallAnswer, answer_chat, prompt_tokens
from skyroute.emulators.google_wire import (
    Content,
    CountTokensRequest,
    GenerateContentRequest,
    GenerationConfig,
    Part,
)
from skyroute.emulators.openai_wire import (
    ChatRequest,
    ContentPart,
    FunctionCallIn,
    FunctionDef,
    JsonSchemaFormat,
    Message,
    ResponseFormat,
    Tool,
    ToolCallIn,
    ToolChoice,
    ToolChoiceFunction,
)

__all__ = [
    "CandidateAnswer",
    "FunctionCallAnswer",
    "GeminiAnswer",
    "GeminiRejected",
    "answer_gemini",
    "check_generate",
    "count_tokens",
    "json_schema",
]

_WORD: Final = re.compile(r"\s*\S+")
_ENCODER: Final = msgspec.json.Encoder()
_ROLES: Final = frozenset({"user", "model"})
_FINISH: Final = {"length": "MAX_TOKENS"}
_MISSING_SIGNATURE: Final = (
    "Function call is missing a thought_signature in functionCall parts. This is required for "
    "tools to work correctly, and missing thought_signature may lead to degraded model "
    "performance. Additional data, function call `default_api:{name}` , position {position}. "
    "Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)


class GeminiRejected(ValueError):
    """A request Google refuses with 400 INVALID_ARGUMENT; the text is Google's."""


class FunctionCallAnswer(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    args: dict[str, Any]
    signature: str | None


class CandidateAnswer(msgspec.Struct, frozen=True, kw_only=True):
    pieces: list[str]
    """Words of the text (or 8-character fragments of a JSON answer or of the call's args)."""
    finish_reason: str
    call: FunctionCallAnswer | None = None


class GeminiAnswer(msgspec.Struct, frozen=True, kw_only=True):
    candidates: list[CandidateAnswer]
    thoughts: list[str]
    show_thoughts: bool
    prompt_tokens: int

    @property
    def candidates_tokens(self) -> int:
        return sum(len(candidate.pieces) for candidate in self.candidates)


def is_gemini_3(model: str) -> bool:
    return model.startswith("gemini-3")


# -- checks -----------------------------------------------------------------------------------


def check_generate(request: GenerateContentRequest, model: str) -> None:
    """Refuse what Google refuses; raises GeminiRejected."""
    if not request.contents:
        raise GeminiRejected("* GenerateContentRequest.contents: contents is not specified\n")
    for index, content in enumerate(request.contents):
        if (content.role or "user") not in _ROLES:
            raise GeminiRejected("Please use a valid role: user, model.")
        if not content.parts:
            raise GeminiRejected(
                f"* GenerateContentRequest.contents[{index}].parts: contents.parts must not "
                "be empty.\n"
            )
        _check_responses(request.contents, index)
    config = request.tool_config.function_calling_config if request.tool_config else None
    if config is not None and (config.mode or "").upper() == "ANY" and not _functions(request):
        raise GeminiRejected("Function calling config is set without function_declarations.")
    if is_gemini_3(model):
        _check_signatures(request.contents)


def _check_responses(contents: list[Content], index: int) -> None:
    responses = [p.function_response for p in contents[index].parts if p.function_response]
    if not responses:
        return
    previous = contents[index - 1] if index > 0 else None
    calls = [p.function_call for p in previous.parts if p.function_call] if previous else []
    if not calls or previous is None or previous.role != "model":
        raise GeminiRejected(
            "Please ensure that function response turn comes immediately after a function "
            "call turn."
        )
    if len(responses) != len(calls):
        raise GeminiRejected(
            "Please ensure that the number of function response parts is equal to the number "
            "of function call parts of the function call turn."
        )
    names = {call.name for call in calls}
    for response in responses:
        if response.name not in names:
            raise GeminiRejected(
                f"The function response name `{response.name}` does not match any function "
                "call in the preceding function call turn."
            )


def _check_signatures(contents: list[Content]) -> None:
    start = 0
    for index, content in enumerate(contents):
        if content.role != "model" and any(not p.function_response for p in content.parts):
            start = index + 1  # a user message that is not only results opens a new turn
    for index in range(start, len(contents)):
        first = next((p for p in contents[index].parts if p.function_call), None)
        if first is not None and first.function_call and not first.thought_signature:
            text = _MISSING_SIGNATURE.format(name=first.function_call.name, position=index + 1)
            raise GeminiRejected(text)


# -- into the OpenAI emulator's request --------------------------------------------------------


def _functions(request: GenerateContentRequest) -> list[FunctionDef]:
    declarations = [d for tool in request.tools or () for d in tool.function_declarations or ()]
    return [
        FunctionDef(d.name, d.description, _parameters(d.parameters_json_schema, d.parameters))
        for d in declarations
    ]


def _parameters(plain: dict[str, Any] | None, google: dict[str, Any] | None) -> dict[str, Any]:
    if plain is not None:
        return plain
    return json_schema(google) if google is not None else {"type": "object", "properties": {}}


def json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Google's OpenAPI-subset Schema (upper-case types) as the JSON Schema it stands for."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            out[key] = value.lower()
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: json_schema(sub) for name, sub in value.items()}
        elif key == "items" and isinstance(value, dict):
            out[key] = json_schema(value)
        elif key == "anyOf" and isinstance(value, list):
            out[key] = [json_schema(branch) for branch in value]
        else:
            out[key] = value
    return out


def _messages(system: Content | None, contents: list[Content]) -> list[Message]:
    head = " ".join(p.text for p in system.parts if p.text) if system else ""
    messages = [Message("system", head)] if head else []
    for content in contents:
        messages += _content_messages(content)
    return messages


def _content_messages(content: Content) -> list[Message]:
    if content.role == "model":
        text = "".join(p.text for p in content.parts if p.text and not p.thought)
        calls = [
            ToolCallIn(call.id or call.name, FunctionCallIn(call.name, _json(call.args or {})))
            for call in (p.function_call for p in content.parts)
            if call is not None
        ]
        return [Message("assistant", text or None, tool_calls=calls or None)]
    results = [
        Message("tool", _json(result.response or {}), tool_call_id=result.name)
        for result in (p.function_response for p in content.parts)
        if result is not None
    ]
    parts = [_chat_part(p) for p in content.parts if not p.function_response]
    kept = [part for part in parts if part is not None]
    return [*results, Message("user", kept)] if kept else results


def _chat_part(part: Part) -> ContentPart | None:
    if part.text is not None:
        return ContentPart("text", text=part.text)
    media = part.inline_data or part.file_data
    if media is not None and media.mime_type.startswith("image/"):
        return ContentPart("image_url")
    return None


def _json(value: object) -> str:
    return _ENCODER.encode(value).decode()


def to_chat(request: GenerateContentRequest) -> ChatRequest:
    config = request.generation_config or GenerationConfig()
    functions = _functions(request)
    calling = request.tool_config.function_calling_config if request.tool_config else None
    mode = (calling.mode or "AUTO").upper() if calling else "AUTO"
    allowed = calling.allowed_function_names if calling else None
    choice: str | ToolChoice | None = None
    if mode == "NONE":
        choice = "none"
    elif mode == "ANY":
        functions = [f for f in functions if not allowed or f.name in allowed]
        choice = ToolChoice(ToolChoiceFunction(functions[0].name)) if functions else None
    return ChatRequest(
        messages=_messages(request.system_instruction, request.contents),
        n=max(config.candidate_count or 1, 1),
        stop=config.stop_sequences,
        max_tokens=config.max_output_tokens,
        tools=[Tool(function) for function in functions] or None,
        tool_choice=choice,
        response_format=_format(config),
    )


def _format(config: GenerationConfig) -> ResponseFormat | None:
    if config.response_mime_type != "application/json":
        return None
    schema = config.response_json_schema
    if schema is None and config.response_schema is not None:
        schema = json_schema(config.response_schema)
    if schema is None:
        return ResponseFormat("json_object")
    return ResponseFormat("json_schema", JsonSchemaFormat("response", schema))


# -- the answer --------------------------------------------------------------------------------


def count_tokens(request: CountTokensRequest) -> int:
    inner = request.generate_content_request
    if inner is not None:
        return prompt_tokens(_messages(inner.system_instruction, inner.contents))
    return prompt_tokens(_messages(request.system_instruction, request.contents))


def answer_gemini(request: GenerateContentRequest, model: str) -> GeminiAnswer:
    chat = to_chat(request)
    answer = answer_chat(chat)
    config = request.generation_config or GenerationConfig()
    enum = _enum_answer(config)
    candidates = [
        CandidateAnswer(
            pieces=[enum] if enum is not None and choice.tool_call is None else choice.pieces,
            finish_reason=_FINISH.get(choice.finish_reason, "STOP"),
            call=_call(choice.tool_call, model) if choice.tool_call else None,
        )
        for choice in answer.choices
    ]
    thinks, shows = _thinking(config)
    users = sum(1 for content in request.contents if content.role != "model")
    thoughts = _WORD.findall(f"The user sent {users} message(s). I should answer briefly.")
    return GeminiAnswer(
        candidates=candidates,
        thoughts=thoughts if thinks else [],
        show_thoughts=shows,
        prompt_tokens=answer.prompt_tokens,
    )


def _enum_answer(config: GenerationConfig) -> str | None:
    schema = config.response_schema or config.response_json_schema or {}
    values = schema.get("enum")
    if config.response_mime_type == "text/x.enum" and isinstance(values, list) and values:
        return str(values[0])
    return None


def _call(call: ToolCallAnswer, model: str) -> FunctionCallAnswer:
    signature = None
    if is_gemini_3(model):
        seed = f"{call.name}:{call.arguments}".encode()
        signature = base64.b64encode(hashlib.blake2b(seed, digest_size=32).digest()).decode()
    args = msgspec.json.decode(call.arguments)
    return FunctionCallAnswer(id=call.id, name=call.name, args=args, signature=signature)


def _thinking(config: GenerationConfig) -> tuple[bool, bool]:
    """Whether the model thinks, and whether it shows its thoughts."""
    thinking = config.thinking_config
    if thinking is None or thinking.thinking_budget == 0:
        return False, False
    shows = bool(thinking.include_thoughts)
    asked = thinking.thinking_level is not None or thinking.thinking_budget is not None
    return shows or asked, shows


def blocked(answer: GeminiAnswer) -> GeminiAnswer:
    """The answer as the safety filter stops it: no parts, finishReason SAFETY."""
    stopped = [CandidateAnswer(pieces=[], finish_reason="SAFETY") for _ in answer.candidates]
    return msgspec.structs.replace(answer, candidates=stopped, thoughts=[], show_thoughts=False)
