"""Feedback phase benchmark: how fast the orchestrator's worker pool reacts to load, and how a
queue drains with more workers, on real node processes (``noosphere node start``) on this
machine, with the ``LocalScaler``.

Setup: one orchestrator node per part (``--max-concurrent-tasks`` 256, so a burst is accepted
at once and waits in the orchestrator's queue); its workers are worker node processes started
by the orchestrator itself. Worker agent: ``bench/agents/tools/work_agent.py``, which per turn
sleeps ``sleep_s`` (work that needs no CPU) then burns ``cpu_ms`` of CPU in a thread (pure
Python, holding the GIL: one worker process uses at most one core). The client sends every task
with a blocking A2A ``SendMessage`` (the orchestrator's operator token), all at once.

What is measured:

* Reaction time (autoscaling 1 -> 2 workers, ``--reaction-reps`` repetitions, median): the
  pool idles at 1 worker (its models loaded), then ``--spike`` tasks of ``--spike-sleep`` s
  each arrive at once. Phases, from the orchestrator's and the new worker's own records:
  spike -> scale decision (the orchestrator's "scaling workers" log line), decision -> new
  worker serving (its "node started" log line: process started, P2P and JSON-RPC up), serving
  -> first task completed on it (the earliest completed task in its task store), and the total
  spike -> first task completed on the new worker. Workers load the embedding model at start
  (the node default), in the background while serving; the orchestrator leaves their CPU out
  until it is loaded (``noosphere_models_loaded``). Between repetitions the pool shrinks back
  to 1 after ``--down-window`` s (scale-down stabilization).
* Queue drain (fixed pools of ``--workers`` workers, min = max, no autoscaling,
  ``--drain-reps`` repetitions each, median): ``--burst`` tasks of ``--cpu-ms`` ms of CPU each,
  from the first send to the last answer. Speed-up = drain(1 worker) / drain(N), efficiency =
  speed-up / N, against the ideal linear speed-up N. Workers do not preload models here. The
  orchestrator, the client and the workers share this machine's cores: beyond the core count
  more workers cannot go faster, and the table says so rather than hiding it.

Every task is checked (completed, its own text back, exactly one worker turn per task); a
mismatch ends the run with exit status 1.

Output: rich tables and JSON (``--json``, default bench/results/scaling.json) with machine
info, the parameters, every repetition's figures and the medians.

Run time: about 3-4 minutes with the defaults on 2 cores. ``--smoke`` checks that the benchmark
works: one spike (120 tasks of 1 s: 30 s on one worker, long enough for the second worker to
start and take tasks on a busy machine) and one burst of 16 tasks through pools of 1 and 2
workers, in one to two minutes; its JSON goes to a temporary file unless ``--json`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from benchkit import BenchParser, check_args, machine_info, stop_on_signals, write_results
from prometheus_client.parser import text_string_to_metric_families

from noosphere.node.a2a_client import A2AClient, text_message
from noosphere.node.auth import BearerAuth
from noosphere.node.launcher import LaunchError, LocalNode, spawn_node
from noosphere.node.store import STORE_FILENAME, NodeStore
from noosphere.protocol.a2a import Task, TaskState

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON = BENCH_DIR / "results" / "scaling.json"
WORK_AGENT = BENCH_DIR / "agents" / "tools" / "work_agent.py"
AGENT_ID = "bench-pool"
# --smoke: the spike must outlast the new worker's start on a busy machine (else it gets no task).
SMOKE = {
    "reaction_reps": 1,
    "spike": 120,
    "spike_sleep": 1.0,
    "down_window": 1.0,
    "workers": [1, 2],
    "burst": 16,
    "cpu_ms": 10.0,
    "drain_reps": 1,
}


class BenchError(RuntimeError):
    """A result did not check out, or the pool did not get where it had to; one line."""


def progress(message: str) -> None:
    print(f"[scaling] {message}", file=sys.stderr, flush=True)


def check(ok: bool, message: str) -> None:
    if not ok:
        raise BenchError(message)


def wait_for(what: str, predicate: Any, timeout: float, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (httpx.HTTPError, OSError, ValueError):
            value = None
        if value:
            return value
        time.sleep(interval)
    raise BenchError(f"{what}: not within {timeout:.0f} s")


def epoch(stamp: str) -> float:
    """RFC 3339 (node logs and task statuses) -> Unix seconds."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


# ---------------------------------------------------------------------------------- the pool


