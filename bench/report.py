"""Turning gateway_bench.py's results into docs/performance.md (and a one-paragraph headline)."""

from __future__ import annotations

from typing import Any

# The targets: added latency at concurrency 1 and plain throughput at 64 connections.
TARGET_ADDED_P50_MS = 0.3
TARGET_ADDED_P99_MS = 1.0
TARGET_RPS_C64 = 8000

# Peer gateways as measured on this machine class (see the peer notes,
# shared/design/peers.md): one process pinned to one core, nginx fixed-response upstream,
# wrk for plain requests, an aiohttp client for streams, 15 s cells.
PEERS = [
    ("added p50, plain, 1 connection", "+6.4 to 6.5 ms", "+0.45 ms"),
    ("added p99, plain, 1 connection", "+15 ms", "+11 ms"),
    ("most plain req/s", "117 to 157", "1,650 to 2,190"),
    ("most streams/s (20 chunks)", "52 to 69", "1,330 to 1,605"),
    ("CPU per plain request, saturated", "6.4 to 8.3 ms", "0.45 to 0.58 ms"),
    ("CPU per 20-chunk stream", "14 to 19 ms", "0.61 to 0.75 ms"),
    ("first streamed chunk, added", "+6 to 7 ms", "+26 ms (waits 25 ms on purpose)"),
    ("RSS idle, then under load", "483 MB, then 490 to 565 MB", "91 MB, then 180 to 275 MB"),
    ("start-up", "5 to 6 s", "0.3 to 0.5 s"),
]


def _ms(us: float | None) -> str:
    return "n/a" if us is None else f"{us / 1000:.3f}"


def _mib(kib: float | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f}"


def _int(n: float) -> str:
    return f"{n:,.0f}"


def added_latency(results: dict[str, Any], kind: str, metric: str) -> dict[str, float]:
    """Direct and gateway p50/p99 (µs) of `metric` for a latency run, and their differences."""
    targets = results[f"latency_{kind}"]["targets"]
    gw, direct = targets["gateway"][metric], targets["direct"][metric]
    out = {}
    for p in ("p50", "p90", "p99"):
        out[f"direct_{p}"] = direct[p]
        out[f"gateway_{p}"] = gw[p]
        out[f"added_{p}"] = gw[p] - direct[p]
    return out


def _cell(results: dict[str, Any], target: str, kind: str, concurrency: int) -> dict[str, Any]:
    for cell in results["throughput"]:
        if (cell["target"], cell["kind"], cell["concurrency"]) == (target, kind, concurrency):
            return cell
    raise KeyError((target, kind, concurrency))


