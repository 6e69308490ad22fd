"""Feedback and Recruit under attack: an in-process Sybil and collusion simulation of the trust
model (``noosphere.mars.trust``: Beta reputation after Jøsang and Ismail 2002, rater trust after
EigenTrust, Kamvar et al. 2003).

The world: honest agents (success probability ~0.9) on honest nodes; free-riding agents (~0.2)
hosted by a colluding group of nodes (a configurable share of all raters, 30% by default) and
optionally by lone nodes that do not rate. Every round:

* a few honest nodes run a task with a random agent and gossip an honest rating;
* every colluder praises the other colluders' agents with rating 1.0, as often as it likes:
  the colluders own those agents' nodes, so they sign receipts for any fake task they want;
  it also tries to praise its own agents (dropped as self-ratings);
* every colluder runs a few REAL tasks with honest agents (the only way to get a receipt signed
  by an honest node) and rates them 0.0 whatever happened; with ``sign=True`` it also tries to
  forge receipts for honest agents, which verification rejects;
* the observed requester node recruits among all candidates (same skill) by top reputation with
  epsilon exploration or by Thompson sampling on the Beta, runs the task (success with the
  agent's quality), rates it honestly and records everything it received.

A node that just joined (``join_round`` > 0): the network runs for ``join_round`` rounds before
the observed requester comes online; it heard none of that gossip. What it can know at once is
its operator's pre-trusted peers (``trusted_peers`` honest nodes) and, with ``registry=True``,
the on-chain registry (``noosphere.mars.registry_prior``), which recorded every paid rating:
honest nodes rate completed paid tasks 100 (as noosphere does); colluders pay each other's
agents and rate them 100 (every paid task leaves an escrow on chain; one that was never rated
is, for a known node's account, a failure), and ``puppets_per_colluder`` sock-puppet accounts
(owned by no node) per colluder pay and praise the colluders' agents every round
(self-dealing: the payment comes back to the colluders); colluders also pay honest agents for
real and rate them 0 on chain.

With ``sign=False`` (the default, fast) feedback objects are built unsigned and the receipt rule
is enforced by construction (a receipt for an agent is only made by a task with it or by its own
node); ``sign=True`` signs and verifies every object for real (≈0.7 ms per feedback).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

from noosphere.protocol.a2a import TaskState
from noosphere.protocol.feedback import (
    Feedback,
    FeedbackError,
    TaskReceipt,
    sign_feedback,
    sign_receipt,
    verify_feedback,
)
from noosphere.protocol.identity import NodeKey
from noosphere.protocol.jws import sign_detached

from .registry_prior import TASK_URI_PREFIX, PaidEscrow, PaidRating, RegistryPolicy
from .trust import TrustModel

START_MS = 1_700_000_000_000
MAX_AGE_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class SimConfig:
    seed: int = 0
    tasks: int = 500  # tasks the observed requester runs (one per round)
    honest_agents: int = 10  # each on its own honest node; these nodes rate too
    colluders: int = 5  # fake nodes: 5 of 16 raters (self + 10 honest + 5) = 31%
    agents_per_colluder: int = 2
    lone_free_riders: int = 2  # free-riders on nodes that never rate
    honest_quality: tuple[float, float] = (0.85, 0.95)
    free_rider_quality: tuple[float, float] = (0.15, 0.25)
    policy: Literal["epsilon", "thompson"] = "epsilon"
    epsilon: float = 0.05
    honest_peer_tasks: int = 2  # tasks per round by other honest nodes, random agent
    praise_per_colluder: int = 6  # fabricated 1.0 ratings per colluder per round
    bash_tasks_per_colluder: int = 1  # real tasks per colluder per round with honest agents
    step_ms: int = 60_000
    sign: bool = False
    curve_every: int = 50
    trust_options: tuple[tuple[str, float], ...] = ()
    join_round: int = 0  # rounds the network runs before the observed requester comes online
    trusted_peers: int = 0  # honest nodes the observed requester's operator pre-trusts
    registry: bool = False  # the observed requester reads the on-chain registry prior
    registry_refresh: int = 10  # rounds between registry reads after joining
    puppets_per_colluder: int = 0  # sock-puppet requester accounts per colluder
    honest_price: int = 10
    free_rider_price: int = 5
    registry_policy: RegistryPolicy = field(default_factory=RegistryPolicy)


@dataclass(frozen=True, slots=True)
class SimAgent:
    agent_id: str
    node: str
    quality: float
    honest: bool
    latency_ms: int


@dataclass(slots=True)
class SimResult:
    config: SimConfig
    honest_picks: list[bool] = field(default_factory=list)
    recorded: int = 0  # feedback that changed the requester's evidence
    ignored: int = 0  # self-ratings and duplicates
    rejected: int = 0  # failed verification (forged receipts), sign=True only
    colluder_share: float = 0.0  # of all raters
    final_reputation: dict[str, float] = field(default_factory=dict)
    honest_ids: frozenset[str] = frozenset()
    colluder_trust: float = 0.0  # EigenTrust mass of the colluding nodes at the end
    max_colluder_weight: float = 0.0  # the highest rater weight any colluder reached at the end
    chain_ratings: int = 0  # paid ratings on the registry when the observed requester joined
    first_reputation: dict[str, float] = field(default_factory=dict)  # at joining, rated agents

    def honest_rate(self, start: int = 0, end: int | None = None) -> float:
        """Share of tasks ``start + 1 .. end`` (1-based, inclusive) given to honest agents."""
        window = self.honest_picks[start:end]
        return sum(window) / len(window) if window else 0.0

    def curve(self) -> list[tuple[int, float, float]]:
        """(tasks so far, honest share in the last block, honest share so far) every block."""
        every = self.config.curve_every
        return [
            (end, self.honest_rate(end - every, end), self.honest_rate(0, end))
            for end in range(every, len(self.honest_picks) + 1, every)
        ]

    def format_curve(self) -> str:
        lines = ["tasks  block  cumulative"]
        lines += [f"{n:5d}  {b:5.1%}  {c:10.1%}" for n, b, c in self.curve()]
        return "\n".join(lines)


class _World:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.keys: dict[str, NodeKey] = {}
        self.self_peer = self._new_node()
        self.honest_nodes = [self._new_node() for _ in range(config.honest_agents)]
        self.colluder_nodes = [self._new_node() for _ in range(config.colluders)]
        lone_nodes = [self._new_node() for _ in range(config.lone_free_riders)]
        self.agents: list[SimAgent] = []
        for node in self.honest_nodes:
            self.agents.append(self._agent(node, 0, honest=True))
        for node in self.colluder_nodes:
            for i in range(config.agents_per_colluder):
                self.agents.append(self._agent(node, i, honest=False))
        for node in lone_nodes:
            self.agents.append(self._agent(node, 0, honest=False))
        self.honest_agents = [a for a in self.agents if a.honest]
        self.by_node: dict[str, list[SimAgent]] = {}
        for agent in self.agents:
            self.by_node.setdefault(agent.node, []).append(agent)
        self.task_seq = 0

    def _new_node(self) -> str:
        key = NodeKey.from_seed(self.rng.randbytes(32))
        self.keys[key.peer_id] = key
        return key.peer_id

    def _agent(self, node: str, index: int, *, honest: bool) -> SimAgent:
        low, high = self.config.honest_quality if honest else self.config.free_rider_quality
        latency = self.rng.randint(800, 3000) if honest else self.rng.randint(100, 600)
        return SimAgent(f"{node}/agent-{index}", node, self.rng.uniform(low, high), honest, latency)

    def price(self, agent: SimAgent) -> int:
        return self.config.honest_price if agent.honest else self.config.free_rider_price

    def escrow(self, agent: SimAgent, account: str, now: int, task_id: str) -> PaidEscrow:
        """The escrow ``account`` opened to pay ``agent``'s node for one task."""
        owner = account_of(agent.node)
        return PaidEscrow(account, owner, self.price(agent), now, f"escrow-{task_id}")

    def paid(self, agent: SimAgent, account: str, score: int, now: int, task_id: str) -> PaidRating:
        """A rating on the registry: ``account`` paid ``agent``'s node through an escrow."""
        return PaidRating(
            agent=agent.agent_id,
            rater=account,
            owner=account_of(agent.node),
            score=score,
            amount=self.price(agent),
            at_ms=now,
            escrow_id=f"escrow-{task_id}",
            uri=TASK_URI_PREFIX + task_id,
        )

    def receipt(self, agent: SimAgent, requester: str, success: bool, now: int) -> TaskReceipt:
        """Only ever called for a task that ran, or by the agent's own node (colluders)."""
        self.task_seq += 1
        receipt = TaskReceipt(
            task_id=f"task-{self.task_seq}",
            agent=agent.agent_id,
            agent_peer=agent.node,
            requester=requester,
            state=TaskState.COMPLETED if success else TaskState.FAILED,
            issued_at=now,
            latency_ms=agent.latency_ms,
        )
        return sign_receipt(receipt, self.keys[agent.node]) if self.config.sign else receipt

    def forged_receipt(self, agent: SimAgent, forger: str, now: int) -> TaskReceipt:
        """A colluder's receipt for an honest agent, signed with the colluder's own key."""
        self.task_seq += 1
        receipt = TaskReceipt(
            task_id=f"forged-{self.task_seq}",
            agent=agent.agent_id,
            agent_peer=agent.node,
            requester=forger,
            state=TaskState.COMPLETED,
            issued_at=now,
            latency_ms=0,
        )
        protected, signature = sign_detached(receipt.signing_payload(), self.keys[forger])
        return receipt.model_copy(update={"protected": protected, "signature": signature})

    def feedback(self, receipt: TaskReceipt, rating: float, now: int) -> Feedback:
        feedback = Feedback(receipt=receipt, rating=rating, issued_at=now)
        if self.config.sign:
            return sign_feedback(feedback, self.keys[receipt.requester])
        return feedback

    def run_task(self, agent: SimAgent, requester: str, now: int) -> tuple[TaskReceipt, bool]:
        success = self.rng.random() < agent.quality
        return self.receipt(agent, requester, success, now), success