def write_agents(
    root: Path, *, sleep_s: float, cpu_ms: float, policy: dict[str, Any], concurrency: int
) -> Path:
    """A worker agent file and an orchestrator agent file (JSON agent files) under ``root``."""
    worker = {
        "name": "Bench Worker",
        "description": "Sleeps, burns CPU, echoes (bench/scaling.py worker).",
        "runtime": f"{WORK_AGENT}:WorkAgent",
        "settings": {"sleep_s": sleep_s, "cpu_ms": cpu_ms},
        "skills": [{"name": "Work", "description": "Do a fixed amount of work.", "tags": ["b"]}],
    }
    pool = {
        "name": "Bench Pool",
        "description": "The orchestrator of bench/scaling.py.",
        "runtime": "noosphere.orchestration.orchestrator:OrchestratorAgent",
        "settings": {
            "workers": {"scaler": "local", "agents": [str(root / "worker.json")]},
            "policy": policy,
            "interval_s": 0.5,
            "worker_concurrency": concurrency,
        },
        "skills": [{"name": "Work at scale", "description": "A pool.", "tags": ["b"]}],
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "worker.json").write_text(json.dumps(worker))
    (root / "pool.json").write_text(json.dumps(pool))
    return root / "pool.json"


def start_orchestrator(root: Path, pool_file: Path, *, preload: bool) -> LocalNode:
    env = {
        "NOOSPHERE_MAX_CONCURRENT_TASKS": "256",
        "NOOSPHERE_PRELOAD_MODELS": "true" if preload else "false",  # workers inherit it
    }
    return spawn_node(root / "orchestrator", agents=[pool_file], env=env, timeout=60)


def metrics(url: str) -> dict[str, float]:
    """One node's /metrics, parsed: 'name{k=v,...}' -> value (label-less: just the name)."""
    text = httpx.get(url.rstrip("/") + "/metrics", timeout=5).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def pool_gauge(node: LocalNode, gauge: str) -> float:
    return metrics(node.rpc_url).get(f"noosphere_orchestrator_{gauge}{{agent={AGENT_ID}}}", -1)


def worker_homes(node: LocalNode) -> list[Path]:
    return sorted((node.home / "workers").glob("worker-*"), key=lambda p: int(p.name[7:]))


def live_workers(node: LocalNode) -> list[Path]:
    return [h for h in worker_homes(node) if (h / "runtime.json").exists()]


def wait_pool(node: LocalNode, replicas: int, *, loaded: bool, timeout: float = 120) -> None:
    """Until exactly ``replicas`` workers serve, the orchestrator knows it, nothing is queued,
    and (``loaded``) every worker has its models in memory."""

    def settled() -> bool:
        homes = live_workers(node)
        if len(homes) != replicas or pool_gauge(node, "replicas_current") != replicas:
            return False
        if pool_gauge(node, "backlog") != 0:
            return False
        if loaded:
            urls = [json.loads((h / "runtime.json").read_text())["rpc_url"] for h in homes]
            return all(metrics(u).get("noosphere_models_loaded") == 1 for u in urls)
        return True

    wait_for(f"a settled pool of {replicas}", settled, timeout)


async def send_all(node: LocalNode, count: int, tag: str) -> tuple[list[Task], float, float]:
    """Send ``count`` tasks at once (blocking SendMessage each); the tasks, the wall-clock start
    and the seconds until the last answer."""
    started_wall, started = time.time(), time.perf_counter()
    async with A2AClient(node.rpc_url, auth=BearerAuth(node.token), timeout=600) as client:
        results = await asyncio.gather(
            *(client.send(text_message(f"{tag} {i}")) for i in range(count))
        )
    elapsed = time.perf_counter() - started
    tasks = [r for r in results if isinstance(r, Task)]
    check(len(tasks) == count, f"{tag}: {count - len(tasks)} answers were not tasks")
    bad = [t for t in tasks if t.status.state != TaskState.COMPLETED]
    check(not bad, f"{tag}: {len(bad)} tasks did not complete (first: {bad[:1]})")
    texts = sorted(t.artifacts[0].parts[0].text or "" for t in tasks)
    check(texts == sorted(f"{tag} {i}" for i in range(count)), f"{tag}: answers do not match")
    return tasks, started_wall, elapsed


def worker_tasks(home: Path) -> list[Task]:
    store = NodeStore(home / STORE_FILENAME)
    try:
        rows, _ = store.list_tasks(limit=100_000)
        return [Task.model_validate(r.task) for r in rows]
    finally:
        store.close()


