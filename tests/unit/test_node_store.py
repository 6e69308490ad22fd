"""The node's SQLite store: cards, peers, replay marks, durability and refusal of bad files."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from noosphere.node.store import SCHEMA_VERSION, NodeStore, StoreError

NOW = 1_700_000_000_000


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "node.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[NodeStore]:
    opened = NodeStore(db_path)
    yield opened
    opened.close()


def put(store: NodeStore, card_id: str = "peer/agent", **overrides: Any) -> bool:
    fields: dict[str, Any] = {
        "card_id": card_id,
        "peer_id": card_id.split("/")[0],
        "agent_id": card_id.split("/")[1],
        "seq": 1,
        "expires_at": NOW + 60_000,
        "received_at": NOW,
        "card": {"name": card_id},
        "local": False,
    }
    fields.update(overrides)
    return store.put_card(**fields)


def filled_db_file(path: Path) -> bytes:
    """A real, closed store with enough rows to span several pages; returns its bytes."""
    store = NodeStore(path)
    with store.transaction():
        for i in range(100):
            put(store, f"peer/agent-{i}", card={"padding": "x" * 500})
    store.close()
    return path.read_bytes()


# ---- cards -----------------------------------------------------------------------------------


def test_put_then_get_card_round_trips(store: NodeStore) -> None:
    assert put(store, "p1/a1", seq=3, card={"name": "A", "nested": {"k": [1, 2]}}) is True
    stored = store.get_card("p1/a1")
    assert stored is not None
    assert (stored.peer_id, stored.agent_id, stored.seq) == ("p1", "a1", 3)
    assert stored.card == {"name": "A", "nested": {"k": [1, 2]}}
    assert stored.local is False


def test_get_unknown_card_is_none(store: NodeStore) -> None:
    assert store.get_card("nobody/nothing") is None


def test_card_seq_reports_held_version(store: NodeStore) -> None:
    put(store, seq=7)
    assert store.card_seq("peer/agent") == 7
    assert store.card_seq("peer/other") is None


@pytest.mark.parametrize("older_seq", [5, 4, 0])
def test_equal_or_lower_seq_does_not_overwrite(store: NodeStore, older_seq: int) -> None:
    put(store, seq=5, card={"v": "original"})
    assert put(store, seq=older_seq, card={"v": "replacement"}) is False
    stored = store.get_card("peer/agent")
    assert stored is not None
    assert (stored.seq, stored.card) == (5, {"v": "original"})


def test_higher_seq_overwrites(store: NodeStore) -> None:
    put(store, seq=5, card={"v": "original"}, expires_at=NOW + 1)
    assert put(store, seq=6, card={"v": "newer"}, expires_at=NOW + 2) is True
    stored = store.get_card("peer/agent")
    assert stored is not None
    assert (stored.seq, stored.card, stored.expires_at) == (6, {"v": "newer"}, NOW + 2)


def test_delete_expired_removes_gossiped_cards_but_keeps_local_ones(store: NodeStore) -> None:
    put(store, "remote/old", expires_at=NOW - 1)
    put(store, "remote/now", expires_at=NOW)
    put(store, "remote/fresh", expires_at=NOW + 1)
    put(store, "me/old", expires_at=NOW - 1, local=True)
    assert sorted(store.delete_expired_cards(NOW)) == ["remote/now", "remote/old"]
    remaining = {c.card_id for c in store.list_cards(now_ms=0, include_expired=True)}
    assert remaining == {"remote/fresh", "me/old"}


def test_list_cards_hides_expired_unless_asked(store: NodeStore) -> None:
    put(store, "p/expired", expires_at=NOW)
    put(store, "p/live", expires_at=NOW + 1)
    assert [c.card_id for c in store.list_cards(now_ms=NOW)] == ["p/live"]
    all_cards = store.list_cards(now_ms=NOW, include_expired=True)
    assert [c.card_id for c in all_cards] == ["p/expired", "p/live"]


def test_count_cards_counts_only_unexpired(store: NodeStore) -> None:
    put(store, "p/expired", expires_at=NOW)
    put(store, "p/live", expires_at=NOW + 1)
    assert store.count_cards(now_ms=NOW) == 1


def test_delete_local_cards_except_keeps_listed_and_gossiped(store: NodeStore) -> None:
    put(store, "me/keep", local=True)
    put(store, "me/drop", local=True)
    put(store, "other/card")
    store.delete_local_cards_except({"me/keep"})
    remaining = {c.card_id for c in store.list_cards(now_ms=NOW)}
    assert remaining == {"me/keep", "other/card"}


# ---- durability and transactions -------------------------------------------------------------


def test_data_survives_close_and_reopen(db_path: Path) -> None:
    first = NodeStore(db_path)
    put(first, seq=9)
    first.set_meta("own_seq", "42")
    first.touch_peer("peer-1", ["/ip4/1.2.3.4/tcp/1"], NOW)
    first.set_replay_mark("sender", 17)
    first.close()

    reopened = NodeStore(db_path)
    try:
        assert reopened.card_seq("peer/agent") == 9
        assert reopened.get_meta("own_seq") == "42"
        assert [p.peer_id for p in reopened.list_peers()] == ["peer-1"]
        assert reopened.replay_marks() == {"sender": 17}
    finally:
        reopened.close()


def test_new_store_records_schema_version(store: NodeStore) -> None:
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION)


def test_schema_3_store_gains_the_via_column_in_place(db_path: Path) -> None:
    """A store written before cards remembered the peer they came through opens as schema 4;
    the cards it held count as their owners' (first-hand)."""
    db = sqlite3.connect(db_path)
    db.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE cards (card_id TEXT PRIMARY KEY, peer_id TEXT NOT NULL,"
        " agent_id TEXT NOT NULL, seq INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
        " received_at INTEGER NOT NULL, local INTEGER NOT NULL DEFAULT 0,"
        " card_json TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('schema_version', '3');"
        f"INSERT INTO cards VALUES ('peer/agent', 'peer', 'agent', 4, {NOW + 60_000}, {NOW}, 0,"
        " '{}');"
    )
    db.commit()
    db.close()
    store = NodeStore(db_path)
    try:
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION) == "4"
        assert store.card_holding("peer/agent") == (4, "peer")
        assert store.card_documents(now_ms=NOW, limit=10) == ["{}"]
    finally:
        store.close()


