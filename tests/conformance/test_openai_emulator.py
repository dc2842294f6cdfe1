"""The OpenAI and Azure OpenAI emulators, as the official `openai` SDK sees them.

If the SDK cannot tell the emulator from the cloud, the emulator is faithful; every fault kind
must surface in the SDK as the exception a real outage would raise.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionContentPartParam, ChatCompletionMessageParam

from skyroute.emulators.http import HttpLimits
from skyroute.emulators.runner import EmulatorThread, serve_emulator

OPENAI_KEY = "sk-test-emulator"
AZURE_KEY = "azure-test-key"
API_VERSION = "2024-10-21"
USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "alpha beta gamma delta"}]
EXPECTED_TEXT = "You said: alpha beta gamma delta"

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 2},
                "detailed": {"type": "boolean"},
                "note": {"type": "string"},
            },
            "required": ["city", "unit", "days", "detailed"],
            "additionalProperties": False,
        },
    },
}

REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "score": {"type": "number"},
        "count": {"type": "integer"},
        "ok": {"type": "boolean"},
        "level": {"enum": ["low", "high"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "owner": {"$ref": "#/$defs/person"},
        "maybe": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["title", "score", "count", "ok", "level", "tags", "owner", "maybe"],
    "additionalProperties": False,
    "$defs": {
        "person": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            "required": ["name", "age"],
            "additionalProperties": False,
        }
    },
}


def conforms(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> bool:
    """A small JSON Schema check: enough for the schemas above."""
    if "$ref" in schema:
        return conforms(value, root["$defs"][schema["$ref"].rsplit("/", 1)[1]], root)
    if "enum" in schema:
        return value in schema["enum"]
    if "anyOf" in schema:
        return any(conforms(value, branch, root) for branch in schema["anyOf"])
    checks = {
        "string": lambda v: isinstance(v, str),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "array": lambda v: (
            isinstance(v, list) and all(conforms(item, schema.get("items", {}), root) for item in v)
        ),
        "object": lambda v: (
            isinstance(v, dict)
            and set(schema.get("required", [])) <= set(v)
            and all(conforms(v[k], schema["properties"][k], root) for k in v)
        ),
    }
    return checks[schema.get("type", "object")](value)


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openai_thread() -> Iterator[EmulatorThread]:
    with EmulatorThread("openai", api_key=OPENAI_KEY, limits=HttpLimits(max_body=4096)) as emu:
        yield emu


@pytest.fixture(scope="module")
def azure_thread() -> Iterator[EmulatorThread]:
    with EmulatorThread("azure", api_key=AZURE_KEY, entra_client_secret="s3cret") as emu:
        yield emu


@pytest.fixture
def oa(openai_thread: EmulatorThread) -> EmulatorThread:
    openai_thread.reset()
    return openai_thread


@pytest.fixture
def az(azure_thread: EmulatorThread) -> EmulatorThread:
    azure_thread.reset()
    return azure_thread


@pytest.fixture
def client(oa: EmulatorThread) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=oa.base_url, api_key=OPENAI_KEY, max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def azure_client(az: EmulatorThread) -> Iterator[openai.AzureOpenAI]:
    with openai.AzureOpenAI(
        azure_endpoint=az.base_url, api_key=AZURE_KEY, api_version=API_VERSION, max_retries=0
    ) as sdk:
        yield sdk


def chat(sdk: openai.OpenAI, **kw: Any) -> Any:
    return sdk.chat.completions.create(model=kw.pop("model", "gpt-4o"), messages=USER, **kw)


def stream_text(stream: Any) -> str:
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


# -- OpenAI: answers --------------------------------------------------------------------------


def test_chat_answer_echoes_model_and_counts_tokens(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="my-model", messages=USER)
    completion = raw.parse()
    assert raw.headers["x-request-id"].startswith("req_")
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "my-model"
    assert completion.choices[0].message.content == EXPECTED_TEXT
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 4 + 4
    assert completion.usage.completion_tokens == 6
    assert completion.usage.total_tokens == 14


def test_stream_with_usage_matches_the_whole_answer(client: openai.OpenAI) -> None:
    whole = chat(client)
    chunks = list(chat(client, stream=True, stream_options={"include_usage": True}))
    assert stream_text(chunks) == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].choices == []
    assert chunks[-1].usage == whole.usage
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_stream_without_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(chat(client, stream=True))
    assert all(c.choices for c in chunks)
    assert stream_text(chunks) == EXPECTED_TEXT


def test_tool_call_arguments_follow_the_schema(client: openai.OpenAI) -> None:
    completion = chat(client, tools=[WEATHER_TOOL], tool_choice="required")
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert arguments == {"city": "example", "unit": "celsius", "days": 2, "detailed": True}


def test_tool_call_stream_fragments_rebuild_the_same_call(client: openai.OpenAI) -> None:
    whole = chat(client, tools=[WEATHER_TOOL], tool_choice="required").choices[0].message
    named = {"type": "function", "function": {"name": "get_weather"}}
    chunks = list(chat(client, tools=[WEATHER_TOOL], tool_choice=named, stream=True))
    fragments = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices[0].delta.tool_calls]
    assert fragments[0].id == whole.tool_calls[0].id
    assert fragments[0].function.name == "get_weather"
    assert all(f.id is None and f.function.name is None for f in fragments[1:])
    assert len(fragments) >= 3  # the head, then arguments in two or more pieces
    arguments = "".join(f.function.arguments or "" for f in fragments)
    assert arguments == whole.tool_calls[0].function.arguments
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_json_schema_answer_validates(client: openai.OpenAI) -> None:
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "report", "schema": REPORT_SCHEMA, "strict": True},
    }
    content = chat(client, response_format=response_format).choices[0].message.content
    document = json.loads(content)
    assert conforms(document, REPORT_SCHEMA, REPORT_SCHEMA)
    assert set(document) == set(REPORT_SCHEMA["required"])


def test_json_object_answer(client: openai.OpenAI) -> None:
    content = chat(client, response_format={"type": "json_object"}).choices[0].message.content
    assert json.loads(content) == {"answer": EXPECTED_TEXT}


def test_images_are_counted(client: openai.OpenAI) -> None:
    pixel = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()
    content: list[ChatCompletionContentPartParam] = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": pixel}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": content}]
    answer = client.chat.completions.create(model="gpt-4o", messages=messages)
    assert answer.choices[0].message.content == "I received 2 images. You said: what is this"


def test_n_gives_indexed_choices(client: openai.OpenAI) -> None:
    completion = chat(client, n=2)
    assert [c.index for c in completion.choices] == [0, 1]
    assert completion.usage.completion_tokens == 12
    chunks = list(chat(client, n=2, stream=True))
    assert {c.choices[0].index for c in chunks} == {0, 1}


def test_stop_truncates_at_first_match(client: openai.OpenAI) -> None:
    choice = chat(client, stop=["delta", " gamma"]).choices[0]
    assert choice.message.content == "You said: alpha beta"
    assert choice.finish_reason == "stop"
    assert stream_text(chat(client, stop=" gamma", stream=True)) == "You said: alpha beta"


def test_max_tokens_cuts_to_length(client: openai.OpenAI) -> None:
    completion = chat(client, max_tokens=3)
    assert completion.choices[0].message.content == "You said: alpha"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 3
    newer = chat(client, max_completion_tokens=2)
    assert newer.choices[0].message.content == "You said:"


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "gpt-4o" in ids
    assert client.models.retrieve("gpt-4o").owned_by == "system"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("no-such-model")
    assert caught.value.code == "model_not_found"


def test_embeddings_base64_default_equals_floats(client: openai.OpenAI) -> None:
    inputs = ["hello world", "another text"]
    default = client.embeddings.create(model="text-embedding-3-small", input=inputs)
    floats = client.embeddings.create(
        model="text-embedding-3-small", input=inputs, encoding_format="float"
    )
    assert [d.embedding for d in default.data] == [d.embedding for d in floats.data]
    assert len(default.data[0].embedding) == 8
    assert default.data[0].embedding != default.data[1].embedding
    assert default.usage.prompt_tokens == 4
    sized = client.embeddings.create(model="e", input="x", dimensions=16, encoding_format="float")
    assert len(sized.data[0].embedding) == 16


def test_bad_key_is_an_authentication_error(oa: EmulatorThread) -> None:
    sdk = openai.OpenAI(base_url=oa.base_url, api_key="sk-wrong", max_retries=0)
    with sdk, pytest.raises(openai.AuthenticationError) as caught:
        chat(sdk)
    assert caught.value.code == "invalid_api_key"


def test_unknown_path_is_404_in_openai_shape(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.get("/nothing/here", cast_to=object)
    assert caught.value.type == "invalid_request_error"


# -- Azure ------------------------------------------------------------------------------------


def test_azure_chat_with_api_key(azure_client: openai.AzureOpenAI, az: EmulatorThread) -> None:
    completion = chat(azure_client, model="my-deployment")
    assert completion.model == "my-deployment"
    assert completion.choices[0].message.content == EXPECTED_TEXT
    extra = completion.model_extra or {}
    assert extra["prompt_filter_results"][0]["prompt_index"] == 0
    choice_extra = completion.choices[0].model_extra or {}
    assert choice_extra["content_filter_results"]["hate"] == {"filtered": False, "severity": "safe"}
    record = az.requests()[-1]
    assert record.path == "/openai/deployments/my-deployment/chat/completions"
    assert record.headers["api-key"] == "***"


def test_azure_stream_leads_with_prompt_filter_results(
    azure_client: openai.AzureOpenAI,
) -> None:
    chunks = list(
        chat(azure_client, model="dep", stream=True, stream_options={"include_usage": True})
    )
    assert chunks[0].choices == []
    assert (chunks[0].model_extra or {})["prompt_filter_results"]
    assert stream_text(chunks) == EXPECTED_TEXT
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6


def test_azure_entra_token_provider(az: EmulatorThread) -> None:
    with openai.AzureOpenAI(
        azure_endpoint=az.base_url,
        azure_ad_token_provider=lambda: "fake-entra",
        api_version=API_VERSION,
        max_retries=0,
    ) as sdk:
        assert chat(sdk, model="dep").choices[0].message.content == EXPECTED_TEXT
    assert az.requests()[-1].headers["authorization"] == "***"


def test_azure_bad_key(az: EmulatorThread) -> None:
    with (
        openai.AzureOpenAI(
            azure_endpoint=az.base_url, api_key="nope", api_version=API_VERSION, max_retries=0
        ) as sdk,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        chat(sdk, model="dep")
    assert caught.value.code == "401"


def test_azure_missing_api_version_is_400(az: EmulatorThread) -> None:
    base = f"{az.base_url}/openai/deployments/dep"
    with (
        openai.OpenAI(
            base_url=base, api_key="unused", default_headers={"api-key": AZURE_KEY}, max_retries=0
        ) as sdk,
        pytest.raises(openai.BadRequestError),
    ):
        chat(sdk, model="dep")


def test_azure_embeddings_and_models(azure_client: openai.AzureOpenAI) -> None:
    embedded = azure_client.embeddings.create(model="embed-dep", input="hello")
    assert embedded.model == "embed-dep"
    assert len(embedded.data[0].embedding) == 8
    assert "gpt-4o" in [m.id for m in azure_client.models.list()]


def test_azure_429_shape(azure_client: openai.AzureOpenAI, az: EmulatorThread) -> None:
    az.add_faults("dep", [{"kind": "status", "status": 429, "retry_after": 6}])
    with pytest.raises(openai.RateLimitError) as caught:
        chat(azure_client, model="dep")
    assert caught.value.response.headers["retry-after"] == "6"
    assert caught.value.code == "429"
    assert "ChatCompletions_Create" in caught.value.message
    assert "Please retry after 6 seconds" in caught.value.message


def test_azure_content_filter_blocks_the_prompt(
    azure_client: openai.AzureOpenAI, az: EmulatorThread
) -> None:
    az.add_faults("*", [{"kind": "content_filter"}])
    with pytest.raises(openai.BadRequestError) as caught:
        chat(azure_client, model="dep")
    assert caught.value.code == "content_filter"
    body = caught.value.body
    assert isinstance(body, dict) and body["innererror"]["code"] == "ResponsibleAIPolicyViolation"


def test_entra_token_endpoint(az: EmulatorThread) -> None:
    url = f"{az.base_url}/tenant-id/oauth2/v2.0/token"
    form = {
        "grant_type": "client_credentials",
        "client_id": "app",
        "client_secret": "s3cret",
        "scope": "https://cognitiveservices.azure.com/.default",
    }
    granted = httpx.post(url, data=form)
    assert granted.status_code == 200
    assert granted.json()["token_type"] == "Bearer" and granted.json()["access_token"]
    refused = httpx.post(url, data={**form, "client_secret": "wrong"})
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


# -- faults -----------------------------------------------------------------------------------


def test_status_429_carries_retry_after(client: openai.OpenAI, oa: EmulatorThread) -> None:
    oa.add_faults("gpt-4o", [{"kind": "status", "status": 429, "retry_after": 2}])
    with pytest.raises(openai.RateLimitError) as caught:
        chat(client)
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.code == "rate_limit_exceeded"


def test_reset_is_a_connection_error(client: openai.OpenAI, oa: EmulatorThread) -> None:
    oa.add_faults("*", [{"kind": "reset"}])
    with pytest.raises(openai.APIConnectionError):
        chat(client)


def test_hang_times_out(client: openai.OpenAI, oa: EmulatorThread) -> None:
    oa.add_faults("*", [{"kind": "hang"}])
    with pytest.raises(openai.APITimeoutError):
        chat(client, timeout=0.5)


def test_hang_applies_to_models_via_header(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APITimeoutError):
        client.models.list(extra_headers={"x-emulator-fault": '{"kind":"hang"}'}, timeout=0.3)


def test_delay_then_normal_answer(client: openai.OpenAI, oa: EmulatorThread) -> None:
    oa.add_faults("*", [{"kind": "delay", "seconds": 0.2}])
    started = time.monotonic()
    assert chat(client).choices[0].message.content == EXPECTED_TEXT
    assert time.monotonic() - started >= 0.2


def test_slow_first_token(client: openai.OpenAI, oa: EmulatorThread) -> None:
    oa.add_faults("*", [{"kind": "slow_first_token", "seconds": 0.2}])
    started = time.monotonic()
    stream = chat(client, stream=True)
    headers_at = time.monotonic() - started
    first = next(iter(stream))
    assert time.monotonic() - started >= 0.2 > headers_at
    assert first.choices[0].delta.role == "assistant"
    assert stream_text(stream) == EXPECTED_TEXT


def test_cut_mid_stream(client: openai.OpenAI, oa: EmulatorThread) -> None:
    oa.add_faults("*", [{"kind": "cut", "after_tokens": 2}])
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in chat(client, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "You said:"


def test_cut_mid_body(client: openai.OpenAI, oa: EmulatorThread) -> None:
    oa.add_faults("*", [{"kind": "cut"}])
    with pytest.raises(openai.APIConnectionError):
        chat(client)


def test_malformed_event_breaks_the_stream(client: openai.OpenAI, oa: EmulatorThread) -> None:
    oa.add_faults("*", [{"kind": "malformed", "after_tokens": 1}])
    with pytest.raises(json.JSONDecodeError):
        list(chat(client, stream=True))


def test_stream_error_event(client: openai.OpenAI, oa: EmulatorThread) -> None:
    fault = {"kind": "stream_error", "after_tokens": 3, "message": "overloaded mid-way"}
    oa.add_faults("*", [fault])
    with pytest.raises(openai.APIError, match="overloaded mid-way"):
        list(chat(client, stream=True))


def test_body_faults_without_streaming(client: openai.OpenAI, oa: EmulatorThread) -> None:
    oa.add_faults("*", [{"kind": "malformed"}, {"kind": "stream_error", "message": "boom"}])
    with pytest.raises(json.JSONDecodeError):
        chat(client)
    with pytest.raises(openai.InternalServerError, match="boom"):
        chat(client)


def test_stall_is_a_read_timeout(client: openai.OpenAI, oa: EmulatorThread) -> None:
    oa.add_faults("*", [{"kind": "stall", "after_tokens": 1}])
    stream = chat(client, stream=True, timeout=0.5)
    with pytest.raises(openai.APITimeoutError):
        list(stream)


def test_no_done_still_delivers_everything(client: openai.OpenAI, oa: EmulatorThread) -> None:
    oa.add_faults("*", [{"kind": "no_done"}])
    chunks = list(chat(client, stream=True, stream_options={"include_usage": True}))
    assert stream_text(chunks) == EXPECTED_TEXT
    assert chunks[-1].usage is not None


def test_context_length(client: openai.OpenAI, oa: EmulatorThread) -> None:
    oa.add_faults("*", [{"kind": "context_length", "max_context": 8192}])
    with pytest.raises(openai.BadRequestError) as caught:
        chat(client)
    assert caught.value.code == "context_length_exceeded"
    assert caught.value.param == "messages"
    assert "maximum context length is 8192 tokens" in caught.value.message


def test_openai_content_filter_finishes_the_choice(
    client: openai.OpenAI, oa: EmulatorThread
) -> None:
    oa.add_faults("*", [{"kind": "content_filter"}, {"kind": "content_filter"}])
    assert chat(client).choices[0].finish_reason == "content_filter"
    chunks = list(chat(client, stream=True))
    assert chunks[-1].choices[0].finish_reason == "content_filter"


def test_header_fault_applies_to_one_request(client: openai.OpenAI) -> None:
    fault = json.dumps({"kind": "status", "status": 503, "retry_after_ms": 250})
    with pytest.raises(openai.InternalServerError) as caught:
        chat(client, extra_headers={"x-emulator-fault": fault})
    assert caught.value.status_code == 503
    assert caught.value.response.headers["retry-after-ms"] == "250"
    assert chat(client).choices[0].message.content == EXPECTED_TEXT


def test_bad_header_fault_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="after_tokens"):
        chat(client, extra_headers={"x-emulator-fault": '{"kind":"cut","after_tokens":-1}'})


# -- script and ledger -------------------------------------------------------------------------


def test_script_is_consumed_in_order(client: openai.OpenAI, oa: EmulatorThread) -> None:
    oa.add_faults("gpt-4o", [{"kind": "status", "status": 429}, {"kind": "status", "status": 500}])
    oa.add_faults("*", [{"kind": "status", "status": 502}, {"kind": "status", "status": 504}])
    with pytest.raises(openai.RateLimitError):
        chat(client)  # the model's own queue comes before `*`
    with pytest.raises(openai.InternalServerError, match=r"server had an error"):
        chat(client)
    statuses = []
    for model in ("gpt-4o", "other"):
        with pytest.raises(openai.InternalServerError) as caught:
            chat(client, model=model)
        statuses.append(caught.value.status_code)
    assert statuses == [502, 504]
    assert chat(client).choices[0].message.content == EXPECTED_TEXT
    faults = [(r.model, r.fault) for r in oa.requests()]
    assert faults == [("gpt-4o", "status")] * 3 + [("other", "status"), ("gpt-4o", None)]


def test_repeat_fault_persists_until_cleared(client: openai.OpenAI, oa: EmulatorThread) -> None:
    oa.add_faults("gpt-4o", [{"kind": "status", "status": 503, "repeat": True}])
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            chat(client)
    oa.clear_faults()
    assert chat(client).choices[0].message.content == EXPECTED_TEXT


def test_embeddings_leave_stream_faults_for_chat(client: openai.OpenAI, oa: EmulatorThread) -> None:
    oa.add_faults("*", [{"kind": "cut", "after_tokens": 1}])
    assert client.embeddings.create(model="e", input="x").data
    with pytest.raises(openai.APIConnectionError):
        list(chat(client, stream=True))


def test_ledger_records_ids_attempts_and_faults(client: openai.OpenAI, oa: EmulatorThread) -> None:
    oa.add_faults("*", [{"kind": "status", "status": 500}])
    with pytest.raises(openai.InternalServerError):
        chat(client, extra_headers={"x-skyroute-attempt": "1"})
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=USER, stream=True, extra_headers={"x-skyroute-attempt": "2"}
    )
    list(raw.parse())
    first, second = oa.requests()
    assert (first.fault, first.attempt, first.stream) == ("status", "1", False)
    assert (second.fault, second.attempt, second.stream) == (None, "2", True)
    assert second.request_id == raw.headers["x-request-id"]
    assert second.headers["authorization"] == "***"
    assert second.path == "/v1/chat/completions" and second.model == "gpt-4o"
    assert second.time >= first.time


def test_control_api_over_http(client: openai.OpenAI, oa: EmulatorThread) -> None:
    control = f"http://127.0.0.1:{oa.port}/_emulator"
    order = {"model": "gpt-4o", "faults": [{"kind": "status", "status": 429}]}
    assert httpx.post(f"{control}/faults", json=order).status_code == 200
    assert httpx.get(f"{control}/faults").json() == {
        "gpt-4o": [{"kind": "status", "repeat": False, "status": 429, "retry_after": None,
                    "retry_after_ms": None, "code": None, "message": None,
                    "should_retry": None}]
    }  # fmt: skip
    with pytest.raises(openai.RateLimitError):
        chat(client)
    ledger = httpx.get(f"{control}/requests").json()
    assert ledger[0]["fault"] == "status" and ledger[0]["x-request-id"].startswith("req_")
    assert ledger[0]["headers"]["authorization"] == "***"
    bad = httpx.post(f"{control}/faults", json={"faults": [{"kind": "nope"}]})
    assert bad.status_code == 400
    httpx.post(f"{control}/faults", json={"faults": [{"kind": "reset"}]})
    assert httpx.delete(f"{control}/faults").status_code == 200
    assert chat(client).choices
    assert httpx.post(f"{control}/reset").status_code == 200
    assert httpx.get(f"{control}/requests").json() == []


# -- the HTTP server under the SDK ------------------------------------------------------------


def raw_exchange(port: int, payload: bytes, responses: int) -> bytes:
    """Send raw bytes, read until `responses` complete Content-Length responses arrived."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        data = b""
        while data.count(b"HTTP/1.1 ") < responses or not _complete(data, responses):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def _complete(data: bytes, responses: int) -> bool:
    rest = data
    for _ in range(responses):
        head, sep, rest = rest.partition(b"\r\n\r\n")
        if not sep:
            return False
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        if len(rest) < length:
            return False
        rest = rest[length:]
    return True


