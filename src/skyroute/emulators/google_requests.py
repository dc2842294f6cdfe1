"""Reading request bodies for the Google emulators, refusing them as the real service would.

Gemini bodies (every `models/...:method`) are decoded to plain JSON, their field names
normalised to lowerCamel (`google_wire.camelized`), converted to Structs and, for
generateContent, checked by `google_answer.check_generate`; a failure is Google's 400
INVALID_ARGUMENT. The OpenAI-compatible endpoint reads OpenAI's chat body, with Google-shaped
errors. Claude on Vertex reads Anthropic's Messages body through `bedrock_invoke.read_invoke`
(the same model behind another door) after taking off what Vertex adds: `stream` (kept in the
body by `:streamRawPredict`) and, for `count-tokens:rawPredict`, `model`; a failure is
Anthropic's 400 `invalid_request_error`.
"""

from __future__ import annotations

from typing import Any, Final, TypeVar, assert_never

import msgspec

from skyroute.emulators.anthropic_messages import anthropic_error_body
from skyroute.emulators.base import Refused
from skyroute.emulators.bedrock_invoke import InvokeRejected, read_invoke
from skyroute.emulators.bedrock_invoke_wire import InvokeRequest
from skyroute.emulators.dialect import Reply
from skyroute.emulators.google_answer import GeminiRejected, check_generate
from skyroute.emulators.google_errors import google_error
from skyroute.emulators.google_routes import Endpoint, Route
from skyroute.emulators.google_wire import (
    BatchEmbedRequest,
    CountTokensRequest,
    EmbedContentRequest,
    GenerateContentRequest,
    PredictRequest,
    camelized,
)
from skyroute.emulators.openai_wire import ChatRequest

__all__ = ["Body", "ClaudeBody", "Refused", "read_body"]

_S = TypeVar("_S", bound=msgspec.Struct)
_ENCODER: Final = msgspec.json.Encoder()
_CHAT_DECODER: Final = msgspec.json.Decoder(ChatRequest)
_GOOGLE_TYPES: Final[dict[Endpoint, type[msgspec.Struct]]] = {
    Endpoint.GENERATE: GenerateContentRequest,
    Endpoint.STREAM: GenerateContentRequest,
    Endpoint.COUNT_TOKENS: CountTokensRequest,
    Endpoint.EMBED: EmbedContentRequest,
    Endpoint.BATCH_EMBED: BatchEmbedRequest,
    Endpoint.PREDICT: PredictRequest,
}


class ClaudeBody(msgspec.Struct, frozen=True):
    invoke: InvokeRequest
    chat: ChatRequest


Body = (
    GenerateContentRequest
    | CountTokensRequest
    | EmbedContentRequest
    | BatchEmbedRequest
    | PredictRequest
    | ChatRequest
    | ClaudeBody
    | None
)


def _invalid(message: str) -> Refused:
    return Refused(google_error(400, message))


def read_body(route: Route, body: bytes) -> tuple[Body, str | None]:
    """The decoded body and the model it is for; raises Refused."""
    endpoint = route.endpoint
    match endpoint:
        case Endpoint.MODELS | Endpoint.MODEL | Endpoint.TOKEN:
            return None, route.model
        case Endpoint.OPENAI_CHAT:
            chat = _openai_chat(body)
            return chat, chat.model
        case Endpoint.CLAUDE | Endpoint.CLAUDE_STREAM | Endpoint.CLAUDE_COUNT:
            return _claude(route, body)
        case (
            Endpoint.GENERATE
            | Endpoint.STREAM
            | Endpoint.COUNT_TOKENS
            | Endpoint.EMBED
            | Endpoint.BATCH_EMBED
            | Endpoint.PREDICT
        ):
            decoded = _google(body, _GOOGLE_TYPES[endpoint])
            if isinstance(decoded, GenerateContentRequest):
                try:
                    check_generate(decoded, route.model or "")
                except GeminiRejected as error:
                    raise Refused(google_error(400, str(error)), route.model) from None
            return decoded, route.model  # type: ignore[return-value]
        case _:
            assert_never(endpoint)


def _google(body: bytes, type_: type[_S]) -> _S:
    try:
        raw = msgspec.json.decode(body) if body.strip() else {}
    except msgspec.DecodeError as error:
        raise _invalid(f"Invalid JSON payload received. {error}") from None
    if not isinstance(raw, dict):
        raise _invalid("Invalid JSON payload received. Expected an object.")
    try:
        return msgspec.convert(camelized(raw), type_)
    except msgspec.ValidationError as error:
        raise _invalid(f"Invalid JSON payload received. {error}") from None


def _openai_chat(body: bytes) -> ChatRequest:
    try:
        chat = _CHAT_DECODER.decode(body)
    except msgspec.DecodeError as error:
        raise _invalid(f"Invalid JSON payload received. {error}") from None
    if not chat.messages:
        raise _invalid("messages: at least one message is required")
    if "/" not in chat.model:
        # The endpoint serves many publishers' models, so the name carries its publisher.
        message = f"Model name must be publisher/model (google/gemini-2.5-flash): {chat.model!r}."
        raise Refused(google_error(400, message), chat.model or None)
    return chat


def _claude(route: Route, body: bytes) -> tuple[ClaudeBody, str | None]:
    try:
        raw: Any = msgspec.json.decode(body)
    except msgspec.DecodeError as error:
        raise _claude_invalid(f"Invalid JSON: {error}", route.model) from None
    if not isinstance(raw, dict):
        raise _claude_invalid("Request body must be a JSON object.", route.model)
    raw.pop("stream", None)
    model = route.model
    if route.endpoint is Endpoint.CLAUDE_COUNT:
        model = raw.pop("model", None)
        raw.setdefault("max_tokens", 1)  # counting needs no limit; read_invoke wants one
    try:
        invoke, chat = read_invoke(_ENCODER.encode(raw))
    except InvokeRejected as error:
        raise _claude_invalid(str(error), model) from None
    return ClaudeBody(invoke, chat), model


def _claude_invalid(message: str, model: str | None) -> Refused:
    return Refused(Reply(400, anthropic_error_body("invalid_request_error", message)), model)
