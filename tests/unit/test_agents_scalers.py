"""KubernetesScaler against a local server that speaks the Kubernetes API's scale endpoints and
records every call (no API server can run here), so the official client's real requests are
checked; worker discovery from cards; MetricsReader against a real node's metrics format."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from threaded_server import serve_app

from noosphere.node.metrics import NodeMetrics
from noosphere.orchestration.scalers import (
    KubernetesScaler,
    LocalScaler,
    MetricsReader,
    worker_cards,
)

SCALE_PATH = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"


@dataclass
class FakeApiServer:
    replicas: int = 1
    calls: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def app(self) -> Starlette:
        async def scale(request: Request) -> JSONResponse:
            body = await request.body()
            self.calls.append(
                {
                    "method": request.method,
                    "path": request.url.path,
                    "content_type": request.headers.get("content-type", ""),
                    "body": json.loads(body) if body else None,
                }
            )
            if request.method == "PATCH":
                self.replicas = int(json.loads(body)["spec"]["replicas"])
            params = request.path_params
            return JSONResponse(
                {
                    "apiVersion": "autoscaling/v1",
                    "kind": "Scale",
                    "metadata": {"name": params["name"], "namespace": params["namespace"]},
                    "spec": {"replicas": self.replicas},
                    "status": {"replicas": self.replicas},
                }
            )

        return Starlette(
            routes=[
                Route(SCALE_PATH, scale, methods=["GET", "PATCH"]),
            ]
        )


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    server = FakeApiServer()
    with serve_app(server.app(), "fake Kubernetes API") as url:
        server.url = url
        yield server


async def no_cards() -> list[str]:
    return []


def scaler_for(api: FakeApiServer) -> KubernetesScaler:
    configuration = client.Configuration(host=api.url)
    return KubernetesScaler(
        "noosphere", "worker", card_source=no_cards, api_client=client.ApiClient(configuration)
    )


async def test_reads_and_patches_the_scale_subresource(api: FakeApiServer) -> None:
    scaler = scaler_for(api)
    assert await scaler.current() == 1
    await scaler.scale(4)
    assert await scaler.current() == 4
    get, patch = api.calls[0], api.calls[1]
    assert get["method"] == "GET"
    assert get["path"] == "/apis/apps/v1/namespaces/noosphere/deployments/worker/scale"
    assert patch["method"] == "PATCH"
    assert patch["path"] == get["path"]
    assert patch["body"] == {"spec": {"replicas": 4}}
    assert "patch+json" in patch["content_type"]


async def test_endpoints_come_from_the_workers_cards() -> None:
    """Workers are found from the cards they gossip (no pod listing permission needed)."""

    def card(peer: str, agent: str, url: str) -> dict[str, Any]:
        return {
            "cardId": f"{peer}/{agent}",
            "peerId": peer,
            "agentId": agent,
            "card": {"supportedInterfaces": [{"url": url}]},
        }

    listed = [
        card("w1", "exact-calculator", "http://10.0.0.1:7070"),
        card("w2", "exact-calculator", "http://10.0.0.2:7070"),
        card("w3", "summarizer", "http://10.0.0.3:7070"),
        card("me", "exact-calculator", "http://10.0.0.9:7070"),
    ]
    calls: list[Any] = []

    async def rpc(request: Request) -> JSONResponse:
        calls.append(await request.json())
        return JSONResponse({"jsonrpc": "2.0", "id": 1, "result": listed})

    app = Starlette(routes=[Route("/", rpc, methods=["POST"])])
    with serve_app(app, "node rpc") as url:
        urls = await worker_cards(url, ["exact-calculator"], "me")()
    assert urls == ["http://10.0.0.1:7070", "http://10.0.0.2:7070"]
    assert calls[0]["method"] == "noosphere.cards.list" and calls[0]["params"] == {"full": True}


async def test_metrics_reader_parses_node_metrics() -> None:
    metrics = NodeMetrics()
    metrics.task_queue_depth.set(7)
    metrics.tasks_running.set(2)
    metrics.models_loaded.set_function(lambda: 1.0)

    async def render(_: Request) -> PlainTextResponse:
        return PlainTextResponse(metrics.render().decode())

    app = Starlette(routes=[Route("/metrics", render)])
    with serve_app(app, "metrics") as url:
        reader = MetricsReader()
        first = await reader.sample([url, "http://127.0.0.1:9"])  # the second is unreachable
        second = await reader.sample([url])
    assert len(first) == 1 and first[0].queued == 7 and first[0].running == 2
    assert first[0].utilization is None and second[0].utilization is not None
    assert first[0].ready and second[0].ready


async def test_cpu_of_a_worker_loading_its_models_is_not_load() -> None:
    """Utilization only counts over intervals that began with the worker ready, so the CPU a
    fresh worker spends loading its models never reaches the autoscaler."""
    metrics = NodeMetrics()
    loaded = [0.0]
    metrics.models_loaded.set_function(lambda: loaded[0])

    async def render(_: Request) -> PlainTextResponse:
        return PlainTextResponse(metrics.render().decode())

    app = Starlette(routes=[Route("/metrics", render)])
    with serve_app(app, "metrics") as url:
        reader = MetricsReader()
        warming = [await reader.sample([url]) for _ in range(2)]
        loaded[0] = 1.0
        just_loaded = await reader.sample([url])  # the interval began while loading
        steady = await reader.sample([url])
    assert all(not s[0].ready and s[0].utilization is None for s in warming)
    assert just_loaded[0].ready and just_loaded[0].utilization is None
    assert steady[0].ready and steady[0].utilization is not None


async def test_a_worker_without_the_readiness_metric_counts_as_ready() -> None:
    """Workers of an older version (no noosphere_models_loaded) are read as before."""
    text = "noosphere_task_queue_depth 3.0\nprocess_cpu_seconds_total 1.5\n"

    async def render(_: Request) -> PlainTextResponse:
        return PlainTextResponse(text)

    app = Starlette(routes=[Route("/metrics", render)])
    with serve_app(app, "metrics") as url:
        reader = MetricsReader()
        await reader.sample([url])
        second = await reader.sample([url])
    assert second[0].ready and second[0].queued == 3 and second[0].utilization == 0.0


@dataclass
class FakeWorker:
    rpc_url: str
    alive: bool = True

    def stop(self) -> int:
        self.alive = False
        return 0


async def test_local_scaler_drains_a_worker_before_stopping_it(tmp_path: Path) -> None:
    """Scale-down takes the newest worker out of the endpoints at once, and stops it only when
    the turns handed to it are done (a stopping node cancels its running turns)."""
    inflight = {"http://w2": 2}
    scaler = LocalScaler(tmp_path, agents=[], bootstrap=[], busy=lambda u: inflight.get(u, 0))
    w1, w2 = FakeWorker("http://w1"), FakeWorker("http://w2")
    scaler.workers = [w1, w2]  # type: ignore[list-item]
    scaling = asyncio.create_task(scaler.scale(1))
    await asyncio.sleep(0.2)
    assert await scaler.endpoints() == ["http://w1"]  # no new turns for w2
    assert w2.alive and not scaling.done()  # but it finishes the two it has
    inflight["http://w2"] = 0
    await asyncio.wait_for(scaling, 5)
    assert not w2.alive and w1.alive
