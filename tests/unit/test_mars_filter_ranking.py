"""MARS stages 2 and 3 without the embedding model (a table-driven stub embedder): every hard
constraint of the semantic filter gives its reason (ABE policies checked against real signed
attestations), the relevance threshold, the ranking's weights, neutral and real signals,
deterministic ties and explanations, and the LLM judge against a real local OpenAI-compatible
server (vetoes, and the fallback when the endpoint fails or answers nonsense)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from llm_server import FakeOpenAI, Scripted, content_reply

from noosphere.mars.filter import Constraints, LlmJudge, SemanticFilter, Verdict
from noosphere.mars.profile import AgentProfile, SkillProfile
from noosphere.mars.ranking import NEUTRAL, NoSignals, RankingWeights, rank, scale_relevance
from noosphere.models.llm import LlmBackend, LlmConfig
from noosphere.protocol import NodeKey
from noosphere.protocol.attestation import Attestation, sign_attestation

NOW = 1_800_000_000_000
DIM = 384
AUTHORITY = NodeKey.from_seed(b"\x01" * 32)
AGENT_NODE = NodeKey.from_seed(b"\x02" * 32)


class StubEmbedder:
    """Texts containing a key of ``table`` map to that vector; every other text to e_0."""

    def __init__(self, table: dict[str, np.ndarray] | None = None) -> None:
        self.table = table or {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = next((v for key, v in self.table.items() if key in text), _e(0))
        return out

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def _e(i: int, j: int | None = None, cos: float = 1.0) -> np.ndarray:
    """A unit vector whose cosine with e_i is ``cos`` (tilted towards e_j)."""
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = cos
    if j is not None:
        v[j] = float(np.sqrt(max(0.0, 1 - cos * cos)))
    return v


def profile(agent_id: str = "peer/agent", **overrides: Any) -> AgentProfile:
    fields: dict[str, Any] = {
        "agent_id": agent_id,
        "name": agent_id.title(),
        "description": "does things",
        "skills": (
            SkillProfile(
                name="Arithmetic",
                description="exact arithmetic",
                tags=("Math", "calculator"),
                examples=("what is 2+2?",),
                input_modes=("text/csv",),
                output_modes=("application/json",),
            ),
        ),
        "peer_id": AGENT_NODE.peer_id,
        "price": 5,
        "input_modes": ("text/plain",),
        "output_modes": ("text/plain",),
        "issued_at": NOW - 10_000,
        "expires_at": NOW + 50_000,
    }
    fields.update(overrides)
    return AgentProfile(**fields)


def attestation(
    attributes: list[str],
    *,
    issuer: NodeKey = AUTHORITY,
    subject: str = AGENT_NODE.peer_id,
    issued_at: int = NOW - 60_000,
    expires_at: int = NOW + 3_600_000,
) -> dict[str, Any]:
    unsigned = Attestation(
        authority="fingerprint-1",
        issuer=issuer.peer_id,
        epoch=1,
        subject=subject,
        attributes=attributes,
        issued_at=issued_at,
        expires_at=expires_at,
    )
    return sign_attestation(unsigned, issuer).to_wire()


NO_CONSTRAINTS = Constraints()


def verdict(p: AgentProfile, c: Constraints = NO_CONSTRAINTS, **kwargs: Any) -> Verdict:
    f = SemanticFilter(StubEmbedder(), **kwargs)  # type: ignore[arg-type]
    [v] = f.judge("a task", [p], c, now_ms=NOW)
    return v


# ---- stage 2: hard constraints ---------------------------------------------------------------


def test_a_fitting_candidate_is_kept() -> None:
    v = verdict(profile())
    assert v.kept and v.reason is None
    assert v.relevance == pytest.approx(1.0)


def test_expired_card() -> None:
    assert verdict(profile(expires_at=NOW)).reason == "card expired"
    assert verdict(profile(expires_at=0)).kept  # unknown expiry is not expired


def test_required_tags_case_insensitive() -> None:
    assert verdict(profile(), Constraints(required_tags=("MATH", "Calculator"))).kept
    v = verdict(profile(), Constraints(required_tags=("math", "units", "Geo")))
    assert v.reason == "lacks required tags: units, Geo"


def test_input_modes() -> None:
    for readable in ("text/plain", "application/json", "text/csv", "TEXT/CSV; charset=utf-8"):
        assert verdict(profile(), Constraints(input_modes=(readable,))).kept, readable
    v = verdict(profile(), Constraints(input_modes=("text/plain", "image/png", "audio/wav")))
    assert v.reason == "cannot read image/png, audio/wav"
    assert verdict(profile(input_modes=("image/*",)), Constraints(input_modes=("image/png",))).kept
    assert verdict(profile(input_modes=("*/*",)), Constraints(input_modes=("video/mp4",))).kept


def test_output_modes() -> None:
    # Any one acceptable mode is enough; every agent can answer in text.
    assert verdict(profile(), Constraints(output_modes=("image/png", "application/json"))).kept
    assert verdict(profile(), Constraints(output_modes=("text/plain",))).kept
    assert verdict(profile(), Constraints(output_modes=("*/*",))).kept
    v = verdict(profile(), Constraints(output_modes=("image/png", "text/csv")))
    assert v.reason == "answers in none of image/png, text/csv"
    assert verdict(profile(), Constraints(output_modes=("application/*",))).kept


def test_price_budget() -> None:
    assert verdict(profile(price=5), Constraints(max_price=5)).kept
    assert verdict(profile(price=6), Constraints(max_price=5)).reason == (
        "price 6 over the budget 5"
    )
    assert verdict(profile(price=1), Constraints(max_price=0)).reason == (
        "price 1 over the budget 0"
    )


POLICY = "org:noosphere and (role:analyst or role:auditor)"


def test_policy_without_attestation() -> None:
    v = verdict(profile(attributes=("org:noosphere", "role:analyst")), Constraints(policy=POLICY))
    assert v.reason == "no attribute attestation (cannot open sealed task data)"


def test_policy_with_an_untrusted_issuer() -> None:
    p = profile(attestation=attestation(["org:noosphere", "role:analyst"]))
    other = NodeKey.from_seed(b"\x03" * 32).peer_id
    v = verdict(p, Constraints(policy=POLICY, trusted_issuers=frozenset({other})))
    assert v.reason == "attestation from an authority the requester does not trust"
    trusted = Constraints(policy=POLICY, trusted_issuers=frozenset({AUTHORITY.peer_id}))
    assert verdict(p, trusted).kept


def test_policy_with_a_forged_or_misused_attestation() -> None:
    forged = attestation(["org:noosphere", "role:analyst"])
    forged["attributes"] = ["org:noosphere", "role:auditor", "role:admin"]
    v = verdict(profile(attestation=forged), Constraints(policy=POLICY))
    assert v.reason is not None and v.reason.startswith("attestation invalid: ")
    assert "signature" in v.reason

    # Signed by the agent's own node: a valid signature, but not by the requester's authority.
    self_signed = attestation(["org:noosphere", "role:analyst"], issuer=AGENT_NODE)
    v = verdict(
        profile(attestation=self_signed),
        Constraints(policy=POLICY, trusted_issuers=frozenset({AUTHORITY.peer_id})),
    )
    assert v.reason == "attestation from an authority the requester does not trust"

    expired = attestation(["org:noosphere", "role:analyst"], expires_at=NOW - 1)
    v = verdict(profile(attestation=expired), Constraints(policy=POLICY))
    assert v.reason == "attestation invalid: attestation is expired or not yet valid"

    other_node = attestation(["org:noosphere", "role:analyst"], subject=AUTHORITY.peer_id)
    v = verdict(profile(attestation=other_node), Constraints(policy=POLICY))
    assert v.reason == "attestation invalid: attestation is about another node"

    garbage = {"issuer": "nobody", "attributes": "not a list"}
    v = verdict(profile(attestation=garbage), Constraints(policy=POLICY))
    assert v.reason is not None and v.reason.startswith("attestation invalid: ")


def test_policy_tolerates_an_authority_clock_slightly_ahead() -> None:
    ahead = attestation(["org:noosphere", "role:analyst"], issued_at=NOW + 30_000)
    assert verdict(profile(attestation=ahead), Constraints(policy=POLICY)).kept


def test_policy_attributes_not_satisfying_and_satisfying() -> None:
    # The card claims more than the authority attested: only attested attributes count.
    p = profile(
        attributes=("org:noosphere", "role:analyst"),
        attestation=attestation(["org:noosphere", "role:intern"]),
    )
    v = verdict(p, Constraints(policy=POLICY))
    assert v.reason == "attested attributes do not satisfy org:noosphere and (role:analyst or " + (
        "role:auditor)"
    )
    ok = profile(attestation=attestation(["org:noosphere", "role:auditor"]))
    assert verdict(ok, Constraints(policy=POLICY)).kept
    assert verdict(ok, Constraints(policy="2 of (org:noosphere, role:auditor, x:y)")).kept


def test_malformed_policy_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="policy"):
        verdict(profile(), Constraints(policy="org:noosphere and and"))


def test_constraints_are_checked_in_order_and_first_reason_wins() -> None:
    p = profile(price=50, expires_at=NOW - 1)
    assert verdict(p, Constraints(max_price=1, required_tags=("zzz",))).reason == "card expired"


# ---- stage 2: relevance ------------------------------------------------------------------------


def test_relevance_threshold_and_example_rescoring() -> None:
    task = "TASK"
    table = {
        task: _e(0),
        "Weak:": _e(0, 1, 0.2),
        "Fine:": _e(0, 1, 0.5),
        "EXAMPLE-HIT": _e(0, 1, 0.9),
    }
    weak = profile(
        "p/weak",
        skills=(SkillProfile(name="Weak", description="x", examples=("unrelated",)),),
    )
    fine = profile("p/fine", skills=(SkillProfile(name="Fine", description="x"),))
    # A weak skill text rescued by a close example: 0.6 * 0.2 + 0.4 * 0.9 = 0.48.
    rescued = profile(
        "p/rescued",
        skills=(
            SkillProfile(name="Other", description="x"),
            SkillProfile(name="Weak", description="x", examples=("EXAMPLE-HIT", "unrelated")),
        ),
    )
    table["unrelated"] = _e(0, 1, 0.0)
    table["Other:"] = _e(0, 1, 0.0)
    f = SemanticFilter(StubEmbedder(table), min_relevance=0.25)  # type: ignore[arg-type]
    verdicts = f.judge(task, [weak, fine, rescued], Constraints(), now_ms=NOW)
    by_id = {v.profile.agent_id: v for v in verdicts}
    assert [v.profile.agent_id for v in verdicts] == ["p/weak", "p/fine", "p/rescued"]
    assert by_id["p/weak"].relevance == pytest.approx(0.2, abs=1e-5)
    assert by_id["p/weak"].reason == "not relevant: best skill scores 0.200 < 0.25"
    assert by_id["p/fine"].kept and by_id["p/fine"].relevance == pytest.approx(0.5, abs=1e-5)
    assert by_id["p/rescued"].kept and by_id["p/rescued"].skill == 1
    assert by_id["p/rescued"].relevance == pytest.approx(0.48, abs=1e-5)
    # A hard constraint is reported before irrelevance.
    [v] = f.judge(task, [replace(weak, price=9)], Constraints(max_price=1), now_ms=NOW)
    assert v.reason == "price 9 over the budget 1"
    strict = SemanticFilter(StubEmbedder(table), min_relevance=0.6)  # type: ignore[arg-type]
    assert not strict.judge(task, [fine], Constraints(), now_ms=NOW)[0].kept


# ---- stage 3: ranking --------------------------------------------------------------------------


class StubSignals:
    def __init__(self, **values: dict[str, float]) -> None:
        self.values = values

    def reputation(self, agent_id: str) -> float | None:
        return self.values.get("reputation", {}).get(agent_id)

    def history(self, requester: str, agent_id: str) -> float | None:
        assert requester == "me"
        return self.values.get("history", {}).get(agent_id)

    def latency_ms(self, agent_id: str) -> float | None:
        return self.values.get("latency", {}).get(agent_id)


def ranked_ids(candidates: list[tuple[AgentProfile, float]], **kwargs: Any) -> list[str]:
    kwargs.setdefault("signals", NoSignals())
    kwargs.setdefault("weights", RankingWeights())
    out = rank(candidates, requester="me", now_ms=NOW, **kwargs)
    return [r.profile.agent_id for r in out]


def test_weights_normalize_and_reject_negatives() -> None:
    w = RankingWeights(
        relevance=2, reputation=1, latency=1, availability=0, history=0, outcome=0, price=0
    )
    assert w.normalized() == {
        "relevance": 0.5,
        "reputation": 0.25,
        "latency": 0.25,
        "availability": 0.0,
        "history": 0.0,
        "outcome": 0.0,
        "price": 0.0,
    }
    assert sum(RankingWeights().normalized().values()) == pytest.approx(1.0)
    zero = RankingWeights(
        relevance=0, reputation=0, latency=0, availability=0, history=0, outcome=0, price=0
    )
    assert set(zero.normalized().values()) == {0.0}
    with pytest.raises(ValueError):
        RankingWeights(relevance=-1)
    with pytest.raises(ValueError):
        RankingWeights(trust=1)  # type: ignore[call-arg]


def test_neutral_signals_and_feature_ranges() -> None:
    p = profile(price=10, issued_at=NOW - 25_000, expires_at=NOW + 75_000)
    [r] = rank(
        [(p, 0.7)], requester="me", signals=NoSignals(), weights=RankingWeights(), now_ms=NOW
    )
    assert r.features == {
        "relevance": pytest.approx(0.5),
        "reputation": NEUTRAL,
        "latency": NEUTRAL,
        "availability": pytest.approx(0.75),
        "history": NEUTRAL,
        "outcome": NEUTRAL,
        "price": pytest.approx(0.5),
    }
    assert r.score == pytest.approx(sum(r.contributions.values()))
    w = RankingWeights().normalized()
    assert r.contributions == {k: pytest.approx(w[k] * v) for k, v in r.features.items()}
    assert scale_relevance(-0.3) == 0.0 and scale_relevance(1.31) == 1.0
    # Unknown freshness is neutral; a budget scales price against it.
    [r] = rank(
        [(replace(p, expires_at=0), 0.45)],
        requester="me",
        signals=NoSignals(),
        weights=RankingWeights(),
        now_ms=NOW,
        max_price=40,
    )
    assert r.features["availability"] == NEUTRAL
    assert r.features["price"] == pytest.approx(0.75)
    # Advertised latency is used without observations.
    [r] = rank(
        [(replace(p, latency_ms=1000.0), 0.45)],
        requester="me",
        signals=NoSignals(),
        weights=RankingWeights(),
        now_ms=NOW,
    )
    assert r.features["latency"] == pytest.approx(0.5)


def test_signals_change_the_order() -> None:
    a, b = profile("p/a"), profile("p/b")
    pair = [(a, 0.5), (b, 0.5)]
    assert ranked_ids(pair) == ["p/a", "p/b"]  # a tie: by id
    assert ranked_ids(list(reversed(pair))) == ["p/a", "p/b"]
    assert ranked_ids(pair, signals=StubSignals(reputation={"p/b": 0.9})) == ["p/b", "p/a"]
    assert ranked_ids(pair, signals=StubSignals(reputation={"p/a": 0.1})) == ["p/b", "p/a"]
    assert ranked_ids(pair, signals=StubSignals(history={"p/b": 1.0})) == ["p/b", "p/a"]
    assert ranked_ids(pair, signals=StubSignals(latency={"p/a": 5000, "p/b": 50})) == [
        "p/b",
        "p/a",
    ]
    # An observed 0 ms is an observation, not "no evidence": it beats the advertised latency.
    slow_ad = [(replace(a, latency_ms=100.0), 0.5), (replace(b, latency_ms=10.0), 0.5)]
    assert ranked_ids(slow_ad) == ["p/b", "p/a"]
    assert ranked_ids(slow_ad, signals=StubSignals(latency={"p/a": 0.0})) == ["p/a", "p/b"]
    # Relevance dominates a modest reputation edge with the default weights...
    assert ranked_ids(
        [(a, 0.7), (b, 0.4)], signals=StubSignals(reputation={"p/a": 0.3, "p/b": 0.8})
    ) == ["p/a", "p/b"]
    # ...unless the weights say reputation is everything.
    only_trust = RankingWeights(
        relevance=0, reputation=1, latency=0, availability=0, history=0, outcome=0, price=0
    )
    assert ranked_ids(
        [(a, 0.7), (b, 0.4)],
        signals=StubSignals(reputation={"p/a": 0.3, "p/b": 0.8}),
        weights=only_trust,
    ) == ["p/b", "p/a"]
    # Outcomes on similar requests reorder equals.
    assert ranked_ids(pair, outcomes={"p/b": 0.9}) == ["p/b", "p/a"]
    assert ranked_ids(pair, outcomes={"p/a": 0.2}) == ["p/b", "p/a"]
    # Cheaper wins between equals; out-of-range signals are clamped.
    assert ranked_ids([(replace(a, price=20), 0.5), (replace(b, price=2), 0.5)]) == ["p/b", "p/a"]
    [r] = rank(
        [(a, 0.5)],
        requester="me",
        signals=StubSignals(reputation={"p/a": 7.0}),
        weights=RankingWeights(),
        now_ms=NOW,
    )
    assert r.features["reputation"] == 1.0


def test_ranking_is_deterministic_over_many_ties() -> None:
    candidates = [(profile(f"p/{c}"), 0.5) for c in "qwertyuiop"]
    first = ranked_ids(candidates)
    assert first == sorted(first)
    assert ranked_ids(list(reversed(candidates))) == first


def test_explanation_names_the_heaviest_features() -> None:
    [r] = rank(
        [(profile(price=0), 1.3)],
        requester="me",
        signals=NoSignals(),
        weights=RankingWeights(),
        now_ms=NOW,
    )
    assert r.explain() == "relevance 1.00, price 1.00, reputation 0.50"
    assert r.explain(top=1) == "relevance 1.00"
    assert len(r.explain(top=10).split(", ")) == 7


# ---- the LLM judge against a real local server ------------------------------------------------


def judge_for(server: FakeOpenAI, **kwargs: Any) -> LlmJudge:
    config = LlmConfig(base_url=server.base_url, model="judge-model", max_retries=0)
    return LlmJudge(LlmBackend(config, backoff=0.01), **kwargs)


def kept(*ids: str) -> list[Verdict]:
    return [Verdict(profile(i), 0.6, 0) for i in ids]


async def test_llm_judge_vetoes_the_ids_it_returns(server: FakeOpenAI) -> None:
    answer = {"reject": [{"id": "p/b", "reason": "cannot do units"}, {"id": "p/zzz"}]}
    server.then(content_reply(json.dumps(answer)))
    vetoes, mode = await judge_for(server).vetoes("convert 5 miles", kept("p/a", "p/b"))
    assert vetoes == {"p/b": "llm judge: cannot do units"}  # p/zzz was not shown to it
    assert mode == "llm judge (judge-model)"
    [request] = server.requests
    body = request["body"]
    assert body["model"] == "judge-model" and "tools" not in body
    assert body["response_format"] == {"type": "json_object"}
    asked = json.loads(body["messages"][1]["content"])
    assert asked["task"] == "convert 5 miles"
    assert [a["id"] for a in asked["agents"]] == ["p/a", "p/b"]
    assert asked["agents"][0]["skills"] == ["Arithmetic: exact arithmetic"]


async def test_llm_judge_reads_json_in_a_code_fence(server: FakeOpenAI) -> None:
    server.then(content_reply('```json\n{"reject": [{"id": "p/a", "reason": "no"}]}\n```'))
    vetoes, mode = await judge_for(server).vetoes("t", kept("p/a"))
    assert vetoes == {"p/a": "llm judge: no"} and mode == "llm judge (judge-model)"


async def test_llm_judge_reads_only_the_most_relevant_candidates(server: FakeOpenAI) -> None:
    server.then(content_reply('{"reject": [{"id": "p/c", "reason": "no"}]}'))
    verdicts = [
        Verdict(profile(i), score, 0) for i, score in [("p/a", 0.2), ("p/b", 0.9), ("p/c", 0.5)]
    ]
    vetoes, _ = await judge_for(server, max_candidates=2, extra={}).vetoes("t", verdicts)
    assert vetoes == {"p/c": "llm judge: no"}
    body = server.requests[0]["body"]
    assert [a["id"] for a in json.loads(body["messages"][1]["content"])["agents"]] == ["p/b", "p/c"]
    assert "response_format" not in body


async def test_llm_judge_with_nothing_to_judge_asks_nobody(server: FakeOpenAI) -> None:
    assert await judge_for(server).vetoes("t", []) == ({}, "llm judge: nothing to judge")
    assert server.requests == []


@pytest.mark.parametrize(
    "reply",
    [
        Scripted(status=500, body={"error": {"message": "boom"}}),
        content_reply("I think agent p/a is fine."),
        content_reply('{"reject": "p/a"}'),
        content_reply('["p/a"]'),
        content_reply('{"reject": [{"reason": "no id"}]}'),
        Scripted(raw="<html>not json</html>"),
    ],
    ids=["http-500", "prose", "reject-not-list", "list", "no-id", "raw-html"],
)
async def test_llm_judge_failures_keep_the_offline_verdicts(
    server: FakeOpenAI, reply: Scripted
) -> None:
    server.then(reply)
    vetoes, mode = await judge_for(server).vetoes("t", kept("p/a"))
    assert vetoes == {}
    assert "failed" in mode and "offline verdicts kept" in mode


async def test_llm_judge_gives_up_after_its_timeout(server: FakeOpenAI) -> None:
    server.then(Scripted(body={"choices": []}, delay=1.0))
    vetoes, mode = await judge_for(server, timeout_s=0.3).vetoes("t", kept("p/a"))
    assert vetoes == {} and mode == "llm judge failed (TimeoutError); offline verdicts kept"