def account_of(node: str) -> str:
    """The ledger account of a simulated node (it owns its agents' registry entries)."""
    return f"acct-{node}".lower()


def simulate(config: SimConfig | None = None) -> SimResult:
    """Run the scenario; the result holds which recruitments went to honest agents."""
    config = config or SimConfig()
    world = _World(config)
    rng = world.rng
    pretrusted = world.honest_nodes[: config.trusted_peers]
    options: dict[str, Any] = dict(config.trust_options)  # checked by TrustModel's signature
    trust = TrustModel(
        world.self_peer, pretrusted=pretrusted, registry_policy=config.registry_policy, **options
    )
    raters = 1 + len(world.honest_nodes) + len(world.colluder_nodes)
    result = SimResult(config, colluder_share=len(world.colluder_nodes) / raters)
    result.honest_ids = frozenset(a.agent_id for a in world.honest_agents)
    chain: list[PaidRating] = []
    escrows: list[PaidEscrow] = []
    agents_of = {account_of(n): [a.agent_id for a in held] for n, held in world.by_node.items()}
    # nodes hosting agents own proven registry entries: their accounts are linked to them
    linked = {account_of(node): node for node in world.by_node}
    puppets = {
        colluder: [f"puppet-{colluder}-{i}".lower() for i in range(config.puppets_per_colluder)]
        for colluder in world.colluder_nodes
    }

    def deliver(feedback: Feedback, now: int) -> None:
        if config.sign:
            try:
                verify_feedback(feedback, now_ms=now, max_age_ms=MAX_AGE_MS)
            except FeedbackError:
                result.rejected += 1
                return
        if trust.record(feedback, now):
            result.recorded += 1
        else:
            result.ignored += 1

    colluder_agents = [a for a in world.agents if a.node in set(world.colluder_nodes)]
    for round_no in range(config.join_round + config.tasks):
        now = START_MS + round_no * config.step_ms
        online = round_no >= config.join_round
        inbox: list[Feedback] = []
        for _ in range(config.honest_peer_tasks):
            peer = rng.choice(world.honest_nodes)
            agent = rng.choice([a for a in world.agents if a.node != peer])
            receipt, success = world.run_task(agent, peer, now)
            inbox.append(world.feedback(receipt, 1.0 if success else 0.0, now))
            escrows.append(world.escrow(agent, account_of(peer), now, receipt.task_id))
            if success:  # only a released escrow can be rated on chain
                chain.append(world.paid(agent, account_of(peer), 100, now, receipt.task_id))
        for colluder in world.colluder_nodes:
            for _ in range(config.praise_per_colluder):
                agent = rng.choice(colluder_agents)  # may be its own: dropped as self-rating
                receipt = world.receipt(agent, colluder, True, now)
                inbox.append(world.feedback(receipt, 1.0, now))
                escrows.append(world.escrow(agent, account_of(colluder), now, receipt.task_id))
                chain.append(world.paid(agent, account_of(colluder), 100, now, receipt.task_id))
            for puppet in puppets[colluder]:
                agent = rng.choice(colluder_agents)
                task_id = f"puppet-{len(chain)}"
                escrows.append(world.escrow(agent, puppet, now, task_id))
                chain.append(world.paid(agent, puppet, 100, now, task_id))
            for _ in range(config.bash_tasks_per_colluder):
                agent = rng.choice(world.honest_agents)
                receipt, _ = world.run_task(agent, colluder, now)
                inbox.append(world.feedback(receipt, 0.0, now))
                escrows.append(world.escrow(agent, account_of(colluder), now, receipt.task_id))
                chain.append(world.paid(agent, account_of(colluder), 0, now, receipt.task_id))
            if config.sign:
                victim = rng.choice(world.honest_agents)
                forged = world.forged_receipt(victim, colluder, now)
                inbox.append(world.feedback(forged, 0.0, now))
        rng.shuffle(inbox)
        if not online:
            continue
        if config.registry and (
            round_no == config.join_round
            or (round_no - config.join_round) % config.registry_refresh == 0
        ):
            trust.set_registry(chain, linked, escrows, agents_of)
        if round_no == config.join_round:
            result.chain_ratings = len(chain) if config.registry else 0
            for agent in world.agents:
                value = trust.reputation_at(agent.agent_id, now)
                if value is not None:
                    result.first_reputation[agent.agent_id] = value
        for feedback in inbox:
            deliver(feedback, now)

        chosen = _recruit(world.agents, trust, now, config, rng)
        receipt, success = world.run_task(chosen, world.self_peer, now)
        result.honest_picks.append(chosen.honest)
        deliver(world.feedback(receipt, 1.0 if success else 0.0, now), now)
        escrows.append(world.escrow(chosen, account_of(world.self_peer), now, receipt.task_id))
        if success:
            chain.append(world.paid(chosen, account_of(world.self_peer), 100, now, receipt.task_id))

    end = START_MS + (config.join_round + config.tasks) * config.step_ms
    for agent in world.agents:
        value = trust.reputation_at(agent.agent_id, end)
        if value is not None:
            result.final_reputation[agent.agent_id] = value
    global_trust = trust.global_trust(end)
    result.colluder_trust = sum(global_trust.get(c, 0.0) for c in world.colluder_nodes)
    result.max_colluder_weight = max(trust.rater_weight(c, end) for c in world.colluder_nodes)
    return result


def _recruit(
    agents: list[SimAgent], trust: TrustModel, now: int, config: SimConfig, rng: random.Random
) -> SimAgent:
    if config.policy == "thompson":
        best, best_score = agents[0], -1.0
        for agent in agents:
            r, s = trust.evidence(agent.agent_id, now) or (0.0, 0.0)
            score = rng.betavariate(r + 1.0, s + 1.0)
            if score > best_score:
                best, best_score = agent, score
        return best
    if rng.random() < config.epsilon:
        return rng.choice(agents)
    scored = []
    for agent in agents:
        value = trust.reputation_at(agent.agent_id, now)
        scored.append((0.5 if value is None else value, rng.random(), agent))
    return max(scored, key=lambda x: (x[0], x[1]))[2]
