"""PeerBook: last-seen kept in memory, written through only when new, changed, or stale."""

from __future__ import annotations

from noosphere.node.peers import PERSIST_INTERVAL_MS, PeerBook
from noosphere.node.store import NodeStore


def stored(store: NodeStore, peer_id: str):
    return next(p for p in store.list_peers() if p.peer_id == peer_id)


def test_first_sighting_is_written(store: NodeStore) -> None:
    PeerBook(store).seen("p1", ["/ip4/127.0.0.1/tcp/1/p2p/p1"], 1_000)
    assert stored(store, "p1").addrs == ["/ip4/127.0.0.1/tcp/1/p2p/p1"]


def test_repeated_sightings_are_kept_in_memory_until_the_interval(store: NodeStore) -> None:
    book = PeerBook(store)
    book.seen("p1", ["/a"], 1_000)
    book.seen("p1", [], 2_000)
    assert stored(store, "p1").last_seen == 1_000
    assert book.list()[0].last_seen == 2_000
    book.seen("p1", [], 1_000 + PERSIST_INTERVAL_MS)
    assert stored(store, "p1").last_seen == 1_000 + PERSIST_INTERVAL_MS


def test_new_addresses_are_written_at_once(store: NodeStore) -> None:
    book = PeerBook(store)
    book.seen("p1", ["/a"], 1_000)
    book.seen("p1", ["/b"], 1_001)
    assert stored(store, "p1").addrs == ["/b"]


def test_list_is_most_recent_first(store: NodeStore) -> None:
    book = PeerBook(store)
    book.seen("old", [], 1_000)
    book.seen("new", [], 5_000)
    assert [p.peer_id for p in book.list()] == ["new", "old"]
