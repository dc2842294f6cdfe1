"""Azure OpenAI, classic API: ``/openai/deployments/{deployment}/...?api-version=``.

Auth is an ``api-key`` header, or a Microsoft Entra bearer token from a token provider
(a static token, the client-credentials grant, or one the embedding program passes in).
Azure's quirks the relay tolerates: a first stream chunk with ``"choices": []`` that only
carries ``prompt_filter_results``, and ``content_filter_results`` on every choice.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

from skyroute.core.config import AzureProviderConfig
from skyroute.providers.base import ChatCall, UpstreamRequest, common_headers
from skyroute.providers.entra import TokenProvider
from skyroute.providers.openai_family import OpenAIFamily


class AzureProvider(OpenAIFamily):
    type_name: ClassVar[str] = "azure"

    def __init__(
        self, name: str, config: AzureProviderConfig, token_provider: TokenProvider | None
    ) -> None:
        super().__init__(name)
        self._endpoint = config.endpoint.rstrip("/")
        self._query = "?api-version=" + quote(config.api_version, safe="")
        self._api_key = config.api_key
        self._tokens = token_provider
        self._urls: dict[str, str] = {}

    def _chat_url(self, deployment: str) -> str:
        url = self._urls.get(deployment)
        if url is None:
            path = f"/openai/deployments/{quote(deployment, safe='')}/chat/completions"
            url = self._urls[deployment] = self._endpoint + path + self._query
        return url

    async def chat_request(self, call: ChatCall) -> UpstreamRequest:
        headers = common_headers(call.request_id, call.attempt)
        if self._api_key is not None:
            headers.append(("api-key", self._api_key.reveal()))
        elif self._tokens is not None:
            headers.append(("authorization", f"Bearer {await self._tokens.token()}"))
        return UpstreamRequest("POST", self._chat_url(call.model), headers, self.chat_body(call))

    async def aclose(self) -> None:
        if self._tokens is not None:
            await self._tokens.aclose()
