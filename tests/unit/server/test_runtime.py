"""Reading the process's resident memory for ``/admin/runtime``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from skyroute.server.runtime import rss_kib


def test_rss_is_the_second_statm_field_in_kib(tmp_path: Path) -> None:
    if not hasattr(os, "sysconf"):
        pytest.skip("no sysconf on this platform")
    statm = tmp_path / "statm"
    statm.write_text("1000 250 30 1 0 400 0\n")
    assert rss_kib(statm) == 250 * os.sysconf("SC_PAGE_SIZE") // 1024


@pytest.mark.parametrize("text", ["", "garbage", "1"])
def test_an_unreadable_statm_is_none(tmp_path: Path, text: str) -> None:
    statm = tmp_path / "statm"
    statm.write_text(text)
    assert rss_kib(statm) is None
    assert rss_kib(tmp_path / "missing") is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_this_process_has_some_resident_memory() -> None:
    found = rss_kib()
    assert found is not None and found > 1024
