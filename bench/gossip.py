"""Discover phase benchmark: card propagation on real nodes, then a calibrated GossipSub simulation.

Part 1 (real nodes).  For every N in ``--nodes`` this script starts N real ``noosphere node start``
processes on 127.0.0.1 (through ``noosphere.node.launcher.spawn_node``), each running one small
generated agent, and measures how fast signed Agent Cards spread over libp2p GossipSub.

* Topology.  Node 0 starts alone; node i bootstraps to ``min(i, --degree)`` distinct random
  earlier nodes (``random.Random(--seed + N)``).  ``NOOSPHERE_TARGET_PEERS=0`` stops nodes from
  dialing peers learned from cards, so the connection graph stays the undirected bootstrap graph
  (checked after warm-up with ``noosphere.peers`` and reported as extra/missing edges).  Nodes start
  in parallel (``--start-parallel`` at a time) as soon as the nodes they bootstrap to are ready.
  ``NOOSPHERE_PRELOAD_MODELS=0``: no task runs here, so nodes do not load the embedding model
  (about 0.4 GB and some CPU seconds per node, which would not fit 50 nodes in this machine).
* Cards.  ``NOOSPHERE_ANNOUNCE_INTERVAL_S=--interval`` makes every node re-sign and re-gossip its
  card every ``--interval`` seconds; each re-announcement is a new card *version* (new ``seq`` and
  ``issued_at``).  Cards live ``--card-ttl`` seconds.
* Warm-up.  Poll until every node holds all N cards (``--warmup-timeout``, clear error otherwise).
* Measurement window.  A metrics scrape of every node opens the window; it lasts
  ``--rounds`` x ``--interval`` seconds and a second scrape closes it.  Meanwhile every node is
  polled about every ``--poll-interval`` seconds (thread pool) and, for each (card_id, seq)
  version, the ``received_at`` at each node and the owner's ``issued_at`` are recorded.  By
  default (``--poll-method arrivals``) a poll fetches the node's log of versions stored since its
  previous poll (``noosphere.cards.arrivals``), so no version is missed and the poll costs the
  node little; ``--poll-method cards`` polls ``noosphere.cards.list`` (every card, the node's
  current versions only) as the benchmark did before.  After the window, polling goes on (up to
  ``--interval`` + 2 s) until every version issued in the window has been seen at every node or
  replaced there.
* Latency of a version at a node = ``received_at - issued_at`` (both wall-clock ms on this
  machine, so no clock skew; 1 ms resolution).  It includes the owner's signing, batching and
  publish path, every hop, and the receiver's validation and store write.
* Missed versions.  A node stores only the newest version of a card, so a version replaced before
  a poll saw it is unobservable there.  Rule used: **only versions seen at every other node count**
  for the latency statistics; versions seen at some nodes but replaced at others before being
  polled are reported as ``missed``, versions that some node neither stored nor replaced by the
  end of the grace period as ``undelivered`` ("late" in the table: lost, or queued for longer
  than the grace period; the JSON gives the latency of the (node, version) pairs that were seen,
  and which nodes lagged).  A later seq is never taken to cover an earlier one.
* Per version: time to 99% and to 100% of the N-1 *other* nodes holding it (99% uses the
  nearest rank ``ceil(0.99 * (N-1))``, so for N <= 100 it equals the 100% time).  The table gives
  the median and p99 (nearest rank) over versions.
* Cost.  Messages, bytes and RPC frames sent per node per card version = delta over the window of
  the sum over nodes of ``noosphere_p2p_{messages,bytes,rpcs}_sent_total`` divided by
  (N x versions issued in the window); messages are pubsub data messages (own and forwarded),
  RPC frames include control traffic (IHAVE/IWANT/GRAFT/PRUNE).  CPU = delta of
  ``process_cpu_seconds_total`` per node divided by that node's scrape interval (median and max
  over nodes, plus the sum, to compare with the machine's cores); RSS =
  ``process_resident_memory_bytes`` at the end of the window (median and max).  The benchmark's
  own polling costs CPU in the nodes (every poll parses every card) and in this process; both
  are included, and this process's CPU share is reported separately.  After the window the
  nodes are left alone for ``--quiet-s`` seconds and scraped again: the CPU without polling.
* Failure.  A node that does not start, a warm-up timeout or a node that stops answering ends
  that N (the JSON keeps what was measured and the error, e.g. the CPU used during the warm-up)
  and the benchmark goes on with the next N; the exit status is then 1.  Notes under the table
  flag CPU saturation (nodes using >= 80% of the cores) and late deliveries.

Part 2 (simulation).  ``bench/gossip_sim.py`` (loaded by path, not copied) is run for
``--sim-nodes`` (default 1,000 to 1,000,000) with ``--sim-runs`` seeds each, using the node's
GossipSub defaults (``GossipConfig``: degree 6, degree_low 4, degree_high 12, heartbeat 1 s;
``GossipParams.gossip_window`` 3 = heartbeats a message is advertised in IHAVE, which is the
simulator's ``gossip_history``; py-libp2p's D_lazy 6 and gossip factor 0.25), ``known_peers`` =
2 x ``target_peers`` (8 by default: each node dials 8 and is dialled by about as many) minus the
mesh degree, no loss, and ``processing_ms`` 0 because the measured per-hop latency already
includes processing.

Calibration (per-hop latency).  Estimator: for each complete version v published by node o,
``t100(v) / ecc(o)`` where ``ecc(o)`` is o's eccentricity (largest BFS hop distance) in the
bootstrap graph, i.e. the hop count to the node that finishes last under shortest-path delivery;
the hop latency is the median of that ratio over the versions of the smallest N >= 10 whose
versions were all delivered within the grace period (``--calibrate-nodes`` picks another N).
Why the smallest: all N nodes share this machine's cores, and every version costs every node
about c CPU ms (``cpu_ms_per_node_per_version``), so a version costs the network about N x c CPU
ms, i.e. N x c / cores ms of this machine (``colocation_cpu_ms_per_version_per_core``, a rough
floor for t100: c also holds work off the critical path, such as heartbeats and duplicates).
That co-location cost grows with N and does not exist when each node has its own host, so the
least-contended clean run gives the per-hop latency closest to a real deployment (N >= 10 so
that paths have several hops and the publisher's fixed cost is shared).  The estimator is
conservative: the GossipSub mesh can take longer paths than BFS, the slowest node's path
collects the unlucky hops, and the publisher's fixed cost is spread over the hops.  The
lognormal shape ``latency_sigma`` is estimated robustly from the one-hop samples (nodes directly
connected to the publisher, latencies floored at 0.5 ms) as the interquartile range of
ln(latency) / 1.349, so that the rare stalls which delay a version at every node (publisher
side) do not inflate it.  Both can be overridden (``--sim-hop-latency-ms``, ``--sim-sigma``).
The JSON also holds the alternative estimators: least-squares slope/intercept of latency against
hop distance, median latency per hop distance, median one-hop latency, and median t100 divided
by the graph's diameter and by its mean eccentricity.

Output: two rich tables (real nodes; simulation), the log2(N) fits of rounds and time to 99%,
and a JSON file (``--json``, default bench/results/gossip.json) with machine info, parameters
and all numbers.  Progress goes to stderr.  All node processes are stopped on every exit path
(SIGTERM, then SIGKILL); node homes and logs are deleted unless a run failed or
``--keep-homes``.  ``--quick`` is a short real run (N=5, 2 rounds, simulation up to 10,000
nodes, JSON to bench/results/gossip-quick.json).  ``--smoke`` checks that the benchmark works:
every step above with N=3 (bootstrap degree 1, so cards take 2 hops), one 2-second round, 1 s
without polling and a simulation of 200 and 400 nodes, in about half a minute; its JSON goes to a
temporary file unless ``--json`` is given.

Capacity note: every node validates and stores every card version, so the CPU the nodes need
grows like N^2 / --interval; on a small machine a large N with a short interval saturates the
CPU and the run measures queueing (see the notes under the table and ``cpu_s_per_s_all_nodes``).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import importlib.util
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from benchkit import BenchParser, check_args, machine_info, stop_on_signals, write_results
from prometheus_client.parser import text_string_to_metric_families

from noosphere.node.client import NodeClient, NodeUnreachable
from noosphere.node.config import GossipConfig, NodeConfig
from noosphere.node.launcher import LaunchError, LocalNode, spawn_node, wait_ready
from noosphere.node.p2p import GossipParams
from noosphere.protocol.api import CardArrival, CardEntry

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON = BENCH_DIR / "results" / "gossip.json"
QUICK_JSON = BENCH_DIR / "results" / "gossip-quick.json"
DEFAULT_SIM_NODES = [1_000, 10_000, 100_000, 1_000_000]
QUICK_SIM_NODES = [1_000, 10_000]
GRACE_EXTRA_S = 2.0
RPC_ATTEMPTS = 3
# --smoke: the smallest network with a relay (a path of 3 nodes or a star: 2 hops), one short
# round, the quiet scrape, two simulated sizes.
SMOKE = {
    "nodes": [3],
    "degree": 1,
    "interval": 2.0,
    "rounds": 1,
    "quiet_s": 1.0,
    "sim_nodes": [200, 400],
    "sim_runs": 1,
}
T = TypeVar("T")

METRICS = {
    "messages": "noosphere_p2p_messages_sent_total",
    "bytes": "noosphere_p2p_bytes_sent_total",
    "rpcs": "noosphere_p2p_rpcs_sent_total",
    "cpu_s": "process_cpu_seconds_total",
    "rss_bytes": "process_resident_memory_bytes",
    "received": "noosphere_gossip_messages_received_total",
    "rejected": "noosphere_gossip_envelopes_rejected_total",
    "overflow": "noosphere_gossip_inbound_overflow_total",
    "restarts": "noosphere_p2p_restarts",
}


def load_sim() -> ModuleType:
    """Load bench/gossip_sim.py by path (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gossip_sim", BENCH_DIR / "gossip_sim.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {BENCH_DIR / 'gossip_sim.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


sim = load_sim()


def progress(message: str) -> None:
    """One progress line on stderr."""
    print(f"[gossip] {message}", file=sys.stderr, flush=True)


def wall_ms() -> int:
    """Wall clock in ms, the same clock the nodes use for issued_at and received_at."""
    return time.time_ns() // 1_000_000


class BenchError(RuntimeError):
    """The real-node measurement for one N could not be completed; the message says why and
    ``details`` holds what was measured up to the failure."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


# ----------------------------------------------------------------------------------- topology


@dataclass(frozen=True)
class Topology:
    """Bootstrap graph: node i dials the earlier nodes in ``bootstrap[i]``."""

    bootstrap: list[list[int]]

    @property
    def size(self) -> int:
        return len(self.bootstrap)

    def adjacency(self) -> list[set[int]]:
        adj: list[set[int]] = [set() for _ in range(self.size)]
        for i, targets in enumerate(self.bootstrap):
            for j in targets:
                adj[i].add(j)
                adj[j].add(i)
        return adj

    def edges(self) -> set[frozenset[int]]:
        return {frozenset((i, j)) for i, targets in enumerate(self.bootstrap) for j in targets}


def build_topology(n: int, degree: int, rng: random.Random) -> Topology:
    """Node 0 first; node i bootstraps to min(i, degree) distinct random earlier nodes."""
    return Topology([sorted(rng.sample(range(i), min(i, degree))) for i in range(n)])


def bfs(adj: Sequence[set[int]], source: int) -> list[int]:
    """Hop distance from ``source`` to every node (-1 when unreachable)."""
    dist = [-1] * len(adj)
    dist[source] = 0
    queue = deque([source])
    while queue:
        u = queue.popleft()
        for v in adj[u]:
            if dist[v] < 0:
                dist[v] = dist[u] + 1
                queue.append(v)
    return dist


@dataclass(frozen=True)
class GraphStats:
    """Shortest-path statistics of an undirected graph."""

    nodes: int
    edges: int
    diameter: int
    mean_eccentricity: float
    mean_distance: float
    min_degree: int
    max_degree: int
    mean_degree: float
    eccentricity: list[int]


def graph_stats(adj: Sequence[set[int]]) -> tuple[GraphStats, list[list[int]]]:
    """BFS from every node: the stats and the all-pairs distance matrix."""
    n = len(adj)
    dist = [bfs(adj, s) for s in range(n)]
    if any(d < 0 for row in dist for d in row):
        raise BenchError("the bootstrap graph is not connected")
    ecc = [max(row) for row in dist]
    pairs = [d for row in dist for d in row if d > 0]
    degrees = [len(a) for a in adj]
    stats = GraphStats(
        nodes=n,
        edges=sum(degrees) // 2,
        diameter=max(ecc),
        mean_eccentricity=statistics.fmean(ecc),
        mean_distance=statistics.fmean(pairs) if pairs else 0.0,
        min_degree=min(degrees),
        max_degree=max(degrees),
        mean_degree=statistics.fmean(degrees),
        eccentricity=ecc,
    )
    return stats, dist


# ------------------------------------------------------------------------------------ cluster


def write_agent_files(directory: Path, count: int) -> list[Path]:
    """One small agent file per node, with distinct names (hence distinct agent ids)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        spec = {
            "name": f"Bench Agent {i:04d}",
            "description": f"Benchmark agent {i} of {count}: echoes its input.",
            "price": {"amount": 1, "token": "NOOS", "unit": "task"},
            "attributes": ["org:bench", "role:echo"],
            "skills": [
                {"name": "Echo", "description": "Return the input unchanged.", "tags": ["bench"]}
            ],
        }
        path = directory / f"agent-{i:04d}.json"
        path.write_text(json.dumps(spec, indent=2))
        paths.append(path)
    return paths


class Cluster:
    """The node processes of one run; ``stop_all`` always stops every one that was spawned."""

    def __init__(self, root: Path, env: dict[str, str], extra_args: list[str]) -> None:
        self.root = root
        self.env = env
        self.extra_args = extra_args
        self.nodes: dict[int, LocalNode] = {}

    def ordered(self) -> list[LocalNode]:
        return [self.nodes[i] for i in sorted(self.nodes)]

    def start(
        self,
        topology: Topology,
        agents: Sequence[Path],
        *,
        parallel: int,
        timeout: float,
        label: str,
    ) -> None:
        """Start each node once the nodes it bootstraps to are ready, ``parallel`` at a time."""
        n = topology.size
        ready = [False] * n
        started = [False] * n
        done_count = 0
        with cf.ThreadPoolExecutor(max(1, parallel)) as pool:
            pending: dict[cf.Future[LocalNode], int] = {}
            try:
                while done_count < n:
                    for i in range(n):
                        if len(pending) >= parallel:
                            break
                        if started[i] or not all(ready[j] for j in topology.bootstrap[i]):
                            continue
                        node = spawn_node(
                            self.root / f"node-{i:03d}",
                            agents=[agents[i]],
                            bootstrap=[self.nodes[j].multiaddr for j in topology.bootstrap[i]],
                            extra_args=self.extra_args,
                            env=self.env,
                            wait=False,
                        )
                        self.nodes[i] = node
                        started[i] = True
                        pending[pool.submit(wait_ready, node, timeout)] = i
                    finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                    for future in finished:
                        i = pending.pop(future)
                        future.result()  # raises LaunchError
                        ready[i] = True
                        done_count += 1
                        progress(f"{label}: starting {done_count}/{n} ... node {i} ready")
            except BaseException:
                self.stop_all(grace=0.0)  # makes the pending wait_ready calls return at once
                raise

    def stop_all(self, grace: float = 5.0) -> None:
        """SIGTERM every node, wait up to ``grace`` seconds in total, SIGKILL the rest."""
        for node in self.nodes.values():
            if node.alive:
                with contextlib.suppress(ProcessLookupError):
                    node.process.send_signal(signal.SIGTERM if grace > 0 else signal.SIGKILL)
        deadline = time.monotonic() + grace
        for node in self.nodes.values():
            try:
                node.process.wait(max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.kill()


class Poller:
    """One NodeClient per node and a thread pool to query all nodes at once."""

    def __init__(self, nodes: Sequence[LocalNode], workers: int) -> None:
        self.nodes = list(nodes)
        self.clients = [node.client(timeout=15.0) for node in self.nodes]
        self.pool = cf.ThreadPoolExecutor(max(1, min(workers, len(self.nodes))))
        self.retries = 0

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        for client in self.clients:
            client.close()

    def map(self, fn: Callable[[NodeClient], T]) -> list[tuple[T, float]]:
        """``fn(client)`` for every node in parallel; each result with its wall time (s)."""

        def one(index: int) -> tuple[T, float]:
            node = self.nodes[index]
            for attempt in range(RPC_ATTEMPTS):
                try:
                    return fn(self.clients[index]), time.time()
                except NodeUnreachable as exc:  # e.g. a keep-alive connection the node closed
                    if node.alive and attempt + 1 < RPC_ATTEMPTS:
                        self.retries += 1
                        time.sleep(0.2)
                        continue
                    error: Exception = exc
                except Exception as exc:
                    error = exc
                state = "alive" if node.alive else f"exited with {node.process.returncode}"
                raise BenchError(
                    f"node {index} ({state}) did not answer: {error}\n{node.log_tail(10)}"
                ) from error
            raise AssertionError("unreachable")

        return list(self.pool.map(one, range(len(self.clients))))


# ---------------------------------------------------------------------------------- recording


@dataclass
class Version:
    """One card version and the time each node was first seen storing it."""

    card_id: str
    seq: int
    owner: int
    issued_at: int
    received: dict[int, int] = field(default_factory=dict)


class Recorder:
    """Accumulates what the polls saw."""

    def __init__(self, owner_of: dict[str, int], n: int) -> None:
        self.owner_of = owner_of
        self.versions: dict[tuple[str, int], Version] = {}
        self.latest: list[dict[str, int]] = [{} for _ in range(n)]

    def add(self, node: int, entries: Iterable[CardEntry | CardArrival]) -> None:
        """Record card list entries or arrival-log entries seen at ``node``."""
        latest = self.latest[node]
        for entry in entries:
            # bench card ids are "<owner peer id>/bench-agent-NNNN"
            peer_id = getattr(entry, "peer_id", None) or entry.card_id.split("/", 1)[0]
            owner = self.owner_of.get(peer_id)
            if owner is None:
                continue
            key = (entry.card_id, entry.seq)
            version = self.versions.get(key)
            if version is None:
                version = self.versions[key] = Version(
                    entry.card_id, entry.seq, owner, entry.issued_at
                )
            version.received.setdefault(node, entry.received_at)
            if entry.seq > latest.get(entry.card_id, -1):
                latest[entry.card_id] = entry.seq

    def state(self, version: Version, node: int) -> str:
        """'seen', 'missed' (replaced before a poll saw it) or 'pending'."""
        if node in version.received:
            return "seen"
        if self.latest[node].get(version.card_id, -1) > version.seq:
            return "missed"
        return "pending"

    def in_window(self, start_ms: int, end_ms: int) -> list[Version]:
        return [v for v in self.versions.values() if start_ms <= v.issued_at < end_ms]

    def resolved(self, versions: Iterable[Version], n: int) -> bool:
        return all(
            self.state(v, node) != "pending"
            for v in versions
            for node in range(n)
            if node != v.owner
        )


@dataclass
class Snapshot:
    """One metrics scrape of every node."""

    mid_ms: int
    values: list[dict[str, float]]
    times: list[float]


def parse_metrics(text: str) -> dict[str, float]:
    """The samples of METRICS, summed over labels."""
    wanted = {name: key for key, name in METRICS.items()}
    out = dict.fromkeys(METRICS, 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = wanted.get(sample.name)
            if key is not None:
                out[key] += sample.value
    return out


def snapshot(poller: Poller) -> Snapshot:
    start = wall_ms()
    results = poller.map(lambda c: parse_metrics(c.metrics_text()))
    end = wall_ms()
    return Snapshot((start + end) // 2, [r for r, _ in results], [t for _, t in results])


# ----------------------------------------------------------------------------------- analysis


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    return sim.percentile(values, q) if values else None


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def analyse_versions(
    versions: Sequence[Version], recorder: Recorder, n: int, dist: list[list[int]]
) -> dict[str, Any]:
    """Per-version t99/t100, the missed/undelivered counts and the hop-latency estimators."""
    rows: list[dict[str, Any]] = []
    samples: list[tuple[int, int]] = []  # (hop distance, latency ms)
    missed = undelivered = 0
    pending_at: dict[int, int] = {}  # node -> versions neither seen nor replaced there
    pending_from: dict[int, int] = {}  # owner -> (node, version) pairs pending
    need = math.ceil(0.99 * (n - 1))
    for v in sorted(versions, key=lambda v: v.issued_at):
        states = {node: recorder.state(v, node) for node in range(n) if node != v.owner}
        pending = [node for node, state in states.items() if state == "pending"]
        if pending:
            undelivered += 1
            for node in pending:
                pending_at[node] = pending_at.get(node, 0) + 1
            pending_from[v.owner] = pending_from.get(v.owner, 0) + len(pending)
            continue
        if "missed" in states.values():
            missed += 1
            continue
        lats = sorted(v.received[node] - v.issued_at for node in range(n) if node != v.owner)
        ecc = max(dist[v.owner])
        samples += [
            (dist[v.owner][node], v.received[node] - v.issued_at)
            for node in range(n)
            if node != v.owner
        ]
        rows.append(
            {
                "card_id": v.card_id,
                "seq": v.seq,
                "owner": v.owner,
                "issued_at": v.issued_at,
                "owner_eccentricity": ecc,
                "t99_ms": lats[need - 1],
                "t100_ms": lats[-1],
                "min_ms": lats[0],
                "median_ms": statistics.median(lats),
            }
        )
    seen = [
        v.received[node] - v.issued_at
        for v in versions
        for node in range(n)
        if node != v.owner and node in v.received
    ]
    pairs = len(versions) * (n - 1)
    t99 = [r["t99_ms"] for r in rows]
    t100 = [r["t100_ms"] for r in rows]
    lats_all = [lat for _, lat in samples]
    by_hop: dict[int, list[int]] = {}
    for hops, lat in samples:
        by_hop.setdefault(hops, []).append(lat)
    one_hop = by_hop.get(1, [])
    sigma = None
    if len(one_hop) >= 10:  # robust lognormal sigma: IQR of ln(latency) / 1.349
        q1, _, q3 = statistics.quantiles([math.log(max(0.5, lat)) for lat in one_hop], n=4)
        sigma = (q3 - q1) / 1.349
    slope = intercept = None
    if len(by_hop) >= 2:
        fit = statistics.linear_regression([h for h, _ in samples], [lat for _, lat in samples])
        slope, intercept = fit.slope, fit.intercept
    return {
        "versions_complete": len(rows),
        "versions_missed": missed,
        "versions_undelivered": undelivered,
        "pairs_expected": pairs,
        "pairs_seen": len(seen),
        "pairs_missed": pairs - len(seen) - sum(pending_at.values()),
        "undelivered_pairs": sum(pending_at.values()),
        "seen_latency_median_ms": median(seen),
        "seen_latency_p99_ms": nearest_rank(seen, 99),
        "seen_latency_max_ms": max(seen) if seen else None,
        "undelivered_by_node": {str(k): v for k, v in sorted(pending_at.items())},
        "undelivered_by_owner": {str(k): v for k, v in sorted(pending_from.items())},
        "t99_median_ms": median(t99),
        "t99_p99_ms": nearest_rank(t99, 99),
        "t100_median_ms": median(t100),
        "t100_p99_ms": nearest_rank(t100, 99),
        "t100_max_ms": max(t100) if t100 else None,
        "latency_median_ms": median(lats_all),
        "latency_p99_ms": nearest_rank(lats_all, 99),
        "latency_samples": len(lats_all),
        "latency_by_hops": {
            str(h): {"samples": len(v), "median_ms": statistics.median(v), "max_ms": max(v)}
            for h, v in sorted(by_hop.items())
        },
        "hop_ms_t100_over_ecc": median([r["t100_ms"] / r["owner_eccentricity"] for r in rows]),
        "hop_ms_one_hop_median": median(one_hop),
        "latency_sigma_one_hop": sigma,
        "hop_ms_ls_slope": slope,
        "latency_ls_intercept_ms": intercept,
        "versions": rows,
    }


def cpu_rates(a: Snapshot, b: Snapshot) -> list[float]:
    """CPU seconds per second of every node between two scrapes."""
    return [
        (vb["cpu_s"] - va["cpu_s"]) / max(1e-3, tb - ta)
        for va, vb, ta, tb in zip(a.values, b.values, a.times, b.times, strict=True)
    ]


def cost_stats(a: Snapshot, b: Snapshot, n: int, versions: int) -> dict[str, Any]:
    """Traffic per node per version, CPU and RSS from two scrapes."""

    def delta(key: str) -> float:
        return sum(vb[key] - va[key] for va, vb in zip(a.values, b.values, strict=True))

    per = n * versions
    cpu = cpu_rates(a, b)
    rss = [v["rss_bytes"] / 2**20 for v in b.values]
    return {
        "messages_per_node_per_version": delta("messages") / per if per else None,
        "bytes_per_node_per_version": delta("bytes") / per if per else None,
        "rpcs_per_node_per_version": delta("rpcs") / per if per else None,
        "messages_sent_total": delta("messages"),
        "bytes_sent_total": delta("bytes"),
        "rpcs_sent_total": delta("rpcs"),
        "gossip_messages_received_total": delta("received"),
        "envelopes_rejected_total": delta("rejected"),
        "inbound_overflow_total": delta("overflow"),
        "p2p_restarts_max": max(v["restarts"] for v in b.values),
        "cpu_s_per_node_per_s_median": statistics.median(cpu),
        "cpu_s_per_node_per_s_max": max(cpu),
        "cpu_s_per_s_all_nodes": sum(cpu),
        "cpu_ms_per_node_per_version": 1000 * delta("cpu_s") / per if per else None,
        "rss_mb_median": statistics.median(rss),
        "rss_mb_max": max(rss),
        "rss_mb_total": sum(rss),
    }


# ----------------------------------------------------------------------------------- real run


def poll_cards(poller: Poller, recorder: Recorder | None) -> tuple[list[set[str]], float]:
    """Poll every node's cards; returns each node's card ids and the sweep time (s)."""
    started = time.perf_counter()
    results = poller.map(lambda c: c.cards())
    held = []
    for node, (entries, _) in enumerate(results):
        if recorder is not None:
            recorder.add(node, entries)
        held.append({e.card_id for e in entries})
    return held, time.perf_counter() - started


def poll_arrivals(poller: Poller, recorder: Recorder, since: list[int]) -> float:
    """Fetch every node's log of card versions it stored since the last poll (a few bytes per
    version, where ``noosphere.cards.list`` returns every card); returns the sweep time (s)."""
    started = time.perf_counter()
    index = {id(client): i for i, client in enumerate(poller.clients)}
    # received_at has 1 ms resolution: ask again for the last ms seen (Recorder ignores repeats)
    results = poller.map(lambda c: c.arrivals(max(0, since[index[id(c)]] - 1)))
    for node, (arrivals, _) in enumerate(results):
        recorder.add(node, arrivals)
        if arrivals:
            since[node] = max(since[node], max(a.received_at for a in arrivals))
    return time.perf_counter() - started


def warm_up(poller: Poller, expected: set[str], timeout: float, label: str) -> float:
    """Poll until every node holds every card; returns the time it took (s).

    On timeout the BenchError's details hold the node CPU during the warm-up and how many of
    the N cards each node held."""
    started = time.monotonic()
    first = snapshot(poller)
    last_report = 0.0
    n = len(poller.nodes)
    while True:
        held, _ = poll_cards(poller, None)
        complete = sum(1 for h in held if expected <= h)
        elapsed = time.monotonic() - started
        if complete == n:
            progress(f"{label}: warmed up in {elapsed:.1f}s (every node holds all {n} cards)")
            return elapsed
        fewest = min(range(n), key=lambda i: len(held[i] & expected))
        if elapsed > timeout:
            cpu = cpu_rates(first, snapshot(poller))
            counts = [len(h & expected) for h in held]
            raise BenchError(
                f"warm-up timed out after {timeout:.0f}s: {complete}/{n} nodes hold all {n}"
                f" cards; node {fewest} holds only {len(held[fewest] & expected)};"
                f" the nodes used {sum(cpu):.2f} CPU s/s on {os.cpu_count()} cores",
                {
                    "warmup_s": elapsed,
                    "warmup_cards_held_per_node": counts,
                    "warmup_cards_held_median": statistics.median(counts),
                    "cpu_s_per_node_per_s_median": statistics.median(cpu),
                    "cpu_s_per_node_per_s_max": max(cpu),
                    "cpu_s_per_s_all_nodes": sum(cpu),
                    "loadavg_1m": os.getloadavg()[0],
                },
            )
        if elapsed - last_report >= 2.0:
            last_report = elapsed
            progress(
                f"{label}: warming up ... {complete}/{n} nodes hold all {n} cards"
                f" (fewest: {len(held[fewest] & expected)}) after {elapsed:.1f}s"
            )
        time.sleep(0.5)


def check_connections(poller: Poller, topology: Topology, index_of: dict[str, int]) -> dict:
    """Compare the live connection graph with the bootstrap graph."""
    results = poller.map(lambda c: c.peers())
    live: set[frozenset[int]] = set()
    for node, (peers, _) in enumerate(results):
        for peer in peers:
            other = index_of.get(peer.peer_id)
            if peer.connected and other is not None:
                live.add(frozenset((node, other)))
    planned = topology.edges()
    return {
        "bootstrap_edges": len(planned),
        "live_edges": len(live),
        "extra_edges": len(live - planned),
        "missing_edges": len(planned - live),
    }


def measure(
    poller: Poller, recorder: Recorder, args: argparse.Namespace, label: str
) -> tuple[Snapshot, Snapshot, list[Version], dict[str, Any]]:
    """The measurement window: scrape, poll for --rounds intervals, scrape, poll the stragglers."""
    n = len(poller.nodes)
    window_ms = int(args.rounds * args.interval * 1000)
    cpu_before = time.process_time()
    a = snapshot(poller)
    end_ms = a.mid_ms + window_ms
    grace_end_ms = end_ms + int((args.interval + GRACE_EXTRA_S) * 1000)
    b: Snapshot | None = None
    cpu_window = 0.0
    sweeps: list[float] = []
    next_round = 1
    polled_after_close = False  # a version issued just before the closing scrape needs a poll
    next_sweep = time.monotonic()
    since = [0] * n  # arrivals polling: last received_at seen per node
    while True:
        now = wall_ms()
        if b is None and now >= end_ms:
            b = snapshot(poller)
            cpu_window = time.process_time() - cpu_before
            progress(f"{label}: window closed; polling until every version is resolved")
        if b is not None and polled_after_close:
            versions = recorder.in_window(a.mid_ms, b.mid_ms)
            if recorder.resolved(versions, n) or now >= grace_end_ms:
                break
        if args.poll_method == "arrivals":
            took = poll_arrivals(poller, recorder, since)
        else:
            _, took = poll_cards(poller, recorder)
        sweeps.append(took)
        polled_after_close = b is not None
        if b is None and now >= a.mid_ms + next_round * args.interval * 1000:
            progress(
                f"{label}: measuring ... round {next_round}/{args.rounds},"
                f" {len(recorder.in_window(a.mid_ms, end_ms))} versions seen,"
                f" last poll of {n} nodes took {took * 1000:.0f} ms"
            )
            next_round += 1
        next_sweep += args.poll_interval
        pause = next_sweep - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            next_sweep = time.monotonic()
    polling = {
        "sweeps": len(sweeps),
        "sweep_median_ms": statistics.median(sweeps) * 1000,
        "sweep_max_ms": max(sweeps) * 1000,
        "bench_cpu_s_per_s": cpu_window / ((b.mid_ms - a.mid_ms) / 1000),
    }
    return a, b, versions, polling


def run_real(n: int, args: argparse.Namespace, workroot: Path) -> dict[str, Any]:
    """Start N nodes, warm up, measure, stop; returns every number for this N."""
    label = f"N={n}"
    rng = random.Random(args.seed + n)
    topology = build_topology(n, args.degree, rng)
    stats, dist = graph_stats(topology.adjacency())
    root = workroot / f"n{n}"
    agents = write_agent_files(root / "agents", n)
    env = {
        "NOOSPHERE_TARGET_PEERS": "0",
        "NOOSPHERE_ANNOUNCE_INTERVAL_S": f"{args.interval:g}",
        # no tasks run here: loading the embedding model would cost ~0.4 GB and CPU per node
        "NOOSPHERE_PRELOAD_MODELS": "0",
    }
    cluster = Cluster(root, env, ["--card-ttl", str(args.card_ttl)])
    result: dict[str, Any] = {
        "nodes": n,
        "topology": {k: v for k, v in asdict(stats).items() if k != "eccentricity"},
        "eccentricity": stats.eccentricity,
        "bootstrap": topology.bootstrap,
    }
    poller: Poller | None = None
    started = time.monotonic()
    try:
        progress(f"{label}: starting {n} nodes ({args.start_parallel} at a time) in {root}")
        try:
            cluster.start(
                topology,
                agents,
                parallel=args.start_parallel,
                timeout=args.start_timeout,
                label=label,
            )
        except LaunchError as exc:
            raise BenchError(
                f"{len(cluster.nodes)} of {n} nodes spawned, one failed to start: {exc}"
            ) from exc
        result["start_s"] = time.monotonic() - started
        nodes = cluster.ordered()
        index_of = {node.peer_id: i for i, node in enumerate(nodes)}
        poller = Poller(nodes, args.poll_workers)
        expected = {f"{node.peer_id}/bench-agent-{i:04d}" for i, node in enumerate(nodes)}
        result["warmup_s"] = warm_up(poller, expected, args.warmup_timeout, label)
        result["connections"] = check_connections(poller, topology, index_of)
        recorder = Recorder(index_of, n)
        a, b, versions, polling = measure(poller, recorder, args, label)
        window_s = (b.mid_ms - a.mid_ms) / 1000
        result |= {
            "window_start_ms": a.mid_ms,
            "window_end_ms": b.mid_ms,
            "window_s": window_s,
            "versions_in_window": len(versions),
            "versions_expected": n * window_s / args.interval,
            "polling": polling,
            "loadavg_1m_after": os.getloadavg()[0],
        }
        result |= cost_stats(a, b, n, len(versions))
        if args.quiet_s > 0:
            progress(f"{label}: {args.quiet_s:g}s without polling to measure the idle node CPU")
            quiet_a = snapshot(poller)
            time.sleep(args.quiet_s)
            cpu = cpu_rates(quiet_a, snapshot(poller))
            per_version = 1000 * sum(cpu) / (n * len(versions) / window_s) if versions else None
            result |= {
                "cpu_s_per_node_per_s_unpolled_median": statistics.median(cpu),
                "cpu_s_per_node_per_s_unpolled_max": max(cpu),
                "cpu_s_per_s_all_nodes_unpolled": sum(cpu),
                "cpu_ms_per_node_per_version_unpolled": per_version,
                "colocation_cpu_ms_per_version_per_core": (
                    None if per_version is None else n * per_version / (os.cpu_count() or 1)
                ),
            }
        result["poll_retries"] = poller.retries
        result |= analyse_versions(versions, recorder, n, dist)
        t100 = result["t100_median_ms"]
        result["hop_ms_t100_over_diameter"] = None if t100 is None else t100 / stats.diameter
        result["hop_ms_t100_over_mean_ecc"] = (
            None if t100 is None else t100 / stats.mean_eccentricity
        )
    except BenchError as exc:
        progress(f"{label}: FAILED: {exc}")
        result |= exc.details
        result["error"] = str(exc)
    finally:
        result["elapsed_s"] = time.monotonic() - started
        if poller is not None:
            poller.close()
        progress(f"{label}: stopping {len(cluster.nodes)} nodes")
        rss = _rss_mb([node.process.pid for node in cluster.nodes.values() if node.alive])
        result["rss_mb_total_at_stop"] = rss
        cluster.stop_all()
    return result


def _rss_mb(pids: Iterable[int]) -> float | None:
    """Total resident memory of ``pids`` from /proc (None where unavailable)."""
    total = 0
    try:
        for pid in pids:
            with open(f"/proc/{pid}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None
    return total / 2**20


# --------------------------------------------------------------------------------- simulation


def sim_params(nodes: int, hop_ms: float, sigma: float, known_peers: int) -> Any:
    """SimParams with the node's GossipSub defaults."""
    g, p = GossipConfig(), GossipParams()
    return sim.SimParams(
        nodes=nodes,
        D=g.degree,
        D_lo=g.degree_low,
        D_hi=g.degree_high,
        heartbeat_interval=float(g.heartbeat_interval),
        gossip_history=p.gossip_window,  # heartbeats a message is advertised in IHAVE
        gossip_factor=0.25,  # py-libp2p's default (not configurable by the node)
        D_lazy=6,  # py-libp2p's default
        known_peers=known_peers,
        hop_latency_ms=hop_ms,
        latency_sigma=sigma,
        processing_ms=0.0,  # the measured hop latency includes processing
        loss=0.0,
    )


def default_known_peers() -> int:
    """Non-mesh topic peers of a node with default config: dials target_peers and is dialled by
    about as many, minus the mesh degree."""
    return max(0, 2 * NodeConfig().target_peers - GossipConfig().degree)


def calibrate(real: Sequence[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Pick the hop latency and sigma for the simulation (see the module docstring)."""
    measured = [r for r in real if r.get("hop_ms_t100_over_ecc") is not None]
    clean = [r for r in measured if not r["versions_undelivered"]]
    if args.calibrate_nodes is not None:
        pool = [r for r in measured if r["nodes"] == args.calibrate_nodes]
        if not pool:
            progress(f"--calibrate-nodes {args.calibrate_nodes}: no such measurement; ignored")
    else:
        pool = [r for r in clean if r["nodes"] >= 10] or clean or measured
    source = min(pool, key=lambda r: r["nodes"]) if pool else None
    hop = args.sim_hop_latency_ms
    sigma = args.sim_sigma
    hop_from = "--sim-hop-latency-ms" if hop is not None else None
    sigma_from = "--sim-sigma" if sigma is not None else None
    if hop is None and source is not None:
        hop, hop_from = source["hop_ms_t100_over_ecc"], f"median t100/ecc at N={source['nodes']}"
    if sigma is None and source is not None and source["latency_sigma_one_hop"] is not None:
        sigma = source["latency_sigma_one_hop"]
        sigma_from = f"IQR of ln(one-hop latency)/1.349 at N={source['nodes']}"
    if hop is None:
        hop, hop_from = sim.SimParams().hop_latency_ms, "gossip_sim default (no measurement)"
    if sigma is None:
        sigma, sigma_from = sim.SimParams().latency_sigma, "gossip_sim default"
    return {
        "hop_latency_ms": max(0.01, float(hop)),
        "hop_latency_from": hop_from,
        "latency_sigma": float(sigma),
        "latency_sigma_from": sigma_from,
        "known_peers": args.sim_known_peers,
    }


def run_sim(calibration: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Simulate every size with --sim-runs seeds; summary rows, raw runs and log fits."""
    rows, runs, results = [], [], []
    for nodes in args.sim_nodes:
        params = sim_params(
            nodes,
            calibration["hop_latency_ms"],
            calibration["latency_sigma"],
            calibration["known_peers"],
        )
        size_results, walls = [], []
        for i in range(args.sim_runs):
            progress(f"sim: {nodes:,} nodes, run {i + 1}/{args.sim_runs}")
            started = time.perf_counter()
            size_results.append(sim.simulate(params, args.seed + i))
            walls.append(time.perf_counter() - started)
        results += size_results
        runs += [asdict(r) | {"wall_s": w} for r, w in zip(size_results, walls, strict=True)]
        rows.append(sim.summarize(size_results) | {"wall_s_median": statistics.median(walls)})
    fits = {}
    for metric in ("rounds_to_99", "time_to_99_ms"):
        try:
            slope, intercept, r2 = sim.fit_log_growth(results, metric)
        except ValueError:
            fits[metric] = None
        else:
            fits[metric] = {"slope": slope, "intercept": intercept, "r2": r2}
    params = asdict(sim_params(2, calibration["hop_latency_ms"], calibration["latency_sigma"], 0))
    params |= {"nodes": args.sim_nodes, "known_peers": calibration["known_peers"]}
    return {"params": params, "summary": rows, "runs": runs, "fit": fits}


# ------------------------------------------------------------------------------------- output


def fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def console() -> Any:
    from rich.console import Console

    out = Console()
    return out if out.is_terminal else Console(width=200)  # piped output would wrap at 80


def print_real_table(real: Sequence[dict[str, Any]], args: argparse.Namespace) -> None:
    from rich.table import Table

    table = Table(
        title=f"Card propagation, real nodes on 127.0.0.1 (bootstrap degree {args.degree},"
        f" announce every {args.interval:g} s, {args.rounds} rounds)",
        caption="t99/t100: ms from issued_at until 99%/100% of the other nodes store the version"
        " (median and p99 over complete versions); missed+late: versions replaced before a poll"
        " saw them + versions some node neither stored nor replaced by the end of the grace"
        " period; hop ms: median t100/eccentricity; CPU: s per node per s",
    )
    columns = [
        "N",
        "versions ok/all",
        "missed+late",
        "t99 med",
        "t99 p99",
        "t100 med",
        "t100 p99",
        "diam/ecc",
        "hop ms",
        "msg/node/ver",
        "KB/node/ver",
        "rpc/node/ver",
        "CPU med/max",
        "RSS MB med/max",
        "start s",
        "warm-up s",
    ]
    for column in columns:
        table.add_column(column, justify="right")
    notes = []
    for r in real:
        topo = r["topology"]
        cpu = (
            f"{r['cpu_s_per_node_per_s_median']:.3f}/{r['cpu_s_per_node_per_s_max']:.3f}"
            if "cpu_s_per_node_per_s_median" in r
            else "-"
        )
        if "versions_complete" in r:
            cells = [
                f"{r['versions_complete']}/{r['versions_in_window']}",
                f"{r['versions_missed']}+{r['versions_undelivered']}",
                fmt(r["t99_median_ms"], ".0f"),
                fmt(r["t99_p99_ms"], ".0f"),
                fmt(r["t100_median_ms"], ".0f"),
                fmt(r["t100_p99_ms"], ".0f"),
            ]
        else:
            cells = ["[red]failed", "-", "-", "-", "-", "-"]
        rss = f"{r['rss_mb_median']:.0f}/{r['rss_mb_max']:.0f}" if "rss_mb_median" in r else "-"
        table.add_row(
            str(r["nodes"]),
            *cells,
            f"{topo['diameter']} / {topo['mean_eccentricity']:.2f}",
            fmt(r.get("hop_ms_t100_over_ecc"), ".1f"),
            fmt(r.get("messages_per_node_per_version"), ".2f"),
            fmt(_kb(r.get("bytes_per_node_per_version")), ".2f"),
            fmt(r.get("rpcs_per_node_per_version"), ".2f"),
            cpu,
            rss,
            fmt(r.get("start_s"), ".1f"),
            fmt(r.get("warmup_s"), ".1f"),
        )
        notes += _notes(r)
    out = console()
    out.print(table)
    for note in notes:
        out.print(note, highlight=False)


def _notes(r: dict[str, Any]) -> list[str]:
    """Plain-language remarks on one N: failure, CPU saturation, late deliveries."""
    n, notes = r["nodes"], []
    if "error" in r:
        notes.append(f"N={n}: FAILED: {r['error'].splitlines()[0]}")
    cores = os.cpu_count() or 1
    total = r.get("cpu_s_per_s_all_nodes")
    if total is not None and total >= 0.8 * cores:
        notes.append(
            f"N={n}: CPU-saturated: the nodes used {total:.2f} CPU s/s on {cores} cores"
            f" (load average {r.get('loadavg_1m_after', r.get('loadavg_1m', 0)):.0f})"
        )
    if r.get("versions_undelivered"):
        notes.append(
            f"N={n}: {r['undelivered_pairs']} of {r['pairs_expected']} (node, version) pairs were"
            f" not delivered by the end of the grace period; the {r['pairs_seen']} seen had"
            f" latency median {fmt(r['seen_latency_median_ms'], '.0f')} ms,"
            f" p99 {fmt(r['seen_latency_p99_ms'], '.0f')} ms,"
            f" max {fmt(r['seen_latency_max_ms'], '.0f')} ms"
        )
    return notes


def _kb(value: float | None) -> float | None:
    return None if value is None else value / 1024


def print_sim_table(result: dict[str, Any], calibration: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(
        title=f"GossipSub simulation, hop latency {calibration['hop_latency_ms']:.2f} ms"
        f" (sigma {calibration['latency_sigma']:.2f}), D={result['params']['D']}"
    )
    columns = [
        ("nodes", "nodes", ","),
        ("runs", "runs", "d"),
        ("rounds to 99%", "rounds_to_99_median", "g"),
        ("t99 med ms", "t99_median_ms", ".1f"),
        ("t99 max ms", "t99_p99_ms", ".1f"),
        ("t100 med ms", "t100_median_ms", ".1f"),
        ("data msgs/node", "data_msgs_per_node", ".2f"),
        ("ctrl msgs/node", "control_msgs_per_node", ".2f"),
        ("min coverage", "min_coverage", ".4%"),
        ("s/run", "wall_s_median", ".2f"),
    ]
    for header, _, _ in columns:
        table.add_column(header, justify="right")
    for row in result["summary"]:
        table.add_row(*(fmt(row[key], spec) for _, key, spec in columns))
    out = console()
    out.print(table)
    for metric, fit in result["fit"].items():
        if fit is not None:
            out.print(
                f"fit {metric} = {fit['slope']:.3f} * log2(N) + {fit['intercept']:.3f}"
                f"  (r2 = {fit['r2']:.3f})"
            )


# ----------------------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = BenchParser(
        "bench/gossip.py",
        __doc__,
        results=lambda args: QUICK_JSON if args.quick else DEFAULT_JSON,
        smoke=SMOKE,
        results_help=f"default: {DEFAULT_JSON.relative_to(BENCH_DIR.parent)},"
        f" {QUICK_JSON.relative_to(BENCH_DIR.parent)} with --quick",
    )
    real = parser.add_argument_group("real nodes")
    real.add_argument(
        "--nodes", type=int, nargs="+", default=[10, 25, 50], help="network sizes N to measure"
    )
    real.add_argument(
        "--degree", type=int, default=3, help="bootstrap peers per node (k random earlier nodes)"
    )
    real.add_argument(
        "--interval",
        type=float,
        default=4.0,
        help="seconds between a node's card announcements (NOOSPHERE_ANNOUNCE_INTERVAL_S)",
    )
    real.add_argument("--rounds", type=int, default=5, help="announcement rounds measured")
    real.add_argument("--card-ttl", type=int, default=120, help="card TTL in seconds")
    real.add_argument(
        "--poll-interval",
        type=float,
        default=0.5,
        help="seconds between polls of every node's card list; latencies come from the nodes'"
        " own received_at, so polls only need to see each version before it is replaced (well"
        " under --interval), but each poll costs every node CPU",
    )
    real.add_argument(
        "--poll-method",
        choices=["arrivals", "cards"],
        default="arrivals",
        help="what the measurement polls fetch: 'arrivals' = each node's log of the card versions"
        " it stored since the last poll (noosphere.cards.arrivals: a few bytes per version, and no"
        " version is missed); 'cards' = every node's whole card list (noosphere.cards.list, as"
        " before 2026-11-27: it costs each node far more CPU than the gossip it observes)",
    )
    real.add_argument("--poll-workers", type=int, default=16, help="threads polling the nodes")
    real.add_argument(
        "--start-parallel",
        type=int,
        default=max(2, 2 * (os.cpu_count() or 1)),
        help="nodes starting at the same time",
    )
    real.add_argument(
        "--start-timeout", type=float, default=120.0, help="seconds for one node to become ready"
    )
    real.add_argument(
        "--warmup-timeout",
        type=float,
        default=180.0,
        help="seconds for every node to hold every card",
    )
    real.add_argument(
        "--quiet-s",
        type=float,
        help="after the window, seconds without polling to measure node CPU without the"
        " benchmark's polls (0 = skip; default: one --interval, at least 8)",
    )
    real.add_argument("--seed", type=int, default=1, help="seed of topology and simulation runs")
    real.add_argument(
        "--workdir",
        type=Path,
        help="parent of the node homes (default: a new temporary directory)",
    )
    real.add_argument(
        "--keep-homes",
        action="store_true",
        help="keep node homes and logs (always kept when a run fails)",
    )
    simg = parser.add_argument_group("simulation")
    simg.add_argument(
        "--sim-nodes",
        type=int,
        nargs="+",
        default=DEFAULT_SIM_NODES,
        help="simulated network sizes",
    )
    simg.add_argument("--sim-runs", type=int, default=2, help="runs (seeds) per simulated size")
    simg.add_argument(
        "--sim-hop-latency-ms",
        type=float,
        help="override the measured per-hop latency (median of the lognormal)",
    )
    simg.add_argument("--sim-sigma", type=float, help="override the measured lognormal sigma")
    simg.add_argument(
        "--calibrate-nodes",
        type=int,
        help="take hop latency and sigma from this measured N (default: the smallest N >= 10"
        " whose versions were all delivered)",
    )
    simg.add_argument(
        "--sim-known-peers",
        type=int,
        default=default_known_peers(),
        help="non-mesh topic peers per node that IHAVE gossip can reach",
    )
    simg.add_argument("--no-sim", action="store_true", help="skip the simulation")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short real run: N=5, 2 rounds, simulation up to 10,000 nodes; JSON defaults to"
        f" {QUICK_JSON.relative_to(BENCH_DIR.parent)} so it does not overwrite full results",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.nodes, args.rounds = [5], 2
        args.sim_nodes = [s for s in args.sim_nodes if s <= 10_000] or QUICK_SIM_NODES
    if args.quiet_s is None:
        args.quiet_s = max(8.0, args.interval)
    checks = [
        (all(n >= 2 for n in args.nodes), "--nodes must all be >= 2"),
        (args.degree >= 1, "--degree must be >= 1"),
        (args.rounds >= 1, "--rounds must be >= 1"),
        (args.interval >= 0.5, "--interval must be >= 0.5"),
        (args.poll_interval > 0, "--poll-interval must be > 0"),
        (args.start_parallel >= 1, "--start-parallel must be >= 1"),
        (args.sim_runs >= 1, "--sim-runs must be >= 1"),
        (all(n >= 2 for n in args.sim_nodes), "--sim-nodes must all be >= 2"),
        (args.card_ttl >= max(5, 2 * args.interval), "--card-ttl must be >= 5 and >= 2 intervals"),
    ]
    check_args(parser, checks)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_signals()
    started = time.monotonic()
    info = machine_info(("libp2p",))
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    workroot = Path(tempfile.mkdtemp(prefix="noosphere-gossip-", dir=args.workdir))
    real: list[dict[str, Any]] = []
    failed = False
    try:
        for n in args.nodes:
            real.append(run_real(n, args, workroot))
            failed = failed or "error" in real[-1]
    except KeyboardInterrupt:
        progress(f"interrupted; all nodes were stopped; homes kept in {workroot}")
        return 130
    if failed or args.keep_homes:
        progress(f"node homes and logs kept in {workroot}")
    else:
        shutil.rmtree(workroot, ignore_errors=True)
    calibration = calibrate(real, args)
    print_real_table(real, args)
    simulation = None
    if not args.no_sim:
        simulation = run_sim(calibration, args)
        print_sim_table(simulation, calibration)
    total = time.monotonic() - started
    parameters = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    parameters["node_env"] = {
        "NOOSPHERE_TARGET_PEERS": "0",
        "NOOSPHERE_ANNOUNCE_INTERVAL_S": f"{args.interval:g}",
        "NOOSPHERE_PRELOAD_MODELS": "0",
    }
    payload = {
        "benchmark": "bench/gossip.py",
        "machine": info,
        "parameters": parameters,
        "real": real,
        "calibration": calibration,
        "simulation": simulation,
        "total_run_s": total,
    }
    write_results(args.json, payload)
    console().print(f"total run time {total:.0f} s; results written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
