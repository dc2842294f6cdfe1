"""`GET /v1/models` and `GET /v1/models/{id}` for the Anthropic emulator. Pure.

A model's display name and release date come from its id (`claude-sonnet-4-5-20250929` is
"Claude Sonnet 4.5", released 2025-09-29), so any list of ids makes a plausible catalogue.
The list pages as the API's does: `limit` (1 to 1000, default 20), then `after_id` or
`before_id`, with `has_more`, `first_id` and `last_id`; the order is the one given, newest
first by convention.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

import msgspec

from skyroute.emulators.anthropic_errors import error_reply
from skyroute.emulators.anthropic_wire import ModelInfo, ModelPage
from skyroute.emulators.dialect import Reply
from skyroute.emulators.http import Request

__all__ = ["DEFAULT_MODEL_IDS", "display_name", "model_info", "model_reply", "models_reply"]

DEFAULT_MODEL_IDS: Final = (
    "claude-opus-5",
    "claude-sonnet-5",
    "claude-opus-4-8",
    "claude-sonnet-4-6",
    "claude-haiku-4-5-20251001",
)
_DATED: Final = re.compile(r"^(.*)-(\d{4})(\d{2})(\d{2})$")
_UNDATED: Final = "2024-01-01T00:00:00Z"
_ENCODER: Final = msgspec.json.Encoder()
_DEFAULT_LIMIT: Final = 20
_MAX_LIMIT: Final = 1000


def display_name(model_id: str) -> str:
    dated = _DATED.match(model_id)
    stem = dated.group(1) if dated else model_id
    parts = [part for part in stem.split("-") if part and part != "claude"]
    words = [part.capitalize() for part in parts if not part.isdigit()]
    version = ".".join(part for part in parts if part.isdigit())
    return " ".join(["Claude", *words, *([version] if version else [])])


def model_info(model_id: str) -> ModelInfo:
    dated = _DATED.match(model_id)
    created = f"{dated.group(2)}-{dated.group(3)}-{dated.group(4)}T00:00:00Z" if dated else None
    return ModelInfo(
        id=model_id, display_name=display_name(model_id), created_at=created or _UNDATED
    )


def model_reply(model_id: str, model_ids: Sequence[str], request_id: str) -> Reply:
    if model_id not in model_ids:
        return error_reply(404, "not_found_error", f"model: {model_id}", request_id)
    return Reply(200, _ENCODER.encode(model_info(model_id)))


def models_reply(request: Request, model_ids: Sequence[str], request_id: str) -> Reply:
    raw_limit = request.query_param("limit")
    limit = int(raw_limit) if raw_limit is not None and raw_limit.isdigit() else _DEFAULT_LIMIT
    if raw_limit is not None and not (raw_limit.isdigit() and 1 <= limit <= _MAX_LIMIT):
        message = f"limit: Input should be between 1 and {_MAX_LIMIT}"
        return error_reply(400, "invalid_request_error", message, request_id)
    ids = list(model_ids)
    after, before = request.query_param("after_id"), request.query_param("before_id")
    if before is not None:
        end = ids.index(before) if before in ids else 0
        page, has_more = ids[max(end - limit, 0) : end], end - limit > 0
    else:
        start = ids.index(after) + 1 if after in ids else (len(ids) if after else 0)
        page, has_more = ids[start : start + limit], start + limit < len(ids)
    body = ModelPage(
        data=[model_info(model_id) for model_id in page],
        has_more=has_more,
        first_id=page[0] if page else None,
        last_id=page[-1] if page else None,
    )
    return Reply(200, _ENCODER.encode(body))
