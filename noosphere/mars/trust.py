"""Feedback (the sixth phase) feeding Recruit: the node's trust model, a ``Signals`` source.

Every verified :class:`~noosphere.protocol.feedback.Feedback` (the node's own and gossiped ones)
is evidence about an agent from a rater node. Three constructions turn it into signals:

* Beta reputation (Jøsang and Ismail, "The Beta Reputation System", 2002): a rating ``x`` in
  [0, 1] adds ``x`` to the positive evidence ``r`` and ``1 - x`` to the negative ``s`` of its
  (rater, agent) pair, and evidence fades exponentially with age (forgetting factor expressed
  as a half-life, 7 days by default). A reputation is the Beta expectation
  ``(r + 1) / (r + s + 2)``.
* Rater trust in the style of EigenTrust (Kamvar, Schlosser and Garcia-Molina, 2003): node i's
  local trust in node j is ``max(r_ij - s_ij, 0)`` over i's ratings of the agents j hosts,
  normalised per row (``c_ij``) after adding a prior mass ``k`` (3 by default) that stays with
  the pre-trusted set ``p`` (this node, plus configured peers): one lucky task cannot hand a
  rater's whole trust to a node. A rater with no positive experience points at ``p``. The
  global trust ``t`` is the fixed point of ``t = (1 - a) C^T t + a p`` (damping ``a`` = 0.15),
  found by power iteration. Agents are card ids ``PEER/AGENT``; the part before ``/`` is their
  node, so a node earns trust by hosting agents that trusted raters are satisfied with, and
  only then do its ratings count.
* Jøsang-Ismail reputation discounting: each rater's evidence about an agent is discounted by
  the belief ``w_i = t_i / max t`` in that rater (this node's own experience: ``w = 1``), as an
  opinion ``(b, d, u)`` is discounted: ``b' = w b``, ``d' = w d``. In evidence terms a rater's
  influence is bounded by ``2 w / (1 - w)`` however many ratings it issues, so a flood of ratings
  (or of sybil raters) with no trust flowing to them moves nothing.

* A registry prior (``noosphere.mars.registry_prior``): paid on-chain ratings that a node which
  just joined can read although it heard none of the gossip, weighted by the escrow amount,
  capped per paying account, discounted by this node's trust in the paying account's node, and
  pooled at a fixed low belief for accounts no node is known to own (sock puppets).

The result is exact for given inputs (no sampling). ``record`` takes feedback that already passed
``verify_feedback``: it drops self-ratings (receipt signed by the rater's own node) and keeps
one rating per (rater, task) - a later-issued one replaces it, anything else is ignored.
Memory is bounded per agent; when the cap is hit the rating evicted is the oldest one of the
least trusted rater holding the most ratings, so a flooder evicts its own ratings first.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from noosphere.protocol.feedback import Feedback, TaskReceipt

from .registry_prior import PaidEscrow, PaidRating, RegistryPolicy, capped, usable

DAY_MS = 86_400_000
DEFAULT_HALF_LIFE_MS = 7 * DAY_MS
RECORDS_VERSION = 1


def node_of(agent_id: str) -> str:
    """The node (peer id) hosting an agent card id ``PEER/AGENT``."""
    return agent_id.partition("/")[0]


def beta_mean(r: float, s: float) -> float:
    """The expectation of Beta(r + 1, s + 1): the Jøsang-Ismail reputation of evidence r, s."""
    return (r + 1.0) / (r + s + 2.0)


def discount(r: float, s: float, w: float) -> tuple[float, float]:
    """Jøsang-Ismail discounting of evidence ``(r, s)`` by belief ``w`` in [0, 1] in its source:
    the opinion ``b = r/(r+s+2)``, ``d = s/(r+s+2)`` becomes ``(w b, w d)``, mapped back to
    evidence. ``w = 1`` keeps the evidence, ``w = 0`` removes it."""
    if w <= 0.0:
        return 0.0, 0.0
    w = min(w, 1.0)
    total = r + s + 2.0
    b, d = r / total, s / total
    u = 1.0 - w * (b + d)
    return 2.0 * w * b / u, 2.0 * w * d / u


@dataclass(slots=True)
class _Rating:
    rater: str
    agent: str
    task_id: str
    rating: float
    issued_at: int  # the feedback's own time (later replaces earlier)
    at_ms: int  # evidence time: issued_at, never later than when it was recorded


@dataclass(slots=True)
class _Pair:
    """Decayed evidence of one rater about one agent, valid at ``at_ms``."""

    r: float = 0.0
    s: float = 0.0
    at_ms: int = 0
    keys: list[tuple[str, str, str]] = field(default_factory=list)  # oldest first


@dataclass(frozen=True, slots=True)
class EvidenceParts:
    """Where an agent's discounted evidence ``(r, s)`` comes from: this node's own ratings,
    other nodes' gossiped ratings, the registry's paid ratings by accounts of known nodes, and
    the pooled anonymous accounts."""

    own: tuple[float, float] = (0.0, 0.0)
    peers: tuple[float, float] = (0.0, 0.0)
    registry_known: tuple[float, float] = (0.0, 0.0)
    registry_anonymous: tuple[float, float] = (0.0, 0.0)

    @property
    def total(self) -> tuple[float, float]:
        parts = (self.own, self.peers, self.registry_known, self.registry_anonymous)
        return sum(p[0] for p in parts), sum(p[1] for p in parts)

    @property
    def registry(self) -> tuple[float, float]:
        return (
            self.registry_known[0] + self.registry_anonymous[0],
            self.registry_known[1] + self.registry_anonymous[1],
        )


@dataclass(slots=True)
class _Latency:
    mean: float
    count: int


class TrustModel:
    """What this node believes about agents and raters; implements ``mars.ranking.Signals``."""

    def __init__(
        self,
        self_peer: str,
        *,
        pretrusted: Iterable[str] = (),
        half_life_ms: int = DEFAULT_HALF_LIFE_MS,
        damping: float = 0.15,
        max_ratings_per_agent: int = 1000,
        latency_alpha: float = 0.2,
        tolerance: float = 1e-12,
        max_iterations: int = 500,
        trust_refresh_ms: int = 60_000,
        local_trust_prior: float = 3.0,
        weigh_raters: bool = True,
        registry_policy: RegistryPolicy | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        if half_life_ms <= 0:
            raise ValueError("half_life_ms must be positive")
        if not 0.0 < damping <= 1.0:
            raise ValueError("damping must be in (0, 1]")
        if max_ratings_per_agent < 1:
            raise ValueError("max_ratings_per_agent must be at least 1")
        if not 0.0 < latency_alpha <= 1.0:
            raise ValueError("latency_alpha must be in (0, 1]")
        self.self_peer = self_peer
        self.pretrusted = frozenset({self_peer, *pretrusted})
        self.half_life_ms = half_life_ms
        self.damping = damping
        self.max_ratings_per_agent = max_ratings_per_agent
        self.latency_alpha = latency_alpha
        self.tolerance = tolerance
        self.max_iterations = max_iterations
        self.trust_refresh_ms = trust_refresh_ms
        if local_trust_prior < 0.0:
            raise ValueError("local_trust_prior must not be negative")
        self.local_trust_prior = local_trust_prior
        self.weigh_raters = weigh_raters
        self._clock = clock
        self._now = 0
        self._ratings: dict[tuple[str, str, str], _Rating] = {}  # (rater, agent, task_id)
        self._pairs: dict[str, dict[str, _Pair]] = {}  # agent -> rater -> evidence
        self._counts: dict[str, int] = {}  # agent -> ratings held
        self._latency: dict[str, _Latency] = {}
        self._latency_seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._version = 0
        self._trust: dict[str, float] = {}
        self._trust_top = 0.0
        self._trust_key: tuple[int, int] | None = None
        self.registry_policy = registry_policy or RegistryPolicy()
        # agent -> paying account -> [(observations, score in [0, 1], at_ms, A2A task id)]
        self._registry: dict[str, dict[str, list[tuple[float, float, int, str | None]]]] = {}
        self._linked: dict[str, str] = {}  # paying account -> the node (peer id) owning it
        # (agent, task id) -> ratings held from pre-trusted raters (this node included): such a
        # task counts once, from gossip, not again from the registry
        self._gossip_tasks: dict[tuple[str, str], int] = {}
        self._registry_sums: dict[str, list[tuple[str, float, float, int]]] = {}
        self._registry_tasks: dict[str, set[str]] = {}  # agent -> A2A task ids rated on chain
        self._spent: dict[str, dict[str, int]] = {}  # anonymous account -> node paid -> amount

    # --- time -------------------------------------------------------------------------------

    def now_ms(self) -> int:
        """The clock signals are computed at: the injected clock, else the latest record time."""
        return self._clock() if self._clock is not None else self._now

    def _decay(self, age_ms: float) -> float:
        return 0.5 ** (max(0.0, age_ms) / self.half_life_ms)

    def _age_decay(self, now_ms: int, at_ms: int) -> float:
        return self._decay(now_ms - at_ms)

    # --- recording --------------------------------------------------------------------------

    def record(self, feedback: Feedback, now_ms: int) -> bool:
        """Add verified feedback; True when it changed the evidence (False: self-rating,
        duplicate or older revision)."""
        self._now = max(self._now, now_ms)
        receipt = feedback.receipt
        rater = receipt.requester
        if rater == receipt.agent_peer or node_of(receipt.agent) == rater:
            return False  # a node rating its own agent
        key = (rater, receipt.agent, receipt.task_id)
        old = self._ratings.get(key)
        if old is not None:
            if feedback.issued_at <= old.issued_at:
                return False
            self._remove(old)
        rating = _Rating(
            rater=rater,
            agent=receipt.agent,
            task_id=receipt.task_id,
            rating=float(feedback.rating),
            issued_at=feedback.issued_at,
            at_ms=min(feedback.issued_at, now_ms),
        )
        self._add(rating)
        if old is None and rater in self.pretrusted:
            self._observe_latency(receipt)
        self._enforce_cap(receipt.agent)
        self._version += 1
        return True

    def record_receipt(self, receipt: TaskReceipt, now_ms: int) -> bool:
        """Observe the latency of a task this node ran (a verified receipt naming it as the
        requester); each task counts once, whether it arrives here or with feedback."""
        self._now = max(self._now, now_ms)
        if receipt.requester != self.self_peer:
            return False
        return self._observe_latency(receipt)

    def _observe_latency(self, receipt: TaskReceipt) -> bool:
        seen = (receipt.agent, receipt.task_id)
        if seen in self._latency_seen:
            return False
        self._latency_seen[seen] = None
        if len(self._latency_seen) > 16 * self.max_ratings_per_agent:
            self._latency_seen.popitem(last=False)
        current = self._latency.get(receipt.agent)
        if current is None:
            self._latency[receipt.agent] = _Latency(float(receipt.latency_ms), 1)
        else:
            current.mean += self.latency_alpha * (receipt.latency_ms - current.mean)
            current.count += 1
        return True

    def _add(self, rating: _Rating) -> None:
        key = (rating.rater, rating.agent, rating.task_id)
        self._ratings[key] = rating
        pair = self._pairs.setdefault(rating.agent, {}).setdefault(rating.rater, _Pair())
        if not pair.keys:
            pair.at_ms = rating.at_ms
        if rating.at_ms >= pair.at_ms:
            factor = self._decay(rating.at_ms - pair.at_ms)
            pair.r, pair.s, pair.at_ms = pair.r * factor, pair.s * factor, rating.at_ms
            weight = 1.0
        else:  # an older rating arriving late: decay it to the pair's time
            weight = self._decay(pair.at_ms - rating.at_ms)
        pair.r += weight * rating.rating
        pair.s += weight * (1.0 - rating.rating)
        bisect.insort(pair.keys, key, key=lambda k: self._ratings[k].at_ms)
        self._counts[rating.agent] = self._counts.get(rating.agent, 0) + 1
        if rating.rater in self.pretrusted:
            seen = (rating.agent, rating.task_id)
            self._gossip_tasks[seen] = self._gossip_tasks.get(seen, 0) + 1
            self._forget_sums(rating.agent, rating.task_id)  # the task may be on the registry

    def _remove(self, rating: _Rating) -> None:
        key = (rating.rater, rating.agent, rating.task_id)
        del self._ratings[key]
        seen = (rating.agent, rating.task_id)
        if rating.rater in self.pretrusted:
            self._forget_sums(rating.agent, rating.task_id)
            if self._gossip_tasks.get(seen, 0) <= 1:
                self._gossip_tasks.pop(seen, None)
            else:
                self._gossip_tasks[seen] -= 1
        raters = self._pairs[rating.agent]
        pair = raters[rating.rater]
        pair.keys.remove(key)
        self._counts[rating.agent] -= 1
        if not pair.keys:
            del raters[rating.rater]
            if not raters:
                del self._pairs[rating.agent]
                del self._counts[rating.agent]
            return
        weight = self._decay(pair.at_ms - rating.at_ms)
        pair.r = max(0.0, pair.r - weight * rating.rating)
        pair.s = max(0.0, pair.s - weight * (1.0 - rating.rating))

    def _enforce_cap(self, agent: str) -> None:
        while self._counts.get(agent, 0) > self.max_ratings_per_agent:
            raters = self._pairs[agent]
            victim = min(raters, key=lambda rater: self._eviction_priority(raters, rater))
            self._remove(self._ratings[raters[victim].keys[0]])  # keys are oldest first

    def _eviction_priority(self, raters: dict[str, _Pair], rater: str) -> tuple[float, int, str]:
        """Least trusted first (last computed trust; pre-trusted never before others), then
        the rater holding the most ratings of this agent."""
        weight = 2.0 if rater in self.pretrusted else self._trust.get(rater, 0.0)
        return (weight, -len(raters[rater].keys), rater)

    # --- EigenTrust ---------------------------------------------------------------------------

    def local_trust(self, now_ms: int | None = None) -> dict[str, dict[str, float]]:
        """Normalised local trust ``c_ij`` (rows of raters with some positive experience), from
        gossiped ratings and from known nodes' paid history on the registry (so a node that
        just joined starts from its pre-trusted peers' whole record, not from a few gossiped
        ratings)."""
        now = self.now_ms() if now_ms is None else now_ms
        raw: dict[str, dict[str, float]] = {}
        for agent, raters in self._pairs.items():
            node = node_of(agent)
            for rater, pair in raters.items():
                if rater == node:
                    continue
                net = (pair.r - pair.s) * self._decay(now - pair.at_ms)
                row = raw.setdefault(rater, {})
                row[node] = row.get(node, 0.0) + net
        for agent in self._registry:
            node = node_of(agent)
            for account, r, s, at in self._registry_account_sums(agent):
                owner = self._linked.get(account)
                if owner is None or owner == node:
                    continue
                row = raw.setdefault(owner, {})
                row[node] = row.get(node, 0.0) + (r - s) * self._decay(now - at)
        rows: dict[str, dict[str, float]] = {}
        for rater, row in raw.items():
            positive = {j: v for j, v in row.items() if v > 0.0}
            total = sum(positive.values()) + self.local_trust_prior
            if total > 0.0 and positive:
                rows[rater] = {j: v / total for j, v in positive.items()}
        return rows

    def global_trust(self, now_ms: int | None = None) -> dict[str, float]:
        """EigenTrust global trust of every known node (sums to 1)."""
        return dict(self._global_trust(self.now_ms() if now_ms is None else now_ms))

    def _global_trust(self, now: int) -> dict[str, float]:
        """The cached fixed point; recomputed after a change or ``trust_refresh_ms``."""
        bucket = now // self.trust_refresh_ms if self.trust_refresh_ms > 0 else now
        key = (self._version, bucket)
        if key != self._trust_key:
            self._trust = self._power_iteration(self.local_trust(now), self._trust)
            self._trust_top = max(self._trust.values(), default=0.0)
            self._trust_key = key
        return self._trust

    def _power_iteration(
        self, rows: dict[str, dict[str, float]], start: dict[str, float]
    ) -> dict[str, float]:
        """Kamvar et al.'s basic algorithm with damping over a sparse edge list: a row's mass
        not given to anybody (no positive experience, or the local prior) goes to ``p``."""
        names = set(self.pretrusted)
        for agent, raters in self._pairs.items():
            names.add(node_of(agent))
            names.update(raters)
        names.update(rows)  # raters known from the registry only
        names.update(j for row in rows.values() for j in row)
        order = sorted(names)
        index = {n: k for k, n in enumerate(order)}
        size = len(order)
        p = np.zeros(size)
        for n in self.pretrusted:
            p[index[n]] = 1.0 / len(self.pretrusted)
        src: list[int] = []
        dst: list[int] = []
        weight: list[float] = []
        leftover = np.ones(size)  # share of each row that returns to p
        for i, row in rows.items():
            for j, cij in row.items():
                src.append(index[i])
                dst.append(index[j])
                weight.append(cij)
            leftover[index[i]] = max(0.0, 1.0 - sum(row.values()))
        src_a, dst_a, w_a = (
            np.array(src, dtype=np.intp),
            np.array(dst, dtype=np.intp),
            np.array(weight),
        )
        # Warm start from the previous fixed point: the same limit (the map is a contraction
        # by 1 - a), reached in fewer steps.
        t = np.array([start.get(n, 0.0) for n in order])
        t = t / t.sum() if t.sum() > 0.0 else p.copy()
        a = self.damping
        for _ in range(self.max_iterations):
            flow = np.bincount(dst_a, weights=w_a * t[src_a], minlength=size)
            nxt = (1.0 - a) * (flow + float(leftover @ t) * p) + a * p
            delta = float(np.abs(nxt - t).sum())
            t = nxt
            if delta < self.tolerance:
                break
        return {n: float(v) for n, v in zip(order, t, strict=True)}

    def rater_weight(self, rater: str, now_ms: int | None = None) -> float:
        """Belief in a rater, in [0, 1]: 1 for this node, else its global trust over the
        highest global trust."""
        return self._weight(rater, self.now_ms() if now_ms is None else now_ms)

    # --- signals ------------------------------------------------------------------------------

    def evidence(self, agent_id: str, now_ms: int | None = None) -> tuple[float, float] | None:
        """Trust-discounted, decayed evidence ``(r, s)`` about an agent (None: no ratings, on
        gossip or on the registry)."""
        parts = self.evidence_parts(agent_id, now_ms)
        return None if parts is None else parts.total

    def evidence_parts(self, agent_id: str, now_ms: int | None = None) -> EvidenceParts | None:
        """The evidence about an agent split by source (None: no ratings at all)."""
        raters = self._pairs.get(agent_id)
        paid = self._registry.get(agent_id)
        if not raters and not paid:
            return None
        now = self.now_ms() if now_ms is None else now_ms
        own = peers = (0.0, 0.0)
        for rater, pair in (raters or {}).items():
            factor = self._decay(now - pair.at_ms)
            w = self._weight(rater, now)
            r, s = discount(pair.r * factor, pair.s * factor, w)
            if rater == self.self_peer:
                own = (own[0] + r, own[1] + s)
            else:
                peers = (peers[0] + r, peers[1] + s)
        known, anonymous = self._registry_evidence(agent_id, now) if paid else ((0.0, 0.0),) * 2
        return EvidenceParts(own, peers, known, anonymous)

    def _weight(self, rater: str, now: int) -> float:
        """The belief in a rater node at ``now`` (1 for this node or without rater weighting)."""
        if rater == self.self_peer or not self.weigh_raters:
            return 1.0
        trust = self._global_trust(now)
        top = self._trust_top
        return min(1.0, trust.get(rater, 0.0) / top) if top > 0.0 else 0.0

    # --- the registry prior -------------------------------------------------------------------

    def set_registry(
        self,
        ratings: Iterable[PaidRating],
        linked: Mapping[str, str],
        escrows: Iterable[PaidEscrow] = (),
        agents_of: Mapping[str, Sequence[str]] | None = None,
    ) -> int:
        """Replace the registry prior with ``ratings`` (already proof-checked, see
        ``registry_prior``); ``linked`` maps paying accounts to the node owning them;
        ``escrows`` are expired escrows, and those of known accounts that no rating names are
        failures shared among ``agents_of[payee]`` (the payee's proven agents). Returns how
        many ratings and failures count."""
        self._version += 1  # known nodes' paid history feeds the local trust
        self._linked = {account.lower(): peer for account, peer in linked.items()}
        self._registry = {}
        self._registry_sums = {}
        self._registry_tasks = {}
        unit = self.registry_policy.stake_unit
        used = 0
        ratings = list(ratings)
        escrows = list(escrows)
        rated = {rating.escrow_id for rating in ratings}
        self._spent = {}
        paid: dict[str, tuple[str, str, int]] = {
            e.escrow_id: (e.rater, e.owner, e.amount) for e in escrows
        }
        paid.update({r.escrow_id: (r.rater, r.owner, r.amount) for r in ratings})
        for rater, owner, amount in paid.values():
            node = self._linked.get(owner.lower())
            if node is not None and rater.lower() not in self._linked and amount > 0:
                spent = self._spent.setdefault(rater.lower(), {})
                spent[node] = spent.get(node, 0) + amount
        for escrow in escrows:
            rater, owner = escrow.rater.lower(), escrow.owner.lower()
            node = self._linked.get(rater)
            agents = (agents_of or {}).get(owner, ())
            if escrow.escrow_id in rated or node is None or rater == owner or not agents:
                continue
            if node == self._linked.get(owner) or escrow.amount <= 0:
                continue  # the node paying itself
            for agent in agents:
                self._registry.setdefault(agent, {}).setdefault(rater, []).append(
                    (escrow.amount / unit / len(agents), 0.0, escrow.deadline_ms, None)
                )
            used += 1
        for rating in ratings:
            if not usable(rating, self._linked):
                continue
            per_agent = self._registry.setdefault(rating.agent, {})
            per_agent.setdefault(rating.rater.lower(), []).append(
                (rating.amount / unit, rating.score / 100.0, rating.at_ms, rating.task_id)
            )
            if rating.task_id is not None:
                self._registry_tasks.setdefault(rating.agent, set()).add(rating.task_id)
            used += 1
        return used

    def _forget_sums(self, agent_id: str, task_id: str) -> None:
        if task_id in self._registry_tasks.get(agent_id, ()):
            self._registry_sums.pop(agent_id, None)

    def registry_agents(self) -> list[str]:
        """Agents the registry prior holds paid ratings for."""
        return sorted(self._registry)

    def _registry_account_sums(self, agent_id: str) -> list[tuple[str, float, float, int]]:
        """Per paying account: capped evidence ``(r, s)`` decayed to the time of its latest
        rating, and that time; cached until the registry or the agent's gossip changes."""
        cached = self._registry_sums.get(agent_id)
        if cached is not None:
            return cached
        sums = []
        for account, entries in self._registry.get(agent_id, {}).items():
            # a task rated in gossip by a pre-trusted node (weight 1) is evidence once, from
            # gossip; from any other rater both copies count, each by its own rules
            fresh = [
                (mass, score, at)
                for mass, score, at, task in entries
                if task is None or (agent_id, task) not in self._gossip_tasks
            ]
            if fresh:
                latest = max(at for _, _, at in fresh)
                cap = self.registry_policy.rater_cap
                r, s = capped(fresh, cap, partial(self._age_decay, latest))
                sums.append((account, r, s, latest))
        self._registry_sums[agent_id] = sums
        return sums

    def _credibility(self, account: str, now: int) -> float:
        """How much an anonymous account counts, in [0, 1]: what it paid nodes this node
        believes in (amount x belief), in ``stake_unit``s. Paying its own colluders buys a
        sock puppet nothing; it must first pay trusted nodes for real."""
        unit = self.registry_policy.stake_unit
        spent = self._spent.get(account, {})
        return min(
            1.0, sum(amount * self._weight(node, now) for node, amount in spent.items()) / unit
        )

    def _registry_evidence(
        self, agent_id: str, now: int
    ) -> tuple[tuple[float, float], tuple[float, float]]:
        """(evidence from accounts of known nodes, by this node's belief in each node; the
        pool of accounts no node is known to own, each by its credibility, at the anonymous
        weight)."""
        known_r = known_s = pool_r = pool_s = 0.0
        for account, r, s, at in self._registry_account_sums(agent_id):
            factor = self._decay(now - at)
            r, s = r * factor, s * factor
            peer = self._linked.get(account)
            if peer is None:
                credit = self._credibility(account, now) if self.weigh_raters else 1.0
                pool_r, pool_s = pool_r + credit * r, pool_s + credit * s
                continue
            r, s = discount(r, s, self._weight(peer, now))
            known_r, known_s = known_r + r, known_s + s
        w_pool = self.registry_policy.anonymous_weight if self.weigh_raters else 1.0
        pooled = discount(pool_r, pool_s, w_pool) if pool_r + pool_s > 0.0 else (0.0, 0.0)
        return (known_r, known_s), pooled

    def raters(self, agent_id: str, now_ms: int | None = None) -> list[tuple[str, int, float]]:
        """Who rated an agent and how much each counts: ``(rater, ratings held, weight)``, the
        heaviest first (the "why" behind ``reputation``; the web view shows it)."""
        raters = self._pairs.get(agent_id, {})
        now = self.now_ms() if now_ms is None else now_ms
        rows = [(r, len(pair.keys), self.rater_weight(r, now)) for r, pair in raters.items()]
        return sorted(rows, key=lambda row: (-row[2], -row[1], row[0]))

    def reputation_at(self, agent_id: str, now_ms: int) -> float | None:
        evidence = self.evidence(agent_id, now_ms)
        return None if evidence is None else beta_mean(*evidence)

    def reputation(self, agent_id: str) -> float | None:
        """Trust-weighted Beta expectation in [0, 1], or None without any rating."""
        return self.reputation_at(agent_id, self.now_ms())

    def history(self, requester: str, agent_id: str) -> float | None:
        """Beta expectation of ``requester``'s own (decayed) ratings of the agent."""
        pair = self._pairs.get(agent_id, {}).get(requester)
        if pair is None:
            return None
        factor = self._decay(self.now_ms() - pair.at_ms)
        return beta_mean(pair.r * factor, pair.s * factor)

    def latency_ms(self, agent_id: str) -> float | None:
        """Exponentially weighted mean latency of the agent's receipts this node trusts."""
        observed = self._latency.get(agent_id)
        return None if observed is None else observed.mean

    def rating_count(self, agent_id: str | None = None) -> int:
        return len(self._ratings) if agent_id is None else self._counts.get(agent_id, 0)

    # --- persistence --------------------------------------------------------------------------

    def to_records(self) -> dict[str, Any]:
        """JSON-able state: the ratings held and the latency means (configuration is not
        included: it comes from the node's settings)."""
        ratings = sorted(self._ratings.values(), key=lambda x: (x.at_ms, x.rater, x.task_id))
        return {
            "v": RECORDS_VERSION,
            "now": self._now,
            "ratings": [
                {
                    "rater": x.rater,
                    "agent": x.agent,
                    "taskId": x.task_id,
                    "rating": x.rating,
                    "issuedAt": x.issued_at,
                    "atMs": x.at_ms,
                }
                for x in ratings
            ],
            "latency": [
                {"agent": agent, "meanMs": v.mean, "count": v.count}
                for agent, v in sorted(self._latency.items())
            ],
        }

    @classmethod
    def from_records(cls, records: dict[str, Any], self_peer: str, **config: Any) -> TrustModel:
        """Rebuild a model from :meth:`to_records` output (same configuration keywords as the
        constructor). Raises ValueError on a foreign or malformed record set."""
        if not isinstance(records, dict) or records.get("v") != RECORDS_VERSION:
            raise ValueError("not a trust record set of a known version")
        model = cls(self_peer, **config)
        try:
            model._now = int(records.get("now", 0))
            for raw in records.get("ratings", []):
                rating = _Rating(
                    rater=str(raw["rater"]),
                    agent=str(raw["agent"]),
                    task_id=str(raw["taskId"]),
                    rating=min(1.0, max(0.0, float(raw["rating"]))),
                    issued_at=int(raw["issuedAt"]),
                    at_ms=int(raw["atMs"]),
                )
                key = (rating.rater, rating.agent, rating.task_id)
                if rating.rater == node_of(rating.agent) or key in model._ratings:
                    continue
                model._add(rating)
                model._enforce_cap(rating.agent)
            for raw in records.get("latency", []):
                model._latency[str(raw["agent"])] = _Latency(
                    float(raw["meanMs"]), int(raw["count"])
                )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed trust records: {exc}") from exc
        model._version += 1
        return model
