"""bench/compare.py's results as the "Side by side" section of docs/performance.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import sweeps

BEGIN = "<!-- side-by-side:begin -->"
END = "<!-- side-by-side:end -->"
NAMES = {"skyroute": "skyroute", "portkey": "Portkey", "litellm": "LiteLLM"}

# Issue 7's targets.
ADDED_P50_MS = 0.2
ADDED_P99_MS = 0.5
TRANSLATED_P99_MS = 1.0
STREAM_FIRST_MS = 0.5
RPS_C64 = 10_000
VS_LITELLM = 50
VS_PORTKEY = 5
CPU_US = 100
RSS_IDLE_MB = 60
PER_STREAM_KB = 30
LOOP_STALL_MS = 20


def _ms(us: float | None, sign: bool = False) -> str:
    if us is None:
        return "n/a"
    return f"{'+' if sign and us >= 0 else ''}{us / 1000:.3f}"


def _dur(seconds: float) -> str:
    return f"{seconds / 60:.0f} minutes" if seconds >= 120 else f"{seconds:.0f} s"


def _mb(kib: float | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f}"


def _cell(g: dict[str, Any], conc: int) -> dict[str, Any] | None:
    return next((c for c in g.get("cells", []) if c["concurrency"] == conc), None)


def _errs(cell: dict[str, Any]) -> str:
    n = sum(cell["errors"].values())
    return "" if not n else f" ({n:,} errors)"


def _load(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"


def _order(results: dict[str, Any]) -> list[str]:
    return [n for n in ("skyroute", "portkey", "litellm") if n in results["gateways"]]


def targets(results: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    gws = results["gateways"]
    sky = gws.get("skyroute")
    if not sky:
        return []
    rows: list[tuple[str, str, str, bool | None]] = []
    lp = sky["latency_plain"]["latency_us"]
    rows.append(
        (
            "added p50, pass-through, c=1",
            f"<= {ADDED_P50_MS} ms",
            f"{_ms(lp['added_p50'])} ms",
            lp["added_p50"] / 1000 <= ADDED_P50_MS,
        )
    )
    rows.append(
        (
            "added p99, pass-through, c=1",
            f"<= {ADDED_P99_MS} ms",
            f"{_ms(lp['added_p99'])} ms",
            lp["added_p99"] / 1000 <= ADDED_P99_MS,
        )
    )
    for key, upstream in _TRANSLATED:
        if key not in sky:
            continue
        lt = sky[key]["latency_us"]
        rows.append(
            (
                f"added p99, translated (OpenAI in, {upstream} upstream), c=1",
                f"<= {TRANSLATED_P99_MS} ms",
                f"{_ms(lt['added_p99'])} ms",
                lt["added_p99"] / 1000 <= TRANSLATED_P99_MS,
            )
        )
    fb = sky["latency_stream"]["first_byte_us"]
    rows.append(
        (
            "stream first byte, added p50 / p99, c=1",
            f"<= {STREAM_FIRST_MS} ms",
            f"{_ms(fb['added_p50'])} / {_ms(fb['added_p99'])} ms",
            fb["added_p99"] / 1000 <= STREAM_FIRST_MS,
        )
    )
    c64 = _cell(sky, 64)
    if c64:
        ok = c64["rps"] >= RPS_C64 and not sum(c64["errors"].values())
        rows.append(("plain req/s, c=64", f">= {RPS_C64:,}", f"{c64['rps']:,.0f}{_errs(c64)}", ok))
        for peer, factor in (("litellm", VS_LITELLM), ("portkey", VS_PORTKEY)):
            pc = _cell(gws.get(peer, {}), 64)
            if pc:
                ratio = c64["rps"] / pc["rps"] if pc["rps"] else float("inf")
                rows.append(
                    (
                        f"req/s at c=64 vs {NAMES[peer]}",
                        f">= {factor}x",
                        f"{ratio:,.1f}x ({c64['rps']:,.0f} vs {pc['rps']:,.0f})",
                        ratio >= factor,
                    )
                )
            else:
                why = results.get("skipped", {}).get(peer, "not run")
                rows.append(
                    (
                        f"req/s at c=64 vs {NAMES[peer]}",
                        f">= {factor}x",
                        f"not measured ({why})",
                        None,
                    )
                )
        rows.append(
            (
                "CPU per request, c=64 (saturated)",
                f"<= {CPU_US} µs",
                f"{c64['cpu_us_per_request']:.0f} µs",
                c64["cpu_us_per_request"] <= CPU_US,
            )
        )
    rows.append(
        (
            "CPU per request, c=1 (one request at a time)",
            f"<= {CPU_US} µs",
            f"{sky['latency_plain'].get('cpu_us_per_request', 0):.0f} µs",
            sky["latency_plain"].get("cpu_us_per_request", 1e9) <= CPU_US,
        )
    )
    rows.append(
        (
            "RSS idle",
            f"<= {RSS_IDLE_MB} MB",
            f"{_mb(sky['rss_idle_kib'])} MiB",
            sky["rss_idle_kib"] / 1024 <= RSS_IDLE_MB,
        )
    )
    held = sky.get("held_streams")
    if held and held.get("per_stream_kib") is not None:
        rows.append(
            (
                "RSS per open stream",
                f"<= {PER_STREAM_KB} KB",
                f"{held['per_stream_kib']:.1f} KiB ({held['held']} streams)",
                held["per_stream_kib"] <= PER_STREAM_KB,
            )
        )
    lag = sky.get("loop_lag")
    if lag:
        worst = max(phase["max"] for phase in lag.values())
        stalls = sum(phase["stalls_over_20ms"] for phase in lag.values())
        rows.append(
            (
                "event-loop stall, any phase (measured inside the gateway)",
                f"none > {LOOP_STALL_MS} ms",
                f"worst {worst:.1f} ms; {stalls} over {LOOP_STALL_MS} ms",
                stalls == 0,
            )
        )
    rate = sky.get("rate_sweep")
    if rate is not None:
        found = rate.get("sustainable_rate")
        rows.append(
            (
                f"sustained req/s with added p99 < {rate['p99_bound_ms']:g} ms (open loop)",
                "reported",
                "none" if found is None else f"{found:,.0f} ({rate['limited_by']})",
                None,
            )
        )
    return rows


def render(results: dict[str, Any]) -> str:
    gws = results["gateways"]
    order = _order(results)
    m = results["machine"]
    pin = results["pinning"]
    out = [BEGIN, "## Side by side: skyroute, Portkey, LiteLLM", ""]
    out.append(
        f"Measured {results['date_utc']} by `bench/compare.py` in one run "
        f"({results.get('run_seconds', 0) / 60:.1f} minutes):"
    )
    out += ["", "```bash", results.get("command", ".venv/bin/python bench/compare.py"), "```", ""]
    out.append(
        f"- **Machine:** {m.get('cpu')}, {m.get('cores')} cores, Linux {m.get('kernel')}, "
        f"CPython {m.get('python')} (skyroute's venv); {results.get('wrk', '')}."
    )
    if pin.get("gateway") is not None:
        out.append(
            f"- **Pinning:** each gateway (its whole process tree) on core {pin['gateway']}; the "
            f"upstream emulators, wrk, the Python load generator and the script on core "
            f"{pin['load_upstream_and_client']}. One gateway runs at a time."
        )
    out.append(
        "- **Versions:** " + "; ".join(f"{NAMES[n]}: {gws[n]['version']}" for n in order) + "."
    )
    for n, why in results.get("skipped", {}).items():
        out.append(f"- **{NAMES.get(n, n)} not measured:** {why}")
    out.append(
        "- **Upstream:** `skyroute emulate openai` (answers at once, 647-byte answer, 18-event "
        "stream) for every gateway; the same request sent straight to it is the baseline, so "
        "*added* = gateway minus direct, same client, same body, alternating on one keep-alive "
        "connection each (`bench/loadgen.py` paired mode). Throughput: wrk, one thread, plain "
        "requests, closed loop; CPU/req is the utime+stime of the gateway's process tree over "
        "the measured window."
    )
    out.append("")
    # -- targets
    rows = targets(results)
    if rows:
        out += ["### Issue 7 targets", "", "| target | goal | measured | |", "|---|---|---|---|"]
        for what, goal, got, ok in rows:
            verdict = "n/a" if ok is None else ("met" if ok else "**not met**")
            out.append(f"| {what} | {goal} | {got} | {verdict} |")
        out.append("")
    # -- headline table
    out += ["### Headline", ""]
    head = "| | " + " | ".join(NAMES[n] for n in order) + " |"
    out += [head, "|---|" + "---:|" * len(order)]

    def row(label: str, fn) -> None:
        vals = []
        for n in order:
            try:
                vals.append(fn(gws[n]))
            except (KeyError, TypeError, StopIteration):
                vals.append("n/a")
        out.append(f"| {label} | " + " | ".join(vals) + " |")

    for p in ("p50", "p90", "p99"):
        row(
            f"added {p}, plain, c=1 (ms)",
            lambda g, p=p: _ms(g["latency_plain"]["latency_us"][f"added_{p}"], True),
        )
    row(
        "added first streamed chunk p50 / p99, c=1 (ms)",
        lambda g: (
            f"{_ms(g['latency_stream']['first_byte_us']['added_p50'], True)} / "
            f"{_ms(g['latency_stream']['first_byte_us']['added_p99'], True)}"
        ),
    )
    row(
        "added whole stream p50, c=1 (ms)",
        lambda g: _ms(g["latency_stream"]["latency_us"]["added_p50"], True),
    )
    concs = sorted({c["concurrency"] for n in order for c in gws[n].get("cells", [])})
    for conc in concs:
        row(
            f"req/s, plain, c={conc}",
            lambda g, c=conc: f"{_cell(g, c)['rps']:,.0f}{_errs(_cell(g, c))}",
        )
    for conc in concs:
        row(
            f"p50 / p99 under load, c={conc} (ms)",
            lambda g, c=conc: (
                f"{_ms(_cell(g, c)['latency_us']['p50'])} / {_ms(_cell(g, c)['latency_us']['p99'])}"
            ),
        )
    row("CPU per request, c=64 (µs)", lambda g: f"{_cell(g, 64)['cpu_us_per_request']:,.0f}")
    row(
        "CPU per request, c=1 plain (µs)",
        lambda g: f"{g['latency_plain']['cpu_us_per_request']:,.0f}",
    )
    row("CPU per stream, c=1 (µs)", lambda g: f"{g['latency_stream']['cpu_us_per_request']:,.0f}")
    row("RSS idle (MiB)", lambda g: _mb(g["rss_idle_kib"]))
    row("RSS peak under load (MiB)", lambda g: _mb(g["rss_peak_kib"]))
    row("start-up to first 200 (s)", lambda g: f"{g['startup_s']:.1f}")
    row("processes in the tree", lambda g: str(g["pids_in_tree"]))
    out.append("")
    d64 = next((c for c in results.get("direct_cells", []) if c["concurrency"] == 64), None)
    if d64:
        direct = ", ".join(
            f"c={c['concurrency']} {c['rps']:,.0f} req/s (p99 {_ms(c['latency_us']['p99'])} ms)"
            for c in results["direct_cells"]
        )
        out.append(
            f"Direct to the emulator (what the load core can drive, wrk and emulator sharing "
            f"it): {direct}. A gateway cannot show more than its upstream sustains."
        )
        out.append("")
    lat = []
    for n in order:
        g = gws[n]
        lp = g["latency_plain"]
        lat.append(
            f"{NAMES[n]} {lp['samples']:,} pairs, gateway p50/p99 "
            f"{_ms(lp['latency_us']['gateway_p50'])}/"
            f"{_ms(lp['latency_us']['gateway_p99'])} ms vs direct "
            f"{_ms(lp['latency_us']['direct_p50'])}/{_ms(lp['latency_us']['direct_p99'])} ms"
            f" (others on its core {_load(lp.get('other_load'))})"
        )
    out.append("Concurrency-1 samples: " + "; ".join(lat) + ".")
    out.append("")
    sky = gws.get("skyroute")
    if sky:
        out += _skyroute_extras(sky)
    out += _sweeps(results, order)
    out += _notes(results)
    out.append(END)
    return "\n".join(out) + "\n"


_TRANSLATED = (
    ("latency_translated", "Anthropic Messages"),
    ("latency_translated_bedrock", "Bedrock Converse"),
    ("latency_translated_gemini", "Gemini generateContent"),
)


def _skyroute_extras(sky: dict[str, Any]) -> list[str]:
    out: list[str] = []
    translated = [(key, upstream) for key, upstream in _TRANSLATED if key in sky]
    if translated:
        out.append(
            "**Translated paths** (skyroute only: an OpenAI request in, translated for the "
            "emulated upstream; baseline: the equivalent request in the upstream's own protocol "
            "sent straight to that emulator), c=1:"
        )
        out.append("")
        out.append("| upstream | added p50 | added p90 | added p99 | gateway CPU per request |")
        out.append("|---|---|---|---|---|")
        for key, upstream in translated:
            lt = sky[key]["latency_us"]
            out.append(
                f"| {upstream} | {_ms(lt['added_p50'])} ms | {_ms(lt['added_p90'])} ms | "
                f"{_ms(lt['added_p99'])} ms | {sky[key].get('cpu_us_per_request', 0):.0f} µs |"
            )
        out.append("")
    held = sky.get("held_streams")
    if held:
        out.append(
            f"**Open streams:** {held['held']} streams held open at once (the emulator stalls "
            f"them after 3 chunks) took RSS from {_mb(held['rss_before_kib'])} to "
            f"{_mb(held['rss_held_kib'])} MiB, {held['per_stream_kib']:.1f} KiB each; "
            f"CPU after the "
            f"clients left: {held['cpu_after_release_s_per_s']:.2f} s/s."
        )
        out.append("")
    dv = sky.get("delay_variant")
    if dv:
        lp = dv["latency_plain"]["latency_us"]
        out.append(
            f"**With {dv['delay_s'] * 1000:.0f} ms of upstream latency** "
            f"(the emulator's persistent "
            f"`delay` fault): added p50 {_ms(lp['added_p50'])} ms, p99 {_ms(lp['added_p99'])} ms "
            f"at c=1 ({dv['latency_plain']['samples']} pairs); at c=64 skyroute "
            f"{dv['cell_c64']['rps']:,.0f} req/s{_errs(dv['cell_c64'])}, p99 "
            f"{_ms(dv['cell_c64']['latency_us']['p99'])} ms, "
            f"vs direct {dv['direct_c64']['rps']:,.0f} "
            f"req/s, p99 {_ms(dv['direct_c64']['latency_us']['p99'])} ms."
        )
        out.append("")
    soak = sky.get("soak")
    if soak:
        pr = soak["probe"]
        growth = None
        if soak.get("rss_first_minute_peak_kib") and soak.get("rss_last_minute_peak_kib"):
            growth = soak["rss_last_minute_peak_kib"] - soak["rss_first_minute_peak_kib"]
        per_min = ", ".join(_mb(x) for x in soak.get("rss_peak_per_minute_kib", []))
        out.append(
            f"**Soak:** {_dur(soak['seconds'])} at ~half the c=64 rate "
            f"({soak['connections']} connections, {soak['think_ms']} ms pause between requests: "
            f"{soak['rps']:,.0f} req/s, {soak['requests']:,} requests, "
            f"{sum(soak['errors'].values())} errors, p50/p99/max "
            f"{_ms(soak['latency_us']['p50'])}/{_ms(soak['latency_us']['p99'])}/"
            f"{_ms(soak['latency_us']['max'])} ms, {soak['cpu_us_per_request']:.0f} µs CPU per "
            f"request). RSS {_mb(soak['rss_start_kib'])} MiB at the start, peak per minute "
            f"[{per_min}] MiB, so "
            f"{'n/a' if growth is None else f'{growth / 1024:+.1f} MiB'} from the first minute's "
            f"peak to the last's. A `GET /healthz` probe every 100 ms on its own connection "
            f"(an outside view of event-loop lag; {pr['count']:,} probes, {pr['errors']} errors): "
            f"p50 {_ms(pr['p50_us'])} ms, p99 {_ms(pr['p99_us'])} ms, p99.9 "
            f"{_ms(pr['p999_us'])} ms, worst {_ms(pr['max_us'])} ms (worst five at s: "
            f"{', '.join(f'{t}: {v / 1000:.1f} ms' for t, v in pr['worst_at_s'])}). Other "
            f"processes took {_load(soak.get('other_load'))} of the gateway's core."
        )
        if soak["seconds"] < 1800:
            out.append(
                f"The issue asks for a 30-minute soak; this one ran {_dur(soak['seconds'])} "
                f"(`--soak-seconds 1800` runs the full one)."
            )
        out.append("")
    return out


def _sweeps(results: dict[str, Any], order: list[str]) -> list[str]:
    """Open-loop rate and concurrent-stream sweeps per gateway, and skyroute's loop lag."""
    out: list[str] = []
    for name in order:
        gateway = results["gateways"][name]
        rate, stream = gateway.get("rate_sweep"), gateway.get("stream_sweep")
        if rate is None and stream is None:
            continue
        out += [f"### {NAMES.get(name, name)}: sustained rate and concurrent streams", ""]
        out += [sweeps.render_sweeps_markdown(rate, stream), ""]
    lag = results["gateways"].get("skyroute", {}).get("loop_lag")
    if lag:
        out += [
            "### skyroute's event-loop lag, per phase",
            "",
            "Measured inside the gateway (a 10 ms timer's lateness, `GET /admin/runtime`, "
            "reset at the start of each phase); percentiles are bucket upper bounds.",
            "",
            "| phase | max (ms) | p99 (ms) | p999 (ms) | stalls > 20 ms | samples |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for phase, v in lag.items():
            out.append(
                f"| {phase} | {v['max']:.1f} | {v['p99']:g} | {v['p999']:g} "
                f"| {v['stalls_over_20ms']} | {v['samples']:,} |"
            )
        out.append("")
    return out


def _notes(results: dict[str, Any]) -> list[str]:
    loads = []
    for g in results["gateways"].values():
        for part in (g.get("latency_plain"), g.get("latency_stream"), *g.get("cells", [])):
            if part and part.get("other_load") is not None:
                loads.append(part["other_load"])
    out = ["Notes:", ""]
    if loads:
        out.append(
            f"- Other processes on the gateway core during the kept measurements: at most "
            f"{max(loads):.0%} (a measurement is repeated, within a budget, when above 10%)."
        )
    out.append(
        "- Concurrency-1 added latency is the reference; wrk's percentiles under load correct "
        "for coordinated omission, so one scheduler hiccup shows up as many slow samples."
    )
    out.append(
        "- Portkey waits about 25 ms before relaying the first streamed chunk (peers.md), which "
        "is its first-chunk row; LiteLLM is one uvicorn worker with its default h11 parser."
    )
    out.append(
        "- shared/design/peers.md measured the peers with an nginx upstream and 15 s cells; "
        "this run uses the same emulator for everyone, so the rows here compare like with like."
    )
    out.append("")
    return out


def replace_section(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def summary(results: dict[str, Any]) -> str:
    lines = []
    for what, goal, got, ok in targets(results):
        verdict = "n/a" if ok is None else ("met" if ok else "NOT MET")
        lines.append(f"{what}: {got} (goal {goal}) {verdict}")
    for n, why in results.get("skipped", {}).items():
        lines.append(f"{n}: skipped: {why}")
    return "\n".join(lines)


def carry_blocks(old: str, new: str) -> str:
    """Blocks between `<!-- name:begin -->` / `<!-- name:end -->` markers in `old` that `new`
    lacks, appended to `new` (so re-rendering one section does not drop another's)."""
    for match in re.finditer(r"<!-- ([\w-]+):begin -->.*?<!-- \1:end -->", old, re.S):
        if match.group(0).split("\n", 1)[0] not in new:
            new = new.rstrip("\n") + "\n\n" + match.group(0) + "\n"
    return new
