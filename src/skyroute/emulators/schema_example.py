"""A deterministic example value that satisfies a JSON Schema (the subset LLM APIs accept).

Used for tool-call arguments and for `response_format: json_schema` answers. Covers objects
(required properties, or all of them when `required` is absent), arrays (`minItems` items,
at least one), strings (with common formats and `minLength`), numbers and integers (within
`minimum`/`maximum`), booleans, null, `enum` (first value), `const`, `anyOf`/`oneOf` (first
non-null branch), `allOf` (merged) and local `$ref`s (`#/$defs/...`, `#/definitions/...`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["schema_example"]

_MAX_DEPTH = 16
_STRING_FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "12:00:00",
    "email": "user@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
}

Schema = Mapping[str, Any]


def schema_example(schema: Schema) -> object:
    """An example instance of `schema`."""
    return _example(schema, schema, 0)


def _example(schema: Schema, root: Schema, depth: int) -> object:
    if depth > _MAX_DEPTH:
        return None
    if "$ref" in schema:
        return _example(_resolve(schema["$ref"], root), root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return _example(_first_branch(schema[key], root), root, depth + 1)
    if schema.get("allOf"):
        return _example(_merged(schema, root), root, depth + 1)
    return _typed(schema, _type_of(schema), root, depth)


def _typed(schema: Schema, type_: str, root: Schema, depth: int) -> object:
    match type_:
        case "object":
            return _object(schema, root, depth)
        case "array":
            items = schema.get("items")
            item = _example(items if isinstance(items, Mapping) else {}, root, depth + 1)
            return [item] * max(1, int(schema.get("minItems", 1)))
        case "integer":
            return math.ceil(_number(schema, 1, 1))
        case "number":
            return _number(schema, 1.5, 0.5)
        case "boolean":
            return True
        case "null":
            return None
        case _:
            return _string(schema)


def _type_of(schema: Schema) -> str:
    declared = schema.get("type")
    if isinstance(declared, list):
        declared = next((t for t in declared if t != "null"), "null")
    if isinstance(declared, str):
        return declared
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def _object(schema: Schema, root: Schema, depth: int) -> dict[str, object]:
    properties: Mapping[str, Schema] = schema.get("properties") or {}
    names = schema.get("required")
    if names is None:
        names = list(properties)
    return {name: _example(properties.get(name, {}), root, depth + 1) for name in names}


def _string(schema: Schema) -> str:
    value = _STRING_FORMATS.get(schema.get("format", ""), "example")
    min_length = int(schema.get("minLength", 0))
    if len(value) < min_length:
        value += "x" * (min_length - len(value))
    max_length = schema.get("maxLength")
    return value[: int(max_length)] if max_length is not None else value


def _number(schema: Schema, default: float, step: float) -> float:
    low = schema.get("minimum")
    if low is None and "exclusiveMinimum" in schema:
        low = schema["exclusiveMinimum"] + step
    high = schema.get("maximum")
    if high is None and "exclusiveMaximum" in schema:
        high = schema["exclusiveMaximum"] - step
    if low is not None:
        return float(low)
    if high is not None:
        return float(min(default, high))
    return default


def _first_branch(branches: list[Schema], root: Schema) -> Schema:
    for branch in branches:
        target = _resolve(branch["$ref"], root) if "$ref" in branch else branch
        if target.get("type") != "null":
            return branch
    return branches[0]


def _merged(schema: Schema, root: Schema) -> Schema:
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    required: list[str] = list(merged.get("required", []))
    properties: dict[str, Any] = dict(merged.get("properties", {}))
    for branch in schema["allOf"]:
        part = _resolve(branch["$ref"], root) if "$ref" in branch else branch
        merged.update({k: v for k, v in part.items() if k not in ("required", "properties")})
        required += part.get("required", [])
        properties.update(part.get("properties", {}))
    if properties:
        merged["properties"] = properties
        merged["required"] = list(dict.fromkeys(required)) if required else list(properties)
    return merged


def _resolve(ref: str, root: Schema) -> Schema:
    if not ref.startswith("#"):
        return {}
    node: Any = root
    for part in ref.removeprefix("#").split("/"):
        if part and isinstance(node, Mapping):
            node = node.get(part.replace("~1", "/").replace("~0", "~"), {})
    return node if isinstance(node, Mapping) else {}
