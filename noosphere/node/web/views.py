"""All six phases (web view): the read models behind the view's own endpoints, built from the
node's state: the peer graph and gossip health (Discover), why an agent has its reputation
(Feedback), tasks and submissions with their escrows and sealed parts (Execute, Settle) and the
orchestrator's pool (Execute). Pure reads; nothing here changes the node."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from prometheus_client import Counter

from noosphere.abe.encoding import EncodingError
from noosphere.abe.envelope import MEDIA_TYPE as SEALED_MEDIA_TYPE
from noosphere.abe.envelope import EnvelopeError, read_header
from noosphere.abe.keys import AttributeKey
from noosphere.abe.sealed import SealedPartError, open_message
from noosphere.mars.trust import TrustModel
from noosphere.node.store import NodeStore, StoredPayment, StoredPeer, StoredTask
from noosphere.protocol.a2a import Message

from .models import (
    GossipHealth,
    GraphEdge,
    GraphNode,
    NetworkView,
    OrchestratorState,
    RaterWeight,
    ReputationView,
    ReputationWhy,
    ScalingDecision,
    WorkerLoad,
)

#: Messages of a task's history shown (the newest); a long conversation is cut from the start.
HISTORY_SHOWN = 20
#: Runs of identical decisions of an orchestrator shown (the newest).
DECISIONS_SHOWN = 50


# ---- Discover: peers and gossip -----------------------------------------------------------------


def peer_graph(
    own_peer_id: str,
    connected: Iterable[str],
    known: Sequence[StoredPeer],
    cards_by_owner: dict[str, int],
    relays: Iterable[tuple[str, str, int]],
) -> tuple[list[GraphNode], list[GraphEdge]]:
    """Nodes: this one, every peer it knows and every relay or owner of a card it holds. Edges:
    this node's connections, and "relayed" from a peer that passed on another's cards (so that
    peer had heard from the owner). Nothing else about who connects to whom is visible here."""
    connected_set = set(connected) - {own_peer_id}
    nodes: dict[str, GraphNode] = {
        own_peer_id: GraphNode(
            peer_id=own_peer_id, self_node=True, cards=cards_by_owner.get(own_peer_id, 0)
        )
    }
    for peer in [p.peer_id for p in known] + sorted(connected_set):
        if peer not in nodes:
            nodes[peer] = GraphNode(
                peer_id=peer, connected=peer in connected_set, cards=cards_by_owner.get(peer, 0)
            )
    edges = [
        GraphEdge(source=own_peer_id, target=p, kind="connected") for p in sorted(connected_set)
    ]
    for via, owner, count in relays:
        for peer in (via, owner):
            if peer not in nodes:
                nodes[peer] = GraphNode(peer_id=peer, cards=cards_by_owner.get(peer, 0))
        edges.append(GraphEdge(source=via, target=owner, kind="relayed", cards=count))
    return list(nodes.values()), edges


def counter_values(counter: Counter, label: str) -> dict[str, float]:
    """A labelled prometheus counter as ``{label value: count}``."""
    values: dict[str, float] = {}
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and label in sample.labels:
                values[sample.labels[label]] = sample.value
    return values


def gossip_health(metrics: Any, limited: list[tuple[str, float]]) -> GossipHealth:
    """Envelopes accepted by kind and rejected by reason (``NodeMetrics``), and the senders that
    are over their rate limit now (``GossipRouter.limited_senders``)."""
    overflow = sum(
        s.value
        for family in metrics.inbound_overflow.collect()
        for s in family.samples
        if s.name.endswith("_total")
    )
    return GossipHealth(
        accepted=counter_values(metrics.envelopes_accepted, "kind"),
        rejected=counter_values(metrics.envelopes_rejected, "reason"),
        inbound_overflow=overflow,
        rate_limited_senders=[
            {"peerId": peer, "tokens": round(tokens, 3)} for peer, tokens in limited[:100]
        ],
    )


async def network_view(node: Any) -> NetworkView:
    """The Network page's graph and gossip health, read from a running ``Node``."""
    now = time.time_ns() // 1_000_000
    connected = [p.peer_id for p in await node.p2p.connected_peers()]
    store: NodeStore = node.store
    nodes, edges = peer_graph(
        node.key.peer_id,
        connected,
        node.peers.list(),
        store.card_counts_by_owner(now_ms=now),
        store.card_relays(now_ms=now),
    )
    return NetworkView(
        peer_id=node.key.peer_id,
        nodes=nodes,
        edges=edges,
        gossip=gossip_health(node.metrics, node.gossip.limited_senders()),
    )


