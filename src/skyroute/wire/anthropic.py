"""Anthropic Messages on the wire: the canonical chat ⇄ Anthropic, both ways (protocols.md §6).

Upstream (skyroute calls Anthropic, Claude on Bedrock InvokeModel, Claude on Vertex
rawPredict):

- ``anthropic_request``  canonical request → Messages body (``to_anthropic``), and the
  wire Structs of the request shape;
- ``anthropic_response`` Message → canonical response (``from_anthropic``), and the
  stop-reason and usage mappings of protocols.md §8;
- ``anthropic_stream``   SSE events → canonical events (``AnthropicStreamTranslator``);
- ``anthropic_errors``   HTTP and in-band errors → the gateway's error tree.

Inbound (Anthropic SDK clients call skyroute's ``POST /v1/messages``):

- ``anthropic_inbound``  Messages request → canonical request (``parse_messages_request``);
- ``anthropic_response`` canonical response → Message (``response_to_anthropic``);
- ``anthropic_stream``   canonical events → SSE frames (``AnthropicEventWriter``);
- ``anthropic_errors``   the gateway's errors → Anthropic's error body and type.

All pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

from skyroute.wire.anthropic_errors import (
    error_body,
    error_type,
    map_anthropic_error,
    map_stream_error,
)
from skyroute.wire.anthropic_inbound import parse_messages_request
from skyroute.wire.anthropic_request import Dialect, to_anthropic
from skyroute.wire.anthropic_response import (
    from_anthropic,
    map_stop_reason,
    response_to_anthropic,
    stop_reason_out,
    to_usage,
    usage_out,
)
from skyroute.wire.anthropic_stream import AnthropicEventWriter, AnthropicStreamTranslator

__all__ = [
    "AnthropicEventWriter",
    "AnthropicStreamTranslator",
    "Dialect",
    "error_body",
    "error_type",
    "from_anthropic",
    "map_anthropic_error",
    "map_stop_reason",
    "map_stream_error",
    "parse_messages_request",
    "response_to_anthropic",
    "stop_reason_out",
    "to_anthropic",
    "to_usage",
    "usage_out",
]
