"""Recruit (MARS): "which agents should do this task?", answered on the requester's node from
the profiles it holds. Stage 1 finds candidates by vector search, stage 2 re-scores them skill by
skill and applies hard constraints (every rejection has a reason), stage 3 ranks the survivors on
relevance, reputation, latency, availability, history and price. Each stage can be switched off
(the evaluation compares vector only, + filter, + ranking)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from noosphere.models.embedding import Embedder
from noosphere.models.llm import LlmBackend
from noosphere.models.text import instruction_of

from .filter import Constraints, LlmJudge, SemanticFilter, Verdict, validate_policy
from .index import Hit, VectorIndex
from .profile import AgentProfile
from .ranking import NoSignals, Ranked, RankingWeights, Signals, rank

OFFLINE_FILTER = "offline skill-by-skill re-scoring (no LLM)"


@dataclass(frozen=True, slots=True)
class RecruitQuery:
    task: str
    top: int = 5
    candidates: int = 50
    constraints: Constraints = field(default_factory=Constraints)
    use_filter: bool = True
    use_ranking: bool = True


@dataclass(frozen=True, slots=True)
class Choice:
    profile: AgentProfile
    vector: float  # stage 1 cosine
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
        signals: Signals | None = None,
        weights: RankingWeights | None = None,
        llm: LlmBackend | None = None,
    ) -> None:
        self._embedder = embedder
        self.index = index if index is not None else VectorIndex()  # an empty one is falsy
        self.profiles: dict[str, AgentProfile] = {}
        self.signals: Signals = signals or NoSignals()
        self.weights = weights or RankingWeights()
        self._filter = SemanticFilter(embedder)
        self._judge = LlmJudge(llm) if llm is not None else None

    # ---- keeping the index in step with the cards (blocking: embeds) --------------------

    def upsert(self, profile: AgentProfile) -> None:
        if self.profiles.get(profile.agent_id) == profile:
            return
        self.profiles[profile.agent_id] = profile
        self.index.upsert(profile.agent_id, self._embedder.encode(profile.texts()))

    def upsert_many(self, profiles: list[AgentProfile]) -> None:
        """Batch form of ``upsert``: one embedding pass for all texts (fast index builds)."""
        fresh = [p for p in profiles if self.profiles.get(p.agent_id) != p]
        texts = [text for p in fresh for text in p.texts()]
        vectors = self._embedder.encode(texts) if texts else None
        at = 0
        for profile in fresh:
            count = len(profile.texts())
            assert vectors is not None
            self.profiles[profile.agent_id] = profile
            self.index.upsert(profile.agent_id, vectors[at : at + count])
            at += count

    def remove(self, agent_id: str) -> None:
        self.profiles.pop(agent_id, None)
        self.index.remove(agent_id)

    # ---- recruiting --------------------------------------------------------------------------

    def _search(self, task: str, k: int) -> list[Hit]:
        """Stage 1 for the task's full text and for its instruction (the words before a
        document it carries); an agent keeps its better score."""
        texts = list(dict.fromkeys([task[:4000], instruction_of(task)]))
        best: dict[str, Hit] = {}
        for vector in self._embedder.encode(texts):
            for hit in self.index.search(vector, k):
                if hit.agent_id not in best or hit.score > best[hit.agent_id].score:
                    best[hit.agent_id] = hit
        return sorted(best.values(), key=lambda h: (-h.score, h.agent_id))[:k]

    async def recruit(self, query: RecruitQuery, *, requester: str, now_ms: int) -> RecruitResult:
        if query.constraints.policy is not None:
            validate_policy(query.constraints.policy)  # malformed: ValueError, whatever the pool
        timings: dict[str, float] = {}
        started = time.perf_counter()
        hits = await asyncio.to_thread(self._search, query.task, query.candidates)
        pool = [(self.profiles[h.agent_id], h.score) for h in hits if h.agent_id in self.profiles]
        timings["vector"] = _ms(started)

        rejected: list[Rejection] = []
        kept: list[tuple[AgentProfile, float, float]] = [(p, s, s) for p, s in pool]
        mode = "off"
        if query.use_filter and pool:
            started = time.perf_counter()
            verdicts: list[Verdict] = await asyncio.to_thread(
                self._filter.judge,
                query.task,
                [p for p, _ in pool],
                query.constraints,
                now_ms=now_ms,
            )
            mode = OFFLINE_FILTER
            vetoes: dict[str, str] = {}
            if self._judge is not None:
                vetoes, mode = await self._judge.vetoes(query.task, [v for v in verdicts if v.kept])
            kept = []
            for (profile, cosine), verdict in zip(pool, verdicts, strict=True):
                reason = verdict.reason or vetoes.get(profile.agent_id)
                if reason is not None:
                    rejected.append(Rejection(profile, cosine, reason))
                else:
                    kept.append((profile, cosine, _blend(cosine, verdict.relevance)))
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


#: Stage 2's relevance is the mean of the stage 1 cosine and the skill-by-skill re-score: on the
#: development set the blend beat either score alone (nDCG@10 0.660 vs 0.634 and 0.621).
STAGE1_SHARE = 0.5


def _blend(vector: float, rescored: float) -> float:
    return STAGE1_SHARE * vector + (1 - STAGE1_SHARE) * rescored


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
