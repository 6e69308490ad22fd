"""The orchestrator with the LocalScaler between real processes: a burst of queued tasks scales
the worker pool up from 1, the tasks drain (each run exactly once), and the pool scales back
down after the stabilization window."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from noosphere.node.a2a_client import A2AClient, text_message
from noosphere.node.auth import BearerAuth
from noosphere.node.launcher import LocalNode
from noosphere.protocol.a2a import Task, TaskState

from .support import Cluster, wait_until

pytestmark = pytest.mark.integration

AGENTS = Path(__file__).parent / "agents"
BURST = 40


def live_workers(orchestrator: LocalNode) -> int:
    return len(list((orchestrator.home / "workers").glob("*/runtime.json")))


async def burst(node: LocalNode) -> list[Task]:
    async with A2AClient(node.rpc_url, auth=BearerAuth(node.token), timeout=120) as client:
        results = await asyncio.gather(
            *(client.send(text_message(f"job {i}")) for i in range(BURST))
        )
    return [r for r in results if isinstance(r, Task)]


def test_burst_scales_up_drains_and_scales_down(cluster: Cluster) -> None:
    orchestrator = cluster.start(
        "orchestrator",
        agents=[AGENTS / "pool.yaml"],
        env={"NOOSPHERE_MAX_CONCURRENT_TASKS": "64"},
    )
    try:
        wait_until(lambda: live_workers(orchestrator) == 1, timeout=60)
        tasks = asyncio.run(burst(orchestrator))
        assert len(tasks) == BURST
        assert all(t.status.state == TaskState.COMPLETED for t in tasks)
        texts = sorted(t.artifacts[0].parts[0].text or "" for t in tasks)
        assert texts == sorted(f"job {i}" for i in range(BURST))  # none lost
        worker_tasks = [t.artifacts[0].metadata["workerTask"] for t in tasks]  # type: ignore[index]
        assert len(set(worker_tasks)) == BURST  # none run twice
        workers_used = {t.artifacts[0].metadata["worker"] for t in tasks}  # type: ignore[index]
        assert len(workers_used) >= 2  # the pool grew under the burst
        wait_until(lambda: live_workers(orchestrator) == 1, timeout=60)  # and shrank again
    finally:
        orchestrator.stop()
        for runtime in (orchestrator.home / "workers").glob("*/runtime.json"):
            pytest.fail(f"worker left running: {runtime}")
