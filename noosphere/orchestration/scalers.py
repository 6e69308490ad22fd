"""Feedback (operations): the hands of an orchestrator. A Scaler knows how many workers run and
changes that number; the orchestrator reads the workers' Prometheus metrics to decide.

* ``LocalScaler`` starts and stops real worker node processes on this machine (each joins the
  network through the bootstrap peers), for ``noosphere cluster up``, demos and tests.
* ``KubernetesScaler`` patches the ``scale`` subresource of the worker Deployment with the
  official ``kubernetes`` client (in-cluster config or a kubeconfig); the RBAC it needs is
  get/patch on ``deployments/scale`` for that one Deployment (k8s/base/orchestrator-rbac.yaml).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx
from prometheus_client.parser import text_string_to_metric_families

from noosphere.errors import ServiceError
from noosphere.node.launcher import LocalNode, spawn_node, wait_ready

from .autoscale import WorkerSample


class ScalerError(ServiceError, RuntimeError):
    """The scaler could not read or change the worker count; the message says why."""


class Scaler(Protocol):
    async def current(self) -> int: ...

    async def scale(self, replicas: int) -> None: ...

    async def endpoints(self) -> list[str]:
        """JSON-RPC base URLs of the workers (to read their /metrics and send them tasks)."""
        ...


@dataclass
class _MetricState:
    cpu_seconds: float
    at: float
    ready: bool


_READ = (
    "noosphere_task_queue_depth",
    "noosphere_tasks_running",
    "process_cpu_seconds_total",
    "noosphere_models_loaded",
)


@dataclass
class MetricsReader:
    """Reads the task and CPU metrics of workers' /metrics (prometheus-client text format).

    A worker is ready once its models are loaded (``noosphere_models_loaded``; a worker that
    does not export it counts as ready). Utilization is the CPU share over the interval since
    the previous sample, and only for intervals that began with the worker ready: loading
    models is start-up work, not load, and must not make the pool grow."""

    timeout_s: float = 2.0
    _previous: dict[str, _MetricState] = field(default_factory=dict)
    _http: httpx.AsyncClient | None = None  # kept: a new client per sample costs CPU

    async def sample(self, urls: Sequence[str]) -> list[WorkerSample]:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.timeout_s)
        http = self._http
        results = await asyncio.gather(
            *(self._one(http, url) for url in urls), return_exceptions=True
        )
        for gone in set(self._previous) - set(urls):
            del self._previous[gone]
        return [r for r in results if isinstance(r, WorkerSample)]

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _one(self, http: httpx.AsyncClient, url: str) -> WorkerSample:
        text = (await http.get(url.rstrip("/") + "/metrics")).text
        values: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in _READ:
                    values[sample.name] = sample.value
        now = time.monotonic()
        ready = values.get("noosphere_models_loaded", 1.0) >= 1.0
        cpu = values.get("process_cpu_seconds_total")
        utilization = None
        previous = self._previous.get(url)
        if cpu is not None:
            if previous is not None and previous.ready and ready and now > previous.at:
                utilization = max(0.0, (cpu - previous.cpu_seconds) / (now - previous.at))
            self._previous[url] = _MetricState(cpu, now, ready)
        return WorkerSample(
            name=url,
            queued=values.get("noosphere_task_queue_depth", 0.0),
            running=values.get("noosphere_tasks_running", 0.0),
            utilization=utilization,
            ready=ready,
        )


class LocalScaler:
    """Worker node processes under ``root``, each running ``agents``, joined via ``bootstrap``."""

    def __init__(
        self,
        root: Path,
        *,
        agents: Sequence[Path],
        bootstrap: Sequence[str],
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        busy: Callable[[str], int] | None = None,
        drain_timeout_s: float = 60.0,
        ready_timeout_s: float = 120.0,
    ) -> None:
        self.root = root
        self.agents = list(agents)
        self.bootstrap = list(bootstrap)
        self.extra_args = list(extra_args)
        self.env = env
        # Turns the caller has in flight on a worker URL: a worker leaving the pool is first
        # taken out of endpoints(), then stopped once these are done (or after the timeout).
        self.busy = busy
        self.drain_timeout_s = drain_timeout_s
        # a new worker imports torch and may load the model before it serves: tens of seconds
        # on a busy 2-core machine or in a CPU-limited container
        self.ready_timeout_s = ready_timeout_s
        self.workers: list[LocalNode] = []  # serving (or starting), oldest first
        self._spawned: list[LocalNode] = []  # every process ever started, for close()
        self._serial = 0

    async def current(self) -> int:
        self.workers = [w for w in self.workers if w.alive]
        return len(self.workers)

    async def endpoints(self) -> list[str]:
        await self.current()
        return [w.rpc_url for w in self.workers if w.rpc_url]  # ready ones only

    def home_of(self, url: str) -> Path | None:
        """The home of the worker process serving ``url`` (it holds that node's operator token)."""
        return next((w.home for w in self.workers if w.rpc_url == url), None)

    async def scale(self, replicas: int) -> None:
        await self.current()
        started: list[LocalNode] = []
        while len(self.workers) < replicas:
            self._serial += 1
            # Registered the moment the process exists, so a cancelled scale-up leaves no orphan.
            worker = spawn_node(
                self.root / f"worker-{self._serial}",
                agents=self.agents,
                bootstrap=self.bootstrap,
                extra_args=self.extra_args,
                env=self.env,
                wait=False,
            )
            self._spawned.append(worker)
            self.workers.append(worker)
            started.append(worker)
        # The new processes start side by side; each serves as soon as it is ready.
        results = await asyncio.gather(
            *(asyncio.to_thread(wait_ready, w, self.ready_timeout_s) for w in started),
            return_exceptions=True,
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        while len(self.workers) > replicas:
            # Stop the newest first, once the turns it was handed are done (a worker stopping
            # cancels its running turns).
            worker = self.workers.pop()
            await self._drain(worker)
            await asyncio.to_thread(worker.stop)
        if failed:
            raise failed[0]

    async def _drain(self, worker: LocalNode) -> None:
        if self.busy is None or not worker.rpc_url:
            return
        deadline = time.monotonic() + self.drain_timeout_s
        while self.busy(worker.rpc_url) > 0 and time.monotonic() < deadline and worker.alive:
            await asyncio.sleep(0.05)

    def stop_all(self) -> None:
        """Stop every worker ever started (blocking; for shutdown)."""
        for worker in self._spawned:
            worker.stop()
        self.workers.clear()


class KubernetesScaler:
    """Scales a Deployment through the API server's ``deployments/scale`` endpoints; finds the
    workers from the cards they gossip (``card_source`` lists them), so the orchestrator needs
    no API permission beyond that one subresource."""

    def __init__(
        self,
        namespace: str,
        deployment: str,
        *,
        card_source: Callable[[], Awaitable[list[str]]],
        api_client: object | None = None,
    ) -> None:
        from kubernetes import client, config

        if api_client is None:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            api_client = client.ApiClient()
        self._apps = client.AppsV1Api(api_client)
        self.namespace = namespace
        self.deployment = deployment
        self._card_source = card_source

    async def current(self) -> int:
        scale = await asyncio.to_thread(
            self._apps.read_namespaced_deployment_scale, self.deployment, self.namespace
        )
        return int(scale.spec.replicas or 0) if scale.spec is not None else 0

    async def scale(self, replicas: int) -> None:
        body = {"spec": {"replicas": replicas}}
        await asyncio.to_thread(
            self._apps.patch_namespaced_deployment_scale, self.deployment, self.namespace, body
        )

    async def endpoints(self) -> list[str]:
        return await self._card_source()


def worker_cards(
    node_rpc: str, agent_ids: Sequence[str], own_peer: str
) -> Callable[[], Awaitable[list[str]]]:
    """Worker endpoints from the orchestrator node's card index: the JSON-RPC URLs of other
    nodes' cards for ``agent_ids`` (workers announce themselves by gossip)."""
    wanted = set(agent_ids)

    async def source() -> list[str]:
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "noosphere.cards.list",
            "params": {"full": True},
        }
        async with httpx.AsyncClient(timeout=5.0) as http:
            cards = (await http.post(node_rpc.rstrip("/") + "/", json=body)).json()["result"]
        urls = {
            (entry["card"].get("supportedInterfaces") or [{}])[0].get("url", "")
            for entry in cards
            if entry["agentId"] in wanted and entry["peerId"] != own_peer
        }
        return sorted(url for url in urls if url)

    return source
