"""Side by side: skyroute, LiteLLM and Portkey in front of the same upstream (issue 7).

    .venv/bin/python bench/compare.py                     # everything, about 14 minutes
    .venv/bin/python bench/compare.py --quick --soak-seconds 0   # a rough look, ~3 minutes
    .venv/bin/python bench/compare.py --only skyroute     # no peers
    .venv/bin/python bench/compare.py --render bench/results/compare.json   # report only

Loopback only. Starts `skyroute emulate openai` (and `skyroute emulate anthropic` for the
translated path) on the load core, then, one gateway at a time pinned to the gateway core:
skyroute (`skyroute serve`, a generated config), Portkey and LiteLLM (installed on first use
into bench/.peers, git-ignored; see bench/peers.py). For each gateway, next to the same request
sent straight to the emulator:

- added latency p50/p90/p99 at concurrency 1 (plain), and the added time to the first
  streamed chunk (bench/loadgen.py "paired": gateway and direct alternate);
- closed-loop wrk cells at 16, 64 and 256 connections: req/s, p50/p90/p99, gateway CPU per
  request (utime+stime of the gateway's process tree over the window);
- RSS of the gateway's process tree idle and the peak under load.

skyroute only: the translated path (OpenAI in, Anthropic Messages upstream) at concurrency 1,
memory per open stream (bench/held_streams.py), optionally the same at a fixed upstream delay
(--upstream-delay, the emulator's persistent `delay` fault), and a soak (--soak-seconds) at
half the rate it sustained at 64 connections, sampling RSS every second and a /healthz probe
every 100 ms as an outside view of event-loop lag.

Writes the raw results (--json, default bench/results/compare.json) and the "Side by side"
section of docs/performance.md (between markers; the rest of the file is kept). Every process
it starts is stopped, also on errors. A peer that cannot be installed or started is reported
and skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import compare_report
import environment
import held_streams
import peers
import procs
import sweeps
import wrk_runner
from gateway_bench import (
    MASTER_KEY,
    MODEL,
    PLAIN_BODY,
    PROMPT,
    STREAM_BODY,
    UPSTREAM_KEY,
    create_bench_key,
)
from procs import Child, free_port, pinned

LOADGEN = Path(__file__).resolve().parent / "loadgen.py"
RESULTS = Path(__file__).resolve().parent / "results" / "compare.json"
QUIET = 0.10
ANTHROPIC_KEY = "sk-bench-anthropic"
TRANSLATED_MODEL = "claude-bench"
UPSTREAM_CLAUDE = "claude-sonnet-4-6"
HOLD_MODEL = "bench-hold"
ANTHROPIC_BODY = json.dumps(
    {
        "model": UPSTREAM_CLAUDE,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": PROMPT}],
    },
    separators=(",", ":"),
)
BEDROCK_KEY = "sk-bench-bedrock"
BEDROCK_MODEL = "bedrock-bench"
UPSTREAM_BEDROCK = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
BEDROCK_BODY = json.dumps(
    {
        "messages": [{"role": "user", "content": [{"text": PROMPT}]}],
        "inferenceConfig": {"maxTokens": 256},
    },
    separators=(",", ":"),
)
GEMINI_KEY = "sk-bench-gemini"
GEMINI_MODEL = "gemini-bench"
UPSTREAM_GEMINI = "gemini-2.5-flash"
GEMINI_BODY = json.dumps(
    {
        "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
        "generationConfig": {"maxOutputTokens": 256},
    },
    separators=(",", ":"),
)


def translated_body(model: str) -> str:
    """The OpenAI request the gateway translates for the ``model`` route."""
    return json.dumps(
        {"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": PROMPT}]},
        separators=(",", ":"),
    )


TRANSLATED_BODY = json.dumps(
    {
        "model": TRANSLATED_MODEL,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": PROMPT}],
    },
    separators=(",", ":"),
)


def tree_pids(root: int) -> list[int]:
    """`root` and every descendant (from /proc/*/stat parent ids)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, []))
    return out


def tree_cpu(root: int) -> float:
    total = 0.0
    for pid in tree_pids(root):
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += procs.cpu_seconds(pid)
    return total


def tree_rss_kib(root: int) -> int:
    total = 0
    for pid in tree_pids(root):
        with contextlib.suppress(OSError, KeyError):
            total += procs.memory_kib(pid)["VmRSS"]
    return total


class TreeRss:
    """Samples a process tree's RSS in a thread (interval seconds); peaks per window."""

    def __init__(self, root: int, interval: float = 0.1) -> None:
        self.root, self.interval = root, interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            rss = tree_rss_kib(self.root)
            if rss:
                self.samples.append((time.monotonic(), rss))

    def peak(self, since: float) -> int | None:
        values = [r for t, r in self.samples if t >= since]
        return max(values) if values else None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


def _say(text: str) -> None:
    print(f"[compare] {text}", file=sys.stderr, flush=True)


def raw_request(port: int, body: str, headers: list[tuple[str, str]], path: str) -> str:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers)
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"{head}Content-Length: {len(body)}\r\n\r\n{body}"
    )


def post(port: int, path: str, body: str, headers: list[tuple[str, str]], timeout: float = 10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = dict(headers)
        hdrs["Content-Type"] = "application/json"
        conn.request("POST", path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class Run:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.quick = args.quick
        self.gw_core = None if args.no_pin else args.gateway_core
        self.load_core = None if args.no_pin else args.load_core
        self.children: list[Child] = []
        self.emu_port = free_port()
        self.anth_port = free_port()
        self.bedrock_port = free_port()
        self.gemini_port = free_port()
        self.retries_left = 10
        self.results: dict[str, Any] = {
            "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": environment.describe(None),
            "wrk": wrk_runner.wrk_version(),
            "pinning": {"gateway": self.gw_core, "load_upstream_and_client": self.load_core},
            "quick": self.quick,
            "gateways": {},
            "skipped": {},
        }
        self.cell_seconds = 3 if self.quick else 8
        self.cell_warmup = 1 if self.quick else 2

    # -- processes -------------------------------------------------------------------------

    def start(
        self, name: str, cmd: list[str], core: int | None, env: dict[str, str] | None = None
    ) -> Child:
        child = Child(
            name,
            pinned(cmd, core),
            self.tmp / f"{name}.log",
            env or dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        self.children.append(child)
        return child

    def stop(self, child: Child) -> None:
        child.stop()
        if child in self.children:
            self.children.remove(child)

    def close(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()

    def loadgen(self, spec: dict[str, Any], timeout: float) -> dict[str, Any]:
        cmd = pinned([sys.executable, str(LOADGEN), json.dumps(spec)], self.load_core)
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, start_new_session=True
        )
        if out.returncode != 0:
            raise RuntimeError(f"loadgen failed ({out.returncode}): {out.stderr[-2000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def core_busy(self) -> float | None:
        return None if self.gw_core is None else procs.core_busy_seconds(self.gw_core)

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        if self.load_core is not None:
            os.sched_setaffinity(0, {self.load_core})
        skyroute = str(Path(sys.executable).parent / "skyroute")
        emu = self.start(
            "emulator",
            [
                skyroute,
                "emulate",
                "openai",
                "--port",
                str(self.emu_port),
                "--api-key",
                UPSTREAM_KEY,
            ],
            self.load_core,
        )
        emu.wait_for_log("listening on http://127.0.0.1", timeout=20)
        self.emulator = emu
        anth = self.start(
            "emulator-anthropic",
            [
                skyroute,
                "emulate",
                "anthropic",
                "--port",
                str(self.anth_port),
                "--api-key",
                ANTHROPIC_KEY,
            ],
            self.load_core,
        )
        anth.wait_for_log("listening on http://127.0.0.1", timeout=20)
        self.anthropic = anth
        for flavor, port, key in (
            ("bedrock", self.bedrock_port, BEDROCK_KEY),
            ("gemini", self.gemini_port, GEMINI_KEY),
        ):
            emulator = self.start(
                f"emulator-{flavor}",
                [skyroute, "emulate", flavor, "--port", str(port), "--api-key", key],
                self.load_core,
            )
            emulator.wait_for_log("listening on http://127.0.0.1", timeout=20)
        direct_headers = [("Authorization", f"Bearer {UPSTREAM_KEY}")]
        self.direct = {"port": self.emu_port, "headers": direct_headers}
        self.results["direct_cells"] = self.direct_cells()
        order = [g for g in ("skyroute", "portkey", "litellm") if g in self.args.only]
        for name in order:
            try:
                self.results["gateways"][name] = self.gateway(name)
            except Exception as exc:  # a peer that will not install or start: say so, go on
                _say(f"{name}: skipped: {exc}")
                traceback.print_exc(file=sys.stderr)
                self.results["skipped"][name] = (
                    str(exc).splitlines()[0][:300] if str(exc) else repr(exc)
                )
            self.save()
        return self.results

    def save(self) -> None:
        if self.args.json != "-":
            Path(self.args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(self.args.json).write_text(json.dumps(self.results, indent=2))

    def make_gateway(self, name: str) -> peers.Gateway:
        port = free_port()
        keys = {"master": MASTER_KEY, "upstream": UPSTREAM_KEY}
        if name == "skyroute":
            config = self.tmp / "skyroute.yaml"
            ports = (self.emu_port, self.anth_port, self.bedrock_port, self.gemini_port)
            config.write_text(_skyroute_config(*ports, self.tmp / "data"))
            key = create_bench_key(config)
            version = environment.git("rev-parse", "--short", "HEAD")
            dirty = bool(environment.git("status", "--porcelain", "src"))
            return peers.Gateway(
                name="skyroute",
                version=f"skyroute at {version}{' + uncommitted src/ changes' if dirty else ''}",
                cmd=[
                    str(Path(sys.executable).parent / "skyroute"),
                    "serve",
                    "--config",
                    str(config),
                    "--port",
                    str(port),
                ],
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
                port=port,
                headers=[("Authorization", f"Bearer {key}")],
            )
        maker = {"litellm": peers.litellm, "portkey": peers.portkey}[name]
        return maker(Path(self.args.peers_dir), self.tmp, port, self.emu_port, MODEL, keys, _say)

    def gateway(self, name: str) -> dict[str, Any]:
        gw = self.make_gateway(name)
        _say(f"{name}: starting ({gw.version})")
        child = self.start(name, gw.cmd, self.gw_core, gw.env)
        try:
            return self.measure(name, gw, child)
        finally:
            self.stop(child)

    def wait_ready(self, gw: peers.Gateway, child: Child, timeout: float) -> float:
        began = time.monotonic()
        last = ""
        while time.monotonic() - began < timeout:
            child.check_alive()
            try:
                status, data = post(gw.port, "/v1/chat/completions", PLAIN_BODY, gw.headers, 5)
                if status == 200:
                    return time.monotonic() - began
                last = f"HTTP {status}: {data[:200]!r}"
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise TimeoutError(
            f"{gw.name} not answering 200 within {timeout}s ({last}):\n{child.log_tail()}"
        )

    def verify(self, gw: peers.Gateway) -> dict[str, Any]:
        out = {}
        for kind, body in (("plain", PLAIN_BODY), ("stream", STREAM_BODY)):
            status, data = post(gw.port, "/v1/chat/completions", body, gw.headers)
            if status != 200:
                raise RuntimeError(f"{gw.name} {kind}: HTTP {status}: {data[:300]!r}")
            out[kind] = {"bytes": len(data)}
            if kind == "stream":
                out[kind]["events"] = data.count(b"data: ")
                if not data.rstrip().endswith(b"data: [DONE]"):
                    raise RuntimeError(
                        f"{gw.name}: stream did not end with [DONE]: {data[-200:]!r}"
                    )
        return out

    def target(
        self,
        name: str,
        port: int,
        headers: list[tuple[str, str]],
        body: str,
        path: str = "/v1/chat/completions",
    ) -> dict[str, Any]:
        return {
            "name": name,
            "host": "127.0.0.1",
            "port": port,
            "request": raw_request(port, body, headers, path),
        }

    def paired(
        self,
        gw: peers.Gateway,
        pid: int,
        kind: str,
        samples: int,
        warmup: int,
        gw_target: dict[str, Any] | None = None,
        direct_target: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body = STREAM_BODY if kind == "stream" else PLAIN_BODY
        spec = {
            "mode": "paired",
            "stream": kind == "stream",
            "targets": [
                gw_target or self.target("gateway", gw.port, gw.headers, body),
                direct_target or self.target("direct", self.emu_port, self.direct["headers"], body),
            ],
            "warmup_requests": warmup,
            "samples": samples,
            "time_limit_s": 45,
            "watch": {
                "pids": {"gateway": pid},
                "cores": [] if self.gw_core is None else [self.gw_core],
            },
        }

        def once() -> dict[str, Any]:
            raw = self.loadgen(spec, timeout=120)
            w = raw["window"]
            gw_t, d_t = raw["targets"]["gateway"], raw["targets"]["direct"]
            out: dict[str, Any] = {
                "samples": gw_t["count"],
                "errors": gw_t["errors"],
                "direct_errors": d_t["errors"],
            }
            for metric in ("latency_us", "first_byte_us"):
                g, d = gw_t[metric], d_t[metric]
                if g and d:
                    out[metric] = {
                        f"{side}_{p}": src[p]
                        for side, src in (("gateway", g), ("direct", d))
                        for p in ("p50", "p90", "p99", "p999", "max")
                    }
                    out[metric].update({f"added_{p}": g[p] - d[p] for p in ("p50", "p90", "p99")})
            if gw_t["count"]:
                out["cpu_us_per_request"] = w["cpu_s"]["gateway"] / gw_t["count"] * 1e6
            busy = next(iter(w.get("core_busy_s", {}).values()), None)
            out["other_load"] = _other(busy, w["cpu_s"]["gateway"], w["elapsed_s"])
            return out

        return self.quietest(once)

    def wait_quiet(self, limit_s: float = 30.0) -> float:
        """Before a measurement (our processes idle): wait, up to limit_s, for a 0.5 s window
        in which the gateway core is under 10% busy; the seconds waited."""
        if self.gw_core is None:
            return 0.0
        began = time.monotonic()
        while time.monotonic() - began < limit_s:
            b0 = procs.core_busy_seconds(self.gw_core)
            time.sleep(0.5)
            if procs.core_busy_seconds(self.gw_core) - b0 < 0.05:
                break
        waited = time.monotonic() - began - 0.5
        if waited > 1:
            _say(f"  waited {waited:.0f} s for the gateway core to go quiet")
        return waited

    def quietest(self, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        best = None
        attempts = 0
        while True:
            attempts += 1
            self.wait_quiet()
            res = measure()
            load = res.get("other_load") or 0.0
            if best is None or load < (best.get("other_load") or 0.0):
                best = res
            if load <= QUIET or self.retries_left <= 0:
                break
            self.retries_left -= 1
            _say(f"  other processes took {load:.0%} of the gateway core; measuring again")
        best["attempts"] = attempts
        return best

    def wrk_cell(
        self,
        port: int,
        headers: list[tuple[str, str]],
        body: str,
        conc: int,
        pid: int | None,
        rss: TreeRss | None,
        warm_python: bool,
    ) -> dict[str, Any]:
        script = wrk_runner.write_script(
            self.tmp / f"wrk_{port}.lua", body, [("Content-Type", "application/json"), *headers]
        )
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        pin = pinned([], self.load_core)
        seconds = self.cell_seconds

        def once() -> dict[str, Any]:
            if warm_python:  # fill the gateway's upstream pool without aborting requests
                spec = {
                    "mode": "closed",
                    "stream": False,
                    "concurrency": conc,
                    "warmup_s": 0,
                    "duration_s": self.cell_warmup,
                    "max_requests": 5_000_000,
                    "targets": [self.target("gateway", port, headers, body)],
                }
                self.loadgen(spec, timeout=self.cell_warmup + 90)
            else:
                wrk_runner.run_wrk(url, script, connections=conc, seconds=self.cell_warmup, pin=pin)
            since = time.monotonic()
            cpu0 = tree_cpu(pid) if pid else 0.0
            core0, t0 = self.core_busy(), time.monotonic()
            raw = wrk_runner.run_wrk(
                url, script, connections=conc, seconds=seconds, pin=pin, timeout_s=10
            )
            cpu1 = tree_cpu(pid) if pid else 0.0
            core1, t1 = self.core_busy(), time.monotonic()
            errors = {
                k: raw[k] for k in ("connect", "read", "write", "status", "timeout") if raw[k]
            }
            out = {
                "concurrency": conc,
                "rps": raw["requests"] / (raw["duration_us"] / 1e6),
                "requests": raw["requests"],
                "errors": errors,
                "latency_us": {k: raw[k] for k in ("p50", "p90", "p99", "p999", "max")},
                "wrk_cpu_s": raw["loadgen_cpu_s"],
                "elapsed_s": t1 - t0,
            }
            if pid:
                out["gateway_cpu_s"] = cpu1 - cpu0
                out["cpu_us_per_request"] = (cpu1 - cpu0) / max(1, raw["requests"]) * 1e6
                out["gateway_core_use"] = (cpu1 - cpu0) / (t1 - t0)
                busy = None if core0 is None or core1 is None else core1 - core0
                out["other_load"] = _other(busy, cpu1 - cpu0, t1 - t0)
                out["rss_peak_kib"] = rss.peak(since) if rss else None
            return out

        return self.quietest(once) if pid else once()

    def direct_cells(self) -> list[dict[str, Any]]:
        cells = []
        for conc in self.concurrencies():
            _say(f"direct: wrk c={conc}")
            cells.append(
                self.wrk_cell(
                    self.emu_port,
                    self.direct["headers"],
                    PLAIN_BODY,
                    conc,
                    None,
                    None,
                    warm_python=False,
                )
            )
        return cells

    def concurrencies(self) -> tuple[int, ...]:
        return (64,) if self.quick else (16, 64, 256)

    def measure(self, name: str, gw: peers.Gateway, child: Child) -> dict[str, Any]:
        slow = name == "litellm"
        startup = self.wait_ready(gw, child, timeout=120)
        res: dict[str, Any] = {
            "version": gw.version,
            "startup_s": round(startup, 2),
            "cmd": " ".join(shlex.quote(c) for c in gw.cmd),
        }
        res["shape"] = self.verify(gw)
        self.lag_phase(name, gw, {}, "start-up")  # starts a fresh window
        time.sleep(1.0)
        pid = child.pid
        res["pids_in_tree"] = len(tree_pids(pid))
        res["rss_idle_kib"] = tree_rss_kib(pid)
        rss = TreeRss(pid)
        try:
            n_plain = (300 if slow else 1000) if self.quick else (1000 if slow else 4000)
            n_stream = (150 if slow else 300) if self.quick else (400 if slow else 1500)
            if name == "portkey":
                n_stream = 120 if self.quick else 400  # it waits ~25 ms before the first chunk
            _say(f"{name}: latency c=1 plain ({n_plain} pairs)")
            res["latency_plain"] = self.paired(gw, pid, "plain", n_plain, max(100, n_plain // 10))
            _say(f"{name}: latency c=1 stream ({n_stream} pairs)")
            res["latency_stream"] = self.paired(
                gw, pid, "stream", n_stream, max(50, n_stream // 10)
            )
            res["rss_idle_after_c1_kib"] = tree_rss_kib(pid)
            if name == "skyroute":
                _say("skyroute: translated path c=1 (OpenAI in, Anthropic upstream)")
                res["latency_translated"] = self.paired(
                    gw,
                    pid,
                    "plain",
                    n_plain,
                    max(100, n_plain // 10),
                    gw_target=self.target("gateway", gw.port, gw.headers, TRANSLATED_BODY),
                    direct_target=self.target(
                        "direct",
                        self.anth_port,
                        [("x-api-key", ANTHROPIC_KEY), ("anthropic-version", "2023-06-01")],
                        ANTHROPIC_BODY,
                        path="/v1/messages",
                    ),
                )
                for name_, model, port, headers, body, path in self.translated_upstreams():
                    _say(f"skyroute: translated path c=1 (OpenAI in, {name_} upstream)")
                    res[f"latency_translated_{name_}"] = self.paired(
                        gw,
                        pid,
                        "plain",
                        n_plain,
                        max(100, n_plain // 10),
                        gw_target=self.target(
                            "gateway", gw.port, gw.headers, translated_body(model)
                        ),
                        direct_target=self.target("direct", port, headers, body, path=path),
                    )
                _say("skyroute: memory per open stream")
                res["held_streams"] = self.held(gw, pid)
            cells = []
            for conc in self.concurrencies():
                _say(f"{name}: wrk c={conc}")
                cells.append(
                    self.wrk_cell(gw.port, gw.headers, PLAIN_BODY, conc, pid, rss, warm_python=True)
                )
            res["cells"] = cells
            self.lag_phase(name, gw, res, "c=1 latency and throughput cells")
            res["rate_sweep"] = self.rate_sweep(name, gw, pid)
            self.lag_phase(name, gw, res, "open-loop rate sweep")
            res["stream_sweep"] = self.stream_sweep(name, gw, pid)
            self.lag_phase(name, gw, res, "stream sweep")
            time.sleep(1.0)
            res["rss_after_load_kib"] = tree_rss_kib(pid)
            res["rss_peak_kib"] = rss.peak(0.0)
            if name == "skyroute" and self.args.upstream_delay > 0:
                res["delay_variant"] = self.delay_variant(gw, pid, rss)
            if name == "skyroute" and self.args.soak_seconds > 0:
                c64 = next(c for c in cells if c["concurrency"] == 64)
                res["soak"] = self.soak(gw, pid, c64["rps"] / 2)
                self.lag_phase(name, gw, res, "soak")
        finally:
            rss.stop()
        return res

    # -- sweeps and loop lag --------------------------------------------------------------

    # Open-loop rates tried per gateway, ascending (each gateway's range around its knee).
    SWEEP_RATES = {
        "skyroute": (1000, 2000, 4000, 6000, 8000, 10000, 12000, 16000),
        "portkey": (250, 500, 1000, 1500, 2000, 3000),
        "litellm": (25, 50, 100, 150, 200, 400),
    }

    def rate_sweep(self, name: str, gw: peers.Gateway, pid: int) -> dict[str, Any]:
        rates = self.SWEEP_RATES.get(name, self.SWEEP_RATES["portkey"])
        if self.quick:
            rates = rates[:3]
        _say(f"{name}: open-loop rate sweep {', '.join(f'{r:,}' for r in rates)} req/s")
        return sweeps.rate_sweep(
            self.loadgen,
            self.target("gateway", gw.port, gw.headers, PLAIN_BODY),
            self.target("direct", self.emu_port, self.direct["headers"], PLAIN_BODY),
            rates=rates,
            duration_s=3.0 if self.quick else 10.0,
            watch=self.sweep_watch(pid),
        )

    def stream_sweep(self, name: str, gw: peers.Gateway, pid: int) -> dict[str, Any]:
        # LiteLLM serves ~120 requests/s: 512 or 2,000 concurrent streams would not finish
        # one round in a cell's time, so it is measured at 128 only.
        concurrencies = (128,) if name == "litellm" or self.quick else (128, 512, 2000)
        _say(f"{name}: stream sweep at {', '.join(map(str, concurrencies))} concurrent streams")
        return sweeps.stream_sweep(
            self.loadgen,
            self.target("gateway", gw.port, gw.headers, STREAM_BODY),
            self.target("direct", self.emu_port, self.direct["headers"], STREAM_BODY),
            concurrencies=concurrencies,
            duration_s=3.0 if self.quick else 10.0,
            watch=self.sweep_watch(pid),
        )

    def sweep_watch(self, pid: int) -> dict[str, Any]:
        assert self.emulator is not None
        return {
            "pids": {"gateway": pid, "emulator": self.emulator.pid},
            "cores": [] if self.gw_core is None else [self.gw_core],
        }

    def lag_phase(self, name: str, gw: peers.Gateway, res: dict[str, Any], phase: str) -> None:
        """skyroute only: the event-loop lag it measured itself since the last reading
        (`GET /admin/runtime?reset=1`), recorded under ``res["loop_lag"][phase]``."""
        if name != "skyroute":
            return
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
        try:
            conn.request(
                "GET", "/admin/runtime?reset=1", headers={"Authorization": f"Bearer {MASTER_KEY}"}
            )
            answer = conn.getresponse()
            body = answer.read()
        finally:
            conn.close()
        if answer.status == 200:
            res.setdefault("loop_lag", {})[phase] = json.loads(body)["loop_lag_ms"]

    def translated_upstreams(self) -> list[tuple[str, str, int, list[tuple[str, str]], str, str]]:
        """(name, gateway model, upstream port, upstream headers, upstream body, path) of
        each translated path besides Anthropic's: the same prompt sent to the emulator
        directly in its own protocol, to subtract."""
        return [
            (
                "bedrock",
                BEDROCK_MODEL,
                self.bedrock_port,
                [("Authorization", f"Bearer {BEDROCK_KEY}")],
                BEDROCK_BODY,
                f"/model/{UPSTREAM_BEDROCK}/converse",
            ),
            (
                "gemini",
                GEMINI_MODEL,
                self.gemini_port,
                [("x-goog-api-key", GEMINI_KEY)],
                GEMINI_BODY,
                f"/v1beta/models/{UPSTREAM_GEMINI}:generateContent",
            ),
        ]

    def held(self, gw: peers.Gateway, pid: int) -> dict[str, Any]:
        count = 200 if self.quick else 400
        body = STREAM_BODY.replace(f'"model":"{MODEL}"', f'"model":"{HOLD_MODEL}"')
        spec = {
            "mode": "hold",
            "targets": [self.target("gateway", gw.port, gw.headers, body)],
            "streams": count,
            "timeout_s": 30,
            "hold_limit_s": 60,
        }
        return held_streams.measure(
            gateway_pid=pid,
            emu_port=self.emu_port,
            model=HOLD_MODEL,
            count=count,
            loadgen=pinned([sys.executable, str(LOADGEN), json.dumps(spec)], self.load_core),
            logs=self.tmp,
        )

    def delay_variant(self, gw: peers.Gateway, pid: int, rss: TreeRss) -> dict[str, Any]:
        """The same at a fixed upstream latency (the emulator's persistent delay fault)."""
        delay = self.args.upstream_delay
        fault = {"kind": "delay", "seconds": delay, "repeat": True}
        held_streams._emulator_call(
            self.emu_port, "POST", "/_emulator/faults", {"model": "*", "faults": [fault]}
        )
        try:
            _say(f"skyroute: upstream delay {delay * 1000:.0f} ms, c=1 and c=64")
            n = max(40, int(4 / (delay + 0.001)))
            lat = self.paired(gw, pid, "plain", n, 10)
            cell = self.wrk_cell(gw.port, gw.headers, PLAIN_BODY, 64, pid, rss, warm_python=True)
            direct = self.wrk_cell(
                self.emu_port, self.direct["headers"], PLAIN_BODY, 64, None, None, warm_python=False
            )
        finally:
            held_streams._emulator_call(self.emu_port, "DELETE", "/_emulator/faults", None)
        return {"delay_s": delay, "latency_plain": lat, "cell_c64": cell, "direct_c64": direct}

    def soak(self, gw: peers.Gateway, pid: int, rate: float) -> dict[str, Any]:
        """wrk paced at ~rate req/s (10 ms think time per connection) for soak_seconds."""
        seconds = self.args.soak_seconds
        think_ms = 10
        conns = max(1, round(rate * think_ms / 1000))
        script = wrk_runner.write_script(
            self.tmp / "soak.lua", PLAIN_BODY, [("Content-Type", "application/json"), *gw.headers]
        )
        with script.open("a") as fh:
            fh.write(f"\nfunction delay()\n  return {think_ms}\nend\n")
        _say(
            f"skyroute: soak {seconds} s, {conns} connections x {think_ms} ms think time "
            f"(~{rate:,.0f} req/s wanted), /healthz probe every 100 ms"
        )
        probes: list[tuple[float, float]] = []
        probe_errors = 0
        rss_samples: list[tuple[float, int]] = []
        stop = threading.Event()

        def probe() -> None:
            nonlocal probe_errors
            conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
            nxt = time.monotonic()
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    conn.request("GET", "/healthz")
                    conn.getresponse().read()
                    probes.append((time.monotonic(), (time.perf_counter() - t0) * 1e6))
                except (OSError, http.client.HTTPException):
                    probe_errors += 1
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
                nxt += 0.1
                stop.wait(max(0.0, nxt - time.monotonic()))
            conn.close()

        def sample_rss() -> None:
            while not stop.wait(1.0):
                rss_samples.append((time.monotonic(), tree_rss_kib(pid)))

        url = f"http://127.0.0.1:{gw.port}/v1/chat/completions"
        threads = [
            threading.Thread(target=probe, daemon=True),
            threading.Thread(target=sample_rss, daemon=True),
        ]
        t_start = time.monotonic()
        rss_start = tree_rss_kib(pid)
        cpu0, core0 = tree_cpu(pid), self.core_busy()
        for t in threads:
            t.start()
        try:
            raw = wrk_runner.run_wrk(
                url,
                script,
                connections=conns,
                seconds=seconds,
                pin=pinned([], self.load_core),
                timeout_s=10,
            )
        finally:
            stop.set()
            for t in threads:
                t.join(6)
        t_end = time.monotonic()
        cpu1, core1 = tree_cpu(pid), self.core_busy()
        lat = sorted(v for _, v in probes)
        # RSS growth: the first minute's peak (after warm-up) against the last minute's.
        first = [r for t, r in rss_samples if t - t_start <= 60]
        last = [r for t, r in rss_samples if t_end - t <= 60]
        per_min: list[int] = []
        for t, r in rss_samples:
            minute = int((t - t_start) // 60)
            while len(per_min) <= minute:
                per_min.append(0)
            per_min[minute] = max(per_min[minute], r)
        worst = sorted(probes, key=lambda p: p[1])[-5:]
        errors = {k: raw[k] for k in ("connect", "read", "write", "status", "timeout") if raw[k]}
        return {
            "seconds": seconds,
            "connections": conns,
            "think_ms": think_ms,
            "wanted_rps": rate,
            "rps": raw["requests"] / (raw["duration_us"] / 1e6),
            "requests": raw["requests"],
            "errors": errors,
            "latency_us": {k: raw[k] for k in ("p50", "p90", "p99", "p999", "max")},
            "cpu_us_per_request": (cpu1 - cpu0) / max(1, raw["requests"]) * 1e6,
            "other_load": _other(
                None if core0 is None else core1 - core0, cpu1 - cpu0, t_end - t_start
            ),
            "rss_start_kib": rss_start,
            "rss_first_minute_peak_kib": max(first) if first else None,
            "rss_last_minute_peak_kib": max(last) if last else None,
            "rss_end_kib": rss_samples[-1][1] if rss_samples else None,
            "rss_peak_per_minute_kib": per_min,
            "probe": {
                "count": len(lat),
                "errors": probe_errors,
                "p50_us": lat[len(lat) // 2] if lat else None,
                "p99_us": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None,
                "p999_us": lat[min(len(lat) - 1, int(len(lat) * 0.999))] if lat else None,
                "max_us": lat[-1] if lat else None,
                "worst_at_s": [(round(t - t_start, 1), round(v)) for t, v in worst],
            },
        }


def _other(busy: float | None, own: float, elapsed: float) -> float | None:
    if busy is None or not elapsed:
        return None
    return max(0.0, (busy - own) / elapsed)


def _skyroute_config(
    emu_port: int, anth_port: int, bedrock_port: int, gemini_port: int, data_dir: Path
) -> str:
    return f"""\
auth:
  master_key: {MASTER_KEY}
store:
  data_dir: {data_dir}
providers:
  emulator:
    type: openai
    base_url: http://127.0.0.1:{emu_port}/v1
    api_key: {UPSTREAM_KEY}
  claude:
    type: anthropic
    base_url: http://127.0.0.1:{anth_port}
    api_key: {ANTHROPIC_KEY}
  bedrock:
    type: bedrock
    region: us-east-1
    endpoint_url: http://127.0.0.1:{bedrock_port}
    api_key: {BEDROCK_KEY}
  gemini:
    type: gemini
    base_url: http://127.0.0.1:{gemini_port}
    api_key: {GEMINI_KEY}
models:
  {MODEL}:
    deployments:
      - {{provider: emulator, model: {MODEL}}}
  {HOLD_MODEL}:
    deployments:
      - {{provider: emulator, model: {HOLD_MODEL}}}
  {TRANSLATED_MODEL}:
    deployments:
      - {{provider: claude, model: {UPSTREAM_CLAUDE}}}
  {BEDROCK_MODEL}:
    deployments:
      - {{provider: bedrock, model: "{UPSTREAM_BEDROCK}"}}
  {GEMINI_MODEL}:
    deployments:
      - {{provider: gemini, model: {UPSTREAM_GEMINI}}}
server:
  log_level: warning
  drain_seconds: 1
"""


def _parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer samples, c=64 only, 3 s cells")
    p.add_argument(
        "--only",
        default="skyroute,portkey,litellm",
        help="comma-separated gateways (skyroute, portkey, litellm)",
    )
    p.add_argument(
        "--soak-seconds",
        type=int,
        default=540,
        help="skyroute soak at half its c=64 rate (0: none; the issue asks 1800)",
    )
    p.add_argument(
        "--upstream-delay",
        type=float,
        default=0.0,
        help="also measure skyroute with this fixed upstream delay (s), e.g. 0.05",
    )
    p.add_argument("--peers-dir", default=str(peers.DEFAULT_PEERS_DIR))
    p.add_argument("--json", default=str(RESULTS), help="raw results (- for none)")
    p.add_argument(
        "--out",
        default=str(environment.REPO / "docs" / "performance.md"),
        help="Markdown file whose side-by-side section is replaced (- for stdout)",
    )
    p.add_argument("--render", metavar="JSON", help="measure nothing: render saved results")
    p.add_argument("--gateway-core", type=int, default=0)
    p.add_argument("--load-core", type=int, default=1)
    p.add_argument("--no-pin", action="store_true")
    args = p.parse_args()
    args.only = [g.strip() for g in args.only.split(",") if g.strip()]
    return args


def _command(args: argparse.Namespace) -> str:
    parts = [".venv/bin/python", "bench/compare.py"]
    if args.quick:
        parts.append("--quick")
    if args.only != ["skyroute", "portkey", "litellm"]:
        parts += ["--only", ",".join(args.only)]
    if args.soak_seconds != 540:
        parts += ["--soak-seconds", str(args.soak_seconds)]
    if args.upstream_delay:
        parts += ["--upstream-delay", str(args.upstream_delay)]
    if args.no_pin:
        parts.append("--no-pin")
    return shlex.join(parts)


def main() -> int:
    args = _parse_args()
    if args.render:
        results = json.loads(Path(args.render).read_text())
    else:
        usable = os.sched_getaffinity(0)
        if not args.no_pin and not {args.gateway_core, args.load_core} <= usable:
            _say(f"cores {args.gateway_core}/{args.load_core} not both usable; running unpinned")
            args.no_pin = True
        if not args.no_pin:
            _say(
                f"pinning: each gateway to core {args.gateway_core}; upstream emulators, wrk, "
                f"the load generator and this script to core {args.load_core}"
            )
        if wrk_runner.wrk_path() is None:
            raise SystemExit("wrk is needed for the throughput cells (apt-get install -y wrk)")
        environment.raise_fd_limit()
        began = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="skyroute-compare-") as tmp:
            run = Run(args, Path(tmp))
            run.results["command"] = _command(args)
            try:
                results = run.run()
            finally:
                run.close()
            results["run_seconds"] = round(time.monotonic() - began, 1)
            run.save()
    section = compare_report.render(results)
    if args.out == "-":
        print(section)
    else:
        compare_report.replace_section(Path(args.out), section)
        _say(f"wrote the side-by-side section of {args.out}")
    print(compare_report.summary(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
