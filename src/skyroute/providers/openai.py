"""OpenAI, and any server that speaks its API (vLLM, Ollama, llama.cpp, Azure's v1 API)."""

from __future__ import annotations

from typing import ClassVar

from skyroute.core.config import OpenAIProviderConfig
from skyroute.providers.base import ChatCall, UpstreamRequest, common_headers
from skyroute.providers.openai_family import OpenAIFamily


class OpenAIProvider(OpenAIFamily):
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

    async def chat_request(self, call: ChatCall) -> UpstreamRequest:
        headers = common_headers(call.request_id, call.attempt)
        headers.extend(self._static_headers)
        return UpstreamRequest("POST", self._chat_url, headers, self.chat_body(call))
