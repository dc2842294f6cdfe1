"""The first-party Anthropic emulator, as the official `anthropic` SDK (2.14) sees it.

If the SDK cannot tell the emulator from api.anthropic.com, the emulator is faithful; every
fault kind must surface in the SDK as the error a real outage would raise.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import pytest

from skyroute.emulators.faults import StatusFault
from skyroute.emulators.runner import EmulatorThread, serve_emulator

KEY = "sk-ant-test"
MODEL = "claude-sonnet-4-6"
USER: list[Any] = [{"role": "user", "content": "alpha beta gamma delta"}]
EXPECTED_TEXT = "You said: alpha beta gamma delta"
THINKING: Any = {"type": "enabled", "budget_tokens": 1024}
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
TOOL: Any = {"name": "get_weather", "description": "Weather", "input_schema": WEATHER_SCHEMA}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def anthropic_thread() -> Iterator[EmulatorThread]:
    with EmulatorThread("anthropic", api_key=KEY) as emu:
        yield emu


@pytest.fixture
def emu(anthropic_thread: EmulatorThread) -> EmulatorThread:
    anthropic_thread.reset()
    return anthropic_thread


@pytest.fixture
def client(emu: EmulatorThread) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=emu.base_url, api_key=KEY, max_retries=0) as sdk:
        yield sdk


def create(client: anthropic.Anthropic, **kw: Any) -> anthropic.types.Message:
    kw.setdefault("model", MODEL)
    kw.setdefault("max_tokens", 100)
    kw.setdefault("messages", USER)
    message: anthropic.types.Message = client.messages.create(**kw)
    return message


def stream_final(client: anthropic.Anthropic, **kw: Any) -> tuple[str, anthropic.types.Message]:
    kw.setdefault("model", MODEL)
    kw.setdefault("max_tokens", 100)
    kw.setdefault("messages", USER)
    with client.messages.stream(**kw) as stream:
        text = "".join(stream.text_stream)
        return text, stream.get_final_message()


def raw_post(emu: EmulatorThread, path: str, body: Any, **headers: str) -> httpx.Response:
    sent = {"x-api-key": KEY, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return httpx.post(f"{emu.base_url}{path}", json=body, headers=sent, timeout=5)


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of every SSE message; asserts each data line has its event line."""
    events = []
    for message in text.strip().split("\n\n"):
        lines = message.split("\n")
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), message
        events.append((lines[0][7:], json.loads(lines[1][6:])))
    return events


def blocks(message: anthropic.types.Message) -> list[dict[str, Any]]:
    return [block.to_dict() for block in message.content]


# -- messages ---------------------------------------------------------------------------------


def test_text_answer(client: anthropic.Anthropic, emu: EmulatorThread) -> None:
    raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=100, messages=USER)
    message = raw.parse()
    assert message.content[0].type == "text" and message.content[0].text == EXPECTED_TEXT
    assert message.id.startswith("msg_01") and len(message.id) == 28
    assert (message.stop_reason, message.stop_sequence, message.model) == ("end_turn", None, MODEL)
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (8, 6)
    assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (0, 0)
    assert raw.headers["request-id"].startswith("req_")
    (record,) = emu.requests()
    assert (record.method, record.path, record.model, record.stream) == (
        "POST",
        "/v1/messages",
        MODEL,
        False,
    )
    assert record.headers["authorization"] == "***"
    assert record.request_id == raw.headers["request-id"]


def test_system_prompt_counts_as_input(client: anthropic.Anthropic) -> None:
    as_text = create(client, system="Be brief.")
    as_blocks = create(
        client, system=[{"type": "text", "text": "Be"}, {"type": "text", "text": "brief."}]
    )
    assert as_text.usage.input_tokens == as_blocks.usage.input_tokens == 8 + 2 + 4
    assert as_text.content[0].type == "text" and as_text.content[0].text == EXPECTED_TEXT


def test_stream_matches_create(client: anthropic.Anthropic, emu: EmulatorThread) -> None:
    whole = create(client)
    text, final = stream_final(client)
    assert text == EXPECTED_TEXT
    assert blocks(final) == blocks(whole)
    assert final.usage.to_dict() == whole.usage.to_dict()
    assert final.stop_reason == "end_turn"
    assert [r.stream for r in emu.requests()] == [False, True]


