"""Execute phase benchmark: our node's A2A JSON-RPC server against the a2a-sdk reference server.

Each server answers the same ``SendMessage`` call with an echo agent, one server at a time on
this machine, under the same client load. Servers (``--servers``, run in the order given; the
default is ours-echo, reference, ours):

* ``ours-echo``: the server-vs-server comparison. A real ``noosphere node start`` process
  (``noosphere.node.launcher.spawn_node``) with the agent bench/agents/echo-runtime.yaml, whose
  custom agent runtime (``runtime: tools/echo_agent.py:EchoAgent``) answers every turn with one
  completed artifact holding the request text: no embedding, no memory, no tools, and
  ``NOOSPHERE_PRELOAD_MODELS=false`` (the embedding model is never loaded). It is the
  like-for-like peer of the reference server's echo executor, so what is measured is the node's
  A2A server: bearer-token auth, JSON-RPC validation, the task manager and the task, its status
  and its artifact persisted in SQLite.
* ``reference``: bench/rpc_reference_server.py, the a2a-sdk's own JSON-RPC starlette routes
  (``create_jsonrpc_routes``) with ``DefaultRequestHandler``, ``InMemoryTaskStore`` and an echo
  ``AgentExecutor`` that enqueues one completed Task with the text as an artifact; uvicorn, one
  worker, binding the port itself.
* ``ours``: the cost of a real agent turn, i.e. the product's full path. The same node with
  bench/agents/echo.yaml, whose skill is served by the user tool bench/agents/tools/echo.py:EchoTool
  through the standard runtime: the server work of ``ours-echo`` plus one agent turn (refusal
  check, episodic memory recall, the embedding planner choosing the tool, the tool, memory
  write). The turn embeds the request once with all-MiniLM-L6-v2 (ONNX Runtime, CPU; the planner
  and the memory reuse the vector from the embedder's cache within the turn); concurrent turns
  share forward passes (the embedder's dynamic batcher), which is what lets throughput grow with
  the concurrency. Node configuration is the default (e.g. ``max_concurrent_tasks`` = 4 turns).

The node's RPC socket has TCP_NODELAY on (it is created with IPPROTO_TCP), as uvicorn's own
socket has in the reference server, so neither side pays Nagle plus delayed-ACK stalls.

Load.  This process is the client (one httpx.AsyncClient with one keep-alive connection per
worker, all on one asyncio loop):
for each concurrency in ``--concurrency`` it runs that many workers, each sending one request
after the other: first ``--warmup`` seconds not counted, then ``--duration`` seconds measured.
Every request is a JSON-RPC ``SendMessage`` POST of
``{"message": {"messageId": <uuid4>, "role": "ROLE_USER", "parts": [{"text": "hello W N"}]}}``
where W is the worker and N the request's number, which never repeats during a server's run
(warm-ups and all levels included): every request's text is unique, so no cache (e.g. the
embedder's LRU cache keyed by text) can answer it. The headers are
``A2A-Version: 1.0`` and, for our node, ``Authorization: Bearer <HOME/rpc.token>``.
A request counts as a success only if it returns HTTP 200 with ``result.task`` in a terminal
state (completed, failed, canceled, rejected; the states seen are reported); everything else
(HTTP error, JSON-RPC error, a non-terminal task, timeout after ``--timeout`` s, connection
error) is counted as an error, by kind. Requests still in flight when the window closes are
awaited but not counted. Before the warm-up of its first level each server must answer one
request (``ours`` loads the embedding model then); a server that does not start or does not
answer ends the run with a one-line error and exit status 1.

Metrics per server and concurrency: successes per second over the window; p50 and p99 latency
(nearest rank) of the successes; errors; the server's RSS (psutil, process and its children,
sampled every 0.2 s; the maximum over warm-up and window); the server's CPU seconds (user +
system) during the window, also per request; this client's own CPU during the window (if it
approaches one full core the numbers are client-bound, which the notes under the table flag); and
the CPU every other process of the machine used meanwhile ("other CPU", from psutil.cpu_times:
on a shared machine it says how much of the cores the run really had).
The ratio columns compare every ``ours*`` server with ``reference`` at the same concurrency:
throughput ours / reference (higher is better) and p99 ours / reference (lower is better).

CLI start-up.  With the first of our servers running, the ``noosphere`` command next to this
Python is timed ``--cli-runs`` times each for ``noosphere --help`` and ``noosphere node status
--rpc URL`` (a fresh process each time, as a person or a probe runs it): median and best wall
time and median CPU (user + system) per call, in the JSON's ``cli`` part and printed below the
table.

Output: a rich table, notes, and JSON (``--json``, default bench/results/rpc.json) with machine
info (cpu count, python, platform, date, load average), the arguments, and every number,
including latency percentiles p90/p999/max, error kinds and task states. Progress goes to
stderr. All server processes are stopped on every exit path; our node homes (and the logs) are
deleted unless ``--keep-homes`` or a failure.

Run time: about (warm-up + duration) x levels x servers plus ~10 s per server for start-up
(the defaults: (2 + 10) x 3 x 3 + 30, about 2.5 minutes). ``--smoke`` runs the three servers at
concurrency 1 and 4 for 1 s each after 0.5 s of warm-up (about half a minute, mostly start-up and
the ``ours`` server loading its model), to check that the benchmark works; its JSON goes to a
temporary file unless ``--json`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from benchkit import BenchParser, check_args, machine_info, stop_on_signals, write_results

from noosphere.node.launcher import LaunchError, LocalNode, spawn_node

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON = BENCH_DIR / "results" / "rpc.json"
ECHO_AGENT = BENCH_DIR / "agents" / "echo.yaml"
ECHO_RUNTIME_AGENT = BENCH_DIR / "agents" / "echo-runtime.yaml"
REFERENCE_SCRIPT = BENCH_DIR / "rpc_reference_server.py"
TERMINAL_STATES = frozenset(
    {"TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED", "TASK_STATE_REJECTED"}
)
SAMPLE_INTERVAL_S = 0.2
CLIENT_BOUND_SHARE = 0.8  # client CPU s per s above which the client may be the bottleneck
SMOKE = {"concurrency": [1, 4], "duration": 1.0, "warmup": 0.5, "cli_runs": 2}  # --smoke


@dataclass(frozen=True)
class ServerSpec:
    name: str
    kind: str  # "node" or "reference"
    description: str
    agent: Path | None = None
    env: dict[str, str] = field(default_factory=dict)


SERVERS: dict[str, ServerSpec] = {
    "ours-echo": ServerSpec(
        "ours-echo",
        "node",
        "noosphere node, trivial echo runtime (no embedding, model not loaded):"
        " the like-for-like server comparison",
        agent=ECHO_RUNTIME_AGENT,
        env={"NOOSPHERE_PRELOAD_MODELS": "false"},
    ),
    "reference": ServerSpec(
        "reference", "reference", "a2a-sdk DefaultRequestHandler + InMemoryTaskStore, echo"
    ),
    "ours": ServerSpec(
        "ours",
        "node",
        "noosphere node, echo tool through the full agent turn (embedding planner + memory, the"
        " request embedded once with all-MiniLM-L6-v2, passes shared by concurrent turns),"
        " default config",
        agent=ECHO_AGENT,
    ),
}
DEFAULT_SERVERS = ["ours-echo", "reference", "ours"]


class BenchError(RuntimeError):
    """A server could not be started or stopped answering; the message is one line."""


def progress(message: str) -> None:
    print(f"[rpc] {message}", file=sys.stderr, flush=True)


def one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# ------------------------------------------------------------------------------------ servers


class RunningServer:
    """One server process: its URL, the headers it needs, and how to stop it."""

    def __init__(
        self,
        spec: ServerSpec,
        url: str,
        headers: dict[str, str],
        process: subprocess.Popen[Any],
        node: LocalNode | None = None,
    ) -> None:
        self.spec = spec
        self.url = url
        self.headers = headers
        self.process = process
        self.node = node

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def describe_exit(self) -> str:
        if self.alive:
            return "still running"
        tail = self.node.log_tail(3) if self.node is not None else ""
        return f"exited with {self.process.returncode}" + (f": {one_line(tail)}" if tail else "")

    def stop(self) -> None:
        if self.node is not None:
            self.node.stop(timeout=15.0)
            return
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_server(spec: ServerSpec, workroot: Path, args: argparse.Namespace) -> RunningServer:
    if spec.kind == "node":
        return _start_node(spec, workroot, args)
    return _start_reference(spec, args)


def _start_node(spec: ServerSpec, workroot: Path, args: argparse.Namespace) -> RunningServer:
    assert spec.agent is not None
    env = {"NOOSPHERE_TARGET_PEERS": "0", **spec.env, **dict(args.node_env)}
    home = workroot / spec.name
    try:
        node = spawn_node(home, agents=[spec.agent], env=env, timeout=args.start_timeout)
    except LaunchError as exc:
        raise BenchError(f"server {spec.name} failed to start: {one_line(str(exc))}") from exc
    token = node.token
    headers = {"A2A-Version": "1.0", "Authorization": f"Bearer {token}"}
    return RunningServer(spec, node.rpc_url.rstrip("/") + "/", headers, node.process, node)


def _start_reference(spec: ServerSpec, args: argparse.Namespace) -> RunningServer:
    process = subprocess.Popen(
        [sys.executable, str(REFERENCE_SCRIPT), "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    server = RunningServer(spec, "", {"A2A-Version": "1.0"}, process)
    assert process.stdout is not None
    line = _readline_with_timeout(process, args.start_timeout)
    if not line.startswith("READY "):
        server.stop()
        err = process.stderr.read() if process.stderr is not None else ""
        raise BenchError(
            f"server {spec.name} failed to start: {one_line(line or err or 'no output')}"
        )
    server.url = f"http://127.0.0.1:{int(line.split()[1])}/"
    # nothing reads the pipes any more: drain them so a chatty server never blocks on one
    _drain_in_background(process)
    return server


def _readline_with_timeout(process: subprocess.Popen[str], timeout: float) -> str:
    import threading

    result: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: result.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0].strip() if result else ""


def _drain_in_background(process: subprocess.Popen[str]) -> None:
    import threading

    def drain(stream: Any) -> None:
        for _ in stream:
            pass

    for stream in (process.stdout, process.stderr):
        if stream is not None:
            threading.Thread(target=drain, args=(stream,), daemon=True).start()


class ProcessSampler:
    """RSS (max) and CPU time of a process and its children."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.max_rss = 0
        try:  # looked up once: scanning /proc at every sample would cost the client CPU
            self.children = self.root.children(recursive=True)
        except psutil.Error:
            self.children = []

    def _procs(self) -> list[psutil.Process]:
        return [self.root, *self.children]

    def sample(self) -> None:
        rss = 0
        for proc in self._procs():
            with contextlib.suppress(psutil.Error):
                rss += proc.memory_info().rss
        self.max_rss = max(self.max_rss, rss)

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self._procs():
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def reset_max(self) -> None:
        self.max_rss = 0


