"""Throughput with wrk (https://github.com/wg/wrk), when it is installed.

wrk is a C event loop: at these rates it costs a fraction of what a Python client does, so
the load core has room left for the upstream emulator. A Lua script sets the POST body and
headers and prints wrk's summary as one JSON line (latency percentiles in microseconds and
every error counter), which is parsed here. Streams work too: wrk reads the chunked body
to its end, so its latency is the time to the whole stream.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
from pathlib import Path
from typing import Any

_MARK = "WRK-JSON "
_DONE_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK-JSON {\"requests\": %d, \"duration_us\": %d, \"connect\": %d, \"read\": %d, " ..
    "\"write\": %d, \"status\": %d, \"timeout\": %d, \"p50\": %d, \"p90\": %d, " ..
    "\"p99\": %d, \"p999\": %d, \"max\": %d, \"mean\": %.1f}\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
"""


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version() -> str:
    path = wrk_path()
    if path is None:
        return "wrk not installed"
    out = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=10)
    first = (out.stdout or out.stderr).splitlines()[0]
    return first.split(" Copyright")[0].strip()  # "wrk 4.1.0 [epoll]"


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def write_script(path: Path, body: str, headers: list[tuple[str, str]]) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(body)}"]
    lines += [f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers]
    path.write_text("\n".join(lines) + "\n" + _DONE_LUA)
    return path


def run_wrk(
    url: str,
    script: Path,
    *,
    connections: int,
    seconds: int,
    pin: list[str],
    timeout_s: int = 10,
) -> dict[str, Any]:
    """One wrk run with one thread; its summary plus the CPU wrk itself used."""
    path = wrk_path()
    assert path is not None, "wrk is not installed"
    cmd = [
        *pin,
        path,
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={timeout_s}s",
        "-s",
        str(script),
        url,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + timeout_s + 30)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith(_MARK)), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed ({out.returncode}): {out.stdout[-2000:]}{out.stderr[-2000:]}"
        )
    summary = json.loads(line[len(_MARK) :])
    summary["loadgen_cpu_s"] = (after.ru_utime + after.ru_stime) - (
        before.ru_utime + before.ru_stime
    )
    return summary
