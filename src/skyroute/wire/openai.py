"""OpenAI chat completions on the wire: what the gateway reads, rewrites and writes.

This is the fast path for OpenAI-family hops (OpenAI in; OpenAI, Azure or any compatible
server out). The body is decoded once, checked for the few fields the gateway acts on,
and re-encoded with only ``model`` and ``stream_options`` changed. Responses are not
rebuilt: a small probe Struct picks usage, finish reasons and in-band errors out of them
while msgspec validates the JSON it skips.

Pure functions only: no I/O, no clock, no logging.
"""

from __future__ import annotations

from typing import Any

import msgspec

from skyroute.core.errors import GatewayError, InvalidRequest, UpstreamProtocolError
from skyroute.core.usage import Usage

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})

# Fields that would let a caller pick the upstream host or credentials. Accepting them
# is how other gateways leaked provider keys (SSRF through api_base); we refuse them.
_FORBIDDEN = frozenset(
    {
        "api_base",
        "base_url",
        "api_key",
        "api_version",
        "azure_endpoint",
        "azure_ad_token",
        "endpoint",
        "organization",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "aws_region_name",
        "vertex_project",
        "vertex_location",
        "vertex_credentials",
        "custom_llm_provider",
        "extra_headers",
    }
)
# Top-level fields whose nested keys are user data (schemas, prompts), not options.
_USER_DATA_FIELDS = frozenset({"messages", "tools", "functions", "response_format", "tool_choice"})

_decode_any = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()


class ChatRequest(msgspec.Struct, kw_only=True):
    """An inbound chat request: the decoded body plus the fields the gateway acts on."""

    body: dict[str, Any]
    model: str
    stream: bool
    include_usage: bool
    prompt_chars: int
    canonical: object = None
    """The canonical form, filled in once by the first translating provider to need it."""


def parse_chat_request(raw: bytes) -> ChatRequest:
    """Decode and check an OpenAI chat completions body; raise ``InvalidRequest``."""
    body = decode_json_object(raw)
    model = body.get("model")
    if model is None:
        raise InvalidRequest("Missing required parameter: 'model'.", param="model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' must be a non-empty string.", param="model")
    prompt_chars = _check_messages(body.get("messages"))
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object.", param="stream_options")
    include_usage = bool(options and options.get("include_usage") is True)
    _refuse_routing_overrides(body)
    return ChatRequest(
        body=body,
        model=model,
        stream=stream,
        include_usage=include_usage,
        prompt_chars=prompt_chars,
    )


