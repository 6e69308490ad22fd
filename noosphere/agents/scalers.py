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

from noosphere.node.launcher import LocalNode, spawn_node, wait_ready

from .autoscale import WorkerSample


class ScalerError(RuntimeError):
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


@dataclass
class MetricsReader:
    """Reads the task and CPU metrics of workers' /metrics (prometheus-client text format)."""

    timeout_s: float = 2.0
    _previous: dict[str, _MetricState] = field(default_factory=dict)

    async def sample(self, urls: Sequence[str]) -> list[WorkerSample]:
        async with httpx.AsyncClient(timeout=self.timeout_s) as http:
            results = await asyncio.gather(
                *(self._one(http, url) for url in urls), return_exceptions=True
            )
        return [r for r in results if isinstance(r, WorkerSample)]

    async def _one(self, http: httpx.AsyncClient, url: str) -> WorkerSample:
        text = (await http.get(url.rstrip("/") + "/metrics")).text
        values: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in (
                    "noosphere_task_queue_depth",
                    "noosphere_tasks_running",
                    "process_cpu_seconds_total",
                ):
                    values[sample.name] = sample.value
        now = time.monotonic()
        cpu = values.get("process_cpu_seconds_total")
        utilization = None
        previous = self._previous.get(url)
        if cpu is not None:
            if previous is not None and now > previous.at:
                utilization = max(0.0, (cpu - previous.cpu_seconds) / (now - previous.at))
            self._previous[url] = _MetricState(cpu, now)
        return WorkerSample(
            name=url,
            queued=values.get("noosphere_task_queue_depth", 0.0),
            running=values.get("noosphere_tasks_running", 0.0),
            utilization=utilization,
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
    ) -> None:
        self.root = root
        self.agents = list(agents)
        self.bootstrap = list(bootstrap)
        self.extra_args = list(extra_args)
        self.env = env
        self.workers: list[LocalNode] = []  # serving (or starting), oldest first
        self._spawned: list[LocalNode] = []  # every process ever started, for close()
        self._serial = 0

    async def current(self) -> int:
        self.workers = [w for w in self.workers if w.alive]
        return len(self.workers)

    async def endpoints(self) -> list[str]:
        await self.current()
        return [w.rpc_url for w in self.workers if w.rpc_url]  # ready ones only

    async def scale(self, replicas: int) -> None:
        await self.current()
        while len(self.workers) < replicas:
            self._serial += 1
            # Registered the moment the process exists, so a cancelled scale-up leaves no orphan.
            worker = spawn_node(
                self.root / f"worker-{self._serial}", agents=self.agents,
                bootstrap=self.bootstrap, extra_args=self.extra_args, env=self.env, wait=False,
            )  # fmt: skip
            self._spawned.append(worker)
            self.workers.append(worker)
            await asyncio.to_thread(wait_ready, worker)
        while len(self.workers) > replicas:
            # Stop the newest first; SIGTERM lets a worker end its running turns cleanly.
            worker = self.workers.pop()
            await asyncio.to_thread(worker.stop)

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
        return int(scale.spec.replicas or 0)

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
        body = {"jsonrpc": "2.0", "id": 1, "method": "noosphere.cards.list",
                "params": {"full": True}}  # fmt: skip
        async with httpx.AsyncClient(timeout=5.0) as http:
            cards = (await http.post(node_rpc.rstrip("/") + "/", json=body)).json()["result"]
        urls = {
            (entry["card"].get("supportedInterfaces") or [{}])[0].get("url", "")
            for entry in cards
            if entry["agentId"] in wanted and entry["peerId"] != own_peer
        }
        return sorted(url for url in urls if url)

    return source
