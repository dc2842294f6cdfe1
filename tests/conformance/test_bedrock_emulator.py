"""The Bedrock Runtime emulator, as boto3 (`bedrock-runtime`) and AnthropicBedrock see it.

If the official SDKs cannot tell the emulator from the cloud, the emulator is faithful; every
fault kind must surface in the SDK as the error a real outage would raise.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.eventstream import ChecksumMismatch
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EventStreamError,
    ReadTimeoutError,
)
from urllib3.exceptions import ProtocolError
from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeout

from skyroute.emulators.runner import EmulatorThread, serve_emulator

KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
PROFILE = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
ARN = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-1-8b-instruct-v1:0"
USER = [{"role": "user", "content": [{"text": "alpha beta gamma delta"}]}]
EXPECTED_TEXT = "You said: alpha beta gamma delta"
THINKING = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
# botocore's `max_attempts` counts retries in legacy mode; `total_max_attempts` is exact.
NO_RETRY = {"total_max_attempts": 1}

WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 2},
    },
    "required": ["city", "unit", "days"],
}
WEATHER_INPUT = {"city": "example", "unit": "celsius", "days": 2}
TOOLS = {
    "tools": [
        {
            "toolSpec": {
                "name": "get_weather",
                "description": "Weather for a city",
                "inputSchema": {"json": WEATHER_SCHEMA},
            }
        }
    ]
}


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bedrock_thread() -> Iterator[EmulatorThread]:
    with EmulatorThread(
        "bedrock", api_key="bedrock-api-key", access_key_id=KEY_ID, secret_access_key=SECRET
    ) as emu:
        yield emu


@pytest.fixture
def emu(bedrock_thread: EmulatorThread) -> EmulatorThread:
    bedrock_thread.reset()
    return bedrock_thread


def boto_client(emu: EmulatorThread, secret: str = SECRET, **kw: Any) -> Any:
    config = Config(retries=NO_RETRY, read_timeout=kw.pop("read_timeout", 10))
    return boto3.client(
        "bedrock-runtime",
        region_name=kw.pop("region_name", REGION),
        endpoint_url=emu.base_url,
        aws_access_key_id=kw.pop("key_id", KEY_ID),
        aws_secret_access_key=secret,
        config=config,
        **kw,
    )


@pytest.fixture
def brt(emu: EmulatorThread) -> Any:
    return boto_client(emu)


@pytest.fixture
def claude(emu: EmulatorThread) -> Iterator[anthropic.AnthropicBedrock]:
    with anthropic.AnthropicBedrock(
        base_url=emu.base_url,
        aws_access_key=KEY_ID,
        aws_secret_key=SECRET,
        aws_region=REGION,
        max_retries=0,
    ) as sdk:
        yield sdk


def converse(client: Any, **kw: Any) -> dict[str, Any]:
    answer: dict[str, Any] = client.converse(modelId=kw.pop("modelId", MODEL), messages=USER, **kw)
    return answer


def stream_events(client: Any, **kw: Any) -> list[dict[str, Any]]:
    answer = client.converse_stream(modelId=kw.pop("modelId", MODEL), messages=USER, **kw)
    return list(answer["stream"])


def streamed_text(events: list[dict[str, Any]]) -> str:
    deltas = (e["contentBlockDelta"]["delta"] for e in events if "contentBlockDelta" in e)
    return "".join(d.get("text", "") for d in deltas)


def signed_post(emu: EmulatorThread, path: str, body: bytes, **headers: str) -> httpx.Response:
    """A request signed by botocore's own signer, sent as is (for what boto3 would refuse)."""
    url = f"{emu.base_url}{path}"
    request = AWSRequest("POST", url, data=body, headers={"content-type": "application/json"})
    for name, value in headers.items():
        request.headers[name.replace("_", "-")] = value
    SigV4Auth(Credentials(KEY_ID, SECRET), "bedrock", REGION).add_auth(request)
    return httpx.post(url, content=body, headers=dict(request.headers.items()))


# -- Converse ---------------------------------------------------------------------------------


