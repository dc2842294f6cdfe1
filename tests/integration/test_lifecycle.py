"""Process lifecycle: SIGTERM drains, and a client that leaves cancels its upstream call."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from skyroute.emulators.runner import EmulatorThread
from tests.integration.conftest import AZURE_KEY, MASTER_KEY, PRIMARY, hello


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, "the gateway exited during start-up"
        try:
            if httpx.get(url + "/healthz", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise AssertionError("the gateway did not become healthy")


@pytest.fixture
def served_process(tmp_path: Path, azure: EmulatorThread, clouds: None):  # type: ignore[no-untyped-def]
    port = free_port()
    config = tmp_path / "skyroute.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            auth: {{master_key: "${{TEST_MASTER_KEY}}"}}
            providers:
              azure-east:
                type: azure
                endpoint: "{azure.base_url}"
                api_key: "${{TEST_AZURE_KEY}}"
            models:
              gpt-4o:
                deployments: [{{provider: azure-east, model: {PRIMARY}}}]
                timeouts: {{first_token: 5, idle: 30}}
            server: {{drain_seconds: 1.5}}
            """
        )
    )
    env = {**os.environ, "TEST_MASTER_KEY": MASTER_KEY, "TEST_AZURE_KEY": AZURE_KEY}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "skyroute.cli",
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process)
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def test_sigterm_drains_streams_then_ends_the_rest_with_an_error(served_process, azure) -> None:  # type: ignore[no-untyped-def]
    url, process = served_process
    client = openai.OpenAI(base_url=url + "/v1", api_key=MASTER_KEY, max_retries=0)
    outcomes: dict[str, object] = {}
    # One stream that will finish inside the drain window, one that never would.
    azure.add_faults(
        PRIMARY,
        [
            {"kind": "slow_first_token", "seconds": 0.8},
            {"kind": "stall", "after_tokens": 2, "seconds": 60},
        ],
    )
    first_text = threading.Event()

    def read(name: str) -> None:
        text = []
        try:
            stream = client.chat.completions.create(model="gpt-4o", messages=hello(), stream=True)
            for chunk in stream:
                text.extend(c.delta.content or "" for c in chunk.choices)
                if text and name == "long":
                    first_text.set()
            outcomes[name] = "".join(text)
        except openai.APIError as error:
            outcomes[name] = error

    quick = threading.Thread(target=read, args=("quick",))
    quick.start()
    time.sleep(0.1)
    long = threading.Thread(target=read, args=("long",))
    long.start()
    assert first_text.wait(5)

    process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    time.sleep(0.2)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/readyz", timeout=1)  # no new connections once draining
    quick.join(10)
    long.join(10)
    assert isinstance(outcomes["quick"], str) and outcomes["quick"].startswith("You said:")
    error = outcomes["long"]
    assert isinstance(error, openai.APIError) and error.code == "server_shutting_down"
    assert process.wait(10) == 0
    assert time.monotonic() - signalled < 6
    output = process.stdout.read().decode()
    assert MASTER_KEY not in output and AZURE_KEY not in output


def test_readiness_fails_once_draining(gateway) -> None:  # type: ignore[no-untyped-def]
    assert httpx.get(gateway.url + "/readyz").status_code == 200
    gateway.app.state.lifecycle.begin_drain(time.monotonic(), 30)
    response = httpx.get(gateway.url + "/readyz")
    assert response.status_code == 503 and response.json()["error"]["code"] == "draining"
    assert httpx.get(gateway.url + "/healthz").status_code == 200


class WatchedUpstream:
    """A one-request OpenAI-style upstream that notes when the gateway hangs up on it."""

    def __init__(self, stream: bool) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.closed = threading.Event()
        self._stream = stream
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self._listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            if self._stream:
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    b"transfer-encoding: chunked\r\n\r\n"
                )
                event = b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
                conn.sendall(b"%x\r\n%s\r\n" % (len(event), event))
            conn.settimeout(10)
            try:
                while conn.recv(65536):
                    pass
            except OSError:
                pass
            self.closed.set()


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
def test_client_disconnect_cancels_the_upstream_request(start_gateway, stream: bool) -> None:  # type: ignore[no-untyped-def]
    upstream = WatchedUpstream(stream)

    def point_at_upstream(doc: dict) -> None:
        doc["providers"]["local-vllm"]["base_url"] = f"http://127.0.0.1:{upstream.port}/v1"
        doc["models"]["gpt-4o"]["deployments"] = [{"provider": "local-vllm", "model": "m"}]
        doc["models"]["gpt-4o"]["timeouts"] = {"first_token": 30, "idle": 30}

    gateway = start_gateway(point_at_upstream)
    body = {"model": "gpt-4o", "messages": hello(), "stream": stream}
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    if stream:
        with httpx.stream(
            "POST", gateway.base_url + "/chat/completions", json=body, headers=headers, timeout=5
        ) as response:
            assert b"Hi" in next(response.iter_bytes())
        left = time.monotonic()
    else:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                gateway.base_url + "/chat/completions", json=body, headers=headers, timeout=0.5
            )
        left = time.monotonic()
    assert upstream.closed.wait(2), "the upstream request outlived its client"
    assert time.monotonic() - left < 1.5
