"""Gemini response bodies and `alt=sse` streams, built from a `GeminiAnswer`. Pure: bytes out.

A stream (`streamGenerateContent?alt=sse`) is one `data: <GenerateContentResponse>\\r\\n\\r\\n`
event per thought word, answer word or function call (Gemini sends a call whole), each with
only its new part. The last event of a candidate carries its `finishReason`; the last event
of the stream also carries `usageMetadata`. There are no `event:` lines and no `[DONE]`
(protocols.md §4a). Without `alt=sse` Google answers the same responses as one JSON array.

countTokens, embedContent, batchEmbedContents, Vertex's `:predict` embeddings and the model
lists are here too. Embeddings are those of `embeddings.py`, 8 dimensions unless
`outputDimensionality` asks otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final

import msgspec
from msgspec import UNSET, UnsetType

from skyroute.emulators.chat import EventKind, StreamEvent
from skyroute.emulators.embeddings import DEFAULT_DIMENSIONS, embedding_vector
from skyroute.emulators.google_answer import CandidateAnswer, GeminiAnswer
from skyroute.emulators.google_wire import (
    BatchEmbedRequest,
    Candidate,
    Content,
    ContentOut,
    EmbedContentRequest,
    FunctionCallOut,
    GenerateContentResponse,
    ModalityCount,
    PartOut,
    SafetyRating,
    UsageMetadata,
)

__all__ = [
    "ResponseMeta",
    "batch_embed_body",
    "count_tokens_body",
    "embed_content_body",
    "generate_array",
    "generate_body",
    "generate_chunks",
    "model_info",
    "models_body",
    "predict_body",
    "publisher_models_body",
]

_ENCODER: Final = msgspec.json.Encoder()
_MAX_DIMENSIONS: Final = 4096
_BLOCKED: Final = [
    SafetyRating(category="HARM_CATEGORY_DANGEROUS_CONTENT", probability="HIGH", blocked=True)
]


class ResponseMeta(msgspec.Struct, frozen=True, kw_only=True):
    """What every response (or chunk) of one answer repeats; Vertex adds the last two."""

    model_version: str
    response_id: str
    create_time: str | UnsetType = UNSET
    traffic_type: str | UnsetType = UNSET


def _usage(meta: ResponseMeta, answer: GeminiAnswer) -> UsageMetadata:
    thoughts = len(answer.thoughts)
    candidates = answer.candidates_tokens
    return UsageMetadata(
        prompt_token_count=answer.prompt_tokens,
        candidates_token_count=candidates if candidates else UNSET,
        thoughts_token_count=thoughts if thoughts else UNSET,
        total_token_count=answer.prompt_tokens + candidates + thoughts,
        prompt_tokens_details=[ModalityCount(modality="TEXT", token_count=answer.prompt_tokens)],
        traffic_type=meta.traffic_type,
    )


def _call_part(candidate: CandidateAnswer) -> PartOut | None:
    call = candidate.call
    if call is None:
        return None
    function = FunctionCallOut(name=call.name, args=call.args, id=call.id)
    return PartOut(function_call=function, thought_signature=call.signature or UNSET)


def _parts(answer: GeminiAnswer, candidate: CandidateAnswer) -> list[PartOut]:
    parts: list[PartOut] = []
    if answer.show_thoughts and answer.thoughts:
        parts.append(PartOut(text="".join(answer.thoughts), thought=True))
    call = _call_part(candidate)
    if call is not None:
        parts.append(call)
    elif candidate.pieces:
        parts.append(PartOut(text="".join(candidate.pieces)))
    return parts


def _candidate(index: int, parts: list[PartOut], finish: str | None) -> Candidate:
    return Candidate(
        content=ContentOut(role="model", parts=parts) if parts else UNSET,
        finish_reason=finish if finish is not None else UNSET,
        index=index,
        safety_ratings=_BLOCKED if finish == "SAFETY" else UNSET,
    )


def _response(
    meta: ResponseMeta, candidates: list[Candidate], usage: UsageMetadata | UnsetType
) -> GenerateContentResponse:
    return GenerateContentResponse(
        candidates=candidates,
        usage_metadata=usage,
        model_version=meta.model_version,
        create_time=meta.create_time,
        response_id=meta.response_id,
    )


def generate_body(meta: ResponseMeta, answer: GeminiAnswer) -> bytes:
    candidates = [
        _candidate(index, _parts(answer, candidate), candidate.finish_reason)
        for index, candidate in enumerate(answer.candidates)
    ]
    return _ENCODER.encode(_response(meta, candidates, _usage(meta, answer)))


def _stream_parts(answer: GeminiAnswer, candidate: CandidateAnswer) -> list[PartOut | None]:
    """The parts of one candidate, one per event; None for an event without content."""
    parts: list[PartOut | None] = []
    if answer.show_thoughts:
        parts += [PartOut(text=word, thought=True) for word in answer.thoughts]
    call = _call_part(candidate)
    if call is not None:
        parts.append(call)
    else:
        parts += [PartOut(text=piece) for piece in candidate.pieces]
    return parts or [None]


def _responses(meta: ResponseMeta, answer: GeminiAnswer) -> list[GenerateContentResponse]:
    steps: list[tuple[int, PartOut | None, str | None]] = []
    for index, candidate in enumerate(answer.candidates):
        parts = _stream_parts(answer, candidate)
        steps += [(index, part, None) for part in parts[:-1]]
        steps.append((index, parts[-1], candidate.finish_reason))
    usage = _usage(meta, answer)
    return [
        _response(
            meta,
            [_candidate(index, [part] if part else [], finish)],
            usage if position == len(steps) - 1 else UNSET,
        )
        for position, (index, part, finish) in enumerate(steps)
    ]


def generate_chunks(meta: ResponseMeta, answer: GeminiAnswer) -> Iterator[StreamEvent]:
    """The `alt=sse` events; the last one (finish and usage) is the stream's tail."""
    responses = _responses(meta, answer)
    for position, response in enumerate(responses):
        kind = EventKind.TAIL if position == len(responses) - 1 else EventKind.CONTENT
        yield StreamEvent(b"data: " + _ENCODER.encode(response) + b"\r\n\r\n", kind)