# --------------------------------------------------------------------------------------- load


def request_text(worker: int, request_id: int) -> str:
    """Unique per request (ids never repeat in a server's run), so no cache keyed by text, such
    as the embedder's LRU, can answer it."""
    return f"hello {worker} {request_id}"


def request_body(request_id: int, text: str) -> bytes:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "SendMessage",
            "params": {
                "message": {
                    "messageId": str(uuid.uuid4()),
                    "role": "ROLE_USER",
                    "parts": [{"text": text}],
                }
            },
        },
        separators=(",", ":"),
    ).encode()


@dataclass
class Outcome:
    ok: bool
    kind: str  # the terminal state for a success, the error kind otherwise
    detail: str = ""


def classify(response: httpx.Response) -> Outcome:
    if response.status_code != 200:
        return Outcome(False, f"http_{response.status_code}", one_line(response.text, 200))
    try:
        payload = response.json()
    except ValueError:
        return Outcome(False, "bad_json", one_line(response.text, 200))
    if not isinstance(payload, dict):
        return Outcome(False, "bad_response", one_line(response.text, 200))
    if "error" in payload:
        error = payload["error"] if isinstance(payload["error"], dict) else {}
        return Outcome(
            False, f"rpc_error_{error.get('code')}", one_line(str(error.get("message")), 200)
        )
    result = payload.get("result")
    task = result.get("task") if isinstance(result, dict) else None
    state = task.get("status", {}).get("state") if isinstance(task, dict) else None
    if state in TERMINAL_STATES:
        return Outcome(True, state)
    return Outcome(False, f"not_terminal_{state}", one_line(response.text, 200))


