"""The orchestrator with the LocalScaler between real processes: a burst of 200 queued tasks
scales the worker pool up from 1 to 3, the tasks drain (each run exactly once, checked in the
workers' own task stores), the pool scales back down after the stabilization window, and every
decision shows at the orchestrator node's /metrics and in its log."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest

from noosphere.node.a2a_client import A2AClient, text_message
from noosphere.node.auth import BearerAuth
from noosphere.node.client import NodeUnreachable
from noosphere.node.launcher import LocalNode
from noosphere.node.store import STORE_FILENAME, NodeStore
from noosphere.protocol.a2a import Task, TaskState

from .support import Cluster, metric, wait_until

pytestmark = pytest.mark.integration

AGENTS = Path(__file__).parent / "agents"
BURST = 200
MAX_WORKERS = 3  # pool-burst.yaml


def live_workers(orchestrator: LocalNode) -> int:
    return len(list((orchestrator.home / "workers").glob("*/runtime.json")))


async def burst(node: LocalNode) -> list[Task]:
    """Queue BURST tasks at once (each accepted without waiting), then poll until all ended."""
    async with A2AClient(node.rpc_url, auth=BearerAuth(node.token), timeout=60) as client:
        accepted = await asyncio.gather(
            *(client.send(text_message(f"job {i}"), return_immediately=True) for i in range(BURST))
        )
        ids = [t.id for t in accepted if isinstance(t, Task)]
        assert len(ids) == BURST
        done: dict[str, Task] = {}
        for _ in range(600):  # a bound, not a timing assertion
            pending = [i for i in ids if i not in done]
            if not pending:
                break
            # GetTask is idempotent: a poll whose kept-alive connection the loaded server closed
            # just as it was reused (a ReadError) is simply asked again next round
            polled = await asyncio.gather(
                *(client.get_task(i) for i in pending), return_exceptions=True
            )
            for task in polled:
                if isinstance(task, NodeUnreachable):
                    continue
                if isinstance(task, BaseException):
                    raise task
                if task.status.state.terminal:
                    done[task.id] = task
            await asyncio.sleep(0.5)
        return [done[i] for i in ids if i in done]


def worker_runs(orchestrator: LocalNode) -> Counter[str]:
    """Request texts of every task turn the workers ran, read from their stores after they
    stopped: a text twice would be a task run twice."""
    runs: Counter[str] = Counter()
    for db in (orchestrator.home / "workers").glob(f"*/{STORE_FILENAME}"):
        store = NodeStore(db)
        try:
            rows, total = store.list_tasks(limit=10_000)
            assert len(rows) == total
            for row in rows:
                assert row.state == TaskState.COMPLETED.value, row.task
                task = Task.model_validate(row.task)
                runs[task.history[0].text if task.history else ""] += 1
        finally:
            store.close()
    return runs


def log_events(node: LocalNode, event: str) -> list[dict]:
    lines = (node.home / "node.log").read_text().splitlines()
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    return [e for e in entries if e.get("event") == event]


def test_burst_scales_up_drains_and_scales_down(cluster: Cluster) -> None:
    orchestrator = cluster.start(
        "orchestrator",
        agents=[AGENTS / "pool-burst.yaml"],
        env={"NOOSPHERE_MAX_CONCURRENT_TASKS": "256"},
    )
    agent = {"agent": "sleepy-burst-pool"}
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
        assert len(workers_used) == MAX_WORKERS  # the pool grew to its maximum under the burst

        # The decisions, at the orchestrator node's /metrics (prometheus_client's parser).
        ups = metric(
            orchestrator,
            "noosphere_orchestrator_decisions_total",
            direction="up",
            reason="queue",
            **agent,
        )
        assert ups >= 1
        assert (
            metric(
                orchestrator, "noosphere_orchestrator_scale_seconds_count", direction="up", **agent
            )
            == ups
        )

        wait_until(lambda: live_workers(orchestrator) == 1, timeout=60)  # and shrank again
        downs = metric(
            orchestrator,
            "noosphere_orchestrator_decisions_total",
            direction="down",
            reason="queue",
            **agent,
        )
        assert downs >= 1
        for gauge in ("replicas_desired", "replicas_current"):
            name = f"noosphere_orchestrator_{gauge}"
            wait_until(lambda name=name: metric(orchestrator, name, **agent) == 1)
        assert metric(orchestrator, "noosphere_orchestrator_backlog", **agent) == 0
        held = metric(
            orchestrator,
            "noosphere_orchestrator_decisions_total",
            direction="none",
            reason="stabilization",
            **agent,
        )
        assert held >= 1  # the window held the pool before it shrank
        worker_series = metric(
            orchestrator,
            "noosphere_orchestrator_worker_queue_depth",
            worker=sorted(workers_used)[0],
            **agent,
        )
        assert worker_series == 0
    finally:
        orchestrator.stop()
        for runtime in (orchestrator.home / "workers").glob("*/runtime.json"):
            pytest.fail(f"worker left running: {runtime}")

    # Exactly once, from the workers' side: every job ran on one worker, once.
    runs = worker_runs(orchestrator)
    assert runs == Counter({f"job {i}": 1 for i in range(BURST)})

    # Every change was logged with its inputs, values and reason.
    scaled = log_events(orchestrator, "scaling workers")
    assert max(e["desired"] for e in scaled) == MAX_WORKERS
    for e in scaled:
        assert {
            "current",
            "desired",
            "recommended",
            "direction",
            "code",
            "reason",
            "backlog",
            "waiting",
            "mean_utilization",
            "by_queue",
            "by_utilization",
            "workers",
            "workers_ready",
        } <= set(e)
    assert scaled[0]["direction"] == "up" and scaled[-1]["direction"] == "down"
