"""Reading Gemini bodies: snake_case and lowerCamel field names, and the paths they arrive on."""

from __future__ import annotations

import msgspec
import pytest

from skyroute.emulators.google_routes import Endpoint, Route, find_route
from skyroute.emulators.google_wire import GenerateContentRequest, camelized

PUB = "/v1/projects/p/locations/l/publishers"
V1BETA1 = "/v1beta1/projects/p/locations/l/publishers"


def test_field_names_become_lower_camel() -> None:
    raw = {
        "contents": [{"parts": [{"inline_data": {"mime_type": "image/png", "data": "AA=="}}]}],
        "generation_config": {"thinking_config": {"include_thoughts": True, "thinking_budget": 9}},
    }
    assert camelized(raw) == {
        "contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "AA=="}}]}],
        "generationConfig": {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 9}},
    }


def test_callers_own_json_keeps_its_keys() -> None:
    raw = {
        "parts": [{"function_call": {"name": "f", "args": {"user_id": 1, "deep": {"a_b": 2}}}}],
        "tools": [{"function_declarations": [{
            "parameters_json_schema": {"properties": {"user_id": {"type": "string"}}},
            "parameters": {"type": "OBJECT", "properties": {"user_id": {"max_length": 3}},
                           "property_ordering": ["user_id"]},
        }]}],
    }  # fmt: skip
    out = camelized(raw)
    assert out["parts"][0]["functionCall"]["args"] == {"user_id": 1, "deep": {"a_b": 2}}
    declaration = out["tools"][0]["functionDeclarations"][0]
    assert declaration["parametersJsonSchema"] == {"properties": {"user_id": {"type": "string"}}}
    assert declaration["parameters"] == {
        "type": "OBJECT",
        "properties": {"user_id": {"maxLength": 3}},  # a Schema field, under a caller's name
        "propertyOrdering": ["user_id"],
    }


def test_mixed_body_decodes_into_structs() -> None:
    raw = {
        "contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}},
                                                  "thought_signature": "c2ln"}]}],
        "toolConfig": {"functionCallingConfig": {"allowed_function_names": ["f"], "mode": "ANY"}},
    }  # fmt: skip
    request = msgspec.convert(camelized(raw), GenerateContentRequest)
    assert request.contents[0].parts[0].thought_signature == "c2ln"
    assert request.tool_config is not None and request.tool_config.function_calling_config
    assert request.tool_config.function_calling_config.allowed_function_names == ["f"]


@pytest.mark.parametrize(
    ("flavor", "method", "path", "route"),
    [
        ("gemini", "POST", "/v1/models/gemini-2.5-flash:generateContent",
         Route(endpoint=Endpoint.GENERATE, version="v1", model="gemini-2.5-flash")),
        ("gemini", "POST", "/v1beta/models/m:batchEmbedContents",
         Route(endpoint=Endpoint.BATCH_EMBED, version="v1beta", model="m")),
        ("gemini", "GET", "/v1/models", Route(endpoint=Endpoint.MODELS, version="v1")),
        ("gemini", "GET", "/v1/models/m", Route(endpoint=Endpoint.MODEL, version="v1", model="m")),
        ("gemini", "POST", "/v1beta1/models/m:generateContent", None),
        ("gemini", "POST", "/v1/models/m:rawPredict", None),
        ("gemini", "POST", "/token", None),
        ("vertex", "POST", V1BETA1 + "/google/models/m:streamGenerateContent",
         Route(endpoint=Endpoint.STREAM, version="v1beta1", model="m")),
        ("vertex", "POST", PUB + "/google/models/text-embedding-005:predict",
         Route(endpoint=Endpoint.PREDICT, version="v1", model="text-embedding-005")),
        ("vertex", "POST", PUB + "/anthropic/models/c%40d:rawPredict",
         Route(endpoint=Endpoint.CLAUDE, version="v1", model="c@d")),
        ("vertex", "POST", PUB + "/anthropic/models/count-tokens:rawPredict",
         Route(endpoint=Endpoint.CLAUDE_COUNT, version="v1")),
        ("vertex", "POST", "/v1/projects/p/locations/l/endpoints/openapi/chat/completions",
         Route(endpoint=Endpoint.OPENAI_CHAT, version="v1")),
        ("vertex", "GET", "/v1beta1/publishers/google/models",
         Route(endpoint=Endpoint.MODELS, version="v1beta1")),
        ("vertex", "POST", "/token", Route(endpoint=Endpoint.TOKEN)),
        ("vertex", "POST", PUB + "/meta/models/m:rawPredict", None),
        ("vertex", "POST", PUB.replace("v1", "v1beta") + "/google/models/m:generateContent", None),
    ],
)  # fmt: skip
def test_routes(flavor: str, method: str, path: str, route: Route | None) -> None:
    assert find_route(flavor, method, path) == route  # type: ignore[arg-type]
