"""Execute phase benchmark (security): honest JSON-RPC calls to a node while an attacker holds
thousands of slow HTTP connections to it (slowloris), all on this machine's loopback.

The node is a real ``noosphere node start`` process (``spawn_node``, no agents, default
configuration unless ``--node-env`` says otherwise). The attacker is a separate process (one
asyncio loop) that keeps ``--connections`` connections open: each sends an unfinished request
head (``POST / HTTP/1.1`` and a few headers), then one more header line every ``--drip`` seconds,
and is reopened at once whenever the node closes it. Its source addresses are 127.0.0.2 (one
address, scenario ``one-address``) or 127.0.0.2 to 127.0.0.101 (``spread``: 100 addresses, so no
per-address cap applies); Linux routes all of 127/8 on lo. Scenario ``none`` is the baseline
without an attacker.

The honest client (this process, 127.0.0.1) runs ``--legit-workers`` workers, each sending
``noosphere.node.status`` calls one after the other for ``--duration`` seconds, each on a NEW
connection (no keep-alive: every call must get through accept and the connection caps). A call
succeeds if it returns HTTP 200 with a JSON-RPC result within ``--timeout`` seconds; anything
else is counted as an error by kind. Latency percentiles are nearest-rank over the successes.

Per scenario it reports: slow connections the node holds (its ``noosphere_http_connections_open``
gauge, sampled; median and max), connections the attacker opened per second, the node's
``noosphere_http_connections_closed_total`` (evicted, header_timeout) and ``..._refused_total``,
and the honest calls: count, errors, p50/p99/max latency, and the node's CPU share.

Each scenario starts with one second of honest calls that is not counted. The node runs with
``NOOSPHERE_PRELOAD_MODELS=false`` (the embedding model is not needed for these calls).

``--smoke`` runs the ``one-address`` scenario only, 3 s with 200 connections (a check that the
script works, not a measurement; its JSON goes to the temporary directory unless ``--json``).
Output: a table and JSON (``--json``, default bench/results/slowloris.json) with machine info
(load average at start included: on a shared machine, latency reflects the other load too).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import psutil
from benchkit import (
    BenchParser,
    check_args,
    machine_info,
    stop_on_signals,
    write_results,
)

from noosphere.node.launcher import LocalNode, spawn_node

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON = BENCH_DIR / "results" / "slowloris.json"
SMOKE = {"connections": 200, "duration": 3.0, "scenarios": ["one-address"]}
SCENARIOS = {
    "none": [],
    "one-address": ["127.0.0.2"],
    "spread": [f"127.0.0.{n}" for n in range(2, 102)],
}
HEAD = b"POST / HTTP/1.1\r\nHost: victim\r\nContent-Type: application/json\r\n"
STATUS_CALL = {"jsonrpc": "2.0", "id": 1, "method": "noosphere.node.status"}


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def raise_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


# ---- the attacker (a child process) -----------------------------------------------------------


def attacker_main(
    port: int, sources: list[str], connections: int, drip_s: float, stats: Any, stop: Any
) -> None:
    raise_open_files(connections + 256)
    asyncio.run(_attack(port, sources, connections, drip_s, stats, stop))


async def _attack(
    port: int, sources: list[str], connections: int, drip_s: float, stats: Any, stop: Any
) -> None:
    async def hold(source: str) -> None:
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, local_addr=(source, 0)
                )
            except OSError:
                with stats.get_lock():
                    stats[2] += 1  # failed
                await asyncio.sleep(0.05)
                continue
            with stats.get_lock():
                stats[0] += 1  # opened
            try:
                writer.write(HEAD)
                while not stop.is_set():
                    try:
                        if not await asyncio.wait_for(reader.read(4096), timeout=drip_s):
                            break  # closed by the node
                    except TimeoutError:
                        writer.write(b"X-Slow: 1\r\n")
            except OSError:
                pass
            finally:
                writer.close()
                with stats.get_lock():
                    stats[1] += 1  # closed

    await asyncio.gather(*(hold(sources[i % len(sources)]) for i in range(connections)))


# ---- the honest client ------------------------------------------------------------------------


async def honest_load(url: str, workers: int, duration: float, timeout: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    deadline = time.monotonic() + duration
    limits = httpx.Limits(max_keepalive_connections=0)  # a new connection per call

    async def worker() -> None:
        async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    response = await client.post(url, json=STATUS_CALL)
                    ok = response.status_code == 200 and "result" in response.json()
                    kind = "ok" if ok else f"HTTP {response.status_code}"
                except (httpx.HTTPError, ValueError) as exc:
                    kind = type(exc).__name__
                if kind == "ok":
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    errors[kind] += 1
                    await asyncio.sleep(0.05)

    await asyncio.gather(*(worker() for _ in range(workers)))
    latencies.sort()
    return {
        "calls": len(latencies) + sum(errors.values()),
        "successes": len(latencies),
        "errors": dict(errors),
        "latency_ms": {
            "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99),
            "max": latencies[-1] if latencies else None,
        },
    }


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]


def node_metrics(node: LocalNode) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(node.rpc_url + "/metrics", timeout=30).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("noosphere_http_") and not sample.name.endswith("_created"):
                label = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                out[sample.name + (f"{{{label}}}" if label else "")] = sample.value
    return out


# ---- one scenario -----------------------------------------------------------------------------


def run_scenario(name: str, args: argparse.Namespace, workroot: Path) -> dict[str, Any]:
    sources = SCENARIOS[name]
    # the embedding model is not needed here; loading it would only steal CPU from the run
    env = {"NOOSPHERE_PRELOAD_MODELS": "false", **dict(args.node_env)}
    node = spawn_node(workroot / name, env=env, timeout=60)
    port = int(node.rpc_url.rsplit(":", 1)[1])
    context = multiprocessing.get_context("spawn")
    stats = context.Array("q", 3)  # opened, closed, failed
    stop = context.Event()
    attacker = None
    process = psutil.Process(node.process.pid)
    try:
        if sources:
            attacker = context.Process(
                target=attacker_main,
                args=(port, sources, args.connections, args.drip, stats, stop),
                daemon=True,
            )
            attacker.start()
            ramp_deadline = time.monotonic() + 60
            while stats[0] < args.connections and time.monotonic() < ramp_deadline:
                time.sleep(0.1)
            progress(f"{name}: attacker opened {stats[0]} connections; honest calls start")
        # warm-up, not counted: the first calls to a fresh process pay one-time costs
        asyncio.run(honest_load(node.rpc_url + "/", args.legit_workers, 1.0, args.timeout))
        open_samples: list[float] = []
        opened_before, cpu_before = stats[0], process.cpu_times()
        started = time.monotonic()
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                try:
                    value = node_metrics(node).get("noosphere_http_connections_open")
                except httpx.HTTPError:
                    value = None
                if value is not None:
                    open_samples.append(value)
                done.wait(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        honest = asyncio.run(
            honest_load(node.rpc_url + "/", args.legit_workers, args.duration, args.timeout)
        )
        elapsed = time.monotonic() - started
        done.set()
        sampler.join(5)
        cpu_after = process.cpu_times()
        opened = stats[0] - opened_before
        counters = node_metrics(node)
    finally:
        stop.set()
        if attacker is not None:
            attacker.join(10)
            if attacker.is_alive():
                attacker.kill()
        node.stop()
    cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    result = {
        "scenario": name,
        "attacker_sources": len(sources),
        "attacker_connections": args.connections if sources else 0,
        "attacker_opened_per_s": opened / elapsed if sources else 0.0,
        "node_open_connections": {
            "median": statistics.median(open_samples) if open_samples else None,
            "max": max(open_samples) if open_samples else None,
        },
        "node_cpu_share": cpu / elapsed,
        "node_counters": counters,
        "honest": honest,
        "window_s": elapsed,
    }
    h = honest
    progress(
        f"{name}: {h['successes']}/{h['calls']} honest calls ok, p99"
        f" {fmt(h['latency_ms']['p99'], '.1f')} ms"
    )
    return result


def fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Honest JSON-RPC calls (new connection each, {args.legit_workers} workers,"
        f" {args.duration:g} s) while an attacker holds {args.connections} slow connections"
    )
    for column in [
        "scenario",
        "src addrs",
        "node holds (med/max)",
        "atk conn/s",
        "evicted",
        "hdr timeout",
        "refused",
        "calls",
        "errors",
        "p50 ms",
        "p99 ms",
        "max ms",
        "node CPU",
    ]:
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for r in results:
        c, h, held = r["node_counters"], r["honest"], r["node_open_connections"]
        closed = "noosphere_http_connections_closed_total"
        refused = sum(v for k, v in c.items() if k.startswith("noosphere_http_connections_refused"))
        table.add_row(
            r["scenario"],
            str(r["attacker_sources"]),
            f"{fmt(held['median'], '.0f')}/{fmt(held['max'], '.0f')}",
            fmt(r["attacker_opened_per_s"], ".0f"),
            fmt(c.get(f"{closed}{{reason=evicted}}", 0), ".0f"),
            fmt(c.get(f"{closed}{{reason=header_timeout}}", 0), ".0f"),
            fmt(refused, ".0f"),
            str(h["calls"]),
            str(sum(h["errors"].values())),
            fmt(h["latency_ms"]["p50"], ".1f"),
            fmt(h["latency_ms"]["p99"], ".1f"),
            fmt(h["latency_ms"]["max"], ".1f"),
            fmt(r["node_cpu_share"], ".0%"),
        )
    out = Console(width=200)
    out.print(table)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = BenchParser("bench/slowloris.py", __doc__, results=DEFAULT_JSON, smoke=SMOKE)
    parser.add_argument("--connections", type=int, default=2000, help="slow connections held")
    parser.add_argument(
        "--scenarios",
        nargs="+",
        choices=list(SCENARIOS),
        default=list(SCENARIOS),
        help="attacker source layouts, in this order",
    )
    parser.add_argument("--duration", type=float, default=20.0, help="honest load seconds")
    parser.add_argument("--legit-workers", type=int, default=4, help="honest client workers")
    parser.add_argument("--drip", type=float, default=2.0, help="seconds between header lines")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per honest call")
    parser.add_argument(
        "--node-env",
        action="append",
        type=lambda s: tuple(s.split("=", 1)),
        default=[],
        metavar="NOOSPHERE_NAME=VALUE",
        help="extra node configuration (repeatable)",
    )
    args = parser.parse_args(argv)
    check_args(
        parser,
        [
            (args.connections >= 1, "--connections must be >= 1"),
            (args.duration > 0, "--duration must be > 0"),
            (args.legit_workers >= 1, "--legit-workers must be >= 1"),
            (args.drip > 0, "--drip must be > 0"),
            (all(len(kv) == 2 for kv in args.node_env), "--node-env takes NAME=VALUE"),
        ],
    )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_signals()
    raise_open_files(args.connections + 1024)
    info = machine_info(("httpx", "uvicorn", "httptools", "h11"))
    info["open_files_limit"] = resource.getrlimit(resource.RLIMIT_NOFILE)
    workroot = Path(tempfile.mkdtemp(prefix="noosphere-slowloris-"))
    results = []
    try:
        for name in args.scenarios:
            results.append(run_scenario(name, args, workroot))
    except KeyboardInterrupt:
        progress(f"interrupted; node homes kept in {workroot}")
        return 130
    shutil.rmtree(workroot, ignore_errors=True)
    print_table(results, args)
    parameters = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    parameters["node_env"] = dict(args.node_env)
    write_results(
        args.json,
        {
            "benchmark": "bench/slowloris.py",
            "machine": info,
            "parameters": parameters,
            "results": results,
        },
    )
    print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