def test_stream_events_in_order_each_named(emu: EmulatorThread) -> None:
    body = {"model": MODEL, "max_tokens": 100, "messages": USER, "stream": True}
    answer = raw_post(emu, "/v1/messages", body)
    assert answer.headers["content-type"].startswith("text/event-stream")
    names = [name for name, _ in sse_events(answer.text)]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        *["content_block_delta"] * 6,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(name == data["type"] for name, data in sse_events(answer.text))
    delta = sse_events(answer.text)[-2][1]
    assert delta["usage"]["output_tokens"] == 6 and delta["delta"]["stop_reason"] == "end_turn"


@pytest.mark.parametrize(
    "choice", [{"type": "any"}, {"type": "tool", "name": "get_weather"}], ids=["any", "tool"]
)
def test_forced_tool_choice_gives_schema_valid_tool_use(
    client: anthropic.Anthropic, choice: Any
) -> None:
    message = create(client, tools=[TOOL], tool_choice=choice)
    assert message.stop_reason == "tool_use"
    (block,) = message.content
    assert block.type == "tool_use" and block.name == "get_weather"
    assert block.input == WEATHER_INPUT and block.id.startswith("toolu_01")


def test_auto_tool_choice_calls_a_tool_the_user_names(client: anthropic.Anthropic) -> None:
    plain = create(client, tools=[TOOL])
    assert plain.stop_reason == "end_turn" and plain.content[0].type == "text"
    named = create(client, tools=[TOOL], messages=[{"role": "user", "content": "get_weather now"}])
    assert named.stop_reason == "tool_use" and named.content[0].type == "tool_use"


def test_tool_loop_create_and_stream(client: anthropic.Anthropic) -> None:
    call = create(client, tools=[TOOL], tool_choice={"type": "any"})
    with client.messages.stream(
        model=MODEL, max_tokens=100, messages=USER, tools=[TOOL], tool_choice={"type": "any"}
    ) as stream:
        fragments = [e.partial_json for e in stream if e.type == "input_json"]
        streamed = stream.get_final_message()
    assert len(fragments) >= 2 and json.loads("".join(fragments)) == WEATHER_INPUT
    assert blocks(streamed) == blocks(call) and streamed.stop_reason == "tool_use"
    use_id = call.content[0].id  # type: ignore[union-attr]
    result = {"type": "tool_result", "tool_use_id": use_id, "content": "21 degrees"}
    history = [
        *USER,
        {"role": "assistant", "content": blocks(call)},
        {"role": "user", "content": [result]},
    ]
    answer = create(client, tools=[TOOL], messages=history)
    assert answer.content[0].type == "text"
    assert answer.content[0].text == "The tool returned: 21 degrees"
    assert answer.stop_reason == "end_turn"


def test_thinking_blocks_carry_a_signature(client: anthropic.Anthropic) -> None:
    whole = create(client, max_tokens=2048, thinking=THINKING)
    thinking, text = whole.content
    assert thinking.type == "thinking" and thinking.thinking and thinking.signature
    assert text.type == "text" and text.text == EXPECTED_TEXT
    streamed_text, streamed = stream_final(client, max_tokens=2048, thinking=THINKING)
    assert streamed_text == EXPECTED_TEXT and blocks(streamed) == blocks(whole)
    adaptive = create(client, thinking={"type": "adaptive"})
    assert [block.type for block in adaptive.content] == ["thinking", "text"]
    assert [block.type for block in create(client, thinking={"type": "disabled"}).content] == [
        "text"
    ]


