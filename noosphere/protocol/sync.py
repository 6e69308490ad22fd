"""Wire formats (Discover): the card pull-sync. Gossip only reaches nodes that are connected when a
card version is published, so a node that has just connected asks the peer for its whole card
index over a libp2p stream. Each card carries its owner's signature, so any peer may relay it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .base import WireModel

CARD_SYNC_PROTOCOL = "/noosphere/cards-sync/1"
MAX_SYNC_CARDS = 50_000
MAX_SYNC_BYTES = 12 * 1024 * 1024  # below the transport's 16 MiB reply limit


class CardSyncReply(WireModel):
    v: Literal[1] = 1
    # each card is checked on its own: one bad entry does not cost the good ones
    cards: list[Any] = Field(default_factory=list, max_length=MAX_SYNC_CARDS)