def test_converse_text_usage_and_request_id(brt: Any, emu: EmulatorThread) -> None:
    answer = converse(brt)
    assert answer["output"]["message"] == {
        "role": "assistant",
        "content": [{"text": EXPECTED_TEXT}],
    }
    assert answer["stopReason"] == "end_turn"
    assert answer["usage"] == {"inputTokens": 8, "outputTokens": 6, "totalTokens": 14}
    assert answer["metrics"]["latencyMs"] > 0
    record = emu.requests()[-1]
    assert answer["ResponseMetadata"]["RequestId"] == record.request_id
    assert record.model == MODEL and record.stream is False
    assert record.path == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    assert record.headers["authorization"] == "***"


def test_system_prompt_counts_as_input(brt: Any) -> None:
    plain = converse(brt)["usage"]["inputTokens"]
    with_system = converse(brt, system=[{"text": "Be brief."}])
    assert with_system["usage"]["inputTokens"] == plain + 2 + 4
    assert with_system["output"]["message"]["content"][0]["text"] == EXPECTED_TEXT


@pytest.mark.parametrize(
    "choice", [{"any": {}}, {"tool": {"name": "get_weather"}}], ids=["any", "tool"]
)
def test_forced_tool_choice_gives_schema_valid_tool_use(brt: Any, choice: dict[str, Any]) -> None:
    answer = converse(brt, toolConfig={**TOOLS, "toolChoice": choice})
    assert answer["stopReason"] == "tool_use"
    (block,) = answer["output"]["message"]["content"]
    use = block["toolUse"]
    assert use["toolUseId"].startswith("tooluse_")
    assert use["name"] == "get_weather"
    assert use["input"] == WEATHER_INPUT


def test_auto_tool_choice_answers_in_text(brt: Any) -> None:
    answer = converse(brt, toolConfig={**TOOLS, "toolChoice": {"auto": {}}})
    assert answer["stopReason"] == "end_turn"
    assert answer["output"]["message"]["content"] == [{"text": EXPECTED_TEXT}]


def test_tool_result_turn(brt: Any) -> None:
    first = converse(brt, toolConfig={**TOOLS, "toolChoice": {"any": {}}})
    call = first["output"]["message"]
    use_id = call["content"][0]["toolUse"]["toolUseId"]
    result = {"toolUseId": use_id, "content": [{"json": {"temp": 21}}], "status": "success"}
    messages = [*USER, call, {"role": "user", "content": [{"toolResult": result}]}]
    answer = brt.converse(modelId=MODEL, messages=messages, toolConfig=TOOLS)
    assert answer["output"]["message"]["content"] == [{"text": 'The tool returned: {"temp":21}'}]
    assert answer["stopReason"] == "end_turn"


def test_images_are_counted(brt: Any) -> None:
    image = {"image": {"format": "png", "source": {"bytes": b"\x89PNG fake"}}}
    messages = [{"role": "user", "content": [{"text": "what is this"}, image, image]}]
    answer = brt.converse(modelId=MODEL, messages=messages)
    text = answer["output"]["message"]["content"][0]["text"]
    assert text == "I received 2 images. You said: what is this"


def test_reasoning_comes_first_with_a_signature(brt: Any) -> None:
    answer = converse(brt, additionalModelRequestFields=THINKING)
    reasoning, text = answer["output"]["message"]["content"]
    assert reasoning["reasoningContent"]["reasoningText"]["text"]
    assert reasoning["reasoningContent"]["reasoningText"]["signature"]
    assert text == {"text": EXPECTED_TEXT}
    assert answer["usage"]["outputTokens"] > 6


def test_reasoning_history_is_accepted(brt: Any) -> None:
    first = converse(brt, additionalModelRequestFields=THINKING)["output"]["message"]
    messages = [*USER, first, {"role": "user", "content": [{"text": "and then"}]}]
    answer = brt.converse(modelId=MODEL, messages=messages)
    assert answer["output"]["message"]["content"] == [{"text": "You said: and then"}]


def test_output_config_json_schema(brt: Any) -> None:
    structure = {"jsonSchema": {"schema": json.dumps(WEATHER_SCHEMA), "name": "weather"}}
    output_config = {"textFormat": {"type": "json_schema", "structure": structure}}
    answer = converse(brt, outputConfig=output_config)
    assert json.loads(answer["output"]["message"]["content"][0]["text"]) == WEATHER_INPUT


