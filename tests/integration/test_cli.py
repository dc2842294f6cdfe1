"""The ``skyroute`` command line, run as a user would run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import openai

from tests.integration.test_lifecycle import free_port, wait_until_healthy

SKYROUTE = [sys.executable, "-m", "skyroute.cli"]


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60):  # type: ignore[no-untyped-def]
    return subprocess.run(
        [*SKYROUTE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_check_accepts_a_good_config(tmp_path: Path) -> None:
    config = tmp_path / "ok.yaml"
    config.write_text(
        textwrap.dedent("""
        auth: {master_key: "${KEY}"}
        providers: {local: {type: openai, base_url: "http://127.0.0.1:8000/v1"}}
        models: {m: {deployments: [{provider: local, model: x}]}}
    """)
    )
    result = run("check", "--config", str(config), env={"KEY": "sk-check-canary"})
    assert result.returncode == 0, result.stderr
    assert "OK (1 providers, 1 models)" in result.stdout
    assert "sk-check-canary" not in result.stdout + result.stderr


def test_check_lists_every_error_and_fails(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        textwrap.dedent("""
        auth: {master_key: k}
        providers: {local: {type: openai, colour: blue}}
        models:
          gpt-4o:
            deployments:
              - {provider: local, model: a}
              - {provider: x, model: b}
    """)
    )
    result = run("check", "--config", str(config))
    assert result.returncode == 1
    assert "error: providers.local: Object contains unknown field `colour`" in result.stderr
    assert "error: models.gpt-4o.deployments[1].provider: unknown provider 'x'" in result.stderr


def test_check_reads_skyroute_config_from_the_environment(tmp_path: Path) -> None:
    result = run("check", env={"SKYROUTE_CONFIG": str(tmp_path / "missing.yaml")})
    assert result.returncode == 1 and "cannot read the file" in result.stderr


def test_emulate_serves_an_openai_api() -> None:
    port = free_port()
    process = subprocess.Popen(
        [*SKYROUTE, "emulate", "openai", "--port", str(port), "--api-key", "k"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        assert f"listening on http://127.0.0.1:{port}" in line
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0)
        reply = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.choices[0].message.content
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise


def test_serve_demo_answers_with_the_printed_key() -> None:
    port = free_port()
    process = subprocess.Popen(
        [*SKYROUTE, "serve", "--demo", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "SKYROUTE_MASTER_KEY"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process)  # type: ignore[arg-type]
        key = None
        deadline = time.monotonic() + 10
        while key is None and time.monotonic() < deadline:
            line = process.stdout.readline()  # type: ignore[union-attr]
            if "master key" in line:
                key = line.split()[-1]
        assert key and key.startswith("sk-demo-")
        response = httpx.post(
            url + "/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert response.status_code == 200
        assert response.headers["x-skyroute-provider"] == "azure-east"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)


def test_scripted_demo_shows_failover_and_return() -> None:
    result = run("demo", timeout=90)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    served = [line for line in lines if "served by" in line]
    assert len(served) == 10
    assert all(line.split()[0] == "200" for line in served)
    assert all("azure-east" in line for line in served[:3])
    assert all("local-vllm" in line for line in served[3:7])
    assert all("azure-east" in line for line in served[7:])
