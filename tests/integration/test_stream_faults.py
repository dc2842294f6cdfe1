"""Streams that break after the first byte reached the client.

Failover is no longer possible then; what matters is that the client is told. A cut, a
stall, a malformed chunk or an upstream error must end in an error the SDK raises, never
in a stream that merely stops and looks complete.
"""

from __future__ import annotations

import time

import openai
import pytest

from skyroute.emulators.runner import EmulatorThread
from tests.integration.conftest import PRIMARY, chats, hello


def consume(client: openai.OpenAI) -> tuple[str, object]:
    """Read a stream; return the text received and the usage chunk, if any."""
    stream = client.chat.completions.create(
        model="gpt-4o", messages=hello(), stream=True, stream_options={"include_usage": True}
    )
    text, usage = [], None
    for chunk in stream:
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
        usage = chunk.usage or usage
    return "".join(text), usage


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "cut", "after_tokens": 2},
        {"kind": "malformed", "after_tokens": 2},
        {"kind": "stream_error", "after_tokens": 2},
        {"kind": "stall", "after_tokens": 2, "seconds": 30},
    ],
    ids=lambda f: f["kind"],
)
def test_mid_stream_failure_ends_with_an_in_band_error(
    client: openai.OpenAI, azure: EmulatorThread, local: EmulatorThread, fault: dict
) -> None:
    azure.add_faults(PRIMARY, [fault])
    received: list[str] = []
    started = time.monotonic()
    with pytest.raises(openai.APIError) as caught:
        stream = client.chat.completions.create(model="gpt-4o", messages=hello(), stream=True)
        for chunk in stream:
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(received).strip()  # some text did arrive before the error
    assert caught.value.code in {
        "upstream_unavailable",
        "upstream_protocol_error",
        "upstream_timeout",
    }
    # no silent retry after the first byte
    assert len(chats(azure, PRIMARY)) == 1 and not local.requests()
    assert time.monotonic() - started < 3  # a stall ends at the 1 s idle timeout


def test_stall_is_reported_as_a_timeout(client: openai.OpenAI, azure: EmulatorThread) -> None:
    azure.add_faults(PRIMARY, [{"kind": "stall", "after_tokens": 1, "seconds": 30}])
    with pytest.raises(openai.APIError) as caught:
        consume(client)
    assert caught.value.code == "upstream_timeout"


def test_missing_done_is_finalised_promptly_with_usage(
    client: openai.OpenAI, azure: EmulatorThread
) -> None:
    azure.add_faults(PRIMARY, [{"kind": "no_done", "hold": 10}])
    started = time.monotonic()
    text, usage = consume(client)
    assert time.monotonic() - started < 1.5  # not held for the upstream's 10 s
    assert text.startswith("You said:") and usage is not None


def test_missing_done_with_a_closed_body_is_complete(
    client: openai.OpenAI, azure: EmulatorThread
) -> None:
    azure.add_faults(PRIMARY, [{"kind": "no_done", "hold": 0}])
    text, usage = consume(client)
    assert text.startswith("You said:") and usage is not None


def test_error_event_before_any_output_is_retried_invisibly(
    client: openai.OpenAI, azure: EmulatorThread, local: EmulatorThread
) -> None:
    # Azure sends its prompt-filter chunk first; the error follows before any text, so
    # nothing has reached the client and the attempt can be retried like an HTTP 500.
    azure.add_faults(PRIMARY, [{"kind": "stream_error", "after_tokens": 0}])
    text, usage = consume(client)
    assert text.startswith("You said:") and usage is not None
    assert [r.attempt for r in chats(azure, PRIMARY)] == ["1", "2"]
    assert not local.requests()


def test_persistent_error_event_before_any_output_fails_over(
    client: openai.OpenAI, azure: EmulatorThread, local: EmulatorThread
) -> None:
    azure.add_faults(PRIMARY, [{"kind": "stream_error", "after_tokens": 0, "repeat": True}])
    text, _ = consume(client)
    assert text.startswith("You said:")
    assert len(chats(azure, PRIMARY)) == 3 and len(local.requests()) == 1
