"""Discover and Execute (state): the node's SQLite store in WAL mode: known cards, known peers,
replay-guard high-water marks, A2A tasks with their push-notification configs, and node
metadata. Every write commits before the node acknowledges it, so a ``kill -9`` loses nothing
that was acknowledged; a corrupt file refuses to open. The file (and so its -wal and -shm) is
created 0600, and an existing one that others can read is narrowed to 0600."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from noosphere.errors import SetupError
from noosphere.securefile import private_file

log = structlog.get_logger("noosphere.store")

STORE_FILENAME = "node.db"
# 2 added tasks and push_configs, 3 payments and submissions (tables are created on open, so
# older stores upgrade in place), 4 the peer each card came through (cards.via, added in place)
SCHEMA_VERSION = 4

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cards (
    card_id    TEXT PRIMARY KEY,
    peer_id    TEXT NOT NULL,
    agent_id   TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    local      INTEGER NOT NULL DEFAULT 0,
    card_json  TEXT NOT NULL,
    via        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS cards_expiry ON cards (expires_at);
CREATE INDEX IF NOT EXISTS cards_peer ON cards (peer_id);
CREATE TABLE IF NOT EXISTS peers (
    peer_id    TEXT PRIMARY KEY,
    addrs_json TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS replay (sender TEXT PRIMARY KEY, high_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    task_id    TEXT PRIMARY KEY,
    agent_id   TEXT NOT NULL,
    context_id TEXT NOT NULL,
    principal  TEXT NOT NULL,
    state      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    task_json  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_context ON tasks (context_id, created_at);
CREATE INDEX IF NOT EXISTS tasks_updated ON tasks (updated_at);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks (state);
CREATE TABLE IF NOT EXISTS push_configs (
    task_id     TEXT NOT NULL,
    config_id   TEXT NOT NULL,
    config_json TEXT NOT NULL,
    PRIMARY KEY (task_id, config_id)
);
CREATE TABLE IF NOT EXISTS payments (
    escrow_id  TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    task_id    TEXT NOT NULL,
    state      TEXT NOT NULL,
    due_at     INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    payment_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS payments_task ON payments (task_id);
CREATE INDEX IF NOT EXISTS payments_due ON payments (state, due_at);
CREATE TABLE IF NOT EXISTS submissions (
    submission_id TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    submission_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS submissions_created ON submissions (created_at);
"""


class StoreError(SetupError, RuntimeError):
    """The store cannot be opened or used (corruption, newer schema, disk error)."""


@dataclass(frozen=True, slots=True)
class StoredCard:
    card_id: str
    peer_id: str
    agent_id: str
    seq: int
    expires_at: int
    received_at: int
    local: bool
    card: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredPeer:
    peer_id: str
    addrs: list[str]
    first_seen: int
    last_seen: int


@dataclass(frozen=True, slots=True)
class StoredPayment:
    """One escrow this node takes part in, as the agent's node or as the requester's."""

    escrow_id: str
    role: str  # "agent" | "requester"
    task_id: str  # the A2A task it pays for (the submission id on the requester's side)
    state: str
    due_at: int  # unix seconds: when the settlement worker should look at it next
    updated_at: int
    payment: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredTask:
    task_id: str
    agent_id: str
    context_id: str
    principal: str  # who created it: "local" (operator token) or the requesting node's peer id
    state: str
    created_at: int
    updated_at: int
    task: dict[str, Any]