def test_thinking_signature_round_trips_in_a_tool_loop(client: anthropic.Anthropic) -> None:
    ask: Any = [{"role": "user", "content": "please get_weather"}]
    kw: dict[str, Any] = {"max_tokens": 2048, "thinking": THINKING, "tools": [TOOL]}
    call = create(client, messages=ask, **kw)
    assert [block.type for block in call.content] == ["thinking", "tool_use"]
    said = blocks(call)
    result = {"type": "tool_result", "tool_use_id": said[1]["id"], "content": "sunny"}
    answer = create(client, messages=[*ask, {"role": "assistant", "content": said},
                                      {"role": "user", "content": [result]}], **kw)  # fmt: skip
    assert [block.type for block in answer.content] == ["thinking", "text"]
    tampered = [{**said[0], "signature": "Zm9yZ2Vk"}, said[1]]
    with pytest.raises(anthropic.BadRequestError, match="Invalid `signature`"):
        create(client, messages=[*ask, {"role": "assistant", "content": tampered},
                                 {"role": "user", "content": [result]}], **kw)  # fmt: skip
    with pytest.raises(anthropic.BadRequestError, match="must start with a thinking block"):
        create(client, messages=[*ask, {"role": "assistant", "content": said[1:]},
                                 {"role": "user", "content": [result]}], **kw)  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 512}}, "greater than or equal to 1024"),
        ({"thinking": {"type": "enabled", "budget_tokens": 4096}}, "must be greater than"),
        ({"thinking": THINKING, "extra_body": {"temperature": 0.5}}, "`temperature` may only"),
        ({"thinking": THINKING, "tools": [TOOL], "tool_choice": {"type": "any"}}, "forces tool"),
    ],
    ids=["budget-too-small", "budget-over-max-tokens", "temperature", "forced-tool"],
)
def test_thinking_is_checked(client: anthropic.Anthropic, extra: Any, message: str) -> None:
    with pytest.raises(anthropic.BadRequestError, match=message) as caught:
        create(client, max_tokens=2048, **extra)
    assert caught.value.type == "invalid_request_error"


def test_images_are_counted(client: anthropic.Anthropic) -> None:
    image: Any = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
    }
    content = [image, image, {"type": "text", "text": "what is this"}]
    message = create(client, messages=[{"role": "user", "content": content}])
    assert message.content[0].type == "text"
    assert message.content[0].text == "I received 2 images. You said: what is this"
    bad = {**image, "source": {**image["source"], "media_type": "image/tiff"}}
    with pytest.raises(anthropic.BadRequestError, match=r"messages\.0\.content\.0\.image"):
        create(client, messages=[{"role": "user", "content": [bad]}])


def test_stop_sequences(client: anthropic.Anthropic) -> None:
    message = create(client, stop_sequences=["gamma"])
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "gamma")
    assert message.content[0].type == "text" and message.content[0].text == "You said: alpha beta "
    _, streamed = stream_final(client, stop_sequences=["gamma"])
    assert (streamed.stop_reason, streamed.stop_sequence) == ("stop_sequence", "gamma")


def test_max_tokens_truncates(client: anthropic.Anthropic) -> None:
    message = create(client, max_tokens=3)
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 3
    assert message.content[0].type == "text" and message.content[0].text == "You said: alpha"


def test_consecutive_turns_of_one_role_are_combined(client: anthropic.Anthropic) -> None:
    turns: Any = [{"role": "user", "content": "alpha beta"}, {"role": "user", "content": "gamma"}]
    message = create(client, messages=turns)
    assert message.content[0].type == "text"
    assert message.content[0].text == "You said: alpha beta gamma"


# -- prompt caching ---------------------------------------------------------------------------


def cached_system(ttl: str = "5m") -> Any:
    marker = {"type": "ephemeral", "ttl": ttl}
    return [{"type": "text", "text": "You are a careful assistant " * 5, "cache_control": marker}]


def test_cache_is_written_then_read(client: anthropic.Anthropic) -> None:
    first = create(client, system=cached_system()).usage
    again = create(client, system=cached_system()).usage
    total = client.messages.count_tokens(model=MODEL, system=cached_system(), messages=USER)
    assert (first.cache_creation_input_tokens, first.cache_read_input_tokens) == (29, 0)
    assert first.cache_creation is not None and first.cache_creation.ephemeral_5m_input_tokens == 29
    assert (again.cache_creation_input_tokens, again.cache_read_input_tokens) == (0, 29)
    assert first.input_tokens == again.input_tokens == total.input_tokens - 29 == 8
    other_model = create(client, model="claude-opus-4-8", system=cached_system()).usage
    assert other_model.cache_read_input_tokens == 0


