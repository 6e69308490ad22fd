"""All six phases (web view): what the view's own JSON endpoints answer (camelCase on the wire,
like the JSON-RPC API). Everything else the page reads comes from the JSON-RPC methods."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from noosphere.protocol.base import WireModel


class GraphNode(WireModel):
    peer_id: str
    self_node: bool = False  # this node
    connected: bool = False  # connected to this node now
    cards: int = 0  # its cards this node holds


class GraphEdge(WireModel):
    source: str
    target: str
    kind: str  # "connected": this node's libp2p connection; "relayed": source passed on cards
    cards: int = 0  # of target (relayed only)


class GossipHealth(WireModel):
    accepted: dict[str, float] = Field(default_factory=dict)  # by envelope kind
    rejected: dict[str, float] = Field(default_factory=dict)  # by reason (every reason listed)
    inbound_overflow: float = 0.0
    rate_limited_senders: list[dict[str, Any]] = Field(default_factory=list)  # {peerId, tokens}


class NetworkView(WireModel):
    """``GET /ui/api/network``: the peer graph as far as this node sees it, and gossip health."""

    peer_id: str
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    gossip: GossipHealth


class RaterWeight(WireModel):
    rater: str
    ratings: int
    weight: float  # in [0, 1]: how much this node believes the rater


class ReputationWhy(WireModel):
    card_id: str
    reputation: float | None
    positive: float  # trust-weighted, decayed evidence r
    negative: float  # and s
    ratings: int
    latency_ms: float | None = None
    raters: list[RaterWeight] = Field(default_factory=list)


class ReputationView(WireModel):
    """``GET /ui/api/reputation``: why each rated agent has the reputation it has here."""

    agents: list[ReputationWhy]


class WorkerLoad(WireModel):
    name: str
    queued: float = 0.0
    running: float = 0.0
    inflight: float = 0.0
    utilization: float | None = None
    ready: bool = False


class ScalingDecision(WireModel):
    """One decision, or a run of identical ones (``repeated`` in a row, the first at ``since``)."""

    at: float  # unix seconds (the newest of the run)
    since: float  # the oldest of the run
    repeated: int = 1
    current: int
    desired: int
    recommended: int
    direction: str
    code: str
    reason: str
    inputs: dict[str, float] = Field(default_factory=dict)


class OrchestratorState(WireModel):
    agent_id: str
    replicas_current: int
    replicas_desired: int
    waiting: float
    backlog: float
    workers: list[WorkerLoad]
    decisions: list[ScalingDecision]  # newest first, identical neighbours merged


class OrchestratorView(WireModel):
    """``GET /ui/api/orchestrator``: every orchestrator agent on this node (none: empty)."""

    orchestrators: list[OrchestratorState]