def generate_array(meta: ResponseMeta, answer: GeminiAnswer) -> bytes:
    """streamGenerateContent without `alt=sse`: the chunks as one JSON array."""
    return _ENCODER.encode(_responses(meta, answer))


# -- countTokens ------------------------------------------------------------------------------


class _CountTokens(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    total_tokens: int
    total_billable_characters: int | UnsetType = UNSET
    prompt_tokens_details: list[ModalityCount]


def count_tokens_body(tokens: int, billable_characters: int | None) -> bytes:
    billable = UNSET if billable_characters is None else billable_characters
    details = [ModalityCount(modality="TEXT", token_count=tokens)]
    body = _CountTokens(
        total_tokens=tokens, total_billable_characters=billable, prompt_tokens_details=details
    )
    return _ENCODER.encode(body)


# -- embeddings -------------------------------------------------------------------------------


class _Statistics(msgspec.Struct, frozen=True):
    token_count: int
    truncated: bool = False


class Embedding(msgspec.Struct, frozen=True, omit_defaults=True):
    values: list[float]
    statistics: _Statistics | UnsetType = UNSET


class EmbedUsage(msgspec.Struct, frozen=True, rename="camel"):
    prompt_token_count: int


class EmbedContentResponse(msgspec.Struct, frozen=True, omit_defaults=True, rename="camel"):
    embedding: Embedding
    usage_metadata: EmbedUsage | UnsetType = UNSET
    truncated: bool | UnsetType = UNSET


class BatchEmbedResponse(msgspec.Struct, frozen=True):
    embeddings: list[Embedding]


class _Prediction(msgspec.Struct, frozen=True):
    embeddings: Embedding


class _PredictMetadata(msgspec.Struct, frozen=True, rename="camel"):
    billable_character_count: int


class PredictResponse(msgspec.Struct, frozen=True):
    predictions: list[_Prediction]
    metadata: _PredictMetadata


def content_text(content: Content | None) -> str:
    return " ".join(part.text for part in (content.parts if content else ()) if part.text)


def embedding_values(text: str, dimensions: int | None) -> list[float]:
    size = min(max(dimensions or DEFAULT_DIMENSIONS, 1), _MAX_DIMENSIONS)
    return embedding_vector(text, size)


def _dimensions(request: EmbedContentRequest) -> int | None:
    config = request.embed_content_config
    return request.output_dimensionality or (config.output_dimensionality if config else None)


def embed_content_body(request: EmbedContentRequest, *, vertex: bool) -> bytes:
    text = content_text(request.content)
    embedding = Embedding(embedding_values(text, _dimensions(request)))
    if not vertex:
        return _ENCODER.encode(EmbedContentResponse(embedding))
    usage = EmbedUsage(len(text.split()))
    return _ENCODER.encode(EmbedContentResponse(embedding, usage, truncated=False))


def batch_embed_body(request: BatchEmbedRequest) -> bytes:
    embeddings = [
        Embedding(embedding_values(content_text(item.content), _dimensions(item)))
        for item in request.requests
    ]
    return _ENCODER.encode(BatchEmbedResponse(embeddings))


def predict_body(texts: Sequence[str], dimensions: int | None) -> bytes:
    predictions = [
        _Prediction(Embedding(embedding_values(text, dimensions), _Statistics(len(text.split()))))
        for text in texts
    ]
    billable = sum(len(text.replace(" ", "")) for text in texts)
    return _ENCODER.encode(PredictResponse(predictions, _PredictMetadata(billable)))


# -- models -----------------------------------------------------------------------------------


_EMBED_METHODS: Final = ("embedContent", "batchEmbedContents")
_GENERATE_METHODS: Final = ("generateContent", "countTokens", "createCachedContent")


class _ModelInfo(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    name: str
    version: str = "001"
    display_name: str
    description: str
    input_token_limit: int
    output_token_limit: int
    supported_generation_methods: tuple[str, ...]
    thinking: bool


class _PublisherModel(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    name: str
    version_id: str = "001"
    open_source_category: str = "PROPRIETARY"
    launch_stage: str = "GA"


def model_info(model_id: str) -> bytes:
    return _ENCODER.encode(_model(model_id))


def _model(model_id: str) -> _ModelInfo:
    embeds = "embedding" in model_id
    methods = _EMBED_METHODS if embeds else _GENERATE_METHODS
    return _ModelInfo(
        name=f"models/{model_id}",
        display_name=model_id.replace("-", " ").title(),
        description=f"Emulated {model_id}",
        input_token_limit=2048 if embeds else 1_048_576,
        output_token_limit=1 if embeds else 65_536,
        supported_generation_methods=methods,
        thinking=not embeds,
    )


class _ModelList(msgspec.Struct, frozen=True):
    models: list[_ModelInfo]


class _PublisherModelList(msgspec.Struct, frozen=True, rename="camel"):
    publisher_models: list[_PublisherModel]


def models_body(model_ids: Sequence[str]) -> bytes:
    return _ENCODER.encode(_ModelList([_model(model_id) for model_id in model_ids]))


def publisher_models_body(model_ids: Sequence[str]) -> bytes:
    models = [_PublisherModel(name=f"publishers/google/models/{m}") for m in model_ids]
    return _ENCODER.encode(_PublisherModelList(models))
