"""Token usage as reported by an upstream, in OpenAI's field names (the canonical form)."""

from __future__ import annotations

import msgspec


class PromptDetails(msgspec.Struct, kw_only=True, omit_defaults=True):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class CompletionDetails(msgspec.Struct, kw_only=True, omit_defaults=True):
    reasoning_tokens: int = 0


class Usage(msgspec.Struct, kw_only=True):
    """``completion_tokens`` includes reasoning tokens, as in OpenAI's accounting."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptDetails | None = None
    completion_tokens_details: CompletionDetails | None = None

    @property
    def tokens(self) -> int:
        return self.total_tokens or self.prompt_tokens + self.completion_tokens
