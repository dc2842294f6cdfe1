"""Gemini generateContent on the wire: the canonical chat ⇄ Vertex AI and the Gemini API.

Both speak the same request, response, stream and error formats (protocols.md §4a, §5).
One import point for four halves, each a module of its own:

- ``gemini_request``  canonical request → generateContent body (``to_gemini``);
- ``gemini_response`` generateContent body → canonical response (``from_gemini``), the
  finishReason and usage mappings of protocols.md §8, and the tool-call ids below;
- ``gemini_stream``   ``streamGenerateContent?alt=sse`` payloads → canonical events;
- ``gemini_errors``   Google error bodies → the gateway's error tree.

Tool-call ids
-------------
Gemini often leaves ``functionCall.id`` out, and Gemini 3 puts a ``thoughtSignature`` on
function-call parts that must come back with the call in the next request, or the request
fails with 400 "Function call is missing a thought_signature" (protocols.md §0.11). An
OpenAI client sends back only the tool call's id, so the id carries both. It takes one of
three forms, all within ``[A-Za-z0-9_-]`` so that Anthropic's and Bedrock's id patterns
accept it too:

``call_<h>``
    Gemini gave neither an id nor a signature. ``<h>`` is 24 lower-case hex digits of
    SHA-256 over (gateway response id, choice index, tool-call slot): stable, so the
    plain and the streamed answer name a call alike, and unique across turns. No id is
    sent back to Gemini for it, as Gemini sent none.
``<gemini id>``
    Gemini gave an id and no signature: the id is Gemini's, verbatim.
``call_<h>_ts<envelope>``
    There is a signature. ``<envelope>`` is unpadded URL-safe base64 of the bytes
    ``0x01`` (version) ‖ Gemini's id length as 2 bytes big-endian ‖ Gemini's id in
    UTF-8 (may be empty) ‖ the signature's raw bytes ‖ the first 4 bytes of SHA-256
    over all that. The fixed-length ``call_<h>`` head makes the split unambiguous,
    whatever the base64 holds; the checksum catches an id a client cut short.

Any other id (another provider's, or one a client made up) is sent to Gemini as the id.
An id of the third form whose envelope does not check out is refused as
``InvalidRequest``: a client altered it. A signature makes the id long (a few hundred
characters is usual), longer than some providers' id limits (Bedrock's toolUseId takes 64).

All pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

from skyroute.wire.gemini_errors import map_google_error
from skyroute.wire.gemini_request import to_gemini
from skyroute.wire.gemini_response import (
    ToolCallRef,
    from_gemini,
    map_finish_reason,
    read_tool_call_id,
    to_usage,
    tool_call_id,
)
from skyroute.wire.gemini_stream import GeminiStreamTranslator

__all__ = [
    "GeminiStreamTranslator",
    "ToolCallRef",
    "from_gemini",
    "map_finish_reason",
    "map_google_error",
    "read_tool_call_id",
    "to_gemini",
    "to_usage",
    "tool_call_id",
]
