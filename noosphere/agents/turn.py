"""Execute: the contract between the node's task manager and an agent. The manager hands the agent
one turn of a task (the new message plus the task's history) and a sink for progress and
artifacts; the agent answers with how the turn ended. Agents never see the store or the wire."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from noosphere.protocol.a2a import Artifact, Message, TaskState


@dataclass(frozen=True, slots=True)
class Turn:
    task_id: str
    context_id: str
    message: Message
    history: tuple[Message, ...] = ()  # earlier messages of this task, oldest first
    # who owns the task: "local" (the node's operator) or the requesting node's peer id; an
    # agent keeps what it remembers of one principal away from every other
    principal: str = "local"


class TurnSink(Protocol):
    async def progress(self, text: str) -> None:
        """A short status line (``working``) shown to the requester while the turn runs."""

    async def artifact(self, artifact: Artifact) -> None:
        """A result, delivered as soon as it exists."""


@dataclass(frozen=True, slots=True)
class TurnResult:
    """How a turn ended: completed, input-required (``text`` is the question), failed or
    rejected (``text`` is the reason). ``reply_only``: a completed turn whose answer is just
    ``text`` (A2A lets an agent answer SendMessage with a Message instead of a Task); the node
    still keeps the task, and streams still show it."""

    state: TaskState
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    reply_only: bool = False


class TaskAgent(Protocol):
    agent_id: str
    input_modes: frozenset[str]  # media types it reads (besides text/plain and JSON)
    output_modes: frozenset[str]  # media types its artifacts use (besides text/plain)

    async def run_turn(self, turn: Turn, sink: TurnSink) -> TurnResult:
        """Run one turn. Must not raise except ``asyncio.CancelledError``."""
        ...

    def tool_schemas(self) -> list[dict[str, Any]]:
        """JSON schemas of the agent's tools, published in its card (may be empty)."""
        ...

    def close(self) -> None:
        """Release what the agent holds (memory files, connections)."""
        ...
