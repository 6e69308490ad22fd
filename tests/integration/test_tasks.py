"""Execute between real node processes: one node's CLI sends a task to another node's agent
(signed peer request), progress streams back, tasks and memory survive restarts, and a node
killed mid-task reports the task as failed and retryable."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from noosphere.node.a2a_client import A2AClient, text_message
from noosphere.node.auth import BearerAuth, PeerAuth
from noosphere.node.launcher import LocalNode
from noosphere.protocol import ErrorCode, NodeKey, RpcError
from noosphere.protocol.a2a import Task, TaskState

from .support import EXAMPLES, Cluster, card_ids, metric, wait_until

pytestmark = pytest.mark.integration

AGENTS = Path(__file__).parent / "agents"


def cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "noosphere.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def operator(node: LocalNode, tenant: str | None = None) -> A2AClient:
    return A2AClient(node.rpc_url, auth=BearerAuth(node.token), tenant=tenant)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _send(node: LocalNode, text: str, **kwargs: Any) -> Task:
    async with operator(node) as client:
        result = await client.send(text_message(text), **kwargs)
    assert isinstance(result, Task)
    return result


async def _get(node: LocalNode, task_id: str) -> Task:
    async with operator(node) as client:
        return await client.get_task(task_id)


def test_cli_of_node_a_sends_a_task_to_the_agent_of_node_b(cluster: Cluster) -> None:
    b = cluster.start("b", agents=[EXAMPLES / "calculator.yaml"])
    a = cluster.start("a", bootstrap=[b.multiaddr])
    card = f"{b.peer_id}/exact-calculator"
    wait_until(lambda: card in card_ids(a))

    sent = cli(
        "task",
        "send",
        "--rpc",
        a.rpc_url,
        "--home",
        str(a.home),
        "--to",
        card[:20],
        "--stream",
        "what is 17/3 + 2^10?",
    )
    assert sent.returncode == 0, sent.stderr
    assert "working" in sent.stdout
    assert "running tool arithmetic" in sent.stdout
    assert "3089/3" in sent.stdout
    assert "completed" in sent.stdout

    listed = cli("task", "list", "--rpc", a.rpc_url, "--home", str(a.home), "--to", card, "--json")
    assert listed.returncode == 0, listed.stderr
    tasks = json.loads(listed.stdout)["tasks"]
    assert len(tasks) == 1
    assert tasks[0]["status"]["state"] == "TASK_STATE_COMPLETED"
    task_id = tasks[0]["id"]

    # B's operator sees the task; a third node (another key) does not.
    assert run(_get(b, task_id)).status.state == TaskState.COMPLETED

    async def as_stranger() -> None:
        async with A2AClient(b.rpc_url, auth=PeerAuth(NodeKey.generate())) as client:
            with pytest.raises(RpcError) as excinfo:
                await client.get_task(task_id)
            assert excinfo.value.code == ErrorCode.TASK_NOT_FOUND
            assert (await client.list_tasks()).tasks == []

    run(as_stranger())

    # Without credentials, B refuses to take a task at all.
    anonymous = cli("task", "send", "--rpc", b.rpc_url, "--token", "x" * 43, "what is 1+1?")
    assert anonymous.returncode == 1
    assert "Unauthorized" in anonymous.stderr


def test_tasks_and_memory_survive_a_restart(cluster: Cluster) -> None:
    node = cluster.start("n", agents=[EXAMPLES / "calculator.yaml"])
    first = run(_send(node, "what is 12*12?"))
    assert first.status.state == TaskState.COMPLETED
    assert node.stop() == 0

    node = cluster.start("n", agents=[EXAMPLES / "calculator.yaml"])
    again = run(_get(node, first.id))
    assert again.status.state == TaskState.COMPLETED
    assert again.artifacts[0].parts[0].text == "12*12 = 144"

    async def follow_up() -> Task:
        async with operator(node) as client:
            result = await client.send(text_message("what is 12*13?", context_id=first.context_id))
        assert isinstance(result, Task)
        return result

    second = run(follow_up())
    recalled = second.artifacts[0].metadata["noosphere"]["recalled"]  # type: ignore[index]
    assert first.id in [r["taskId"] for r in recalled]


def test_node_killed_mid_task_reports_it_failed_and_retryable(cluster: Cluster) -> None:
    node = cluster.start("n", agents=[AGENTS / "slow.yaml"])
    task = run(_send(node, "wait 4 seconds", return_immediately=True))
    wait_until(lambda: run(_get(node, task.id)).status.state == TaskState.WORKING)
    wait_until(lambda: metric(node, "noosphere_tasks_running") == 1)
    node.kill()

    node = cluster.start("n", agents=[AGENTS / "slow.yaml"])
    after = run(_get(node, task.id))
    assert after.status.state == TaskState.FAILED
    assert after.metadata is not None and after.metadata["noosphere"]["retryable"] is True
    assert "restarted" in (after.status.message.text if after.status.message else "")


def test_crashing_and_slow_tools_fail_the_task_not_the_node(cluster: Cluster) -> None:
    node = cluster.start("n", agents=[AGENTS / "slow.yaml"])
    crashed = run(_send(node, "please crash"))
    assert crashed.status.state == TaskState.FAILED
    assert crashed.status.message is not None
    assert "ZeroDivisionError" in crashed.status.message.text

    slow = run(_send(node, "wait 20 seconds"))
    assert slow.status.state == TaskState.FAILED
    assert "longer than 5" in (slow.status.message.text if slow.status.message else "")

    ok = run(_send(node, "wait 0.1 seconds"))
    assert ok.status.state == TaskState.COMPLETED
    assert node.alive
