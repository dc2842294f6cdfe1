"""Deterministic embeddings: a unit vector per input, from a hash of that input. Pure.

Every component is a float32 value, so that `encoding_format: "float"` (JSON numbers) and
`"base64"` (little-endian float32 bytes, which the OpenAI SDK asks for by default and decodes
with a float32 buffer) give exactly the same numbers.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct

import msgspec

from skyroute.emulators.openai_wire import (
    EmbeddingList,
    EmbeddingOut,
    EmbeddingRequest,
    EmbeddingUsage,
)

__all__ = ["DEFAULT_DIMENSIONS", "embedding_vector", "embeddings_body"]

DEFAULT_DIMENSIONS = 8
_MAX_DIMENSIONS = 4096
_ENCODER = msgspec.json.Encoder()


def embedding_vector(item: str | list[int], dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """A unit vector of float32 values, determined by the input alone."""
    key = item.encode() if isinstance(item, str) else struct.pack(f"<{len(item)}q", *item)
    raw = hashlib.shake_128(key).digest(2 * dimensions)
    values = [v / 32767.5 - 1.0 for v in struct.unpack(f"<{dimensions}H", raw)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    packed = struct.pack(f"<{dimensions}f", *(v / norm for v in values))
    return list(struct.unpack(f"<{dimensions}f", packed))


def _items(request: EmbeddingRequest) -> list[str | list[int]]:
    """The inputs: a string, a list of strings, one token list, or a list of token lists."""
    given = request.input
    if isinstance(given, str):
        return [given]
    if given and all(isinstance(x, int) for x in given):
        return [[x for x in given if isinstance(x, int)]]
    return [x for x in given if not isinstance(x, int)]


def _tokens(item: str | list[int]) -> int:
    return len(item.split()) if isinstance(item, str) else len(item)


def embeddings_body(request: EmbeddingRequest, model: str) -> bytes:
    dimensions = min(max(request.dimensions or DEFAULT_DIMENSIONS, 1), _MAX_DIMENSIONS)
    items = _items(request)
    data: list[EmbeddingOut] = []
    for index, item in enumerate(items):
        vector = embedding_vector(item, dimensions)
        if request.encoding_format == "base64":
            packed = struct.pack(f"<{dimensions}f", *vector)
            data.append(EmbeddingOut(index, base64.b64encode(packed).decode("ascii")))
        else:
            data.append(EmbeddingOut(index, vector))
    tokens = sum(_tokens(item) for item in items)
    usage = EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens)
    return _ENCODER.encode(EmbeddingList(data=data, model=model, usage=usage))
