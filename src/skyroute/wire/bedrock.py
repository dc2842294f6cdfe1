"""Bedrock Converse on the wire: the canonical chat ⇄ Converse / ConverseStream.

One import point for the four halves, each a module of its own:

- ``bedrock_request``  canonical request → Converse body (``to_converse``);
- ``bedrock_response`` Converse body → canonical response (``from_converse``), and the
  stopReason and usage mappings of protocols.md §8;
- ``bedrock_stream``   ConverseStream events → canonical stream events;
- ``bedrock_errors``   HTTP and in-stream Bedrock errors → the gateway's error tree.

All pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

from skyroute.wire.bedrock_errors import map_bedrock_error, map_stream_exception
from skyroute.wire.bedrock_request import model_family, to_converse
from skyroute.wire.bedrock_response import from_converse, map_stop_reason, to_usage
from skyroute.wire.bedrock_stream import ConverseStreamTranslator

__all__ = [
    "ConverseStreamTranslator",
    "from_converse",
    "map_bedrock_error",
    "map_stop_reason",
    "map_stream_exception",
    "model_family",
    "to_converse",
    "to_usage",
]
