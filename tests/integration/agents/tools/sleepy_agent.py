"""Test runtime: each turn waits ``settings.seconds`` then returns the request as an artifact."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from noosphere.agents.spec import AgentSpec
from noosphere.agents.turn import Turn, TurnResult, TurnSink
from noosphere.protocol.a2a import Artifact, Part, TaskState


class SleepyAgent:
    def __init__(self, spec: AgentSpec) -> None:
        self.agent_id = spec.id
        self.input_modes: frozenset[str] = frozenset()
        self.output_modes: frozenset[str] = frozenset()
        self.seconds = float(spec.settings.get("seconds", 0.5))

    @classmethod
    def create(cls, spec: AgentSpec, home: Path, embedder: Any, llm: Any = None) -> SleepyAgent:
        return cls(spec)

    async def run_turn(self, turn: Turn, sink: TurnSink) -> TurnResult:
        await asyncio.sleep(self.seconds)
        text = turn.message.text
        await sink.artifact(Artifact(artifact_id=str(uuid.uuid4()), parts=[Part.of_text(text)]))
        return TurnResult(TaskState.COMPLETED, text)

    def tool_schemas(self) -> list[dict[str, Any]]:
        return []

    def close(self) -> None:
        pass
