"""Execute and Feedback (operations): the orchestrator agent. It is recruited like any agent (it
publishes a card), but it runs a pool of worker nodes instead of tools: each task turn is handed
to the least-loaded worker over A2A (signed with the orchestrator's node key), and a control
loop reads the workers' metrics, asks the ``Autoscaler`` how many workers the load needs, and
applies it through a ``Scaler`` (worker processes here, or a Kubernetes Deployment). Every
decision is logged with its inputs and reason, and exported at the node's /metrics
(``noosphere_orchestrator_*``, labelled by ``agent``; see ``OrchestratorMetrics``).

Agent file::

    runtime: noosphere.orchestration.orchestrator:OrchestratorAgent
    settings:
      workers: {agents: [worker-agent.yaml], scaler: local}   # or {scaler: kubernetes,
      #                                          namespace: noosphere, deployment: worker}
      policy: {min_replicas: 1, max_replicas: 4, target_queue_per_worker: 4}
      interval_s: 1
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from noosphere.agents.spec import AgentSpec
from noosphere.agents.turn import Turn, TurnResult, TurnSink
from noosphere.models.embedding import Embedder
from noosphere.models.llm import LlmBackend
from noosphere.node.metrics import attach_agent_registry, detach_agent_registry
from noosphere.node.runtime import RUNTIME_FILENAME
from noosphere.protocol.a2a import Artifact, Message, Role, Task, TaskState

from .autoscale import REASON_CODES, Autoscaler, Decision, ScalingPolicy, WorkerSample
from .scalers import KubernetesScaler, LocalScaler, MetricsReader, Scaler, worker_cards

if TYPE_CHECKING:
    import httpx

    from noosphere.node.a2a_client import A2AClient
    from noosphere.node.egress import EgressPolicy

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


class OrchestratorMetrics:
    """The control loop's view, in its own registry (attached to the node's /metrics): every
    decision's replica counts, inputs and reason, and what it observed of each worker."""

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self.registry = CollectorRegistry()
        r, a = self.registry, ["agent"]
        self.replicas_current = Gauge(
            "noosphere_orchestrator_replicas_current",
            "Workers running (or starting)",
            a,
            registry=r,
        )
        self.replicas_desired = Gauge(
            "noosphere_orchestrator_replicas_desired",
            "Workers the last decision asked for",
            a,
            registry=r,
        )
        self.replicas_recommended = Gauge(
            "noosphere_orchestrator_replicas_recommended",
            "Workers the last observation called for (before stabilization and cooldown)",
            a,
            registry=r,
        )
        self.decisions = Counter(
            "noosphere_orchestrator_decisions_total",
            "Scaling decisions, by the change applied (up, down, none) and its reason code",
            [*a, "direction", "reason"],
            registry=r,
        )
        self.backlog = Gauge(
            "noosphere_orchestrator_backlog",
            "Task turns queued and running on the workers plus those waiting here",
            a,
            registry=r,
        )
        self.waiting = Gauge(
            "noosphere_orchestrator_waiting_turns",
            "Task turns waiting here for a free worker slot",
            a,
            registry=r,
        )
        self.mean_utilization = Gauge(
            "noosphere_orchestrator_mean_utilization",
            "Mean CPU share of the ready workers (the autoscaler's utilization input)",
            a,
            registry=r,
        )
        self.by_signal = Gauge(
            "noosphere_orchestrator_replicas_by_signal",
            "Workers each signal calls for (queue, utilization)",
            [*a, "signal"],
            registry=r,
        )
        self.last_decision = Gauge(
            "noosphere_orchestrator_last_decision_timestamp_seconds",
            "Unix time of the last decision",
            a,
            registry=r,
        )
        self.scale_seconds = Histogram(
            "noosphere_orchestrator_scale_seconds",
            "Time to apply a change (up: until the new workers serve)",
            [*a, "direction"],
            registry=r,
            buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 30, 60),
        )
        w = [*a, "worker"]
        self.worker_queue = Gauge(
            "noosphere_orchestrator_worker_queue_depth",
            "A worker's queued task turns (its noosphere_task_queue_depth)",
            w,
            registry=r,
        )
        self.worker_running = Gauge(
            "noosphere_orchestrator_worker_running",
            "A worker's running task turns (its noosphere_tasks_running)",
            w,
            registry=r,
        )
        self.worker_inflight = Gauge(
            "noosphere_orchestrator_worker_inflight",
            "Task turns this orchestrator has handed to a worker and not yet got back",
            w,
            registry=r,
        )
        self.worker_utilization = Gauge(
            "noosphere_orchestrator_worker_utilization",
            "A worker's CPU share over the last interval (absent until it is known and ready)",
            w,
            registry=r,
        )
        self.worker_ready = Gauge(
            "noosphere_orchestrator_worker_ready",
            "1 when a worker serves with its models loaded (its CPU counts as load)",
            w,
            registry=r,
        )
        self._workers: set[str] = set()
        for code in REASON_CODES:  # every series exists from the start (rate() needs that)
            for direction in ("up", "down", "none"):
                self.decisions.labels(agent, direction, code)
        attach_agent_registry(self.registry)

    def observe(
        self, decision: Decision, samples: list[WorkerSample], inflight: dict[str, int]
    ) -> None:
        agent, inputs = self.agent, decision.inputs
        self.replicas_current.labels(agent).set(decision.current)
        self.replicas_desired.labels(agent).set(decision.desired)
        self.replicas_recommended.labels(agent).set(decision.recommended)
        self.decisions.labels(agent, decision.direction, decision.code).inc()
        self.backlog.labels(agent).set(inputs.get("backlog", 0.0))
        self.waiting.labels(agent).set(inputs.get("waiting", 0.0))
        self.mean_utilization.labels(agent).set(inputs.get("mean_utilization", 0.0))
        self.by_signal.labels(agent, "queue").set(inputs.get("by_queue", 0.0))
        self.by_signal.labels(agent, "utilization").set(inputs.get("by_utilization", 0.0))
        self.last_decision.labels(agent).set(time.time())
        seen = {s.name for s in samples}
        for gone in self._workers - seen:
            for gauge in (
                self.worker_queue,
                self.worker_running,
                self.worker_inflight,
                self.worker_utilization,
                self.worker_ready,
            ):
                with contextlib.suppress(KeyError):
                    gauge.remove(agent, gone)
        self._workers = seen
        for s in samples:
            self.worker_queue.labels(agent, s.name).set(s.queued)
            self.worker_running.labels(agent, s.name).set(s.running)
            self.worker_inflight.labels(agent, s.name).set(inflight.get(s.name, 0))
            self.worker_ready.labels(agent, s.name).set(1.0 if s.ready else 0.0)
            if s.utilization is None:
                with contextlib.suppress(KeyError):
                    self.worker_utilization.remove(agent, s.name)
            else:
                self.worker_utilization.labels(agent, s.name).set(s.utilization)

    def close(self) -> None:
        detach_agent_registry(self.registry)


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
        self.stats = OrchestratorMetrics(spec.id)
        self._key, _ = load_or_create_node_key(home)
        self._scaler: Scaler | None = None
        self._samples: dict[str, WorkerSample] = {}
        self._inflight: dict[str, int] = {}
        self._clients: dict[str, A2AClient] = {}
        self._egress: EgressPolicy | None = None  # set when workers are found in cards
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
        runtime = json.loads((self.home / RUNTIME_FILENAME).read_text())
        if pool.scaler == "kubernetes":
            from urllib.parse import urlsplit

            from noosphere.node.egress import EgressPolicy

            # worker URLs come from cards, anyone's word: dial only what the egress rule allows
            self._egress = EgressPolicy.for_host(urlsplit(runtime["rpc_url"]).hostname or "")
            source = worker_cards(runtime["rpc_url"], pool.agent_ids, runtime["peer_id"])
            return KubernetesScaler(pool.namespace, pool.deployment, card_source=source)
        return LocalScaler(
            self.home / "workers",
            agents=pool.agents,
            bootstrap=runtime["multiaddrs"][:1],
            extra_args=pool.extra_args,
            busy=lambda url: self._inflight.get(url, 0),
            drain_timeout_s=self.settings.turn_timeout_s,
        )

    async def start(self) -> None:
        """Run the control loop until cancelled (the node calls this once it listens)."""
        self._scaler = self._make_scaler()
        current = await self._scaler.current()
        if current < self.settings.policy.min_replicas:
            try:
                await self._scaler.scale(self.settings.policy.min_replicas)
            except Exception:  # e.g. a worker slow to start: the loop below scales again
                log.exception("starting the pool's first workers failed")
        try:
            while True:
                try:
                    await self.step()
                except Exception:  # the pool must keep being managed
                    log.exception("orchestrator step failed")
                await asyncio.sleep(self.settings.interval_s)
        finally:
            for client in self._clients.values():
                await client.aclose()
            self._clients.clear()
            await self.metrics.aclose()

    async def step(self) -> Decision:
        assert self._scaler is not None
        urls = await self._scaler.endpoints()
        samples = await self.metrics.sample(urls)
        await self._forget_clients(urls)
        self._samples = {s.name: s for s in samples}
        self._freed.set()  # the worker set may have changed: let waiting turns look again
        current = await self._scaler.current()
        # Turns waiting here for a worker slot are backlog too.
        decision = self.autoscaler.decide(
            samples, current, time.monotonic(), waiting=float(self._waiting)
        )
        self.stats.observe(decision, samples, self._inflight)
        previous = self.decisions[-1] if self.decisions else None
        self.decisions.append(decision)
        del self.decisions[:-1000]
        fields = {
            "current": decision.current,
            "desired": decision.desired,
            "recommended": decision.recommended,
            "direction": decision.direction,
            "code": decision.code,
            "reason": decision.reason,
            **decision.inputs,
        }
        if decision.changes:
            log.info("scaling workers", **fields)
            started = time.monotonic()
            await self._scaler.scale(decision.desired)
            self.stats.scale_seconds.labels(self.agent_id, decision.direction).observe(
                time.monotonic() - started
            )
            self.stats.replicas_current.labels(self.agent_id).set(await self._scaler.current())
            log.info(
                "workers scaled",
                replicas=decision.desired,
                seconds=round(time.monotonic() - started, 3),
            )
        elif previous is None or (previous.code, previous.recommended) != (
            decision.code,
            decision.recommended,
        ):  # a held or steady state is logged when it begins, not every interval
            log.info("holding workers", **fields)
        return decision

    def close(self) -> None:
        self.stats.close()
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

    def _client(self, url: str) -> A2AClient:
        """One client per worker, kept: its connections are reused, and building an httpx
        client costs milliseconds of CPU (its TLS context), a lot per forwarded turn."""
        from noosphere.node.a2a_client import A2AClient
        from noosphere.node.auth import TOKEN_FILENAME, BearerAuth, PeerAuth, read_token

        client = self._clients.get(url)
        if client is None:
            auth: httpx.Auth = PeerAuth(self._key)
            home = self._scaler.home_of(url) if isinstance(self._scaler, LocalScaler) else None
            if home is not None:
                # a worker process of this node: the orchestrator is its operator, so a priced
                # worker agent (a node with a ledger) does not ask it for an escrow
                auth = BearerAuth(read_token(home / TOKEN_FILENAME))
            client = A2AClient(
                url,
                auth=auth,
                timeout=self.settings.turn_timeout_s,
                egress=self._egress,
            )
            self._clients[url] = client
        return client

    async def _forget_clients(self, keep: list[str]) -> None:
        """Close the clients of workers that left the pool (and have no turn in flight)."""
        for url in [u for u in self._clients if u not in keep and not self._inflight.get(u)]:
            await self._clients.pop(url).aclose()

    def _release(self, url: str) -> None:
        self._inflight[url] -= 1
        self._freed.set()

    async def run_turn(self, turn: Turn, sink: TurnSink) -> TurnResult:
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
            result = await self._client(url).send(message)
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
