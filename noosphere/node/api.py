"""Discover (node API): the ``noosphere.node.status``, ``noosphere.peers``, ``noosphere.cards.list``
and ``noosphere.cards.get`` JSON-RPC methods, read-only views of the node's state."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from noosphere import __version__
from noosphere.models.embedding import shared_embedder
from noosphere.protocol import AgentCard, ErrorCode, RpcError, card_id
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
    from .daemon import Node
    from .rpc import CallContext, JsonRpcDispatcher


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


def register_node_api(dispatcher: JsonRpcDispatcher, node: Node) -> None:
    async def status(_: EmptyParams, __: CallContext) -> NodeStatus:
        runtime = node.runtime
        assert runtime is not None
        now = now_ms()
        return NodeStatus(
            peer_id=runtime.peer_id,
            name=runtime.name,
            version=__version__,
            multiaddrs=runtime.multiaddrs,
            rpc_url=runtime.rpc_url,
            uptime_s=round(time.monotonic() - node.started_at, 3),
            peers_connected=len(await node.p2p.connected_peers()),
            cards_known=node.cards.count(now),
            agents=[  # whether or not their cards are published yet
                AgentSummary(
                    card_id=card_id(runtime.peer_id, spec.id), agent_id=spec.id, name=spec.name
                )
                for spec in node.specs
            ],
            models_loaded=shared_embedder().loaded,
            tasks_running=node.tasks.running,
            tasks_queued=node.tasks.queue_depth,
            evm_address=node.settlement.address if node.settlement is not None else None,
        )

    async def peers(_: EmptyParams, __: CallContext) -> list[PeerEntry]:
        connected = {p.peer_id: p for p in await node.p2p.connected_peers()}
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
            if p.peer_id != node.key.peer_id
        ]

    async def cards_list(params: CardsListParams, _: CallContext) -> list[CardEntry]:
        stored = node.cards.list(now_ms(), offset=params.offset, limit=params.limit)
        trust = node.feedback.trust
        return [
            card_entry(c, full=params.full, reputation=trust.reputation(c.card_id)) for c in stored
        ]

    async def cards_get(params: CardsGetParams, _: CallContext) -> CardEntry:
        stored = node.cards.get(params.id, now_ms())
        if stored is None:
            matches = node.cards.with_prefix(params.id, now_ms(), limit=2)
            if not matches:
                raise RpcError(ErrorCode.CARD_NOT_FOUND, f"no card with id {params.id!r}")
            if len(matches) > 1:
                raise RpcError(
                    ErrorCode.CARD_NOT_FOUND,
                    f"card id prefix {params.id!r} matches several cards; give more",
                )
            stored = matches[0]
        return card_entry(
            stored, full=True, reputation=node.feedback.trust.reputation(stored.card_id)
        )

    dispatcher.register("noosphere.node.status", EmptyParams, status)
    dispatcher.register("noosphere.peers", EmptyParams, peers)
    dispatcher.register("noosphere.cards.list", CardsListParams, cards_list)

    async def cards_arrivals(params: CardArrivalsParams, _: CallContext) -> list[CardArrival]:
        fresh = [a for a in node.cards.arrivals if a.received_at > params.since]
        return fresh[: params.limit]

    dispatcher.register("noosphere.cards.get", CardsGetParams, cards_get)
    dispatcher.register("noosphere.cards.arrivals", CardArrivalsParams, cards_arrivals)
