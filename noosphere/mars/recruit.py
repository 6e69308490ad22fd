"""Recruit (MARS): "which agents should do this task?", answered on the requester's node from
the profiles it holds. Stage 1 finds candidates by hybrid search (skill vectors and BM25 over the
cards' words, fused), stage 2 re-scores them (``rerank``: names mentioned, the fused score's
parts) and applies hard constraints (every rejection has a reason; an optional LLM judge may veto
on top), stage 3 ranks the survivors on relevance, reputation, latency, availability, history,
outcomes of this node's past tasks on similar requests, and price. Each stage can be switched off
and stage 1 can run on vectors alone (the evaluation compares them all)."""

from __future__ import annotations

import asyncio
import copy
import time
from dataclasses import dataclass, field

import numpy as np

from noosphere.models.embedding import Embedder
from noosphere.models.llm import LlmBackend
from noosphere.models.text import instruction_of

from .filter import Constraints, LlmJudge, Verdict, constraint_reasons, validate_policy
from .fusion import Candidate, dense_share, fuse
from .index import Hit, VectorIndex
from .lexical import LexicalIndex
from .outcomes import OutcomeMemory
from .profile import AgentProfile
from .ranking import NoSignals, Ranked, RankingWeights, Signals, rank
from .rerank import RescoreWeights, rescore

OFFLINE_FILTER = "offline re-scoring and hard constraints (no LLM)"
#: Below this stage 2 relevance a candidate is rejected as not relevant.
MIN_RELEVANCE = 0.1
#: Requests longer than this carry a document: stage 1 also searches with their instruction
#: (on shorter ones the instruction, often a first sentence of context, lost 1.5 points of
#: Recall@1 on StableToolBench).
LONG_REQUEST = 1000


@dataclass(frozen=True, slots=True)
class RecruitQuery:
    task: str
    top: int = 5
    candidates: int = 50
    constraints: Constraints = field(default_factory=Constraints)
    use_filter: bool = True
    use_ranking: bool = True
    use_lexical: bool = True  # False: stage 1 on skill vectors alone


@dataclass(frozen=True, slots=True)
class Choice:
    profile: AgentProfile
    vector: float  # stage 1 score (fused cosine and BM25; the cosine alone without lexical)
    relevance: float  # stage 2 re-scored (= vector when the filter is off)
    ranked: Ranked | None  # stage 3 (None when ranking is off)

    @property
    def score(self) -> float:
        return self.ranked.score if self.ranked is not None else self.relevance


@dataclass(frozen=True, slots=True)
class Rejection:
    profile: AgentProfile
    vector: float
    reason: str


@dataclass(frozen=True, slots=True)
class RecruitResult:
    chosen: list[Choice]
    rejected: list[Rejection]
    timings_ms: dict[str, float]
    filter_mode: str


