"""The orchestrator's control loop in-process, with a fake pool: each decision is exported at
the node's /metrics (read back with prometheus_client's text parser) and logged with the same
values and its reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families

from noosphere.agents.spec import load_agent_spec
from noosphere.node.metrics import NodeMetrics
from noosphere.orchestration.autoscale import WorkerSample
from noosphere.orchestration.orchestrator import OrchestratorAgent

POOL = Path(__file__).parents[1] / "integration" / "agents" / "pool.yaml"


class FakePool:
    """A Scaler whose workers are names; scale() changes the count at once."""

    def __init__(self, replicas: int = 1) -> None:
        self.replicas = replicas
        self.calls: list[int] = []

    async def current(self) -> int:
        return self.replicas

    async def scale(self, replicas: int) -> None:
        self.calls.append(replicas)
        self.replicas = replicas

    async def endpoints(self) -> list[str]:
        return [f"http://w{i}" for i in range(1, self.replicas + 1)]


class FakeReader:
    """What the workers' /metrics would say: per worker queued, running, utilization, ready."""

    def __init__(self) -> None:
        self.load: dict[str, tuple[float, float, float | None, bool]] = {}

    async def sample(self, urls: list[str]) -> list[WorkerSample]:
        return [WorkerSample(u, *self.load.get(u, (0.0, 0.0, None, True))) for u in urls]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(parsed: dict, name: str, **labels: str) -> float | None:
    return parsed.get((name, frozenset(labels.items())))


@pytest.fixture
def orchestrator(tmp_path: Path):
    agent = OrchestratorAgent.create(load_agent_spec(POOL), tmp_path, embedder=None)  # type: ignore[arg-type]
    pool, reader = FakePool(), FakeReader()
    agent._scaler = pool  # type: ignore[assignment]
    agent.metrics = reader  # type: ignore[assignment]
    yield agent, pool, reader
    agent.close()


async def test_decisions_are_exported_at_the_node_metrics(orchestrator) -> None:
    agent, pool, reader = orchestrator
    a = agent.agent_id
    reader.load = {"http://w1": (5.0, 4.0, 0.3, True)}
    agent._waiting = 3  # turns waiting here for a slot
    with structlog.testing.capture_logs() as logs:
        up = await agent.step()
    assert (up.current, up.desired, up.direction, up.code) == (1, 3, "up", "queue")
    assert pool.calls == [3]

    parsed = samples(NodeMetrics().render().decode())  # what the node's /metrics serves
    assert value(parsed, "noosphere_orchestrator_replicas_current", agent=a) == 3  # applied
    assert value(parsed, "noosphere_orchestrator_replicas_desired", agent=a) == 3
    assert value(parsed, "noosphere_orchestrator_replicas_recommended", agent=a) == 3
    assert value(parsed, "noosphere_orchestrator_backlog", agent=a) == 12
    assert value(parsed, "noosphere_orchestrator_waiting_turns", agent=a) == 3
    assert value(parsed, "noosphere_orchestrator_mean_utilization", agent=a) == 0.3
    assert value(parsed, "noosphere_orchestrator_replicas_by_signal", agent=a, signal="queue") == 6
    w1 = {"agent": a, "worker": "http://w1"}
    assert value(parsed, "noosphere_orchestrator_worker_queue_depth", **w1) == 5
    assert value(parsed, "noosphere_orchestrator_worker_running", **w1) == 4
    assert value(parsed, "noosphere_orchestrator_worker_utilization", **w1) == 0.3
    assert value(parsed, "noosphere_orchestrator_worker_ready", **w1) == 1
    decisions = "noosphere_orchestrator_decisions_total"
    assert value(parsed, decisions, agent=a, direction="up", reason="queue") == 1
    assert value(parsed, decisions, agent=a, direction="none", reason="steady") == 0
    assert value(parsed, "noosphere_orchestrator_scale_seconds_count", agent=a, direction="up") == 1

    # The log line carries the same values and the reason.
    line = next(e for e in logs if e["event"] == "scaling workers")
    assert line["current"] == 1 and line["desired"] == 3 and line["recommended"] == 3
    assert line["direction"] == "up" and line["code"] == "queue"
    assert line["reason"] == "backlog 12 needs 3" and line["backlog"] == 12
    assert line["waiting"] == 3 and line["mean_utilization"] == 0.3 and line["by_queue"] == 6

    # A worker still loading its models: its CPU is not load, and its gauge says not ready.
    reader.load = {"http://w3": (0.0, 0.0, None, False)}
    agent._waiting = 0
    held = await agent.step()
    assert (held.direction, held.code) == ("none", "stabilization")
    parsed = samples(NodeMetrics().render().decode())
    w3 = {"agent": a, "worker": "http://w3"}
    assert value(parsed, "noosphere_orchestrator_worker_ready", **w3) == 0
    assert value(parsed, "noosphere_orchestrator_worker_utilization", **w3) is None
    assert value(parsed, decisions, agent=a, direction="none", reason="stabilization") == 1


async def test_workers_that_left_disappear_from_the_metrics(orchestrator) -> None:
    agent, pool, _ = orchestrator
    pool.replicas = 2
    await agent.step()
    parsed = samples(NodeMetrics().render().decode())
    assert (
        value(
            parsed, "noosphere_orchestrator_worker_ready", agent=agent.agent_id, worker="http://w2"
        )
        == 1
    )
    pool.replicas = 1
    await agent.step()
    parsed = samples(NodeMetrics().render().decode())
    assert (
        value(
            parsed, "noosphere_orchestrator_worker_ready", agent=agent.agent_id, worker="http://w2"
        )
        is None
    )


async def test_a_closed_orchestrator_leaves_the_node_metrics(tmp_path: Path) -> None:
    agent = OrchestratorAgent.create(load_agent_spec(POOL), tmp_path, embedder=None)  # type: ignore[arg-type]
    name = "noosphere_orchestrator_decisions_total"
    assert name in NodeMetrics().render().decode()
    agent.close()
    assert name not in NodeMetrics().render().decode()