@dataclass
class LevelStats:
    latencies: list[float] = field(default_factory=list)  # seconds, successes in the window
    states: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    error_examples: dict[str, str] = field(default_factory=dict)
    warmup_requests: int = 0
    warmup_errors: int = 0


async def send_one(
    client: httpx.AsyncClient, server: RunningServer, request_id: int, text: str
) -> tuple[Outcome, float]:
    started = time.perf_counter()
    try:
        response = await client.post(
            server.url,
            content=request_body(request_id, text),
            headers={**server.headers, "Content-Type": "application/json"},
        )
        outcome = classify(response)
    except httpx.TimeoutException as exc:
        outcome = Outcome(False, "timeout", one_line(repr(exc), 200))
    except httpx.HTTPError as exc:
        outcome = Outcome(False, f"transport_{type(exc).__name__}", one_line(repr(exc), 200))
    return outcome, time.perf_counter() - started


async def run_level(
    server: RunningServer,
    concurrency: int,
    args: argparse.Namespace,
    sampler: ProcessSampler,
    request_ids: Iterator[int],
) -> dict[str, Any]:
    stats = LevelStats()
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    timeout = httpx.Timeout(args.timeout)
    loop = asyncio.get_running_loop()
    warm_end = loop.time() + args.warmup
    window: dict[str, float] = {}
    window_end = warm_end + args.duration
    sampler.reset_max()

    async def worker(index: int, client: httpx.AsyncClient) -> None:
        while (now := loop.time()) < window_end:
            measured = now >= warm_end
            request_id = next(request_ids)
            text = request_text(index, request_id)
            outcome, latency = await send_one(client, server, request_id, text)
            done = loop.time()
            if not measured:
                stats.warmup_requests += 1
                stats.warmup_errors += not outcome.ok
            elif done <= window_end:
                if outcome.ok:
                    stats.latencies.append(latency)
                    stats.states[outcome.kind] += 1
                else:
                    stats.errors[outcome.kind] += 1
                    stats.error_examples.setdefault(outcome.kind, outcome.detail)

    async def monitor() -> None:
        """Samples RSS every SAMPLE_INTERVAL_S; CPU counters exactly at the window's ends."""
        while (now := loop.time()) < window_end:
            sampler.sample()
            if "start" not in window and now >= warm_end:
                window["start"] = now
                window["server_cpu"] = sampler.cpu_seconds()
                window["client_cpu"] = _own_cpu()
                window["machine_cpu"] = _machine_busy_cpu()
            if not server.alive:
                return
            edge = warm_end if now < warm_end else window_end
            await asyncio.sleep(max(0.0, min(SAMPLE_INTERVAL_S, edge - now)))
        window["end"] = loop.time()
        window["server_cpu_end"] = sampler.cpu_seconds()
        window["client_cpu_end"] = _own_cpu()
        window["machine_cpu_end"] = _machine_busy_cpu()

    # One client (one keep-alive connection) per worker: a single pool shared by 64 workers costs
    # httpx/httpcore far more CPU per request than the servers under test need.
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(limits=limits, timeout=timeout))
            for _ in range(concurrency)
        ]
        monitor_task = asyncio.create_task(monitor())
        await asyncio.gather(*(worker(i, client) for i, client in enumerate(clients)))
        await monitor_task
    if not server.alive:
        raise BenchError(
            f"server {server.spec.name} died at concurrency {concurrency}: {server.describe_exit()}"
        )
    elapsed = window_end - warm_end  # successes count if they finished in this window
    sampled = window.get("end", window_end) - window.get("start", warm_end)  # CPU counters
    successes = len(stats.latencies)
    server_cpu = window.get("server_cpu_end", 0.0) - window.get("server_cpu", 0.0)
    client_cpu = window.get("client_cpu_end", 0.0) - window.get("client_cpu", 0.0)
    machine_cpu = window.get("machine_cpu_end", 0.0) - window.get("machine_cpu", 0.0)
    others_cpu = max(0.0, machine_cpu - server_cpu - client_cpu)
    lat_ms = sorted(x * 1000 for x in stats.latencies)
    return {
        "concurrency": concurrency,
        "window_s": elapsed,
        "successes": successes,
        "requests_per_s": successes / elapsed if elapsed > 0 else None,
        "latency_ms": {
            "p50": percentile(lat_ms, 50),
            "p90": percentile(lat_ms, 90),
            "p99": percentile(lat_ms, 99),
            "p999": percentile(lat_ms, 99.9),
            "max": lat_ms[-1] if lat_ms else None,
            "mean": sum(lat_ms) / len(lat_ms) if lat_ms else None,
        },
        "errors": sum(stats.errors.values()),
        "error_kinds": dict(stats.errors),
        "error_examples": stats.error_examples,
        "task_states": dict(stats.states),
        "warmup_requests": stats.warmup_requests,
        "warmup_errors": stats.warmup_errors,
        "server_rss_max_mb": sampler.max_rss / 2**20,
        "server_cpu_s": server_cpu,
        "server_cpu_ms_per_request": server_cpu * 1000 / successes if successes else None,
        "client_cpu_s": client_cpu,
        "client_cpu_share": client_cpu / sampled if sampled > 0 else None,
        "server_cpu_share": server_cpu / sampled if sampled > 0 else None,
        "other_processes_cpu_share": others_cpu / sampled if sampled > 0 else None,
        "loadavg_1m_at_end": os.getloadavg()[0],
    }


