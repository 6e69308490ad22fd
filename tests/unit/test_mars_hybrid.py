"""MARS stage 1 hybrid and stage 2 re-scoring without the embedding model: the lexical index
(field weights, stemming and stop words, replacement and removal, buffered commits and the lag),
the fusion of cosine and BM25, the mention features of re-scoring, the outcome memory (Beta
evidence from similar past requests, bounds), and reading a vector back from the vector index."""

from __future__ import annotations

import numpy as np
import pytest

from noosphere.mars.fusion import (
    SHARE_LONG,
    SHARE_SHORT,
    TERMS_LONG,
    TERMS_SHORT,
    dense_share,
    fuse,
)
from noosphere.mars.index import Hit, VectorIndex
from noosphere.mars.lexical import FieldWeights, LexicalHit, LexicalIndex
from noosphere.mars.outcomes import OutcomeMemory
from noosphere.mars.profile import AgentProfile, SkillProfile
from noosphere.mars.rerank import RescoreWeights, mention_features, rescore, words

DIM = 384


def card(agent_id: str, name: str, *skills: tuple[str, str], description: str = "") -> AgentProfile:
    return AgentProfile(
        agent_id=agent_id,
        name=name,
        description=description,
        skills=tuple(SkillProfile(name=n, description=d, tags=("t",)) for n, d in skills),
    )


CARDS = [
    card("a/fx", "Money Changer", ("Currency conversion", "Convert amounts between currencies.")),
    card("a/tz", "Zone Shifter", ("Time zones", "Convert a time between IANA time zones.")),
    card("a/pdf", "Page Binder", ("PDF merging", "Merge and split PDF documents.")),
    card("a/wx", "Sky Watch", ("Weather", "Forecasts for cities."), description="Rain or shine."),
]


def lexical(**weights: float) -> LexicalIndex:
    index = LexicalIndex(FieldWeights(**weights) if weights else None)
    for c in CARDS:
        index.upsert(c)
    return index


def ids(hits: list[LexicalHit]) -> list[str]:
    return [h.agent_id for h in hits]


def test_lexical_finds_cards_by_their_words_stemmed() -> None:
    index = lexical()
    assert len(index) == 4
    assert ids(index.search("please merge these pdfs", 3))[0] == "a/pdf"
    assert ids(index.search("converting currencies", 3))[0] == "a/fx"  # stems match
    assert index.search("the and of", 3) == []  # stop words only: no query
    assert index.search("zebra", 3) == []  # no shared word: nothing, not a random card
    assert index.search("", 3) == [] and index.search("merge", 0) == []
    scores = [h.score for h in index.search("convert", 4)]
    assert len(scores) == 2 and scores == sorted(scores, reverse=True)


def test_field_weights_decide_which_field_counts() -> None:
    only_names = lexical(card=0, name=1, description=0, skill_names=0)
    assert ids(only_names.search("sky", 4)) == ["a/wx"]
    assert only_names.search("forecasts", 4) == []  # a skill description: not weighted
    only_descriptions = lexical(card=0, name=0, description=0, skill_descriptions=1)
    assert ids(only_descriptions.search("forecasts", 4)) == ["a/wx"]
    assert only_descriptions.search("sky", 4) == []


def test_query_terms_are_counted_and_capped() -> None:
    index = lexical()
    assert index.terms("Merge the merged documents") == {"merg": 2, "document": 1}
    assert len(index.terms(" ".join(f"word{i}" for i in range(500)))) == 64


def test_upsert_replaces_and_remove_forgets() -> None:
    index = lexical()
    index.upsert(card("a/fx", "Money Changer", ("Crypto", "Bitcoin prices.")))
    assert index.search("currencies", 4) == []
    assert ids(index.search("bitcoin", 4)) == ["a/fx"]
    assert index.remove("a/fx") and not index.remove("a/fx")
    assert index.search("bitcoin", 4) == [] and len(index) == 3


