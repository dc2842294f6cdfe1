"""OpenAI, and any server that speaks its API (vLLM, Ollama, llama.cpp, Azure's v1 API)."""

from __future__ import annotations

from typing import ClassVar

from skyroute.core.config import OpenAIProviderConfig
from skyroute.core.errors import GatewayError
from skyroute.providers.base import Headers, Provider, UpstreamRequest, common_headers
from skyroute.providers.openai_errors import map_openai_error


class OpenAIProvider(Provider):
    type_name: ClassVar[str] = "openai"

    def __init__(self, name: str, config: OpenAIProviderConfig) -> None:
        super().__init__(name)
        self._chat_url = config.base_url.rstrip("/") + "/chat/completions"
        self._static_headers: list[tuple[str, str]] = []
        if config.api_key is not None:
            self._static_headers.append(("authorization", f"Bearer {config.api_key.reveal()}"))
        if config.organization:
            self._static_headers.append(("openai-organization", config.organization))
        if config.project:
            self._static_headers.append(("openai-project", config.project))

    async def chat_request(
        self, model: str, body: bytes, *, stream: bool, request_id: str, attempt: int
    ) -> UpstreamRequest:
        headers = common_headers(request_id, attempt)
        headers.extend(self._static_headers)
        return UpstreamRequest("POST", self._chat_url, headers, body)

    def map_error(self, status: int, headers: Headers, body: bytes, now: float) -> GatewayError:
        return map_openai_error(status, headers, body, now)
