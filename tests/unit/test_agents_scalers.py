"""KubernetesScaler against a local server that speaks the Kubernetes API's scale endpoints and
records every call (no API server can run here), so the official client's real requests are
checked; worker discovery from cards; MetricsReader against a real node's metrics format."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from threaded_server import serve_app

from noosphere.agents.scalers import KubernetesScaler, MetricsReader, worker_cards
from noosphere.node.metrics import NodeMetrics

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
        return {"cardId": f"{peer}/{agent}", "peerId": peer, "agentId": agent,
                "card": {"supportedInterfaces": [{"url": url}]}}  # fmt: skip

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

    async def render(_: Request) -> PlainTextResponse:
        return PlainTextResponse(metrics.render().decode())

    app = Starlette(routes=[Route("/metrics", render)])
    with serve_app(app, "metrics") as url:
        reader = MetricsReader()
        first = await reader.sample([url, "http://127.0.0.1:9"])  # the second is unreachable
        second = await reader.sample([url])
    assert len(first) == 1 and first[0].queued == 7 and first[0].running == 2
    assert first[0].utilization is None and second[0].utilization is not None
