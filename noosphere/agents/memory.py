"""Execute and Feedback: an agent's episodic memory. Each finished task becomes an episode
(request, result, outcome, later the requester's rating) stored in SQLite (WAL) with its sentence
vector; in-RAM faiss indexes over the agent's episodes let the runtime recall similar past work
while executing, and episodes of the same conversation (``context_id``) first for multi-turn tasks.

Episodes belong to the principal that sent the task (the node's operator, ``local``, or the peer
id of a remote node): every read is scoped to one principal, so a requester never recalls, and a
planner's prompt never holds, another requester's task ids or text. Each principal has its own
faiss index; SQL reads filter on the principal too.

Files written before principals existed (schema version 0) are migrated in place on open: their
episodes become the operator's (``local``), who owns the file and could always read them; remote
peers no longer see them. The file is created 0600 and an existing one is narrowed to 0600.

Blocking and thread-safe: async code calls it through ``asyncio.to_thread``. One
``EpisodicMemory`` per agent and file at a time (several agents may share one file)."""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import faiss
import numpy as np
import structlog
from pydantic import BaseModel, ConfigDict

from noosphere.errors import AgentError
from noosphere.models.embedding import DIMENSION, Embedder
from noosphere.securefile import private_file

log = structlog.get_logger("noosphere.memory")

DEFAULT_MAX_EPISODES = 10_000
_VECTOR_BYTES = DIMENSION * 4

#: Who owns episodes stored before memory was scoped by principal: the node's operator.
LEGACY_PRINCIPAL = "local"
SCHEMA_VERSION = 1

_TABLE = """
CREATE TABLE IF NOT EXISTS episodes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id   TEXT NOT NULL,
    task_id    TEXT NOT NULL,
    context_id TEXT NOT NULL,
    request    TEXT NOT NULL,
    result     TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    feedback   REAL,
    created_at INTEGER NOT NULL,
    vector     BLOB NOT NULL,
    principal  TEXT NOT NULL DEFAULT 'local'
);
"""

_INDEXES = """
CREATE INDEX IF NOT EXISTS episodes_agent ON episodes (agent_id, id);
CREATE INDEX IF NOT EXISTS episodes_task ON episodes (agent_id, task_id);
DROP INDEX IF EXISTS episodes_context;
CREATE INDEX IF NOT EXISTS episodes_principal_context
    ON episodes (agent_id, principal, context_id, id);
"""

_COLUMNS = (
    "id, agent_id, task_id, context_id, request, result, outcome, feedback, created_at, principal"
)


class AgentMemoryError(AgentError, RuntimeError):
    """The memory file cannot be opened or used (corruption, disk error, closed memory)."""


