"""Two sweeps for the side-by-side benchmark (issue 7): the highest request rate a gateway
sustains within a p99 bound, and what streaming costs at many concurrent streams.

- `rate_sweep`: open-loop load (bench/loadgen.py "open": fixed arrival times, latency from
  each request's scheduled time, so queueing is counted) at ascending rates. At each rate the
  emulator is measured directly, then through the gateway, with the same client; added p99 =
  gateway p99 - direct p99, two runs one after the other at the same rate. The sweep stops at
  the first rate where added p99 breaks the bound, more than 1 % of the gateway's requests
  fail, the direct run itself fails, or the load generator is saturated (its result then
  says "limited by the generator": the gateway was not the bottleneck that was found).
- `stream_sweep`: closed-loop streaming (loadgen "closed" with "stream") at each concurrency,
  direct then gateway: time to the first event (TTFB) and to the end of the stream, and the
  per-chunk overhead = (gateway - direct whole-stream p50) / events per stream.

Both take the load generator as a callable, `run_loadgen(spec, timeout_s) -> result`, and two
loadgen targets ({"name", "host", "port", "request"}); they return plain dicts (JSON-ready).

    .venv/bin/python bench/sweeps.py --smoke     # both sweeps, very short, against skyroute
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LoadgenRunner = Callable[[dict[str, Any], float], dict[str, Any]]
Watch = dict[str, Any] | None  # loadgen's "watch": {"pids": {name: pid}, "cores": [core]}

LOADGEN = Path(__file__).resolve().parent / "loadgen.py"
# The emulator's answer to gateway_bench.PROMPT streams 18 events (role, 14 words, finish,
# usage, [DONE]); see the comment above PROMPT there.
STREAM_EVENTS = 18
MAX_ERROR_RATE = 0.01
MAX_CONNECTIONS = 4096
GRACE_S = 10.0
# The load core runs the generator and the emulator: past this share of it (when the
# emulator is watched) the direct numbers say more about that core than about the gateway.
_LOAD_CORE_FULL = 0.95


# -- rate sweep --------------------------------------------------------------------------------


def rate_sweep(
    run_loadgen: LoadgenRunner,
    target_gateway: dict[str, Any],
    target_direct: dict[str, Any],
    *,
    rates: Sequence[float],
    duration_s: float,
    p99_bound_ms: float = 20.0,
    warmup_s: float = 1.0,
    retries: int = 1,
    watch: Watch = None,
) -> dict[str, Any]:
    """Open-loop steps at ascending `rates` until one fails; the highest that passed.

    A step that fails on the gateway's account (p99 or errors) is measured again, up to
    `retries` times, and the last try decides: on a shared machine one stall of another
    process can own a short run's p99. The failed tries are kept in the step."""
    runner = _RateRunner(
        run_loadgen, target_gateway, target_direct, duration_s, warmup_s, p99_bound_ms, watch
    )
    steps: list[dict[str, Any]] = []
    limited_by = "nothing: the highest rate tried passed"
    for rate in sorted(rates):
        tries = [runner.step(rate)]
        while tries[-1]["verdict"] in _RETRIED and len(tries) <= retries:
            tries.append(runner.step(rate))
        step = tries[-1]
        step["failed_tries"] = [_brief(t) for t in tries[:-1]]
        steps.append(step)
        if step["verdict"] != "ok":
            limited_by = step["verdict"]
            break
    passed = [s["rate"] for s in steps if s["verdict"] == "ok"]
    return {
        "p99_bound_ms": p99_bound_ms,
        "duration_s": duration_s,
        "warmup_s": warmup_s,
        "added_p99": "gateway p99 - direct p99, latency from the scheduled send time, "
        "two open-loop runs at the same rate (direct first)",
        "steps": steps,
        "sustainable_rate": max(passed) if passed else None,
        "limited_by": limited_by,
    }


_GATEWAY_ERRORS = "gateway errors over 1 %"
_OVER_BOUND = "added p99 over the bound"
_RETRIED = (_GATEWAY_ERRORS, _OVER_BOUND)