class Recruiter:
    """Owns the candidate index and the profiles it points to."""

    def __init__(
        self,
        embedder: Embedder,
        *,
        index: VectorIndex | None = None,
        lexical: LexicalIndex | None = None,
        signals: Signals | None = None,
        weights: RankingWeights | None = None,
        rescore_weights: RescoreWeights | None = None,
        llm: LlmBackend | None = None,
        outcomes: OutcomeMemory | None = None,
    ) -> None:
        self._embedder = embedder
        self.index = index if index is not None else VectorIndex()  # an empty one is falsy
        self.examples = VectorIndex(dimension=self.index.dimension)  # skill examples, stage 2
        self.lexical = lexical if lexical is not None else LexicalIndex()
        self.profiles: dict[str, AgentProfile] = {}
        self.signals: Signals = signals or NoSignals()
        self.weights = weights or RankingWeights()
        self.rescore_weights = rescore_weights or RescoreWeights()
        self.outcomes = outcomes if outcomes is not None else OutcomeMemory()
        self._judge = LlmJudge(llm) if llm is not None else None

    def with_judge(self, llm: LlmBackend, *, json_schema: bool = False) -> Recruiter:
        """This recruiter with an LLM judge in stage 2: the same cards, indexes and signals
        (shared, not copied). ``json_schema`` constrains the judge's answer to its schema."""
        judged = copy.copy(self)
        judged._judge = LlmJudge(llm, json_schema=json_schema)
        return judged

    # ---- keeping the index in step with the cards (blocking: embeds) --------------------

    def upsert(self, profile: AgentProfile) -> None:
        if self.profiles.get(profile.agent_id) == profile:
            return
        self._index_profile(profile, self._embedder.encode(_texts(profile)))

    def upsert_many(self, profiles: list[AgentProfile]) -> None:
        """Batch form of ``upsert``: one embedding pass for all texts (fast index builds)."""
        fresh = [p for p in profiles if self.profiles.get(p.agent_id) != p]
        texts = [text for p in fresh for text in _texts(p)]
        vectors = self._embedder.encode(texts) if texts else None
        at = 0
        for profile in fresh:
            count = len(_texts(profile))
            assert vectors is not None
            self._index_profile(profile, vectors[at : at + count])
            at += count

    def _index_profile(self, profile: AgentProfile, vectors: np.ndarray) -> None:
        """Skill vectors (one per ``profile.texts()``) then example vectors, as ``_texts``."""
        skills = len(profile.texts())
        self.profiles[profile.agent_id] = profile
        self.index.upsert(profile.agent_id, vectors[:skills])
        if len(vectors) > skills:
            self.examples.upsert(profile.agent_id, vectors[skills:])
        else:
            self.examples.remove(profile.agent_id)
        self.lexical.upsert(profile)

    def remove(self, agent_id: str) -> None:
        self.profiles.pop(agent_id, None)
        self.index.remove(agent_id)
        self.examples.remove(agent_id)
        self.lexical.remove(agent_id)

    # ---- learning from outcomes --------------------------------------------------------------

    def record_outcome(self, task: str, agent_id: str, rating: float) -> None:
        """A rated task of this node (blocking: embeds ``task``, usually a cache hit since the
        task was recruited for): stage 3's ``outcome`` feature learns from it."""
        self.outcomes.record(agent_id, self._embedder.encode_one(task[:4000]), rating)

    # ---- recruiting --------------------------------------------------------------------------

    def _search(self, task: str, k: int, use_lexical: bool) -> tuple[list[Candidate], np.ndarray]:
        """Stage 1: vector search for the task's text (and, for a long one, for its
        instruction, the words before the document it carries; an agent keeps its better
        cosine), BM25 over the task's words, fused; the ``k`` best candidates and the task's
        vector."""
        texts = [task[:4000]]
        if len(task) > LONG_REQUEST:
            texts = list(dict.fromkeys([*texts, instruction_of(task)]))
        vectors = self._embedder.encode(texts)
        best: dict[str, Hit] = {}
        for vector in vectors:
            for hit in self.index.search(vector, k):
                _keep_better(best, hit)
        terms = self.lexical.terms(task[:4000]) if use_lexical else {}
        words = self.lexical.search_terms(terms, k) if terms else []
        missing = [h.agent_id for h in words if h.agent_id not in best]
        if missing:  # found by words only: their cosine, read back from the vector index
            for vector in vectors:
                for hit in self.index.score_agents(vector, missing).values():
                    _keep_better(best, hit)
        share = dense_share(len(terms)) if use_lexical else 1.0
        return fuse(best, words, share=share)[:k], vectors[0]

    async def recruit(self, query: RecruitQuery, *, requester: str, now_ms: int) -> RecruitResult:
        if query.constraints.policy is not None:
            validate_policy(query.constraints.policy)  # malformed: ValueError, whatever the pool
        timings: dict[str, float] = {}
        started = time.perf_counter()
        found, task_vector = await asyncio.to_thread(
            self._search, query.task, query.candidates, query.use_lexical
        )
        candidates = [c for c in found if c.agent_id in self.profiles]
        pool = [(self.profiles[c.agent_id], c.fused) for c in candidates]
        timings["vector"] = _ms(started)

        rejected: list[Rejection] = []
        kept: list[tuple[AgentProfile, float, float]] = [(p, s, s) for p, s in pool]
        mode = "off"
        if query.use_filter and pool:
            started = time.perf_counter()
            kept, rejected, mode = await self._stage2(query, candidates, pool, task_vector, now_ms)
            timings["filter"] = _ms(started)

        started = time.perf_counter()
        if query.use_ranking:
            ranked = rank(
                [(p, relevance) for p, _, relevance in kept],
                requester=requester,
                signals=self.signals,
                weights=self.weights,
                now_ms=now_ms,
                max_price=query.constraints.max_price,
                outcomes=self.outcomes.score(task_vector, [p.agent_id for p, _, _ in kept]),
            )
            vectors = {p.agent_id: cosine for p, cosine, _ in kept}
            relevances = {p.agent_id: relevance for p, _, relevance in kept}
            chosen = [
                Choice(r.profile, vectors[r.profile.agent_id], relevances[r.profile.agent_id], r)
                for r in ranked
            ]
        else:
            ordered = sorted(kept, key=lambda item: (-item[2], item[0].agent_id))
            chosen = [Choice(p, cosine, relevance, None) for p, cosine, relevance in ordered]
        timings["rank"] = _ms(started)
        return RecruitResult(chosen[: query.top], rejected, timings, mode)

    async def _stage2(
        self,
        query: RecruitQuery,
        candidates: list[Candidate],
        pool: list[tuple[AgentProfile, float]],
        task_vector: np.ndarray,
        now_ms: int,
    ) -> tuple[list[tuple[AgentProfile, float, float]], list[Rejection], str]:
        """Re-score, then hard constraints, the relevance floor and the LLM judge's vetoes."""
        profiles = [p for p, _ in pool]
        reasons = constraint_reasons(profiles, query.constraints, now_ms=now_ms)
        examples = (  # a read-back of at most a few hundred vectors: no worker thread
            self.examples.score_agents(task_vector, [c.agent_id for c in candidates])
            if len(self.examples)
            else {}
        )
        scored = rescore(
            query.task, candidates, self.profiles, self.rescore_weights,
            examples={a: h.score for a, h in examples.items()},
        )  # fmt: skip
        for i, item in enumerate(scored):
            if reasons[i] is None and item.relevance < MIN_RELEVANCE:
                reasons[i] = f"not relevant: scores {item.relevance:.3f} < {MIN_RELEVANCE}"
        mode = OFFLINE_FILTER
        vetoes: dict[str, str] = {}
        if self._judge is not None:
            verdicts = [
                Verdict(p, item.relevance, c.skill)
                for p, item, c, reason in zip(profiles, scored, candidates, reasons, strict=True)
                if reason is None
            ]
            vetoes, mode = await self._judge.vetoes(query.task, verdicts)
        kept: list[tuple[AgentProfile, float, float]] = []
        rejected: list[Rejection] = []
        for (profile, fused), item, reason in zip(pool, scored, reasons, strict=True):
            reason = reason or vetoes.get(profile.agent_id)
            if reason is not None:
                rejected.append(Rejection(profile, fused, reason))
            else:
                kept.append((profile, fused, item.relevance))
        return kept, rejected, mode


def _texts(profile: AgentProfile) -> list[str]:
    """What is embedded for a profile: one text per skill, then every skill example."""
    return profile.texts() + [e for skill in profile.skills for e in skill.examples]


def _keep_better(best: dict[str, Hit], hit: Hit) -> None:
    if hit.agent_id not in best or hit.score > best[hit.agent_id].score:
        best[hit.agent_id] = hit


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
