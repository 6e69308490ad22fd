"""Discover, Execute and Recruit (benchmark figures): the key numbers of the committed benchmark
results drawn as PNG charts for the docs, so that people can look instead of read.

* ``gossip-propagation-cdf.png``: for each network size N of
  ``bench/results/gossip-interval60.json``, the share of card versions that had reached every
  node within t (CDF of the per-version t100).
* ``rpc-throughput.png``: requests/s and p99 latency against concurrency, our node beside the
  a2a-sdk reference server (``bench/results/rpc.json``).
* ``mars-recruit-quality.png``: recall@1, recall@5, MRR and nDCG@10 of each recruit stage
  against the BM25 and dense baselines (``bench/results/mars-eval.json``).

Run: ``python bench/plots.py`` (``make plots``); it reads only the JSON files and writes
``docs/img/``. A missing results file skips its chart with a message."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
OUT = ROOT / "docs" / "img"
DPI = 110
#: Legend names for bench/rpc.py's servers (its --help describes them).
SERVER_LABELS = {
    "ours-echo": "noosphere node, echo agent (like for like)",
    "reference": "a2a-sdk reference server",
    "ours": "noosphere node, real agent (embedding + tool)",
}


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        print(f"skipped: {path} does not exist", file=sys.stderr)
        return None


def propagation_cdf(results: dict[str, Any], out: Path) -> Path:
    """CDF of the time until a card version had reached every node, one line per N."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for run in results["real"]:
        times = sorted(v["t100_ms"] for v in run["versions"] if v.get("t100_ms") is not None)
        if not times:
            continue
        share = [(i + 1) / len(times) for i in range(len(times))]
        label = (
            f"N={run['nodes']}: median {run['t100_median_ms']:.0f} ms,"
            f" p99 {run['t100_p99_ms']:.0f} ms ({len(times)} versions)"
        )
        ax.step(times, share, where="post", label=label)
    params = results["parameters"]
    ax.set_title(
        f"Card propagation to every node (real processes on 2 cores, degree {params['degree']})"
    )
    ax.set_xlabel("time from issue until the last node had the version (ms)")
    ax.set_ylabel("share of card versions")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, out / "gossip-propagation-cdf.png")


def rpc_throughput(results: dict[str, Any], out: Path) -> Path:
    """Requests/s and p99 latency by concurrency, one line per server."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    for server in results["results"]:
        levels = sorted(server["levels"], key=lambda level: level["concurrency"])
        x = [level["concurrency"] for level in levels]
        name = server["server"]
        style = "--" if name == "reference" else "-"
        label = SERVER_LABELS.get(name, name)
        left.plot(x, [level["requests_per_s"] for level in levels], style, marker="o", label=label)
        right.plot(
            x, [level["latency_ms"]["p99"] for level in levels], style, marker="o", label=name
        )
    for ax, title, unit in (
        (left, "throughput", "requests/s"),
        (right, "p99 latency", "ms"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    left.legend(fontsize=8)
    fig.suptitle("A2A SendMessage: noosphere node vs the a2a-sdk reference server (2 cores)")
    return _save(fig, out / "rpc-throughput.png")


def recruit_quality(results: dict[str, Any], out: Path) -> Path:
    """Grouped bars, one panel per evaluation set: each retrieval metric for each configuration
    (a report of one set, or ``{"datasets": [...]}`` of several)."""
    metrics = ["recall@1", "recall@5", "mrr", "ndcg@10"]
    sets = results.get("datasets", [results])
    fig, axes = plt.subplots(len(sets), 1, figsize=(9, 3.6 * len(sets)), squeeze=False)
    for ax, report in zip(axes[:, 0], sets, strict=True):
        configs = report["configs"]
        width = 0.8 / len(configs)
        for i, config in enumerate(configs):
            xs = [m + (i - (len(configs) - 1) / 2) * width for m in range(len(metrics))]
            bars = ax.bar(xs, [config[m] for m in metrics], width, label=config["config"])
            ax.bar_label(bars, fmt="%.2f", fontsize=5, padding=1)
        ax.set_xticks(range(len(metrics)), metrics)
        ax.set_ylim(0, 1.1)
        ax.set_ylabel("score")
        name = report.get("name") or "MARS recruit quality by stage"
        ax.set_title(f"{name}: {report['cards']} cards, {report['queries']} queries")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, ncols=4, loc="upper left")
    fig.suptitle("MARS recruit quality: baselines and each stage")
    return _save(fig, out / "mars-recruit-quality.png")


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, metadata={"Software": None})  # same input, same bytes
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of result JSON")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the PNG files")
    args = parser.parse_args(argv)
    charts = (
        ("gossip-interval60.json", propagation_cdf),
        ("rpc.json", rpc_throughput),
        ("mars-eval.json", recruit_quality),
    )
    for name, draw in charts:
        results = _load(args.results / name)
        if results is not None:
            print(draw(results, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