def test_cache_counts_reach_the_stream_and_split_by_ttl(client: anthropic.Anthropic) -> None:
    _, first = stream_final(client, system=cached_system("1h"))
    _, again = stream_final(client, system=cached_system("1h"))
    assert first.usage.cache_creation is not None
    assert first.usage.cache_creation.ephemeral_1h_input_tokens == 29
    assert (again.usage.cache_creation_input_tokens, again.usage.cache_read_input_tokens) == (0, 29)


def test_top_level_cache_control_caches_the_conversation(client: anthropic.Anthropic) -> None:
    marker: Any = {"type": "ephemeral"}
    first = create(client, cache_control=marker)
    assert (first.usage.input_tokens, first.usage.cache_creation_input_tokens) == (0, 8)
    turns = [*USER, {"role": "assistant", "content": blocks(first)},
             {"role": "user", "content": "and more"}]  # fmt: skip
    second = create(client, cache_control=marker, messages=turns).usage
    assert second.cache_read_input_tokens == 8
    assert second.cache_creation_input_tokens == 8 + 10 + 6 - 8


# -- count_tokens and models ------------------------------------------------------------------


def test_count_tokens_matches_the_input_of_create(client: anthropic.Anthropic) -> None:
    kw: Any = {"system": "Be brief.", "tools": [TOOL]}
    counted = client.messages.count_tokens(model=MODEL, messages=USER, **kw)
    assert counted.input_tokens == create(client, **kw).usage.input_tokens == 14


def test_models_list_and_retrieve(client: anthropic.Anthropic) -> None:
    page = client.models.list()
    ids = [model.id for model in page.data]
    assert "claude-sonnet-4-6" in ids and page.has_more is False
    assert [m.id for m in client.models.list(limit=2).data] == ids[:2]
    assert [m.id for m in client.models.list(limit=2)] == ids  # auto-paging follows last_id
    info = client.models.retrieve("claude-haiku-4-5-20251001")
    assert info.display_name == "Claude Haiku 4.5" and info.created_at.year == 2025
    with pytest.raises(anthropic.NotFoundError, match="model: claude-nope"):
        client.models.retrieve("claude-nope")


# -- auth and validation ----------------------------------------------------------------------


def test_api_key_and_auth_token_are_sent_as_bearer(emu: EmulatorThread) -> None:
    ways: list[dict[str, Any]] = [{"api_key": KEY}, {"auth_token": KEY}]
    for credentials in ways:
        with anthropic.Anthropic(base_url=emu.base_url, max_retries=0, **credentials) as sdk:
            assert create(sdk).content[0].type == "text"
    for record in emu.requests():
        assert "authorization" in record.headers and "x-api-key" not in record.headers
        assert record.headers["anthropic-version"]


def test_x_api_key_header_and_any_version(emu: EmulatorThread) -> None:
    body = {"model": MODEL, "max_tokens": 10, "messages": USER}
    for version in ("2023-06-01", "2026-10-21", None):
        headers = {"anthropic_version": version} if version else {}
        assert raw_post(emu, "/v1/messages", body, **headers).status_code == 200
    wrong = raw_post(emu, "/v1/messages", body, x_api_key="sk-wrong")
    assert wrong.status_code == 401
    assert wrong.json()["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
    missing = httpx.post(f"{emu.base_url}/v1/messages", json=body)
    assert missing.status_code == 401
    assert missing.json()["error"]["message"] == "x-api-key header is required"


def test_bad_key_is_an_authentication_error(emu: EmulatorThread) -> None:
    with (
        anthropic.Anthropic(base_url=emu.base_url, api_key="sk-wrong", max_retries=0) as sdk,
        pytest.raises(anthropic.AuthenticationError) as caught,
    ):
        create(sdk)
    assert caught.value.type == "authentication_error"
    assert caught.value.request_id is not None and caught.value.request_id.startswith("req_")


def test_unknown_route_is_not_found(emu: EmulatorThread) -> None:
    answer = raw_post(emu, "/v1/complete", {"prompt": "x"})
    assert answer.status_code == 404 and answer.json()["error"]["type"] == "not_found_error"


RESULT_BLOCK = {"type": "tool_result", "tool_use_id": "toolu_01x", "content": "r"}
CALL_BLOCK = {"type": "tool_use", "id": "toolu_01x", "name": "get_weather", "input": {}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": None}, "model: Field required"),
        ({"max_tokens": None}, "max_tokens: Field required"),
        ({"messages": []}, "at least one message is required"),
        ({"temperature_x": 1}, "temperature_x: Extra inputs are not permitted"),
        ({"max_tokens": "ten"}, "max_tokens: Expected `int`"),
        (
            {"messages": [{"role": "assistant", "content": "hi"}]},
            'first message must use the "user"',
        ),
        ({"messages": [{"role": "user", "content": ""}]}, "must have non-empty content"),
        ({"messages": [{"role": "user", "content": [RESULT_BLOCK]}]}, "unexpected `tool_use_id`"),
        (
            {"messages": [*USER, {"role": "assistant", "content": [CALL_BLOCK]}, *USER]},
            "`tool_use` ids were found without `tool_result` blocks",
        ),
        ({"tool_choice": {"type": "any"}}, "tool_choice may only be specified while providing"),
        ({"tools": [{"name": "t"}]}, "tools.0.custom.input_schema: Field required"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
    ],
)
def test_invalid_requests_are_refused(emu: EmulatorThread, change: Any, message: str) -> None:
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 100, "messages": USER}
    body.update(change)
    body = {key: value for key, value in body.items() if value is not None}
    answer = raw_post(emu, "/v1/messages", body)
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert message in error["error"]["message"]
    assert error["request_id"] == answer.headers["request-id"]