class Episode(BaseModel):
    """One finished task as the agent remembers it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    agent_id: str
    task_id: str
    context_id: str
    request: str
    result: str
    outcome: str
    feedback: float | None
    created_at: int
    principal: str


class Recalled(BaseModel):
    """An episode returned by ``recall`` with its cosine similarity to the query."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    episode: Episode
    score: float


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class EpisodicMemory:
    """Episodes of one agent in a SQLite file, with one faiss inner-product index per principal
    in RAM."""

    def __init__(
        self,
        path: Path,
        agent_id: str,
        embedder: Embedder,
        *,
        max_episodes: int = DEFAULT_MAX_EPISODES,
    ) -> None:
        if not agent_id:
            raise ValueError("agent_id must not be empty")
        if max_episodes < 1:
            raise ValueError("max_episodes must be at least 1")
        self.path = path
        self.agent_id = agent_id
        self.max_episodes = max_episodes
        self._embedder = embedder
        self._lock = threading.RLock()
        self._closed = False
        # one inner-product index per principal: a search can only ever see that principal's rows
        self._indexes: dict[str, faiss.IndexIDMap2] = {}
        self._size = 0  # vectors in all indexes (summing them costs O(principals))
        try:
            narrowed = private_file(path)  # episodes hold requesters' text: owner only
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise AgentMemoryError(f"cannot open agent memory {path}: {exc}") from exc
        if narrowed is not None:
            log.warning(
                "agent memory was readable by other users; now owner-only",
                path=str(path),
                mode=f"{narrowed:04o}",
            )
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise AgentMemoryError(
                    f"agent memory {path} is corrupted ({check.splitlines()[0]});"
                    " restore it from a backup or move it aside"
                )
            self._migrate()
            self._load_index()
        except (sqlite3.Error, AgentMemoryError) as exc:
            self._db.close()
            self._closed = True
            if isinstance(exc, AgentMemoryError):
                raise
            message = " ".join(str(exc).split())
            raise AgentMemoryError(
                f"agent memory {path} is not usable ({message});"
                " restore it from a backup or move it aside"
            ) from exc

    def _migrate(self) -> None:
        """Create the schema, or bring a file of an older schema up to date (one transaction;
        several agents opening one file migrate it once)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise AgentMemoryError(
                    f"agent memory {self.path} was written by a newer noosphere (schema"
                    f" {version}); upgrade noosphere or move the file aside"
                )
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(episodes)")}
            legacy = 0
            if columns and "principal" not in columns:  # schema 0: no owner per episode
                self._db.execute(
                    "ALTER TABLE episodes ADD COLUMN principal TEXT NOT NULL DEFAULT"
                    f" '{LEGACY_PRINCIPAL}'"
                )
                legacy = self._db.execute("SELECT count(*) FROM episodes").fetchone()[0]
            self._db.execute(_TABLE)
            for statement in _INDEXES.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        if legacy:
            log.warning(
                "agent memory migrated: episodes stored before memory was scoped by requester"
                " are now the operator's only (remote peers no longer recall them); they may"
                " hold other requesters' text: delete the file to erase them",
                path=str(self.path),
                episodes=legacy,
            )

    def _load_index(self) -> None:
        """Rebuild the per-principal faiss indexes from this agent's stored vectors."""
        rows = self._db.execute(
            "SELECT id, principal, vector FROM episodes WHERE agent_id = ? ORDER BY id",
            (self.agent_id,),
        ).fetchall()
        grouped: dict[str, list[tuple[int, bytes]]] = {}
        for row_id, principal, blob in rows:
            if not isinstance(blob, bytes) or len(blob) != _VECTOR_BYTES:
                raise AgentMemoryError(
                    f"agent memory {self.path} is corrupted (episode {row_id} has a bad vector);"
                    " restore it from a backup or move it aside"
                )
            grouped.setdefault(principal, []).append((row_id, blob))
        for principal, items in grouped.items():
            ids = np.fromiter((row_id for row_id, _ in items), dtype=np.int64, count=len(items))
            vectors = np.frombuffer(b"".join(blob for _, blob in items), dtype=np.float32)
            self._index_of(principal).add_with_ids(vectors.reshape(len(items), DIMENSION), ids)
        self._size = len(rows)

    def _index_of(self, principal: str) -> faiss.IndexIDMap2:
        index = self._indexes.get(principal)
        if index is None:
            index = self._indexes[principal] = faiss.IndexIDMap2(faiss.IndexFlatIP(DIMENSION))
        return index

    def _total(self) -> int:
        return self._size

    # ---- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._db.close()
            self._indexes.clear()
            self._size = 0

    def __enter__(self) -> EpisodicMemory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __len__(self) -> int:
        """Episodes of this agent, all principals together."""
        with self._lock:
            return self._total()

    def count(self, principal: str) -> int:
        """Episodes of this agent that ``principal`` sent."""
        with self._lock:
            index = self._indexes.get(principal)
            return 0 if index is None else int(index.ntotal)

    def _check_open(self) -> None:
        if self._closed:
            raise AgentMemoryError(f"agent memory {self.path} is closed")

    # ---- writes ------------------------------------------------------------------------------

    def remember(
        self,
        *,
        principal: str,
        task_id: str,
        context_id: str,
        request: str,
        result: str,
        outcome: str,
    ) -> Episode:
        """Store a finished task of ``principal``; committed before this returns. Evicts the
        agent's oldest episodes beyond ``max_episodes``."""
        if not principal:
            raise ValueError("principal must not be empty")
        self._check_open()
        # An episode is found by its request (a new task recalls tasks that asked for similar
        # things); the turn has embedded it already, so this is a cache hit. Embedding runs
        # outside our lock (the embedder serializes itself).
        vector = self._embedder.encode([request])[0]
        vector = np.ascontiguousarray(vector, dtype=np.float32)
        created_at = _now_ms()
        with self._lock:
            self._check_open()
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    row_id = self._db.execute(
                        "INSERT INTO episodes (agent_id, task_id, context_id, request, result,"
                        " outcome, feedback, created_at, vector, principal)"
                        " VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?) RETURNING id",
                        (
                            self.agent_id,
                            task_id,
                            context_id,
                            request,
                            result,
                            outcome,
                            created_at,
                            vector.tobytes(),
                            principal,
                        ),
                    ).fetchone()[0]
                    evicted = self._evict_rows(extra=1)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._error("remember", exc) from exc
            for owner, row_ids in evicted.items():
                index = self._indexes.get(owner)
                if index is None:
                    continue
                self._size -= int(index.remove_ids(np.asarray(row_ids, dtype=np.int64)))
                if index.ntotal == 0:
                    del self._indexes[owner]
            self._index_of(principal).add_with_ids(
                vector.reshape(1, -1), np.asarray([row_id], dtype=np.int64)
            )
            self._size += 1
        return Episode(
            id=row_id,
            agent_id=self.agent_id,
            task_id=task_id,
            context_id=context_id,
            request=request,
            result=result,
            outcome=outcome,
            feedback=None,
            created_at=created_at,
            principal=principal,
        )

    def _evict_rows(self, *, extra: int) -> dict[str, list[int]]:
        """Delete the oldest rows so that at most ``max_episodes`` remain (inside a transaction;
        ``extra`` rows were inserted but are not in the faiss indexes yet); returns the deleted
        row ids by principal."""
        excess = self._total() + extra - self.max_episodes
        if excess <= 0:
            return {}
        rows = self._db.execute(
            "DELETE FROM episodes WHERE id IN (SELECT id FROM episodes WHERE agent_id = ?"
            " ORDER BY id LIMIT ?) RETURNING id, principal",
            (self.agent_id, excess),
        ).fetchall()
        evicted: dict[str, list[int]] = {}
        for row_id, principal in rows:
            evicted.setdefault(principal, []).append(row_id)
        return evicted

    def record_feedback(self, task_id: str, rating: float, *, principal: str | None = None) -> bool:
        """Attach the requester's rating in [0, 1] to the episode(s) of ``task_id`` (only those
        ``principal`` sent, when given); False when this agent remembers no such task."""
        if not math.isfinite(rating) or not 0.0 <= rating <= 1.0:
            raise ValueError("rating must be a number in [0, 1]")
        where, args = self._scope(principal)
        with self._lock:
            self._check_open()
            try:
                cursor = self._db.execute(
                    f"UPDATE episodes SET feedback = ? WHERE agent_id = ? AND task_id = ?{where}",
                    (float(rating), self.agent_id, task_id, *args),
                )
            except sqlite3.Error as exc:
                raise self._error("record feedback", exc) from exc
            return cursor.rowcount > 0

    # ---- reads -------------------------------------------------------------------------------

    @staticmethod
    def _scope(principal: str | None) -> tuple[str, tuple[str, ...]]:
        return ("", ()) if principal is None else (" AND principal = ?", (principal,))

    def get(self, task_id: str, *, principal: str | None = None) -> list[Episode]:
        """The episodes this agent stored for ``task_id``, oldest first; only those
        ``principal`` sent, when given (``None`` is the operator's view of the whole file)."""
        where, args = self._scope(principal)
        with self._lock:
            self._check_open()
            try:
                rows = self._db.execute(
                    f"SELECT {_COLUMNS} FROM episodes WHERE agent_id = ? AND task_id = ?{where}"
                    " ORDER BY id",
                    (self.agent_id, task_id, *args),
                ).fetchall()
            except sqlite3.Error as exc:
                raise self._error("read", exc) from exc
        return [_episode_from_row(r) for r in rows]

    def recall(
        self,
        query: str,
        *,
        principal: str,
        k: int = 3,
        min_score: float = 0.3,
        context_id: str | None = None,
    ) -> list[Recalled]:
        """Up to ``k`` of ``principal``'s episodes most similar to ``query`` (cosine, at least
        ``min_score``), best first. With ``context_id``, the most recent episodes of that
        conversation come first (newest first, whatever their score), then the best other
        matches fill the rest. Never returns an episode another principal sent."""
        if k <= 0:
            return []
        self._check_open()
        with self._lock:
            index = self._indexes.get(principal)
            if index is None or index.ntotal == 0:
                return []
        q = np.ascontiguousarray(self._embedder.encode([query]), dtype=np.float32)
        with self._lock:
            self._check_open()
            try:
                return self._recall_locked(
                    q, principal=principal, k=k, min_score=min_score, context_id=context_id
                )
            except sqlite3.Error as exc:
                raise self._error("recall", exc) from exc

    def _recall_locked(
        self, q: np.ndarray, *, principal: str, k: int, min_score: float, context_id: str | None
    ) -> list[Recalled]:
        picked: list[Recalled] = []
        seen: set[int] = set()
        if context_id is not None:
            rows = self._db.execute(
                f"SELECT {_COLUMNS}, vector FROM episodes WHERE agent_id = ? AND principal = ?"
                " AND context_id = ? ORDER BY id DESC LIMIT ?",
                (self.agent_id, principal, context_id, k),
            ).fetchall()
            for row in rows:
                vector = np.frombuffer(row[-1], dtype=np.float32)
                score = float(np.dot(vector, q[0]))
                picked.append(Recalled(episode=_episode_from_row(row[:-1]), score=score))
                seen.add(row[0])
        room = k - len(picked)
        index = self._indexes.get(principal)
        total = 0 if index is None else int(index.ntotal)
        if room <= 0 or index is None or total == 0:
            return picked
        scores, ids = index.search(q, min(total, room + len(seen)))
        wanted: list[tuple[int, float]] = []
        for score, row_id in zip(scores[0], ids[0], strict=True):
            if row_id < 0 or int(row_id) in seen or score < min_score:
                continue
            wanted.append((int(row_id), float(score)))
            if len(wanted) == room:
                break
        if not wanted:
            return picked
        marks = ",".join("?" * len(wanted))
        rows = self._db.execute(  # the principal again: the SQL agrees with the index, or no row
            f"SELECT {_COLUMNS} FROM episodes WHERE agent_id = ? AND principal = ?"
            f" AND id IN ({marks})",
            [self.agent_id, principal, *(row_id for row_id, _ in wanted)],
        ).fetchall()
        by_id = {row[0]: _episode_from_row(row) for row in rows}
        picked.extend(
            Recalled(episode=by_id[row_id], score=score)
            for row_id, score in wanted
            if row_id in by_id
        )
        return picked

    def _error(self, action: str, exc: sqlite3.Error) -> AgentMemoryError:
        message = " ".join(str(exc).split())
        return AgentMemoryError(f"agent memory {self.path}: cannot {action} ({message})")


def _episode_from_row(row: tuple[Any, ...] | sqlite3.Row) -> Episode:
    return Episode(
        id=row[0],
        agent_id=row[1],
        task_id=row[2],
        context_id=row[3],
        request=row[4],
        result=row[5],
        outcome=row[6],
        feedback=row[7],
        created_at=row[8],
        principal=row[9],
    )
