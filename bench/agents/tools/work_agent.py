"""A custom agent runtime for bench/scaling.py: each turn waits ``settings.sleep_s`` (I/O-like
work that needs no CPU) and then burns ``settings.cpu_ms`` of CPU in a worker thread (like a
tool computing), and returns the request text as an artifact. No embedding, no memory."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from noosphere.agents.spec import AgentSpec
from noosphere.agents.turn import Turn, TurnResult, TurnSink
from noosphere.models.embedding import Embedder
from noosphere.models.llm import LlmBackend
from noosphere.protocol.a2a import Artifact, Part, TaskState


def burn(seconds: float) -> int:
    """Busy CPU (holding the GIL, as pure-Python work does) for ``seconds`` of thread time."""
    end = time.thread_time() + seconds
    spins = 0
    while time.thread_time() < end:
        spins += sum(range(200))
    return spins


class WorkAgent:
    def __init__(self, spec: AgentSpec) -> None:
        self.agent_id = spec.id
        self.input_modes: frozenset[str] = frozenset(spec.input_modes)
        self.output_modes: frozenset[str] = frozenset(spec.output_modes)
        self.sleep_s = float(spec.settings.get("sleep_s", 0.0))
        self.cpu_s = float(spec.settings.get("cpu_ms", 0.0)) / 1000

    @classmethod
    def create(
        cls, spec: AgentSpec, home: Path, embedder: Embedder, llm: LlmBackend | None = None
    ) -> WorkAgent:
        return cls(spec)

    async def run_turn(self, turn: Turn, sink: TurnSink) -> TurnResult:
        if self.sleep_s:
            await asyncio.sleep(self.sleep_s)
        if self.cpu_s:
            await asyncio.to_thread(burn, self.cpu_s)
        text = turn.message.text
        await sink.artifact(Artifact(artifact_id=str(uuid.uuid4()), parts=[Part.of_text(text)]))
        return TurnResult(TaskState.COMPLETED, text)

    def tool_schemas(self) -> list[dict[str, Any]]:
        return []

    def close(self) -> None:
        pass
