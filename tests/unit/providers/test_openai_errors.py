"""Upstream error bodies of every OpenAI-family server map to the right gateway error."""

from __future__ import annotations

import json

import pytest

from skyroute.core.errors import (
    ContentFiltered,
    ContextLengthExceeded,
    GatewayError,
    UpstreamBadRequest,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)
from skyroute.providers.base import Headers
from skyroute.providers.openai_errors import map_openai_error


class FakeHeaders(Headers):
    def __init__(self, **values: str) -> None:
        self._values = {k.replace("_", "-"): v for k, v in values.items()}

    def header(self, name: str) -> str | None:
        return self._values.get(name)


def mapped(status: int, body: object, **headers: str) -> GatewayError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return map_openai_error(status, FakeHeaders(**headers), raw, now=1_700_000_000.0)


OPENAI_CONTEXT = {
    "error": {
        "message": "This model's maximum context length is 8192 tokens. "
        "However, your messages resulted in 9000 tokens.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}
VLLM_CONTEXT = {
    "error": {
        "message": "This model's maximum context length is 4096 tokens. "
        "However, you requested 5000 tokens.",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }
}
LLAMA_CPP_CONTEXT = {
    "error": {
        "code": 400,
        "message": "the request exceeds the available context size",
        "type": "exceed_context_size_error",
        "n_prompt_tokens": 5000,
        "n_ctx": 4096,
    }
}
AZURE_FILTER = {
    "error": {
        "message": "The response was filtered due to the prompt triggering "
        "Azure OpenAI's content management policy.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation"},
    }
}
AZURE_429 = {
    "error": {
        "code": "429",
        "message": "Requests to the ChatCompletions_Create "
        "Operation have exceeded token rate limit. Please retry after 6 seconds.",
    }
}


@pytest.mark.parametrize(
    "body", [OPENAI_CONTEXT, VLLM_CONTEXT, LLAMA_CPP_CONTEXT], ids=["openai", "vllm", "llama.cpp"]
)
def test_context_length_in_every_dialect(body: dict) -> None:
    error = mapped(400, body)
    assert isinstance(error, ContextLengthExceeded)
    assert error.code == "context_length_exceeded" and error.status == 400


def test_azure_content_filter_is_a_client_error_not_retried() -> None:
    error = mapped(400, AZURE_FILTER)
    assert isinstance(error, ContentFiltered)
    assert not error.retry_same and not error.try_another and error.param == "prompt"


def test_azure_429_reads_retry_after() -> None:
    error = mapped(429, AZURE_429, retry_after="6")
    assert isinstance(error, UpstreamRateLimited) and error.retry_after == 6


def test_retry_after_ms_wins() -> None:
    error = mapped(
        429, {"error": {"code": "rate_limit_exceeded"}}, retry_after_ms="250", retry_after="9"
    )
    assert error.retry_after == 0.25


def test_insufficient_quota_is_not_a_rate_limit() -> None:
    error = mapped(429, {"error": {"code": "insufficient_quota", "message": "quota"}})
    assert isinstance(error, UpstreamRejected) and error.try_another and not error.retry_same


@pytest.mark.parametrize("status", [401, 403, 404])
def test_credentials_and_missing_deployments_fail_over(status: int) -> None:
    error = mapped(status, {"error": {"message": "Incorrect API key provided: sk-abc***"}})
    assert isinstance(error, UpstreamRejected) and error.try_another
    assert "sk-abc" not in error.message  # upstream text about keys is never echoed


@pytest.mark.parametrize("status", [500, 502, 503, 504, 529, 408])
def test_server_errors_are_retryable(status: int) -> None:
    error = mapped(status, b"<html>oops</html>")
    assert isinstance(error, UpstreamUnavailable) and error.retry_same


def test_other_400s_are_the_callers_and_keep_the_upstream_message() -> None:
    error = mapped(
        400,
        {
            "error": {
                "message": "Invalid value for 'temperature'.",
                "param": "temperature",
                "code": None,
            }
        },
    )
    assert isinstance(error, UpstreamBadRequest)
    assert error.param == "temperature" and "temperature" in error.message
    assert not error.try_another


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[]", b'{"error": 5}', b'{"object":"error"}', b'{"error": "plain string"}'],
)
def test_unreadable_bodies_still_map(body: bytes) -> None:
    assert isinstance(mapped(400, body), UpstreamBadRequest)
    assert isinstance(mapped(503, body), UpstreamUnavailable)