@dataclass(frozen=True)
class _RateRunner:
    run_loadgen: LoadgenRunner
    target_gateway: dict[str, Any]
    target_direct: dict[str, Any]
    duration_s: float
    warmup_s: float
    p99_bound_ms: float
    watch: Watch

    def step(self, rate: float) -> dict[str, Any]:
        """The emulator directly, then the gateway, at `rate`."""
        timeout = _timeout(self.duration_s, self.warmup_s)
        direct, gateway = (
            self.run_loadgen(
                _open_spec(target, rate, self.duration_s, self.warmup_s, self.watch), timeout
            )
            for target in (self.target_direct, self.target_gateway)
        )
        return _rate_step(rate, direct, gateway, self.p99_bound_ms)


def _brief(step: dict[str, Any]) -> dict[str, Any]:
    return {k: step[k] for k in ("verdict", "added_p99_ms")} | {
        "gateway_p99_ms": step["gateway"]["p99_ms"],
        "direct_p99_ms": step["direct"]["p99_ms"],
    }


def _open_spec(
    target: dict[str, Any], rate: float, duration_s: float, warmup_s: float, watch: Watch
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "mode": "open",
        "targets": [target],
        "rate": rate,
        "warmup_s": warmup_s,
        "duration_s": duration_s,
        "max_connections": MAX_CONNECTIONS,
        "initial_connections": 16,
        "grace_s": GRACE_S,
    }
    if watch:
        spec["watch"] = watch
    return spec


def _timeout(duration_s: float, warmup_s: float) -> float:
    return warmup_s + duration_s + GRACE_S + 60


def _rate_step(
    rate: float, direct: dict[str, Any], gateway: dict[str, Any], bound_ms: float
) -> dict[str, Any]:
    d_p99 = direct["latency_us"].get("p99")
    g_p99 = gateway["latency_us"].get("p99")
    added = None if d_p99 is None or g_p99 is None else (g_p99 - d_p99) / 1000
    step = {
        "rate": rate,
        "direct": _open_summary(direct),
        "gateway": _open_summary(gateway),
        "added_p50_ms": _added_ms(gateway, direct, "latency_us", "p50"),
        "added_p99_ms": added,
    }
    step["verdict"] = _verdict(step, bound_ms)
    return step


def _verdict(step: dict[str, Any], bound_ms: float) -> str:
    """Why this step ends the sweep, or "ok". The generator comes first: if it could not keep
    up, nothing measured at this rate says anything about the gateway."""
    direct, gateway = step["direct"], step["gateway"]
    if direct["generator_saturated"] or gateway["generator_saturated"]:
        return "limited by the generator"
    if (direct["load_core_share"] or 0.0) > _LOAD_CORE_FULL:
        return "limited by the load core (generator and emulator)"
    if direct["error_rate"] > MAX_ERROR_RATE or direct["p99_ms"] is None:
        return "direct run failed (upstream or client limit)"
    if gateway["error_rate"] > MAX_ERROR_RATE or gateway["p99_ms"] is None:
        return _GATEWAY_ERRORS
    if step["added_p99_ms"] > bound_ms:
        return _OVER_BOUND
    return "ok"


def _open_summary(raw: dict[str, Any]) -> dict[str, Any]:
    latency, lag = raw["latency_us"], raw["send_lag_us"]
    window = raw.get("window", {})
    return {
        "achieved_rps": raw["achieved_rps"],
        "completed": raw["completed"],
        "scheduled": raw["scheduled"],
        "errors": raw["errors"],
        "error_rate": raw["error_rate"],
        "p50_ms": _ms(latency.get("p50")),
        "p90_ms": _ms(latency.get("p90")),
        "p99_ms": _ms(latency.get("p99")),
        "p999_ms": _ms(latency.get("p999")),
        "ttfb_p99_ms": _ms(raw["first_byte_us"].get("p99")),
        "send_lag_p99_ms": _ms(lag.get("p99")),
        "connections_peak": raw["connections"]["peak"],
        "connections_opened": raw["connections"]["opened_during_run"],
        "generator_cpu_share": raw["generator_cpu_share"],
        "generator_saturated": raw["generator_saturated"],
        "load_core_share": _load_core_share(window),
        "server_cpu_s": window.get("cpu_s", {}),
    }