def _machine_busy_cpu() -> float:
    """CPU seconds all processes of this machine used so far (everything but idle and iowait)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(min(rank, len(sorted_values))) - 1]


async def first_request(server: RunningServer, timeout: float) -> float:
    """One request that must succeed (our node loads its embedding model on the way)."""
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout)) as client:
        outcome, _ = await send_one(client, server, 0, request_text(0, 0))
    if not outcome.ok:
        state = "" if server.alive else f" (server {server.describe_exit()})"
        raise BenchError(
            f"server {server.spec.name} did not answer SendMessage: {outcome.kind}"
            f" {outcome.detail}{state}"
        )
    return time.perf_counter() - started


def noosphere_command() -> list[str]:
    """The ``noosphere`` console script of this Python's environment (else ``-m noosphere.cli``)."""
    script = Path(sys.executable).with_name("noosphere")
    return [str(script)] if script.exists() else [sys.executable, "-m", "noosphere.cli"]


def time_command(label: str, argv: list[str], runs: int) -> dict[str, Any]:
    """Wall and CPU seconds of ``runs`` fresh processes running ``argv`` (output discarded)."""
    import resource
    import statistics

    walls, cpus, codes = [], [], set()
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        code = subprocess.run(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
        ).returncode
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        codes.add(code)
    return {
        "command": label,
        "runs": runs,
        "wall_s_median": statistics.median(walls),
        "wall_s_min": min(walls),
        "cpu_s_median": statistics.median(cpus),
        "exit_codes": sorted(codes),
    }


