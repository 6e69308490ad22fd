"""Discover phase: discrete-event model of GossipSub card propagation, calibrated by bench/gossip.py

The model answers one question: how do coverage time and hop count ("rounds") grow
with the network size N when an agent card is published on a GossipSub topic?
It is pure standard-library Python so that it runs anywhere the project runs.

Model
-----
* **Mesh.** N nodes; every node keeps a topic mesh of about ``D`` peers and always
  between ``D_lo`` and ``D_hi``.  The mesh is the union of ``D // 2`` random
  Hamiltonian cycles (plus one random matching when ``D`` is odd), built
  with a seeded ``random.Random`` in O(N*D) time; the rare duplicate edges are
  dropped and nodes left below ``D``/``D_lo`` are topped up with random partners
  (like a GRAFT in the GossipSub heartbeat).  In tiny networks (N <= D_hi) the
  degree bounds are clamped to N - 1.
* **Eager push.** The publisher (a random node, t = 0) sends the message to all
  its mesh peers.  A node that receives the message for the first time spends
  ``processing_ms`` validating it and then forwards it to every mesh peer except
  the one it came from.  Each transmission takes a per-hop latency drawn from a
  lognormal distribution with median ``hop_latency_ms`` and shape
  ``latency_sigma`` (sampled from a table of 2**16 quantiles, so the tail is
  cut near 4.3 sigma), and is lost with probability ``loss``.  Later copies
  are duplicates: counted, never forwarded.
* **Lazy gossip.** Each node runs a heartbeat every ``heartbeat_interval``
  seconds with a random phase.  A message stays in the gossip window of the
  message cache for ``gossip_history`` heartbeats after it is received; at each
  of those heartbeats the node sends IHAVE to ``max(D_lazy,
  int(gossip_factor * K))`` (capped at K) random peers among its K =
  ``known_peers`` non-mesh known peers (a fixed random set per node, derived
  from a seeded hash so it costs no memory).  A node that still lacks the
  message when the IHAVE arrives answers IWANT and gets the message one round
  trip later (IWANT hop + data hop, plus processing at both ends).  IHAVE,
  IWANT and the IWANT answer are subject to ``loss`` as well.
* **Rounds.** A node's hop count is one more than that of the node it first
  got the message from (an IWANT answer counts as one hop).  ``rounds_to_99`` is
  the smallest h such that 99% of the nodes got the message within h hops.

Output (``SimResult``): time to 99% and 100% coverage in ms, rounds to 99%,
final coverage fraction, and per node per message: data messages sent (eager
copies and IWANT answers, lost ones included), duplicates received, IHAVE and
IWANT control messages.  ``fit_log_growth`` fits a metric against log2(N) to
check the expected O(log N) growth.

The simulation is Dijkstra-like: a pending arrival is queued only if it beats
the best arrival already queued for that node, so the heap stays small.  Every
send is counted when it is made; the run stops as soon as every node has the
message, and the IHAVEs still due then are counted in closed form (each node
that holds the message sends the same number at each of its gossip
heartbeats).  State lives in flat ``array``/``bytearray`` buffers and two
``heapq`` heaps of packed int keys on an integer clock (~1 ns ticks); there are
no per-node objects.  One million nodes take roughly 13-20 s and ~200 MB.

Calibration: ``hop_latency_ms``, ``latency_sigma`` and ``processing_ms`` are
meant to be set from the per-hop latency that ``bench/gossip.py`` measures on
real libp2p nodes; everything else is GossipSub's defaults.

Command line: ``python bench/gossip_sim.py --nodes 1000 10000 --json OUT``;
``--smoke`` runs the same sweep at 200 and 400 nodes in about a second to check
that the script works (JSON to a temporary file unless ``--json`` is given).
The model itself is standard library only; the command line uses
bench/benchkit.py like the other benchmarks.
"""

from __future__ import annotations

import argparse
import functools
import heapq
import importlib.util
import json
import math
import random
import statistics
import sys
import time
from array import array
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType

_MASK64 = (1 << 64) - 1
_DATA = 0
_IHAVE = 2


