"""Secret canaries: provider keys and the master key never reach a log line, a response
body or a response header, whatever fails, even with DEBUG logging on."""

from __future__ import annotations

import logging

import httpx
import openai
import pytest

from skyroute.emulators.runner import EmulatorThread
from tests.integration.conftest import CANARIES, MASTER_KEY, PRIMARY, SECONDARY, hello


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "status", "status": 401, "message": f"Incorrect API key provided: {CANARIES[1]}"},
        {"kind": "status", "status": 500},
        {"kind": "reset"},
        {"kind": "malformed", "after_tokens": 1},
        {"kind": "context_length"},
    ],
    ids=lambda f: f["kind"] + str(f.get("status", "")),
)
def test_no_secret_in_logs_or_answers_when_upstreams_fail(
    start_gateway, azure: EmulatorThread, local: EmulatorThread, caplog, fault: dict
) -> None:
    def no_fallbacks(doc: dict) -> None:
        doc["models"]["gpt-4o"]["fallbacks"] = []
        doc["server"]["log_level"] = "debug"

    gateway = start_gateway(no_fallbacks)
    azure.add_faults(PRIMARY, [{**fault, "repeat": True}])
    local.add_faults(SECONDARY, [{**fault, "repeat": True}])
    seen: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for stream in (False, True):
            response = httpx.post(
                gateway.base_url + "/chat/completions",
                json={"model": "gpt-4o", "messages": hello(), "stream": stream},
                headers={"authorization": f"Bearer {MASTER_KEY}"},
                timeout=10,
            )
            seen.append(response.text)
            seen.append(repr(dict(response.headers)))
        with pytest.raises(openai.APIError):
            openai.OpenAI(
                base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0
            ).chat.completions.create(model="gpt-4o", messages=hello())
    seen.extend(record.getMessage() for record in caplog.records)
    seen.extend(str(record.exc_info) for record in caplog.records if record.exc_info)
    for text in seen:
        for canary in CANARIES:
            assert canary not in text
        assert "127.0.0.1:" + str(azure.port) not in text  # no upstream address either