def test_count_tokens_refuses_max_tokens(emu: EmulatorThread) -> None:
    body = {"model": MODEL, "max_tokens": 10, "messages": USER}
    answer = raw_post(emu, "/v1/messages/count_tokens", body)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "max_tokens: Extra inputs are not permitted"


# -- faults -----------------------------------------------------------------------------------


def test_529_is_overloaded(client: anthropic.Anthropic, emu: EmulatorThread) -> None:
    emu.add_faults(MODEL, [{"kind": "status", "status": 529}])
    with pytest.raises(anthropic.InternalServerError) as caught:
        create(client)
    assert isinstance(caught.value, anthropic.OverloadedError)
    assert caught.value.status_code == 529 and caught.value.type == "overloaded_error"
    assert caught.value.api_message == "Overloaded"


def test_429_carries_retry_after_and_rate_limit_headers(
    client: anthropic.Anthropic, emu: EmulatorThread
) -> None:
    emu.add_faults(MODEL, [{"kind": "status", "status": 429, "retry_after": 2}])
    with pytest.raises(anthropic.RateLimitError) as caught:
        create(client)
    headers = caught.value.response.headers
    assert headers["retry-after"] == "2" and caught.value.type == "rate_limit_error"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert headers["anthropic-ratelimit-tokens-reset"].endswith("Z")


def test_spend_limit_code_picks_the_sdk_exception(
    client: anthropic.Anthropic, emu: EmulatorThread
) -> None:
    fault = {"kind": "status", "status": 429, "code": "enforced_spend_limit_reached"}
    emu.add_faults(MODEL, [fault])
    with pytest.raises(anthropic.EnforcedSpendLimitReachedError) as caught:
        create(client)
    assert caught.value.error_code == "enforced_spend_limit_reached"


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (413, anthropic.ContentTooLargeError, "request_too_large"),
        (500, anthropic.InternalServerError, "api_error"),
    ],
)
def test_status_faults_speak_anthropic(
    client: anthropic.Anthropic,
    emu: EmulatorThread,
    status: int,
    error: type[anthropic.APIStatusError],
    kind: str,
) -> None:
    emu.add_faults("*", [{"kind": "status", "status": status}])
    with pytest.raises(error) as caught:
        create(client)
    assert caught.value.status_code == status and caught.value.type == kind


def test_reset_is_a_connection_error(client: anthropic.Anthropic, emu: EmulatorThread) -> None:
    emu.add_faults("*", [{"kind": "reset"}])
    with pytest.raises(anthropic.APIConnectionError):
        create(client)


def test_hang_times_out(client: anthropic.Anthropic, emu: EmulatorThread) -> None:
    emu.add_faults("*", [{"kind": "hang"}])
    with pytest.raises(anthropic.APITimeoutError):
        create(client, timeout=0.3)


