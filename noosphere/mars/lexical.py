"""Recruit, stage 1 (lexical half of candidate generation): BM25 over the words of agent cards,
kept in step with the card store like the vector index. One document per agent with a field for
the whole card (name, description, every skill with its tags and examples: what the BM25
baseline indexes) and one per part of it (name, description, skill names, skill descriptions,
tags, examples); each field is scored with its own BM25 statistics (k1 1.2, b 0.75) and the
field scores are summed with per-field weights. The index is tantivy's (Rust, in memory):
incremental adds and deletes, top-k search with block-max WAND pruning, so a query does not
score every card. Words are lowercased, English stop words dropped (the Lucene list, also
bm25s's) and stemmed (Snowball English).

Writes are buffered: ``upsert`` and ``remove`` queue documents and a commit makes them
searchable. A tantivy commit costs tens of milliseconds, so it is not paid per card: with
``max_lag_s`` 0 (the default) the next ``search`` commits whatever is queued; with a lag, queued
changes younger than the lag are left for a later write or search to commit, and searches in
between see the previous state of the index (the vector half of stage 1 sees every card at
once, so a new card can still be recruited in that window)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import tantivy
from pydantic import BaseModel, ConfigDict, Field

from .profile import AgentProfile

ANALYZER = "noosphere_en"
FIELDS = ("card", "name", "description", "skill_names", "skill_descriptions", "tags", "examples")
_WRITER_HEAP = 32 * 2**20  # bytes buffered before the writer flushes a segment on its own
_MAX_QUERY_TERMS = 64  # distinct terms kept from a query (a pasted document is not a query)


class FieldWeights(BaseModel):
    """How much a word matched in each part of a card counts (BM25 of the field times this).
    Tuned on the StableToolBench tuning half (bench/mars_eval.py); see docs/performance.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    card: float = Field(1.0, ge=0)
    name: float = Field(0.1, ge=0)
    description: float = Field(0.1, ge=0)
    skill_names: float = Field(0.25, ge=0)
    skill_descriptions: float = Field(0.0, ge=0)
    tags: float = Field(0.0, ge=0)
    examples: float = Field(0.0, ge=0)


@dataclass(frozen=True, slots=True)
class LexicalHit:
    agent_id: str
    score: float  # weighted BM25, unbounded


def _analyzer() -> tantivy.TextAnalyzer:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.stopword("english"))
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def field_texts(profile: AgentProfile) -> dict[str, list[str]]:
    """The text of each field of an agent's document."""
    return {
        "card": [card_text(profile)],
        "name": [profile.name],
        "description": [profile.description],
        "skill_names": [s.name for s in profile.skills],
        "skill_descriptions": [s.description for s in profile.skills],
        "tags": [t for s in profile.skills for t in s.tags],
        "examples": [e for s in profile.skills for e in s.examples],
    }


def card_text(profile: AgentProfile) -> str:
    """The whole card as one text: name, description and every skill with tags and examples."""
    return "\n".join(
        [f"{profile.name}: {profile.description}"] + [s.text() for s in profile.skills]
    )