def measure_cli(rpc_url: str, runs: int) -> list[dict[str, Any]]:
    base = noosphere_command()
    status = ["node", "status", "--rpc", rpc_url]
    results = [
        time_command("noosphere --help", [*base, "--help"], runs),
        time_command("noosphere node status --rpc URL", [*base, *status], runs),
    ]
    for r in results:
        progress(
            f"cli: {r['command']}: median {r['wall_s_median']:.3f} s wall"
            f" (best {r['wall_s_min']:.3f} s), {r['cpu_s_median']:.3f} s CPU"
        )
    return results


def run_server(
    spec: ServerSpec, args: argparse.Namespace, workroot: Path, cli: list[dict[str, Any]]
) -> dict[str, Any]:
    progress(f"{spec.name}: starting ({spec.description})")
    started = time.monotonic()
    server = start_server(spec, workroot, args)
    try:
        startup_s = time.monotonic() - started
        first_s = asyncio.run(first_request(server, args.start_timeout))
        progress(f"{spec.name}: ready in {startup_s:.1f} s, first SendMessage {first_s:.2f} s")
        if server.node is not None and args.cli_runs and not cli:
            cli.extend(measure_cli(server.node.rpc_url, args.cli_runs))
        sampler = ProcessSampler(server.process.pid)
        request_ids = itertools.count(1)  # shared by all levels: request texts never repeat
        levels = []
        for concurrency in args.concurrency:
            level = asyncio.run(run_level(server, concurrency, args, sampler, request_ids))
            levels.append(level)
            progress(
                f"{spec.name}: c={concurrency} {fmt(level['requests_per_s'], '.1f')} req/s,"
                f" p50 {fmt(level['latency_ms']['p50'], '.1f')} ms,"
                f" p99 {fmt(level['latency_ms']['p99'], '.1f')} ms, errors {level['errors']}"
            )
    finally:
        server.stop()
    return {
        "server": spec.name,
        "description": spec.description,
        "startup_s": startup_s,
        "first_request_s": first_s,
        "env": {**spec.env, **dict(args.node_env)} if spec.kind == "node" else {},
        "levels": levels,
    }