def test_changes_are_committed_once_per_search_not_per_card() -> None:
    index = lexical()
    assert index.commits == 0
    index.search("merge", 1)
    assert index.commits == 1
    for i in range(20):
        index.upsert(card(f"b/{i}", f"Extra {i}", ("Merging", "Merge things.")))
    assert index.commits == 1
    assert len(index.search("merge", 50)) == 21
    assert index.commits == 2
    index.search("merge", 1)
    assert index.commits == 2  # nothing queued: no commit


def test_a_lag_defers_commits_until_changes_are_old_enough() -> None:
    index = LexicalIndex(max_lag_s=3600.0)
    index.upsert(CARDS[0])
    assert ids(index.search("currencies", 2)) == ["a/fx"]  # the first search always commits
    index.upsert(CARDS[2])
    assert index.search("pdf", 2) == []  # queued, younger than the lag: not searchable yet
    index.commit()
    assert ids(index.search("pdf", 2)) == ["a/pdf"]
    eager = LexicalIndex(max_lag_s=1e-9)  # every write finds its predecessor old enough
    eager.upsert(CARDS[0])
    eager.search("x", 1)
    eager.upsert(CARDS[1])
    eager.upsert(CARDS[2])
    assert eager.commits == 2  # the search, then the second write committed the first


def hit(agent_id: str, score: float, skill: int = 0) -> Hit:
    return Hit(agent_id, score, skill)


def test_fusion_normalizes_both_scores_and_mixes_them() -> None:
    dense = {"a": hit("a", 0.8), "b": hit("b", 0.4, 2), "c": hit("c", 0.64)}
    words_ = [LexicalHit("b", 8.0), LexicalHit("c", 2.0)]
    out = fuse(dense, words_, share=0.5)
    assert [c.agent_id for c in out] == ["b", "c", "a"]
    by_id = {c.agent_id: c for c in out}
    assert by_id["b"].fused == pytest.approx(0.5 * 0.4 / 0.8 + 0.5 * 1.0)
    assert by_id["a"].fused == pytest.approx(0.5)  # best cosine, no word in common
    assert by_id["c"].lexical == pytest.approx(0.25) and by_id["a"].lexical == 0.0
    assert by_id["b"].skill == 2 and by_id["b"].cosine == 0.4
    assert [c.agent_id for c in fuse(dense, words_, share=0.9)] == ["a", "c", "b"]
    vectors_alone = fuse(dense, [], share=1.0)
    assert [(c.agent_id, c.fused) for c in vectors_alone] == [("a", 0.8), ("c", 0.64), ("b", 0.4)]
    tied = fuse({"y": hit("y", 0.5), "x": hit("x", 0.5)}, [], share=0.9)
    assert [c.agent_id for c in tied] == ["x", "y"]  # ties by id