# ---- Feedback: reputation and why ---------------------------------------------------------------


def reputation_view(trust: TrustModel, card_ids: Iterable[str]) -> ReputationView:
    """For every card with ratings: evidence, rating count, mean latency and rater weights."""
    now = trust.now_ms()
    agents = []
    for card_id in card_ids:
        evidence = trust.evidence(card_id, now)
        if evidence is None:
            continue
        latency = trust.latency_ms(card_id)
        agents.append(
            ReputationWhy(
                card_id=card_id,
                reputation=trust.reputation_at(card_id, now),
                positive=round(evidence[0], 4),
                negative=round(evidence[1], 4),
                ratings=trust.rating_count(card_id),
                latency_ms=None if latency is None else round(latency, 1),
                raters=[
                    RaterWeight(rater=rater, ratings=count, weight=round(weight, 4))
                    for rater, count, weight in trust.raters(card_id, now)
                ],
            )
        )
    return ReputationView(agents=agents)


# ---- Execute: parts, sealed or not --------------------------------------------------------------


def describe_part(part: dict[str, Any]) -> dict[str, Any]:
    """A part as the view shows it: text and data as they are; a sealed part as its header
    (policy, authority, key epoch), never its ciphertext; other bytes by size only."""
    media_type = part.get("mediaType")
    raw = part.get("raw")
    if raw is None:
        return {k: v for k, v in part.items() if k in ("text", "data", "url", "mediaType")}
    try:
        payload = base64.b64decode(raw, validate=False)
    except (binascii.Error, ValueError):
        payload = b""
    if media_type != SEALED_MEDIA_TYPE:
        return {"bytes": len(payload), "mediaType": media_type, "filename": part.get("filename")}
    try:
        header = read_header(payload)
    except (EnvelopeError, EncodingError) as exc:
        return {"sealed": {"error": f"malformed sealed part: {exc}"}, "bytes": len(payload)}
    return {
        "sealed": {
            "policy": str(header.policy),
            "authority": header.authority,
            "epoch": header.epoch,
        },
        "bytes": len(payload),
    }


def describe_message(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "role": message.get("role"),
        "messageId": message.get("messageId"),
        "parts": [describe_part(p) for p in message.get("parts", [])],
    }


def open_described(message: dict[str, Any], keys: Sequence[AttributeKey]) -> dict[str, Any]:
    """``describe_message`` after opening its sealed parts with this node's attribute keys
    (in memory): opened parts are marked ``openedHere``; a part the keys cannot open stays
    sealed, with the reason."""
    described = describe_message(message)
    if not any("sealed" in p for p in described["parts"]):
        return described
    try:
        opened = open_message(Message.model_validate(message), keys)
    except SealedPartError as exc:
        for part in described["parts"]:
            if "sealed" in part:
                part["sealed"]["cannotOpen"] = str(exc)
        return described
    except ValueError:  # not a valid A2A message after all
        return described
    parts = [describe_part(p.to_wire()) for p in opened.parts]
    for part in parts:
        part["openedHere"] = True
    return {**described, "parts": parts}


def payment_view(payment: StoredPayment) -> dict[str, Any]:
    return {
        "escrowId": payment.escrow_id,
        "role": payment.role,
        "taskId": payment.task_id,
        "state": payment.state,
        "updatedAt": payment.updated_at,
        **{k: v for k, v in payment.payment.items() if k not in ("escrowId", "role", "state")},
    }


def task_view(
    row: StoredTask,
    payments: Sequence[StoredPayment] = (),
    keys: Sequence[AttributeKey] | None = None,
) -> dict[str, Any]:
    """An A2A task served by this node's agents: state, who asked, its conversation and
    artifacts (sealed parts described, or opened when ``keys`` are given and suffice), and the
    escrows that pay for it."""
    task = row.task
    status = task.get("status", {})
    history = task.get("history", [])[-HISTORY_SHOWN:]

    def show(message: dict[str, Any]) -> dict[str, Any]:
        return describe_message(message) if keys is None else open_described(message, keys)

    metadata = task.get("metadata") or {}
    return {
        "id": row.task_id,
        "agentId": row.agent_id,
        "contextId": row.context_id,
        "principal": row.principal,
        "state": row.state,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
        "status": {
            "state": status.get("state"),
            "timestamp": status.get("timestamp"),
            "message": show(status["message"]) if status.get("message") else None,
        },
        "history": [show(m) for m in history],
        "historyTotal": len(task.get("history", [])),
        "artifacts": [
            {
                "name": a.get("name"),
                "artifactId": a.get("artifactId"),
                "parts": [describe_part(p) for p in a.get("parts", [])],
            }
            for a in task.get("artifacts", [])
        ],
        "receipt": (metadata.get("noosphere") or {}).get("receipt"),
        "payments": [payment_view(p) for p in payments],
    }


