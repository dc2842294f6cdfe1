"""Fixtures for every test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _own_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own empty directory, so a gateway started with the default
    ``store.data_dir`` (``skyroute-data``, relative) keeps its SQLite file and outbox there
    and never shares them with another test or leaves them in the checkout."""
    monkeypatch.chdir(tmp_path)
