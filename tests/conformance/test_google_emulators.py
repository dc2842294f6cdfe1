"""The Vertex AI and Gemini API emulators, as the official SDKs see them.

google-genai (both flavors), google-auth's service-account flow against the emulator's
`/token`, AnthropicVertex for Claude on Vertex and the OpenAI SDK for Vertex's
OpenAI-compatible endpoint. Every fault kind must surface in google-genai as the exception a
real outage would raise.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pydantic
import pytest
from google import genai
from google.auth import crypt, jwt
from google.auth.exceptions import RefreshError
from google.genai import errors, types
from google.oauth2 import service_account
from google.oauth2.credentials import Credentials

from skyroute.emulators.google_auth import write_service_account_file
from skyroute.emulators.runner import EmulatorThread

GEMINI_KEY = "AIza-test-emulator"
STATIC_TOKEN = "ya29.static-test-token"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
PROMPT = "alpha beta gamma delta"
EXPECTED_TEXT = "You said: alpha beta gamma delta"
FLASH = "gemini-2.5-flash"
GEMINI_3 = "gemini-3-pro-preview"
CLAUDE = "claude-sonnet-4@20250514"

WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Weather for a city",
    parameters_json_schema={
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 2},
        },
        "required": ["city", "unit", "days"],
    },
)
WEATHER_ARGS = {"city": "example", "unit": "celsius", "days": 2}
FORCE_WEATHER = types.GenerateContentConfig(
    tools=[types.Tool(function_declarations=[WEATHER])],
    tool_config=types.ToolConfig(
        function_calling_config=types.FunctionCallingConfig(
            mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=["get_weather"]
        )
    ),
)
REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "score": {"type": "number"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "level": {"type": "string", "enum": ["low", "high"]},
    },
    "required": ["title", "score", "tags", "level"],
}


class Report(pydantic.BaseModel):
    title: str
    score: float
    tags: list[str]


# -- fixtures ---------------------------------------------------------------------------------


def _options(base_url: str, **kw: Any) -> types.HttpOptions:
    return types.HttpOptions(
        base_url=base_url, retry_options=types.HttpRetryOptions(attempts=1), **kw
    )


@pytest.fixture(scope="module")
def gemini_thread() -> Iterator[EmulatorThread]:
    with EmulatorThread("gemini", api_key=GEMINI_KEY) as emu:
        yield emu


@pytest.fixture(scope="module")
def vertex_thread() -> Iterator[EmulatorThread]:
    with EmulatorThread("vertex", token=STATIC_TOKEN) as emu:
        yield emu


@pytest.fixture
def gem(gemini_thread: EmulatorThread) -> EmulatorThread:
    gemini_thread.reset()
    return gemini_thread


@pytest.fixture
def vx(vertex_thread: EmulatorThread) -> EmulatorThread:
    vertex_thread.reset()
    return vertex_thread


@pytest.fixture
def client(gem: EmulatorThread) -> genai.Client:
    return genai.Client(api_key=GEMINI_KEY, http_options=_options(gem.base_url, timeout=5000))


def vertex_client(emu: EmulatorThread, credentials: Any = None) -> genai.Client:
    return genai.Client(
        vertexai=True,
        project="p",
        location="us-central1",
        credentials=credentials or Credentials(token=STATIC_TOKEN),
        http_options=_options(emu.base_url, timeout=5000),
    )


@pytest.fixture
def vclient(vx: EmulatorThread) -> genai.Client:
    return vertex_client(vx)


def stream_text(stream: Any) -> str:
    return "".join(chunk.text or "" for chunk in stream)


# -- Gemini API: answers ----------------------------------------------------------------------


def test_generate_text_with_usage(client: genai.Client, gem: EmulatorThread) -> None:
    response = client.models.generate_content(model=FLASH, contents=PROMPT)
    assert response.text == EXPECTED_TEXT
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.candidates[0].content.role == "model"
    usage = response.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count) == (8, 6)
    assert usage.total_token_count == 14 and usage.thoughts_token_count is None
    assert response.model_version == FLASH and response.response_id
    record = gem.requests()[-1]
    assert record.path == f"/v1/models/{FLASH}:generateContent"  # google-genai's default: v1
    assert record.headers["x-goog-api-key"] == "***" and record.model == FLASH


def test_system_instruction_counts_in_the_prompt(client: genai.Client) -> None:
    config = types.GenerateContentConfig(system_instruction="be very brief")
    response = client.models.generate_content(model=FLASH, contents=PROMPT, config=config)
    assert response.text == EXPECTED_TEXT
    assert response.usage_metadata.prompt_token_count == 8 + 3 + 4


def test_function_call_follows_the_declared_schema(client: genai.Client) -> None:
    response = client.models.generate_content(model=FLASH, contents=PROMPT, config=FORCE_WEATHER)
    call = response.function_calls[0]
    assert (call.name, call.args) == ("get_weather", WEATHER_ARGS)
    assert call.id and call.id.startswith("call_")
    assert response.candidates[0].finish_reason == types.FinishReason.STOP  # even for a call
    assert response.candidates[0].content.parts[0].thought_signature is None  # not Gemini 3


def test_gemini_3_thought_signature_round_trip(client: genai.Client) -> None:
    question = types.Content(role="user", parts=[types.Part(text="weather in Paris?")])
    first = client.models.generate_content(
        model=GEMINI_3, contents=[question], config=FORCE_WEATHER
    )
    call_turn = first.candidates[0].content
    assert call_turn.parts[0].thought_signature  # bytes, base64 on the wire
    result = types.Part.from_function_response(name="get_weather", response={"temp": 21})
    history = [question, call_turn, types.Content(role="user", parts=[result])]
    answer = client.models.generate_content(model=GEMINI_3, contents=history)
    assert answer.text == 'The tool returned: {"temp":21}'
    unsigned = types.Content(
        role="model", parts=[types.Part(function_call=first.function_calls[0])]
    )
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=GEMINI_3, contents=[question, unsigned, history[2]])
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    assert "missing a thought_signature" in (caught.value.message or "")


def test_function_response_must_follow_a_call(client: genai.Client) -> None:
    result = types.Part.from_function_response(name="get_weather", response={"temp": 21})
    with pytest.raises(errors.ClientError, match="immediately after a function call turn"):
        client.models.generate_content(
            model=FLASH, contents=[types.Content(role="user", parts=[result])]
        )


def test_invalid_role_and_empty_contents_are_400(gem: EmulatorThread) -> None:
    url = f"{gem.base_url}/v1beta/models/{FLASH}:generateContent"
    headers = {"x-goog-api-key": GEMINI_KEY}
    bad_role = {"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]}
    answer = httpx.post(url, json=bad_role, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "Please use a valid role: user, model."
    empty = httpx.post(url, json={"contents": []}, headers=headers)
    assert empty.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_json_schema_answers(client: genai.Client) -> None:
    config = types.GenerateContentConfig(
        response_mime_type="application/json", response_json_schema=REPORT_SCHEMA
    )
    document = json.loads(
        client.models.generate_content(model=FLASH, contents=PROMPT, config=config).text
    )
    assert document == {"title": "example", "score": 1.5, "tags": ["example"], "level": "low"}
    typed = types.GenerateContentConfig(
        response_mime_type="application/json", response_schema=Report
    )
    parsed = client.models.generate_content(model=FLASH, contents=PROMPT, config=typed).parsed
    assert isinstance(parsed, Report) and parsed.tags == ["example"]


def test_thinking_shows_thoughts_and_counts_them(client: genai.Client) -> None:
    thinking = types.ThinkingConfig(include_thoughts=True, thinking_budget=512)
    config = types.GenerateContentConfig(thinking_config=thinking)
    response = client.models.generate_content(model=FLASH, contents=PROMPT, config=config)
    thought, answer = response.candidates[0].content.parts
    assert answer.text == EXPECTED_TEXT and not answer.thought
    assert thought.thought is True and thought.text.startswith("The user sent 1 message")
    assert response.text == EXPECTED_TEXT  # thoughts are not part of the text
    assert response.usage_metadata.thoughts_token_count == len(thought.text.split())
    hidden = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=512))
    quiet = client.models.generate_content(model=FLASH, contents=PROMPT, config=hidden)
    assert len(quiet.candidates[0].content.parts) == 1 and quiet.usage_metadata.thoughts_token_count


def test_inline_images_are_counted(client: genai.Client) -> None:
    image = types.Part.from_bytes(data=b"\x89PNG fake", mime_type="image/png")
    response = client.models.generate_content(model=FLASH, contents=[image, image, "what is this"])
    assert response.text == "I received 2 images. You said: what is this"


def test_stream_concatenates_to_the_whole_answer(client: genai.Client) -> None:
    whole = client.models.generate_content(model=FLASH, contents=PROMPT)
    chunks = list(client.models.generate_content_stream(model=FLASH, contents=PROMPT))
    assert len(chunks) == 6  # one word per event
    assert stream_text(chunks) == whole.text
    assert all(chunk.usage_metadata is None for chunk in chunks[:-1])
    assert chunks[-1].usage_metadata.total_token_count == whole.usage_metadata.total_token_count
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP


def test_stream_framing_is_sse_without_done(gem: EmulatorThread) -> None:
    url = f"{gem.base_url}/v1/models/{FLASH}:streamGenerateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
    sse = httpx.post(url, params={"alt": "sse"}, json=body, headers={"x-goog-api-key": GEMINI_KEY})
    assert sse.headers["content-type"].startswith("text/event-stream")
    events = sse.text.split("\r\n\r\n")
    assert events[-1] == "" and all(e.startswith("data: {") for e in events[:-1])
    assert "[DONE]" not in sse.text
    array = httpx.post(url, json=body, headers={"x-goog-api-key": GEMINI_KEY}).json()
    assert isinstance(array, list) and len(array) == 6  # without alt=sse: one JSON array


def test_count_tokens_matches_the_prompt_count(client: genai.Client) -> None:
    counted = client.models.count_tokens(model=FLASH, contents=PROMPT)
    usage = client.models.generate_content(model=FLASH, contents=PROMPT).usage_metadata
    assert counted.total_tokens == usage.prompt_token_count == 8


def test_embed_content(client: genai.Client, gem: EmulatorThread) -> None:
    embedded = client.models.embed_content(model="gemini-embedding-001", contents=["a b", "c"])
    assert [len(e.values) for e in embedded.embeddings] == [8, 8]
    assert embedded.embeddings[0].values != embedded.embeddings[1].values
    config = types.EmbedContentConfig(output_dimensionality=16)
    sized = client.models.embed_content(model="gemini-embedding-001", contents="x", config=config)
    assert len(sized.embeddings[0].values) == 16
    assert gem.requests()[-1].path.endswith("gemini-embedding-001:batchEmbedContents")


def test_models_list_and_get(client: genai.Client) -> None:
    names = [model.name for model in client.models.list()]
    assert f"models/{FLASH}" in names
    model = client.models.get(model=FLASH)
    assert model.input_token_limit and "generateContent" in (model.supported_actions or [])


def test_wrong_and_missing_key(gem: EmulatorThread) -> None:
    wrong = genai.Client(api_key="AIza-wrong", http_options=_options(gem.base_url))
    with pytest.raises(errors.ClientError) as caught:
        wrong.models.generate_content(model=FLASH, contents=PROMPT)
    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")
    assert caught.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    missing = httpx.post(f"{gem.base_url}/v1/models/{FLASH}:generateContent", json={})
    assert missing.status_code == 403 and missing.json()["error"]["status"] == "PERMISSION_DENIED"


def test_key_in_the_url_is_recorded(gem: EmulatorThread) -> None:
    url = f"{gem.base_url}/v1beta/models/{FLASH}:generateContent"
    body = {"contents": [{"parts": [{"text": PROMPT}]}]}
    answer = httpx.post(url, params={"key": GEMINI_KEY}, json=body)
    assert answer.status_code == 200
    record = gem.requests()[-1]
    assert record.headers["?key"] == "***" and record.path == url.split(str(gem.port))[1]
    assert GEMINI_KEY not in json.dumps(record.headers)


def test_snake_case_fields_are_accepted(gem: EmulatorThread) -> None:
    body = {
        "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
        "system_instruction": {"parts": [{"text": "brief"}]},
        "generation_config": {
            "max_output_tokens": 2,
            "thinking_config": {"include_thoughts": True},
        },
    }
    url = f"{gem.base_url}/v1/models/{FLASH}:generateContent"
    answer = httpx.post(url, json=body, headers={"x-goog-api-key": GEMINI_KEY}).json()
    candidate = answer["candidates"][0]
    assert candidate["finishReason"] == "MAX_TOKENS"
    assert [p.get("thought", False) for p in candidate["content"]["parts"]] == [True, False]
    assert candidate["content"]["parts"][1]["text"] == "You said:"
    assert answer["usageMetadata"]["promptTokenCount"] == 8 + 1 + 4


def test_v1beta_and_async_client(gem: EmulatorThread) -> None:
    options = _options(gem.base_url, api_version="v1beta")
    sdk = genai.Client(api_key=GEMINI_KEY, http_options=options)

    async def both() -> tuple[str | None, str]:
        whole = await sdk.aio.models.generate_content(model=FLASH, contents=PROMPT)
        stream = await sdk.aio.models.generate_content_stream(model=FLASH, contents=PROMPT)
        return whole.text, "".join([chunk.text or "" async for chunk in stream])

    assert asyncio.run(both()) == (EXPECTED_TEXT, EXPECTED_TEXT)
    assert all(r.path.startswith("/v1beta/") for r in gem.requests())


# -- Gemini API: faults -----------------------------------------------------------------------


def test_429_carries_retry_info_in_the_body_only(client: genai.Client, gem: EmulatorThread) -> None:
    gem.add_faults(FLASH, [{"kind": "status", "status": 429, "retry_after": 7}])
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=FLASH, contents=PROMPT)
    error = caught.value
    assert (error.code, error.status) == (429, "RESOURCE_EXHAUSTED")
    details = error.details["error"]["details"]
    retry = next(d for d in details if d["@type"].endswith("google.rpc.RetryInfo"))
    assert retry["retryDelay"] == "7s"
    assert "retry-after" not in error.response.headers  # protocols.md §0.10


@pytest.mark.parametrize(
    ("status", "name", "error_type"),
    [
        (503, "UNAVAILABLE", errors.ServerError),
        (500, "INTERNAL", errors.ServerError),
        (400, "INVALID_ARGUMENT", errors.ClientError),
        (403, "PERMISSION_DENIED", errors.ClientError),
    ],
)
def test_status_faults_in_google_shape(
    client: genai.Client, gem: EmulatorThread, status: int, name: str, error_type: type[Exception]
) -> None:
    gem.add_faults("*", [{"kind": "status", "status": status}])
    with pytest.raises(error_type) as caught:
        client.models.generate_content(model=FLASH, contents=PROMPT)
    assert isinstance(caught.value, errors.APIError)
    assert (caught.value.code, caught.value.status) == (status, name)
    if status == 503:
        assert caught.value.message == "The model is overloaded. Please try again later."


def test_mid_stream_error_raises_while_iterating(client: genai.Client, gem: EmulatorThread) -> None:
    gem.add_faults("*", [{"kind": "stream_error", "after_tokens": 2}])
    received: list[str] = []
    with pytest.raises(errors.ServerError) as caught:
        for chunk in client.models.generate_content_stream(model=FLASH, contents=PROMPT):
            received.append(chunk.text or "")
    assert "".join(received) == "You said:"
    assert (caught.value.code, caught.value.status) == (500, "INTERNAL")


def test_stream_error_without_streaming_is_a_503_when_asked(
    client: genai.Client, gem: EmulatorThread
) -> None:
    gem.add_faults("*", [{"kind": "stream_error", "code": "UNAVAILABLE", "message": "busy"}])
    with pytest.raises(errors.ServerError) as caught:
        client.models.generate_content(model=FLASH, contents=PROMPT)
    assert (caught.value.code, caught.value.message) == (503, "busy")


def test_context_length(client: genai.Client, gem: EmulatorThread) -> None:
    gem.add_faults("*", [{"kind": "context_length", "max_context": 1000}])
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=FLASH, contents=PROMPT)
    assert caught.value.message == (
        "The input token count (1008) exceeds the maximum number of tokens allowed (1000)."
    )


def test_content_filter_finishes_with_safety(client: genai.Client, gem: EmulatorThread) -> None:
    gem.add_faults("*", [{"kind": "content_filter"}, {"kind": "content_filter"}])
    response = client.models.generate_content(model=FLASH, contents=PROMPT)
    candidate = response.candidates[0]
    assert candidate.finish_reason == types.FinishReason.SAFETY and candidate.content is None
    assert candidate.safety_ratings[0].blocked is True
    chunks = list(client.models.generate_content_stream(model=FLASH, contents=PROMPT))
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.SAFETY


@pytest.mark.parametrize(
    ("fault", "error_type", "received"),
    [
        ({"kind": "cut", "after_tokens": 2}, httpx2.RemoteProtocolError, "You said:"),
        ({"kind": "stall", "after_tokens": 1}, httpx2.ReadTimeout, "You"),
        ({"kind": "malformed", "after_tokens": 1}, errors.UnknownApiResponseError, "You"),
    ],
    ids=["cut", "stall", "malformed"],
)
def test_broken_streams(
    gem: EmulatorThread, fault: dict[str, Any], error_type: type[Exception], received: str
) -> None:
    sdk = genai.Client(api_key=GEMINI_KEY, http_options=_options(gem.base_url, timeout=400))
    gem.add_faults(FLASH, [fault])
    texts: list[str] = []
    with pytest.raises(error_type):
        for chunk in sdk.models.generate_content_stream(model=FLASH, contents=PROMPT):
            texts.append(chunk.text or "")
    assert "".join(texts) == received


@pytest.mark.parametrize(
    ("fault", "error_type"),
    [
        ({"kind": "reset"}, httpx2.ReadError),
        ({"kind": "hang"}, httpx2.ReadTimeout),
        ({"kind": "cut"}, httpx2.RemoteProtocolError),
        ({"kind": "malformed"}, json.JSONDecodeError),
    ],
    ids=["reset", "hang", "cut", "malformed"],
)
def test_broken_answers(
    gem: EmulatorThread, fault: dict[str, Any], error_type: type[Exception]
) -> None:
    sdk = genai.Client(api_key=GEMINI_KEY, http_options=_options(gem.base_url, timeout=400))
    gem.add_faults("*", [fault])
    with pytest.raises(error_type):
        sdk.models.generate_content(model=FLASH, contents=PROMPT)
    assert sdk.models.generate_content(model=FLASH, contents=PROMPT).text == EXPECTED_TEXT


def test_delay_and_slow_first_token(client: genai.Client, gem: EmulatorThread) -> None:
    gem.add_faults(
        "*", [{"kind": "delay", "seconds": 0.2}, {"kind": "slow_first_token", "seconds": 0.2}]
    )
    started = time.monotonic()
    assert client.models.generate_content(model=FLASH, contents=PROMPT).text == EXPECTED_TEXT
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    assert (
        stream_text(client.models.generate_content_stream(model=FLASH, contents=PROMPT))
        == EXPECTED_TEXT
    )
    assert time.monotonic() - started >= 0.2


def test_faults_by_header_and_by_model(client: genai.Client, gem: EmulatorThread) -> None:
    gem.add_faults("other-model", [{"kind": "status", "status": 500}])
    assert client.models.generate_content(model=FLASH, contents=PROMPT).text == EXPECTED_TEXT
    fault = json.dumps({"kind": "status", "status": 503})
    config = types.GenerateContentConfig(
        http_options=types.HttpOptions(headers={"x-emulator-fault": fault})
    )
    with pytest.raises(errors.ServerError):
        client.models.generate_content(model=FLASH, contents=PROMPT, config=config)
    with pytest.raises(errors.ServerError):
        client.models.generate_content(model="other-model", contents=PROMPT)
    assert [r.fault for r in gem.requests()] == [None, "status", "status"]


def test_count_and_embed_leave_stream_faults_for_generate(
    client: genai.Client, gem: EmulatorThread
) -> None:
    gem.add_faults("*", [{"kind": "cut", "after_tokens": 1}])
    assert client.models.count_tokens(model=FLASH, contents=PROMPT).total_tokens == 8
    assert client.models.list()  # the model list never takes a scripted fault
    with pytest.raises(httpx2.RemoteProtocolError):
        list(client.models.generate_content_stream(model=FLASH, contents=PROMPT))


# -- Vertex AI --------------------------------------------------------------------------------


def test_vertex_generate_stream_and_count(vclient: genai.Client, vx: EmulatorThread) -> None:
    response = vclient.models.generate_content(model=FLASH, contents=PROMPT)
    assert response.text == EXPECTED_TEXT and response.create_time is not None
    assert response.usage_metadata.traffic_type == types.TrafficType.ON_DEMAND
    assert (
        stream_text(vclient.models.generate_content_stream(model=FLASH, contents=PROMPT))
        == EXPECTED_TEXT
    )
    assert vclient.models.count_tokens(model=FLASH, contents=PROMPT).total_tokens == 8
    first = vx.requests()[0]
    assert first.path == (
        f"/v1beta1/projects/p/locations/us-central1/publishers/google/models/{FLASH}:generateContent"
    )  # google-genai's default for Vertex: v1beta1
    assert first.headers["authorization"] == "***"


def test_vertex_tools_and_gemini_3_signatures(vclient: genai.Client) -> None:
    question = types.Content(role="user", parts=[types.Part(text="weather?")])
    first = vclient.models.generate_content(
        model=GEMINI_3, contents=[question], config=FORCE_WEATHER
    )
    assert first.function_calls[0].args == WEATHER_ARGS
    result = types.Content(
        role="user",
        parts=[types.Part.from_function_response(name="get_weather", response={"t": 1})],
    )
    answer = vclient.models.generate_content(
        model=GEMINI_3, contents=[question, first.candidates[0].content, result]
    )
    assert answer.text == 'The tool returned: {"t":1}'
    unsigned = types.Content(
        role="model", parts=[types.Part(function_call=first.function_calls[0])]
    )
    with pytest.raises(errors.ClientError, match="thought_signature"):
        vclient.models.generate_content(model=GEMINI_3, contents=[question, unsigned, result])


def test_vertex_embeddings(vclient: genai.Client, vx: EmulatorThread) -> None:
    single = vclient.models.embed_content(model="gemini-embedding-001", contents="a b")
    assert len(single.embeddings[0].values) == 8
    config = types.EmbedContentConfig(output_dimensionality=4)
    legacy = vclient.models.embed_content(
        model="text-embedding-005", contents=["a b", "c"], config=config
    )
    assert [len(e.values) for e in legacy.embeddings] == [4, 4]
    assert [r.path.rsplit(":", 1)[1] for r in vx.requests()] == ["embedContent", "predict"]


def test_vertex_bad_or_missing_token_is_401(vx: EmulatorThread) -> None:
    sdk = vertex_client(vx, Credentials(token="ya29.unknown"))
    with pytest.raises(errors.ClientError) as caught:
        sdk.models.generate_content(model=FLASH, contents=PROMPT)
    assert (caught.value.code, caught.value.status) == (401, "UNAUTHENTICATED")
    url = f"{vx.base_url}/v1/projects/p/locations/l/publishers/google/models/{FLASH}:countTokens"
    assert httpx.post(url, json={}).json()["error"]["details"][0]["reason"] == "CREDENTIALS_MISSING"


def test_vertex_429_has_retry_info(vclient: genai.Client, vx: EmulatorThread) -> None:
    vx.add_faults(FLASH, [{"kind": "status", "status": 429, "retry_after": 3}])
    with pytest.raises(errors.ClientError) as caught:
        vclient.models.generate_content(model=FLASH, contents=PROMPT)
    assert caught.value.message and caught.value.message.startswith("Resource exhausted.")
    assert caught.value.details["error"]["details"][0]["retryDelay"] == "3s"


# -- Vertex AI: the service-account flow ------------------------------------------------------


def test_service_account_jwt_grant_and_token_reuse(vx: EmulatorThread, tmp_path: Path) -> None:
    key_file = write_service_account_file(tmp_path / "sa.json", f"{vx.base_url}/token")
    vx.emulator.trust_service_account(key_file)  # type: ignore[union-attr]
    credentials = service_account.Credentials.from_service_account_file(key_file, scopes=SCOPES)
    sdk = vertex_client(vx, credentials)
    assert sdk.models.generate_content(model=FLASH, contents=PROMPT).text == EXPECTED_TEXT
    assert (
        stream_text(sdk.models.generate_content_stream(model=FLASH, contents=PROMPT))
        == EXPECTED_TEXT
    )
    assert credentials.token and credentials.token.startswith("ya29.emulated-")
    paths = [r.path for r in vx.requests()]
    assert paths.count("/token") == 1  # the second call reuses the token
    assert vx.emulator.token_grants >= 1  # type: ignore[union-attr]


def test_service_account_with_an_untrusted_key_fails(vx: EmulatorThread, tmp_path: Path) -> None:
    trusted = write_service_account_file(tmp_path / "a.json", f"{vx.base_url}/token")
    vx.emulator.trust_service_account(trusted)  # type: ignore[union-attr]
    # Same client_email, another key: the signature does not verify.
    impostor = write_service_account_file(tmp_path / "b.json", f"{vx.base_url}/token")
    credentials = service_account.Credentials.from_service_account_file(impostor, scopes=SCOPES)
    with pytest.raises(RefreshError, match="invalid_grant: Invalid JWT Signature"):
        vertex_client(vx, credentials).models.generate_content(model=FLASH, contents=PROMPT)


def test_token_endpoint_checks_the_claims(vx: EmulatorThread, tmp_path: Path) -> None:
    key_file = write_service_account_file(tmp_path / "sa.json", f"{vx.base_url}/token")
    vx.emulator.trust_service_account(key_file)  # type: ignore[union-attr]
    info = json.loads(key_file.read_text())
    signer = crypt.RSASigner.from_service_account_info(info)
    now = int(time.time())
    claims = {"iss": info["client_email"], "aud": "https://oauth2.googleapis.com/token",
              "scope": SCOPES[0], "iat": now, "exp": now + 3600}  # fmt: skip
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer"}

    def post(**changes: Any) -> httpx.Response:
        assertion = jwt.encode(signer, {**claims, **changes}).decode()
        return httpx.post(f"{vx.base_url}/token", data={**form, "assertion": assertion})

    granted = post()
    assert granted.status_code == 200 and granted.json()["expires_in"] == 3599
    assert post(exp=now - 10).json()["error"] == "invalid_grant"
    assert post(scope="").json()["error"] == "invalid_scope"
    assert post(iss="nobody@x.iam.gserviceaccount.com").status_code == 400
    wrong_grant = httpx.post(f"{vx.base_url}/token", data={"grant_type": "password"})
    assert wrong_grant.json()["error"] == "unsupported_grant_type"
    token = granted.json()["access_token"]
    sdk = vertex_client(vx, Credentials(token=token))
    assert sdk.models.generate_content(model=FLASH, contents=PROMPT).text == EXPECTED_TEXT


# -- Vertex AI: Claude and the OpenAI-compatible endpoint -------------------------------------


@pytest.fixture
def claude(vx: EmulatorThread) -> Iterator[anthropic.AnthropicVertex]:
    with anthropic.AnthropicVertex(
        base_url=f"{vx.base_url}/v1",
        region="us-east5",
        project_id="p",
        access_token=STATIC_TOKEN,
        max_retries=0,
    ) as sdk:
        yield sdk


def claude_messages() -> list[anthropic.types.MessageParam]:
    return [{"role": "user", "content": PROMPT}]


def test_claude_create_stream_and_count(
    claude: anthropic.AnthropicVertex, vx: EmulatorThread
) -> None:
    message = claude.messages.create(model=CLAUDE, max_tokens=100, messages=claude_messages())
    assert message.id.startswith("msg_vrtx_") and message.stop_reason == "end_turn"
    assert message.content[0].type == "text" and message.content[0].text == EXPECTED_TEXT
    assert (message.usage.input_tokens, message.usage.output_tokens) == (8, 6)
    with claude.messages.stream(model=CLAUDE, max_tokens=100, messages=claude_messages()) as stream:
        assert "".join(stream.text_stream) == EXPECTED_TEXT
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 6
    counted = claude.messages.count_tokens(model=CLAUDE, messages=claude_messages())
    assert counted.input_tokens == 8
    assert [r.path.rsplit(":", 1)[1] for r in vx.requests()] == [
        "rawPredict",
        "streamRawPredict",
        "rawPredict",
    ]
    assert vx.requests()[-1].model == CLAUDE


def test_claude_tool_use(claude: anthropic.AnthropicVertex) -> None:
    tool: anthropic.types.ToolParam = {
        "name": "get_weather",
        "description": "Weather",
        "input_schema": WEATHER.parameters_json_schema,  # type: ignore[typeddict-item]
    }
    message = claude.messages.create(
        model=CLAUDE, max_tokens=100, messages=claude_messages(), tools=[tool],
        tool_choice={"type": "any"},
    )  # fmt: skip
    block = message.content[0]
    assert message.stop_reason == "tool_use" and block.type == "tool_use"
    assert block.id.startswith("toolu_vrtx_") and block.input == WEATHER_ARGS


def test_claude_faults(claude: anthropic.AnthropicVertex, vx: EmulatorThread) -> None:
    vx.add_faults(CLAUDE, [{"kind": "status", "status": 429}, {"kind": "content_filter"},
                           {"kind": "stream_error", "after_tokens": 2}])  # fmt: skip
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(model=CLAUDE, max_tokens=100, messages=claude_messages())
    assert caught.value.body["error"]["status"] == "RESOURCE_EXHAUSTED"  # type: ignore[index]
    refused = claude.messages.create(model=CLAUDE, max_tokens=100, messages=claude_messages())
    assert refused.stop_reason == "refusal" and refused.content == []
    with (
        pytest.raises(anthropic.APIStatusError, match="Overloaded"),
        claude.messages.stream(model=CLAUDE, max_tokens=100, messages=claude_messages()) as stream,
    ):
        list(stream.text_stream)


def test_claude_rejects_a_bad_body(claude: anthropic.AnthropicVertex) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model=CLAUDE, max_tokens=100, messages=[])
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


@pytest.fixture
def vertex_openai(vx: EmulatorThread) -> Iterator[openai.OpenAI]:
    base = f"{vx.base_url}/v1/projects/p/locations/us-central1/endpoints/openapi"
    with openai.OpenAI(base_url=base, api_key=STATIC_TOKEN, max_retries=0) as sdk:
        yield sdk


def test_openai_compatible_chat(vertex_openai: openai.OpenAI, vx: EmulatorThread) -> None:
    messages: list[Any] = [{"role": "user", "content": PROMPT}]
    completion = vertex_openai.chat.completions.create(model=f"google/{FLASH}", messages=messages)
    assert completion.choices[0].message.content == EXPECTED_TEXT
    assert completion.model == f"google/{FLASH}"
    chunks = vertex_openai.chat.completions.create(
        model=f"google/{FLASH}",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
    received = list(chunks)
    assert "".join(c.choices[0].delta.content or "" for c in received if c.choices) == EXPECTED_TEXT
    assert received[-1].usage is not None and received[-1].usage.total_tokens == 14
    with pytest.raises(openai.BadRequestError):
        vertex_openai.chat.completions.create(model=FLASH, messages=messages)  # no publisher
    vx.add_faults(f"google/{FLASH}", [{"kind": "status", "status": 429}])
    with pytest.raises(openai.RateLimitError):
        vertex_openai.chat.completions.create(model=f"google/{FLASH}", messages=messages)
    bad = openai.OpenAI(base_url=str(vertex_openai.base_url), api_key="nope", max_retries=0)
    with bad, pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model=f"google/{FLASH}", messages=messages)


def test_control_api_and_unknown_paths(vx: EmulatorThread) -> None:
    control = f"http://127.0.0.1:{vx.port}/_emulator"
    order = {"model": FLASH, "faults": [{"kind": "status", "status": 503}]}
    assert httpx.post(f"{control}/faults", json=order).status_code == 200
    assert httpx.get(f"{control}/faults").json()[FLASH][0]["status"] == 503
    missing = httpx.get(
        f"{vx.base_url}/v2/nothing", headers={"authorization": f"Bearer {STATIC_TOKEN}"}
    )
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"
    assert httpx.post(f"{control}/reset").status_code == 200
    assert httpx.get(f"{control}/requests").json() == []
