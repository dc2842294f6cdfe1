"""Turning gateway_bench.py's results into docs/performance.md (and a one-paragraph headline)."""

from __future__ import annotations

import textwrap
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


def _para(text: str) -> str:
    return textwrap.fill(" ".join(text.split()), width=100, break_on_hyphens=False)


def _bullet(text: str) -> str:
    return textwrap.fill(
        " ".join(text.split()),
        width=100,
        initial_indent="- ",
        subsequent_indent="  ",
        break_on_hyphens=False,
    )


def foreign_load(
    window_busy_s: float | None, gateway_cpu_s: float, elapsed_s: float
) -> float | None:
    """Share of the gateway's core used by anything else during a window (other tenants,
    a test suite running beside the benchmark): it should stay near 0."""
    if window_busy_s is None or not elapsed_s:
        return None
    return max(0.0, (window_busy_s - gateway_cpu_s) / elapsed_s)


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


def _is_quick(results: dict[str, Any]) -> bool:
    return results["plan"]["cell_seconds"] < 5


def headline(results: dict[str, Any]) -> str:
    lines = [f"benchmark finished in {results['run_seconds']} s"]
    if _is_quick(results):
        lines[0] += " (quick mode: a rough picture; the full run is the reference)"
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
    mode = "quick" if _is_quick(results) else "full"
    shape = results["shape"]
    lines = [
        "# Performance",
        "",
        _para(
            "What the gateway adds to a request, what it sustains, and what it costs in CPU "
            f"and memory, measured by `bench/gateway_bench.py` ({mode} mode). Results of "
            f"**{results['date_utc']}**, made with:"
        ),
        "",
        "```bash",
        results["command"],
        "```",
        "",
        _bullet(
            f"**Machine:** {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}, CPython "
            f"{m['python']}; {packages}; {m['wrk']}. skyroute at commit "
            f"`{m['skyroute_commit']}`."
        ),
        _bullet(
            f"**Setup, loopback only:** {pinning}. The gateway is `skyroute serve` with one "
            "`openai` provider pointing at `skyroute emulate openai` (deterministic, answers at "
            "once) and one model with one deployment. The model keeps the upstream's name, so "
            "the gateway and the direct call get byte-identical bodies."
        ),
        _bullet(
            "**Requests:** a 12-word prompt, answered with 14 tokens. A plain answer is "
            f"{shape['gateway_plain']['bytes']} bytes; a stream (with "
            f"`stream_options.include_usage`) is {shape['gateway_stream']['events']} SSE events "
            f"(role, 14 words, finish, usage, `[DONE]`), {shape['gateway_stream']['bytes']:,} "
            "bytes."
        ),
        _bullet(
            "**Added** means gateway minus direct: the same request, sent by the same client "
            "straight to the emulator, in the same run."
        ),
        _bullet(
            f"**Throughput client:** {client}; per cell {plan['cell_warmup_seconds']} s of "
            f"warm-up, then {plan['cell_seconds']} s measured. The whole run took "
            f"{results['run_seconds']} s."
        ),
    ]
    return "\n".join(lines)


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
        other = run.get("other_load")
        others = "" if other is None else f", other processes took {other:.0%} of its core"
        tries = f", best of {run['attempts']} runs" if run.get("attempts", 1) > 1 else ""
        cpu.append(f"{kind} {cpu_s / n * 1e6:.0f} µs per request ({errors} errors{others}{tries})")
    return "\n".join(
        [
            "## Added latency at concurrency 1",
            "",
            _para(
                f"{plan['latency_samples']:,} samples per side and row, after "
                f"{plan['latency_warmup']} warm-up requests. Requests alternate gateway, "
                "direct, gateway, ... on one keep-alive connection each (`bench/loadgen.py`: "
                "raw asyncio protocol and httptools on uvloop), so drift hits both sides "
                'alike. Milliseconds; "first chunk" is the first body byte after the '
                "response head."
            ),
            "",
            "| request | direct p50 | gateway p50 | added p50 | direct p99 | gateway p99 | "
            "added p99 |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            _para(f"Gateway CPU at concurrency 1: {'; '.join(cpu)}."),
            "",
            _para(_tails(results)),
        ]
    )