def test_max_tokens_and_stop_sequences(brt: Any) -> None:
    short = converse(brt, inferenceConfig={"maxTokens": 3})
    assert short["output"]["message"]["content"][0]["text"] == "You said: alpha"
    assert short["stopReason"] == "max_tokens"
    stopped = converse(brt, inferenceConfig={"stopSequences": [" gamma"]})
    assert stopped["output"]["message"]["content"][0]["text"] == "You said: alpha beta"
    assert stopped["stopReason"] == "stop_sequence"


@pytest.mark.parametrize("model", [MODEL, PROFILE, ARN], ids=["base", "profile", "arn"])
def test_model_ids_are_decoded(brt: Any, emu: EmulatorThread, model: str) -> None:
    assert converse(brt, modelId=model)["stopReason"] == "end_turn"
    record = emu.requests()[-1]
    assert record.model == model
    assert ":" not in record.path and "/" not in record.path.split("/")[2]


# -- ConverseStream ---------------------------------------------------------------------------


def test_stream_matches_the_whole_answer(brt: Any) -> None:
    whole = converse(brt)
    events = stream_events(brt)
    assert events[0] == {"messageStart": {"role": "assistant"}}
    assert not any("contentBlockStart" in e for e in events)
    assert streamed_text(events) == EXPECTED_TEXT
    assert events[-2] == {"messageStop": {"stopReason": "end_turn"}}
    assert events[-1]["metadata"]["usage"] == whole["usage"]
    assert events[-3] == {"contentBlockStop": {"contentBlockIndex": 0}}


def test_stream_tool_input_fragments_join_to_the_same_input(brt: Any) -> None:
    config = {**TOOLS, "toolChoice": {"any": {}}}
    whole = converse(brt, toolConfig=config)["output"]["message"]["content"][0]["toolUse"]
    events = stream_events(brt, toolConfig=config)
    start = next(e["contentBlockStart"] for e in events if "contentBlockStart" in e)
    assert start["start"]["toolUse"] == {"toolUseId": whole["toolUseId"], "name": "get_weather"}
    fragments = [
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in events
        if "contentBlockDelta" in e
    ]
    assert len(fragments) >= 2
    assert json.loads("".join(fragments)) == whole["input"]
    assert events[-2] == {"messageStop": {"stopReason": "tool_use"}}


def test_stream_reasoning_then_text(brt: Any) -> None:
    whole = converse(brt, additionalModelRequestFields=THINKING)["output"]["message"]["content"]
    events = stream_events(brt, additionalModelRequestFields=THINKING)
    reasoning = [
        e["contentBlockDelta"]["delta"]["reasoningContent"]
        for e in events
        if "contentBlockDelta" in e and e["contentBlockDelta"]["contentBlockIndex"] == 0
    ]
    expected = whole[0]["reasoningContent"]["reasoningText"]
    assert "".join(r.get("text", "") for r in reasoning) == expected["text"]
    assert reasoning[-1] == {"signature": expected["signature"]}
    assert streamed_text(events) == EXPECTED_TEXT


# -- auth -------------------------------------------------------------------------------------


def test_wrong_secret_is_invalid_signature(emu: EmulatorThread) -> None:
    with pytest.raises(ClientError) as caught:
        converse(boto_client(emu, secret="wrong"))
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unknown_key_is_unrecognized_client(emu: EmulatorThread) -> None:
    with pytest.raises(ClientError) as caught:
        converse(boto_client(emu, key_id="AKIDOTHER"))
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_any_region_and_any_session_token(emu: EmulatorThread) -> None:
    client = boto_client(emu, region_name="eu-west-3", aws_session_token="token-1")
    assert converse(client)["stopReason"] == "end_turn"
    assert emu.requests()[-1].headers["x-amz-security-token"] == "***"


def test_configured_session_token_must_match() -> None:
    with EmulatorThread(
        "bedrock", access_key_id=KEY_ID, secret_access_key=SECRET, session_token="good"
    ) as emu:
        assert converse(boto_client(emu, aws_session_token="good"))["stopReason"] == "end_turn"
        for token in ("bad", None):
            with pytest.raises(ClientError) as caught:
                converse(boto_client(emu, aws_session_token=token))
            assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_clock_skew_is_refused() -> None:
    with EmulatorThread(
        "bedrock",
        access_key_id=KEY_ID,
        secret_access_key=SECRET,
        wall_clock=lambda: time.time() + 600,
    ) as emu:
        with pytest.raises(ClientError) as caught:
            converse(boto_client(emu))
        assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
        assert "Signature expired" in caught.value.response["Error"]["Message"]


