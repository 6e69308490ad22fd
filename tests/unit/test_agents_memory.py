"""Episodic memory: recall by meaning with the real embedding model, conversation priority,
feedback, persistence across reopen, eviction, corruption and concurrent writers."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from noosphere.agents.memory import AgentMemoryError, EpisodicMemory
from noosphere.models.embedding import Embedder

OP = "local"  # the node's operator

TRANSLATE = (
    "Translate this English paragraph into French",
    "Voici la traduction du paragraphe en français.",
)
HASH = (
    "Compute the SHA-256 checksum of the uploaded file",
    "The SHA-256 digest is 9f86d081884c7d65...",
)
CLIMATE = (
    "Summarize this news article about rising sea levels and climate change",
    "Sea levels rose 3.7 mm per year; the article warns of coastal flooding.",
)


@pytest.fixture
def memory(tmp_path: Path, embedder: Embedder) -> Iterator[EpisodicMemory]:
    opened = EpisodicMemory(tmp_path / "memory.db", "agent-a", embedder)
    yield opened
    opened.close()


def _fill(memory: EpisodicMemory) -> None:
    for i, (request, result) in enumerate((TRANSLATE, HASH, CLIMATE)):
        memory.remember(
            principal=OP,
            task_id=f"t{i}",
            context_id=f"c{i}",
            request=request,
            result=result,
            outcome="completed",
        )


def test_recall_ranks_closest_episode_first(memory: EpisodicMemory) -> None:
    _fill(memory)
    assert len(memory) == 3
    hits = memory.recall(
        "Please translate a short text to French", principal=OP, k=3, min_score=0.0
    )
    assert hits[0].episode.task_id == "t0"
    assert hits[0].score > hits[1].score >= hits[-1].score
    assert 0.3 < hits[0].score <= 1.0 + 1e-5
    hits = memory.recall("what is the hash digest of my file?", principal=OP, k=1)
    assert [h.episode.task_id for h in hits] == ["t1"]
    assert hits[0].episode.request == HASH[0]
    assert hits[0].episode.outcome == "completed"
    assert hits[0].episode.agent_id == "agent-a"


def test_min_score_filters_unrelated_episodes(memory: EpisodicMemory) -> None:
    _fill(memory)
    assert (
        memory.recall("recipe for chocolate cake with strawberries", principal=OP, min_score=0.6)
        == []
    )
    assert memory.recall("anything", principal=OP, k=0) == []


def test_empty_memory_recalls_nothing(memory: EpisodicMemory) -> None:
    assert len(memory) == 0
    assert memory.recall("translate to French", principal=OP) == []


def test_same_context_comes_first_regardless_of_score(memory: EpisodicMemory) -> None:
    _fill(memory)
    memory.remember(
        principal=OP,
        task_id="t9",
        context_id="chat-1",
        request="What's the weather like in Lyon tomorrow?",
        result="Sunny, 24 degrees.",
        outcome="completed",
    )
    hits = memory.recall("translate it into French please", principal=OP, k=2, context_id="chat-1")
    assert [h.episode.task_id for h in hits] == ["t9", "t0"]
    assert hits[0].score < hits[1].score  # context first even though it scores lower
    # An unknown context falls back to plain similarity.
    hits = memory.recall("translate it into French please", principal=OP, k=1, context_id="nope")
    assert [h.episode.task_id for h in hits] == ["t0"]


def test_context_episodes_newest_first_and_capped_at_k(memory: EpisodicMemory) -> None:
    for i in range(4):
        memory.remember(
            principal=OP,
            task_id=f"turn{i}",
            context_id="chat",
            request=f"turn {i} of the conversation",
            result="ok",
            outcome="completed",
        )
    hits = memory.recall("conversation", principal=OP, k=3, context_id="chat")
    assert [h.episode.task_id for h in hits] == ["turn3", "turn2", "turn1"]


def test_feedback_updates_episode(tmp_path: Path, embedder: Embedder) -> None:
    path = tmp_path / "memory.db"
    with EpisodicMemory(path, "agent-a", embedder) as memory:
        _fill(memory)
        assert memory.record_feedback("t0", 0.75) is True
        assert memory.record_feedback("unknown-task", 0.5) is False
        with pytest.raises(ValueError):
            memory.record_feedback("t0", 1.5)
        with pytest.raises(ValueError):
            memory.record_feedback("t0", float("nan"))
        hits = memory.recall("translate into French", principal=OP, k=1)
        assert hits[0].episode.feedback == pytest.approx(0.75)
        assert memory.get("t1")[0].feedback is None
    with EpisodicMemory(path, "agent-a", embedder) as reopened:
        assert reopened.get("t0")[0].feedback == pytest.approx(0.75)
    # Another agent sharing the file does not see (or rate) agent-a's tasks.
    with EpisodicMemory(path, "agent-b", embedder) as other:
        assert other.record_feedback("t0", 0.1) is False


def test_survives_reopen(tmp_path: Path, embedder: Embedder) -> None:
    path = tmp_path / "memory.db"
    memory = EpisodicMemory(path, "agent-a", embedder)
    stored = memory.remember(
        principal=OP,
        task_id="t-1",
        context_id="c-1",
        request=HASH[0],
        result=HASH[1],
        outcome="failed",
    )
    memory.close()
    with pytest.raises(AgentMemoryError):
        memory.recall("hash", principal=OP)
    reopened = EpisodicMemory(path, "agent-a", embedder)
    try:
        assert len(reopened) == 1
        hits = reopened.recall("checksum of a file", principal=OP, k=3)
        assert [h.episode for h in hits] == [stored]
        assert hits[0].episode.outcome == "failed"
        assert hits[0].episode.created_at == stored.created_at > 0
    finally:
        reopened.close()


def test_agents_sharing_a_file_are_isolated(tmp_path: Path, embedder: Embedder) -> None:
    path = tmp_path / "shared.db"
    with (
        EpisodicMemory(path, "agent-a", embedder) as a,
        EpisodicMemory(path, "agent-b", embedder) as b,
    ):
        a.remember(
            principal=OP,
            task_id="a1",
            context_id="x",
            request=TRANSLATE[0],
            result="",
            outcome="ok",
        )
        b.remember(
            principal=OP, task_id="b1", context_id="x", request=HASH[0], result="", outcome="ok"
        )
        assert len(a) == len(b) == 1
        assert [
            h.episode.task_id for h in a.recall("file checksum", principal=OP, min_score=0.0)
        ] == ["a1"]
        assert [
            h.episode.task_id
            for h in b.recall("French", principal=OP, min_score=0.0, context_id="x")
        ] == ["b1"]


def test_evicts_oldest_beyond_max_episodes(tmp_path: Path, embedder: Embedder) -> None:
    path = tmp_path / "memory.db"
    with EpisodicMemory(path, "agent-b", embedder) as neighbour:
        neighbour.remember(
            principal=OP, task_id="n", context_id="n", request="keep", result="", outcome="ok"
        )
    with EpisodicMemory(path, "agent-a", embedder, max_episodes=3) as memory:
        episodes = [(TRANSLATE, "t0"), (HASH, "t1"), (CLIMATE, "t2")]
        for (request, result), task_id in episodes:
            memory.remember(
                principal=OP,
                task_id=task_id,
                context_id="c",
                request=request,
                result=result,
                outcome="ok",
            )
        assert len(memory) == 3
        memory.remember(
            principal=OP,
            task_id="t3",
            context_id="c",
            request="Write a haiku about autumn leaves",
            result="Red leaves drift slowly",
            outcome="ok",
        )
        assert len(memory) == 3
        assert memory.get("t0") == []
        assert memory.record_feedback("t0", 1.0) is False
        hits = memory.recall("translate into French", principal=OP, k=3, min_score=0.0)
        assert "t0" not in {h.episode.task_id for h in hits}
        assert {h.episode.task_id for h in hits} == {"t1", "t2", "t3"}
    with EpisodicMemory(path, "agent-a", embedder, max_episodes=2) as smaller:
        # A lower bound at reopen trims on the next write.
        assert len(smaller) == 3
        smaller.remember(
            principal=OP, task_id="t4", context_id="c", request="x", result="y", outcome="ok"
        )
        assert len(smaller) == 2
        assert [e.task_id for e in smaller.get("t3") + smaller.get("t4")] == ["t3", "t4"]
    with EpisodicMemory(path, "agent-b", embedder) as neighbour:
        assert len(neighbour) == 1


def test_corrupt_file_raises_one_line_error(tmp_path: Path, embedder: Embedder) -> None:
    path = tmp_path / "memory.db"
    path.write_bytes(b"this is not a database\n" * 500)
    with pytest.raises(AgentMemoryError) as info:
        EpisodicMemory(path, "agent-a", embedder)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message


def test_bad_vector_row_raises(tmp_path: Path, embedder: Embedder) -> None:
    path = tmp_path / "memory.db"
    with EpisodicMemory(path, "agent-a", embedder) as memory:
        memory.remember(
            principal=OP, task_id="t", context_id="c", request="r", result="x", outcome="ok"
        )
    db = sqlite3.connect(path)
    db.execute("UPDATE episodes SET vector = x'0011'")
    db.commit()
    db.close()
    with pytest.raises(AgentMemoryError, match="bad vector"):
        EpisodicMemory(path, "agent-a", embedder)


def test_concurrent_remember_from_threads(tmp_path: Path, embedder: Embedder) -> None:
    path = tmp_path / "memory.db"
    errors: list[BaseException] = []
    with EpisodicMemory(path, "agent-a", embedder) as memory:
        barrier = threading.Barrier(8)

        def work(n: int) -> None:
            try:
                barrier.wait()
                for i in range(5):
                    memory.remember(
                        principal=OP,
                        task_id=f"w{n}-{i}",
                        context_id=f"w{n}",
                        request=f"worker {n} request {i}",
                        result="done",
                        outcome="completed",
                    )
                    memory.recall(f"worker {n}", principal=OP, k=2)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(memory) == 40
    with EpisodicMemory(path, "agent-a", embedder) as reopened:
        assert len(reopened) == 40
        assert all(len(reopened.get(f"w{n}-{i}")) == 1 for n in range(8) for i in range(5))


async def test_usable_from_async_code_via_to_thread(memory: EpisodicMemory) -> None:
    await asyncio.gather(
        *(
            asyncio.to_thread(
                memory.remember,
                principal=OP,
                task_id=f"t{i}",
                context_id="c",
                request=request,
                result=result,
                outcome="completed",
            )
            for i, (request, result) in enumerate((TRANSLATE, HASH))
        )
    )
    hits = await asyncio.to_thread(memory.recall, "French translation", principal=OP, k=1)
    assert hits[0].episode.request == TRANSLATE[0]