def test_pipelined_requests_are_answered_in_order(oa: EmulatorThread) -> None:
    auth = f"authorization: Bearer {OPENAI_KEY}\r\n".encode()
    one = b"GET /v1/models/gpt-4o HTTP/1.1\r\nhost: x\r\n" + auth + b"\r\n"
    two = b"GET /v1/models/o4-mini HTTP/1.1\r\nhost: x\r\n" + auth + b"\r\n"
    data = raw_exchange(oa.port, one + two, 2)
    assert data.index(b'"id":"gpt-4o"') < data.index(b'"id":"o4-mini"')


def test_chunked_request_body(oa: EmulatorThread) -> None:
    body = json.dumps({"model": "m", "messages": USER}).encode()
    half = len(body) // 2
    chunks = b"%x\r\n%b\r\n%x\r\n%b\r\n0\r\n\r\n" % (
        half,
        body[:half],
        len(body) - half,
        body[half:],
    )
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
        b"content-type: application/json\r\nauthorization: Bearer "
        + OPENAI_KEY.encode()
        + b"\r\n\r\n"
    )
    data = raw_exchange(oa.port, head + chunks, 1)
    assert data.startswith(b"HTTP/1.1 200 OK") and EXPECTED_TEXT.encode() in data


def test_body_limit_is_413(oa: EmulatorThread) -> None:
    body = b"x" * 5000
    head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % len(
        body
    )
    assert raw_exchange(oa.port, head + body, 1).startswith(b"HTTP/1.1 413")


