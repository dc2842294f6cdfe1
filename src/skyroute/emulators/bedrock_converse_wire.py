"""The Converse and ConverseStream wire types (botocore's bedrock-runtime 2023-09-30 model).

Field names are camelCase on the wire (`rename="camel"`). The request rejects unknown
top-level members, as Bedrock does; inside it, only the parts the emulator reads are typed,
and a union such as `ContentBlock` is a Struct of optional members, exactly one of which must
be set (checked in `bedrock_converse.py`). JSON Schemas and model-native fields are arbitrary
JSON by definition and stay plain data. Response and event Structs leave out unset members.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

__all__ = [
    "ContentBlock",
    "ConverseRequest",
    "ConverseResponse",
    "Message",
    "OutBlock",
]


class _In(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    pass


class _Out(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    pass


# -- request ----------------------------------------------------------------------------------


class ImageSource(_In, frozen=True, kw_only=True):
    data: bytes | None = msgspec.field(default=None, name="bytes")  # base64 in JSON
    s3_location: dict[str, Any] | None = None


class ImageBlock(_In, frozen=True, kw_only=True):
    format: Literal["png", "jpeg", "gif", "webp"]
    source: ImageSource


class ToolUseBlock(_In, frozen=True, kw_only=True):
    tool_use_id: str
    name: str
    input: Any


class ToolResultContent(_In, frozen=True, kw_only=True):
    text: str | None = None
    json: Any = UNSET
    image: ImageBlock | None = None
    document: dict[str, Any] | None = None


class ToolResultBlock(_In, frozen=True, kw_only=True):
    tool_use_id: str
    content: list[ToolResultContent]
    status: Literal["success", "error"] | None = None


class ReasoningText(_In, frozen=True, kw_only=True):
    text: str
    signature: str | None = None


class ReasoningBlock(_In, frozen=True, kw_only=True):
    reasoning_text: ReasoningText | None = None
    redacted_content: str | None = None  # base64


class ContentBlock(_In, frozen=True, kw_only=True):
    """A union: exactly one member is set."""

    text: str | None = None
    image: ImageBlock | None = None
    document: dict[str, Any] | None = None
    video: dict[str, Any] | None = None
    audio: dict[str, Any] | None = None
    tool_use: ToolUseBlock | None = None
    tool_result: ToolResultBlock | None = None
    reasoning_content: ReasoningBlock | None = None
    cache_point: dict[str, Any] | None = None
    guard_content: dict[str, Any] | None = None
    citations_content: dict[str, Any] | None = None
    search_result: dict[str, Any] | None = None


class Message(_In, frozen=True, kw_only=True):
    role: Literal["user", "assistant"]
    content: list[ContentBlock]


class SystemBlock(_In, frozen=True, kw_only=True):
    text: str | None = None
    cache_point: dict[str, Any] | None = None
    guard_content: dict[str, Any] | None = None


class InferenceConfig(_In, frozen=True, kw_only=True):
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop_sequences: list[str] | None = None


class InputSchema(_In, frozen=True, kw_only=True):
    json: dict[str, Any]


class ToolSpec(_In, frozen=True, kw_only=True):
    name: str
    input_schema: InputSchema
    description: str | None = None
    strict: bool | None = None


class ToolEntry(_In, frozen=True, kw_only=True):
    tool_spec: ToolSpec | None = None
    cache_point: dict[str, Any] | None = None


class SpecificTool(_In, frozen=True, kw_only=True):
    name: str


class ToolChoice(_In, frozen=True, kw_only=True):
    auto: dict[str, Any] | None = None
    any: dict[str, Any] | None = None
    tool: SpecificTool | None = None


class ToolConfig(_In, frozen=True, kw_only=True):
    tools: list[ToolEntry]
    tool_choice: ToolChoice | None = None


class JsonSchemaStructure(_In, frozen=True, kw_only=True):
    schema: str
    """The schema as a JSON *string*, as the service model declares it."""
    name: str | None = None
    description: str | None = None


class FormatStructure(_In, frozen=True, kw_only=True):
    json_schema: JsonSchemaStructure


class TextFormat(_In, frozen=True, kw_only=True):
    type: Literal["json_schema"]
    structure: FormatStructure


class OutputConfig(_In, frozen=True, kw_only=True):
    text_format: TextFormat | None = None
    effort: str | None = None


class ConverseRequest(_In, frozen=True, kw_only=True, forbid_unknown_fields=True):
    messages: list[Message] = []
    system: list[SystemBlock] = []
    inference_config: InferenceConfig = InferenceConfig()
    tool_config: ToolConfig | None = None
    output_config: OutputConfig | None = None
    additional_model_request_fields: dict[str, Any] | None = None
    """Model-native fields, passed through to the model as they are."""
    additional_model_response_field_paths: list[str] | None = None
    guardrail_config: dict[str, Any] | None = None
    performance_config: dict[str, Any] | None = None
    service_tier: dict[str, Any] | None = None
    request_metadata: dict[str, str] | None = None
    prompt_variables: dict[str, Any] | None = None
    project_identifier: str | None = None


# -- response ---------------------------------------------------------------------------------


class OutToolUse(_Out, frozen=True, kw_only=True):
    tool_use_id: str
    name: str
    input: Any


class OutReasoningText(_Out, frozen=True, kw_only=True):
    text: str
    signature: str | UnsetType = UNSET


class OutReasoning(_Out, frozen=True, kw_only=True):
    reasoning_text: OutReasoningText


class OutBlock(_Out, frozen=True, kw_only=True):
    text: str | UnsetType = UNSET
    tool_use: OutToolUse | UnsetType = UNSET
    reasoning_content: OutReasoning | UnsetType = UNSET


class OutMessage(_Out, frozen=True, kw_only=True):
    role: str
    content: list[OutBlock]


class Output(_Out, frozen=True, kw_only=True):
    message: OutMessage


class TokenUsage(_Out, frozen=True, kw_only=True):
    input_tokens: int
    output_tokens: int
    total_tokens: int


class Metrics(_Out, frozen=True, kw_only=True):
    latency_ms: int


class ConverseResponse(_Out, frozen=True, kw_only=True):
    output: Output
    stop_reason: str
    usage: TokenUsage
    metrics: Metrics


# -- stream events: each is the payload of the event-stream message named in the comment ------


class MessageStartEvent(_Out, frozen=True, kw_only=True):  # messageStart
    role: str
    p: str


class ToolUseStart(_Out, frozen=True, kw_only=True):
    tool_use_id: str
    name: str


class BlockStart(_Out, frozen=True, kw_only=True):
    tool_use: ToolUseStart


class ContentBlockStartEvent(_Out, frozen=True, kw_only=True):  # contentBlockStart
    content_block_index: int
    start: BlockStart
    p: str


class ToolUseDelta(_Out, frozen=True, kw_only=True):
    input: str


class ReasoningDelta(_Out, frozen=True, kw_only=True):
    text: str | UnsetType = UNSET
    signature: str | UnsetType = UNSET


class BlockDelta(_Out, frozen=True, kw_only=True):
    text: str | UnsetType = UNSET
    tool_use: ToolUseDelta | UnsetType = UNSET
    reasoning_content: ReasoningDelta | UnsetType = UNSET


class ContentBlockDeltaEvent(_Out, frozen=True, kw_only=True):  # contentBlockDelta
    content_block_index: int
    delta: BlockDelta
    p: str


class ContentBlockStopEvent(_Out, frozen=True, kw_only=True):  # contentBlockStop
    content_block_index: int
    p: str


class MessageStopEvent(_Out, frozen=True, kw_only=True):  # messageStop
    stop_reason: str
    p: str


class MetadataEvent(_Out, frozen=True, kw_only=True):  # metadata
    usage: TokenUsage
    metrics: Metrics
    p: str
