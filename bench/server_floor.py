"""The HTTP server's own cost per request: uvicorn against a bare httptools protocol.

    .venv/bin/python bench/server_floor.py [--seconds 8]

Both answer the gateway's plain answer (647 bytes) to a POST at once, with no upstream, so
what is left is the server: uvicorn (httptools, uvloop) with a minimal ASGI app, and a bare
``asyncio.Protocol`` on httptools and uvloop that parses the request and writes one
prepared response from a task. Each runs pinned to core 0, loaded by wrk at 64 connections
from core 1; CPU per request is its utime+stime over the run. The difference is the most a
leaner server than uvicorn could save the gateway a request (less in practice: a real
server still builds headers, reads bodies, keeps timers). Prints; writes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import wrk_runner
from procs import Child, cpu_seconds, free_port, pinned

_ANSWER = json.dumps(
    {"id": "x", "object": "chat.completion", "choices": [{"message": {"content": "a" * 560}}]}
).encode()

_ASGI_APP = f"""
ANSWER = {_ANSWER!r}
START = {{
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"),
                (b"content-length", str(len(ANSWER)).encode())],
}}
BODY = {{"type": "http.response.body", "body": ANSWER}}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send(START)
    await send(BODY)
"""

_BARE = f"""
import asyncio
import sys

import httptools
import uvloop

ANSWER = {_ANSWER!r}
RESPONSE = (
    b"HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: "
    + str(len(ANSWER)).encode() + b"\\r\\n\\r\\n" + ANSWER
)


class Bare(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data):
        self.parser.feed_data(data)

    def on_message_complete(self):
        asyncio.get_running_loop().create_task(self.answer())

    async def answer(self):
        self.transport.write(RESPONSE)


async def main():
    server = await asyncio.get_running_loop().create_server(Bare, "127.0.0.1", int(sys.argv[1]))
    print("listening", flush=True)
    await server.serve_forever()


uvloop.run(main())
"""


def measure(name: str, command: list[str], port: int, tmp: Path, seconds: int) -> None:
    child = Child(name, pinned(command, 0), tmp / f"{name}.log", None)
    try:
        child.wait_for_http(port, "/", timeout=20)
        time.sleep(0.5)
        script = wrk_runner.write_script(
            tmp / "post.lua",
            '{"model":"gpt-4o","messages":[{"role":"user","content":"Hello there"}]}',
            [("Content-Type", "application/json"), ("Authorization", "Bearer sk-bench")],
        )
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        before = cpu_seconds(child.pid)
        raw = wrk_runner.run_wrk(url, script, connections=64, seconds=seconds, pin=pinned([], 1))
        used = cpu_seconds(child.pid) - before
    finally:
        child.stop()
    requests = raw["requests"]
    rps = requests / (raw["duration_us"] / 1e6)
    print(f"{name:<34} {rps:>9,.0f} req/s  {1e6 * used / requests:5.1f} µs CPU a request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=8)
    seconds = parser.parse_args().seconds
    with tempfile.TemporaryDirectory(prefix="skyroute-floor-") as tmp_dir:
        tmp = Path(tmp_dir)
        (tmp / "floor_app.py").write_text(textwrap.dedent(_ASGI_APP))
        (tmp / "bare.py").write_text(textwrap.dedent(_BARE))
        port = free_port()
        uvicorn = [
            sys.executable, "-m", "uvicorn", "--app-dir", str(tmp), "floor_app:app",
            "--port", str(port), "--loop", "uvloop", "--http", "httptools",
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        measure("uvicorn + minimal ASGI app", uvicorn, port, tmp, seconds)
        port = free_port()
        bare = [sys.executable, str(tmp / "bare.py"), str(port)]
        measure("bare httptools protocol", bare, port, tmp, seconds)


if __name__ == "__main__":
    main()
