"""Discover (peer book): every peer this node has met or learned from a card. Last-seen times live
in memory and are written to the store when a peer or its addresses are new, and otherwise at most
once per ``PERSIST_INTERVAL_MS``, so busy gossip does not turn into a write per message."""

from __future__ import annotations

from dataclasses import replace

from .store import NodeStore, StoredPeer

PERSIST_INTERVAL_MS = 30_000


class PeerBook:
    def __init__(self, store: NodeStore) -> None:
        self._store = store
        self._last_seen: dict[str, int] = {}
        self._written: dict[str, tuple[int, tuple[str, ...]]] = {}

    def seen(self, peer_id: str, addrs: list[str], now_ms: int) -> None:
        """Record that ``peer_id`` was seen now, at ``addrs`` if given (empty: keep the old)."""
        self._last_seen[peer_id] = now_ms
        written_at, written_addrs = self._written.get(peer_id, (None, ()))
        new_addrs = bool(addrs) and tuple(addrs) != written_addrs
        if written_at is None or new_addrs or now_ms - written_at >= PERSIST_INTERVAL_MS:
            self._store.touch_peer(peer_id, addrs, now_ms)
            self._written[peer_id] = (now_ms, tuple(addrs) if addrs else written_addrs)

    def prune(self, keep: int) -> int:
        """Remember at most ``keep`` peers (the most recently seen); returns how many went."""
        removed = self._store.prune_peers(keep)
        if removed:
            known = {p.peer_id for p in self._store.list_peers()}
            for peer_id in [p for p in self._last_seen if p not in known]:
                self._last_seen.pop(peer_id, None)
                self._written.pop(peer_id, None)
        return removed

    def list(self) -> list[StoredPeer]:
        """Known peers, most recently seen first."""
        peers = [
            replace(p, last_seen=max(p.last_seen, self._last_seen.get(p.peer_id, 0)))
            for p in self._store.list_peers()
        ]
        return sorted(peers, key=lambda p: p.last_seen, reverse=True)
