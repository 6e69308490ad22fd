"""Privacy between requesters: an agent's memory is scoped by the principal that sent each task.
Peer B never recalls peer A's task (not in its result, its recall metadata, or the prompt an LLM
planner builds, tested against a real local OpenAI-compatible server), also when B reuses A's
context id; sealed plaintext never reaches memory.db on disk unless the agent file allows it
(and then only A's own later tasks recall it); memory files of the previous schema migrate with
their episodes as the operator's; the memory file is private to its owner."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import stat
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llm_server import FakeOpenAI, tool_reply
from structlog.testing import capture_logs

from noosphere.abe.keys import AttributeKey, AuthorityPublicKey, issue_key, new_authority
from noosphere.abe.sealed import seal_parts
from noosphere.agents.memory import (
    LEGACY_PRINCIPAL,
    SCHEMA_VERSION,
    AgentMemoryError,
    EpisodicMemory,
)
from noosphere.agents.runtime import MEMORY_FILENAME, AgentRuntime, load_skill_tools
from noosphere.agents.spec import AgentFileError, AgentSpec, load_agent_spec
from noosphere.agents.turn import Turn
from noosphere.models.embedding import DIMENSION, Embedder
from noosphere.models.llm import LlmBackend, LlmConfig
from noosphere.protocol.a2a import Artifact, Message, Part, Role, TaskState

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "agents"
PEER_A = "12D3KooWPeerAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
PEER_B = "12D3KooWPeerBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
SECRET = "ZEBRAQUOKKA"  # a word no tool, example or persona contains
CONVERT_ARGS = '{"value": "5", "from_unit": "miles", "to_unit": "km"}'


class WordEmbedder:
    """A deterministic stand-in for the sentence model (bag of hashed words, unit length): the
    privacy properties do not depend on what the vectors mean, and this runs in microseconds."""

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()) or ["empty"]:
                digest = hashlib.sha256(word.encode()).digest()
                out[row, int.from_bytes(digest[:4], "big") % DIMENSION] += 1.0
            out[row] /= np.linalg.norm(out[row])
        return out


@dataclass
class RecordingSink:
    progress_lines: list[str] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)

    async def progress(self, text: str) -> None:
        self.progress_lines.append(text)

    async def artifact(self, artifact: Artifact) -> None:
        self.artifacts.append(artifact)


def turn(
    text: str, principal: str, *, task_id: str, context_id: str = "ctx-shared", sealed: Any = None
) -> Turn:
    message_id = str(uuid.uuid4())
    parts = [Part.of_text(text)]
    if sealed is not None:
        public, policy = sealed
        parts = [seal_parts(public, policy, parts, message_id)]
    message = Message(message_id=message_id, role=Role.USER, parts=parts)
    return Turn(task_id=task_id, context_id=context_id, message=message, principal=principal)


def recalled_ids(sink: RecordingSink, index: int = -1) -> list[str]:
    metadata = sink.artifacts[index].metadata
    assert metadata is not None
    return [r["taskId"] for r in metadata["noosphere"]["recalled"]]


def memory_bytes(home: Path) -> bytes:
    """Everything the memory database has on disk (main file, WAL, shared memory)."""
    return b"".join(
        (home / f"{MEMORY_FILENAME}{suffix}").read_bytes()
        for suffix in ("", "-wal", "-shm")
        if (home / f"{MEMORY_FILENAME}{suffix}").exists()
    )


# ---- the memory itself ---------------------------------------------------------------------


def test_recall_get_and_feedback_never_cross_principals(tmp_path: Path) -> None:
    with EpisodicMemory(tmp_path / "memory.db", "agent", WordEmbedder()) as memory:  # type: ignore[arg-type]
        memory.remember(
            principal=PEER_A,
            task_id="a1",
            context_id="ctx",
            request=f"convert {SECRET} miles",
            result="8 km",
            outcome="completed",
        )
        # B asks the same words in A's conversation: nothing of A comes back
        assert memory.recall(f"convert {SECRET} miles", principal=PEER_B, context_id="ctx") == []
        assert memory.get("a1", principal=PEER_B) == []
        assert memory.record_feedback("a1", 1.0, principal=PEER_B) is False
        assert memory.count(PEER_B) == 0 and memory.count(PEER_A) == 1
        memory.remember(
            principal=PEER_B,
            task_id="b1",
            context_id="ctx",
            request="convert miles",
            result="x",
            outcome="completed",
        )
        hits = memory.recall(f"convert {SECRET} miles", principal=PEER_B, k=5, min_score=-1.0)
        assert [h.episode.task_id for h in hits] == ["b1"]
        hits = memory.recall("convert miles", principal=PEER_A, k=5, min_score=-1.0)
        assert [h.episode.task_id for h in hits] == ["a1"]
        assert hits[0].episode.principal == PEER_A
        assert memory.record_feedback("a1", 0.5, principal=PEER_A) is True
        # the operator's tasks are a principal like any other
        assert memory.recall("convert miles", principal=LEGACY_PRINCIPAL, min_score=-1.0) == []


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["remember", "recall"]),
            st.sampled_from([PEER_A, PEER_B, "local"]),
            st.sampled_from(["alpha beta", "beta gamma", "gamma delta", "alpha"]),
            st.sampled_from(["c1", "c2"]),
        ),
        min_size=1,
        max_size=30,
    ),
    cap=st.integers(min_value=1, max_value=6),
)
def test_any_interleaving_recalls_only_the_callers_episodes(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, str, str, str]], cap: int
) -> None:
    path = tmp_path_factory.mktemp("mem") / "memory.db"
    owners: dict[str, str] = {}
    with EpisodicMemory(path, "agent", WordEmbedder(), max_episodes=cap) as memory:  # type: ignore[arg-type]
        for n, (op, principal, text, context) in enumerate(ops):
            if op == "remember":
                task_id = f"t{n}"
                owners[task_id] = principal
                memory.remember(
                    principal=principal,
                    task_id=task_id,
                    context_id=context,
                    request=text,
                    result=text,
                    outcome="completed",
                )
            else:
                hits = memory.recall(
                    text, principal=principal, k=4, min_score=-1.0, context_id=context
                )
                assert all(owners[h.episode.task_id] == principal for h in hits)
                assert all(h.episode.principal == principal for h in hits)
        assert len(memory) <= cap
        counts = {p: memory.count(p) for p in (PEER_A, PEER_B, "local")}
        assert len(memory) == sum(counts.values())
    with EpisodicMemory(path, "agent", WordEmbedder(), max_episodes=cap) as reopened:  # type: ignore[arg-type]
        for principal in (PEER_A, PEER_B, "local"):
            assert reopened.count(principal) == counts[principal]
            hits = reopened.recall(
                "alpha beta gamma delta", principal=principal, k=10, min_score=-1.0
            )
            assert all(h.episode.principal == principal for h in hits)


# ---- migration of files written before principals ---------------------------------------------

_SCHEMA_V0 = """
CREATE TABLE episodes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id   TEXT NOT NULL,
    task_id    TEXT NOT NULL,
    context_id TEXT NOT NULL,
    request    TEXT NOT NULL,
    result     TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    feedback   REAL,
    created_at INTEGER NOT NULL,
    vector     BLOB NOT NULL
);
CREATE INDEX episodes_agent ON episodes (agent_id, id);
CREATE INDEX episodes_task ON episodes (agent_id, task_id);
CREATE INDEX episodes_context ON episodes (agent_id, context_id, id);
"""


def _write_v0(path: Path, rows: list[tuple[str, str, str]]) -> None:
    """A memory file exactly as the previous release wrote it (no principal column)."""
    words = WordEmbedder()
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA_V0)
    for agent_id, task_id, request in rows:
        db.execute(
            "INSERT INTO episodes (agent_id, task_id, context_id, request, result, outcome,"
            " feedback, created_at, vector) VALUES (?, ?, 'ctx', ?, 'r', 'completed', NULL, 1, ?)",
            (agent_id, task_id, request, words.encode([request])[0].tobytes()),
        )
    db.commit()
    db.close()


def test_old_memory_file_migrates_episodes_to_the_operator(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    _write_v0(
        path,
        [
            ("calc", "old-1", "convert miles"),
            ("calc", "old-2", "convert pounds"),
            ("other", "old-3", "convert miles"),
        ],
    )
    with capture_logs() as logs, EpisodicMemory(path, "calc", WordEmbedder()) as memory:  # type: ignore[arg-type]
        assert len(memory) == 2
        assert memory.count(LEGACY_PRINCIPAL) == 2
        assert memory.recall("convert miles", principal=PEER_A, context_id="ctx") == []
        hits = memory.recall("convert miles", principal=LEGACY_PRINCIPAL, k=3, min_score=-1.0)
        assert {h.episode.task_id for h in hits} == {"old-1", "old-2"}
        memory.remember(
            principal=PEER_A,
            task_id="new-a",
            context_id="ctx",
            request="convert miles",
            result="r",
            outcome="completed",
        )
    [warning] = [e for e in logs if e["event"].startswith("agent memory migrated")]
    assert warning["episodes"] == 3 and warning["log_level"] == "warning"
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    owners = dict(db.execute("SELECT task_id, principal FROM episodes").fetchall())
    db.close()
    assert owners == {"old-1": "local", "old-2": "local", "old-3": "local", "new-a": PEER_A}
    # a second open (and a second agent sharing the file) does not migrate again
    with capture_logs() as logs, EpisodicMemory(path, "other", WordEmbedder()) as other:  # type: ignore[arg-type]
        assert other.count(LEGACY_PRINCIPAL) == 1
    assert not [e for e in logs if e["event"].startswith("agent memory migrated")]


def test_memory_file_of_a_newer_schema_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(AgentMemoryError) as info:
        EpisodicMemory(path, "calc", WordEmbedder())  # type: ignore[arg-type]
    assert "newer noosphere" in str(info.value) and "\n" not in str(info.value)


def test_memory_file_is_private_to_its_owner(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.db"
    with EpisodicMemory(fresh, "calc", WordEmbedder()) as memory:  # type: ignore[arg-type]
        memory.remember(
            principal=PEER_A,
            task_id="t",
            context_id="c",
            request="r",
            result="x",
            outcome="completed",
        )
        for name in ("fresh.db", "fresh.db-wal", "fresh.db-shm"):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    shared = tmp_path / "shared.db"
    _write_v0(shared, [])
    os.chmod(shared, 0o644)
    with capture_logs() as logs, EpisodicMemory(shared, "calc", WordEmbedder()):  # type: ignore[arg-type]
        assert stat.S_IMODE(shared.stat().st_mode) == 0o600
    assert any("readable by other users" in e["event"] for e in logs)


# ---- the runtime: results, recall metadata, planner prompts ------------------------------------


@pytest.fixture
def calculator(tmp_path: Path, embedder: Embedder) -> Iterator[AgentRuntime]:
    runtime = AgentRuntime.create(load_agent_spec(EXAMPLES / "calculator.yaml"), tmp_path, embedder)
    yield runtime
    runtime.close()


async def test_peer_b_never_sees_peer_a_task_in_its_result(calculator: AgentRuntime) -> None:
    sink_a, sink_b = RecordingSink(), RecordingSink()
    first = await calculator.run_turn(
        turn("convert 5 miles to km", PEER_A, task_id="task-a1"), sink_a
    )
    assert first.state == TaskState.COMPLETED
    # B sends a near-identical request in A's conversation (context ids are not secrets)
    second = await calculator.run_turn(
        turn("convert 6 miles to km", PEER_B, task_id="task-b1"), sink_b
    )
    assert second.state == TaskState.COMPLETED
    assert recalled_ids(sink_b) == []
    assert "planning with" not in " ".join(sink_b.progress_lines)
    shown_to_b = second.text + json.dumps([a.to_wire() for a in sink_b.artifacts])
    assert "task-a1" not in shown_to_b and "5 miles" not in shown_to_b
    # A's own next task does recall it: the scope hides A from B, not A from itself
    await calculator.run_turn(turn("convert 7 miles to km", PEER_A, task_id="task-a2"), sink_a)
    assert recalled_ids(sink_a) == ["task-a1"]


@pytest.fixture
async def with_llm(
    server: FakeOpenAI, tmp_path: Path, embedder: Embedder
) -> AsyncIterator[AgentRuntime]:
    config = LlmConfig(base_url=server.base_url, model="test-model", max_retries=0)
    backend = LlmBackend(config, backoff=0.01)
    spec = load_agent_spec(EXAMPLES / "calculator.yaml")
    runtime = AgentRuntime.create(spec, tmp_path, embedder, backend)
    yield runtime
    runtime.close()
    await backend.aclose()


async def test_llm_prompt_for_peer_b_holds_nothing_of_peer_a(
    server: FakeOpenAI, with_llm: AgentRuntime
) -> None:
    server.then(*[tool_reply("unit_convert", CONVERT_ARGS)] * 3)
    a_text = f"for project {SECRET}: convert 5 miles to km"
    await with_llm.run_turn(turn(a_text, PEER_A, task_id="task-a1"), RecordingSink())
    sink_b = RecordingSink()
    result = await with_llm.run_turn(
        turn("convert 5 miles to km please", PEER_B, task_id="task-b1"), sink_b
    )
    assert result.state == TaskState.COMPLETED
    await with_llm.run_turn(
        turn("convert 5 miles to km again", PEER_A, task_id="task-a2"), RecordingSink()
    )
    assert len(server.requests) == 3
    prompt_for_b = json.dumps(server.requests[1]["body"])
    assert SECRET not in prompt_for_b
    assert "task-a1" not in prompt_for_b
    assert "Related past tasks" not in prompt_for_b
    assert recalled_ids(sink_b) == []
    # the same request from A carries A's earlier task: the test sees a real leak if one exists
    prompt_for_a = server.requests[2]["body"]["messages"][0]["content"]
    assert f"Related past tasks:\n- {a_text} -> " in prompt_for_a


# ---- sealed tasks ------------------------------------------------------------------------------


@dataclass
class Sealing:
    public: AuthorityPublicKey
    key: AttributeKey
    policy: str = "org:acme"


@pytest.fixture(scope="module")
def sealing() -> Sealing:
    public, master = new_authority()
    return Sealing(public, issue_key(public, master, "node", ["org:acme"]))


def sealed_runtime(
    home: Path, embedder: Embedder, key: AttributeKey, **memory: str
) -> AgentRuntime:
    spec = load_agent_spec(EXAMPLES / "calculator.yaml")
    if memory:
        spec = spec.model_copy(update={"memory": spec.memory.model_copy(update=memory)})
    toolbox, skill_tools = load_skill_tools(spec)
    store = EpisodicMemory(home / MEMORY_FILENAME, spec.id, embedder)
    return AgentRuntime(spec, toolbox, store, embedder, None, skill_tools, [key])


async def test_sealed_plaintext_never_reaches_memory_on_disk(
    tmp_path: Path, embedder: Embedder, sealing: Sealing
) -> None:
    runtime = sealed_runtime(tmp_path, embedder, sealing.key)
    try:
        sealed = (sealing.public, sealing.policy)
        text = f"{SECRET} asks: convert 5 miles to km"
        result = await runtime.run_turn(
            turn(text, PEER_A, task_id="sealed-1", sealed=sealed), RecordingSink()
        )
        assert result.state == TaskState.COMPLETED, result.text
        assert "8.04672" in result.text  # the agent did read the sealed request
        assert runtime.memory.count(PEER_A) == 0
        assert runtime.memory.get("sealed-1") == []
        # a plain task is still remembered: memory works, it only skipped the sealed one
        await runtime.run_turn(
            turn("convert 3 miles to km", PEER_A, task_id="plain-1"), RecordingSink()
        )
        assert runtime.memory.count(PEER_A) == 1
    finally:
        runtime.close()
    on_disk = memory_bytes(tmp_path)
    assert b"3 miles" in on_disk  # the check below would see plaintext if it were there
    assert SECRET.encode() not in on_disk
    assert b"sealed-1" not in on_disk


async def test_sealed_memory_principal_keeps_it_in_the_senders_scope(
    tmp_path: Path, embedder: Embedder, sealing: Sealing
) -> None:
    runtime = sealed_runtime(tmp_path, embedder, sealing.key, sealed="principal")
    try:
        sealed = (sealing.public, sealing.policy)
        text = f"{SECRET} asks: convert 5 miles to km"
        first = await runtime.run_turn(
            turn(text, PEER_A, task_id="sealed-1", sealed=sealed), RecordingSink()
        )
        assert first.state == TaskState.COMPLETED, first.text
        sink_b, sink_a = RecordingSink(), RecordingSink()
        await runtime.run_turn(turn("convert 5 miles to km", PEER_B, task_id="b-1"), sink_b)
        await runtime.run_turn(turn("convert 5 miles to km", PEER_A, task_id="a-2"), sink_a)
        assert recalled_ids(sink_b) == []
        assert recalled_ids(sink_a) == ["sealed-1"]
        [episode] = runtime.memory.get("sealed-1")
        assert episode.principal == PEER_A and SECRET in episode.request
    finally:
        runtime.close()


def test_agent_file_memory_setting(tmp_path: Path) -> None:
    base = {"name": "A", "description": "d", "skills": [{"name": "s", "description": "d"}]}
    assert AgentSpec.model_validate(base).memory.sealed == "none"  # the safe default
    spec = AgentSpec.model_validate({**base, "memory": {"sealed": "principal"}})
    assert spec.memory.sealed == "principal"
    path = tmp_path / "agent.yaml"
    path.write_text(json.dumps({**base, "memory": {"sealed": "everyone"}}))
    with pytest.raises(AgentFileError) as info:
        load_agent_spec(path)
    assert "memory.sealed" in str(info.value) and "\n" not in str(info.value)
