"""MARS stage 1 (candidate index) on synthetic unit vectors, no model: per-agent aggregation of
skill vectors, k distinct agents, deterministic ties, replacement and removal, the switch to the
approximate IVF-SQ8 index (recall against exact search, updates after the switch) and searches
running while other threads write."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from noosphere.mars.index import VectorIndex

DIM = 384


def unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32).reshape(-1, DIM)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def axis(i: int, j: int | None = None, weight: float = 0.0) -> np.ndarray:
    """e_i, optionally tilted towards e_j."""
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    if j is not None:
        v[j] = weight
    return unit(v)[0]


def clustered(rng: np.random.Generator, n: int, clusters: int = 20) -> np.ndarray:
    centres = unit(rng.standard_normal((clusters, DIM)))
    picks = rng.integers(0, clusters, n)
    return unit(centres[picks] + 0.35 * unit(rng.standard_normal((n, DIM))))


def test_empty_index_and_nonpositive_k() -> None:
    index = VectorIndex()
    assert index.search(axis(0), 5) == []
    index.upsert("a", axis(0))
    assert index.search(axis(0), 0) == []
    assert len(index) == 1 and index.vectors == 1


def test_agent_scores_by_its_best_skill() -> None:
    index = VectorIndex()
    index.upsert("a", np.stack([axis(1), axis(0, 1, 0.2), axis(2)]))
    index.upsert("b", np.stack([axis(0, 1, 1.0)]))
    [first, second] = index.search(axis(0), 2)
    assert (first.agent_id, first.skill) == ("a", 1)
    assert first.score == pytest.approx(float(axis(0) @ axis(0, 1, 0.2)), abs=1e-5)
    assert (second.agent_id, second.skill) == ("b", 0)
    assert second.score == pytest.approx(1 / np.sqrt(2), abs=1e-5)


def test_k_distinct_agents_even_when_many_skills_crowd_the_top() -> None:
    index = VectorIndex()
    # 10 agents with 40 near-identical skills each close to the query, 10 with one farther skill.
    rng = np.random.default_rng(1)
    for a in range(10):
        index.upsert(f"crowd-{a}", unit(axis(0) + 0.05 * rng.standard_normal((40, DIM))))
    for a in range(10):
        index.upsert(f"far-{a}", axis(0, 5 + a, 1.5))
    hits = index.search(axis(0), 15)
    ids = [h.agent_id for h in hits]
    assert len(ids) == len(set(ids)) == 15
    assert set(ids[:10]) == {f"crowd-{a}" for a in range(10)}
    # More than there are agents: every agent once.
    assert len(index.search(axis(0), 100)) == 20


def test_ties_break_by_agent_id() -> None:
    index = VectorIndex()
    for agent in ["m", "c", "x", "a", "q"]:
        index.upsert(agent, axis(3))
    assert [h.agent_id for h in index.search(axis(3), 5)] == ["a", "c", "m", "q", "x"]
    assert [h.agent_id for h in index.search(axis(3), 2)] == ["a", "c"]


def test_upsert_replaces_and_remove_removes() -> None:
    index = VectorIndex()
    index.upsert("a", np.stack([axis(0), axis(1)]))
    index.upsert("b", axis(2))
    index.upsert("a", axis(4))  # replaces both old skills
    assert len(index) == 2 and index.vectors == 2
    by_agent = {h.agent_id: h.score for h in index.search(axis(0), 2)}
    assert by_agent["a"] == pytest.approx(0.0, abs=1e-6)  # the old skill e_0 is gone
    assert index.search(axis(4), 1)[0].agent_id == "a"
    assert index.search(axis(4), 1)[0].score == pytest.approx(1.0, abs=1e-5)

    assert index.remove("a") is True
    assert index.remove("a") is False
    assert index.remove("never") is False
    assert len(index) == 1 and index.vectors == 1
    assert all(h.agent_id != "a" for h in index.search(axis(4), 10))
    # An agent re-added with no vectors is simply gone.
    index.upsert("b", np.zeros((0, DIM), dtype=np.float32))
    assert len(index) == 0 and index.vectors == 0 and index.search(axis(2), 3) == []


def exact_top(vectors: np.ndarray, owners: list[str], query: np.ndarray, k: int) -> list[str]:
    sims = vectors @ query
    best: dict[str, float] = {}
    for owner, sim in zip(owners, sims.tolist(), strict=True):
        best[owner] = max(best.get(owner, -2.0), sim)
    return [a for a, _ in sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def test_switch_to_ivf_keeps_recall_and_updates_work() -> None:
    rng = np.random.default_rng(7)
    index = VectorIndex(exact_threshold=200, nprobe=16)
    vectors = clustered(rng, 1200)
    owners = [f"agent-{i // 2:04d}" for i in range(len(vectors))]  # two skills per agent
    for start in range(0, len(vectors), 2):
        index.upsert(owners[start], vectors[start : start + 2])
        if start == 180:
            assert not index.approximate  # 182 vectors: still exact
    assert index.approximate
    assert index.vectors == 1200 and len(index) == 600

    queries = clustered(rng, 50)
    recalls = []
    for q in queries:
        truth = exact_top(vectors, owners, q, 10)
        got = [h.agent_id for h in index.search(q, 10)]
        assert len(got) == 10
        recalls.append(len(set(truth) & set(got)) / 10)
    assert float(np.mean(recalls)) >= 0.9

    # Updates and removals after the switch.
    target = unit(rng.standard_normal(DIM))[0]
    index.upsert("agent-0003", target.reshape(1, DIM))
    top = index.search(target, 1)[0]
    assert top.agent_id == "agent-0003" and top.score == pytest.approx(1.0, abs=0.02)
    assert index.vectors == 1199
    assert index.remove("agent-0003")
    assert all(h.agent_id != "agent-0003" for h in index.search(target, 50))
    assert index.vectors == 1198 and len(index) == 599
    index.upsert("newcomer", target.reshape(1, DIM))
    assert index.search(target, 1)[0].agent_id == "newcomer"


def test_a_single_big_batch_past_the_threshold_stays_exact_until_it_can_train() -> None:
    rng = np.random.default_rng(3)
    index = VectorIndex(exact_threshold=10)
    index.upsert("big", clustered(rng, 100))  # nothing held to train on yet
    assert not index.approximate
    index.upsert("next", clustered(rng, 5))
    assert index.approximate
    assert {h.agent_id for h in index.search(clustered(rng, 1)[0], 5)} == {"big", "next"}


def test_search_while_other_threads_upsert_and_remove() -> None:
    rng = np.random.default_rng(11)
    index = VectorIndex(exact_threshold=300)
    pool = clustered(rng, 2000)
    for i in range(50):
        index.upsert(f"seed-{i}", pool[i : i + 1])
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(w: int) -> None:
        try:
            for i in range(150):
                agent = f"w{w}-{i}"
                at = 50 + (w * 150 + i) * 2 % 1900
                index.upsert(agent, pool[at : at + 2])
                if i % 3 == 0:
                    index.remove(agent)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            while not stop.is_set():
                hits = index.search(pool[int(rng.integers(0, 2000))], 10)
                ids = [h.agent_id for h in hits]
                assert len(ids) == len(set(ids))
                assert hits == sorted(hits, key=lambda h: (-h.score, h.agent_id))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(3)]
    writers = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join(30)
    stop.set()
    for t in readers:
        t.join(30)
    assert errors == []
    assert index.approximate
    assert len(index) == 50 + 4 * 100
    assert index.vectors == 50 + 4 * 100 * 2
    assert len(index.search(pool[0], 20)) == 20