class LexicalIndex:
    """Thread-safe; ``search`` may run in worker threads while cards arrive."""

    def __init__(self, weights: FieldWeights | None = None, *, max_lag_s: float = 0.0) -> None:
        self.weights = weights or FieldWeights()
        self.max_lag_s = max_lag_s
        self.commits = 0  # tests and benchmarks read it
        builder = tantivy.SchemaBuilder()
        for name in FIELDS:
            builder.add_text_field(name, tokenizer_name=ANALYZER, index_option="freq")
        builder.add_text_field("agent", tokenizer_name="raw", index_option="basic")
        builder.add_unsigned_field("key", fast=True)
        self._schema = builder.build()
        self._index = tantivy.Index(self._schema)  # in memory
        self._index.register_tokenizer(ANALYZER, _analyzer())
        self._analyzer = _analyzer()
        self._writer = self._index.writer(_WRITER_HEAP, 1)
        self._lock = threading.RLock()
        self._keys: dict[int, str] = {}  # document key -> agent id
        self._key_of: dict[str, int] = {}
        self._next_key = 0
        self._dirty_since: float | None = None  # monotonic time of the oldest queued change
        self._searcher: tantivy.Searcher | None = None

    # ---- updates (buffered until the next search) ---------------------------------------------

    def upsert(self, profile: AgentProfile) -> None:
        with self._lock:
            self._delete_locked(profile.agent_id)
            key = self._next_key
            self._next_key += 1
            doc = tantivy.Document()
            doc.add_text("agent", profile.agent_id)
            doc.add_unsigned("key", key)
            for name, values in field_texts(profile).items():
                for value in values:
                    if value:
                        doc.add_text(name, value)
            self._writer.add_document(doc)
            self._keys[key] = profile.agent_id
            self._key_of[profile.agent_id] = key
            self._queued_locked()

    def remove(self, agent_id: str) -> bool:
        with self._lock:
            return self._delete_locked(agent_id)

    def _delete_locked(self, agent_id: str) -> bool:
        key = self._key_of.pop(agent_id, None)
        if key is None:
            return False
        del self._keys[key]
        self._writer.delete_documents_by_term("agent", agent_id)
        self._queued_locked()
        return True

    def _queued_locked(self) -> None:
        now = time.monotonic()
        if self._dirty_since is None:
            self._dirty_since = now
        elif self.max_lag_s > 0 and now - self._dirty_since >= self.max_lag_s:
            self._commit_locked()

    def commit(self) -> None:
        """Make queued changes searchable now (``search`` does it when needed)."""
        with self._lock:
            self._commit_locked()

    def _commit_locked(self) -> None:
        if self._dirty_since is None and self._searcher is not None:
            return
        self._writer.commit()
        self._index.reload()
        self._searcher = self._index.searcher()
        self._dirty_since = None
        self.commits += 1

    def _maybe_commit_locked(self) -> None:
        """Commit before a search unless the queued changes are younger than the lag (and a
        searcher exists)."""
        if self._dirty_since is None and self._searcher is not None:
            return
        fresh = self._dirty_since is not None and (
            time.monotonic() - self._dirty_since < self.max_lag_s
        )
        if self._searcher is None or not fresh:
            self._commit_locked()

    def __len__(self) -> int:
        with self._lock:
            return len(self._key_of)

    # ---- queries -----------------------------------------------------------------------------

    def terms(self, text: str) -> dict[str, int]:
        """The query's analyzed terms with their counts (at most ``_MAX_QUERY_TERMS``)."""
        counts: dict[str, int] = {}
        for term in self._analyzer.analyze(text):
            if term in counts:
                counts[term] += 1
            elif len(counts) < _MAX_QUERY_TERMS:
                counts[term] = 1
        return counts

    def _query(self, terms: Mapping[str, int]) -> tantivy.Query | None:
        weights = self.weights.model_dump()
        clauses = []
        for name in FIELDS:
            weight = weights[name]
            if weight <= 0:
                continue
            for term, count in terms.items():
                query = tantivy.Query.term_query(self._schema, name, term, index_option="freq")
                clauses.append(
                    (tantivy.Occur.Should, tantivy.Query.boost_query(query, weight * count))
                )
        return tantivy.Query.boolean_query(clauses) if clauses else None

    def search(self, text: str, k: int) -> list[LexicalHit]:
        """The ``k`` agents whose cards best match the words of ``text``, best first (agents
        sharing no word with it are not returned)."""
        return self.search_terms(self.terms(text), k)

    def search_terms(self, terms: Mapping[str, int], k: int) -> list[LexicalHit]:
        """``search`` for terms already analyzed by ``terms``."""
        query = self._query(terms) if terms and k > 0 else None
        if query is None:
            return []
        with self._lock:
            if not self._key_of:
                return []
            self._maybe_commit_locked()
            searcher = self._searcher
        assert searcher is not None
        hits = searcher.search(query, limit=k, count=False).hits
        if not hits:
            return []
        # the "key" fast field is an integer field: every value is an int
        keys = [
            int(v if v is not None else -1)
            for v in searcher.fast_field_values("key", [a for _, a in hits])
        ]
        with self._lock:  # an agent removed since the commit is not returned
            out = [
                LexicalHit(self._keys[key], float(score))
                for (score, _), key in zip(hits, keys, strict=True)
                if key in self._keys
            ]
        out.sort(key=lambda h: (-h.score, h.agent_id))
        return out