def test_embedding_floats_are_float32(client: openai.OpenAI) -> None:
    vector = client.embeddings.create(model="e", input="z", encoding_format="float").data[0]
    packed = struct.pack("<8f", *vector.embedding)
    assert list(struct.unpack("<8f", packed)) == vector.embedding


async def test_async_sdk_against_serve_emulator() -> None:
    running = await serve_emulator("openai", api_key=OPENAI_KEY)
    try:
        async with openai.AsyncOpenAI(
            base_url=running.base_url, api_key=OPENAI_KEY, max_retries=0
        ) as sdk:
            answer = await sdk.chat.completions.create(model="gpt-4o", messages=USER)
            stream = await sdk.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
            text = "".join([c.choices[0].delta.content or "" async for c in stream])
        assert answer.choices[0].message.content == text == EXPECTED_TEXT
        assert len(running.emulator.requests) == 2
    finally:
        await running.close()


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"kind": "reset"}, openai.APIConnectionError),
        ({"kind": "cut", "after_tokens": 1}, openai.APIConnectionError),
        ({"kind": "stall", "after_tokens": 1}, openai.APITimeoutError),
        ({"kind": "hang"}, openai.APITimeoutError),
    ],
    ids=lambda value: value["kind"] if isinstance(value, dict) else value.__name__,
)
def test_socket_faults_under_uvloop(fault: dict[str, Any], error: type[Exception]) -> None:
    uvloop = pytest.importorskip("uvloop")
    with (
        EmulatorThread("openai", api_key=OPENAI_KEY, loop_factory=uvloop.new_event_loop) as emu,
        openai.OpenAI(base_url=emu.base_url, api_key=OPENAI_KEY, max_retries=0) as sdk,
    ):
        emu.add_faults("*", [fault])
        with pytest.raises(error):
            list(chat(sdk, stream=True, timeout=0.3))
        assert stream_text(chat(sdk, stream=True)) == EXPECTED_TEXT


def test_azure_body_may_omit_model(az: EmulatorThread) -> None:
    url = f"{az.base_url}/openai/deployments/dep/chat/completions?api-version={API_VERSION}"
    answer = httpx.post(url, json={"messages": USER}, headers={"api-key": AZURE_KEY})
    assert answer.status_code == 200 and answer.json()["model"] == "dep"


def test_openai_body_must_name_model(oa: EmulatorThread) -> None:
    answer = httpx.post(
        f"{oa.base_url}/chat/completions",
        json={"messages": USER},
        headers={"authorization": f"Bearer {OPENAI_KEY}"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "you must provide a model parameter"


def test_expect_continue_is_honoured(oa: EmulatorThread) -> None:
    body = json.dumps({"model": "m", "messages": USER}).encode()
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n"
        b"authorization: Bearer %b\r\ncontent-length: %d\r\n\r\n" % (OPENAI_KEY.encode(), len(body))
    )
    with socket.create_connection(("127.0.0.1", oa.port), timeout=5) as sock:
        sock.sendall(head)
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
