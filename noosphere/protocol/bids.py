"""Wire formats (Recruit): open calls for agents. A requester can gossip a task request on the
tasks topic so that agents it has never heard of can bid; a bid travels back to the requester
over libp2p (a ``/noosphere/bid/1`` stream: the request body is the ``Bid``, the reply a
``BidAck``; the connection authenticates the bidder) and carries the bidder's signed card, so it
enters the same filter and ranking as the cards learned by gossip. A requester also accepts bids
by JSON-RPC (``noosphere.bid``, signed by the bidding node)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from .base import WireModel

MAX_TASK_TEXT = 4000
BID_PROTOCOL = "/noosphere/bid/1"
MAX_BID_BYTES = 256 * 1024  # one bid: the signed card and a few fields
MAX_BID_ACK_BYTES = 4096


class TaskRequest(WireModel):
    """Body of a ``task`` gossip envelope; the envelope's sender is the requester."""

    request_id: str = Field(min_length=8, max_length=64)
    task: str = Field(min_length=1, max_length=MAX_TASK_TEXT)
    required_tags: list[str] = Field(default_factory=list, max_length=32)
    max_price: int | None = Field(None, ge=0)
    policy: str | None = Field(None, max_length=8192)
    # The requester's JSON-RPC URL, for bidders that bid by JSON-RPC. Nodes never send to it
    # (a requester could name any address): they bid over libp2p to the envelope's sender.
    reply_to: str = Field(min_length=1, max_length=512)
    expires_at: int = Field(ge=0)  # unix ms; bids after this are refused


class Bid(WireModel):
    """``noosphere.bid`` params: one agent offering to do a gossiped task."""

    request_id: str = Field(min_length=8, max_length=64)
    card: dict[str, Any]  # the agent's signed A2A card (its node must be the caller)
    relevance: float = Field(ge=-1, le=1)  # the bidder's own estimate, shown, not trusted


class BidAck(WireModel):
    accepted: bool
    reason: str = ""
