"""The Gemini wire types (generateContent, countTokens, embeddings) the Google emulators use.

Google's proto-JSON parser accepts both `lowerCamel` and `snake_case` field names, and
google-genai 3.6.1 sends a mix of them (`inlineData.mime_type`,
`thinkingConfig.include_thoughts`, `functionDeclarations[].parameters_json_schema`; see
protocols.md §0.2). So a body is first decoded to plain data, its keys normalised with
`camelized`, and only then converted into these Structs. Requests are read leniently (unknown
fields are ignored); responses omit every field left UNSET, as Google does.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from msgspec import UNSET, UnsetType

__all__ = [
    "BatchEmbedRequest",
    "Candidate",
    "Content",
    "ContentOut",
    "CountTokensRequest",
    "EmbedContentRequest",
    "FunctionCallOut",
    "GenerateContentRequest",
    "GenerateContentResponse",
    "ModalityCount",
    "Part",
    "PartOut",
    "PredictRequest",
    "PromptFeedback",
    "SafetyRating",
    "UsageMetadata",
    "camelized",
]

# Values that are the caller's own JSON (function arguments and results, JSON Schemas,
# examples): their keys are data, never field names, so they are left exactly as sent.
_OPAQUE: Final = frozenset(
    {"args", "response", "parametersJsonSchema", "responseJsonSchema", "labels", "example",
     "default", "enum", "metadata"}
)  # fmt: skip
# Google's own Schema messages: field names are normalised, but the names under
# `properties` are the caller's.
_SCHEMAS: Final = frozenset({"parameters", "responseSchema"})


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def camelized(value: Any, *, in_schema: bool = False) -> Any:
    """The same JSON value with every field name in lowerCamel (see the module docstring)."""
    if isinstance(value, list):
        return [camelized(item, in_schema=in_schema) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = _camel(key) if isinstance(key, str) else key
        if name in _OPAQUE:
            out[name] = item
        elif in_schema and name == "properties" and isinstance(item, dict):
            out[name] = {k: camelized(v, in_schema=True) for k, v in item.items()}
        else:
            out[name] = camelized(item, in_schema=in_schema or name in _SCHEMAS)
    return out


class _In(msgspec.Struct, frozen=True, rename="camel"):
    pass


class _Out(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    pass


# -- requests ---------------------------------------------------------------------------------


class Blob(_In, frozen=True):
    mime_type: str = ""
    data: str = ""


class FileData(_In, frozen=True):
    mime_type: str = ""
    file_uri: str = ""


class FunctionCall(_In, frozen=True):
    name: str = ""
    args: dict[str, Any] | None = None
    id: str | None = None


class FunctionResponse(_In, frozen=True):
    name: str = ""
    response: dict[str, Any] | None = None
    id: str | None = None


class Part(_In, frozen=True):
    text: str | None = None
    inline_data: Blob | None = None
    file_data: FileData | None = None
    function_call: FunctionCall | None = None
    function_response: FunctionResponse | None = None
    thought: bool | None = None
    thought_signature: str | None = None


class Content(_In, frozen=True):
    parts: list[Part] = []
    role: str | None = None


class FunctionDeclaration(_In, frozen=True):
    name: str = ""
    description: str | None = None
    parameters: dict[str, Any] | None = None
    parameters_json_schema: dict[str, Any] | None = None


class Tool(_In, frozen=True):
    function_declarations: list[FunctionDeclaration] | None = None


class FunctionCallingConfig(_In, frozen=True):
    mode: str | None = None
    allowed_function_names: list[str] | None = None


class ToolConfig(_In, frozen=True):
    function_calling_config: FunctionCallingConfig | None = None


class ThinkingConfig(_In, frozen=True):
    include_thoughts: bool | None = None
    thinking_budget: int | None = None
    thinking_level: str | None = None


class GenerationConfig(_In, frozen=True):
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    stop_sequences: list[str] | None = None
    candidate_count: int | None = None
    response_mime_type: str | None = None
    response_schema: dict[str, Any] | None = None
    response_json_schema: dict[str, Any] | None = None
    thinking_config: ThinkingConfig | None = None


class GenerateContentRequest(_In, frozen=True):
    contents: list[Content] = []
    system_instruction: Content | None = None
    tools: list[Tool] | None = None
    tool_config: ToolConfig | None = None
    generation_config: GenerationConfig | None = None
    cached_content: str | None = None


class CountTokensRequest(_In, frozen=True):
    contents: list[Content] = []
    system_instruction: Content | None = None
    tools: list[Tool] | None = None
    generate_content_request: GenerateContentRequest | None = None


class EmbedConfig(_In, frozen=True):
    output_dimensionality: int | None = None
    task_type: str | None = None


class EmbedContentRequest(_In, frozen=True):
    content: Content | None = None
    model: str | None = None
    output_dimensionality: int | None = None
    embed_content_config: EmbedConfig | None = None
    """Vertex puts the options here; the Gemini API at the top level."""


class BatchEmbedRequest(_In, frozen=True):
    requests: list[EmbedContentRequest] = []


class PredictInstance(_In, frozen=True):
    content: str = ""


class PredictParameters(_In, frozen=True):
    output_dimensionality: int | None = None


class PredictRequest(_In, frozen=True):
    """Vertex's `:predict` for the text-embedding-00x models."""

    instances: list[PredictInstance] = []
    parameters: PredictParameters | None = None


# -- responses --------------------------------------------------------------------------------


class FunctionCallOut(_Out, frozen=True, kw_only=True):
    name: str
    args: dict[str, Any]
    id: str | UnsetType = UNSET


class PartOut(_Out, frozen=True, kw_only=True):
    text: str | UnsetType = UNSET
    thought: bool | UnsetType = UNSET
    function_call: FunctionCallOut | UnsetType = UNSET
    thought_signature: str | UnsetType = UNSET


class ContentOut(_Out, frozen=True, kw_only=True):
    role: str  # no default: `omit_defaults` would drop it, and the SDK needs it in history
    parts: list[PartOut]


class SafetyRating(_Out, frozen=True, kw_only=True):
    category: str
    probability: str
    blocked: bool | UnsetType = UNSET


class Candidate(_Out, frozen=True, kw_only=True):
    content: ContentOut | UnsetType = UNSET
    finish_reason: str | UnsetType = UNSET
    index: int
    safety_ratings: list[SafetyRating] | UnsetType = UNSET


class ModalityCount(_Out, frozen=True, kw_only=True):
    modality: str
    token_count: int


class UsageMetadata(_Out, frozen=True, kw_only=True):
    prompt_token_count: int
    candidates_token_count: int | UnsetType = UNSET
    total_token_count: int
    thoughts_token_count: int | UnsetType = UNSET
    prompt_tokens_details: list[ModalityCount] | UnsetType = UNSET
    traffic_type: str | UnsetType = UNSET


class PromptFeedback(_Out, frozen=True, kw_only=True):
    block_reason: str
    safety_ratings: list[SafetyRating] | UnsetType = UNSET


class GenerateContentResponse(_Out, frozen=True, kw_only=True):
    candidates: list[Candidate] | UnsetType = UNSET
    prompt_feedback: PromptFeedback | UnsetType = UNSET
    usage_metadata: UsageMetadata | UnsetType = UNSET
    model_version: str
    create_time: str | UnsetType = UNSET
    response_id: str