def test_delay_then_normal_answer(client: anthropic.Anthropic, emu: EmulatorThread) -> None:
    emu.add_faults("*", [{"kind": "delay", "seconds": 0.2}])
    started = time.monotonic()
    assert create(client).content[0].type == "text"
    assert time.monotonic() - started >= 0.2


def test_slow_first_token(client: anthropic.Anthropic, emu: EmulatorThread) -> None:
    emu.add_faults("*", [{"kind": "slow_first_token", "seconds": 0.2}])
    started = time.monotonic()
    with client.messages.stream(model=MODEL, max_tokens=100, messages=USER) as stream:
        head_at = time.monotonic() - started
        first = next(iter(stream))
        assert time.monotonic() - started >= 0.2 > head_at
        assert first.type == "message_start"
        assert stream.get_final_text() == EXPECTED_TEXT


def test_cut_mid_stream(client: anthropic.Anthropic, emu: EmulatorThread) -> None:
    # Once the response has begun, anthropic 2.14 lets the transport's own error through.
    emu.add_faults("*", [{"kind": "cut", "after_tokens": 2}])
    received: list[str] = []
    with (
        pytest.raises(httpx2.RemoteProtocolError, match="incomplete chunked read"),
        client.messages.stream(model=MODEL, max_tokens=100, messages=USER) as stream,
    ):
        received.extend(stream.text_stream)
    assert "".join(received) == "You said:"


def test_cut_mid_body(client: anthropic.Anthropic, emu: EmulatorThread) -> None:
    emu.add_faults("*", [{"kind": "cut"}])
    with pytest.raises(anthropic.APIConnectionError):
        create(client)


def test_stall_is_a_read_timeout(client: anthropic.Anthropic, emu: EmulatorThread) -> None:
    emu.add_faults("*", [{"kind": "stall", "after_tokens": 1}, {"kind": "stall"}])
    with (
        pytest.raises(httpx2.ReadTimeout),  # mid-stream: the transport's error, as for a cut
        client.messages.stream(model=MODEL, max_tokens=100, messages=USER, timeout=0.3) as stream,
    ):
        list(stream.text_stream)
    with pytest.raises(anthropic.APITimeoutError):
        create(client, timeout=0.3)


def test_malformed_event_breaks_the_stream(
    client: anthropic.Anthropic, emu: EmulatorThread
) -> None:
    emu.add_faults("*", [{"kind": "malformed", "after_tokens": 1}, {"kind": "malformed"}])
    with (
        pytest.raises(json.JSONDecodeError),
        client.messages.stream(model=MODEL, max_tokens=100, messages=USER) as stream,
    ):
        list(stream.text_stream)
    with pytest.raises(json.JSONDecodeError):
        create(client)


def test_stream_error_is_in_band_after_200(
    client: anthropic.Anthropic, emu: EmulatorThread
) -> None:
    emu.add_faults("*", [{"kind": "stream_error", "after_tokens": 2},
                         {"kind": "stream_error", "code": "api_error"}])  # fmt: skip
    received: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError, match="Overloaded") as caught,
        client.messages.stream(model=MODEL, max_tokens=100, messages=USER) as stream,
    ):
        received.extend(stream.text_stream)
    assert "".join(received) == "You said:"
    assert caught.value.status_code == 200 and caught.value.type == "overloaded_error"
    with (
        pytest.raises(anthropic.APIStatusError) as coded,
        client.messages.stream(model=MODEL, max_tokens=100, messages=USER) as stream,
    ):
        list(stream.text_stream)
    assert coded.value.type == "api_error" and coded.value.api_message == "Internal server error"


def test_stream_error_without_streaming_is_the_http_error(
    client: anthropic.Anthropic, emu: EmulatorThread
) -> None:
    emu.add_faults("*", [{"kind": "stream_error"}])
    with pytest.raises(anthropic.OverloadedError) as caught:
        create(client)
    assert caught.value.status_code == 529


def test_no_done_leaves_out_message_stop(client: anthropic.Anthropic, emu: EmulatorThread) -> None:
    emu.add_faults("*", [{"kind": "no_done"}, {"kind": "no_done"}])
    text, final = stream_final(client)
    assert text == EXPECTED_TEXT and final.stop_reason == "end_turn"
    body = {"model": MODEL, "max_tokens": 100, "messages": USER, "stream": True}
    names = [name for name, _ in sse_events(raw_post(emu, "/v1/messages", body).text)]
    assert names[-1] == "message_delta" and "message_stop" not in names