def submission_view(body: dict[str, Any], payments: Sequence[StoredPayment] = ()) -> dict[str, Any]:
    """A submission as stored, its result's parts described, and the current state of each
    escrow it opened (the ledger's word, newer than the attempt's ``payment`` note)."""
    view = dict(body)
    result = body.get("result")
    if isinstance(result, dict):
        view["result"] = {
            "id": result.get("id"),
            "status": {
                "state": (result.get("status") or {}).get("state"),
                "message": describe_message(result["status"]["message"])
                if (result.get("status") or {}).get("message")
                else None,
            },
            "artifacts": [
                {"name": a.get("name"), "parts": [describe_part(p) for p in a.get("parts", [])]}
                for a in result.get("artifacts", [])
            ],
        }
    view["escrows"] = {p.escrow_id: payment_view(p) for p in payments}
    return view


# ---- Execute: the orchestrator's pool -----------------------------------------------------------


def _gauge_by_worker(gauge: Any) -> dict[str, float]:
    values: dict[str, float] = {}
    for family in gauge.collect():
        for sample in family.samples:
            worker = sample.labels.get("worker")
            if worker is not None:
                values[worker] = sample.value
    return values


def _gauge_value(gauge: Any) -> float:
    for family in gauge.collect():
        for sample in family.samples:
            return float(sample.value)
    return 0.0


@runtime_checkable
class ScalingAgent(Protocol):
    """What the page reads of an orchestrator agent (``noosphere.orchestration``, a layer above
    the node, so it is recognised by shape rather than imported)."""

    agent_id: str
    stats: Any  # its prometheus gauges
    decisions: Any  # its recent scaling decisions, oldest first


def orchestrator_state(agent: ScalingAgent) -> OrchestratorState:
    """One ``OrchestratorAgent``: replicas, queue, per-worker load and its last decisions."""
    stats = agent.stats
    queued = _gauge_by_worker(stats.worker_queue)
    running = _gauge_by_worker(stats.worker_running)
    inflight = _gauge_by_worker(stats.worker_inflight)
    utilization = _gauge_by_worker(stats.worker_utilization)
    ready = _gauge_by_worker(stats.worker_ready)
    names = sorted({*queued, *running, *inflight, *ready})
    offset = time.time() - time.monotonic()  # decisions carry monotonic times
    decisions = list(agent.decisions)[::-1]  # newest first
    last = decisions[0] if decisions else None
    runs: list[ScalingDecision] = []
    for d in decisions:
        key = (d.direction, d.code, d.current, d.desired, d.recommended, d.reason)
        previous = runs[-1] if runs else None
        if previous is not None and key == (
            previous.direction,
            previous.code,
            previous.current,
            previous.desired,
            previous.recommended,
            previous.reason,
        ):
            runs[-1] = previous.model_copy(
                update={"since": round(d.at + offset, 3), "repeated": previous.repeated + 1}
            )
            continue
        if len(runs) == DECISIONS_SHOWN:
            break
        runs.append(
            ScalingDecision(
                at=round(d.at + offset, 3),
                since=round(d.at + offset, 3),
                current=d.current,
                desired=d.desired,
                recommended=d.recommended,
                direction=d.direction,
                code=d.code,
                reason=d.reason,
                inputs={k: round(v, 4) for k, v in d.inputs.items()},
            )
        )
    return OrchestratorState(
        agent_id=agent.agent_id,
        replicas_current=last.current if last else int(_gauge_value(stats.replicas_current)),
        replicas_desired=last.desired if last else int(_gauge_value(stats.replicas_desired)),
        waiting=_gauge_value(stats.waiting),
        backlog=_gauge_value(stats.backlog),
        workers=[
            WorkerLoad(
                name=name,
                queued=queued.get(name, 0.0),
                running=running.get(name, 0.0),
                inflight=inflight.get(name, 0.0),
                utilization=utilization.get(name),
                ready=ready.get(name, 0.0) >= 1.0,
            )
            for name in names
        ],
        decisions=runs,
    )