def _tails(results: dict[str, Any]) -> str:
    parts = []
    for kind in ("plain", "stream"):
        targets = results[f"latency_{kind}"]["targets"]
        gw, direct = targets["gateway"]["latency_us"], targets["direct"]["latency_us"]
        parts.append(
            f"{kind} {_ms(gw['p999'])} and {_ms(gw['max'])} (direct {_ms(direct['p999'])} "
            f"and {_ms(direct['max'])})"
        )
    return (
        "The far tail, p99.9 and slowest request in ms, whole answer: "
        + "; ".join(parts)
        + ". This benchmark does not attribute the gateway's slowest requests; CPython's "
        "full garbage collections, which stop the event loop for milliseconds, are the usual "
        "suspect."
    )


def _throughput_row(cell: dict[str, Any]) -> str:
    elapsed = cell["elapsed_s"] or 1e-9
    lat = cell["latency_us"]
    is_gw = cell["target"] == "gateway"
    dash = "—"
    per_request = (
        f"{cell['gateway_cpu_s'] / cell['completed'] * 1e6:.0f}"
        if is_gw and cell["completed"]
        else dash
    )
    gw_core = f"{cell['gateway_cpu_s'] / elapsed:.0%}" if is_gw else dash
    other = cell.get("other_load")
    other_text = dash if not is_gw or other is None else f"{other:.0%}"
    if is_gw and cell.get("attempts", 1) > 1:
        other_text += f" (best of {cell['attempts']})"
    load_core = (cell["loadgen_cpu_s"] + cell["emulator_cpu_s"]) / elapsed
    kinds = ", ".join(f"{k} {v}" for k, v in cell["error_kinds"].items())
    errors = f"{cell['errors']} ({kinds})" if cell["errors"] else "0"
    name = "**gateway**" if is_gw else "direct"
    rps = f"**{_int(cell['rps'])}**" if is_gw else _int(cell["rps"])
    return (
        f"| {cell['kind']} | {cell['concurrency']} | {name} | {rps} | {errors} | "
        f"{_ms(lat.get('p50'))} | {_ms(lat.get('p99'))} | {per_request} | {gw_core} | "
        f"{other_text} | {cell['loadgen_cpu_s'] / elapsed:.0%} | {load_core:.0%} |"
    )


def _throughput_section(results: dict[str, Any]) -> str:
    cells = results["throughput"]
    gw = [c for c in cells if c["target"] == "gateway"]
    best_plain = max((c for c in gw if c["kind"] == "plain"), key=lambda c: c["rps"])
    best_stream = max((c for c in gw if c["kind"] == "stream"), key=lambda c: c["rps"])
    saturated = [c for c in gw if c["concurrency"] > 1]

    def per(kind: str) -> str:
        chosen = [c for c in saturated if c["kind"] == kind]
        cpu = sum(c["gateway_cpu_s"] for c in chosen)
        done = sum(c["completed"] for c in chosen)
        return f"{cpu / done * 1e6:.0f} µs" if done else "n/a"

    drops = [
        f"{c['kind']}, concurrency {c['concurrency']}, {c['target']}: {c['tcp']['listen_drops']}"
        for c in cells
        if c.get("tcp", {}).get("listen_drops")
    ]
    drops_text = (
        "SYNs dropped by a full listen queue during a measured window (system-wide, "
        "/proc/net/netstat ListenDrops; each costs its connection a 1 s retransmit): "
        + ("; ".join(drops) + "." if drops else "none.")
    )
    return "\n".join(
        [
            "## Throughput",
            "",
            _para(
                "Closed loop: each connection sends its next request as soon as the last "
                "answer is complete; for streams, req/s is streams per second and latency is "
                "to the end of the stream (ms). CPU/req is the gateway's utime+stime over "
                "the measured window (/proc/<pid>/stat) divided by the requests completed. "
                '"gateway core" is the gateway\'s CPU use and "others on it" what other processes '
                "took of that core (a gateway cell is measured again, within a small budget, "
                'when they took over 10%); "client" is the load generator\'s CPU use and '
                '"load core" the client plus the emulator, which share the other core. '
                "Near 100% on the load core, the client and emulator, not the gateway, set "
                "the pace: the direct rows show what they can drive on their own."
            ),
            "",
            "| kind | conc. | to | req/s | errors | p50 | p99 | CPU/req µs | gateway core | "
            "others on it | client | load core |",
            "|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
            *(_throughput_row(c) for c in cells),
            "",
            _para(
                f"Best: {_int(best_plain['rps'])} plain req/s (concurrency "
                f"{best_plain['concurrency']}) and {_int(best_stream['rps'])} streams/s "
                f"(concurrency {best_stream['concurrency']}), on one core. Gateway CPU when "
                f"busy (concurrency 64 and 256): {per('plain')} per plain request, "
                f"{per('stream')} per {results['shape']['gateway_stream']['events']}-event "
                "stream."
            ),
            "",
            _para(drops_text),
            "",
            _syscalls_table(gw),
        ]
    )


