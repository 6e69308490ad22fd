"""MARS end to end with the real embedding model over the example agents' signed cards: the right
agent for each skill example and for paraphrases, the stage switches, rejection reasons, batch
and single index updates agreeing, removal, and malformed policies."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from noosphere.agents.publish import NodeEndpoint, build_card
from noosphere.agents.spec import load_agent_spec
from noosphere.mars.filter import Constraints
from noosphere.mars.profile import AgentProfile, profile_from_card
from noosphere.mars.recruit import OFFLINE_FILTER, Recruiter, RecruitQuery
from noosphere.models.embedding import Embedder
from noosphere.protocol import NodeKey

EXAMPLES = Path(__file__).parents[2] / "examples" / "agents"
NOW = int(time.time() * 1000)
KEY = NodeKey.from_seed(b"\x07" * 32)
ENDPOINT = NodeEndpoint(rpc_url="http://127.0.0.1:9/", multiaddrs=["/ip4/127.0.0.1/tcp/9"])


def load_profiles() -> tuple[list[AgentProfile], list[tuple[str, str]]]:
    profiles, examples = [], []
    for path in sorted(EXAMPLES.glob("*.*")):
        spec = load_agent_spec(path)
        card = build_card(spec, KEY, ENDPOINT, seq=1, issued_at_ms=NOW - 1000, ttl_ms=60_000)
        p = profile_from_card(f"{KEY.peer_id}/{spec.id}", card)
        profiles.append(p)
        examples += [(example, p.agent_id) for s in spec.skills for example in s.examples]
    return profiles, examples


PROFILES, SKILL_EXAMPLES = load_profiles()
BY_NAME = {p.name: p for p in PROFILES}


@pytest.fixture(scope="module")
def recruiter(embedder: Embedder) -> Recruiter:
    r = Recruiter(embedder)
    r.upsert_many(PROFILES)
    return r


async def recruit(r: Recruiter, task: str, **kwargs: object) -> object:
    return await r.recruit(RecruitQuery(task, **kwargs), requester="me", now_ms=NOW)  # type: ignore[arg-type]


def test_profiles_from_the_example_cards() -> None:
    assert len(PROFILES) == 6 and len(SKILL_EXAMPLES) >= 15
    calc = BY_NAME["Exact Calculator"]
    assert calc.agent_id == f"{KEY.peer_id}/exact-calculator"
    assert calc.peer_id == KEY.peer_id and calc.rpc_url == ENDPOINT.rpc_url
    assert calc.tenant == "exact-calculator" and calc.price == 5
    assert [s.name for s in calc.skills] == ["Arithmetic", "Unit conversion"]
    assert calc.expires_at - calc.issued_at == 60_000
    assert len(calc.texts()) == 2 and calc.texts()[0].startswith("Exact Calculator: ")


@pytest.mark.parametrize(("task", "expected"), SKILL_EXAMPLES, ids=[t for t, _ in SKILL_EXAMPLES])
async def test_each_skill_example_recruits_its_agent(
    recruiter: Recruiter, task: str, expected: str
) -> None:
    result = await recruit(recruiter, task)
    assert result.chosen[0].profile.agent_id == expected  # type: ignore[attr-defined]


PARAPHRASES = [
    ("how many kilometres is a marathon in miles?", "Exact Calculator"),
    ("give me a short summary of this long report", "Document Summarizer"),
    ("what is the flesch reading ease of my essay?", "Readability Auditor"),
    ("sum the revenue column grouped by country", "Data Wrangler"),
    ("when is 3pm London time in Sydney?", "Time Zone Scheduler"),
]


@pytest.mark.parametrize(("task", "name"), PARAPHRASES, ids=[t for t, _ in PARAPHRASES])
async def test_paraphrases_recruit_the_right_agent(recruiter: Recruiter, task: str, name: str):
    for stages in ({}, {"use_ranking": False}, {"use_filter": False, "use_ranking": False}):
        result = await recruit(recruiter, task, **stages)
        assert result.chosen[0].profile.name == name, stages  # type: ignore[attr-defined]


async def test_stage_switches(recruiter: Recruiter) -> None:
    task = "what is 17/3 + 2^10?"
    vector_only = await recruit(recruiter, task, use_filter=False, use_ranking=False, top=10)
    assert vector_only.filter_mode == "off" and vector_only.rejected == []
    assert len(vector_only.chosen) == 6  # nothing filtered out
    assert set(vector_only.timings_ms) == {"vector", "rank"}
    for c in vector_only.chosen:
        assert c.ranked is None and c.relevance == c.vector == c.score
    scores = [c.score for c in vector_only.chosen]
    assert scores == sorted(scores, reverse=True)

    filtered = await recruit(recruiter, task, use_ranking=False, top=10)
    assert filtered.filter_mode == OFFLINE_FILTER
    assert set(filtered.timings_ms) == {"vector", "filter", "rank"}
    assert len(filtered.chosen) + len(filtered.rejected) == 6
    assert {c.profile.name for c in filtered.chosen} >= {"Exact Calculator"}
    for c in filtered.chosen:
        assert c.ranked is None and c.score == c.relevance
    relevances = [c.relevance for c in filtered.chosen]
    assert relevances == sorted(relevances, reverse=True)

    full = await recruit(recruiter, task, top=10)
    assert [c.profile.agent_id for c in full.chosen] != [] and full.chosen[0].ranked is not None
    assert {c.profile.agent_id for c in full.chosen} == {
        c.profile.agent_id for c in filtered.chosen
    }
    assert full.chosen[0].profile.name == "Exact Calculator"
    assert full.chosen[0].ranked.explain().startswith("relevance ")  # type: ignore[union-attr]
    assert [c.score for c in full.chosen] == sorted((c.score for c in full.chosen), reverse=True)

    top1 = await recruit(recruiter, task, top=1)
    assert len(top1.chosen) == 1
    few = await recruit(recruiter, task, candidates=2, top=10)
    assert len(few.chosen) + len(few.rejected) == 2


async def test_rejections_carry_reasons(recruiter: Recruiter) -> None:
    result = await recruit(
        recruiter,
        "convert this CSV to JSON",
        constraints=Constraints(max_price=4, required_tags=("JSON",)),
        top=10,
    )
    reasons = {r.profile.name: r.reason for r in result.rejected}
    assert [c.profile.name for c in result.chosen] in ([], ["Data Wrangler"])
    for name, reason in reasons.items():
        assert reason, name
    assert reasons["Exact Calculator"] in ("lacks required tags: JSON", "price 5 over the budget 4")
    wrangler = BY_NAME["Data Wrangler"]
    if wrangler.price > 4:
        assert reasons["Data Wrangler"] == f"price {wrangler.price} over the budget 4"
    unrelated = await recruit(recruiter, "how readable is this paragraph?", top=10)
    assert any(r.reason.startswith("not relevant: ") for r in unrelated.rejected)
    for rejection in unrelated.rejected:
        assert -1.0 <= rejection.vector <= 1.0


async def test_expired_profiles_are_rejected_by_the_filter(embedder: Embedder) -> None:
    r = Recruiter(embedder)
    calc = BY_NAME["Exact Calculator"]
    r.upsert(replace(calc, expires_at=NOW - 1))
    result = await recruit(r, "what is 17/3 + 2^10?")
    assert result.chosen == [] and [x.reason for x in result.rejected] == ["card expired"]


async def test_upsert_many_equals_many_upserts(embedder: Embedder, recruiter: Recruiter):
    single = Recruiter(embedder)
    for p in PROFILES:
        single.upsert(p)
    assert single.profiles == recruiter.profiles
    assert len(single.index) == len(recruiter.index) == 6
    assert single.index.vectors == recruiter.index.vectors
    for task, _ in SKILL_EXAMPLES[:5]:
        query = embedder.encode_one(task)
        a, b = single.index.search(query, 6), recruiter.index.search(query, 6)
        assert [(h.agent_id, h.skill) for h in a] == [(h.agent_id, h.skill) for h in b]
        assert np.allclose([h.score for h in a], [h.score for h in b], atol=1e-5)

    # Unchanged profiles are not embedded again; a changed one is re-indexed.
    passes = embedder.forward_passes
    single.upsert_many(PROFILES)
    single.upsert(PROFILES[0])
    assert embedder.forward_passes == passes
    calc = BY_NAME["Exact Calculator"]
    changed = replace(calc, skills=calc.skills[:1])
    single.upsert_many([changed])
    assert single.profiles[calc.agent_id] == changed
    assert single.index.vectors == recruiter.index.vectors - 1


async def test_remove_drops_the_agent(embedder: Embedder) -> None:
    r = Recruiter(embedder)
    r.upsert_many(PROFILES)
    calc = BY_NAME["Exact Calculator"]
    r.remove(calc.agent_id)
    r.remove("never/indexed")
    assert calc.agent_id not in r.profiles and len(r.index) == 5
    result = await recruit(r, "what is 17/3 + 2^10?", top=10)
    ids = {c.profile.agent_id for c in result.chosen} | {
        x.profile.agent_id for x in result.rejected
    }
    assert calc.agent_id not in ids
    assert result.chosen[0].profile.name == "Bargain Calculator"


@pytest.mark.parametrize("policy", ["org:noosphere and", "((a:b)", "NOT_AN_ATTRIBUTE", ""])
async def test_malformed_policy_raises_value_error(
    embedder: Embedder, recruiter: Recruiter, policy: str
) -> None:
    with pytest.raises(ValueError):
        await recruit(recruiter, "what is 1+1?", constraints=Constraints(policy=policy))
    # Even when there is nothing to filter (an empty index, or the filter switched off).
    with pytest.raises(ValueError):
        await recruit(Recruiter(embedder), "what is 1+1?", constraints=Constraints(policy=policy))
    with pytest.raises(ValueError):
        await recruit(
            recruiter, "what is 1+1?", constraints=Constraints(policy=policy), use_filter=False
        )


async def test_a_valid_policy_rejects_unattested_agents(recruiter: Recruiter) -> None:
    result = await recruit(
        recruiter, "what is 17/3 + 2^10?", constraints=Constraints(policy="org:noosphere")
    )
    assert result.chosen == []
    assert {r.reason for r in result.rejected} <= {
        "no attribute attestation (cannot open sealed task data)",
    } | {r.reason for r in result.rejected if r.reason.startswith("not relevant")}