def test_the_dense_share_falls_with_the_words_of_a_request() -> None:
    assert dense_share(0) == dense_share(TERMS_SHORT) == SHARE_SHORT
    assert dense_share(TERMS_LONG) == dense_share(500) == SHARE_LONG
    middle = dense_share((TERMS_SHORT + TERMS_LONG) // 2)
    assert SHARE_LONG < middle < SHARE_SHORT
    shares = [dense_share(n) for n in range(40)]
    assert shares == sorted(shares, reverse=True)


def test_mentions_are_whole_words() -> None:
    assert words("Hi, TheClique's API!") == " hi theclique s api "
    fx = card("a/fx", "Money Changer", ("Currency conversion", "x"), ("Rates", "y"))
    assert mention_features(words("ask Money Changer for currency conversion"), fx) == (1.0, 0.5)
    assert mention_features(words("moneychanger please"), fx) == (0.0, 0.0)
    assert mention_features(words("the rates today"), fx) == (0.0, 0.5)
    assert mention_features(words("the pirates"), fx) == (0.0, 0.0)  # whole words only
    short = card("a/x", "AI", ("Go", "z"))
    assert mention_features(words("ai go"), short) == (0.0, 0.0)  # too short to count


def test_rescore_is_linear_in_its_features() -> None:
    fx = CARDS[0]
    candidates = fuse({"a/fx": hit("a/fx", 0.5)}, [LexicalHit("a/fx", 3.0)], share=0.5)
    assert candidates[0].fused == pytest.approx(1.0)
    [plain] = rescore("money changer please", candidates, {"a/fx": fx})
    assert plain.features["name"] == 1.0 and plain.features["example"] == 0.0
    assert plain.relevance == pytest.approx(1.0 + RescoreWeights().name)
    [closer] = rescore("x", candidates, {"a/fx": fx}, examples={"a/fx": 0.8})
    assert closer.features["example"] == pytest.approx(0.3)  # 0.8 - the skill cosine 0.5
    assert closer.relevance == pytest.approx(1.0 + RescoreWeights().example * 0.3)
    [farther] = rescore("x", candidates, {"a/fx": fx}, examples={"a/fx": 0.2})
    assert farther.features["example"] == 0.0  # an example never lowers the score
    weights = RescoreWeights(fused=0, cosine=1, name=0, skill_name=0, example=0)
    [cos] = rescore("money changer please", candidates, {"a/fx": fx}, weights)
    assert cos.relevance == pytest.approx(0.5)


def unit(i: int, j: int | None = None, cos: float = 1.0) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = cos
    if j is not None:
        v[j] = float(np.sqrt(1 - cos * cos))
    return v


def test_outcomes_count_only_similar_requests() -> None:
    memory = OutcomeMemory()
    for _ in range(4):
        memory.record("good", unit(0), 1.0)
        memory.record("bad", unit(0), 0.0)
    memory.record("other", unit(1), 1.0)  # orthogonal request: says nothing about e_0
    scores = memory.score(unit(0, 2, 0.95), ["good", "bad", "other", "never"])
    assert set(scores) == {"good", "bad"}
    assert scores["good"] > 0.75 and scores["bad"] < 0.25
    assert memory.score(unit(3), ["good"]) == {}  # nothing similar: neutral (absent)
    with pytest.raises(ValueError, match="rating"):
        memory.record("x", unit(0), 1.5)


def test_outcome_memory_is_bounded() -> None:
    memory = OutcomeMemory(per_agent=3, max_agents=2)
    for i in range(5):
        memory.record("a", unit(0), 0.0 if i < 2 else 1.0)  # the two failures fall out
    assert len(memory) == 3
    assert memory.score(unit(0), ["a"])["a"] == pytest.approx(4 / 5)
    memory.record("b", unit(0), 1.0)
    memory.record("c", unit(0), 1.0)  # "a" was rated least recently: evicted
    assert set(memory.score(unit(0), ["a", "b", "c"])) == {"b", "c"}


@pytest.mark.parametrize("threshold", [50_000, 50])
def test_score_agents_reads_vectors_back(threshold: int) -> None:
    rng = np.random.default_rng(3)
    index = VectorIndex(exact_threshold=threshold)
    vectors = {}
    for i in range(120):
        v = rng.standard_normal((2, DIM)).astype(np.float32)
        vectors[f"x{i}"] = v / np.linalg.norm(v, axis=1, keepdims=True)
        index.upsert(f"x{i}", vectors[f"x{i}"])
    index.remove("x1")
    query = vectors["x5"][1]
    got = index.score_agents(query, ["x5", "x1", "x7", "unknown", "x5"])
    assert set(got) == {"x5", "x7"}
    assert got["x5"].skill == 1 and got["x5"].score == pytest.approx(1.0, abs=0.02)
    expected = float(np.max(vectors["x7"] @ query))
    assert got["x7"].score == pytest.approx(expected, abs=0.02)
    assert index.score_agents(query, []) == {}
