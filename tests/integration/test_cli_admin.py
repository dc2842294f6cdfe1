"""``skyroute migrate | teams | keys | usage`` in-process against a SQLite store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from skyroute.cli import main
from skyroute.store.migrate import head_revision

MASTER = "sk-master-cli-canary"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "skyroute.yaml"
    path.write_text(
        f'auth: {{master_key: "{MASTER}"}}\nstore: {{data_dir: "{tmp_path / "data"}"}}\n'
    )
    monkeypatch.setenv("SKYROUTE_CONFIG", str(path))
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_team_and_key_lifecycle(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "migrate")
    assert code == 0, err
    assert f"revision {head_revision()}" in out

    code, out, err = run(capsys, "teams", "create", "research", "--budget", "1000/month")
    assert code == 0, err
    assert "research" in out and "1000/month" in out

    code, out, err = run(
        capsys, "keys", "create", "--team", "research", "--models", "gpt-4o,claude-sonnet",
        "--budget", "500/month", "--rpm", "600", "--tpm", "200000", "--name", "ci",
    )  # fmt: skip
    assert code == 0, err
    key = re.search(r"^key: (sk-sr-\S+)$", out, re.M)
    assert key is not None, out
    plaintext = key.group(1)
    assert "will not be shown again" in out
    key_id = re.search(r"(key_[0-9a-f]{16})", out)
    assert key_id is not None
    assert "gpt-4o,claude-sonnet" in out and "500/month" in out and "200000" in out

    code, out, err = run(capsys, "keys", "list", "--team", "research")
    assert code == 0, err
    assert key_id.group(1) in out
    assert plaintext not in out and "sk-sr-…" + plaintext[-4:] in out

    code, out, err = run(capsys, "keys", "list", "--json")
    [listed] = json.loads(out)
    assert listed["display"] == "sk-sr-…" + plaintext[-4:] and plaintext not in out

    code, out, err = run(capsys, "usage", "--by", "team", "--since", "7d")
    assert code == 0, err
    assert "requests" in out and "cost_usd" in out

    code, out, err = run(capsys, "keys", "rotate", key_id.group(1), "--overlap", "10m")
    assert code == 0, err
    assert "will not be shown again" in out and "keeps working until" in out

    code, out, err = run(capsys, "keys", "revoke", key_id.group(1))
    assert code == 0, err
    assert "revoked" in out
    code, out, err = run(capsys, "keys", "revoke", key_id.group(1))  # idempotent
    assert code == 0, err

    code, out, err = run(capsys, "teams", "list", "--json")
    assert [t["name"] for t in json.loads(out)] == ["research"]
    assert MASTER not in out + err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["keys", "create", "--team", "nope"], "no team"),
        (["keys", "create", "--budget", "5/year"], "--budget"),
        (["keys", "create", "--budget", "1.0000001/day"], "at most 6 places"),
        (["keys", "create", "--rpm", "0"], "rpm"),
        (["keys", "create", "--expires", "2001-01-01T00:00:00Z"], "future"),
        (["keys", "create", "--name", "a\x00b"], "NUL"),
        (["keys", "revoke", "key_0000000000000000"], "no key"),
        (["usage", "--since", "yesterday"], "not a duration"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    config: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2
    assert err.count("\n") == 1 and message in err, err
    assert "Traceback" not in err and MASTER not in out + err


def test_duplicate_team_is_refused(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "teams", "create", "research")[0] == 0
    code, _, err = run(capsys, "teams", "create", "research")
    assert code == 2 and "already exists" in err


def test_missing_or_bad_config_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SKYROUTE_CONFIG", raising=False)
    code, _, err = run(capsys, "keys", "list")
    assert code == 2 and "--config" in err
    code, _, err = run(capsys, "teams", "list", "--config", str(tmp_path / "missing.yaml"))
    assert code == 2 and err.count("\n") == 1


def test_unreachable_postgres_is_one_line_without_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pg.yaml"
    path.write_text(
        f'auth: {{master_key: "{MASTER}"}}\n'
        'store: {database_url: "postgresql://u:hunter2-canary@127.0.0.1:1/db"}\n'
    )
    for args in (["keys", "list"], ["migrate"]):
        code, out, err = run(capsys, *args, "--config", str(path))
        assert code == 2 and err.count("\n") == 1, err
        assert "unavailable" in err
        assert "hunter2-canary" not in out + err and MASTER not in out + err
