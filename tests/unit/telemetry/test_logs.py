from __future__ import annotations

import logging

from skyroute.core.config import parse_config
from skyroute.core.secret import Secret
from skyroute.telemetry.logs import RedactingFilter, collect_secrets


def test_secret_is_redacted_everywhere_but_reveal() -> None:
    secret = Secret("sk-live-canary")
    assert (
        "canary" not in repr(secret) and "canary" not in str(secret) and "canary" not in f"{secret}"
    )
    assert secret.reveal() == "sk-live-canary"
    assert secret.matches("sk-live-canary") and not secret.matches("sk-live-canar")


def test_filter_scrubs_secrets_and_url_queries() -> None:
    config = parse_config(
        {
            "auth": {"master_key": "sk-master-canary"},
            "providers": {
                "a": {"type": "azure", "endpoint": "https://x.example", "api_key": "az-key-canary"}
            },
        },
        {},
    )
    found = collect_secrets(config)
    assert sorted(found) == ["az-key-canary", "sk-master-canary"]
    record = logging.LogRecord(
        "t",
        logging.ERROR,
        __file__,
        1,
        "calling %s with %s",
        ("https://h.example/v1?key=AIza123", "az-key-canary"),
        None,
    )
    RedactingFilter(found).filter(record)
    text = record.getMessage()
    assert "az-key-canary" not in text and "AIza123" not in text
    assert "https://h.example/v1?" in text