def test_unsigned_request_is_missing_token(emu: EmulatorThread) -> None:
    answer = httpx.post(f"{emu.base_url}/model/m/converse", json={"messages": USER})
    assert answer.status_code == 403
    assert answer.headers["x-amzn-ErrorType"].startswith("MissingAuthenticationTokenException:")


def test_bearer_api_key(emu: EmulatorThread) -> None:
    url = f"{emu.base_url}/model/m/converse"
    good = httpx.post(
        url, json={"messages": USER}, headers={"authorization": "Bearer bedrock-api-key"}
    )
    assert good.status_code == 200
    assert good.json()["output"]["message"]["content"][0]["text"] == EXPECTED_TEXT
    bad = httpx.post(url, json={"messages": USER}, headers={"authorization": "Bearer nope"})
    assert bad.status_code == 403 and bad.json()["message"]


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ([USER[0], USER[0]], "must alternate between user and assistant"),
        ([{"role": "assistant", "content": [{"text": "hi"}]}], "must start with a user message"),
        ([{"role": "user", "content": []}], "content field in the Message object at messages.0"),
    ],
    ids=["alternation", "first-role", "empty-content"],
)
def test_conversation_shape_is_validated(brt: Any, messages: list[Any], fragment: str) -> None:
    with pytest.raises(ClientError) as caught:
        brt.converse(modelId=MODEL, messages=messages)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert fragment in caught.value.response["Error"]["Message"]


def test_tool_use_needs_tool_config(brt: Any) -> None:
    use = {"toolUse": {"toolUseId": "tooluse_1", "name": "f", "input": {}}}
    result = {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "ok"}]}}
    messages = [
        *USER,
        {"role": "assistant", "content": [use]},
        {"role": "user", "content": [result]},
    ]
    with pytest.raises(ClientError, match="toolConfig field must be defined"):
        brt.converse(modelId=MODEL, messages=messages)


def test_unknown_top_level_field_is_refused(emu: EmulatorThread) -> None:
    body = json.dumps({"messages": USER, "temperature": 0.5}).encode()
    answer = signed_post(emu, "/model/m/converse", body)
    assert answer.status_code == 400
    assert answer.headers["x-amzn-ErrorType"].startswith("ValidationException:")
    assert "temperature" in answer.json()["message"]


def test_unknown_operation_is_404(emu: EmulatorThread) -> None:
    answer = signed_post(emu, "/model/m/nothing", b"{}")
    assert answer.status_code == 404


# -- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (429, "ThrottlingException"),
        (503, "ServiceUnavailableException"),
        (500, "InternalServerException"),
        (424, "ModelErrorException"),
        (408, "ModelTimeoutException"),
        (400, "ValidationException"),
        (403, "AccessDeniedException"),
    ],
)
def test_status_faults_use_bedrock_error_codes(
    brt: Any, emu: EmulatorThread, status: int, code: str
) -> None:
    emu.add_faults(MODEL, [{"kind": "status", "status": status, "retry_after": 3}])
    with pytest.raises(ClientError) as caught:
        converse(brt)
    response = caught.value.response
    assert response["Error"]["Code"] == code
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert "retry-after" not in response["ResponseMetadata"]["HTTPHeaders"]


def test_faults_are_keyed_by_decoded_model_id(brt: Any, emu: EmulatorThread) -> None:
    emu.add_faults(ARN, [{"kind": "status", "status": 429}])
    assert converse(brt)["stopReason"] == "end_turn"
    with pytest.raises(ClientError, match="ThrottlingException"):
        converse(brt, modelId=ARN)
    assert [(r.model, r.fault) for r in emu.requests()] == [(MODEL, None), (ARN, "status")]


def test_reset_is_connection_closed(brt: Any, emu: EmulatorThread) -> None:
    emu.add_faults("*", [{"kind": "reset"}])
    with pytest.raises(ConnectionClosedError):
        converse(brt)