def _syscalls_table(cells: list[dict[str, Any]]) -> str:
    rows = []
    for cell in cells:
        calls = cell.get("gateway_syscalls")
        if not calls or not cell["completed"]:
            continue
        n = cell["completed"]
        rows.append(
            f"| {cell['kind']} | {cell['concurrency']} | {calls['reads'] / n:.2f} | "
            f"{calls['writes'] / n:.2f} |"
        )
    return "\n".join(
        [
            _para(
                "Gateway system calls per request (syscr and syscw in /proc/<pid>/io over the "
                "window; socket reads and writes, both sides). A plain request needs a read "
                "and a write on each side, plus uvicorn's separate write of the response head; "
                "a stream adds one write per event relayed."
            ),
            "",
            "| kind | conc. | reads/req | writes/req |",
            "|---|---:|---:|---:|",
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
        f"| idle, after start-up ({results['startup_s']} s to the first /healthz 200) | "
        f"{_mib(results['rss_idle_start_kib'])} |",
        f"| idle, after the concurrency-1 plain run | {_mib(results['rss_idle_warm_kib'])} |",
        f"| {held['held']} streams open at once | {_mib(held['rss_held_kib'])} |",
        *(f"| peak under load: {k} | {_mib(v)} |" for k, v in peaks.items()),
        f"| idle, at the end | {_mib(results['rss_idle_end_kib'])} |",
        f"| highest sample over the whole run | {_mib(results.get('rss_max_sample_kib'))} |",
    ]
    per_stream = held["per_stream_kib"]
    per_stream_text = "n/a" if per_stream is None else f"{per_stream:.1f} KiB"
    errors = ", ".join(f"{k} {v}" for k, v in held["errors"].items() if v) or "none"
    return "\n".join(
        [
            "## Memory",
            "",
            _para(
                "Gateway RSS in MiB (VmRSS from /proc/<pid>/status), in the order measured; "
                "the peaks are the highest of the ~10 Hz samples taken during each cell. "
                "CPython seldom returns freed memory to the system, so after the open-streams "
                "step a later peak only shows growth beyond it."
            ),
            "",
            "| when | RSS MiB |",
            "|---|---:|",
            *rows,
            "",
            _para(
                f"**Per open stream: {per_stream_text}**: RSS with {held['held']} of "
                f"{held['requested']} streams open at once, minus RSS just before, divided by "
                f"the streams (errors: {errors}). The emulator stalls each of these streams "
                "after 3 chunks, so they stay open until the client closes them all. The "
                f"gateway used {held['cpu_while_held_s_per_s']:.2f} s of CPU per second "
                f"while they were open and idle, and {held['cpu_after_release_s_per_s']:.2f} "
                "s per second after the clients left: every upstream stream was cancelled, "
                "nothing kept relaying."
            ),
        ]
    )


def _peers_section() -> str:
    rows = [f"| {what} | {litellm} | {portkey} |" for what, litellm, portkey in PEERS]
    return "\n".join(
        [
            "## Peers, for context",
            "",
            _para(
                "LiteLLM and Portkey as measured on this machine class (see the peer notes, "
                "shared/design/peers.md): one gateway process on one core, an nginx "
                "fixed-response upstream instead of our emulator, wrk for plain requests and "
                "an aiohttp client for streams, 15 s cells. Close to our method but not the "
                "same one: compare orders of magnitude, not last digits."
            ),
            "",
            "| | LiteLLM 1.110.2, 1 worker | Portkey 1.15.2 |",
            "|---|---:|---:|",
            *rows,
        ]
    )


def _foreign_loads(results: dict[str, Any]) -> list[float]:
    runs = [c for c in results["throughput"] if c["target"] == "gateway"]
    runs += [results["latency_plain"], results["latency_stream"]]
    return [r["other_load"] for r in runs if r.get("other_load") is not None]


def _notes_section(results: dict[str, Any]) -> str:
    loads = _foreign_loads(results)
    if loads:
        quiet = max(loads) < 0.05
        most = "under 1%" if max(loads) < 0.005 else f"at most {max(loads):.0%}"
        foreign = (
            f"Other work on the gateway's core during the measurements kept (its busy time "
            f"in /proc/stat minus the gateway's own CPU) was {most}"
            + (
                "."
                if quiet
                else ": something else ran on this machine during the run, so the numbers "
                "are pessimistic; re-run on a quiet machine."
            )
        )
    else:
        foreign = "Other work on the gateway's core was not measured (processes not pinned)."
    quick = (
        [
            _bullet(
                "**Quick mode.** With 500 samples a p99 is the 5th-slowest request, so one "
                "scheduler hiccup moves it, and 2 s cells are too short to tell other "
                "processes' work from clock-tick noise. Use a full run for the record."
            )
        ]
        if _is_quick(results)
        else []
    )
    return "\n".join(
        [
            "## Reading these numbers",
            "",
            *quick,
            _bullet(foreign),
            _bullet(
                "CPU times come from /proc in clock ticks (10 ms). Over a throughput cell "
                "that is well under 1% error; the concurrency-1 CPU figures are rougher."
            ),
            _bullet(
                "At concurrency 1 every request wakes each process on its way, so the gateway "
                "spends more CPU per request than when busy (batched reads and writes)."
            ),
            _bullet(
                "Latency percentiles under load come from wrk when it is installed. wrk "
                "corrects for coordinated omission: a connection that stalls is credited with "
                "the requests it would have sent meanwhile, so at tens of thousands of req/s "
                "one 10 ms stall (another process scheduled on the core) becomes hundreds of "
                "slow samples. That is why a direct p99 at concurrency 1 can read several ms; "
                "the concurrency-1 table above (no correction, interleaved) is the reference "
                "for added latency."
            ),
            _bullet(
                "Direct rows at concurrency 256: wrk opens its 256 connections at once and "
                "the emulator listens with asyncio's default backlog of 100, so some SYNs are "
                "dropped and retried after 1 s; that, not steady state, is their p99. Gateway "
                "cells are warmed up by the Python client instead of wrk: its runs end "
                "cleanly, so the gateway's upstream pool is full when wrk starts (a wrk run "
                "ends with requests in flight, whose upstream connections the gateway rightly "
                "aborts, and reopening them all at once would hit the same backlog)."
            ),
            _bullet(
                "Tail latency at concurrency 256 is otherwise queueing: 256 requests in "
                "flight on one core."
            ),
            _bullet(
                "The emulator writes a whole stream at once, so the gateway reads all 18 "
                "events in one go and then writes them one by one. An upstream that paces its "
                "tokens costs a read and a wake-up per event as well: stream CPU here is a "
                "floor, not a ceiling, and the first-chunk time excludes any upstream "
                "thinking time."
            ),
            _bullet(
                "Re-run after a change with the command above. `--quick` gives a rough "
                "picture in under a minute; `--json FILE` keeps the raw numbers."
            ),
        ]
    )