def decode_json_object(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise InvalidRequest("The request body is empty; expected a JSON object.")
    try:
        body = _decode_any.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise InvalidRequest("The request body is nested too deeply.") from None
    except ValueError:
        # e.g. integers past Python's digit limit
        raise InvalidRequest("The request body holds a value out of range.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


def _check_messages(messages: object) -> int:
    """Validate the shape the gateway relies on; returns a rough prompt size in chars."""
    if messages is None:
        raise InvalidRequest("Missing required parameter: 'messages'.", param="messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array.", param="messages")
    chars = 0
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(f"'messages[{i}]' must be an object.", param=f"messages[{i}]")
        role = message.get("role")
        if role not in _ROLES:
            raise InvalidRequest(
                f"'messages[{i}].role' must be one of {', '.join(sorted(_ROLES))}.",
                param=f"messages[{i}].role",
            )
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    chars += len(part["text"])
    return chars


def _refuse_routing_overrides(body: dict[str, Any]) -> None:
    for key, value in body.items():
        if key in _FORBIDDEN:
            raise InvalidRequest(f"Parameter not allowed: '{key}'.", param=key)
        if key in _USER_DATA_FIELDS or not isinstance(value, dict):
            continue
        for nested in value:
            if nested in _FORBIDDEN:
                raise InvalidRequest(
                    f"Parameter not allowed: '{key}.{nested}'.", param=f"{key}.{nested}"
                )


def upstream_chat_body(request: ChatRequest, model: str) -> bytes:
    """The body to send upstream: the client's, with the deployment's model and, for
    streams, usage switched on so every stream can be accounted for."""
    body = request.body
    if request.stream:
        options = dict(body.get("stream_options") or {})
        options["include_usage"] = True
        body = {**body, "model": model, "stream_options": options}
    else:
        body = {**body, "model": model}
    return _encode.encode(body)


# --- responses ----------------------------------------------------------------------

# msgspec cannot decode ``Raw | None``; an empty Raw stands for "field absent".
_ABSENT = msgspec.Raw()


def _present(raw: msgspec.Raw) -> bool:
    """Whether a probed field was sent with a value (absent and ``null`` are not)."""
    return len(raw) > 0 and bytes(raw) != b"null"


class _ChoiceProbe(msgspec.Struct):
    index: int = 0
    finish_reason: str | None = None


class _ResponseProbe(msgspec.Struct):
    choices: list[_ChoiceProbe] = []
    usage: Usage | None = None
    error: msgspec.Raw = _ABSENT


_response_probe = msgspec.json.Decoder(_ResponseProbe)


def probe_response(raw: bytes) -> Usage | None:
    """Validate a non-stream 200 body and return its usage; the body itself is relayed."""
    try:
        probe = _response_probe.decode(raw)
    except (msgspec.DecodeError, ValueError):
        raise UpstreamProtocolError("The upstream returned a malformed response.") from None
    if _present(probe.error):
        raise UpstreamProtocolError("The upstream returned an error in a success response.")
    return probe.usage


class ChunkProbe(msgspec.Struct):
    choices: list[_ChoiceProbe] = []
    usage: Usage | None = None
    error: msgspec.Raw = _ABSENT

    @property
    def failed(self) -> bool:
        """The chunk is an in-band error (``{"error": {...}}``)."""
        return _present(self.error)


_chunk_probe = msgspec.json.Decoder(ChunkProbe)


class _DeltaProbe(msgspec.Struct):
    content: str | None = None
    refusal: str | None = None
    reasoning: str | None = None
    reasoning_content: str | None = None
    tool_calls: msgspec.Raw = _ABSENT


class _OpeningChoice(msgspec.Struct):
    delta: _DeltaProbe | None = None
    finish_reason: str | None = None


class _OpeningProbe(msgspec.Struct):
    choices: list[_OpeningChoice] = []
    usage: Usage | None = None
    error: msgspec.Raw = _ABSENT


_opening_probe = msgspec.json.Decoder(_OpeningProbe)


def chunk_carries_output(data: bytes) -> bool:
    """Whether a stream chunk holds model output (text, a tool call, reasoning, a finish
    or usage) rather than preliminaries such as a role-only delta or Azure's
    ``prompt_filter_results`` chunk. ``ValueError`` if malformed; in-band errors count as
    output so the caller sees them."""
    try:
        probe = _opening_probe.decode(data)
    except msgspec.DecodeError as exc:
        raise ValueError(str(exc)) from None
    if _present(probe.error) or probe.usage is not None:
        return True
    for choice in probe.choices:
        delta = choice.delta
        if choice.finish_reason is not None:
            return True
        if delta is not None and (
            delta.content
            or delta.refusal
            or delta.reasoning
            or delta.reasoning_content
            or _present(delta.tool_calls)
        ):
            return True
    return False


def probe_chunk(data: bytes) -> ChunkProbe:
    """Read what accounting needs from one stream chunk; ``ValueError`` if malformed."""
    try:
        return _chunk_probe.decode(data)
    except msgspec.DecodeError as exc:
        raise ValueError(str(exc)) from None


# --- errors -------------------------------------------------------------------------


class _ErrorBody(msgspec.Struct):
    message: str
    type: str
    param: str | None
    code: str | None


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorBody


def error_body(error: GatewayError) -> bytes:
    """``{"error": {"message", "type", "param", "code"}}``, as OpenAI writes it."""
    return _encode.encode(
        _ErrorEnvelope(_ErrorBody(error.message, error.error_type, error.param, error.code))
    )


def error_event(error: GatewayError) -> bytes:
    """An in-band stream error: the OpenAI SDK raises ``APIError`` when it reads one."""
    return b"data: " + error_body(error) + b"\n\n"


DONE_EVENT = b"data: [DONE]\n\n"