def test_cards_count_by_owner_and_by_relay(store: NodeStore) -> None:
    put(store, "owner/a")
    put(store, "owner/b", via="relay")
    put(store, "other/c", via="relay")
    put(store, "relay/own", via="relay")
    put(store, "old/d", via="relay", expires_at=NOW - 1)
    assert store.count_cards_of("owner", now_ms=NOW) == 2
    assert store.count_cards_relayed_by("relay", now_ms=NOW) == 2  # not its own, not expired
    assert store.card_holding("owner/b") == (1, "relay")


def test_prune_peers_keeps_the_most_recently_seen(store: NodeStore) -> None:
    for i in range(5):
        store.touch_peer(f"peer-{i}", [], NOW + i)
    assert store.prune_peers(2) == 3
    assert [p.peer_id for p in store.list_peers()] == ["peer-4", "peer-3"]


def test_transaction_commits_all_writes(store: NodeStore) -> None:
    with store.transaction():
        put(store, "p/a")
        put(store, "p/b")
    assert store.count_cards(now_ms=NOW) == 2


def test_transaction_rolls_back_everything_on_exception(store: NodeStore) -> None:
    with pytest.raises(RuntimeError, match="abort"), store.transaction():
        put(store, "p/a")
        store.set_meta("k", "v")
        store.set_replay_mark("sender", 5)
        raise RuntimeError("abort")
    assert store.list_cards(now_ms=0, include_expired=True) == []
    assert store.get_meta("k") is None
    assert store.replay_marks() == {}


def test_store_is_usable_after_a_rolled_back_transaction(store: NodeStore) -> None:
    with pytest.raises(ValueError), store.transaction():
        raise ValueError
    with store.transaction():
        put(store)
    assert store.card_seq("peer/agent") == 1


# ---- meta, peers, replay marks ---------------------------------------------------------------


def test_set_meta_overwrites(store: NodeStore) -> None:
    store.set_meta("key", "one")
    store.set_meta("key", "two")
    assert store.get_meta("key") == "two"


def test_replay_marks_only_grow(store: NodeStore) -> None:
    store.set_replay_mark("alice", 10)
    store.set_replay_mark("alice", 3)
    store.set_replay_mark("alice", 10)
    store.set_replay_mark("bob", 1)
    assert store.replay_marks() == {"alice": 10, "bob": 1}
    store.set_replay_mark("alice", 11)
    assert store.replay_marks()["alice"] == 11


def test_touch_peer_with_no_addrs_keeps_known_addrs(store: NodeStore) -> None:
    store.touch_peer("peer-1", ["/ip4/1.2.3.4/tcp/1"], NOW)
    store.touch_peer("peer-1", [], NOW + 5)
    [peer] = store.list_peers()
    assert peer.addrs == ["/ip4/1.2.3.4/tcp/1"]
    assert (peer.first_seen, peer.last_seen) == (NOW, NOW + 5)


def test_touch_peer_with_new_addrs_replaces_them(store: NodeStore) -> None:
    store.touch_peer("peer-1", ["/ip4/1.2.3.4/tcp/1"], NOW)
    store.touch_peer("peer-1", ["/ip4/5.6.7.8/tcp/2"], NOW + 5)
    assert store.list_peers()[0].addrs == ["/ip4/5.6.7.8/tcp/2"]