def test_hang_is_a_read_timeout(emu: EmulatorThread) -> None:
    emu.add_faults("*", [{"kind": "hang"}])
    with pytest.raises(ReadTimeoutError):
        converse(boto_client(emu, read_timeout=0.3))


def test_delay_then_normal_answer(brt: Any, emu: EmulatorThread) -> None:
    emu.add_faults("*", [{"kind": "delay", "seconds": 0.2}])
    started = time.monotonic()
    assert converse(brt)["stopReason"] == "end_turn"
    assert time.monotonic() - started >= 0.2


def test_slow_first_token(brt: Any, emu: EmulatorThread) -> None:
    emu.add_faults("*", [{"kind": "slow_first_token", "seconds": 0.2}])
    started = time.monotonic()
    stream = brt.converse_stream(modelId=MODEL, messages=USER)["stream"]
    head = time.monotonic() - started
    events = list(stream)
    assert time.monotonic() - started >= 0.2 > head
    assert streamed_text(events) == EXPECTED_TEXT


def test_cut_mid_stream(brt: Any, emu: EmulatorThread) -> None:
    emu.add_faults("*", [{"kind": "cut", "after_tokens": 2}])
    received: list[dict[str, Any]] = []
    with pytest.raises(ProtocolError):
        for event in brt.converse_stream(modelId=MODEL, messages=USER)["stream"]:
            received.append(event)
    assert streamed_text(received) == "You said:"


def test_stall_mid_stream_is_a_read_timeout(emu: EmulatorThread) -> None:
    emu.add_faults("*", [{"kind": "stall", "after_tokens": 1}])
    client = boto_client(emu, read_timeout=0.3)
    with pytest.raises(Urllib3ReadTimeout):
        stream_events(client)


def test_malformed_frame_fails_its_checksum(brt: Any, emu: EmulatorThread) -> None:
    emu.add_faults("*", [{"kind": "malformed", "after_tokens": 1}])
    with pytest.raises(ChecksumMismatch):
        stream_events(brt)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (None, "throttlingException"),
        ("modelStreamErrorException", "modelStreamErrorException"),
        ("ServiceUnavailableException", "serviceUnavailableException"),
    ],
)
def test_stream_error_is_an_event_stream_error(
    brt: Any, emu: EmulatorThread, code: str | None, expected: str
) -> None:
    emu.add_faults("*", [{"kind": "stream_error", "after_tokens": 2, "code": code}])
    received: list[dict[str, Any]] = []
    with pytest.raises(EventStreamError) as caught:
        for event in brt.converse_stream(modelId=MODEL, messages=USER)["stream"]:
            received.append(event)
    assert caught.value.response["Error"]["Code"] == expected
    assert streamed_text(received) == "You said:"


def test_stream_error_without_streaming_is_an_http_error(brt: Any, emu: EmulatorThread) -> None:
    emu.add_faults("*", [{"kind": "stream_error", "message": "slow down"}])
    with pytest.raises(ClientError) as caught:
        converse(brt)
    assert caught.value.response["Error"] == {"Code": "ThrottlingException", "Message": "slow down"}


def test_broken_bodies_carry_no_output(brt: Any, emu: EmulatorThread) -> None:
    # botocore swallows JSON it cannot parse: the caller sees a response without `output`.
    emu.add_faults("*", [{"kind": "cut"}, {"kind": "malformed"}])
    assert "output" not in converse(brt)
    assert "output" not in converse(brt)


def test_context_length(brt: Any, emu: EmulatorThread) -> None:
    emu.add_faults("*", [{"kind": "context_length"}])
    with pytest.raises(ClientError) as caught:
        converse(brt)
    error = caught.value.response["Error"]
    assert error == {
        "Code": "ValidationException",
        "Message": "Input is too long for requested model.",
    }


def test_content_filter_is_a_guardrail(brt: Any, emu: EmulatorThread) -> None:
    emu.add_faults("*", [{"kind": "content_filter"}, {"kind": "content_filter"}])
    assert converse(brt)["stopReason"] == "guardrail_intervened"
    events = stream_events(brt)
    assert events[-2] == {"messageStop": {"stopReason": "guardrail_intervened"}}


def test_no_done_leaves_out_the_metadata(brt: Any, emu: EmulatorThread) -> None:
    emu.add_faults("*", [{"kind": "no_done"}])
    events = stream_events(brt)
    assert "messageStop" in events[-1]
    assert streamed_text(events) == EXPECTED_TEXT