def targets(results: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    plain = added_latency(results, "plain", "latency_us")
    c64 = _cell(results, "gateway", "plain", 64)
    return [
        (
            "added p50, plain, concurrency 1",
            f"<= {TARGET_ADDED_P50_MS} ms",
            f"{_ms(plain['added_p50'])} ms",
            plain["added_p50"] / 1000 <= TARGET_ADDED_P50_MS,
        ),
        (
            "added p99, plain, concurrency 1",
            f"<= {TARGET_ADDED_P99_MS} ms",
            f"{_ms(plain['added_p99'])} ms",
            plain["added_p99"] / 1000 <= TARGET_ADDED_P99_MS,
        ),
        (
            "plain req/s, concurrency 64",
            f">= {TARGET_RPS_C64:,}",
            f"{_int(c64['rps'])} ({c64['errors']} errors)",
            c64["rps"] >= TARGET_RPS_C64 and c64["errors"] == 0,
        ),
    ]


def headline(results: dict[str, Any]) -> str:
    lines = [f"benchmark finished in {results['run_seconds']} s"]
    for name, target, measured, met in targets(results):
        lines.append(f"  {name}: {measured} (target {target}) {'MET' if met else 'MISSED'}")
    return "\n".join(lines)


def render(results: dict[str, Any]) -> str:
    parts = [
        _intro(results),
        _targets_section(results),
        _latency_section(results),
        _throughput_section(results),
        _memory_section(results),
        _peers_section(),
        _notes_section(results),
    ]
    return "\n\n".join(parts) + "\n"


def _intro(results: dict[str, Any]) -> str:
    m = results["machine"]
    pin = results["pinning"]
    plan = results["plan"]
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    pinning = (
        f"the gateway pinned to core {pin['gateway']}; the upstream emulator and the load "
        f"generator on core {pin['load_and_emulator']}"
        if pin["gateway"] is not None
        else "processes not pinned (--no-pin)"
    )
    client = (
        "wrk (one thread) with a Lua script for the POST body"
        if results["loadgen"] == "wrk"
        else "the Python load generator (bench/loadgen.py)"
    )
    mode = "quick" if plan["cell_seconds"] < 5 else "full"
    return f"""# Performance

What the gateway adds to a request, what it sustains, and what it costs in CPU and memory,
measured by `bench/gateway_bench.py` ({mode} mode). Results of **{results['date_utc']}**.

```bash
{results['command']}
```

- **Machine:** {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}, CPython {m['python']};
  {packages}; {m['wrk']}. skyroute at commit `{m['skyroute_commit']}`.
- **Setup, loopback only:** {pinning}. The gateway is `skyroute serve` with one `openai`
  provider pointing at `skyroute emulate openai` (deterministic, answers at once) and one
  model with one deployment. The model keeps the upstream's name, so the gateway and the
  direct call get byte-identical bodies.
- **Requests:** a 12-word prompt; the answer is 14 tokens. Plain answers are
  {results['shape']['gateway_plain']['bytes']} bytes; a stream (`stream_options.include_usage`)
  is {results['shape']['gateway_stream']['events']} SSE events (role, 14 words, finish,
  usage, `[DONE]`), {results['shape']['gateway_stream']['bytes']:,} bytes.
- **"Added"** is gateway minus direct: the same request, sent by the same client straight to
  the emulator, measured in the same run.
- **Throughput client:** {client}, {plan['cell_warmup_seconds']} s warm-up then
  {plan['cell_seconds']} s measured per cell. Whole run: {results['run_seconds']} s."""


def _targets_section(results: dict[str, Any]) -> str:
    rows = [
        f"| {name} | {target} | {measured} | {'met' if met else '**missed**'} |"
        for name, target, measured, met in targets(results)
    ]
    return "\n".join(
        ["## Targets", "", "| target | goal | measured | |", "|---|---|---|---|", *rows]
    )


def _latency_section(results: dict[str, Any]) -> str:
    plan = results["plan"]
    rows = []
    for label, kind, metric in (
        ("plain, whole answer", "plain", "latency_us"),
        ("stream, first chunk", "stream", "first_byte_us"),
        ("stream, whole stream", "stream", "latency_us"),
    ):
        a = added_latency(results, kind, metric)
        rows.append(
            f"| {label} | {_ms(a['direct_p50'])} | {_ms(a['gateway_p50'])} | "
            f"**{_ms(a['added_p50'])}** | {_ms(a['direct_p99'])} | {_ms(a['gateway_p99'])} | "
            f"**{_ms(a['added_p99'])}** |"
        )
    cpu = []
    for kind in ("plain", "stream"):
        run = results[f"latency_{kind}"]
        n = run["targets"]["gateway"]["count"]
        errors = sum(sum(t["errors"].values()) for t in run["targets"].values())
        cpu_s = run["window"]["cpu_s"]["gateway"]
        cpu.append(f"{kind}: {cpu_s / n * 1e6:.0f} µs CPU per request, {errors} errors")
    return "\n".join(
        [
            "## Added latency at concurrency 1",
            "",
            f"{plan['latency_samples']:,} samples per row and side after "
            f"{plan['latency_warmup']} warm-up requests; requests alternate gateway, direct, "
            "gateway, ... on one keep-alive connection each (`bench/loadgen.py`, raw asyncio "
            "and httptools on uvloop). Milliseconds.",
            "",
            "| request | direct p50 | gateway p50 | added p50 | direct p99 | gateway p99 | "
            "added p99 |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"Gateway CPU at concurrency 1 ({'; '.join(cpu)}).",
        ]
    )


def _throughput_section(results: dict[str, Any]) -> str:
    rows = []
    for cell in results["throughput"]:
        elapsed = cell["elapsed_s"] or 1e-9
        lat = cell["latency_us"]
        is_gw = cell["target"] == "gateway"
        per_request = (
            f"{cell['gateway_cpu_s'] / cell['completed'] * 1e6:.0f}"
            if is_gw and cell["completed"]
            else "—"
        )
        gw_core = f"{cell['gateway_cpu_s'] / elapsed:.0%}" if is_gw else "—"
        load_core = (cell["loadgen_cpu_s"] + cell["emulator_cpu_s"]) / elapsed
        kinds = ", ".join(f"{k} {v}" for k, v in cell["error_kinds"].items())
        errors = f"{cell['errors']} ({kinds})" if cell["errors"] else "0"
        name = "**gateway**" if is_gw else "direct"
        rps = f"**{_int(cell['rps'])}**" if is_gw else _int(cell["rps"])
        rows.append(
            f"| {cell['kind']} | {cell['concurrency']} | {name} | {rps} | {errors} | "
            f"{_ms(lat.get('p50'))} | {_ms(lat.get('p99'))} | {per_request} | {gw_core} | "
            f"{cell['loadgen_cpu_s'] / elapsed:.0%} | {load_core:.0%} |"
        )
    return "\n".join(
        [
            "## Throughput",
            "",
            "Closed loop: each connection sends its next request when the last answer is "
            "complete. Latency is to the end of the answer (the whole stream), in ms. "
            "\"CPU/req\" is the gateway's utime+stime over the window (/proc/<pid>/stat) "
            "divided by the requests completed; \"gateway core\" is its CPU use; \"client\" "
            "the load generator's; \"load core\" the generator plus the emulator, which "
            "share one core: near 100% it, not the gateway, is the limit, so the direct "
            "rows show what the load core can drive at all.",
            "",
            "| kind | conc. | to | req/s | errors | p50 | p99 | CPU/req µs | gateway core | "
            "client | load core |",
            "|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|",
            *rows,
        ]
    )


def _memory_section(results: dict[str, Any]) -> str:
    peaks = {}
    for cell in results["throughput"]:
        if cell["target"] == "gateway" and cell["rss"].get("samples"):
            key = f"{cell['kind']}, concurrency {cell['concurrency']}"
            peaks[key] = cell["rss"]["max_kib"]
    held = results["held_streams"]
    rows = [
        f"| idle, after start-up ({results['startup_s']} s to first /healthz 200) | "
        f"{_mib(results['rss_idle_start_kib'])} |",
        f"| idle, after the concurrency-1 latency run | {_mib(results['rss_idle_warm_kib'])} |",
        *(f"| peak under load: {k} | {_mib(v)} |" for k, v in peaks.items()),
        f"| {held['held']} streams open at once | {_mib(held['rss_held_kib'])} |",
        f"| idle, at the end | {_mib(results['rss_idle_end_kib'])} |",
        f"| high-water mark over the run (VmHWM) | {_mib(results['rss_hwm_kib'])} |",
    ]
    per_stream = held["per_stream_kib"]
    per_stream_text = "n/a" if per_stream is None else f"{per_stream:.1f} KiB"
    errors = ", ".join(f"{k} {v}" for k, v in held["errors"].items() if v) or "none"
    return "\n".join(
        [
            "## Memory",
            "",
            "Gateway RSS in MiB: VmRSS from /proc/<pid>/status, sampled at ~10 Hz during each "
            "cell (the peak is the highest sample).",
            "",
            "| when | RSS MiB |",
            "|---|---:|",
            *rows,
            "",
            f"**Per open stream: {per_stream_text}** (RSS with {held['held']} of "
            f"{held['requested']} streams open, minus RSS just before, divided by the "
            f"streams; errors: {errors}). The emulator was told to stall each stream after "
            "3 chunks, so they stayed open; the client then closed them all. The gateway "
            f"used {held['cpu_while_held_s_per_s']:.2f} s CPU per second while they idled, "
            f"and {held['cpu_after_release_s_per_s']:.2f} s per second after the clients "
            "left (every upstream stream cancelled, nothing left relaying).",
        ]
    )


def _peers_section() -> str:
    rows = [f"| {what} | {litellm} | {portkey} |" for what, litellm, portkey in PEERS]
    return "\n".join(
        [
            "## Peers, for context",
            "",
            "LiteLLM and Portkey, measured on this machine class (see the peer notes in "
            "shared/design/peers.md): one gateway process on one core, an nginx "
            "fixed-response upstream instead of our emulator, wrk for plain requests and an "
            "aiohttp client for streams, 15 s cells. The method is close to ours but not the "
            "same, so compare orders of magnitude, not the last digit.",
            "",
            "| | LiteLLM 1.110.2, 1 worker | Portkey 1.15.2 |",
            "|---|---:|---:|",
            *rows,
        ]
    )


def _notes_section(results: dict[str, Any]) -> str:
    return "\n".join(
        [
            "## Reading these numbers",
            "",
            "- CPU times come from /proc in clock ticks (10 ms); over a cell of thousands of "
            "requests that is well under 1% error, but the concurrency-1 CPU figures are "
            "rougher.",
            "- At concurrency 1 the client waits for each answer, so latency includes a "
            "wake-up of each process on the way; the direct column shows what the client and "
            "the emulator alone take.",
            "- When \"load core\" is near 100% in a gateway row, the emulator and client are "
            "the bottleneck and the gateway's req/s is a lower bound; compare the gateway "
            "core column.",
            "- Re-run after changes with the command above; `--quick` gives a rough picture in "
            "under a minute, `--json FILE` keeps the raw numbers.",
        ]
    )