def test_list_peers_is_most_recent_first(store: NodeStore) -> None:
    store.touch_peer("old", [], NOW)
    store.touch_peer("new", [], NOW + 1)
    assert [p.peer_id for p in store.list_peers()] == ["new", "old"]


# ---- refusing unusable files -----------------------------------------------------------------


def test_random_bytes_file_raises_store_error_naming_path(db_path: Path) -> None:
    size = len(filled_db_file(db_path))
    db_path.write_bytes(os.urandom(size))
    with pytest.raises(StoreError, match="is not a usable noosphere store") as info:
        NodeStore(db_path)
    assert str(db_path) in str(info.value)


def test_valid_header_with_damaged_pages_raises_store_error_naming_path(db_path: Path) -> None:
    data = bytearray(filled_db_file(db_path))
    assert data.startswith(b"SQLite format 3\x00")
    page_size = int.from_bytes(data[16:18], "big")
    data[page_size:] = os.urandom(len(data) - page_size)  # keep page 1 (header + schema) intact
    db_path.write_bytes(bytes(data))
    with pytest.raises(StoreError) as info:
        NodeStore(db_path)
    assert str(db_path) in str(info.value)


def test_damaged_index_page_fails_integrity_check_with_store_error(db_path: Path) -> None:
    data = bytearray(filled_db_file(db_path))
    page_size = int.from_bytes(data[16:18], "big")
    with sqlite3.connect(db_path) as db:
        (root,) = db.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'cards_expiry'"
        ).fetchone()
    db.close()
    data[(root - 1) * page_size : root * page_size] = bytes(page_size)  # tables stay readable
    db_path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="is corrupted") as info:
        NodeStore(db_path)
    assert str(db_path) in str(info.value)


def test_newer_schema_version_raises_store_error(db_path: Path) -> None:
    store = NodeStore(db_path)
    store.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    store.close()
    with pytest.raises(StoreError, match="newer noosphere") as info:
        NodeStore(db_path)
    assert str(db_path) in str(info.value)


def test_non_numeric_schema_version_raises_store_error(db_path: Path) -> None:
    store = NodeStore(db_path)
    store.set_meta("schema_version", "garbage")
    store.close()
    with pytest.raises(StoreError):
        NodeStore(db_path)


def test_background_checkpoints_move_the_wal_into_the_database(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "node.db", background_checkpoints=True)
    for i in range(300):
        store.set_meta(f"k{i}", "v" * 500)
    wal = tmp_path / "node.db-wal"
    assert wal.stat().st_size > 0
    before = (tmp_path / "node.db").stat().st_size
    store.checkpoint()
    assert (tmp_path / "node.db").stat().st_size > before
    store.close()
    reopened = NodeStore(tmp_path / "node.db")
    assert reopened.get_meta("k299") == "v" * 500
    reopened.close()


def test_payments_bind_an_escrow_once_and_come_due(store: NodeStore) -> None:
    from noosphere.node.store import StoredPayment

    row = StoredPayment("0xaa", "agent", "task-1", "bound", 100, 1, {"amount": "5"})
    assert store.insert_payment(row) is True
    assert store.insert_payment(dataclasses.replace(row, task_id="task-2")) is False  # replay
    assert store.get_payment("0xaa") == row
    assert store.payments_for_task("task-1") == [row]
    assert store.payments_due(["bound"], 99) == []
    assert store.payments_due(["bound"], 100) == [row]
    store.put_payment(dataclasses.replace(row, state="committed", due_at=500))
    assert store.payments_due(["bound", "committed"], 499) == []
    assert store.get_payment("0xaa").state == "committed"  # type: ignore[union-attr]


def test_submissions_are_kept_and_listed_newest_first(store: NodeStore) -> None:
    store.put_submission("s1", "running", 1, 1, {"id": "s1"})
    store.put_submission("s2", "completed", 2, 2, {"id": "s2"})
    store.put_submission("s1", "failed", 1, 3, {"id": "s1", "error": "x"})
    assert store.get_submission("s1") == {"id": "s1", "error": "x"}
    assert [s["id"] for s in store.list_submissions()] == ["s2", "s1"]
    assert store.list_submissions(states=["running"]) == []
    assert store.get_submission("nope") is None


def test_card_versions_list_unexpired_ids_and_seqs_only(store: NodeStore) -> None:
    for i, expires in enumerate((50, 500)):
        store.put_card(
            card_id=f"p{i}/a",
            peer_id=f"p{i}",
            agent_id="a",
            seq=7 + i,
            expires_at=expires,
            received_at=1,
            card={"name": "x"},
        )
    assert store.card_versions(now_ms=100) == {"p1/a": 8}