def test_header_fault_and_control_api(emu: EmulatorThread) -> None:
    body = json.dumps({"messages": USER}).encode()
    fault = json.dumps({"kind": "status", "status": 503})
    answer = signed_post(emu, "/model/m/converse", body, x_emulator_fault=fault)
    assert answer.status_code == 503
    assert answer.headers["x-amzn-ErrorType"].startswith("ServiceUnavailableException:")
    control = f"{emu.base_url}/_emulator"
    order = {"model": MODEL, "faults": [{"kind": "status", "status": 429}]}
    assert httpx.post(f"{control}/faults", json=order).status_code == 200
    assert list(httpx.get(f"{control}/faults").json()) == [MODEL]
    ledger = httpx.get(f"{control}/requests").json()
    assert ledger[0]["fault"] == "status" and ledger[0]["model"] == "m"
    assert httpx.post(f"{control}/reset").status_code == 200
    assert httpx.get(f"{control}/faults").json() == {}


# -- AnthropicBedrock (InvokeModel) -----------------------------------------------------------

CLAUDE_USER: list[Any] = [{"role": "user", "content": "alpha beta gamma delta"}]
CLAUDE_TOOL: Any = {"name": "get_weather", "description": "Weather", "input_schema": WEATHER_SCHEMA}


def test_invoke_text(claude: anthropic.AnthropicBedrock, emu: EmulatorThread) -> None:
    message = claude.messages.create(
        model=PROFILE, max_tokens=100, messages=CLAUDE_USER, extra_body={"temperature": 0.2}
    )
    assert message.content[0].type == "text" and message.content[0].text == EXPECTED_TEXT
    assert message.stop_reason == "end_turn"
    assert message.id.startswith("msg_bdrk_")
    assert (message.usage.input_tokens, message.usage.output_tokens) == (8, 6)
    record = emu.requests()[-1]
    assert record.path == f"/model/{PROFILE}/invoke"  # AnthropicBedrock leaves `:` raw
    assert record.model == PROFILE and record.stream is False


def test_invoke_stream_matches_create(claude: anthropic.AnthropicBedrock) -> None:
    whole = claude.messages.create(model=MODEL, max_tokens=100, messages=CLAUDE_USER)
    with claude.messages.stream(model=MODEL, max_tokens=100, messages=CLAUDE_USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == EXPECTED_TEXT
    assert [b.to_dict() for b in final.content] == [b.to_dict() for b in whole.content]
    assert final.usage.output_tokens == whole.usage.output_tokens


def test_invoke_tool_use_create_and_stream(claude: anthropic.AnthropicBedrock) -> None:
    kw: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 100,
        "messages": CLAUDE_USER,
        "tools": [CLAUDE_TOOL],
        "tool_choice": {"type": "any"},
    }
    whole = claude.messages.create(**kw)
    assert whole.stop_reason == "tool_use"
    block = whole.content[0]
    assert block.type == "tool_use" and block.input == WEATHER_INPUT
    assert block.id.startswith("toolu_bdrk_")
    with claude.messages.stream(**kw) as stream:
        final = stream.get_final_message()
    assert final.content == whole.content and final.stop_reason == "tool_use"


def test_invoke_tool_result_turn(claude: anthropic.AnthropicBedrock) -> None:
    first = claude.messages.create(
        model=MODEL, max_tokens=100, messages=CLAUDE_USER, tools=[CLAUDE_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
    )  # fmt: skip
    call = first.content[0]
    assert call.type == "tool_use"
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}
    messages: list[Any] = [
        *CLAUDE_USER,
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [result]},
    ]
    answer = claude.messages.create(
        model=MODEL, max_tokens=100, messages=messages, tools=[CLAUDE_TOOL]
    )
    assert answer.content[0].type == "text"
    assert answer.content[0].text == "The tool returned: sunny"


def test_invoke_thinking(claude: anthropic.AnthropicBedrock) -> None:
    thinking: Any = {"type": "enabled", "budget_tokens": 1024}
    with claude.messages.stream(
        model=MODEL, max_tokens=2000, messages=CLAUDE_USER, thinking=thinking
    ) as stream:
        final = stream.get_final_message()
    first, second = final.content
    assert first.type == "thinking" and first.thinking and first.signature
    assert second.type == "text" and second.text == EXPECTED_TEXT


