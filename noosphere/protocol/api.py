"""Wire formats (node API): results of the ``noosphere.*`` JSON-RPC methods, shared by the node's
server and the client, so neither side passes loose dicts around."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from .base import WireModel
from .feedback import TaskReceipt


class AgentSummary(WireModel):
    card_id: str
    agent_id: str
    name: str


class NodeStatus(WireModel):
    peer_id: str
    name: str
    version: str
    multiaddrs: list[str]
    rpc_url: str
    uptime_s: float
    peers_connected: int
    cards_known: int
    agents: list[AgentSummary] = Field(default_factory=list)
    models_loaded: bool = False  # the embedding model is in memory (first task will be fast)
    tasks_running: int = 0
    tasks_queued: int = 0


class PeerEntry(WireModel):
    peer_id: str
    addrs: list[str]
    connected: bool
    first_seen: int
    last_seen: int
    cards: int


class CardEntry(WireModel):
    card_id: str
    peer_id: str
    agent_id: str
    name: str
    description: str
    skills: list[str]
    price: str
    attributes: list[str]
    seq: int
    issued_at: int
    expires_at: int
    received_at: int
    local: bool
    card: dict[str, Any] | None = None


class CardArrival(WireModel):
    """When this node first stored one version of a card (for propagation measurements)."""

    card_id: str
    seq: int
    issued_at: int
    received_at: int


class CardArrivalsParams(WireModel):
    since: int = Field(0, ge=0, description="only arrivals received after this unix ms")
    limit: int = Field(10_000, ge=1, le=100_000)


class CardsListParams(WireModel):
    limit: int = Field(1000, ge=1, le=10_000)
    offset: int = Field(0, ge=0)
    full: bool = False


class CardsGetParams(WireModel):
    id: str = Field(min_length=1, max_length=200)


class EmptyParams(WireModel):
    pass


class RecruitParams(WireModel):
    """``noosphere.recruit``: rank the agents this node knows for a task."""

    task: str = Field(min_length=1, max_length=20_000)
    top: int = Field(5, ge=1, le=100)
    candidates: int = Field(50, ge=1, le=1000)
    required_tags: list[str] = Field(default_factory=list, max_length=32)
    input_modes: list[str] = Field(default_factory=list, max_length=32)
    output_modes: list[str] = Field(default_factory=list, max_length=32)
    max_price: int | None = Field(None, ge=0)
    policy: str | None = Field(None, max_length=8192)
    trusted_issuers: list[str] | None = None
    stages: list[str] = Field(default_factory=lambda: ["vector", "filter", "rank"])
    solicit_bids_ms: int = Field(
        0, ge=0, le=10_000, description="gossip the task and wait this long for bids first"
    )


class RecruitChoice(WireModel):
    card_id: str
    name: str
    peer_id: str
    rpc_url: str
    tenant: str | None = None
    price: int
    score: float
    vector: float  # stage 1 cosine
    relevance: float  # stage 2 re-scored similarity
    features: dict[str, float] = Field(default_factory=dict)  # stage 3, each in [0, 1]
    explanation: str = ""


class RecruitRejection(WireModel):
    card_id: str
    name: str
    vector: float
    reason: str


class RecruitReply(WireModel):
    chosen: list[RecruitChoice]
    rejected: list[RecruitRejection]
    timings_ms: dict[str, float]
    filter_mode: str
    cards_indexed: int
    bids: int = 0  # agents that answered a gossiped request


class FeedbackParams(WireModel):
    """``noosphere.feedback``: rate a task this node requested (operator only)."""

    receipt: TaskReceipt  # from the task's metadata.noosphere.receipt (signed by the agent)
    rating: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    comment: str | None = Field(None, max_length=280)


class FeedbackReply(WireModel):
    recorded: bool
    agent: str
    reputation: float | None
