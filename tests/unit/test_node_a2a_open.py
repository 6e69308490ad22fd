"""Open agents (``access: anyone``): anonymous A2A callers over both bindings, against a real
task manager. Adversarial: an anonymous caller cannot see other principals' tasks, cannot go
over its address's rate, and cannot task an agent open to peers or to the operator only."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from a2a_app import BEARER, RecordingAgent, a2a_app

from noosphere.node.access import AnonymousCallers
from noosphere.node.auth import signed_headers
from noosphere.node.metrics import NodeMetrics
from noosphere.node.push import PushNotifier
from noosphere.node.ratelimit import KeyedRateLimiter
from noosphere.node.store import NodeStore
from noosphere.node.tasks import TaskManager
from noosphere.protocol import ErrorCode, NodeKey

Client = Callable[[str], httpx.AsyncClient]


@pytest.fixture
async def agents() -> dict[str, RecordingAgent]:
    return {name: RecordingAgent(name) for name in ("open", "peers-only", "private")}


@pytest.fixture
async def manager(
    store: NodeStore, metrics: NodeMetrics, agents: dict[str, RecordingAgent]
) -> AsyncIterator[TaskManager]:
    push = PushNotifier(metrics)
    made = TaskManager(
        store,
        agents,
        metrics,
        push,
        access={"open": "anyone", "peers-only": "peers", "private": "operator"},
    )
    yield made
    await made.close()
    await push.aclose(grace_s=0.1)


def _clients(manager: TaskManager, anonymous: AnonymousCallers | None) -> Client:
    app = a2a_app(manager, anonymous)

    def client(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://node")

    return client


@pytest.fixture
def client(manager: TaskManager) -> Client:
    return _clients(manager, AnonymousCallers(rate=100, burst=100))


def rpc(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}


def send_params(text: str, tenant: str = "open", **ids: str) -> dict[str, Any]:
    message = {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": text}]}
    return {"tenant": tenant, "message": {**message, **ids}}


async def call(http: httpx.AsyncClient, method: str, params: dict[str, Any], **kw: Any) -> Any:
    return (await http.post("/", json=rpc(method, params), **kw)).json()


def error_code(body: dict[str, Any]) -> int | None:
    return body.get("error", {}).get("code")


async def test_anonymous_caller_runs_a_task_on_an_open_agent_on_both_bindings(
    client: Client, agents: dict[str, RecordingAgent]
) -> None:
    async with client("203.0.113.7") as http:
        body = await call(http, "SendMessage", send_params("hello"))
        task = body["result"]["task"]
        assert task["status"]["state"] == "TASK_STATE_COMPLETED"
        assert task["artifacts"][0]["parts"][0]["text"] == "HELLO"
        rest = (await http.post("/open/message:send", json=send_params("again"))).json()
        assert rest["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
        got = (await http.get(f"/tasks/{task['id']}")).json()
        assert got["id"] == task["id"]
    # the agent keeps an anonymous caller's memories per conversation, not per address
    assert agents["open"].principals == [
        f"anon:203.0.113.7/{task['contextId']}",
        f"anon:203.0.113.7/{rest['task']['contextId']}",
    ]


async def test_anonymous_caller_cannot_task_peers_only_or_operator_agents(
    client: Client,
) -> None:
    key = NodeKey.generate()
    async with client("203.0.113.7") as http:
        for tenant in ("peers-only", "private"):
            body = await call(http, "SendMessage", send_params("x", tenant))
            assert error_code(body) == ErrorCode.UNAUTHORIZED, body
            rest = await http.post(f"/{tenant}/message:send", json=send_params("x", tenant))
            assert rest.status_code == 401
            assert rest.json()["error"]["details"][0]["reason"] == "UNAUTHORIZED"
            streamed = await http.post(f"/{tenant}/message:stream", json=send_params("x", tenant))
            assert streamed.status_code == 401
        # a signed peer may task the peers-only agent, not the operator-only one
        for tenant, allowed in (("peers-only", True), ("private", False)):
            content = json.dumps(rpc("SendMessage", send_params("x", tenant))).encode()
            headers = {
                **signed_headers(key, "POST", "/", content),
                "content-type": "application/json",
            }
            body = (await http.post("/", content=content, headers=headers)).json()
            assert ("result" in body) is allowed, body
        body = await call(http, "SendMessage", send_params("x", "private"), headers=BEARER)
        assert body["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_anonymous_caller_sees_no_other_principals_tasks(client: Client) -> None:
    key = NodeKey.generate()
    async with client("203.0.113.7") as mine, client("198.51.100.9") as other:
        operator = (await call(mine, "SendMessage", send_params("op"), headers=BEARER))["result"]
        content = json.dumps(rpc("SendMessage", send_params("peer"))).encode()
        headers = {**signed_headers(key, "POST", "/", content), "content-type": "application/json"}
        peer = (await mine.post("/", content=content, headers=headers)).json()["result"]
        neighbour = (await call(other, "SendMessage", send_params("ask")))["result"]
        own = (await call(mine, "SendMessage", send_params("ask")))["result"]
        foreign = [operator["task"], peer["task"], neighbour["task"]]
        for task in foreign:
            for method, params in (
                ("GetTask", {"id": task["id"]}),
                ("CancelTask", {"id": task["id"]}),
                ("SubscribeToTask", {"id": task["id"]}),
                ("ListTaskPushNotificationConfigs", {"taskId": task["id"]}),
                ("SendMessage", send_params("more", taskId=task["id"])),
            ):
                body = await call(mine, method, params)
                assert error_code(body) == ErrorCode.TASK_NOT_FOUND, (method, body)
            rest = await mine.get(f"/tasks/{task['id']}")
            assert rest.status_code == 404
            assert rest.json()["error"]["details"][0]["reason"] == "TASK_NOT_FOUND"
            listed = await call(mine, "ListTasks", {"contextId": task["contextId"]})
            assert listed["result"]["tasks"] == []
        # listing names a conversation: a neighbour behind the same address cannot enumerate
        body = await call(mine, "ListTasks", {})
        assert error_code(body) == ErrorCode.INVALID_PARAMS
        assert (await mine.get("/tasks")).status_code == 400
        listed = await call(mine, "ListTasks", {"contextId": own["task"]["contextId"]})
        assert [t["id"] for t in listed["result"]["tasks"]] == [own["task"]["id"]]
        # ... and the caller may continue its own task
        more = await call(mine, "SendMessage", send_params("more", taskId=own["task"]["id"]))
        assert more["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_anonymous_caller_cannot_exceed_its_rate(manager: TaskManager) -> None:
    client = _clients(manager, AnonymousCallers(rate=0.01, burst=3))
    async with client("203.0.113.7") as http, client("198.51.100.9") as other:
        for _ in range(3):
            assert "result" in await call(http, "ListTasks", {"contextId": "c"})
        body = await call(http, "ListTasks", {"contextId": "c"})
        assert error_code(body) == ErrorCode.RATE_LIMITED
        assert float(body["error"]["data"][0]["metadata"]["retryAfterSeconds"]) > 0
        rest = await http.get("/tasks", params={"contextId": "c"})
        assert rest.status_code == 429 and int(rest.headers["retry-after"]) >= 1
        streamed = await http.post("/message:stream", json=send_params("x"))
        assert streamed.status_code == 429
        # another address has its own allowance; the operator is not limited
        assert "result" in await call(other, "ListTasks", {"contextId": "c"})
        for _ in range(5):
            assert "result" in await call(http, "ListTasks", {}, headers=BEARER)


async def test_without_open_agents_anonymous_calls_are_refused(manager: TaskManager) -> None:
    client = _clients(manager, None)
    async with client("203.0.113.7") as http:
        body = await call(http, "SendMessage", send_params("x"))
        assert error_code(body) == ErrorCode.UNAUTHORIZED
        assert (await http.post("/message:send", json=send_params("x"))).status_code == 401
        assert (await http.get("/tasks/abc")).status_code == 401


async def test_extended_card_needs_credentials(client: Client) -> None:
    async with client("203.0.113.7") as http:
        body = await call(http, "GetExtendedAgentCard", {})
        assert error_code(body) == ErrorCode.UNAUTHORIZED
        assert (await http.get("/extendedAgentCard")).status_code == 401


def test_keyed_limiter_is_bounded_and_never_resets_a_busy_sender() -> None:
    limiter = KeyedRateLimiter(rate=0.001, burst=2, max_keys=2)
    assert limiter.take("a") == 0.0 and limiter.take("a") == 0.0
    assert limiter.take("a") > 0  # a's burst is spent
    assert limiter.take("b") == 0.0
    assert limiter.take("c") > 0  # both buckets busy: no room, and nobody forgotten
    assert len(limiter) == 2 and limiter.take("a") > 0


def test_keyed_limiter_makes_room_by_forgetting_full_buckets() -> None:
    limiter = KeyedRateLimiter(rate=1000.0, burst=1, max_keys=1)
    assert limiter.take("a") == 0.0
    limiter._buckets["a"].stamp -= 1.0  # a second later a's bucket is full again
    assert limiter.take("b") == 0.0 and len(limiter) == 1
