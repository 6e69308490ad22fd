"""Learning from outcomes through the whole recruiter, without the embedding model: two agents
whose cards say the same thing, each good at a different kind of request; rated tasks teach the
recruiter which one to pick for which kind, a simulation shows the share of good picks rising as
feedback accumulates, and with the outcome weight at 0 nothing is learned."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import pytest

from noosphere.mars.profile import AgentProfile, SkillProfile
from noosphere.mars.ranking import RankingWeights
from noosphere.mars.recruit import Recruiter, RecruitQuery

DIM = 384
NOW = 1_800_000_000_000


def _unit(*parts: tuple[int, float]) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    for i, x in parts:
        v[i] = x
    return v / np.linalg.norm(v)


class KindEmbedder:
    """Cards map to e_0; a request "legal #n" near e_0 + 1.6 e_1, "lyrics #n" near e_0 + 1.6 e_2
    (each request a little apart from the others of its kind: cosine 0.91 within a kind, 0.26
    across)."""

    model_name = "stub"
    dimension = DIM

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            if text.startswith(("legal", "lyrics")):
                axis = 1 if text.startswith("legal") else 2
                n = int(text.rsplit("#", 1)[1])
                out[row] = _unit((0, 0.5), (axis, 0.8), (10 + n % 300, 0.3))
            else:
                out[row] = _unit((0, 1.0))
        return out

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def translator(agent_id: str) -> AgentProfile:
    skill = SkillProfile(name="Translation", description="Translate any text between languages.")
    return AgentProfile(agent_id=agent_id, name="Translator", description="", skills=(skill,))


GOOD_AT = {"p/legal": "legal", "p/lyrics": "lyrics"}


def recruiter(outcome_weight: float) -> Recruiter:
    r = Recruiter(KindEmbedder(), weights=RankingWeights(outcome=outcome_weight))  # type: ignore[arg-type]
    r.upsert_many([translator("p/legal"), translator("p/lyrics")])
    return r


async def pick(r: Recruiter, task: str) -> str:
    result = await r.recruit(RecruitQuery(task=task, top=1), requester="me", now_ms=NOW)
    return result.chosen[0].profile.agent_id


async def test_a_rated_task_moves_the_agent_for_similar_requests_only() -> None:
    r = recruiter(RankingWeights().outcome)
    assert await pick(r, "legal #1") == "p/legal"  # a tie: by id
    assert await pick(r, "lyrics #1") == "p/legal"
    r.record_outcome("lyrics #2", "p/legal", 0.0)  # bad at lyrics ...
    r.record_outcome("lyrics #3", "p/lyrics", 1.0)
    assert await pick(r, "lyrics #4") == "p/lyrics"
    assert await pick(r, "legal #4") == "p/legal"  # ... which says nothing about contracts
    result = await r.recruit(RecruitQuery(task="lyrics #5", top=2), requester="me", now_ms=NOW)
    outcome = {c.profile.agent_id: c.ranked.features["outcome"] for c in result.chosen if c.ranked}
    assert outcome["p/lyrics"] > 0.6 and outcome["p/legal"] < 0.4  # Beta means of one rating
    assert outcome["p/lyrics"] + outcome["p/legal"] == pytest.approx(1.0)


async def simulate(outcome_weight: float, rounds: int, per_round: int) -> list[float]:
    """Share of good picks per round; a good agent succeeds 90 %, the other 10 %."""
    r = recruiter(outcome_weight)
    rng = random.Random(5)
    shares = []
    n = 0
    for _ in range(rounds):
        good = 0
        for _ in range(per_round):
            n += 1
            kind = rng.choice(["legal", "lyrics"])
            task = f"{kind} #{n}"
            agent = await pick(r, task)
            fits = GOOD_AT[agent] == kind
            good += fits
            success = rng.random() < (0.9 if fits else 0.1)
            r.record_outcome(task, agent, 1.0 if success else 0.0)
        shares.append(good / per_round)
    return shares


async def test_recruit_quality_rises_as_feedback_accumulates() -> None:
    learning = await simulate(RankingWeights().outcome, rounds=8, per_round=4)
    control = await simulate(0.0, rounds=8, per_round=4)
    assert learning[0] < 1.0  # at first: a tie broken by id, right for one kind only
    assert min(learning[1:]) == 1.0  # from the fifth rated task on, every pick is right
    assert sum(control) / len(control) <= 0.7  # without the feature nothing learns
