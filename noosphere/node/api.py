"""Discover (node API): the ``noosphere.node.status``, ``noosphere.peers``, ``noosphere.cards.list``
and ``noosphere.cards.get`` JSON-RPC methods, read-only views of the node's state (``NodeView``:
exactly the parts of the node they read)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from noosphere import __version__
from noosphere.errors import CardNotFound
from noosphere.models.embedding import shared_embedder
from noosphere.protocol import AgentCard, card_id
from noosphere.protocol.api import (
    AgentSummary,
    CardArrival,
    CardArrivalsParams,
    CardEntry,
    CardsGetParams,
    CardsListParams,
    EmptyParams,
    NodeStatus,
    PeerEntry,
)

from .gossip import now_ms
from .store import StoredCard

if TYPE_CHECKING:
    from .cards import CardIndex
    from .p2p import PeerView
    from .peers import PeerBook
    from .rpc import CallContext, JsonRpcDispatcher
    from .runtime import NodeRuntime


class Connections(Protocol):
    """The libp2p host, as far as the status and peer views look at it."""

    async def connected_peers(self) -> list[PeerView]: ...


class TaskLoad(Protocol):
    """How busy the task manager is."""

    @property
    def running(self) -> int: ...

    @property
    def queue_depth(self) -> int: ...


@dataclass(frozen=True)
class NodeView:
    """What the node API reads: the node's facts, its agents (id, name), its ledger account,
    card index and peer book, its live connections, how busy its task manager is, and the
    reputation its trust model gives a card."""

    runtime: NodeRuntime
    started_at: float
    agents: list[tuple[str, str]]
    evm_address: str | None
    cards: CardIndex
    peers: PeerBook
    connections: Connections
    tasks: TaskLoad
    reputation: Callable[[str], float | None]


def card_entry(stored: StoredCard, *, full: bool, reputation: float | None = None) -> CardEntry:
    card = AgentCard.model_validate(stored.card)
    ext = card.noosphere()
    return CardEntry(
        card_id=stored.card_id,
        peer_id=stored.peer_id,
        agent_id=stored.agent_id,
        name=card.name,
        description=card.description,
        skills=[s.name for s in card.skills],
        price=f"{ext.price.amount} {ext.price.token}/{ext.price.unit}",
        attributes=ext.attributes,
        seq=stored.seq,
        issued_at=ext.issued_at,
        expires_at=stored.expires_at,
        received_at=stored.received_at,
        local=stored.local,
        reputation=reputation,
        card=stored.card if full else None,
    )


def register_node_api(dispatcher: JsonRpcDispatcher, node: NodeView) -> None:
    async def status(_: EmptyParams, __: CallContext) -> NodeStatus:
        runtime = node.runtime
        now = now_ms()
        return NodeStatus(
            peer_id=runtime.peer_id,
            name=runtime.name,
            version=__version__,
            multiaddrs=runtime.multiaddrs,
            rpc_url=runtime.rpc_url,
            uptime_s=round(time.monotonic() - node.started_at, 3),
            peers_connected=len(await node.connections.connected_peers()),
            cards_known=node.cards.count(now),
            agents=[  # whether or not their cards are published yet
                AgentSummary(
                    card_id=card_id(runtime.peer_id, agent_id), agent_id=agent_id, name=name
                )
                for agent_id, name in node.agents
            ],
            models_loaded=shared_embedder().loaded,
            tasks_running=node.tasks.running,
            tasks_queued=node.tasks.queue_depth,
            evm_address=node.evm_address,
        )

    async def peers(_: EmptyParams, __: CallContext) -> list[PeerEntry]:
        connected = {p.peer_id: p for p in await node.connections.connected_peers()}
        now = now_ms()
        for view in connected.values():
            node.peers.seen(view.peer_id, [], now)
        cards_per_peer = node.cards.counts_by_owner(now)
        return [
            PeerEntry(
                peer_id=p.peer_id,
                addrs=p.addrs or (connected[p.peer_id].addrs if p.peer_id in connected else []),
                connected=p.peer_id in connected,
                first_seen=p.first_seen,
                last_seen=p.last_seen,
                cards=cards_per_peer.get(p.peer_id, 0),
            )
            for p in node.peers.list()
            if p.peer_id != node.runtime.peer_id
        ]

    async def cards_list(params: CardsListParams, _: CallContext) -> list[CardEntry]:
        stored = node.cards.list(now_ms(), offset=params.offset, limit=params.limit)
        return [
            card_entry(c, full=params.full, reputation=node.reputation(c.card_id)) for c in stored
        ]

    async def cards_get(params: CardsGetParams, _: CallContext) -> CardEntry:
        stored = node.cards.get(params.id, now_ms())
        if stored is None:
            matches = node.cards.with_prefix(params.id, now_ms(), limit=2)
            if not matches:
                raise CardNotFound(f"no card with id {params.id!r}")
            if len(matches) > 1:
                raise CardNotFound(
                    f"card id prefix {params.id!r} matches several cards; give more",
                )
            stored = matches[0]
        return card_entry(stored, full=True, reputation=node.reputation(stored.card_id))

    dispatcher.register("noosphere.node.status", EmptyParams, status)
    dispatcher.register("noosphere.peers", EmptyParams, peers)
    dispatcher.register("noosphere.cards.list", CardsListParams, cards_list)

    async def cards_arrivals(params: CardArrivalsParams, _: CallContext) -> list[CardArrival]:
        fresh = [a for a in node.cards.arrivals if a.received_at > params.since]
        return fresh[: params.limit]

    dispatcher.register("noosphere.cards.get", CardsGetParams, cards_get)
    dispatcher.register("noosphere.cards.arrivals", CardArrivalsParams, cards_arrivals)