# -- stream sweep ------------------------------------------------------------------------------


def stream_sweep(
    run_loadgen: LoadgenRunner,
    target_gateway: dict[str, Any],
    target_direct: dict[str, Any],
    *,
    concurrencies: Sequence[int] = (128, 512, 2000),
    duration_s: float,
    warmup_s: float = 1.0,
    events_per_stream: int = STREAM_EVENTS,
    watch: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Closed-loop streams at each concurrency, direct then gateway. The targets' requests
    must ask for a stream (`"stream": true`) of `events_per_stream` events."""
    cells = []
    for concurrency in concurrencies:
        timeout = _timeout(duration_s, warmup_s) + concurrency / 100  # connecting takes a while
        direct = run_loadgen(
            _stream_spec(target_direct, concurrency, duration_s, warmup_s, watch), timeout
        )
        gateway = run_loadgen(
            _stream_spec(target_gateway, concurrency, duration_s, warmup_s, watch), timeout
        )
        cells.append(_stream_cell(concurrency, direct, gateway, events_per_stream))
    return {
        "duration_s": duration_s,
        "warmup_s": warmup_s,
        "events_per_stream": events_per_stream,
        "per_chunk_overhead": "(gateway - direct whole-stream p50) / events per stream, "
        "closed loop at the same concurrency (direct first)",
        "cells": cells,
    }


def _stream_spec(
    target: dict[str, Any], concurrency: int, duration_s: float, warmup_s: float, watch: Watch
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "mode": "closed",
        "stream": True,
        "targets": [target],
        "concurrency": concurrency,
        "warmup_s": warmup_s,
        "duration_s": duration_s,
        "max_requests": 5_000_000,
        "grace_s": GRACE_S,
    }
    if watch:
        spec["watch"] = watch
    return spec


def _stream_cell(
    concurrency: int, direct: dict[str, Any], gateway: dict[str, Any], events: int
) -> dict[str, Any]:
    added_whole = _added_ms(gateway, direct, "latency_us", "p50")
    return {
        "concurrency": concurrency,
        "direct": _stream_summary(direct),
        "gateway": _stream_summary(gateway),
        "added_ttfb_p50_ms": _added_ms(gateway, direct, "first_byte_us", "p50"),
        "added_ttfb_p99_ms": _added_ms(gateway, direct, "first_byte_us", "p99"),
        "added_stream_p50_ms": added_whole,
        "per_chunk_overhead_us": None if added_whole is None else added_whole * 1000 / events,
        "gateway_cpu_per_event_us": _cpu_per_event_us(gateway, events),
    }


def _cpu_per_event_us(raw: dict[str, Any], events: int) -> float | None:
    """The gateway's CPU over the measured window per event relayed: what a chunk costs,
    queueing excluded (the closed loop at saturation inflates latency, not CPU)."""
    cpu = raw.get("window", {}).get("cpu_s", {}).get("gateway")
    if cpu is None or not raw["completed"]:
        return None
    return float(cpu) * 1e6 / (raw["completed"] * events)


def _stream_summary(raw: dict[str, Any]) -> dict[str, Any]:
    window = raw.get("window", {})
    elapsed = window.get("elapsed_s") or 0.0
    share = window.get("loadgen_cpu_s", 0.0) / elapsed if elapsed else None
    first, whole = raw["first_byte_us"], raw["latency_us"]
    errors = sum(raw["errors"].values())
    return {
        "streams_per_s": raw["rps"],
        "completed": raw["completed"],
        "errors": raw["errors"],
        "error_rate": errors / (errors + raw["completed"]) if errors else 0.0,
        "ttfb_p50_ms": _ms(first.get("p50")),
        "ttfb_p99_ms": _ms(first.get("p99")),
        "stream_p50_ms": _ms(whole.get("p50")),
        "stream_p99_ms": _ms(whole.get("p99")),
        "generator_cpu_share": share,
        "generator_saturated": share is not None and share > 0.8,
        "load_core_share": _load_core_share(window),
        "server_cpu_s": window.get("cpu_s", {}),
    }


# -- shared ------------------------------------------------------------------------------------


def _load_core_share(window: dict[str, Any]) -> float | None:
    """(generator + emulator CPU) / elapsed: how busy the load core was; None when the
    emulator was not watched."""
    emulator = window.get("cpu_s", {}).get("emulator")
    if emulator is None or not window.get("elapsed_s"):
        return None
    share: float = (window["loadgen_cpu_s"] + emulator) / window["elapsed_s"]
    return share


def _ms(us: float | None) -> float | None:
    return None if us is None else us / 1000


def _added_ms(
    gateway: dict[str, Any], direct: dict[str, Any], metric: str, pct: str
) -> float | None:
    g, d = gateway[metric].get(pct), direct[metric].get(pct)
    return None if g is None or d is None else (g - d) / 1000


def render_sweeps_markdown(rate: dict[str, Any] | None, stream: dict[str, Any] | None) -> str:
    """Markdown tables of the two sweeps, for docs/performance.md."""
    parts = []
    if rate is not None:
        parts.append(_render_rate(rate))
    if stream is not None:
        parts.append(_render_stream(stream))
    return "\n\n".join(parts) + "\n"


def _render_rate(rate: dict[str, Any]) -> str:
    found = rate["sustainable_rate"]
    head = (
        f"Sustained rate within added p99 < {rate['p99_bound_ms']:g} ms (open loop, "
        f"{rate['duration_s']:g} s per step): "
        f"**{'none' if found is None else f'{found:,.0f} req/s'}**; "
        f"stopped by: {rate['limited_by']}.\n\n"
        "| rate (req/s) | direct p50 / p99 (ms) | gateway p50 / p99 (ms) | added p99 (ms) "
        "| gateway errors | generator / load core | verdict |\n|---:|---:|---:|---:|---:|---:|---|"
    )
    rows = []
    for s in rate["steps"]:
        d, g = s["direct"], s["gateway"]
        cpu = max(d["generator_cpu_share"], g["generator_cpu_share"])
        load = _pct(d["load_core_share"])
        rows.append(
            f"| {s['rate']:,.0f} | {_f(d['p50_ms'])} / {_f(d['p99_ms'])} "
            f"| {_f(g['p50_ms'])} / {_f(g['p99_ms'])} | {_f(s['added_p99_ms'])} "
            f"| {g['error_rate']:.2%} | {cpu:.0%} / {load} | {s['verdict']} |"
        )
    return "\n".join([head, *rows])


def _render_stream(stream: dict[str, Any]) -> str:
    head = (
        f"Streaming, closed loop, {stream['events_per_stream']} events per stream, "
        f"{stream['duration_s']:g} s per cell.\n\n"
        "| streams | direct TTFB p50 / p99 (ms) | gateway TTFB p50 / p99 (ms) "
        "| added TTFB p50 / p99 (ms) | added stream p50 (ms) | per chunk (µs) "
        "| gateway CPU per chunk (µs) | gateway streams/s | gateway errors "
        "| load core, direct run |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    rows = []
    for c in stream["cells"]:
        d, g = c["direct"], c["gateway"]
        rows.append(
            f"| {c['concurrency']:,} | {_f(d['ttfb_p50_ms'])} / {_f(d['ttfb_p99_ms'])} "
            f"| {_f(g['ttfb_p50_ms'])} / {_f(g['ttfb_p99_ms'])} "
            f"| {_f(c['added_ttfb_p50_ms'])} / {_f(c['added_ttfb_p99_ms'])} "
            f"| {_f(c['added_stream_p50_ms'])} | {_f(c['per_chunk_overhead_us'], 0)} "
            f"| {_f(c.get('gateway_cpu_per_event_us'), 1)} "
            f"| {g['streams_per_s']:,.0f} | {g['error_rate']:.2%} "
            f"| {_pct(d['load_core_share'])} |"
        )
    return "\n".join([head, *rows])


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{share:.0%}"


def _f(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


# -- smoke run ---------------------------------------------------------------------------------


def smoke(
    rates: Sequence[float] = (500, 1000, 2000), concurrencies: Sequence[int] = (128, 512)
) -> dict[str, Any]:
    """Both sweeps, seconds per step, against skyroute in front of the OpenAI emulator."""
    import environment
    import gateway_bench as gb

    environment.raise_fd_limit()
    with (
        tempfile.TemporaryDirectory(prefix="skyroute-sweeps-") as tmp,
        _skyroute(Path(tmp)) as (
            run_loadgen,
            target,
            watch,
        ),
    ):
        rate = rate_sweep(
            run_loadgen,
            target("gateway", gb.PLAIN_BODY),
            target("direct", gb.PLAIN_BODY),
            rates=rates,
            duration_s=2.0,
            watch=watch,
        )
        stream = stream_sweep(
            run_loadgen,
            target("gateway", gb.STREAM_BODY),
            target("direct", gb.STREAM_BODY),
            concurrencies=concurrencies,
            duration_s=2.0,
            events_per_stream=_count_events(target("direct", gb.STREAM_BODY)),
            watch=watch,
        )
    return {"rate": rate, "stream": stream}


Targets = Callable[[str, str], dict[str, Any]]


@contextmanager
def _skyroute(tmp: Path) -> Iterator[tuple[LoadgenRunner, Targets, Watch]]:
    """The emulator (core 1) and skyroute (core 0) running; a loadgen runner pinned to core
    1, a function that makes a target ("gateway" or "direct") for a body, and what to watch."""
    import gateway_bench as gb
    from procs import Child, free_port, pinned

    gw_core, load_core = (0, 1) if {0, 1} <= os.sched_getaffinity(0) else (None, None)
    if load_core is not None:
        os.sched_setaffinity(0, {load_core})
    skyroute = str(Path(sys.executable).parent / "skyroute")
    emu_port, gw_port = free_port(), free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    children: list[Child] = []
    try:
        emu_cmd = [skyroute, "emulate", "openai", "--port", str(emu_port)]
        emu_cmd += ["--api-key", gb.UPSTREAM_KEY]
        children.append(Child("emulator", pinned(emu_cmd, load_core), tmp / "emu.log", env))
        children[-1].wait_for_log("listening on http://127.0.0.1", timeout=20)
        config = tmp / "gateway.yaml"
        config.write_text(gb._gateway_config(emu_port, tmp / "data"))
        key = gb.create_bench_key(config, env)
        gw_cmd = [skyroute, "serve", "--config", str(config), "--port", str(gw_port)]
        children.append(Child("gateway", pinned(gw_cmd, gw_core), tmp / "gw.log", env))
        children[-1].wait_for_http(gw_port, "/healthz", timeout=30)

        def run_loadgen(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
            cmd = pinned([sys.executable, str(LOADGEN), json.dumps(spec)], load_core)
            out = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, start_new_session=True
            )
            if out.returncode != 0:
                raise RuntimeError(f"loadgen failed ({out.returncode}): {out.stderr[-2000:]}")
            result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
            return result

        def target(name: str, body: str) -> dict[str, Any]:
            port, secret = (gw_port, key) if name == "gateway" else (emu_port, gb.UPSTREAM_KEY)
            request = (
                f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: application/json\r\nAuthorization: Bearer {secret}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n{body}"
            )
            return {"name": name, "host": "127.0.0.1", "port": port, "request": request}

        pids = {"gateway": children[1].pid, "emulator": children[0].pid}
        yield run_loadgen, target, {"pids": pids, "cores": [] if gw_core is None else [gw_core]}
    finally:
        for child in reversed(children):
            child.stop()


def _count_events(target: dict[str, Any]) -> int:
    """Events in one stream from `target`: `data: ` lines, [DONE] included."""
    head, _, body = target["request"].partition("\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:])
    conn = http.client.HTTPConnection(target["host"], target["port"], timeout=10)
    try:
        conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
        return conn.getresponse().read().count(b"data: ")
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="both sweeps, ~40 s, skyroute only")
    args = parser.parse_args()
    if not args.smoke:
        parser.error("only --smoke runs from here; bench/compare.py runs the full sweeps")
    began = time.monotonic()
    result = smoke()
    print(json.dumps(result, indent=2))
    print(render_sweeps_markdown(result["rate"], result["stream"]))
    print(f"smoke run: {time.monotonic() - began:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
