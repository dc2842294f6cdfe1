"""The OpenAI chat and embeddings wire types the emulators read and write (Azure's additions too).

Requests are decoded leniently (unknown fields are ignored, as OpenAI ignores nothing but we
need only part of the schema); responses are encoded from Structs, with `UNSET` for the
fields that are absent rather than null (`usage` is null on stream chunks only when the
client asked for usage).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

# -- requests ---------------------------------------------------------------------------------


class ImageUrl(msgspec.Struct, frozen=True):
    url: str
    detail: str | None = None


class ContentPart(msgspec.Struct, frozen=True):
    """One part of a message's content: text, image_url, input_audio, file..."""

    type: str
    text: str | None = None
    image_url: ImageUrl | None = None


class FunctionCallIn(msgspec.Struct, frozen=True):
    name: str
    arguments: str = ""


class ToolCallIn(msgspec.Struct, frozen=True):
    id: str
    function: FunctionCallIn
    type: str = "function"


class Message(msgspec.Struct, frozen=True):
    role: str
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None


class FunctionDef(msgspec.Struct, frozen=True):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    """A JSON Schema, kept as plain data: it is arbitrary JSON by definition."""
    strict: bool | None = None


class Tool(msgspec.Struct, frozen=True):
    function: FunctionDef
    type: str = "function"


class ToolChoiceFunction(msgspec.Struct, frozen=True):
    name: str


class ToolChoice(msgspec.Struct, frozen=True):
    function: ToolChoiceFunction
    type: str = "function"


class JsonSchemaFormat(msgspec.Struct, frozen=True):
    name: str
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


class ResponseFormat(msgspec.Struct, frozen=True):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class StreamOptions(msgspec.Struct, frozen=True):
    include_usage: bool = False


class ChatRequest(msgspec.Struct, frozen=True):
    messages: list[Message]
    model: str = ""
    """Required by OpenAI; optional for Azure, where the deployment in the path decides."""
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = 1
    stop: str | list[str] | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    tools: list[Tool] | None = None
    tool_choice: str | ToolChoice | None = None
    response_format: ResponseFormat | None = None


class EmbeddingRequest(msgspec.Struct, frozen=True):
    input: str | list[str | int | list[int]]
    model: str = ""
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    user: str | None = None


# -- Azure content filter annotations --------------------------------------------------------


class SeverityResult(msgspec.Struct, frozen=True):
    filtered: bool = False
    severity: str = "safe"


class DetectionResult(msgspec.Struct, frozen=True):
    filtered: bool = False
    detected: bool = False


class ContentFilterResults(msgspec.Struct, frozen=True):
    hate: SeverityResult = SeverityResult()
    self_harm: SeverityResult = SeverityResult()
    sexual: SeverityResult = SeverityResult()
    violence: SeverityResult = SeverityResult()
    jailbreak: DetectionResult | UnsetType = UNSET


class PromptFilterResult(msgspec.Struct, frozen=True):
    prompt_index: int
    content_filter_results: ContentFilterResults


# -- responses --------------------------------------------------------------------------------


class PromptTokensDetails(msgspec.Struct, frozen=True):
    cached_tokens: int = 0
    audio_tokens: int = 0


class CompletionTokensDetails(msgspec.Struct, frozen=True):
    reasoning_tokens: int = 0
    audio_tokens: int = 0
    accepted_prediction_tokens: int = 0
    rejected_prediction_tokens: int = 0


class Usage(msgspec.Struct, frozen=True):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails = PromptTokensDetails()
    completion_tokens_details: CompletionTokensDetails = CompletionTokensDetails()


class EmbeddingUsage(msgspec.Struct, frozen=True):
    prompt_tokens: int
    total_tokens: int


class FunctionCallOut(msgspec.Struct, frozen=True):
    name: str
    arguments: str


class ToolCallOut(msgspec.Struct, frozen=True):
    id: str
    function: FunctionCallOut
    type: str = "function"


class MessageOut(msgspec.Struct, frozen=True):
    content: str | None
    role: str = "assistant"
    refusal: None = None
    annotations: list[str] = []
    tool_calls: list[ToolCallOut] | UnsetType = UNSET


class ChoiceOut(msgspec.Struct, frozen=True):
    index: int
    message: MessageOut
    finish_reason: str
    logprobs: None = None
    content_filter_results: ContentFilterResults | UnsetType = UNSET


class ChatCompletion(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    object: str = "chat.completion"
    created: int
    model: str
    choices: list[ChoiceOut]
    usage: Usage
    service_tier: str = "default"
    system_fingerprint: str
    prompt_filter_results: list[PromptFilterResult] | UnsetType = UNSET


class FunctionDelta(msgspec.Struct, frozen=True):
    arguments: str
    name: str | UnsetType = UNSET


class ToolCallDelta(msgspec.Struct, frozen=True):
    index: int
    function: FunctionDelta
    id: str | UnsetType = UNSET
    type: str | UnsetType = UNSET


class Delta(msgspec.Struct, frozen=True):
    role: str | UnsetType = UNSET
    content: str | UnsetType | None = UNSET
    refusal: UnsetType | None = UNSET
    tool_calls: list[ToolCallDelta] | UnsetType = UNSET


class ChunkChoice(msgspec.Struct, frozen=True):
    index: int
    delta: Delta
    finish_reason: str | None = None
    logprobs: None = None
    content_filter_results: ContentFilterResults | UnsetType = UNSET


class ChatChunk(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    object: str = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    service_tier: str | UnsetType = "default"
    system_fingerprint: str | UnsetType
    usage: Usage | UnsetType | None = UNSET
    prompt_filter_results: list[PromptFilterResult] | UnsetType = UNSET


class EmbeddingOut(msgspec.Struct, frozen=True):
    index: int
    embedding: list[float] | str
    object: str = "embedding"


class EmbeddingList(msgspec.Struct, frozen=True):
    data: list[EmbeddingOut]
    model: str
    usage: EmbeddingUsage
    object: str = "list"


class InnerError(msgspec.Struct, frozen=True):
    code: str
    content_filter_result: ContentFilterResults


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True):
    """OpenAI's error object; Azure adds `status` and `innererror` on some errors."""

    message: str
    type: str | None
    param: str | None = None
    code: str | None = None
    status: int | UnsetType = UNSET
    innererror: InnerError | UnsetType = UNSET


class AzureErrorDetail(msgspec.Struct, frozen=True):
    """Azure's own (non-OpenAI) error object; note that `code` is a string even for 429."""

    code: str
    message: str


class ErrorBody(msgspec.Struct, frozen=True):
    error: ErrorDetail | AzureErrorDetail


class ModelEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    object: str = "model"
    created: int
    owned_by: str = "system"


class AzureCapabilities(msgspec.Struct, frozen=True, kw_only=True):
    chat_completion: bool
    embeddings: bool
    completion: bool = False
    fine_tune: bool = False
    inference: bool = True


class AzureModelEntry(msgspec.Struct, frozen=True, kw_only=True):
    """Azure's `/openai/models` item: `created_at` and capabilities, no `owned_by`."""

    id: str
    object: str = "model"
    created_at: int
    status: str = "succeeded"
    lifecycle_status: str = "generally-available"
    capabilities: AzureCapabilities


class ModelList(msgspec.Struct, frozen=True):
    data: list[ModelEntry] | list[AzureModelEntry]
    object: str = "list"
