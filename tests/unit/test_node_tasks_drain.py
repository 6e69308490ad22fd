"""The task manager at shutdown: ``drain`` refuses new tasks and lets running turns finish for a
grace period (a turn that ends in time is stored as it ended, its stream ends normally), then
``close`` fails the rest as retryable; a blocked SendMessage caller gets that stored state
instead of an error. And a turn runs as the task's owner, also when the operator continues it."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest

from noosphere.agents.turn import Turn, TurnResult, TurnSink
from noosphere.errors import RequestError
from noosphere.node.metrics import NodeMetrics
from noosphere.node.push import PushNotifier
from noosphere.node.store import NodeStore
from noosphere.node.tasks import TaskManager
from noosphere.protocol import ErrorCode
from noosphere.protocol.a2a import (
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    TaskState,
)
from noosphere.protocol.rpcauth import LOCAL_PRINCIPAL
from noosphere.protocol.wire_errors import wire_form

PEER_A = "12D3KooWPeerAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


class GateAgent:
    """Blocks each turn (keyed by the message text) until the test opens its gate; "ask" first
    asks a question. Records every turn."""

    agent_id = "gate"
    input_modes: frozenset[str] = frozenset()
    output_modes: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.started: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.gates: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.turns: list[Turn] = []

    async def run_turn(self, turn: Turn, sink: TurnSink) -> TurnResult:
        self.turns.append(turn)
        key = turn.message.text
        if key == "ask":
            return TurnResult(TaskState.INPUT_REQUIRED, "which one?")
        self.started[key].set()
        await self.gates[key].wait()
        return TurnResult(TaskState.COMPLETED, f"finished {key}")

    def tool_schemas(self) -> list[dict[str, object]]:
        return []

    def close(self) -> None:
        pass


def request(
    text: str, *, task_id: str | None = None, immediately: bool = False
) -> SendMessageRequest:
    return SendMessageRequest(
        message=Message(
            message_id=f"m-{time.monotonic_ns()}",
            role=Role.USER,
            parts=[Part.of_text(text)],
            task_id=task_id,
        ),
        configuration=SendMessageConfiguration(return_immediately=immediately),
    )


async def collect(events: AsyncIterator[StreamResponse]) -> list[StreamResponse]:
    return [event async for event in events]


def final_state(events: list[StreamResponse]) -> TaskState:
    last = events[-1].status_update
    assert last is not None
    return last.status.state


@pytest.fixture
async def push(metrics: NodeMetrics) -> AsyncIterator[PushNotifier]:
    notifier = PushNotifier(metrics)
    yield notifier
    await notifier.aclose(grace_s=0.5)


@pytest.fixture
async def manager(
    store: NodeStore, metrics: NodeMetrics, push: PushNotifier
) -> AsyncIterator[tuple[TaskManager, GateAgent]]:
    agent = GateAgent()
    made = TaskManager(store, {agent.agent_id: agent}, metrics, push)
    yield made, agent
    await made.close()


async def test_a_turn_that_ends_within_the_grace_is_kept_completed(
    manager: tuple[TaskManager, GateAgent],
) -> None:
    tasks, agent = manager
    streamed = await tasks.stream(request("quick"), LOCAL_PRINCIPAL)
    reader = asyncio.create_task(collect(streamed))
    stuck = await tasks.send(request("stuck", immediately=True), PEER_A)
    await asyncio.wait_for(agent.started["quick"].wait(), 5)
    await asyncio.wait_for(agent.started["stuck"].wait(), 5)

    draining = asyncio.create_task(tasks.drain(grace_s=60))
    await asyncio.sleep(0)  # draining: new tasks are refused from now on
    with pytest.raises(RequestError) as refused:
        await tasks.send(request("late"), PEER_A)
    assert wire_form(refused.value).code == ErrorCode.UNSUPPORTED_OPERATION
    assert "shutting down" in refused.value.message
    with pytest.raises(RequestError):
        await tasks.stream(request("late"), PEER_A)

    agent.gates["quick"].set()  # finishes during the grace
    events = await asyncio.wait_for(reader, 5)
    assert final_state(events) is TaskState.COMPLETED  # its stream ended normally
    assert not draining.done()  # still waiting for "stuck"
    agent.gates["stuck"].set()
    assert await asyncio.wait_for(draining, 5) == 0
    assert tasks.get(stuck.id, PEER_A).status.state is TaskState.COMPLETED


async def test_turns_still_running_after_the_grace_fail_retryable(
    manager: tuple[TaskManager, GateAgent],
) -> None:
    tasks, agent = manager
    blocked = asyncio.create_task(tasks.send(request("forever"), PEER_A))  # a waiting caller
    streamed = await tasks.stream(request("forever too"), LOCAL_PRINCIPAL)
    reader = asyncio.create_task(collect(streamed))
    await asyncio.wait_for(agent.started["forever"].wait(), 5)
    await asyncio.wait_for(agent.started["forever too"].wait(), 5)

    assert await tasks.drain(grace_s=0.05) == 2
    await tasks.close()
    answered = await asyncio.wait_for(blocked, 5)  # an answer, not an error
    assert answered.status.state is TaskState.FAILED
    assert answered.metadata is not None and answered.metadata["noosphere"]["retryable"] is True
    assert final_state(await asyncio.wait_for(reader, 5)) is TaskState.FAILED


async def test_a_second_signal_ends_the_grace_at_once(
    manager: tuple[TaskManager, GateAgent],
) -> None:
    tasks, agent = manager
    await tasks.send(request("slow", immediately=True), PEER_A)
    await asyncio.wait_for(agent.started["slow"].wait(), 5)
    interrupt = asyncio.Event()
    draining = asyncio.create_task(tasks.drain(grace_s=600, interrupt=interrupt))
    await asyncio.sleep(0)
    interrupt.set()
    assert await asyncio.wait_for(draining, 5) == 1


async def test_drain_without_running_turns_returns_at_once(
    manager: tuple[TaskManager, GateAgent],
) -> None:
    tasks, _ = manager
    assert await asyncio.wait_for(tasks.drain(grace_s=600), 5) == 0


async def test_the_operator_continuing_a_peer_task_runs_it_as_the_peer(
    manager: tuple[TaskManager, GateAgent],
) -> None:
    tasks, agent = manager
    asked = await tasks.send(request("ask"), PEER_A)
    assert asked.status.state is TaskState.INPUT_REQUIRED
    agent.gates["answer"].set()
    await tasks.send(request("answer", task_id=asked.id), LOCAL_PRINCIPAL)
    assert [t.principal for t in agent.turns] == [PEER_A, PEER_A]
