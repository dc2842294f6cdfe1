"""PNG charts of a side-by-side run, for docs/performance.md.

    .venv/bin/pip install '.[bench]'      # matplotlib
    .venv/bin/python bench/charts.py [bench/results/compare.json] [--out docs/img]

Reads what `bench/compare.py` wrote and draws what a table shows badly: throughput by
concurrency and added latency at concurrency 1 on log scales (the gateways differ by two
orders of magnitude), and RSS over the soak. Every chart names the run's date and machine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
ORDER = ("direct", "skyroute", "portkey", "litellm")
COLORS = {"direct": "#888888", "skyroute": "#1f77b4", "portkey": "#ff7f0e", "litellm": "#2ca02c"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="?", default=str(HERE / "results" / "compare.json"))
    parser.add_argument("--out", default=str(HERE.parent / "docs" / "img"))
    args = parser.parse_args()
    results = json.loads(Path(args.results).read_text())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    caption = f"{results.get('date_utc', '?')} · {results.get('machine', {}).get('cpu', '')}"
    written = [
        throughput(results, out / "throughput.png", caption),
        latency(results, out / "added_latency_c1.png", caption),
    ]
    soak_chart = soak(results, out / "soak_rss.png", caption)
    if soak_chart is not None:
        written.append(soak_chart)
    for path in written:
        print(path)
    return 0


def _series(results: dict[str, Any]) -> dict[str, dict[int, float]]:
    series = {"direct": {c["concurrency"]: c["rps"] for c in results.get("direct_cells", [])}}
    for name, gateway in results.get("gateways", {}).items():
        series[name] = {c["concurrency"]: c["rps"] for c in gateway.get("cells", [])}
    return series


def throughput(results: dict[str, Any], path: Path, caption: str) -> Path:
    series = _series(results)
    concurrencies = sorted({c for values in series.values() for c in values})
    names = [n for n in ORDER if n in series]
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, name in enumerate(names):
        xs = [j + i * width for j in range(len(concurrencies))]
        ys = [series[name].get(c, 0.0) for c in concurrencies]
        ax.bar(xs, ys, width, label=name, color=COLORS.get(name))
    ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(concurrencies))])
    ax.set_xticklabels([f"c={c}" for c in concurrencies])
    ax.set_yscale("log")
    ax.set_ylabel("requests per second (log scale)")
    ax.set_title("Non-stream throughput, one gateway process on one core")
    ax.legend()
    _caption(fig, caption)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def latency(results: dict[str, Any], path: Path, caption: str) -> Path:
    names = [n for n in ORDER[1:] if n in results.get("gateways", {})]
    p50 = [results["gateways"][n]["latency_plain"]["latency_us"]["added_p50"] for n in names]
    p99 = [results["gateways"][n]["latency_plain"]["latency_us"]["added_p99"] for n in names]
    fig, ax = plt.subplots(figsize=(7, 4))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [v / 1000 for v in p50], 0.4, label="added p50")
    ax.bar([x + 0.2 for x in xs], [v / 1000 for v in p99], 0.4, label="added p99")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(names)
    ax.set_yscale("log")
    ax.set_ylabel("ms added to a direct call (log scale)")
    ax.set_title("Latency added at concurrency 1 (non-stream)")
    ax.legend()
    _caption(fig, caption)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def soak(results: dict[str, Any], path: Path, caption: str) -> Path | None:
    run = results.get("gateways", {}).get("skyroute", {}).get("soak")
    if not run or not run.get("rss_peak_per_minute_kib"):
        return None
    values = [kib / 1024 for kib in run["rss_peak_per_minute_kib"]]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(range(1, len(values) + 1), values, marker="o")
    ax.set_ylim(0, max(values) * 1.3)
    ax.set_xlabel("minute of the soak")
    ax.set_ylabel("peak RSS (MiB)")
    ax.set_title(f"skyroute RSS during the soak at {run.get('rps', 0):,.0f} req/s")
    _caption(fig, caption)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def _caption(fig: Any, text: str) -> None:
    fig.text(0.99, 0.01, text, ha="right", va="bottom", fontsize=7, color="#666666")


if __name__ == "__main__":
    raise SystemExit(main())
