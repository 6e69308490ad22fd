"""Execute and Feedback (operations): the orchestrator agent. It is recruited like any agent (it
publishes a card), but it runs a pool of worker nodes instead of tools: each task turn is handed
to the least-loaded worker over A2A (signed with the orchestrator's node key), and a control
loop reads the workers' metrics, asks the ``Autoscaler`` how many workers the load needs, and
applies it through a ``Scaler`` (worker processes here, or a Kubernetes Deployment). Every
decision is logged with its inputs.

Agent file::

    runtime: noosphere.agents.orchestrator:OrchestratorAgent
    settings:
      workers: {agents: [worker-agent.yaml], scaler: local}   # or {scaler: kubernetes,
      #                                          namespace: noosphere, deployment: worker}
      policy: {min_replicas: 1, max_replicas: 4, target_queue_per_worker: 4}
      interval_s: 1
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from noosphere.protocol.a2a import Artifact, Message, Role, Task, TaskState

from .autoscale import Autoscaler, Decision, ScalingPolicy, WorkerSample
from .embedding import Embedder
from .llm import LlmBackend
from .scalers import KubernetesScaler, LocalScaler, MetricsReader, Scaler, worker_cards
from .spec import AgentSpec
from .turn import Turn, TurnResult, TurnSink

log = structlog.get_logger("noosphere.orchestrator")


class WorkerPoolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scaler: str = Field("local", pattern="^(local|kubernetes)$")
    agents: list[Path] = Field(default_factory=list)  # local: agent files each worker runs
    namespace: str = "noosphere"  # kubernetes
    deployment: str = "worker"  # kubernetes
    agent_ids: list[str] = Field(default_factory=list)  # kubernetes: the workers' agent ids
    extra_args: list[str] = Field(default_factory=list)  # local: more `node start` flags


class OrchestratorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workers: WorkerPoolSpec = Field(default_factory=WorkerPoolSpec)
    policy: ScalingPolicy = Field(default_factory=ScalingPolicy)
    interval_s: float = Field(1.0, gt=0)
    turn_timeout_s: float = Field(300.0, gt=0)
    worker_concurrency: int = Field(
        4, ge=1, description="turns handed to one worker at once; the rest wait here"
    )


class OrchestratorAgent:
    """A TaskAgent that forwards turns to a scaled pool of worker nodes."""

    def __init__(self, spec: AgentSpec, home: Path, settings: OrchestratorSettings) -> None:
        from noosphere.node.keystore import load_or_create_node_key

        self.spec = spec
        self.agent_id = spec.id
        self.input_modes = frozenset(spec.input_modes)
        self.output_modes = frozenset(spec.output_modes)
        self.home = home
        self.settings = settings
        self.autoscaler = Autoscaler(settings.policy)
        self.metrics = MetricsReader()
        self.decisions: list[Decision] = []
        self._key, _ = load_or_create_node_key(home)
        self._scaler: Scaler | None = None
        self._samples: dict[str, WorkerSample] = {}
        self._inflight: dict[str, int] = {}
        self._waiting = 0  # turns queued here for a free worker slot
        self._freed = asyncio.Event()

    @classmethod
    def create(
        cls, spec: AgentSpec, home: Path, embedder: Embedder, llm: LlmBackend | None = None
    ) -> OrchestratorAgent:
        try:
            settings = OrchestratorSettings.model_validate(spec.settings)
        except ValidationError as exc:
            raise ValueError(f"orchestrator settings: {exc.errors()[0]['msg']}") from exc
        base = spec.base_dir or Path.cwd()
        agents = [p if p.is_absolute() else (base / p).resolve() for p in settings.workers.agents]
        settings.workers.agents = agents
        return cls(spec, home, settings)

    def tool_schemas(self) -> list[dict[str, Any]]:
        return []

    # ---- the control loop ----------------------------------------------------------------

    def _make_scaler(self) -> Scaler:
        pool = self.settings.workers
        runtime = json.loads((self.home / "runtime.json").read_text())
        if pool.scaler == "kubernetes":
            source = worker_cards(runtime["rpc_url"], pool.agent_ids, runtime["peer_id"])
            return KubernetesScaler(pool.namespace, pool.deployment, card_source=source)
        return LocalScaler(
            self.home / "workers",
            agents=pool.agents,
            bootstrap=runtime["multiaddrs"][:1],
            extra_args=pool.extra_args,
        )

    async def start(self) -> None:
        """Run the control loop until cancelled (the node calls this once it listens)."""
        self._scaler = self._make_scaler()
        current = await self._scaler.current()
        if current < self.settings.policy.min_replicas:
            await self._scaler.scale(self.settings.policy.min_replicas)
        while True:
            try:
                await self.step()
            except Exception:  # the pool must keep being managed
                log.exception("orchestrator step failed")
            await asyncio.sleep(self.settings.interval_s)

    async def step(self) -> Decision:
        assert self._scaler is not None
        urls = await self._scaler.endpoints()
        samples = await self.metrics.sample(urls)
        self._samples = {s.name: s for s in samples}
        self._freed.set()  # the worker set may have changed: let waiting turns look again
        # Turns waiting here for a worker slot are backlog too.
        samples = [*samples, WorkerSample("orchestrator-queue", float(self._waiting), 0.0)]
        current = await self._scaler.current()
        decision = self.autoscaler.decide(samples, current, time.monotonic())
        if decision.changes:
            log.info(
                "scaling workers",
                current=decision.current,
                desired=decision.desired,
                reason=decision.reason,
                **decision.inputs,
            )
            await self._scaler.scale(decision.desired)
        self.decisions.append(decision)
        del self.decisions[:-1000]
        return decision

    def close(self) -> None:
        if isinstance(self._scaler, LocalScaler):
            self._scaler.stop_all()

    # ---- turns -----------------------------------------------------------------------------

    async def _acquire(self) -> str | None:
        """A worker with a free slot (the least busy), waiting here while all are full; the
        backlog therefore stays with the orchestrator, where new workers can take it."""
        assert self._scaler is not None
        self._waiting += 1
        try:
            while True:
                urls = await self._scaler.endpoints()
                free = [
                    u for u in urls if self._inflight.get(u, 0) < self.settings.worker_concurrency
                ]
                if free:
                    url = min(free, key=lambda u: (self._inflight.get(u, 0), u))
                    self._inflight[url] = self._inflight.get(url, 0) + 1
                    return url
                self._freed.clear()
                await self._freed.wait()
        finally:
            self._waiting -= 1

    def _release(self, url: str) -> None:
        self._inflight[url] -= 1
        self._freed.set()

    async def run_turn(self, turn: Turn, sink: TurnSink) -> TurnResult:
        from noosphere.node.a2a_client import A2AClient
        from noosphere.node.auth import PeerAuth
        from noosphere.node.client import NodeUnreachable
        from noosphere.protocol import RpcError

        if self._scaler is None:
            return TurnResult(TaskState.FAILED, "the worker pool is not running yet; send again")
        await sink.progress("waiting for a free worker")
        url = await self._acquire()
        if url is None:
            return TurnResult(TaskState.FAILED, "no worker is running; send again")
        await sink.progress(f"forwarded to worker {url}")
        message = Message(
            message_id=str(uuid.uuid4()),
            role=Role.USER,
            parts=turn.message.parts,
        )
        try:
            async with A2AClient(
                url, auth=PeerAuth(self._key), timeout=self.settings.turn_timeout_s
            ) as client:
                result = await client.send(message)
        except (RpcError, NodeUnreachable) as exc:
            return TurnResult(TaskState.FAILED, f"worker {url} failed: {exc}")
        finally:
            self._release(url)
        if not isinstance(result, Task):
            return TurnResult(TaskState.COMPLETED, result.text, {"worker": url})
        for artifact in result.artifacts:
            await sink.artifact(
                Artifact(
                    artifact_id=str(uuid.uuid4()),
                    name=artifact.name,
                    parts=artifact.parts,
                    metadata={"worker": url, "workerTask": result.id},
                )
            )
        text = result.status.message.text if result.status.message else ""
        state = result.status.state
        if not state.terminal and not state.interrupted:
            state = TaskState.FAILED
        return TurnResult(state, text, {"worker": url, "workerTask": result.id})
