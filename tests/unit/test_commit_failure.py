"""Settle: a paid task whose result hash cannot be committed on chain (e.g. the agent's node has
no gas) is logged and fails with that reason instead of completing unpaid, so the requester's
submission says why and recruits another agent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
import structlog

from noosphere.agents.turn import Turn, TurnResult, TurnSink
from noosphere.ledger.client import LedgerError
from noosphere.node.metrics import NodeMetrics
from noosphere.node.push import PushNotifier
from noosphere.node.settlement import Admission, ResultNotCommitted, Settlement
from noosphere.node.store import NodeStore
from noosphere.node.tasks import TaskManager
from noosphere.protocol.a2a import (
    Artifact,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    Task,
    TaskState,
    TaskStatus,
)
from noosphere.protocol.rpcauth import LOCAL_PRINCIPAL

ESCROW = "0x" + "ab" * 32


class NoGasEscrows:
    """The escrow contract's client as the settlement sees it; every commit fails like a node
    without gas."""

    def __init__(self) -> None:
        self.commits: list[str] = []

    def commit_result(self, escrow_id: str, result_hash: bytes) -> None:
        self.commits.append(escrow_id)
        raise LedgerError("commitResult: insufficient funds for gas * price + value")

    def get(self, escrow_id: str) -> SimpleNamespace:
        return SimpleNamespace(result_hash=None)  # nothing committed


class CommittedEscrows(NoGasEscrows):
    """The escrow holds a commitment already (this node's key committed, e.g. before a
    restart, or a hostile operator did): the commit reverts, the task is delivered anyway and
    the requester compares the hashes."""

    def commit_result(self, escrow_id: str, result_hash: bytes) -> None:
        self.commits.append(escrow_id)
        raise LedgerError("commitResult reverted: NotOpen()")

    def get(self, escrow_id: str) -> SimpleNamespace:
        return SimpleNamespace(result_hash="0x" + "cd" * 32)


class NoGasClient:
    """The ledger client (facade) with the escrow part above."""

    def __init__(self, escrows: NoGasEscrows | None = None) -> None:
        self.deployment = SimpleNamespace(arbiter=None, registry="0x" + "00" * 20, grace_period_s=5)
        self.address = "0x" + "11" * 20
        self.escrows = escrows or NoGasEscrows()

    @property
    def commits(self) -> list[str]:
        return self.escrows.commits


def CommittedClient() -> NoGasClient:
    return NoGasClient(CommittedEscrows())


def settlement(store: NodeStore, client: NoGasClient) -> Settlement:
    return Settlement(client, store, {"echo": 5})  # type: ignore[arg-type]


def bind(paid: Settlement, task_id: str) -> None:
    paid.bind(Admission(ESCROW, 5, 2_000_000_000, "0x" + "22" * 20), task_id, "echo")


async def test_failed_commit_is_logged_recorded_and_raised(store: NodeStore) -> None:
    client = NoGasClient()
    paid = settlement(store, client)
    bind(paid, "t1")
    task = Task(
        id="t1",
        context_id="c1",
        status=TaskStatus(state=TaskState.WORKING),
        artifacts=[Artifact(artifact_id="a", parts=[Part.of_text("42")])],
    )
    with structlog.testing.capture_logs() as logs, pytest.raises(ResultNotCommitted) as info:
        await paid.before_completion(task)
    assert client.commits == [ESCROW]
    assert "could not be committed on chain" in str(info.value)
    assert "insufficient funds for gas" in str(info.value)
    assert any(e["event"] == "result commit failed" and e["escrow_id"] == ESCROW for e in logs)
    (row,) = store.payments_for_task("t1")
    assert row.state == "late" and "insufficient funds" in row.payment["error"]


async def test_an_escrow_committed_already_is_left_to_the_requester(store: NodeStore) -> None:
    client = CommittedClient()
    paid = settlement(store, client)
    bind(paid, "t2")
    task = Task(id="t2", context_id="c", status=TaskStatus(state=TaskState.WORKING))
    with structlog.testing.capture_logs() as logs:
        assert await paid.before_completion(task) is None  # no raise: the task completes
    assert any(e["event"] == "result commit failed" for e in logs)
    (row,) = store.payments_for_task("t2")
    assert row.state == "late"


async def test_unpaid_task_needs_no_commit(store: NodeStore) -> None:
    paid = settlement(store, NoGasClient())
    task = Task(id="free", context_id="c", status=TaskStatus(state=TaskState.WORKING))
    assert await paid.before_completion(task) is None


class EchoAgent:
    agent_id = "echo"
    input_modes: frozenset[str] = frozenset()
    output_modes: frozenset[str] = frozenset()

    async def run_turn(self, turn: Turn, sink: TurnSink) -> TurnResult:
        await sink.artifact(Artifact(artifact_id="a", parts=[Part.of_text("42")]))
        return TurnResult(TaskState.COMPLETED, "done")


class BindingSettlement(Settlement):
    """A settlement that binds every new task to an escrow (as an admitted paid task is)."""

    def __init__(self, store: NodeStore, client: NoGasClient) -> None:
        super().__init__(client, store, {"echo": 5})  # type: ignore[arg-type]

    async def admit(self, agent_id: str, message: Message, principal: str) -> Admission:
        return Admission(ESCROW, 5, 2_000_000_000, "0x" + "22" * 20)


@pytest.fixture
async def manager(store: NodeStore) -> AsyncIterator[tuple[TaskManager, NoGasClient]]:
    metrics = NodeMetrics()
    push = PushNotifier(metrics)
    client = NoGasClient()
    tasks = TaskManager(
        store, {"echo": EchoAgent()}, metrics, push, payments=BindingSettlement(store, client)
    )
    yield tasks, client
    await tasks.close()
    await push.aclose(grace_s=0.1)


async def test_paid_task_fails_with_the_commit_error(
    manager: tuple[TaskManager, NoGasClient], store: NodeStore
) -> None:
    tasks, client = manager
    message = Message(message_id="m1", role=Role.USER, parts=[Part.of_text("6*7")])
    request = SendMessageRequest(message=message, configuration=SendMessageConfiguration())
    result: Any = await tasks.send(request, LOCAL_PRINCIPAL)
    task = result if isinstance(result, Task) else result.task
    assert client.commits == [ESCROW]
    assert task.status.state == TaskState.FAILED  # not COMPLETED: nobody can be paid for it
    reason = task.status.message.text if task.status.message else ""
    assert "could not be committed on chain" in reason and "insufficient funds" in reason
    (row,) = store.payments_for_task(task.id)
    assert row.state == "late"