class NodeStore:
    """Synchronous SQLite access; used from the node's event-loop thread only (writes are small)."""

    def __init__(
        self, path: Path, *, synchronous: str = "NORMAL", background_checkpoints: bool = False
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous must be NORMAL or FULL")
        self.path = path
        self._checkpointer: sqlite3.Connection | None = None
        try:
            narrowed = private_file(path)  # tasks hold requesters' text: owner only
        except OSError as exc:
            raise StoreError(f"cannot open {path}: {exc.strerror}") from exc
        if narrowed is not None:
            log.warning(
                "store was readable by other users; now owner-only",
                path=str(path),
                mode=f"{narrowed:04o}",
            )
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives the process being killed (the WAL is written
            # before COMMIT returns); only an OS crash can lose the last commits, which the
            # network re-gossips. FULL would fsync every gossip batch.
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA busy_timeout=5000")
            # No checkpoint inside a commit: with one every ~1000 pages a request now and then
            # paid for copying 4 MB. The daemon calls checkpoint() from a worker thread instead.
            self._db.execute(f"PRAGMA wal_autocheckpoint={0 if background_checkpoints else 1000}")
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                check = check.splitlines()[0]
                raise StoreError(
                    f"{path} is corrupted ({check}); restore it from a backup or move it aside"
                )
            self._db.executescript(_SCHEMA)
            self._upgrade_in_place()
            self._check_schema_version()
        except (sqlite3.DatabaseError, StoreError) as exc:
            self._db.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(
                f"{path} is not a usable noosphere store ({exc});"
                " restore it from a backup or move it aside"
            ) from exc

    def _upgrade_in_place(self) -> None:
        """Columns added after a table's first release (CREATE TABLE IF NOT EXISTS keeps old
        tables as they were)."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(cards)")}
        if "via" not in columns:  # schema 3 -> 4: cards held from before count as their owner's
            self._db.execute("ALTER TABLE cards ADD COLUMN via TEXT NOT NULL DEFAULT ''")
            self._db.execute("UPDATE cards SET via = peer_id")
        self._db.execute("CREATE INDEX IF NOT EXISTS cards_via ON cards (via)")

    def _check_schema_version(self) -> None:
        version = self.get_meta("schema_version")
        if version is None or (version.isdigit() and int(version) < SCHEMA_VERSION):
            self.set_meta("schema_version", str(SCHEMA_VERSION))
        elif not version.isdigit():
            raise StoreError(f"{self.path} has an unreadable schema version {version!r}")
        elif int(version) > SCHEMA_VERSION:
            raise StoreError(f"{self.path} was written by a newer noosphere (schema {version})")

    def close(self) -> None:
        self._db.close()
        if self._checkpointer is not None:
            self._checkpointer.close()

    def checkpoint(self) -> None:
        """Copy the WAL into the database file without blocking writers (PASSIVE), on a
        connection of its own: safe to call from a worker thread while the loop writes."""
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False
            )
            self._checkpointer.execute("PRAGMA busy_timeout=5000")
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")

    # ---- meta --------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # ---- cards -------------------------------------------------------------------------------

    def card_seq(self, card_id: str) -> int | None:
        row = self._db.execute("SELECT seq FROM cards WHERE card_id = ?", (card_id,)).fetchone()
        return None if row is None else row[0]

    def card_holding(self, card_id: str) -> tuple[int, str] | None:
        """(seq, the peer it came through) of the held version of a card, if any."""
        row = self._db.execute(
            "SELECT seq, via FROM cards WHERE card_id = ?", (card_id,)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def card_documents(self, *, now_ms: int, limit: int) -> list[str]:
        """The unexpired cards this node got first-hand (its own, and those that came from their
        owner, by gossip or sync), as stored (compact JSON, not decoded), for a sync reply."""
        rows = self._db.execute(
            "SELECT card_json FROM cards WHERE expires_at > ? AND via = peer_id"
            " ORDER BY local DESC, received_at DESC LIMIT ?",
            (now_ms, limit),
        ).fetchall()
        return [r[0] for r in rows]

    def put_card(
        self,
        *,
        card_id: str,
        peer_id: str,
        agent_id: str,
        seq: int,
        expires_at: int,
        received_at: int,
        card: dict[str, Any],
        local: bool = False,
        via: str | None = None,
    ) -> bool:
        """Insert or replace a card if ``seq`` is newer than the stored one; True when written.
        ``via`` is the peer it came from (default: its owner, ``peer_id``)."""
        cursor = self._db.execute(
            "INSERT INTO cards (card_id, peer_id, agent_id, seq, expires_at, received_at, local,"
            " card_json, via) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(card_id) DO UPDATE SET seq = excluded.seq,"
            " expires_at = excluded.expires_at,"
            " received_at = excluded.received_at, local = excluded.local,"
            " card_json = excluded.card_json, via = excluded.via WHERE excluded.seq > cards.seq",
            (
                card_id,
                peer_id,
                agent_id,
                seq,
                expires_at,
                received_at,
                int(local),
                json.dumps(card, separators=(",", ":")),
                via or peer_id,
            ),
        )
        return cursor.rowcount > 0

    def count_cards_of(self, peer_id: str, *, now_ms: int) -> int:
        """Unexpired cards whose owner is ``peer_id``."""
        return self._db.execute(
            "SELECT count(*) FROM cards WHERE peer_id = ? AND expires_at > ?", (peer_id, now_ms)
        ).fetchone()[0]

    def count_cards_relayed_by(self, via: str, *, now_ms: int) -> int:
        """Unexpired cards this node holds only because ``via`` relayed them (owned by others)."""
        return self._db.execute(
            "SELECT count(*) FROM cards WHERE via = ? AND peer_id != via AND expires_at > ?",
            (via, now_ms),
        ).fetchone()[0]

    def card_relays(self, *, now_ms: int, limit: int = 10_000) -> list[tuple[str, str, int]]:
        """``(relaying peer, card owner, cards)`` for unexpired cards that came from a peer other
        than their owner: the relay knew the owner (the web view's peer graph)."""
        return self._db.execute(
            "SELECT via, peer_id, count(*) FROM cards WHERE via != peer_id AND via != ''"
            " AND expires_at > ? GROUP BY via, peer_id LIMIT ?",
            (now_ms, limit),
        ).fetchall()

    def get_card(self, card_id: str) -> StoredCard | None:
        row = self._db.execute(
            f"SELECT {_CARD_COLUMNS} FROM cards WHERE card_id = ?", (card_id,)
        ).fetchone()
        return None if row is None else _card_from_row(row)

    def list_cards(
        self,
        *,
        now_ms: int,
        include_expired: bool = False,
        local_only: bool = False,
        offset: int = 0,
        limit: int = -1,
    ) -> list[StoredCard]:
        """Cards by owner and agent id; only the requested page is read and decoded."""
        where = ["1"] if include_expired else ["expires_at > ?"]
        args: list[Any] = [] if include_expired else [now_ms]
        if local_only:
            where.append("local = 1")
        rows = self._db.execute(
            f"SELECT {_CARD_COLUMNS} FROM cards WHERE {' AND '.join(where)}"
            " ORDER BY peer_id, agent_id LIMIT ? OFFSET ?",
            (*args, limit, offset),
        ).fetchall()
        return [_card_from_row(r) for r in rows]

    def cards_with_prefix(self, prefix: str, *, now_ms: int, limit: int) -> list[StoredCard]:
        """Unexpired cards whose id starts with ``prefix`` (at most ``limit``)."""
        rows = self._db.execute(
            f"SELECT {_CARD_COLUMNS} FROM cards WHERE substr(card_id, 1, ?) = ?"
            " AND expires_at > ? ORDER BY card_id LIMIT ?",
            (len(prefix), prefix, now_ms, limit),
        ).fetchall()
        return [_card_from_row(r) for r in rows]

    def card_counts_by_owner(self, *, now_ms: int) -> dict[str, int]:
        """peer id -> number of its unexpired cards held."""
        rows = self._db.execute(
            "SELECT peer_id, count(*) FROM cards WHERE expires_at > ? GROUP BY peer_id", (now_ms,)
        ).fetchall()
        return dict(rows)

    def card_versions(self, *, now_ms: int) -> dict[str, int]:
        """card id -> seq of every unexpired card, without reading the cards themselves."""
        rows = self._db.execute(
            "SELECT card_id, seq FROM cards WHERE expires_at > ?", (now_ms,)
        ).fetchall()
        return dict(rows)

    def count_cards(self, *, now_ms: int) -> int:
        return self._db.execute(
            "SELECT count(*) FROM cards WHERE expires_at > ?", (now_ms,)
        ).fetchone()[0]

    def delete_expired_cards(self, now_ms: int) -> list[str]:
        rows = self._db.execute(
            "DELETE FROM cards WHERE expires_at <= ? AND local = 0 RETURNING card_id", (now_ms,)
        ).fetchall()
        return [r[0] for r in rows]

    def delete_local_cards_except(self, keep: set[str]) -> None:
        """Forget this node's own cards for agents it no longer runs."""
        for (cid,) in self._db.execute("SELECT card_id FROM cards WHERE local = 1").fetchall():
            if cid not in keep:
                self._db.execute("DELETE FROM cards WHERE card_id = ?", (cid,))

    # ---- peers -------------------------------------------------------------------------------

    def touch_peer(self, peer_id: str, addrs: list[str], now_ms: int) -> None:
        self._db.execute(
            "INSERT INTO peers (peer_id, addrs_json, first_seen, last_seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(peer_id) DO UPDATE SET last_seen = excluded.last_seen,"
            " addrs_json = CASE WHEN excluded.addrs_json = '[]' THEN peers.addrs_json"
            " ELSE excluded.addrs_json END",
            (peer_id, json.dumps(addrs), now_ms, now_ms),
        )

    def prune_peers(self, keep: int) -> int:
        """Forget all but the ``keep`` most recently seen peers; returns how many went."""
        cursor = self._db.execute(
            "DELETE FROM peers WHERE peer_id NOT IN"
            " (SELECT peer_id FROM peers ORDER BY last_seen DESC LIMIT ?)",
            (keep,),
        )
        return cursor.rowcount

    def list_peers(self) -> list[StoredPeer]:
        rows = self._db.execute(
            "SELECT peer_id, addrs_json, first_seen, last_seen FROM peers ORDER BY last_seen DESC"
        ).fetchall()
        return [StoredPeer(r[0], json.loads(r[1]), r[2], r[3]) for r in rows]

    # ---- replay guard ------------------------------------------------------------------------

    def replay_marks(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT sender, high_seq FROM replay").fetchall())

    def set_replay_mark(self, sender: str, high_seq: int) -> None:
        self._db.execute(
            "INSERT INTO replay (sender, high_seq) VALUES (?, ?) ON CONFLICT(sender) DO UPDATE"
            " SET high_seq = max(replay.high_seq, excluded.high_seq)",
            (sender, high_seq),
        )

    # ---- tasks -------------------------------------------------------------------------------

    def put_task(self, row: StoredTask) -> None:
        self._db.execute(
            "INSERT INTO tasks (task_id, agent_id, context_id, principal, state, created_at,"
            " updated_at, task_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(task_id) DO UPDATE SET state = excluded.state,"
            " updated_at = excluded.updated_at, task_json = excluded.task_json",
            (
                row.task_id,
                row.agent_id,
                row.context_id,
                row.principal,
                row.state,
                row.created_at,
                row.updated_at,
                json.dumps(row.task, separators=(",", ":")),
            ),
        )

    def get_task(self, task_id: str) -> StoredTask | None:
        row = self._db.execute(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE task_id = ?", (task_id,)
        ).fetchone()
        return None if row is None else _task_from_row(row)

    def list_tasks(
        self,
        *,
        principal: str | None = None,
        agent_id: str | None = None,
        context_id: str | None = None,
        states: list[str] | None = None,
        updated_after: int | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[StoredTask], int]:
        """Tasks matching every given filter, most recently updated first, and the total count."""
        where: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("principal", principal),
            ("agent_id", agent_id),
            ("context_id", context_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            args.extend(states)
        if updated_after is not None:
            where.append("updated_at > ?")
            args.append(updated_after)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        total = self._db.execute(f"SELECT count(*) FROM tasks {clause}", args).fetchone()[0]
        rows = self._db.execute(
            f"SELECT {_TASK_COLUMNS} FROM tasks {clause}"
            " ORDER BY updated_at DESC, task_id LIMIT ? OFFSET ?",
            [*args, limit, offset],
        ).fetchall()
        return [_task_from_row(r) for r in rows], total

    def put_push_config(self, task_id: str, config_id: str, config: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO push_configs (task_id, config_id, config_json) VALUES (?, ?, ?) "
            "ON CONFLICT(task_id, config_id) DO UPDATE SET config_json = excluded.config_json",
            (task_id, config_id, json.dumps(config, separators=(",", ":"))),
        )

    def list_push_configs(self, task_id: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT config_json FROM push_configs WHERE task_id = ? ORDER BY config_id",
            (task_id,),
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def push_config_task_ids(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT DISTINCT task_id FROM push_configs")}

    def delete_push_config(self, task_id: str, config_id: str) -> bool:
        cursor = self._db.execute(
            "DELETE FROM push_configs WHERE task_id = ? AND config_id = ?", (task_id, config_id)
        )
        return cursor.rowcount > 0

    # ---- payments and submissions -----------------------------------------------------------

    def insert_payment(self, row: StoredPayment) -> bool:
        """Add a payment record; False (and nothing written) if the escrow id is already known."""
        cursor = self._db.execute(
            "INSERT INTO payments (escrow_id, role, task_id, state, due_at, updated_at,"
            " payment_json) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(escrow_id) DO NOTHING",
            _payment_values(row),
        )
        return cursor.rowcount > 0

    def put_payment(self, row: StoredPayment) -> None:
        self._db.execute(
            "INSERT INTO payments (escrow_id, role, task_id, state, due_at, updated_at,"
            " payment_json) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(escrow_id) DO UPDATE SET"
            " state = excluded.state, due_at = excluded.due_at,"
            " updated_at = excluded.updated_at, payment_json = excluded.payment_json",
            _payment_values(row),
        )

    def get_payment(self, escrow_id: str) -> StoredPayment | None:
        row = self._db.execute(
            f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE escrow_id = ?", (escrow_id,)
        ).fetchone()
        return None if row is None else _payment_from_row(row)

    def payments_for_task(self, task_id: str) -> list[StoredPayment]:
        rows = self._db.execute(
            f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE task_id = ?", (task_id,)
        ).fetchall()
        return [_payment_from_row(r) for r in rows]

    def payments_due(self, states: list[str], now_s: int) -> list[StoredPayment]:
        marks = ",".join("?" * len(states))
        rows = self._db.execute(
            f"SELECT {_PAYMENT_COLUMNS} FROM payments WHERE state IN ({marks}) AND due_at <= ?"
            " ORDER BY due_at",
            (*states, now_s),
        ).fetchall()
        return [_payment_from_row(r) for r in rows]

    def list_payments(self, limit: int = 1000) -> list[StoredPayment]:
        rows = self._db.execute(
            f"SELECT {_PAYMENT_COLUMNS} FROM payments ORDER BY updated_at DESC LIMIT ?", (limit,)
        ).fetchall()
        return [_payment_from_row(r) for r in rows]

    def put_submission(
        self, submission_id: str, state: str, created_at: int, updated_at: int, body: dict[str, Any]
    ) -> None:
        self._db.execute(
            "INSERT INTO submissions (submission_id, state, created_at, updated_at,"
            " submission_json) VALUES (?, ?, ?, ?, ?) ON CONFLICT(submission_id) DO UPDATE SET"
            " state = excluded.state, updated_at = excluded.updated_at,"
            " submission_json = excluded.submission_json",
            (submission_id, state, created_at, updated_at, json.dumps(body, separators=(",", ":"))),
        )

    def get_submission(self, submission_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT submission_json FROM submissions WHERE submission_id = ?", (submission_id,)
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def list_submissions(
        self, *, states: list[str] | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        where, args = "", []
        if states:
            where = f"WHERE state IN ({','.join('?' * len(states))})"
            args = list(states)
        rows = self._db.execute(
            f"SELECT submission_json FROM submissions {where} ORDER BY created_at DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [dict(json.loads(r[0])) for r in rows]

    def transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """``with store.transaction():`` groups writes into one commit (one fsync)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


_CARD_COLUMNS = "card_id, peer_id, agent_id, seq, expires_at, received_at, local, card_json"


def _card_from_row(row: tuple[Any, ...]) -> StoredCard:
    return StoredCard(
        row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), json.loads(row[7])
    )


_TASK_COLUMNS = "task_id, agent_id, context_id, principal, state, created_at, updated_at, task_json"


def _task_from_row(row: tuple[Any, ...]) -> StoredTask:
    task_id, agent_id, context_id, principal, state, created_at, updated_at, task_json = row
    return StoredTask(
        task_id,
        agent_id,
        context_id,
        principal,
        state,
        created_at,
        updated_at,
        json.loads(task_json),
    )


_PAYMENT_COLUMNS = "escrow_id, role, task_id, state, due_at, updated_at, payment_json"


def _payment_values(row: StoredPayment) -> tuple[Any, ...]:
    return (
        row.escrow_id,
        row.role,
        row.task_id,
        row.state,
        row.due_at,
        row.updated_at,
        json.dumps(row.payment, separators=(",", ":")),
    )


def _payment_from_row(row: tuple[Any, ...]) -> StoredPayment:
    escrow_id, role, task_id, state, due_at, updated_at, payment_json = row
    return StoredPayment(
        escrow_id, role, task_id, state, due_at, updated_at, json.loads(payment_json)
    )
