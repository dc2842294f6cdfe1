"""OpenAI chat completions ⇄ the canonical chat, for hops to a different protocol.

Same-family hops (OpenAI in, OpenAI-compatible out) never come here: they use the
pass-through helpers in ``wire.openai``. This module is paid only when the upstream speaks
something else (Bedrock Converse, say): ``to_canonical`` reads a decoded request body,
``response_to_openai`` writes a ``chat.completion`` and ``OpenAIChunkWriter`` writes the
``chat.completion.chunk`` payloads of a stream (protocols.md §1). The other way round,
for clients of another protocol served by an OpenAI-shaped upstream, ``to_openai_body``
writes the request and ``from_openai_response`` / ``OpenAIChunkReader`` read the answer
(they live in ``wire.openai_upstream`` and are re-exported here).

Reasoning that carries a provider signature (Claude's thinking, which must be sent back
unchanged in tool loops, protocols.md §6) travels in ``thinking_blocks``, the field other
OpenAI-compatible gateways use for it; plain reasoning text is ``reasoning_content``.

Pure functions only: no I/O, no clock, no logging.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any, Literal

import msgspec

from skyroute.core.chat import (
    ChatRequest,
    ContentPart,
    DocumentPart,
    ImagePart,
    Message,
    Reasoning,
    ReasoningConfig,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
)
from skyroute.core.errors import InvalidRequest
from skyroute.wire.openai_response import OpenAIChunkWriter, response_to_openai
from skyroute.wire.openai_upstream import OpenAIChunkReader, from_openai_response, to_openai_body

Effort = Literal["minimal", "low", "medium", "high"]
ToolMode = Literal["auto", "none", "required"]

__all__ = [
    "OpenAIChunkReader",
    "OpenAIChunkWriter",
    "from_openai_response",
    "response_to_openai",
    "to_canonical",
    "to_openai_body",
    "unsupported_fields",
]

_EFFORTS: dict[str, Effort] = {
    "minimal": "minimal", "low": "low", "medium": "medium", "high": "high"
}  # fmt: skip
_TOOL_MODES: dict[str, ToolMode] = {"none": "none", "auto": "auto", "required": "required"}
_encode = msgspec.json.Encoder()


# --- request --------------------------------------------------------------------------


def to_canonical(body: dict[str, Any]) -> ChatRequest:
    """Read a decoded OpenAI chat body (``model`` and message roles already checked by
    ``wire.openai.parse_chat_request``); raise ``InvalidRequest`` naming the parameter."""
    messages = [_message(i, m) for i, m in enumerate(body["messages"])]
    options = _optional(body, "stream_options", dict) or {}
    max_tokens = _positive_int(body, "max_completion_tokens")
    if max_tokens is None:
        max_tokens = _positive_int(body, "max_tokens")
    return ChatRequest(
        model=body["model"],
        messages=messages,
        tools=[_tool(k, t) for k, t in enumerate(_optional(body, "tools", list) or [])],
        tool_choice=_tool_choice(body.get("tool_choice")),
        parallel_tool_calls=_optional(body, "parallel_tool_calls", bool),
        response_format=_response_format(body.get("response_format")),
        temperature=_number(body, "temperature"),
        top_p=_number(body, "top_p"),
        max_tokens=max_tokens,
        stop=_stop(body.get("stop")),
        n=_positive_int(body, "n") or 1,
        seed=_optional(body, "seed", int),
        reasoning=_reasoning_effort(body.get("reasoning_effort")),
        stream=bool(_optional(body, "stream", bool)),
        include_usage=options.get("include_usage") is True,
        user=_optional(body, "user", str),
    )


def _message(i: int, raw: dict[str, Any]) -> Message:
    role = raw["role"]
    at = f"messages[{i}]"
    name = _optional(raw, "name", str, at)
    match role:
        case "system" | "developer" | "user":
            return Message(role=role, content=_content(raw.get("content"), at), name=name)
        case "assistant":
            return Message(
                role="assistant",
                content=_content(raw.get("content"), at),
                tool_calls=_tool_calls(raw.get("tool_calls"), at),
                reasoning=_reasoning(raw, at),
                name=name,
            )
        case "tool":
            call_id = raw.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise InvalidRequest(
                    f"'{at}.tool_call_id' is required for tool messages.",
                    param=f"{at}.tool_call_id",
                )
            return Message(
                role="tool", content=_content(raw.get("content"), at), tool_call_id=call_id
            )
        case _:
            raise InvalidRequest(
                f"'{at}.role' '{role}' is not supported by this deployment; use 'tool'.",
                param=f"{at}.role",
            )


def _content(content: object, at: str) -> list[ContentPart]:
    if content is None:
        return []
    if isinstance(content, str):
        return [TextPart(text=content)] if content else []
    if not isinstance(content, list):
        raise InvalidRequest(f"'{at}.content' must be a string or an array.", param=f"{at}.content")
    return [_part(part, f"{at}.content[{j}]") for j, part in enumerate(content)]


def _part(part: object, at: str) -> ContentPart:
    if not isinstance(part, dict):
        raise InvalidRequest(f"'{at}' must be an object.", param=at)
    kind = part.get("type")
    match kind:
        case "text":
            return TextPart(text=_required_str(part, "text", at))
        case "refusal":
            # An earlier assistant turn's refusal is text the model wrote.
            return TextPart(text=_required_str(part, "refusal", at))
        case "image_url":
            return _image(part.get("image_url"), f"{at}.image_url")
        case "file":
            return _file(part.get("file"), f"{at}.file")
        case "input_audio":
            raise InvalidRequest(
                f"Content of type '{kind}' is not supported by this deployment.",
                param=f"{at}.{kind}",
            )
        case _:
            raise InvalidRequest(f"Unknown content part type {kind!r}.", param=f"{at}.type")


def _image(image: object, at: str) -> ImagePart:
    detail = None
    if isinstance(image, dict):
        detail = _optional(image, "detail", str, at)
        image = image.get("url")
    if not isinstance(image, str) or not image:
        raise InvalidRequest(f"'{at}.url' must be a non-empty string.", param=at)
    if image.startswith("data:"):
        media_type, data = _data_url(image, at)
        return ImagePart(media_type=media_type, data=data, detail=detail)
    if image.startswith(("https://", "http://")):
        return ImagePart(url=image, detail=detail)
    raise InvalidRequest(f"'{at}.url' must be an https or a data: URL.", param=at)


def _file(file: object, at: str) -> DocumentPart:
    """``{"file_data": "data:application/pdf;base64,...", "filename": ...}`` → a document
    (an https ``file_data`` → a URL-only one). A ``file_id`` (an upload to OpenAI's Files
    API) means nothing to another upstream."""
    if not isinstance(file, dict):
        raise InvalidRequest(f"'{at}' must be an object with 'file_data'.", param=at)
    if file.get("file_id") is not None:
        raise InvalidRequest(
            f"'{at}.file_id': file references (the Files API) are not supported by this "
            "deployment; send the file inline as 'file_data' (a base64 data URL).",
            param=f"{at}.file_id",
        )
    file_data = file.get("file_data")
    if not isinstance(file_data, str) or not file_data:
        raise InvalidRequest(f"'{at}.file_data' must be a non-empty string.", param=at)
    where = f"{at}.file_data"
    name = _optional(file, "filename", str, at) or None
    if file_data.startswith(("https://", "http://")):
        # A URL where OpenAI wants the data: kept as a URL-only PDF (as Anthropic's url
        # documents are), for upstreams that fetch documents themselves.
        return DocumentPart(media_type="application/pdf", url=file_data, name=name)
    if not file_data.startswith("data:"):
        raise InvalidRequest(
            f"'{where}' must be a base64 data URL (data:application/pdf;base64,...).",
            param=where,
        )
    media_type, data = _data_url(file_data, where, field="", example="application/pdf")
    return DocumentPart(media_type=media_type, data=data, name=name)


def _data_url(
    url: str, at: str, *, field: str = ".url", example: str = "image/png"
) -> tuple[str, bytes]:
    """``data:<media type>;base64,<data>`` → (media type, bytes)."""
    header, comma, data = url.partition(",")
    media_type, *params = header[5:].split(";")  # data:text/plain;charset=utf-8;base64
    encoding = params[-1] if params else ""
    if not comma or encoding.lower() != "base64" or "/" not in media_type:
        raise InvalidRequest(
            f"'{at}{field}' must be a base64 data URL (data:{example};base64,...).", param=at
        )
    try:
        return media_type.lower(), base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"'{at}{field}' holds invalid base64 data.", param=at) from None


def _tool_calls(raw: object, at: str) -> list[ToolCall]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidRequest(f"'{at}.tool_calls' must be an array.", param=f"{at}.tool_calls")
    calls = []
    for k, call in enumerate(raw):
        where = f"{at}.tool_calls[{k}]"
        if not isinstance(call, dict) or call.get("type", "function") != "function":
            raise InvalidRequest(f"'{where}' must be a function call.", param=where)
        function = _optional(call, "function", dict, where) or {}
        arguments = function.get("arguments", "")
        if isinstance(arguments, dict):
            arguments = _encode.encode(arguments).decode()
        elif not isinstance(arguments, str):
            where_args = f"{where}.function.arguments"
            raise InvalidRequest(f"'{where_args}' must be a JSON string.", param=where_args)
        calls.append(
            ToolCall(
                id=_required_str(call, "id", where),
                name=_required_str(function, "name", f"{where}.function"),
                arguments=arguments,
            )
        )
    return calls


def _reasoning(raw: dict[str, Any], at: str) -> list[Reasoning]:
    blocks = _optional(raw, "thinking_blocks", list, at)
    if blocks:
        return [
            _thinking_block(block, f"{at}.thinking_blocks[{k}]") for k, block in enumerate(blocks)
        ]
    text = raw.get("reasoning_content")
    if text is None:
        text = raw.get("reasoning")
    return [Reasoning(text=text)] if isinstance(text, str) and text else []


def _thinking_block(block: object, at: str) -> Reasoning:
    if isinstance(block, dict):
        if block.get("type") == "thinking":
            text = _optional(block, "thinking", str, at) or ""
            return Reasoning(text=text, signature=_optional(block, "signature", str, at))
        if block.get("type") == "redacted_thinking":
            try:
                return Reasoning(redacted=base64.b64decode(_required_str(block, "data", at)))
            except (binascii.Error, ValueError):
                raise InvalidRequest(f"'{at}.data' must be base64.", param=f"{at}.data") from None
    raise InvalidRequest(f"'{at}' must be a thinking or redacted_thinking block.", param=at)


def _tool(k: int, raw: object) -> Tool:
    at = f"tools[{k}]"
    if not isinstance(raw, dict):
        raise InvalidRequest(f"'{at}' must be an object.", param=at)
    if raw.get("type") != "function":
        raise InvalidRequest(
            f"Tools of type {raw.get('type')!r} are not supported by this deployment; "
            "only 'function' tools are.",
            param=f"{at}.type",
        )
    function = _optional(raw, "function", dict, at) or {}
    at = f"{at}.function"
    return Tool(
        name=_required_str(function, "name", at),
        description=_optional(function, "description", str, at),
        parameters=_optional(function, "parameters", dict, at) or {},
        strict=_optional(function, "strict", bool, at),
    )


def _tool_choice(raw: object) -> ToolChoice | None:
    if raw is None:
        return None
    mode = _TOOL_MODES.get(raw) if isinstance(raw, str) else None
    if mode is not None:
        return ToolChoice(mode=mode)
    match raw:
        case {"type": "function", "function": {"name": str(name)}}:
            return ToolChoice(mode="tool", name=name)
    raise InvalidRequest(
        "'tool_choice' must be 'none', 'auto', 'required' or "
        '{"type": "function", "function": {"name": ...}}.',
        param="tool_choice",
    )


def _response_format(raw: object) -> ResponseFormat | None:
    match raw:
        case None:
            return None
        case {"type": "text" | "json_object" as kind}:
            return ResponseFormat(type=kind)
        case {"type": "json_schema", "json_schema": dict(spec)}:
            at = "response_format.json_schema"
            return ResponseFormat(
                type="json_schema",
                name=_required_str(spec, "name", at),
                schema=_optional(spec, "schema", dict, at),
                strict=_optional(spec, "strict", bool, at),
            )
    raise InvalidRequest(
        "'response_format' must be text, json_object or json_schema with a 'json_schema' object.",
        param="response_format",
    )


def _reasoning_effort(raw: object) -> ReasoningConfig | None:
    if raw is None or raw == "none":
        return None
    effort = _EFFORTS.get(raw) if isinstance(raw, str) else None
    if effort is None:
        raise InvalidRequest(
            "'reasoning_effort' must be one of minimal, low, medium, high.",
            param="reasoning_effort",
        )
    return ReasoningConfig(effort=effort)


def _stop(raw: object) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and all(isinstance(s, str) for s in raw):
        return raw
    raise InvalidRequest("'stop' must be a string or an array of strings.", param="stop")


# --- field checks ---------------------------------------------------------------------

_TYPE_NAMES = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    dict: "an object",
    list: "an array",
}


def _optional(raw: dict[str, Any], key: str, kind: type[Any], at: str = "") -> Any:
    """``raw[key]`` if present and of ``kind`` (``None`` if absent or null)."""
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        param = f"{at}.{key}" if at else key
        raise InvalidRequest(f"'{param}' must be {_TYPE_NAMES[kind]}.", param=param)
    return value


def _required_str(raw: dict[str, Any], key: str, at: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str):
        raise InvalidRequest(f"'{at}.{key}' must be a string.", param=f"{at}.{key}")
    return value


def _number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"'{key}' must be a number.", param=key)
    return float(value)


def _positive_int(body: dict[str, Any], key: str) -> int | None:
    value: int | None = _optional(body, key, int)
    if value is not None and value < 1:
        raise InvalidRequest(f"'{key}' must be at least 1.", param=key)
    return value


# --- fields without a canonical meaning -----------------------------------------------

_MAPPED = frozenset(
    {
        "model", "messages", "tools", "tool_choice", "parallel_tool_calls", "response_format",
        "temperature", "top_p", "max_completion_tokens", "max_tokens", "stop", "n", "seed",
        "reasoning_effort", "stream", "stream_options", "user",
    }
)  # fmt: skip
# Accepted and dropped: they change nothing about the completion itself.
_HARMLESS = frozenset(
    {"metadata", "store", "service_tier", "prompt_cache_key", "safety_identifier"}
)


def _is_null(value: object) -> bool:
    return value is None


# Fields that are harmless only while they hold their no-op value.
_NEUTRAL_WHEN: dict[str, Callable[[object], bool]] = {
    "logprobs": lambda v: v is None or v is False,
    "top_logprobs": lambda v: v is None or v == 0,
    "presence_penalty": lambda v: v is None or v == 0,
    "frequency_penalty": lambda v: v is None or v == 0,
    "logit_bias": lambda v: not v,
    "modalities": lambda v: v is None or v == ["text"],
    "verbosity": lambda v: v is None or v == "medium",
    "audio": _is_null,
    "prediction": _is_null,
    "functions": _is_null,
    "function_call": _is_null,
    "web_search_options": _is_null,
}


def unsupported_fields(body: dict[str, Any]) -> list[str]:
    """Body keys that would change the completion but have no canonical meaning, in body
    order: ``logit_bias`` with entries, ``logprobs: true``, a non-zero penalty, unknown
    keys. Fields at their no-op value (``logprobs: false``) are not listed."""
    found = []
    for key, value in body.items():
        if key in _MAPPED or key in _HARMLESS:
            continue
        neutral = _NEUTRAL_WHEN.get(key)
        if neutral is None or not neutral(value):
            found.append(key)
    return found