def test_context_length(client: anthropic.Anthropic, emu: EmulatorThread) -> None:
    emu.add_faults("*", [{"kind": "context_length", "max_context": 8192}])
    with pytest.raises(anthropic.BadRequestError) as caught:
        create(client)
    assert caught.value.api_message == "prompt is too long: 8200 tokens > 8192 maximum"


def test_content_filter_is_a_refusal(client: anthropic.Anthropic, emu: EmulatorThread) -> None:
    emu.add_faults("*", [{"kind": "content_filter"}, {"kind": "content_filter"}])
    refused = create(client)
    assert refused.stop_reason == "refusal" and refused.content == []
    text, streamed = stream_final(client)
    assert text == "" and streamed.stop_reason == "refusal"


def test_header_fault_applies_to_one_request(client: anthropic.Anthropic) -> None:
    fault = json.dumps({"kind": "status", "status": 503, "retry_after_ms": 250})
    with pytest.raises(anthropic.InternalServerError) as caught:
        create(client, extra_headers={"x-emulator-fault": fault})
    assert caught.value.status_code == 503
    assert caught.value.response.headers["retry-after-ms"] == "250"
    assert create(client).content[0].type == "text"
    with pytest.raises(anthropic.BadRequestError, match="after_tokens"):
        create(client, extra_headers={"x-emulator-fault": '{"kind":"cut","after_tokens":-1}'})


def test_script_is_keyed_by_model_and_spares_other_endpoints(
    client: anthropic.Anthropic, emu: EmulatorThread
) -> None:
    emu.add_faults(MODEL, [{"kind": "cut"}])
    emu.add_faults("*", [{"kind": "stream_error"}])
    assert client.messages.count_tokens(model=MODEL, messages=USER).input_tokens == 8
    client.models.list()
    with pytest.raises(anthropic.OverloadedError):
        create(client, model="claude-opus-4-8")
    with pytest.raises(anthropic.APIConnectionError):
        create(client)
    assert create(client).content[0].type == "text"
    faults = [(r.path, r.model, r.fault) for r in emu.requests()]
    assert faults == [
        ("/v1/messages/count_tokens", MODEL, None),
        ("/v1/models", None, None),
        ("/v1/messages", "claude-opus-4-8", "stream_error"),
        ("/v1/messages", MODEL, "cut"),
        ("/v1/messages", MODEL, None),
    ]


def test_control_api_over_http(client: anthropic.Anthropic, emu: EmulatorThread) -> None:
    order = {"model": MODEL, "faults": [{"kind": "status", "status": 529}]}
    assert httpx.post(f"{emu.base_url}/_emulator/faults", json=order).status_code == 200
    with pytest.raises(anthropic.OverloadedError):
        create(client)
    create(client, system=cached_system())
    recorded = httpx.get(f"{emu.base_url}/_emulator/requests").json()
    assert [r["fault"] for r in recorded] == ["status", None]
    assert httpx.post(f"{emu.base_url}/_emulator/reset").status_code == 200
    assert httpx.get(f"{emu.base_url}/_emulator/requests").json() == []
    assert create(client, system=cached_system()).usage.cache_read_input_tokens == 0


async def test_async_client_create_and_stream() -> None:
    running = await serve_emulator("anthropic", api_key=KEY)
    try:
        assert running.base_url == f"http://127.0.0.1:{running.port}"
        async with anthropic.AsyncAnthropic(
            base_url=running.base_url, api_key=KEY, max_retries=0
        ) as sdk:
            message = await sdk.messages.create(model=MODEL, max_tokens=100, messages=USER)
            assert message.content[0].type == "text"
            assert message.content[0].text == EXPECTED_TEXT
            async with sdk.messages.stream(model=MODEL, max_tokens=100, messages=USER) as stream:
                text = "".join([piece async for piece in stream.text_stream])
            assert text == EXPECTED_TEXT
            running.emulator.script.add(MODEL, [StatusFault(status=529)])
            with pytest.raises(anthropic.OverloadedError):
                await sdk.messages.create(model=MODEL, max_tokens=100, messages=USER)
    finally:
        await running.close()
