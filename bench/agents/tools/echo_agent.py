"""A trivial custom agent runtime for bench/rpc.py (and an example of the ``runtime`` plug-in):
every turn returns one artifact with the request text. Any class with this shape (agent_id,
input/output modes, ``run_turn``, ``tool_schemas``, ``close`` and a ``create`` classmethod) can
replace the standard persona + tools + memory runtime of an agent file."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from noosphere.agents.spec import AgentSpec
from noosphere.agents.turn import Turn, TurnResult, TurnSink
from noosphere.models.embedding import Embedder
from noosphere.models.llm import LlmBackend
from noosphere.protocol.a2a import Artifact, Part, TaskState


class EchoAgent:
    def __init__(self, spec: AgentSpec) -> None:
        self.agent_id = spec.id
        self.input_modes: frozenset[str] = frozenset(spec.input_modes)
        self.output_modes: frozenset[str] = frozenset(spec.output_modes)

    @classmethod
    def create(
        cls, spec: AgentSpec, home: Path, embedder: Embedder, llm: LlmBackend | None = None
    ) -> EchoAgent:
        return cls(spec)

    async def run_turn(self, turn: Turn, sink: TurnSink) -> TurnResult:
        text = turn.message.text
        await sink.artifact(Artifact(artifact_id=str(uuid.uuid4()), parts=[Part.of_text(text)]))
        return TurnResult(TaskState.COMPLETED, text)

    def tool_schemas(self) -> list[dict[str, Any]]:
        return []

    def close(self) -> None:
        pass
