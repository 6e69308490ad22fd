"""The task manager: the A2A task life cycle (send, continue, cancel, stream, subscribe, list),
who may see which task, restart recovery, shutdown, agent failures, tenants and concurrency.
The agents below are small real TaskAgents, not mocks of the manager."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from noosphere.agents.turn import TaskAgent, Turn, TurnResult, TurnSink
from noosphere.errors import RequestError
from noosphere.node.metrics import NodeMetrics
from noosphere.node.push import PushNotifier
from noosphere.node.store import NodeStore, StoredTask
from noosphere.node.tasks import TaskManager
from noosphere.protocol import ErrorCode
from noosphere.protocol.a2a import (
    Artifact,
    ListTaskPushNotificationConfigsRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    Task,
    TaskPushConfigRef,
    TaskPushNotificationConfig,
    TaskState,
    TaskStatus,
    now_rfc3339,
)
from noosphere.protocol.rpcauth import LOCAL_PRINCIPAL
from noosphere.protocol.wire_errors import wire_form

PEER_A = "12D3KooWPeerAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
PEER_B = "12D3KooWPeerBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"


# ---- agents ----------------------------------------------------------------------------------


class TestAgent:
    """What every test agent shares: the media types it reads and writes."""

    __test__ = False
    input_modes: frozenset[str] = frozenset()
    output_modes: frozenset[str] = frozenset()


class EchoAgent(TestAgent):
    """Reports progress, emits one artifact (the message upper-cased) and completes."""

    def __init__(self, agent_id: str = "echo") -> None:
        self.agent_id = agent_id
        self.turns: list[Turn] = []

    async def run_turn(self, turn: Turn, sink: TurnSink) -> TurnResult:
        self.turns.append(turn)
        await sink.progress("thinking")
        await sink.artifact(
            Artifact(
                artifact_id="answer", name="answer", parts=[Part.of_text(turn.message.text.upper())]
            )
        )
        return TurnResult(TaskState.COMPLETED, f"done: {turn.message.text}")


class AskAgent(TestAgent):
    """Asks for a city on the first turn; completes on the second using the history."""

    agent_id = "ask"

    def __init__(self) -> None:
        self.turns: list[Turn] = []

    async def run_turn(self, turn: Turn, sink: TurnSink) -> TurnResult:
        self.turns.append(turn)
        if not turn.history:
            return TurnResult(TaskState.INPUT_REQUIRED, "which city?")
        first = turn.history[0].text
        return TurnResult(TaskState.COMPLETED, f"{first} in {turn.message.text}")


class GateAgent(TestAgent):
    """Blocks each turn (keyed by the message text) until the test opens its gate."""

    agent_id = "gate"

    def __init__(self) -> None:
        self.started: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.gates: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.cancelled: list[str] = []

    async def run_turn(self, turn: Turn, sink: TurnSink) -> TurnResult:
        key = turn.message.text
        self.started[key].set()
        try:
            await self.gates[key].wait()
        except asyncio.CancelledError:
            self.cancelled.append(key)
            raise
        await sink.progress(f"released {key}")
        return TurnResult(TaskState.COMPLETED, f"finished {key}")


class CrashAgent(TestAgent):
    agent_id = "crash"

    async def run_turn(self, turn: Turn, sink: TurnSink) -> TurnResult:
        raise RuntimeError("agent bug with a secret inside")


class SlowAgent(TestAgent):
    agent_id = "slow"

    async def run_turn(self, turn: Turn, sink: TurnSink) -> TurnResult:
        await asyncio.sleep(30)
        return TurnResult(TaskState.COMPLETED, "too late")


class OwnTimeoutAgent(TestAgent):
    """Its own (inner) timeout escapes as TimeoutError: an agent error, not the turn deadline."""

    agent_id = "own-timeout"

    async def run_turn(self, turn: Turn, sink: TurnSink) -> TurnResult:
        async with asyncio.timeout(0.001):
            await asyncio.sleep(1)
        return TurnResult(TaskState.COMPLETED, "unreachable")


class WrongResultAgent(TestAgent):
    """Breaks the contract: a turn that 'ends' working, or no TurnResult at all."""

    agent_id = "wrong"

    async def run_turn(self, turn: Turn, sink: TurnSink) -> TurnResult:
        if turn.message.text == "none":
            return None  # type: ignore[return-value]
        return TurnResult(TaskState.WORKING, "still going")


class StraySinkAgent(TestAgent):
    """Keeps its sink after the turn (a bug): late reports must not touch the finished task."""

    agent_id = "stray"

    def __init__(self) -> None:
        self.sink: TurnSink | None = None

    async def run_turn(self, turn: Turn, sink: TurnSink) -> TurnResult:
        self.sink = sink
        return TurnResult(TaskState.COMPLETED, "done", {"cost": 3})


# ---- helpers ---------------------------------------------------------------------------------


def user_message(
    text: str,
    *,
    task_id: str | None = None,
    context_id: str | None = None,
    role: Role = Role.USER,
) -> Message:
    return Message(
        message_id=f"m-{time.monotonic_ns()}",
        role=role,
        parts=[Part.of_text(text)],
        task_id=task_id,
        context_id=context_id,
    )


def request(
    text: str,
    *,
    task_id: str | None = None,
    context_id: str | None = None,
    tenant: str | None = None,
    immediately: bool = False,
    history_length: int | None = None,
    role: Role = Role.USER,
) -> SendMessageRequest:
    return SendMessageRequest(
        tenant=tenant,
        message=user_message(text, task_id=task_id, context_id=context_id, role=role),
        configuration=SendMessageConfiguration(
            return_immediately=immediately, history_length=history_length
        ),
    )


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def collect(events: AsyncIterator[StreamResponse]) -> list[StreamResponse]:
    return [event async for event in events]


def kind(event: StreamResponse) -> str:
    if event.task is not None:
        return f"task:{event.task.status.state.short}"
    if event.status_update is not None:
        text = event.status_update.status.message.text if event.status_update.status.message else ""
        return f"status:{event.status_update.status.state.short}:{text}"
    if event.artifact_update is not None:
        return f"artifact:{event.artifact_update.artifact.artifact_id}"
    return "message"


def rpc_code(excinfo: pytest.ExceptionInfo[RequestError]) -> int:
    return wire_form(excinfo.value).code


def sample(metrics: NodeMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value


Factory = Callable[..., TaskManager]


@pytest.fixture
async def push(metrics: NodeMetrics) -> AsyncIterator[PushNotifier]:
    # Webhook receivers in these tests listen on loopback, registered by peers too.
    notifier = PushNotifier(metrics, backoff_s=0.01, timeout_s=2.0, allow_private_targets=True)
    yield notifier
    await notifier.aclose(grace_s=0.5)


@pytest.fixture
async def make_manager(
    store: NodeStore, metrics: NodeMetrics, push: PushNotifier
) -> AsyncIterator[Factory]:
    made: list[TaskManager] = []

    def factory(*agents: TaskAgent, **options: Any) -> TaskManager:
        manager = TaskManager(store, {a.agent_id: a for a in agents}, metrics, push, **options)
        made.append(manager)
        return manager

    yield factory
    for manager in made:
        await manager.close()


# ---- 1. send ---------------------------------------------------------------------------------


async def test_send_completes_with_artifact_history_and_persists(
    make_manager: Factory, store: NodeStore, metrics: NodeMetrics, tmp_path: Path
) -> None:
    agent = EchoAgent()
    manager = make_manager(agent)
    task = await manager.send(request("hello"), LOCAL_PRINCIPAL)

    assert task.status.state is TaskState.COMPLETED
    assert task.status.message is not None and task.status.message.text == "done: hello"
    assert task.status.message.role is Role.AGENT
    assert [a.parts[0].text for a in task.artifacts] == ["HELLO"]
    assert [m.role for m in task.history] == [Role.USER, Role.AGENT]
    assert all(m.task_id == task.id and m.context_id == task.context_id for m in task.history)
    assert task.history[1] == task.status.message
    assert task.metadata == {"agentId": "echo"}
    assert agent.turns[0].history == () and agent.turns[0].principal == LOCAL_PRINCIPAL
    assert sample(metrics, "noosphere_tasks_total", agent="echo", state="completed") == 1
    assert sample(metrics, "noosphere_task_latency_seconds_count", agent="echo") == 1

    # A second store on the same file (another process after a restart) still knows it.
    reopened = NodeStore(store.path)
    try:
        fresh = TaskManager(reopened, {}, NodeMetrics(), PushNotifier(NodeMetrics()))
        assert fresh.get(task.id, LOCAL_PRINCIPAL) == task
    finally:
        reopened.close()


async def test_send_history_length_and_trimmed_get(make_manager: Factory) -> None:
    manager = make_manager(EchoAgent())
    task = await manager.send(request("x", history_length=1), LOCAL_PRINCIPAL)
    assert [m.role for m in task.history] == [Role.AGENT]
    assert manager.get(task.id, LOCAL_PRINCIPAL, history_length=0).history == []
    assert len(manager.get(task.id, LOCAL_PRINCIPAL).history) == 2


async def test_context_id_is_kept_or_created(make_manager: Factory) -> None:
    manager = make_manager(EchoAgent())
    given = await manager.send(request("a", context_id="ctx-1"), LOCAL_PRINCIPAL)
    made = await manager.send(request("b"), LOCAL_PRINCIPAL)
    assert given.context_id == "ctx-1"
    assert made.context_id and made.context_id != "ctx-1"


# ---- 2. return immediately -------------------------------------------------------------------


async def test_return_immediately_then_completes(make_manager: Factory) -> None:
    agent = GateAgent()
    manager = make_manager(agent)
    task = await manager.send(request("job", immediately=True), LOCAL_PRINCIPAL)
    assert task.status.state is TaskState.SUBMITTED
    assert manager.get(task.id, LOCAL_PRINCIPAL).status.state is TaskState.SUBMITTED

    await asyncio.wait_for(agent.started["job"].wait(), 2)
    assert manager.get(task.id, LOCAL_PRINCIPAL).status.state is TaskState.WORKING
    agent.gates["job"].set()
    await eventually(
        lambda: manager.get(task.id, LOCAL_PRINCIPAL).status.state is TaskState.COMPLETED
    )
    assert manager.get(task.id, LOCAL_PRINCIPAL).status.message.text == "finished job"  # type: ignore[union-attr]


# ---- 3. multi-turn ---------------------------------------------------------------------------


async def test_input_required_then_continue_completes(make_manager: Factory) -> None:
    agent = AskAgent()
    manager = make_manager(agent)
    first = await manager.send(request("weather"), PEER_A)
    assert first.status.state is TaskState.INPUT_REQUIRED
    assert first.status.message is not None and first.status.message.text == "which city?"

    second = await manager.send(request("Paris", task_id=first.id), PEER_A)
    assert second.id == first.id and second.context_id == first.context_id
    assert second.status.state is TaskState.COMPLETED
    assert second.status.message is not None and second.status.message.text == "weather in Paris"
    assert [m.text for m in second.history] == [
        "weather",
        "which city?",
        "Paris",
        "weather in Paris",
    ]
    assert [m.role for m in second.history] == [Role.USER, Role.AGENT, Role.USER, Role.AGENT]
    # The second turn saw the first turn's messages, oldest first.
    turn = agent.turns[1]
    assert [m.text for m in turn.history] == ["weather", "which city?"]
    assert turn.message.text == "Paris" and turn.message.context_id == first.context_id
    assert turn.principal == PEER_A


async def test_continue_with_matching_context_id(make_manager: Factory) -> None:
    manager = make_manager(AskAgent())
    first = await manager.send(request("q"), LOCAL_PRINCIPAL)
    done = await manager.send(
        request("Rome", task_id=first.id, context_id=first.context_id), LOCAL_PRINCIPAL
    )
    assert done.status.state is TaskState.COMPLETED


async def test_continue_errors(make_manager: Factory) -> None:
    manager = make_manager(AskAgent(), EchoAgent(), GateAgent())
    asked = await manager.send(request("q", tenant="ask"), LOCAL_PRINCIPAL)

    with pytest.raises(RequestError) as excinfo:
        await manager.send(request("x", task_id=asked.id, context_id="other"), LOCAL_PRINCIPAL)
    assert rpc_code(excinfo) == ErrorCode.INVALID_PARAMS
    with pytest.raises(RequestError) as excinfo:
        await manager.send(request("x", task_id=asked.id, role=Role.AGENT), LOCAL_PRINCIPAL)
    assert rpc_code(excinfo) == ErrorCode.INVALID_PARAMS
    with pytest.raises(RequestError) as excinfo:
        await manager.send(request("x", task_id="no-such-task"), LOCAL_PRINCIPAL)
    assert rpc_code(excinfo) == ErrorCode.TASK_NOT_FOUND
    # None of the refused messages changed the task.
    assert len(manager.get(asked.id, LOCAL_PRINCIPAL).history) == 2

    done = await manager.send(request("y", tenant="echo"), LOCAL_PRINCIPAL)
    with pytest.raises(RequestError) as excinfo:
        await manager.send(request("again", task_id=done.id), LOCAL_PRINCIPAL)
    assert rpc_code(excinfo) == ErrorCode.UNSUPPORTED_OPERATION

    gate = GateAgent.agent_id
    running = await manager.send(request("busy", tenant=gate, immediately=True), LOCAL_PRINCIPAL)
    with pytest.raises(RequestError) as excinfo:
        await manager.send(request("more", task_id=running.id), LOCAL_PRINCIPAL)
    assert rpc_code(excinfo) == ErrorCode.UNSUPPORTED_OPERATION


async def test_role_agent_refused_for_new_task(make_manager: Factory, store: NodeStore) -> None:
    manager = make_manager(EchoAgent())
    with pytest.raises(RequestError) as excinfo:
        await manager.send(request("hi", role=Role.AGENT), LOCAL_PRINCIPAL)
    assert rpc_code(excinfo) == ErrorCode.INVALID_PARAMS
    assert store.list_tasks()[1] == 0


async def test_continue_task_whose_agent_is_gone(
    make_manager: Factory, store: NodeStore, metrics: NodeMetrics, push: PushNotifier
) -> None:
    first = await make_manager(AskAgent()).send(request("q"), LOCAL_PRINCIPAL)
    other = make_manager(EchoAgent())
    with pytest.raises(RequestError) as excinfo:
        await other.send(request("x", task_id=first.id), LOCAL_PRINCIPAL)
    assert rpc_code(excinfo) == ErrorCode.UNSUPPORTED_OPERATION


# ---- 4. cancel -------------------------------------------------------------------------------


async def test_cancel_running_turn(make_manager: Factory, metrics: NodeMetrics) -> None:
    agent = GateAgent()
    manager = make_manager(agent)
    task = await manager.send(request("long", immediately=True), LOCAL_PRINCIPAL)
    await asyncio.wait_for(agent.started["long"].wait(), 2)

    canceled = await manager.cancel(task.id, LOCAL_PRINCIPAL)
    assert canceled.status.state is TaskState.CANCELED
    assert agent.cancelled == ["long"]
    assert canceled.history[-1].role is Role.AGENT
    assert manager.running == 0 and manager.queue_depth == 0
    assert sample(metrics, "noosphere_tasks_running") == 0
    assert sample(metrics, "noosphere_tasks_total", agent="gate", state="canceled") == 1

    with pytest.raises(RequestError) as excinfo:
        await manager.cancel(task.id, LOCAL_PRINCIPAL)
    assert rpc_code(excinfo) == ErrorCode.TASK_NOT_CANCELABLE


async def test_send_waiting_caller_sees_cancellation(make_manager: Factory) -> None:
    agent = GateAgent()
    manager = make_manager(agent)
    waiting = asyncio.create_task(manager.send(request("w"), LOCAL_PRINCIPAL))
    await asyncio.wait_for(agent.started["w"].wait(), 2)
    task_id = manager.list(ListTasksRequest(), LOCAL_PRINCIPAL).tasks[0].id
    await manager.cancel(task_id, LOCAL_PRINCIPAL)
    result = await asyncio.wait_for(waiting, 2)
    assert result.status.state is TaskState.CANCELED


async def test_cancel_right_after_accept_before_the_turn_starts(
    make_manager: Factory, metrics: NodeMetrics
) -> None:
    """Regression: a job cancelled before its first step never ran its body, so the task
    stayed ``submitted`` forever and its stream never ended."""
    agent = GateAgent()
    manager = make_manager(agent)
    events = await manager.stream(request("never"), LOCAL_PRINCIPAL)
    task_id = manager.list(ListTasksRequest(), LOCAL_PRINCIPAL).tasks[0].id
    canceled = await manager.cancel(task_id, LOCAL_PRINCIPAL)  # no await before: job unstarted
    assert canceled.status.state is TaskState.CANCELED
    assert not agent.started["never"].is_set()
    seen = await asyncio.wait_for(collect(events), 2)
    assert [kind(e) for e in seen] == [
        "task:submitted",
        "status:canceled:canceled by the requester",
    ]
    assert manager.running == 0 and manager.queue_depth == 0
    assert sample(metrics, "noosphere_task_queue_depth") == 0
    assert sample(metrics, "noosphere_tasks_total", agent="gate", state="canceled") == 1


async def test_cancel_queued_turn(make_manager: Factory, metrics: NodeMetrics) -> None:
    agent = GateAgent()
    manager = make_manager(agent, max_concurrent_turns=1)
    first = await manager.send(request("one", immediately=True), LOCAL_PRINCIPAL)
    second = await manager.send(request("two", immediately=True), LOCAL_PRINCIPAL)
    await asyncio.wait_for(agent.started["one"].wait(), 2)
    assert manager.queue_depth == 1

    canceled = await manager.cancel(second.id, LOCAL_PRINCIPAL)
    assert canceled.status.state is TaskState.CANCELED
    assert manager.queue_depth == 0 and sample(metrics, "noosphere_task_queue_depth") == 0
    agent.gates["one"].set()
    await eventually(
        lambda: manager.get(first.id, LOCAL_PRINCIPAL).status.state is TaskState.COMPLETED
    )
    assert not agent.started["two"].is_set()


async def test_cancel_input_required_task(make_manager: Factory) -> None:
    manager = make_manager(AskAgent())
    asked = await manager.send(request("q"), PEER_A)
    canceled = await manager.cancel(asked.id, PEER_A)
    assert canceled.status.state is TaskState.CANCELED
    assert canceled.status.message is not None
    assert canceled.status.message.text == "canceled by the requester"
    assert manager.get(asked.id, PEER_A).status.state is TaskState.CANCELED


# ---- 5. streams and subscriptions ------------------------------------------------------------


async def test_stream_events_in_order(make_manager: Factory) -> None:
    manager = make_manager(EchoAgent())
    events = await manager.stream(request("hi"), LOCAL_PRINCIPAL)
    seen = await asyncio.wait_for(collect(events), 2)
    assert [kind(e) for e in seen] == [
        "task:submitted",
        "status:working:",
        "status:working:thinking",
        "artifact:answer",
        "status:completed:done: hi",
    ]
    first = seen[0].task
    assert first is not None and [m.text for m in first.history] == ["hi"]
    for event in seen[1:]:
        update = event.status_update or event.artifact_update
        assert update is not None
        assert update.task_id == first.id and update.context_id == first.context_id
    assert seen[3].artifact_update is not None and seen[3].artifact_update.last_chunk is True
    assert manager.get(first.id, LOCAL_PRINCIPAL).status.state is TaskState.COMPLETED


async def test_stream_continuation_of_input_required(make_manager: Factory) -> None:
    manager = make_manager(AskAgent())
    asked = await manager.send(request("q"), LOCAL_PRINCIPAL)
    seen = await collect(await manager.stream(request("Oslo", task_id=asked.id), LOCAL_PRINCIPAL))
    assert [kind(e) for e in seen] == [
        "task:submitted",
        "status:working:",
        "status:completed:q in Oslo",
    ]
    assert seen[0].task is not None and len(seen[0].task.history) == 3


async def test_stream_errors_surface_before_iteration(make_manager: Factory) -> None:
    manager = make_manager(EchoAgent())
    with pytest.raises(RequestError) as excinfo:
        await manager.stream(request("x", task_id="missing"), LOCAL_PRINCIPAL)
    assert rpc_code(excinfo) == ErrorCode.TASK_NOT_FOUND


async def test_stream_consumer_leaving_early_unregisters(make_manager: Factory) -> None:
    agent = GateAgent()
    manager = make_manager(agent)
    events = await manager.stream(request("s"), LOCAL_PRINCIPAL)
    async for event in events:
        assert event.task is not None
        break
    await events.aclose()  # type: ignore[attr-defined]
    agent.gates["s"].set()
    task_id = manager.list(ListTasksRequest(), LOCAL_PRINCIPAL).tasks[0].id
    await eventually(
        lambda: manager.get(task_id, LOCAL_PRINCIPAL).status.state is TaskState.COMPLETED
    )
    assert not manager._watchers  # nothing left behind for the task


async def test_subscribe_running_task_gets_snapshot_then_rest(make_manager: Factory) -> None:
    agent = GateAgent()
    manager = make_manager(agent)
    task = await manager.send(request("sub", immediately=True), PEER_A)
    await asyncio.wait_for(agent.started["sub"].wait(), 2)

    first = manager.subscribe(task.id, PEER_A)
    second = manager.subscribe(task.id, LOCAL_PRINCIPAL)
    agent.gates["sub"].set()
    for events in (first, second):
        seen = await asyncio.wait_for(collect(events), 2)
        assert [kind(e) for e in seen] == [
            "task:working",
            "status:working:released sub",
            "status:completed:finished sub",
        ]


async def test_subscribe_terminal_and_input_required(make_manager: Factory) -> None:
    manager = make_manager(AskAgent(), EchoAgent())
    done = await manager.send(request("x", tenant="echo"), LOCAL_PRINCIPAL)
    with pytest.raises(RequestError) as excinfo:
        manager.subscribe(done.id, LOCAL_PRINCIPAL)
    assert rpc_code(excinfo) == ErrorCode.UNSUPPORTED_OPERATION

    # A subscription to a task waiting for input stays open through the next turn (which ends
    # input-required or not) until the task reaches a terminal state (A2A 3.1.6).
    asked = await manager.send(request("q", tenant="ask"), LOCAL_PRINCIPAL)
    subscription = manager.subscribe(asked.id, LOCAL_PRINCIPAL)
    first = await asyncio.wait_for(anext(subscription), 2)
    assert kind(first) == "task:input-required"
    streamed = await manager.stream(request("Paris", task_id=asked.id), LOCAL_PRINCIPAL)
    seen = await asyncio.wait_for(collect(subscription), 2)
    assert [kind(e) for e in seen] == ["status:working:", "status:completed:q in Paris"]
    turn = await asyncio.wait_for(collect(streamed), 2)
    assert kind(turn[-1]) == "status:completed:q in Paris"
    assert asked.id not in manager._watchers


async def test_subscription_to_waiting_task_ends_when_canceled(make_manager: Factory) -> None:
    manager = make_manager(AskAgent())
    asked = await manager.send(request("q"), PEER_A)
    subscription = manager.subscribe(asked.id, PEER_A)
    assert kind(await asyncio.wait_for(anext(subscription), 2)) == "task:input-required"
    await manager.cancel(asked.id, PEER_A)
    seen = await asyncio.wait_for(collect(subscription), 2)
    assert [kind(e) for e in seen] == ["status:canceled:canceled by the requester"]
    assert not manager._watchers


# ---- 6. principals, listing, paging ----------------------------------------------------------


async def test_foreign_tasks_look_missing(make_manager: Factory) -> None:
    agent = GateAgent()
    manager = make_manager(agent)
    task = await manager.send(request("mine", immediately=True), PEER_A)
    await asyncio.wait_for(agent.started["mine"].wait(), 2)
    ref = TaskPushConfigRef(task_id=task.id, id="cfg")
    config = TaskPushNotificationConfig(task_id=task.id, url="http://127.0.0.1:9/hook")

    calls: list[Callable[[], Any]] = [
        lambda: manager.get(task.id, PEER_B),
        lambda: manager.subscribe(task.id, PEER_B),
        lambda: manager.set_push_config(config, PEER_B),
        lambda: manager.get_push_config(ref, PEER_B),
        lambda: manager.list_push_configs(
            ListTaskPushNotificationConfigsRequest(task_id=task.id), PEER_B
        ),
        lambda: manager.delete_push_config(ref, PEER_B),
    ]
    for call in calls:
        with pytest.raises(RequestError) as excinfo:
            call()
        assert rpc_code(excinfo) == ErrorCode.TASK_NOT_FOUND
    for coroutine in (
        manager.cancel(task.id, PEER_B),
        manager.send(request("hijack", task_id=task.id), PEER_B),
    ):
        with pytest.raises(RequestError) as excinfo:
            await coroutine
        assert rpc_code(excinfo) == ErrorCode.TASK_NOT_FOUND
    # Same message as an unknown task: nothing reveals that the task exists.
    with pytest.raises(RequestError) as unknown:
        manager.get("no-such-task", PEER_B)
    assert wire_form(unknown.value).code == ErrorCode.TASK_NOT_FOUND

    assert manager.list(ListTasksRequest(), PEER_B).tasks == []
    assert manager.get(task.id, PEER_A).id == task.id
    assert manager.get(task.id, LOCAL_PRINCIPAL).id == task.id
    assert [t.id for t in manager.list(ListTasksRequest(), LOCAL_PRINCIPAL).tasks] == [task.id]
    agent.gates["mine"].set()


async def test_list_filters(make_manager: Factory) -> None:
    manager = make_manager(EchoAgent("a"), EchoAgent("b"), AskAgent())
    a1 = await manager.send(request("1", tenant="a", context_id="c1"), PEER_A)
    a2 = await manager.send(request("2", tenant="b", context_id="c1"), PEER_A)
    b1 = await manager.send(request("3", tenant="a", context_id="c2"), PEER_B)
    asked = await manager.send(request("4", tenant="ask", context_id="c1"), PEER_A)

    def ids(principal: str = LOCAL_PRINCIPAL, **fields: Any) -> set[str]:
        return {t.id for t in manager.list(ListTasksRequest(**fields), principal).tasks}

    assert ids() == {a1.id, a2.id, b1.id, asked.id}
    assert ids(PEER_A) == {a1.id, a2.id, asked.id}
    assert ids(PEER_B) == {b1.id}
    assert ids(context_id="c1") == {a1.id, a2.id, asked.id}
    assert ids(PEER_A, context_id="c2") == set()
    assert ids(status=TaskState.INPUT_REQUIRED) == {asked.id}
    assert ids(status=TaskState.COMPLETED, tenant="a") == {a1.id, b1.id}
    assert ids(PEER_A, tenant="b") == {a2.id}
    with pytest.raises(RequestError) as excinfo:
        manager.list(ListTasksRequest(tenant="nobody"), LOCAL_PRINCIPAL)
    assert rpc_code(excinfo) == ErrorCode.INVALID_PARAMS

    listed = manager.list(ListTasksRequest(context_id="c2"), LOCAL_PRINCIPAL)
    assert listed.tasks[0].artifacts == []  # artifacts only on request
    assert listed.total_size == 1 and listed.next_page_token == "" and listed.page_size == 50
    full = manager.list(
        ListTasksRequest(context_id="c2", include_artifacts=True, history_length=1),
        LOCAL_PRINCIPAL,
    )
    assert len(full.tasks[0].artifacts) == 1 and len(full.tasks[0].history) == 1


async def test_paging_covers_every_task_once(make_manager: Factory) -> None:
    manager = make_manager(EchoAgent())
    created = {(await manager.send(request(str(i)), PEER_A)).id for i in range(7)}
    await manager.send(request("other"), PEER_B)

    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = manager.list(ListTasksRequest(page_size=3, page_token=token), PEER_A)
        pages += 1
        assert page.total_size == 7 and page.page_size == 3
        assert len(page.tasks) <= 3
        seen.extend(t.id for t in page.tasks)
        if not page.next_page_token:
            break
        token = page.next_page_token
    assert pages == 3
    assert sorted(seen) == sorted(created) and len(seen) == len(set(seen))


@pytest.mark.parametrize(
    "token",
    [
        "not a token!",
        base64.urlsafe_b64encode(b"x:3").decode().rstrip("="),
        base64.urlsafe_b64encode(b"o:-1").decode().rstrip("="),
        base64.urlsafe_b64encode(b"o:" + b"9" * 30).decode().rstrip("="),
        base64.urlsafe_b64encode("o:\u0663".encode()).decode().rstrip("="),
    ],
)
async def test_bad_page_token(make_manager: Factory, token: str) -> None:
    manager = make_manager(EchoAgent())
    with pytest.raises(RequestError) as excinfo:
        manager.list(ListTasksRequest(page_token=token), LOCAL_PRINCIPAL)
    assert rpc_code(excinfo) == ErrorCode.INVALID_PARAMS


async def test_status_timestamp_after(make_manager: Factory) -> None:
    manager = make_manager(EchoAgent())
    old = await manager.send(request("old"), LOCAL_PRINCIPAL)
    await asyncio.sleep(0.01)
    cut = now_rfc3339()
    await asyncio.sleep(0.01)
    new = await manager.send(request("new"), LOCAL_PRINCIPAL)

    def ids(after: str) -> list[str]:
        listing = manager.list(ListTasksRequest(status_timestamp_after=after), LOCAL_PRINCIPAL)
        return [t.id for t in listing.tasks]

    assert ids(cut) == [new.id]
    assert ids(cut.replace("Z", "+00:00")) == [new.id]
    assert ids(cut.removesuffix("Z")) == [new.id]  # no offset: read as UTC, not local time
    assert ids("2000-01-01T00:00:00Z") == [new.id, old.id]  # most recently updated first
    for bad in ("yesterday", "2024-13-01T00:00:00Z"):
        with pytest.raises(RequestError) as excinfo:
            ids(bad)
        assert rpc_code(excinfo) == ErrorCode.INVALID_PARAMS


# ---- 7. recovery -----------------------------------------------------------------------------


def _orphan(store: NodeStore, task_id: str, state: TaskState) -> None:
    """Write a task row as a node killed mid-turn leaves it."""
    message = Message(
        message_id=f"u-{task_id}",
        role=Role.USER,
        parts=[Part.of_text("hi")],
        task_id=task_id,
        context_id="ctx",
    )
    task = Task(
        id=task_id,
        context_id="ctx",
        status=TaskStatus(state=state, timestamp=now_rfc3339()),
        history=[message],
        metadata={"agentId": "echo"},
    )
    now = int(time.time() * 1000)
    store.put_task(
        StoredTask(task_id, "echo", "ctx", PEER_A, state.value, now, now, task.to_wire())
    )


async def test_recover_marks_interrupted_turns_failed_retryable(
    make_manager: Factory, store: NodeStore
) -> None:
    _orphan(store, "t-submitted", TaskState.SUBMITTED)
    _orphan(store, "t-working", TaskState.WORKING)
    _orphan(store, "t-waiting", TaskState.INPUT_REQUIRED)
    _orphan(store, "t-done", TaskState.COMPLETED)
    manager = make_manager(EchoAgent())

    assert manager.recover() == 2
    for task_id in ("t-submitted", "t-working"):
        task = manager.get(task_id, PEER_A)
        assert task.status.state is TaskState.FAILED
        assert task.metadata is not None and task.metadata["noosphere"]["retryable"] is True
        assert task.metadata["agentId"] == "echo"
        assert task.status.message is not None and "restarted" in task.status.message.text
        assert task.history[-1] == task.status.message
    assert manager.get("t-waiting", PEER_A).status.state is TaskState.INPUT_REQUIRED
    assert manager.get("t-done", PEER_A).status.state is TaskState.COMPLETED
    assert manager.recover() == 0

    # The interrupted tasks are over; the waiting one can still continue.
    with pytest.raises(RequestError) as excinfo:
        await manager.send(request("again", task_id="t-working"), PEER_A)
    assert rpc_code(excinfo) == ErrorCode.UNSUPPORTED_OPERATION
    done = await manager.send(request("go", task_id="t-waiting"), PEER_A)
    assert done.status.state is TaskState.COMPLETED


# ---- 8. shutdown -----------------------------------------------------------------------------


async def test_close_fails_running_and_queued_turns_and_ends_streams(
    store: NodeStore, metrics: NodeMetrics, push: PushNotifier
) -> None:
    agent = GateAgent()
    manager = TaskManager(store, {"gate": agent}, metrics, push, max_concurrent_turns=1)
    running = await manager.stream(request("run"), LOCAL_PRINCIPAL)
    queued = await manager.send(request("queued", immediately=True), LOCAL_PRINCIPAL)
    await asyncio.wait_for(agent.started["run"].wait(), 2)
    reader = asyncio.create_task(collect(running))
    await asyncio.sleep(0)
    watcher = manager.subscribe(queued.id, LOCAL_PRINCIPAL)

    await asyncio.wait_for(manager.close(), 2)
    seen = await asyncio.wait_for(reader, 2)
    assert kind(seen[-1]).startswith("status:failed:the node shut down")
    assert [kind(e) for e in await asyncio.wait_for(collect(watcher), 2)][-1].startswith(
        "status:failed"
    )
    for listed in manager.list(ListTasksRequest(), LOCAL_PRINCIPAL).tasks:
        assert listed.status.state is TaskState.FAILED
        assert listed.metadata is not None and listed.metadata["noosphere"] == {"retryable": True}
    assert agent.cancelled == ["run"]
    assert manager.running == 0 and manager.queue_depth == 0
    assert sample(metrics, "noosphere_tasks_running") == 0
    assert sample(metrics, "noosphere_task_queue_depth") == 0


async def test_close_right_after_accept(
    store: NodeStore, metrics: NodeMetrics, push: PushNotifier
) -> None:
    """Regression: a turn cancelled by close() before its first step stayed ``submitted``."""
    manager = TaskManager(store, {"gate": GateAgent()}, metrics, push)
    task = await manager.send(request("x", immediately=True), LOCAL_PRINCIPAL)
    await manager.close()
    after = manager.get(task.id, LOCAL_PRINCIPAL)
    assert after.status.state is TaskState.FAILED
    assert after.metadata is not None and after.metadata["noosphere"]["retryable"] is True


# ---- 9. failing agents -----------------------------------------------------------------------


async def test_agent_that_raises_fails_the_task_only(
    make_manager: Factory, metrics: NodeMetrics
) -> None:
    manager = make_manager(CrashAgent(), EchoAgent())
    failed = await manager.send(request("x", tenant="crash"), LOCAL_PRINCIPAL)
    assert failed.status.state is TaskState.FAILED
    assert failed.status.message is not None
    assert failed.status.message.text == "agent error: RuntimeError"  # no secret leaks out
    assert sample(metrics, "noosphere_tasks_total", agent="crash", state="failed") == 1
    assert sample(metrics, "noosphere_tasks_running") == 0

    done = await manager.send(request("next", tenant="echo"), LOCAL_PRINCIPAL)
    assert done.status.state is TaskState.COMPLETED


async def test_turn_over_the_timeout_fails(make_manager: Factory) -> None:
    manager = make_manager(SlowAgent(), OwnTimeoutAgent(), turn_timeout_s=0.05)
    started = time.monotonic()
    failed = await manager.send(request("x", tenant="slow"), LOCAL_PRINCIPAL)
    assert time.monotonic() - started < 2
    assert failed.status.state is TaskState.FAILED
    assert failed.status.message is not None
    assert failed.status.message.text == "the turn took longer than 0.05 s"

    own = await manager.send(request("x", tenant="own-timeout"), LOCAL_PRINCIPAL)
    assert own.status.state is TaskState.FAILED
    assert own.status.message is not None
    assert own.status.message.text == "agent error: TimeoutError"


async def test_turn_result_breaking_the_contract_fails(make_manager: Factory) -> None:
    """Regression: a ``working`` result left the task stuck; ``None`` crashed the job."""
    manager = make_manager(WrongResultAgent())
    for text, error in (("working", "ValueError"), ("none", "TypeError")):
        task = await asyncio.wait_for(manager.send(request(text), LOCAL_PRINCIPAL), 2)
        assert task.status.state is TaskState.FAILED
        assert task.status.message is not None
        assert task.status.message.text == f"agent error: {error}"
    assert manager.running == 0


async def test_sink_used_after_the_turn_is_ignored(make_manager: Factory) -> None:
    agent = StraySinkAgent()
    manager = make_manager(agent)
    task = await manager.send(request("x"), LOCAL_PRINCIPAL)
    assert task.metadata == {"agentId": "stray"}
    assert task.status.message is not None
    assert task.status.message.metadata == {"cost": 3}  # the turn's metadata rides its reply
    assert agent.sink is not None
    await agent.sink.progress("late")
    await agent.sink.artifact(Artifact(artifact_id="late", parts=[Part.of_text("x")]))
    after = manager.get(task.id, LOCAL_PRINCIPAL)
    assert after == task


# ---- 10. tenants -----------------------------------------------------------------------------


async def test_tenants(make_manager: Factory) -> None:
    several = make_manager(EchoAgent("a"), EchoAgent("b"))
    with pytest.raises(RequestError) as excinfo:
        await several.send(request("x", tenant="zzz"), LOCAL_PRINCIPAL)
    assert rpc_code(excinfo) == ErrorCode.INVALID_PARAMS
    assert "a, b" in excinfo.value.message
    with pytest.raises(RequestError) as excinfo:
        await several.send(request("x"), LOCAL_PRINCIPAL)
    assert rpc_code(excinfo) == ErrorCode.INVALID_PARAMS
    chosen = await several.send(request("x", tenant="b"), LOCAL_PRINCIPAL)
    assert chosen.metadata == {"agentId": "b"}

    single = make_manager(EchoAgent("solo"))
    task = await single.send(request("x"), LOCAL_PRINCIPAL)
    assert task.metadata == {"agentId": "solo"} and task.status.state is TaskState.COMPLETED

    with pytest.raises(RequestError) as excinfo:
        await make_manager().send(request("x"), LOCAL_PRINCIPAL)
    assert rpc_code(excinfo) == ErrorCode.UNSUPPORTED_OPERATION


# ---- 11. concurrency -------------------------------------------------------------------------


async def test_one_slot_runs_turns_one_after_the_other(
    make_manager: Factory, metrics: NodeMetrics
) -> None:
    agent = GateAgent()
    manager = make_manager(agent, max_concurrent_turns=1)

    def gauges() -> tuple[float, float]:
        return (
            sample(metrics, "noosphere_task_queue_depth"),
            sample(metrics, "noosphere_tasks_running"),
        )

    first = await manager.send(request("one", immediately=True), LOCAL_PRINCIPAL)
    second = await manager.send(request("two", immediately=True), LOCAL_PRINCIPAL)
    await asyncio.wait_for(agent.started["one"].wait(), 2)
    await asyncio.sleep(0.01)
    assert gauges() == (1, 1)
    assert (manager.queue_depth, manager.running) == (1, 1)
    assert not agent.started["two"].is_set()
    assert manager.get(second.id, LOCAL_PRINCIPAL).status.state is TaskState.SUBMITTED

    agent.gates["one"].set()
    await asyncio.wait_for(agent.started["two"].wait(), 2)
    assert manager.get(first.id, LOCAL_PRINCIPAL).status.state is TaskState.COMPLETED
    assert gauges() == (0, 1)
    assert manager.get(second.id, LOCAL_PRINCIPAL).status.state is TaskState.WORKING

    agent.gates["two"].set()
    await eventually(
        lambda: manager.get(second.id, LOCAL_PRINCIPAL).status.state is TaskState.COMPLETED
    )
    assert gauges() == (0, 0)
    assert (manager.queue_depth, manager.running) == (0, 0)


async def test_several_slots_run_turns_together(
    make_manager: Factory, metrics: NodeMetrics
) -> None:
    agent = GateAgent()
    manager = make_manager(agent, max_concurrent_turns=3)
    for key in ("a", "b", "c"):
        await manager.send(request(key, immediately=True), LOCAL_PRINCIPAL)
    for key in ("a", "b", "c"):
        await asyncio.wait_for(agent.started[key].wait(), 2)
    assert sample(metrics, "noosphere_tasks_running") == 3
    for key in ("a", "b", "c"):
        agent.gates[key].set()
    await eventually(lambda: manager.running == 0)
    assert sample(metrics, "noosphere_tasks_total", agent="gate", state="completed") == 3


async def test_waiting_caller_cancelled_does_not_cancel_the_turn(make_manager: Factory) -> None:
    agent = GateAgent()
    manager = make_manager(agent)
    caller = asyncio.create_task(manager.send(request("keep"), LOCAL_PRINCIPAL))
    await asyncio.wait_for(agent.started["keep"].wait(), 2)
    caller.cancel()  # the HTTP client went away
    with pytest.raises(asyncio.CancelledError):
        await caller
    agent.gates["keep"].set()
    task_id = manager.list(ListTasksRequest(), LOCAL_PRINCIPAL).tasks[0].id
    await eventually(
        lambda: manager.get(task_id, LOCAL_PRINCIPAL).status.state is TaskState.COMPLETED
    )


# ---- push config bookkeeping -----------------------------------------------------------------


async def test_peer_webhook_on_loopback_is_refused_by_default(
    store: NodeStore, metrics: NodeMetrics
) -> None:
    notifier = PushNotifier(metrics)
    manager = TaskManager(store, {"ask": AskAgent()}, metrics, notifier)
    task = await manager.send(request("q"), PEER_A)
    config = TaskPushNotificationConfig(task_id=task.id, url="http://127.0.0.1:9/a")
    with pytest.raises(RequestError) as excinfo:
        manager.set_push_config(config, PEER_A)
    assert wire_form(excinfo.value).code == ErrorCode.INVALID_PARAMS
    assert manager.set_push_config(config, LOCAL_PRINCIPAL).url == config.url
    await manager.close()
    await notifier.aclose()


async def test_push_config_crud(make_manager: Factory) -> None:
    manager = make_manager(AskAgent())
    task = await manager.send(request("q"), PEER_A)
    created = manager.set_push_config(
        TaskPushNotificationConfig(task_id=task.id, url="http://127.0.0.1:9/a", tenant="t"),
        PEER_A,
    )
    assert created.id and created.tenant is None
    named = manager.set_push_config(
        TaskPushNotificationConfig(task_id=task.id, id="zz", url="http://127.0.0.1:9/b"), PEER_A
    )
    ref = TaskPushConfigRef(task_id=task.id, id="zz")
    assert manager.get_push_config(ref, PEER_A) == named
    listing = manager.list_push_configs(
        ListTaskPushNotificationConfigsRequest(task_id=task.id), LOCAL_PRINCIPAL
    )
    assert {c.id for c in listing.configs} == {created.id, "zz"}

    replaced = manager.set_push_config(
        TaskPushNotificationConfig(task_id=task.id, id="zz", url="http://127.0.0.1:9/c"), PEER_A
    )
    assert manager.get_push_config(ref, PEER_A).url == replaced.url

    manager.delete_push_config(ref, PEER_A)
    manager.delete_push_config(ref, PEER_A)  # idempotent (A2A 3.1.10): the second one succeeds
    with pytest.raises(RequestError) as excinfo:
        manager.get_push_config(ref, PEER_A)
    assert rpc_code(excinfo) == ErrorCode.TASK_NOT_FOUND
    with pytest.raises(RequestError) as excinfo:
        manager.set_push_config(TaskPushNotificationConfig(url="http://127.0.0.1:9/x"), PEER_A)
    assert rpc_code(excinfo) == ErrorCode.INVALID_PARAMS


# ---- content types -----------------------------------------------------------------------------


class CsvAgent(EchoAgent):
    input_modes = frozenset({"text/csv"})
    output_modes = frozenset({"text/csv"})


def _parts_request(*parts: Part, accepted: list[str] | None = None) -> SendMessageRequest:
    return SendMessageRequest(
        message=Message(message_id=str(uuid.uuid4()), role=Role.USER, parts=list(parts)),
        configuration=SendMessageConfiguration(accepted_output_modes=accepted or []),
    )


async def test_parts_the_agent_cannot_read_are_content_type_errors(make_manager: Factory) -> None:
    manager = make_manager(CsvAgent())
    csv = Part.of_bytes(b"a,b\n1,2\n", filename="t.csv", media_type="text/csv")
    pdf = Part.of_bytes(b"%PDF", filename="x.pdf", media_type="application/pdf")
    data = Part.of_data({"a": 1})
    for ok in (csv, data, Part.of_text("hi")):
        task = await manager.send(_parts_request(Part.of_text("go"), ok), LOCAL_PRINCIPAL)
        assert task.status.state == TaskState.COMPLETED
    with pytest.raises(RequestError) as excinfo:
        await manager.send(_parts_request(Part.of_text("go"), pdf), LOCAL_PRINCIPAL)
    assert wire_form(excinfo.value).code == ErrorCode.CONTENT_TYPE_NOT_SUPPORTED
    assert "application/pdf" in excinfo.value.message


async def test_output_modes_the_agent_cannot_produce_are_refused(make_manager: Factory) -> None:
    manager = make_manager(CsvAgent())
    for accepted in (["text/csv"], ["text/plain; charset=utf-8"], ["*/*"]):
        task = await manager.send(_parts_request(Part.of_text("go"), accepted=accepted), "local")
        assert task.status.state == TaskState.COMPLETED
    with pytest.raises(RequestError) as excinfo:
        await manager.send(_parts_request(Part.of_text("go"), accepted=["image/png"]), "local")
    assert wire_form(excinfo.value).code == ErrorCode.CONTENT_TYPE_NOT_SUPPORTED
