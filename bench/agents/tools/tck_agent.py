"""Execute (conformance): the scenario agent of the A2A conformance kit (bench/a2a_tck.py).

The kit's task tests pick what the agent does by the prefix of the message id
(``scenarios/*.feature`` in the kit): complete at once, ask for input, add a text, file or data
artifact, stream working -> artifact -> completed, or work for a while so that a subscriber can
join. Any other message completes with an echo, as the kit's reference agents do. A custom
agent runtime (the ``runtime`` plug-in of agent files): a test fixture, never a product agent.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from noosphere.agents.spec import AgentSpec
from noosphere.agents.turn import Turn, TurnResult, TurnSink
from noosphere.models.embedding import Embedder
from noosphere.models.llm import LlmBackend
from noosphere.protocol.a2a import Artifact, Part, TaskState

#: How long the "long-running" scenario works (the kit's reference agents: 2x its 2 s timeout).
LONG_TURN_S = 4.0


def _artifact(*parts: Part) -> Artifact:
    return Artifact(artifact_id=str(uuid.uuid4()), parts=list(parts))


def _file_part() -> Part:
    return Part.of_bytes(b"tck", filename="output.txt", media_type="text/plain")


#: Streamed scenarios: the artifact text sent between ``working`` and ``completed``.
_STREAMED = {
    "tck-stream-001": "Stream hello from TCK",
    "tck-stream-003": "Stream task lifecycle",
    "tck-stream-ordering-001": "Ordered output",
    "tck-stream-artifact-text": "Streamed text content",
}


class TckScenarioAgent:
    """Answers each turn as the kit's scenario for the message id's prefix says."""

    def __init__(self, spec: AgentSpec) -> None:
        self.agent_id = spec.id
        self.input_modes: frozenset[str] = frozenset(spec.input_modes)
        self.output_modes: frozenset[str] = frozenset(spec.output_modes)

    @classmethod
    def create(
        cls, spec: AgentSpec, home: Path, embedder: Embedder, llm: LlmBackend | None = None
    ) -> TckScenarioAgent:
        return cls(spec)

    async def run_turn(self, turn: Turn, sink: TurnSink) -> TurnResult:
        message_id = turn.message.message_id
        for prefix, text in _STREAMED.items():
            if message_id.startswith(prefix):
                await sink.progress("working")
                await sink.artifact(_artifact(Part.of_text(text)))
                return TurnResult(TaskState.COMPLETED, "done")
        if message_id.startswith("tck-stream-artifact-file"):
            await sink.progress("working")
            await sink.artifact(_artifact(_file_part()))
            return TurnResult(TaskState.COMPLETED, "done")
        if message_id.startswith("tck-stream-artifact-chunked"):
            await sink.progress("working")
            await sink.artifact(_artifact(Part.of_text("chunk-1 "), Part.of_text("chunk-2")))
            return TurnResult(TaskState.COMPLETED, "done")
        if message_id.startswith("tck-stream-002"):
            return TurnResult(TaskState.COMPLETED, "done")
        if message_id.startswith("test-resubscribe-message-id"):
            await sink.progress("working")
            await asyncio.sleep(LONG_TURN_S)
            return TurnResult(TaskState.COMPLETED, "done")
        if message_id.startswith("tck-input-required"):
            return TurnResult(TaskState.INPUT_REQUIRED, "more input, please")
        if message_id.startswith("tck-reject-task"):
            return TurnResult(TaskState.REJECTED, "rejected")
        if message_id.startswith("tck-artifact-file-url"):
            url = Part(url="https://example.com/output.txt", filename="output.txt")
            await sink.artifact(_artifact(url.model_copy(update={"media_type": "text/plain"})))
            return TurnResult(TaskState.COMPLETED, "done")
        if message_id.startswith("tck-artifact-text"):
            await sink.artifact(_artifact(Part.of_text("Generated text content")))
            return TurnResult(TaskState.COMPLETED, "done")
        if message_id.startswith("tck-artifact-file"):
            await sink.artifact(_artifact(_file_part()))
            return TurnResult(TaskState.COMPLETED, "done")
        if message_id.startswith("tck-artifact-data"):
            await sink.artifact(_artifact(Part.of_data({"key": "value", "count": 42})))
            return TurnResult(TaskState.COMPLETED, "done")
        if message_id.startswith("tck-message-response"):
            return TurnResult(TaskState.COMPLETED, "Direct message response", reply_only=True)
        if message_id.startswith("tck-complete-task"):
            return TurnResult(TaskState.COMPLETED, "Hello from TCK")
        return TurnResult(TaskState.COMPLETED, f"Unhandled messageId prefix: {message_id}")

    def tool_schemas(self) -> list[dict[str, Any]]:
        return []

    def close(self) -> None:
        pass
