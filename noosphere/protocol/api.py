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
    evm_address: str | None = None  # the node's ledger account (None: no ledger configured)


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
    reputation: float | None = None  # this node's trust in the agent (None: no ratings yet)
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


class SubmitParams(WireModel):
    """``noosphere.tasks.submit``: recruit, pay, run, settle and rate one task (operator only)."""

    task: str = Field(min_length=1, max_length=20_000)
    data: list[Any] = Field(default_factory=list, max_length=16)  # extra JSON data parts
    policy: str | None = Field(None, max_length=8192)  # seal the parts under this ABE policy
    issuer: str | None = None  # which configured authority seals (default: the first)
    budget: int | None = Field(None, ge=0)  # the most this task may cost
    required_tags: list[str] = Field(default_factory=list, max_length=32)
    max_attempts: int = Field(3, ge=1, le=10)  # agents tried before giving up
    deadline_s: int | None = Field(None, ge=10, le=30 * 86_400)  # escrow deadline from now
    solicit_bids_ms: int = Field(0, ge=0, le=10_000)


class SubmissionEvent(WireModel):
    at_ms: int  # since the submission was created
    phase: str  # recruit | pay | execute | settle | feedback | done
    text: str


class SubmissionAttempt(WireModel):
    agent: str  # card id
    name: str
    rpc_url: str
    price: int
    score: float
    escrow_id: str | None = None
    task_id: str | None = None
    state: str = "starting"  # starting | running | completed | failed | rejected | unreachable
    reason: str = ""
    payment: str = "none"  # none | open | released | refund pending | refunded | ...


class Submission(WireModel):
    id: str
    state: str  # running | completed | failed
    task: str
    created_at: int  # unix ms
    updated_at: int
    events: list[SubmissionEvent] = Field(default_factory=list)
    attempts: list[SubmissionAttempt] = Field(default_factory=list)
    winner: str | None = None  # card id of the agent whose result was accepted
    result: dict[str, Any] | None = None  # the completed A2A task
    paid: str = "0"  # smallest token unit released to the winner
    timings_ms: dict[str, float] = Field(default_factory=dict)  # per phase
    reputation: dict[str, float | None] = Field(default_factory=dict)  # winner: before, after
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.state != "running"


class SubmissionGetParams(WireModel):
    id: str = Field(min_length=1, max_length=128)


class LedgerStatus(WireModel):
    """``noosphere.ledger.status``: this node's account on the ledger."""

    address: str
    chain_id: int
    balance: str
    token: str
    escrow: str
    registry_ids: dict[str, int] = Field(default_factory=dict)  # agent id -> registry id
    payments: list[dict[str, Any]] = Field(default_factory=list)
