"""Log setup, with secrets scrubbed as a last line of defence.

Code never logs a secret on purpose (credentials are ``Secret`` values whose repr is
redacted). The filter here also replaces any configured secret value that still shows up
in a log record's text, and strips query strings from URLs, which is where keys leak
(Gemini, for one, takes its key in ``?key=``).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

_URL_QUERY = re.compile(r"(https?://[^\s?#\"']+)\?[^\s\"']*")


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        cleaned = self.scrub(text)
        record.msg = cleaned
        record.args = None
        return True

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "****")
        return _URL_QUERY.sub(r"\1?…", text)


def configure_logging(level: str, secrets: Iterable[str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True


def collect_secrets(value: object) -> list[str]:
    """Every ``Secret`` value inside a config tree, for the redacting filter."""
    from skyroute.core.secret import Secret

    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Secret):
            found.append(item.reveal())
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif hasattr(item, "__struct_fields__"):
            stack.extend(getattr(item, name) for name in item.__struct_fields__)
    return found