def check_exactly_once(node: LocalNode, tag: str, count: int) -> None:
    """Across every worker's store: each task of ``tag`` ran once (the workers that stopped
    included)."""
    seen: dict[str, int] = {}
    for home in worker_homes(node):
        for task in worker_tasks(home):
            text = task.history[0].text if task.history else ""
            if text.startswith(f"{tag} "):
                check(task.status.state == TaskState.COMPLETED, f"{tag}: a worker turn failed")
                seen[text] = seen.get(text, 0) + 1
    twice = [t for t, n in seen.items() if n > 1]
    check(not twice, f"{tag}: {len(twice)} tasks ran twice (first: {twice[:1]})")
    check(len(seen) == count, f"{tag}: {count - len(seen)} tasks ran on no worker")


def log_events(home: Path, event: str) -> list[dict[str, Any]]:
    out = []
    for line in (home / "node.log").read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("event") == event:
                out.append(entry)
    return out


# ------------------------------------------------------------------------------ reaction time


def measure_reaction(root: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    policy = {
        "min_replicas": 1,
        "max_replicas": 2,
        "target_queue_per_worker": 4,
        "scale_up_stabilization_s": 0,
        "scale_down_stabilization_s": args.down_window,
        "cooldown_s": 1,
    }
    pool_file = write_agents(
        root, sleep_s=args.spike_sleep, cpu_ms=0, policy=policy, concurrency=args.concurrency
    )
    node = start_orchestrator(root, pool_file, preload=True)
    rows: list[dict[str, Any]] = []
    try:
        for rep in range(1, args.reaction_reps + 1):
            wait_pool(node, 1, loaded=True)
            time.sleep(1.0)  # a few idle decisions in the window
            before = {h.name for h in worker_homes(node)}
            tag = f"spike{rep}"
            _, spike_at, elapsed = asyncio.run(send_all(node, args.spike, tag))
            wait_pool(node, 1, loaded=False)  # drained and shrunk: the new worker stopped
            check_exactly_once(node, tag, args.spike)
            new = [h for h in worker_homes(node) if h.name not in before]
            check(len(new) == 1, f"{tag}: {len(new)} new workers (expected 1)")
            home = new[0]
            ups = [
                e
                for e in log_events(node.home, "scaling workers")
                if e.get("direction") == "up" and epoch(e["timestamp"]) >= spike_at
            ]
            check(bool(ups), f"{tag}: no scale-up decision logged")
            decided = epoch(ups[0]["timestamp"])
            started = log_events(home, "node started")
            check(bool(started), f"{tag}: the new worker never logged 'node started'")
            serving = epoch(started[0]["timestamp"])
            done = [
                epoch(t.status.timestamp)
                for t in worker_tasks(home)
                if t.status.state == TaskState.COMPLETED and t.status.timestamp
            ]
            check(bool(done), f"{tag}: the new worker completed no task")
            first = min(done)
            on_new = sum(
                1 for t in worker_tasks(home) if t.history and t.history[0].text.startswith(tag)
            )
            rows.append(
                {
                    "rep": rep,
                    "spike_to_decision_s": decided - spike_at,
                    "decision_to_serving_s": serving - decided,
                    "serving_to_first_task_s": first - serving,
                    "spike_to_first_task_s": first - spike_at,
                    "backlog_at_decision": ups[0].get("backlog"),
                    "spike_drained_s": elapsed,
                    "tasks_on_new_worker": on_new,
                }
            )
            r = rows[-1]
            progress(
                f"rep {rep}: spike -> decision {r['spike_to_decision_s']:.2f} s -> serving"
                f" {r['decision_to_serving_s']:.2f} s -> first task"
                f" {r['serving_to_first_task_s']:.2f} s (total {r['spike_to_first_task_s']:.2f} s)"
            )
        decisions = {
            k.split("{", 1)[1].rstrip("}"): v
            for k, v in metrics(node.rpc_url).items()
            if k.startswith("noosphere_orchestrator_decisions_total{") and v
        }
        rows.append({"decisions_by_label": decisions})
    finally:
        stop_pool(node)
    return rows


def cpu_seconds(node: LocalNode) -> dict[str, float]:
    """CPU seconds so far of the orchestrator process and of its live workers together."""
    urls = [json.loads((h / "runtime.json").read_text())["rpc_url"] for h in live_workers(node)]
    return {
        "orchestrator": metrics(node.rpc_url)["process_cpu_seconds_total"],
        "workers": sum(metrics(u)["process_cpu_seconds_total"] for u in urls),
    }


def stop_pool(node: LocalNode) -> None:
    """Stop the orchestrator (it stops its workers); kill any worker it left behind."""
    node.stop(30)
    for home in worker_homes(node):
        try:
            pid = json.loads((home / "runtime.json").read_text())["pid"]
        except (OSError, ValueError, KeyError):
            continue
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            progress(f"killed a worker left running: {home.name}")


# -------------------------------------------------------------------------------- queue drain


def measure_drain(root: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for workers in args.workers:
        policy = {"min_replicas": workers, "max_replicas": workers, "cooldown_s": 0}
        part = root / f"drain-{workers}"
        pool_file = write_agents(
            part, sleep_s=0, cpu_ms=args.cpu_ms, policy=policy, concurrency=args.concurrency
        )
        progress(f"drain: {workers} worker(s)")
        node = start_orchestrator(part, pool_file, preload=False)
        try:
            wait_pool(node, workers, loaded=False)
            times, cpu = [], []
            for rep in range(1, args.drain_reps + 1):
                time.sleep(1.0)
                tag = f"burst{rep}"
                before = cpu_seconds(node)
                client_before = time.process_time()
                tasks, _, elapsed = asyncio.run(send_all(node, args.burst, tag))
                client = time.process_time() - client_before
                after = cpu_seconds(node)
                cpu.append(
                    {
                        "orchestrator_s": after["orchestrator"] - before["orchestrator"],
                        "workers_s": after["workers"] - before["workers"],
                        "client_s": client,
                    }
                )
                check_exactly_once(node, tag, args.burst)
                used = {(t.artifacts[0].metadata or {}).get("worker") for t in tasks}
                check(len(used) == workers, f"{tag}: {len(used)} workers served, not {workers}")
                times.append(elapsed)
                progress(f"  rep {rep}: {args.burst} tasks drained in {elapsed:.2f} s")
        finally:
            stop_pool(node)
        median_cpu = {k: statistics.median(c[k] for c in cpu) for k in cpu[0]}
        rows.append(
            {
                "workers": workers,
                "drain_s": times,
                "median_s": statistics.median(times),
                "cpu": cpu,
                "median_cpu": median_cpu,
            }
        )
    base = next((r["median_s"] for r in rows if r["workers"] == 1), None)
    for r in rows:
        r["tasks_per_s"] = args.burst / r["median_s"]
        r["ideal_speedup"] = float(r["workers"])
        # Share of the machine's cores the three kinds of process kept busy during the drain.
        r["cpu_busy"] = sum(r["median_cpu"].values()) / (r["median_s"] * (os.cpu_count() or 1))
        if base is not None:
            r["speedup"] = base / r["median_s"]
            r["efficiency"] = r["speedup"] / r["workers"]
    return rows


# ------------------------------------------------------------------------------------ report


def console() -> Any:
    from rich.console import Console

    out = Console()
    return out if out.is_terminal else Console(width=200)  # piped output would wrap at 80


def summarize_reaction(rows: list[dict[str, Any]]) -> dict[str, float]:
    reps = [r for r in rows if "rep" in r]
    keys = [
        "spike_to_decision_s",
        "decision_to_serving_s",
        "serving_to_first_task_s",
        "spike_to_first_task_s",
    ]
    return {k: statistics.median(r[k] for r in reps) for k in keys}


def print_report(
    reaction: list[dict[str, Any]], summary: dict[str, float], drain: list[dict[str, Any]], args
) -> None:
    from rich.table import Table

    out = console()
    if reaction:
        table = Table(
            title=f"Reaction: spike of {args.spike} tasks x {args.spike_sleep:g} s -> a new"
            " worker serving (1 -> 2 workers)"
        )
        for name in (
            "rep",
            "spike->decision s",
            "decision->serving s",
            "serving->1st task s",
            "spike->1st task s",
            "tasks on new",
        ):
            table.add_column(name, justify="right")
        for r in (r for r in reaction if "rep" in r):
            table.add_row(
                str(r["rep"]),
                f"{r['spike_to_decision_s']:.2f}",
                f"{r['decision_to_serving_s']:.2f}",
                f"{r['serving_to_first_task_s']:.2f}",
                f"{r['spike_to_first_task_s']:.2f}",
                str(r["tasks_on_new_worker"]),
            )
        table.add_row(
            "median",
            f"{summary['spike_to_decision_s']:.2f}",
            f"{summary['decision_to_serving_s']:.2f}",
            f"{summary['serving_to_first_task_s']:.2f}",
            f"{summary['spike_to_first_task_s']:.2f}",
            "",
        )
        out.print(table)
        labels = next((r["decisions_by_label"] for r in reaction if "decisions_by_label" in r), {})
        out.print(
            "decisions (noosphere_orchestrator_decisions_total): "
            + ", ".join(
                f"{k.replace('agent=' + AGENT_ID + ',', '')}: {v:g}"
                for k, v in sorted(labels.items())
            )
        )
    if drain:
        table = Table(
            title=f"Queue drain: {args.burst} tasks x {args.cpu_ms:g} ms CPU, fixed pools,"
            f" {os.cpu_count()} cores"
        )
        for name in (
            "workers",
            "drain s (median)",
            "runs s",
            "tasks/s",
            "speed-up",
            "ideal",
            "efficiency",
            "CPU s: workers",
            "orchestrator",
            "client",
            "CPU busy",
        ):
            table.add_column(name, justify="right")
        for r in drain:
            table.add_row(
                str(r["workers"]),
                f"{r['median_s']:.2f}",
                " ".join(f"{t:.2f}" for t in r["drain_s"]),
                f"{r['tasks_per_s']:.1f}",
                f"{r['speedup']:.2f}x" if "speedup" in r else "-",
                f"{r['ideal_speedup']:.0f}x",
                f"{r['efficiency']:.0%}" if "efficiency" in r else "-",
                f"{r['median_cpu']['workers_s']:.2f}",
                f"{r['median_cpu']['orchestrator_s']:.2f}",
                f"{r['median_cpu']['client_s']:.2f}",
                f"{r['cpu_busy']:.0%}",
            )
        out.print(table)


# ----------------------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = BenchParser("bench/scaling.py", __doc__, results=DEFAULT_JSON, smoke=SMOKE)
    parser.add_argument(
        "--reaction-reps", type=int, default=5, help="spike repetitions (0 skips the part)"
    )
    parser.add_argument("--spike", type=int, default=120, help="tasks in one spike")
    parser.add_argument(
        "--spike-sleep", type=float, default=0.5, help="seconds each spike task takes (no CPU)"
    )
    parser.add_argument(
        "--down-window", type=float, default=3.0, help="scale-down stabilization window, s"
    )
    parser.add_argument(
        "--workers", type=int, nargs="*", default=[1, 2, 4], help="fixed pool sizes to drain"
    )
    parser.add_argument("--burst", type=int, default=200, help="tasks in one drain burst")
    parser.add_argument("--cpu-ms", type=float, default=50.0, help="CPU per drain task, ms")
    parser.add_argument("--drain-reps", type=int, default=3, help="bursts per pool size")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="turns the orchestrator hands one worker at once"
    )
    args = parser.parse_args(argv)
    check_args(
        parser,
        [
            (args.reaction_reps >= 0, "--reaction-reps must be >= 0"),
            (args.spike >= 8, "--spike must be >= 8 (enough to need a second worker)"),
            (args.spike_sleep > 0, "--spike-sleep must be > 0"),
            (args.down_window >= 0, "--down-window must be >= 0"),
            (all(1 <= w <= 16 for w in args.workers), "--workers must be in 1..16"),
            (args.burst >= 1, "--burst must be >= 1"),
            (args.cpu_ms >= 0, "--cpu-ms must be >= 0"),
            (args.drain_reps >= 1, "--drain-reps must be >= 1"),
            (args.concurrency >= 1, "--concurrency must be >= 1"),
            (args.reaction_reps > 0 or bool(args.workers), "nothing to run"),
        ],
    )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_signals()
    info = machine_info(["prometheus-client"])
    started = time.monotonic()
    reaction: list[dict[str, Any]] = []
    drain: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="noosphere-bench-scaling-") as tmp:
        try:
            if args.reaction_reps:
                progress(f"reaction: {args.reaction_reps} spikes of {args.spike} tasks")
                reaction = measure_reaction(Path(tmp) / "reaction", args)
            if args.workers:
                drain = measure_drain(Path(tmp), args)
        except (BenchError, LaunchError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            progress("interrupted")
            return 130
    summary = summarize_reaction(reaction) if reaction else {}
    print_report(reaction, summary, drain, args)
    total = time.monotonic() - started
    parameters = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    payload = {
        "benchmark": "bench/scaling.py",
        "machine": info,
        "parameters": parameters,
        "reaction": {"repetitions": reaction, "median": summary},
        "drain": drain,
        "total_run_s": total,
    }
    write_results(args.json, payload)
    console().print(f"total run time {total:.0f} s; results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