@dataclass(frozen=True)
class SimParams:
    """Parameters of one simulated publication (GossipSub names and defaults)."""

    nodes: int = 1000
    D: int = 6
    D_lo: int = 4
    D_hi: int = 12
    heartbeat_interval: float = 1.0
    gossip_history: int = 3
    gossip_factor: float = 0.25
    D_lazy: int = 6
    known_peers: int = 20
    hop_latency_ms: float = 2.0
    latency_sigma: float = 0.5
    processing_ms: float = 0.3
    loss: float = 0.0

    def __post_init__(self) -> None:
        for message in _validation_errors(self):
            raise ValueError(message)


def _validation_errors(p: SimParams) -> list[str]:
    """Return a message for every invalid parameter (empty when all are valid)."""
    checks = [
        (p.nodes >= 2, f"nodes must be >= 2, got {p.nodes}"),
        (p.D_lo >= 1, f"D_lo must be >= 1, got {p.D_lo}"),
        (
            p.D_lo <= p.D <= p.D_hi,
            f"need D_lo <= D <= D_hi, got D_lo={p.D_lo}, D={p.D}, D_hi={p.D_hi}",
        ),
        (0.0 <= p.loss < 1.0, f"loss must satisfy 0 <= loss < 1, got {p.loss}"),
        (p.heartbeat_interval > 0, "heartbeat_interval must be > 0 seconds"),
        (p.gossip_history >= 0, "gossip_history must be >= 0"),
        (0.0 <= p.gossip_factor <= 1.0, "gossip_factor must be in [0, 1]"),
        (p.D_lazy >= 0, "D_lazy must be >= 0"),
        (p.known_peers >= 0, "known_peers must be >= 0"),
        (p.hop_latency_ms > 0, "hop_latency_ms must be > 0"),
        (p.latency_sigma >= 0, "latency_sigma must be >= 0"),
        (p.processing_ms >= 0, "processing_ms must be >= 0"),
    ]
    return [message for ok, message in checks if not ok]


@dataclass(frozen=True)
class SimResult:
    """Outcome of one run; times in ms from publication, counts per node per message."""

    nodes: int
    seed: int
    coverage: float
    reached_99: bool
    reached_100: bool
    time_to_99_ms: float | None
    time_to_100_ms: float | None
    rounds_to_99: int | None
    max_hops: int
    data_msgs_per_node: float
    ihave_per_node: float
    iwant_per_node: float
    control_msgs_per_node: float
    duplicates_per_node: float
    lazy_deliveries: int
    mean_mesh_degree: float


@dataclass
class _Mesh:
    """Mesh adjacency in a flat array: node u's peers are adj[u*stride : u*stride+deg[u]]."""

    adj: array
    deg: array
    stride: int

    def peers(self, u: int) -> array:
        base = u * self.stride
        return self.adj[base : base + self.deg[u]]


@dataclass
class _Counters:
    """Message counters of a run."""

    data_sent: int = 0
    data_lost: int = 0
    iwant_sent: int = 0
    lazy_deliveries: int = 0
    hop_histogram: list[int] = field(default_factory=list)


# --------------------------------------------------------------------------- mesh


def _degree_bounds(p: SimParams) -> tuple[int, int, int]:
    """Return (d, d_lo, d_hi) clamped to what N nodes allow."""
    cap = p.nodes - 1
    return min(p.D, cap), min(p.D_lo, cap), min(p.D_hi, cap)


def _try_link(mesh: _Mesh, u: int, v: int, limit: int) -> bool:
    """Add the undirected edge u-v if both ends have degree < limit and it is new."""
    deg, adj, stride = mesh.deg, mesh.adj, mesh.stride
    du, dv = deg[u], deg[v]
    if u == v or du >= limit or dv >= limit or v in mesh.peers(u):
        return False
    adj[u * stride + du] = v
    adj[v * stride + dv] = u
    deg[u] = du + 1
    deg[v] = dv + 1
    return True