# ------------------------------------------------------------------------------------- output


def fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def console() -> Any:
    from rich.console import Console

    out = Console()
    return out if out.is_terminal else Console(width=200)  # piped output would wrap at 80


def add_ratios(results: list[dict[str, Any]]) -> None:
    """Each level of every ``ours*`` server: throughput and p99 relative to ``reference``."""
    reference = next((r for r in results if r["server"] == "reference"), None)
    ref_levels = {lv["concurrency"]: lv for lv in reference["levels"]} if reference else {}
    for result in results:
        for level in result["levels"]:
            ref = ref_levels.get(level["concurrency"])
            level["vs_reference"] = None
            if ref is None or not result["server"].startswith("ours"):
                continue
            rps, ref_rps = level["requests_per_s"], ref["requests_per_s"]
            p99, ref_p99 = level["latency_ms"]["p99"], ref["latency_ms"]["p99"]
            level["vs_reference"] = {
                "throughput_ratio": rps / ref_rps if rps is not None and ref_rps else None,
                "p99_ratio": p99 / ref_p99 if p99 is not None and ref_p99 else None,
            }


def print_table(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    from rich.table import Table

    table = Table(
        title=f"A2A SendMessage (echo) on 127.0.0.1, {args.duration:g} s per level after"
        f" {args.warmup:g} s warm-up, {os.cpu_count()} CPUs shared by server and client"
    )
    columns = [
        "conc",
        "server",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "RSS MB",
        "CPU s",
        "CPU ms/req",
        "client CPU",
        "other CPU",
        "req/s vs ref",
        "p99 vs ref",
    ]
    for name in columns:
        table.add_column(name, justify="left" if name == "server" else "right")
    for i, concurrency in enumerate(args.concurrency):
        for j, result in enumerate(results):
            level = result["levels"][i]
            ratio = level.get("vs_reference") or {}
            table.add_row(
                str(concurrency) if j == 0 else "",
                result["server"],
                fmt(level["requests_per_s"], ".1f"),
                fmt(level["latency_ms"]["p50"], ".1f"),
                fmt(level["latency_ms"]["p99"], ".1f"),
                str(level["errors"]),
                fmt(level["server_rss_max_mb"], ".0f"),
                fmt(level["server_cpu_s"], ".1f"),
                fmt(level["server_cpu_ms_per_request"], ".2f"),
                fmt(level["client_cpu_share"], ".0%"),
                fmt(level["other_processes_cpu_share"], ".0%"),
                fmt(ratio.get("throughput_ratio"), ".2f") + ("x" if ratio else ""),
                fmt(ratio.get("p99_ratio"), ".2f") + ("x" if ratio else ""),
                end_section=j == len(results) - 1,
            )
    out = console()
    out.print(table)
    for note in notes(results):
        out.print(f"note: {note}")


def print_cli(cli: list[dict[str, Any]]) -> None:
    for r in cli:
        console().print(
            f"cli: {r['command']}: {r['wall_s_median']:.3f} s wall (median of {r['runs']},"
            f" best {r['wall_s_min']:.3f} s), {r['cpu_s_median']:.3f} s CPU"
        )


def notes(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "req/s vs ref = ours* / reference throughput (higher is better); p99 vs ref = ours* /"
        " reference p99 latency (lower is better); every request's text is unique (no cache"
        " hits). client CPU = this load generator's CPU s per s;"
        " other CPU = CPU s per s used by every other process on the machine (not the server,"
        " not the client) during the window: high values mean the run shared the cores."
    ]
    for result in results:
        states = Counter[str]()
        for level in result["levels"]:
            states.update(level["task_states"])
            if (level["client_cpu_share"] or 0) >= CLIENT_BOUND_SHARE:
                lines.append(
                    f"{result['server']} c={level['concurrency']}: the client used"
                    f" {level['client_cpu_share']:.0%} of a core; throughput may be client-bound"
                )
            if level["errors"]:
                kinds = ", ".join(f"{k} x{v}" for k, v in level["error_kinds"].items())
                lines.append(f"{result['server']} c={level['concurrency']}: errors {kinds}")
        shown = ", ".join(
            f"{s.removeprefix('TASK_STATE_').lower()} x{n}" for s, n in states.items()
        )
        lines.append(f"{result['server']}: {result['description']}; task states: {shown}")
    names = {r["server"] for r in results}
    if "ours-echo" in names:
        lines.append(
            "ours-echo vs reference is the server-vs-server comparison (both run a trivial echo"
            " agent); ours adds a real agent turn (the request embedded once, in forward passes"
            " shared by the turns in flight)"
        )
    return lines


# ----------------------------------------------------------------------------------------- CLI


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.startswith("NOOSPHERE_"):
        raise argparse.ArgumentTypeError(f"expected NOOSPHERE_NAME=VALUE, got {text!r}")
    return key, value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = BenchParser("bench/rpc.py", __doc__, results=DEFAULT_JSON, smoke=SMOKE)
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[1, 16, 64],
        help="concurrent client workers (one keep-alive connection each), one level per value",
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="measured seconds per concurrency level"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="seconds of load before each level's window, not counted",
    )
    parser.add_argument(
        "--servers",
        nargs="+",
        choices=list(SERVERS),
        default=DEFAULT_SERVERS,
        metavar="NAME",
        help="servers to measure, in this order (the ratios need 'reference'; ours-echo vs"
        " reference is the server-vs-server comparison, ours shows the cost of a real agent turn):"
        + ";".join(f" {s.name} = {s.description}" for s in SERVERS.values()),
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=120.0,
        help="seconds for a server to start and answer its first request",
    )
    parser.add_argument(
        "--node-env",
        type=_env_pair,
        action="append",
        default=[],
        metavar="NOOSPHERE_NAME=VALUE",
        help="extra node configuration for our servers (repeatable), e.g."
        " NOOSPHERE_MAX_CONCURRENT_TASKS=64; recorded in the JSON",
    )
    parser.add_argument(
        "--cli-runs",
        type=int,
        default=10,
        help="times each CLI command is timed against the first of our servers (0: none)",
    )
    parser.add_argument(
        "--workdir", type=Path, help="parent of the node homes (default: a temporary directory)"
    )
    parser.add_argument(
        "--keep-homes", action="store_true", help="keep node homes and logs (kept on failure)"
    )
    args = parser.parse_args(argv)
    checks = [
        (all(c >= 1 for c in args.concurrency), "--concurrency values must be >= 1"),
        (args.duration > 0, "--duration must be > 0"),
        (args.warmup >= 0, "--warmup must be >= 0"),
        (args.timeout > 0, "--timeout must be > 0"),
        (args.cli_runs >= 0, "--cli-runs must be >= 0"),
        (len(set(args.servers)) == len(args.servers), "--servers must not repeat"),
    ]
    check_args(parser, checks)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_signals()
    info = machine_info(
        ("a2a-sdk", "httpx", "uvicorn", "starlette", "httptools", "torch", "onnxruntime")
    )
    started = time.monotonic()
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    workroot = Path(tempfile.mkdtemp(prefix="noosphere-rpc-", dir=args.workdir))
    results: list[dict[str, Any]] = []
    cli: list[dict[str, Any]] = []
    try:
        for name in args.servers:
            results.append(run_server(SERVERS[name], args, workroot, cli))
    except BenchError as exc:
        print(f"error: {exc} (node homes and logs kept in {workroot})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        progress(f"interrupted; servers stopped; node homes kept in {workroot}")
        return 130
    if args.keep_homes:
        progress(f"node homes and logs kept in {workroot}")
    else:
        shutil.rmtree(workroot, ignore_errors=True)
    add_ratios(results)
    print_table(results, args)
    print_cli(cli)
    total = time.monotonic() - started
    parameters = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    parameters["node_env"] = dict(args.node_env)
    payload = {
        "benchmark": "bench/rpc.py",
        "machine": info,
        "parameters": parameters,
        "request": json.loads(request_body(1, request_text(0, 1))),
        "results": results,
        "cli": cli,
        "notes": notes(results),
        "total_run_s": total,
    }
    write_results(args.json, payload)
    console().print(f"total run time {total:.0f} s; results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