def test_invoke_stream_chunks_wrap_anthropic_events(emu: EmulatorThread) -> None:
    body = json.dumps(
        {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": CLAUDE_USER}
    ).encode()
    answer = signed_post(emu, f"/model/{MODEL}/invoke-with-response-stream", body)
    assert answer.headers["content-type"] == "application/vnd.amazon.eventstream"
    assert answer.headers["x-amzn-bedrock-content-type"] == "application/json"
    chunks = [
        json.loads(base64.b64decode(json.loads(piece)["bytes"]))
        for piece in _payloads(answer.content)
    ]
    assert chunks[0]["type"] == "message_start" and chunks[-1]["type"] == "message_stop"
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert metrics["outputTokenCount"] == 6 and metrics["inputTokenCount"] == 8


def _payloads(data: bytes) -> Iterator[bytes]:
    from skyroute.transport.eventstream import EventStreamDecoder

    for message in EventStreamDecoder().feed(data):
        assert message.event_type == "chunk"
        yield message.payload


def test_invoke_rejects_unknown_keys(claude: anthropic.AnthropicBedrock) -> None:
    with pytest.raises(anthropic.BadRequestError, match=r"extraneous key \[foo\]"):
        claude.messages.create(
            model=MODEL, max_tokens=10, messages=CLAUDE_USER, extra_body={"foo": 1}
        )


def test_invoke_faults(claude: anthropic.AnthropicBedrock, emu: EmulatorThread) -> None:
    emu.add_faults(MODEL, [{"kind": "status", "status": 429}, {"kind": "stream_error"}])
    with pytest.raises(anthropic.RateLimitError):
        claude.messages.create(model=MODEL, max_tokens=10, messages=CLAUDE_USER)
    with (
        pytest.raises(anthropic.APIStatusError, match="throttlingException"),
        claude.messages.stream(model=MODEL, max_tokens=10, messages=CLAUDE_USER) as stream,
    ):
        stream.get_final_message()


def test_invoke_content_filter(claude: anthropic.AnthropicBedrock, emu: EmulatorThread) -> None:
    emu.add_faults("*", [{"kind": "content_filter"}])
    message = claude.messages.create(model=MODEL, max_tokens=10, messages=CLAUDE_USER)
    assert message.stop_reason == "refusal"


def test_invoke_wrong_secret(emu: EmulatorThread) -> None:
    with (
        anthropic.AnthropicBedrock(
            base_url=emu.base_url,
            aws_access_key=KEY_ID,
            aws_secret_key="wrong",
            aws_region=REGION,
            max_retries=0,
        ) as sdk,
        pytest.raises(anthropic.PermissionDeniedError),
    ):
        sdk.messages.create(model=MODEL, max_tokens=10, messages=CLAUDE_USER)


def test_invoke_with_api_key(emu: EmulatorThread) -> None:
    with anthropic.AnthropicBedrock(
        base_url=emu.base_url, api_key="bedrock-api-key", aws_region=REGION, max_retries=0
    ) as sdk:
        message = sdk.messages.create(model=MODEL, max_tokens=10, messages=CLAUDE_USER)
    assert message.content[0].type == "text"


async def test_async_sdk_against_serve_emulator() -> None:
    running = await serve_emulator("bedrock", access_key_id=KEY_ID, secret_access_key=SECRET)
    try:
        async with anthropic.AsyncAnthropicBedrock(
            base_url=running.base_url,
            aws_access_key=KEY_ID,
            aws_secret_key=SECRET,
            aws_region=REGION,
            max_retries=0,
        ) as sdk:
            message = await sdk.messages.create(model=MODEL, max_tokens=10, messages=CLAUDE_USER)
            async with sdk.messages.stream(
                model=MODEL, max_tokens=10, messages=CLAUDE_USER
            ) as stream:
                text = "".join([piece async for piece in stream.text_stream])
        assert message.content[0].type == "text"
        assert message.content[0].text == text == "You said: alpha beta gamma delta"
        assert [r.stream for r in running.emulator.requests] == [False, True]
    finally:
        await running.close()