def _add_random_cycles(mesh: _Mesh, n: int, d: int, rng: random.Random) -> None:
    """Add d // 2 random Hamiltonian cycles and, for odd d, one random matching.

    Edges are written without checks; `_drop_duplicates` cleans up afterwards.
    """
    adj, deg, stride = mesh.adj, mesh.deg, mesh.stride
    order = list(range(n))
    for cycle in range(d // 2):
        rng.shuffle(order)
        prev, slot = order[-1], 2 * cycle
        for node in order:
            adj[prev * stride + slot + 1] = node
            adj[node * stride + slot] = prev
            prev = node
    for u in range(n):
        deg[u] = 2 * (d // 2)
    if d % 2:
        rng.shuffle(order)
        for a, b in zip(order[0::2], order[1::2], strict=False):
            adj[a * stride + deg[a]] = b
            adj[b * stride + deg[b]] = a
            deg[a] += 1
            deg[b] += 1


def _drop_duplicates(mesh: _Mesh, n: int) -> None:
    """Remove repeated peers from every row (repeats are symmetric, so rows stay consistent)."""
    adj, deg, stride = mesh.adj, mesh.deg, mesh.stride
    for u in range(n):
        base = u * stride
        row = adj[base : base + deg[u]]
        if len(set(row)) < len(row):
            unique = list(dict.fromkeys(row))
            adj[base : base + len(unique)] = array("i", unique)
            deg[u] = len(unique)


def _top_up(
    mesh: _Mesh, n: int, target: int, limit: int, rng: random.Random, exhaustive: bool
) -> None:
    """Link nodes below `target` peers to random nodes below `limit` peers.

    With `exhaustive`, a node that random tries cannot fix is linked by a scan.
    """
    deg = mesh.deg
    for u in range(n):
        attempts = 0
        while deg[u] < target and attempts < 64:
            attempts += 1
            _try_link(mesh, u, rng.randrange(n), limit)
        if exhaustive and deg[u] < target:
            for v in range(n):
                if deg[u] >= target:
                    break
                _try_link(mesh, u, v, limit)


def build_mesh(p: SimParams, rng: random.Random) -> _Mesh:
    """Build a random mesh where every node has between D_lo and D_hi peers."""
    n = p.nodes
    d, d_lo, d_hi = _degree_bounds(p)
    mesh = _Mesh(adj=array("i", bytes(4 * n * d_hi)), deg=array("i", bytes(4 * n)), stride=d_hi)
    _add_random_cycles(mesh, n, d, rng)
    _drop_duplicates(mesh, n)
    _top_up(mesh, n, d, d, rng, exhaustive=False)
    _top_up(mesh, n, d, d_hi, rng, exhaustive=False)
    _top_up(mesh, n, d_lo, d_hi, rng, exhaustive=True)
    return mesh


# ------------------------------------------------------------------- known peers


def _mix64(x: int) -> int:
    """SplitMix64 finaliser: a cheap, well-spread 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _known_count(p: SimParams, mesh_degree: int) -> int:
    """Number of non-mesh peers a node with `mesh_degree` mesh peers knows."""
    return min(p.known_peers, p.nodes - 1 - mesh_degree)


def _gossip_fanout(p: SimParams, known: int) -> int:
    """IHAVE recipients per heartbeat for a node that knows `known` non-mesh peers."""
    return min(known, max(p.D_lazy, int(p.gossip_factor * known)))


def known_peers(p: SimParams, mesh: _Mesh, u: int, key: int) -> list[int]:
    """Return node u's fixed set of non-mesh known peers (hash-derived, distinct)."""
    n = p.nodes
    mesh_peers = set(mesh.peers(u))
    count = _known_count(p, len(mesh_peers))
    if count == n - 1 - len(mesh_peers):
        return [v for v in range(n) if v != u and v not in mesh_peers]
    excluded = mesh_peers | {u}
    chosen: list[int] = []
    base = (key + (u << 24)) & _MASK64
    attempt = 0
    while len(chosen) < count:
        v = _mix64(base + attempt) % n
        attempt += 1
        if v not in excluded:
            excluded.add(v)
            chosen.append(v)
    return chosen


def _ihave_total(p: SimParams, mesh: _Mesh, delivered: bytearray) -> int:
    """IHAVEs sent overall: every holder gossips to the same fanout each heartbeat."""
    fanout_by_degree: dict[int, int] = {}
    total = 0
    deg = mesh.deg
    for u in range(p.nodes):
        if delivered[u]:
            d = deg[u]
            if d not in fanout_by_degree:
                fanout_by_degree[d] = _gossip_fanout(p, _known_count(p, d))
            total += fanout_by_degree[d]
    return total * p.gossip_history


# -------------------------------------------------------------------- simulation


_LATENCY_BITS = 16
TICKS_PER_MS = 1 << 20  # simulation clock: integer ticks of ~1 ns
_NEVER = 1 << 62


def _ticks(ms: float) -> int:
    return round(ms * TICKS_PER_MS)


@functools.lru_cache(maxsize=8)
def latency_table(median_ms: float, sigma: float) -> tuple[int, ...]:
    """2**16 equiprobable quantiles of the lognormal hop latency, in ticks.

    Drawing an entry with ``getrandbits(16)`` is ~10x faster than ``gauss``; the
    tail is cut at the 1 - 2**-17 quantile (about 4.3 sigma).
    """
    size = 1 << _LATENCY_BITS
    normal = statistics.NormalDist()
    return tuple(
        _ticks(median_ms * math.exp(sigma * normal.inv_cdf((i + 0.5) / size))) for i in range(size)
    )


@dataclass(frozen=True)
class _Keys:
    """Packing of heap entries into single ints (cheaper to compare and store than tuples).

    Event key:     ticks | sender | node | kind   (kind: _DATA or _IHAVE)
    Heartbeat key: ticks | node | heartbeat index
    """

    node_bits: int
    index_bits: int

    @property
    def event_shift(self) -> int:
        return 2 * self.node_bits + 2

    @property
    def heartbeat_shift(self) -> int:
        return self.node_bits + self.index_bits

    def event(self, ticks: int, sender: int, node: int, kind: int) -> int:
        return (((ticks << self.node_bits | sender) << self.node_bits | node) << 2) | kind

    def heartbeat(self, ticks: int, node: int, index: int) -> int:
        return (ticks << self.node_bits | node) << self.index_bits | index


class _Run:
    """State of one simulated publication; `run()` drives the event loop.

    Two heaps of packed int keys (see `_Keys`): `events` holds data and IHAVE
    arrivals, `heartbeats` holds gossip heartbeats (mostly far in the future,
    so kept apart to keep `events` small).  Times are integer ticks.
    """

    def __init__(self, p: SimParams, seed: int) -> None:
        self.p = p
        self.seed = seed
        self.rng = random.Random(seed)
        self.mesh = build_mesh(p, self.rng)
        self.key = self.rng.getrandbits(64)
        self.lat = latency_table(p.hop_latency_ms, p.latency_sigma)
        self.processing = _ticks(p.processing_ms)
        self.interval = max(1, _ticks(p.heartbeat_interval * 1000.0))
        n = p.nodes
        self.keys = _Keys(max(1, (n - 1).bit_length()), max(1, p.gossip_history.bit_length()))
        self.best = array("q", [_NEVER]) * n
        self.parent = array("i", [-1]) * n
        self.hops = array("i", bytes(4 * n))
        self.via_iwant = bytearray(n)
        self.delivered = bytearray(n)
        self.delivery_times = array("q")
        self.events: list[int] = []
        self.heartbeats: list[int] = []
        self.gossips_by_degree = [
            p.gossip_history > 0 and _gossip_fanout(p, _known_count(p, d)) > 0
            for d in range(self.mesh.stride + 1)
        ]
        self.c = _Counters()

    def latency(self) -> int:
        """One transmission's latency in ticks."""
        return self.lat[self.rng.getrandbits(_LATENCY_BITS)]

    def lost(self) -> bool:
        """Whether one transmission is lost."""
        return self.p.loss > 0.0 and self.rng.random() < self.p.loss

    def record(self, u: int, t: int) -> None:
        """Record u's first receipt at tick t and update the hop histogram."""
        self.delivered[u] = 1
        self.delivery_times.append(t)
        sender = self.parent[u]
        hop = self.hops[sender] + 1 if sender >= 0 else 0
        self.hops[u] = hop
        histogram = self.c.hop_histogram
        if len(histogram) <= hop:
            histogram.extend([0] * (hop + 1 - len(histogram)))
        histogram[hop] += 1
        if self.via_iwant[u]:
            self.c.lazy_deliveries += 1

    def forward(self, u: int, t: int) -> None:
        """Eager push from u (received at t) to its mesh peers except the sender.

        Uses local names only and queues an arrival only when it beats the best
        one already queued: it runs once per node.  A copy to a node that
        already has the message is counted but needs no event.
        """
        delivered, best, parent, via_iwant = self.delivered, self.best, self.parent, self.via_iwant
        lat, bits, rand, loss = self.lat, self.rng.getrandbits, self.rng.random, self.p.loss
        events, push, shift = self.events, heapq.heappush, self.keys.event_shift
        sender = parent[u]
        start = t + self.processing
        base = u * self.mesh.stride
        sent = lost = 0
        for v in self.mesh.adj[base : base + self.mesh.deg[u]]:
            if v == sender:
                continue
            sent += 1
            if loss > 0.0 and rand() < loss:
                lost += 1
            elif not delivered[v]:
                at = start + lat[bits(_LATENCY_BITS)]
                if at < best[v]:
                    best[v], parent[v], via_iwant[v] = at, u, 0
                    push(events, at << shift | v << 2)
        self.c.data_sent += sent
        self.c.data_lost += lost

    def on_delivery(self, u: int, t: int) -> None:
        """Handle u's first receipt: record, forward, start gossiping."""
        self.record(u, t)
        self.forward(u, t)
        if self.gossips_by_degree[self.mesh.deg[u]]:
            first = t + int(self.rng.random() * self.interval)
            heapq.heappush(self.heartbeats, self.keys.heartbeat(first, u, 1))

    def heartbeat(self, u: int, t: int, index: int) -> None:
        """Send IHAVE to a random subset of u's known peers; queue the next heartbeat."""
        p = self.p
        peers = known_peers(p, self.mesh, u, self.key)
        for w in self.rng.sample(peers, _gossip_fanout(p, len(peers))):
            if not self.delivered[w] and not self.lost():
                key = self.keys.event(t + self.latency(), u, w, _IHAVE)
                heapq.heappush(self.events, key)
        if index < p.gossip_history:
            key = self.keys.heartbeat(t + self.interval, u, index + 1)
            heapq.heappush(self.heartbeats, key)

    def ihave(self, w: int, t: int, holder: int) -> None:
        """w got IHAVE from holder at t: ask with IWANT and take the answer."""
        if self.delivered[w]:
            return
        self.c.iwant_sent += 1
        if self.lost():
            return
        at_holder = t + self.processing + self.latency()
        self.c.data_sent += 1
        if self.lost():
            self.c.data_lost += 1
            return
        at = at_holder + self.processing + self.latency()
        if at < self.best[w]:
            self.best[w], self.parent[w], self.via_iwant[w] = at, holder, 1
            heapq.heappush(self.events, self.keys.event(at, 0, w, _DATA))

    def next_heap(self) -> list[int] | None:
        """The heap holding the earliest entry (None when both are empty)."""
        events, heartbeats, keys = self.events, self.heartbeats, self.keys
        if events and (
            not heartbeats or events[0] >> keys.event_shift <= heartbeats[0] >> keys.heartbeat_shift
        ):
            return events
        return heartbeats or None

    def run(self) -> SimResult:
        """Publish from a random node and process events until everyone has it."""
        n = self.p.nodes
        publisher = self.rng.randrange(n)
        self.best[publisher] = 0
        self.on_delivery(publisher, 0)
        times, delivered, best, events = self.delivery_times, self.delivered, self.best, self.events
        nb, pop = self.keys.node_bits, heapq.heappop
        node_mask, event_shift = (1 << nb) - 1, self.keys.event_shift
        index_bits, heartbeat_shift = self.keys.index_bits, self.keys.heartbeat_shift
        while len(times) < n:
            heap = self.next_heap()
            if heap is None:
                break
            key = pop(heap)
            if heap is events:
                u, t = key >> 2 & node_mask, key >> event_shift
                if key & 3 == _DATA:
                    if not delivered[u] and t == best[u]:
                        self.on_delivery(u, t)
                else:
                    self.ihave(u, t, key >> (nb + 2) & node_mask)
            else:
                u = key >> index_bits & node_mask
                self.heartbeat(u, key >> heartbeat_shift, key & ((1 << index_bits) - 1))
        return self.result()

    def result(self) -> SimResult:
        """Summarise the finished run."""
        p, c, n = self.p, self.c, self.p.nodes
        times = self.delivery_times
        count = len(times)
        target_99 = math.ceil(0.99 * n)
        ihave = _ihave_total(p, self.mesh, self.delivered)
        received = c.data_sent - c.data_lost
        return SimResult(
            nodes=n,
            seed=self.seed,
            coverage=count / n,
            reached_99=count >= target_99,
            reached_100=count == n,
            time_to_99_ms=times[target_99 - 1] / TICKS_PER_MS if count >= target_99 else None,
            time_to_100_ms=times[-1] / TICKS_PER_MS if count == n else None,
            rounds_to_99=_rounds_to(c.hop_histogram, target_99),
            max_hops=len(c.hop_histogram) - 1,
            data_msgs_per_node=c.data_sent / n,
            ihave_per_node=ihave / n,
            iwant_per_node=c.iwant_sent / n,
            control_msgs_per_node=(ihave + c.iwant_sent) / n,
            duplicates_per_node=(received - (count - 1)) / n,
            lazy_deliveries=c.lazy_deliveries,
            mean_mesh_degree=sum(self.mesh.deg) / n,
        )


def _rounds_to(histogram: Sequence[int], target: int) -> int | None:
    """Smallest hop count h such that at least `target` nodes got it within h hops."""
    total = 0
    for hop, count in enumerate(histogram):
        total += count
        if total >= target:
            return hop
    return None


def simulate(params: SimParams, seed: int) -> SimResult:
    """Simulate one publication on a fresh random mesh; deterministic for a seed."""
    return _Run(params, seed).run()


# ------------------------------------------------------------------------ analysis


def fit_log_growth(
    results: Sequence[SimResult], metric: str = "rounds_to_99"
) -> tuple[float, float, float]:
    """Least-squares fit of `metric` = slope * log2(nodes) + intercept; returns r2 too."""
    points = [
        (math.log2(r.nodes), float(getattr(r, metric)))
        for r in results
        if getattr(r, metric) is not None
    ]
    if len({x for x, _ in points}) < 2:
        raise ValueError("fit_log_growth needs results for at least two network sizes")
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    slope = sxy / sxx
    intercept = mean_y - slope * mean_x
    ss_tot = sum((y - mean_y) ** 2 for _, y in points)
    ss_res = sum((y - (slope * x + intercept)) ** 2 for x, y in points)
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return slope, intercept, r2


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def summarize(results: Sequence[SimResult]) -> dict[str, object]:
    """Aggregate the runs of one network size (times: median and p99 over runs)."""
    t99 = [r.time_to_99_ms for r in results if r.time_to_99_ms is not None]
    t100 = [r.time_to_100_ms for r in results if r.time_to_100_ms is not None]
    rounds = [r.rounds_to_99 for r in results if r.rounds_to_99 is not None]
    return {
        "nodes": results[0].nodes,
        "runs": len(results),
        "t99_median_ms": statistics.median(t99) if t99 else None,
        "t99_p99_ms": percentile(t99, 99) if t99 else None,
        "t100_median_ms": statistics.median(t100) if t100 else None,
        "t100_p99_ms": percentile(t100, 99) if t100 else None,
        "runs_reaching_100": len(t100),
        "rounds_to_99_median": statistics.median(rounds) if rounds else None,
        "data_msgs_per_node": statistics.fmean(r.data_msgs_per_node for r in results),
        "control_msgs_per_node": statistics.fmean(r.control_msgs_per_node for r in results),
        "min_coverage": min(r.coverage for r in results),
    }


# ---------------------------------------------------------------------------- CLI

_COLUMNS = [
    ("nodes", "nodes", "{:,}"),
    ("runs", "runs", "{}"),
    ("t99 med ms", "t99_median_ms", "{:.1f}"),
    ("t99 p99 ms", "t99_p99_ms", "{:.1f}"),
    ("t100 med ms", "t100_median_ms", "{:.1f}"),
    ("t100 p99 ms", "t100_p99_ms", "{:.1f}"),
    ("rounds99", "rounds_to_99_median", "{:g}"),
    ("data/node", "data_msgs_per_node", "{:.2f}"),
    ("ctrl/node", "control_msgs_per_node", "{:.2f}"),
    ("coverage", "min_coverage", "{:.4%}"),
    ("s/run", "wall_s_median", "{:.2f}"),
]


def _cell(row: dict[str, object], key: str, fmt: str) -> str:
    value = row[key]
    return "-" if value is None else fmt.format(value)


def print_table(rows: Sequence[dict[str, object]], title: str) -> None:
    """Print the summary table with rich when available, else as plain text."""
    cells = [[_cell(row, key, fmt) for _, key, fmt in _COLUMNS] for row in rows]
    headers = [header for header, _, _ in _COLUMNS]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
        print(title)
        print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
        for row in cells:
            print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        return
    table = Table(title=title)
    for header in headers:
        table.add_column(header, justify="right")
    for row in cells:
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # rich would wrap piped output at 80 columns
    console.print(table)


SMOKE = {"nodes": [200, 400], "runs": 2}  # --smoke: two sizes, so the log fit runs too


def _benchkit() -> ModuleType:
    """bench/benchkit.py: the module already imported (bench/gossip.py imports it by name), else
    loaded by path, which works whether this file runs as a script or was loaded by path."""
    if "benchkit" in sys.modules:
        return sys.modules["benchkit"]
    spec = importlib.util.spec_from_file_location(
        "benchkit", Path(__file__).resolve().with_name("benchkit.py")
    )
    if spec is None or spec.loader is None:
        raise ImportError("cannot load bench/benchkit.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse command-line options."""
    defaults = SimParams()
    parser = _benchkit().BenchParser(
        "bench/gossip_sim.py",
        __doc__.splitlines()[0],
        results=None,
        smoke=SMOKE,
        results_help="runs, summary and fit; default: not written",
    )
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--runs", type=int, default=3, help="runs (seeds) per size")
    parser.add_argument("--seed", type=int, default=1, help="seed of the first run")
    parser.add_argument("--hop-latency-ms", type=float, default=defaults.hop_latency_ms)
    parser.add_argument("--latency-sigma", type=float, default=defaults.latency_sigma)
    parser.add_argument("--processing-ms", type=float, default=defaults.processing_ms)
    parser.add_argument("--loss", type=float, default=defaults.loss)
    parser.add_argument("--D", type=int, default=defaults.D, dest="D")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    return args


def _params_for(args: argparse.Namespace, nodes: int) -> SimParams:
    return SimParams(
        nodes=nodes,
        D=args.D,
        hop_latency_ms=args.hop_latency_ms,
        latency_sigma=args.latency_sigma,
        processing_ms=args.processing_ms,
        loss=args.loss,
    )


def _run_size(args: argparse.Namespace, nodes: int) -> tuple[list[SimResult], list[float]]:
    """Run all seeds for one size, reporting progress on stderr."""
    params = _params_for(args, nodes)
    print(f"[gossip_sim] nodes={nodes:,}: {args.runs} run(s)", file=sys.stderr, flush=True)
    results, walls = [], []
    for i in range(args.runs):
        seed = args.seed + i
        started = time.perf_counter()
        results.append(simulate(params, seed))
        walls.append(time.perf_counter() - started)
        print(
            f"[gossip_sim] nodes={nodes:,} run {i + 1}/{args.runs} seed={seed} "
            f"took {walls[-1]:.2f}s",
            file=sys.stderr,
            flush=True,
        )
    return results, walls


def _fit_dict(results: Sequence[SimResult], metric: str) -> dict[str, float] | None:
    try:
        slope, intercept, r2 = fit_log_growth(results, metric)
    except ValueError:
        return None
    return {"slope": slope, "intercept": intercept, "r2": r2}


def _print_fits(fits: dict[str, dict[str, float] | None]) -> None:
    for metric, fit in fits.items():
        if fit is not None:
            print(
                f"fit {metric} = {fit['slope']:.3f} * log2(N) + {fit['intercept']:.3f}"
                f"  (r2 = {fit['r2']:.3f})"
            )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sweep, print the table and the log fit, optionally write JSON."""
    args = parse_args(argv)
    try:
        for nodes in args.nodes:
            _params_for(args, nodes)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    runs: list[dict[str, object]] = []
    results: list[SimResult] = []
    rows: list[dict[str, object]] = []
    for nodes in args.nodes:
        size_results, walls = _run_size(args, nodes)
        results += size_results
        runs += [asdict(r) | {"wall_s": w} for r, w in zip(size_results, walls, strict=True)]
        rows.append(
            summarize(size_results) | {"wall_s": walls, "wall_s_median": statistics.median(walls)}
        )
    print_table(rows, f"GossipSub propagation, hop latency {args.hop_latency_ms} ms")
    fits = {m: _fit_dict(results, m) for m in ("rounds_to_99", "time_to_99_ms")}
    _print_fits(fits)
    if args.json:
        params = asdict(_params_for(args, args.nodes[0])) | {"nodes": args.nodes}
        payload = {"params": params, "runs": runs, "summary": rows, "fit": fits}
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(payload, out, indent=2)
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
