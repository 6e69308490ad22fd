"""The A2A HTTP+JSON binding (A2A v1.0 section 11) over a real task manager: the URL patterns
with and without the tenant prefix, query parameters, SSE streams, push-notification configs,
and the AIP-193 errors with the HTTP statuses of section 5.4."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from a2a_app import BEARER, RecordingAgent, a2a_app

from noosphere.node.metrics import NodeMetrics
from noosphere.node.push import PushNotifier
from noosphere.node.store import NodeStore
from noosphere.node.tasks import TaskManager
from noosphere.protocol.wire_errors import ERROR_INFO_TYPE


@pytest.fixture
async def manager(store: NodeStore, metrics: NodeMetrics) -> AsyncIterator[TaskManager]:
    push = PushNotifier(metrics, allow_private_targets=True)
    made = TaskManager(store, {"echo": RecordingAgent("echo")}, metrics, push)
    yield made
    await made.close()
    await push.aclose(grace_s=0.1)


@pytest.fixture
async def http(manager: TaskManager) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=a2a_app(manager, None))
    async with httpx.AsyncClient(transport=transport, base_url="http://n", headers=BEARER) as c:
        yield c


def send_body(text: str, **ids: str) -> dict[str, Any]:
    message = {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"text": text}]}
    return {"message": {**message, **ids}}


def sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of each SSE event."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", ""
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
        if data:
            events.append((name, json.loads(data)))
    return events


def assert_error(response: httpx.Response, status: int, reason: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == status and isinstance(error["message"], str)
    info = error["details"][0]
    assert (info["@type"], info["reason"]) == (ERROR_INFO_TYPE, reason)


async def test_send_get_list_cancel(http: httpx.AsyncClient) -> None:
    sent = await http.post("/message:send", json=send_body("hi"))
    assert sent.status_code == 200
    task = sent.json()["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    got = (await http.get(f"/tasks/{task['id']}", params={"historyLength": 1})).json()
    assert got["id"] == task["id"] and len(got["history"]) == 1
    listed = (
        await http.get(
            "/tasks",
            params={"contextId": task["contextId"], "status": "completed", "pageSize": 5},
        )
    ).json()
    assert [t["id"] for t in listed["tasks"]] == [task["id"]]
    assert listed["nextPageToken"] == "" and "artifacts" not in listed["tasks"][0]
    with_artifacts = await http.get(
        "/tasks", params={"contextId": task["contextId"], "includeArtifacts": "true"}
    )
    assert with_artifacts.json()["tasks"][0]["artifacts"][0]["parts"][0]["text"] == "HI"
    assert_error(await http.post(f"/tasks/{task['id']}:cancel"), 409, "TASK_NOT_CANCELABLE")
    asked = (await http.post("/echo/message:send", json=send_body("ask"))).json()["task"]
    canceled = await http.post(f"/echo/tasks/{asked['id']}:cancel", json={})
    assert canceled.json()["status"]["state"] == "TASK_STATE_CANCELED"


async def test_stream_and_subscribe_are_server_sent_events(
    http: httpx.AsyncClient, manager: TaskManager
) -> None:
    streamed = await http.post("/message:stream", json=send_body("go"))
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = sse(streamed.text)
    assert "task" in events[0][1] and events[-1][1]["statusUpdate"]["status"]["state"] == (
        "TASK_STATE_COMPLETED"
    )
    assert any("artifactUpdate" in data for _, data in events)
    task_id = events[0][1]["task"]["id"]
    assert_error(await http.post(f"/tasks/{task_id}:subscribe"), 400, "UNSUPPORTED_OPERATION")
    # a task waiting for input: the subscription streams until the task ends
    asked = (await http.post("/message:send", json=send_body("ask"))).json()["task"]
    # (the in-process transport hands over whole responses: the subscription is read at its end)
    subscription = asyncio.create_task(http.get(f"/tasks/{asked['id']}:subscribe"))
    deadline = time.monotonic() + 5
    while asked["id"] not in manager._watchers:
        assert time.monotonic() < deadline, "the subscription never started"
        await asyncio.sleep(0.01)
    await http.post("/message:send", json=send_body("more", taskId=asked["id"]))
    events = sse((await asyncio.wait_for(subscription, 5)).text)
    assert events[0][1]["task"]["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    assert events[-1][1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_push_configs(http: httpx.AsyncClient) -> None:
    task = (await http.post("/message:send", json=send_body("ask"))).json()["task"]
    base = f"/tasks/{task['id']}/pushNotificationConfigs"
    created = await http.post(base, json={"id": "c1", "url": "http://127.0.0.1:9/hook"})
    assert created.json()["id"] == "c1" and created.json()["taskId"] == task["id"]
    assert (await http.get(f"{base}/c1")).json()["url"] == "http://127.0.0.1:9/hook"
    assert [c["id"] for c in (await http.get(base)).json()["configs"]] == ["c1"]
    for _ in range(2):  # idempotent
        deleted = await http.delete(f"{base}/c1")
        assert deleted.status_code == 200 and deleted.json() == {}
    assert_error(await http.get(f"{base}/c1"), 404, "TASK_NOT_FOUND")


async def test_errors_have_the_spec_status(http: httpx.AsyncClient) -> None:
    assert_error(await http.get("/tasks/nope"), 404, "TASK_NOT_FOUND")
    assert_error(await http.get("/tasks", params={"pageSize": 0}), 400, "INVALID_PARAMS")
    assert_error(await http.get("/tasks", params={"pageSize": "x"}), 400, "INVALID_PARAMS")
    assert_error(
        await http.post(
            "/message:send", content=b"{", headers={"content-type": "application/json"}
        ),
        400,
        "PARSE_ERROR",
    )
    assert_error(
        await http.post(
            "/message:send",
            content=json.dumps(send_body("x")).encode(),
            headers={"content-type": "text/plain"},
        ),
        415,
        "CONTENT_TYPE_NOT_SUPPORTED",
    )
    unreadable = send_body("x")
    unreadable["message"]["parts"] = [{"raw": "dGNr", "mediaType": "application/x-nope"}]
    assert_error(
        await http.post("/message:send", json=unreadable), 415, "CONTENT_TYPE_NOT_SUPPORTED"
    )
    assert_error(
        await http.post("/message:send", json=send_body("x"), headers={"A2A-Version": "9.9"}),
        400,
        "VERSION_NOT_SUPPORTED",
    )
    assert_error(
        await http.post(
            "/message:send", json=send_body("x"), headers={"Authorization": "Bearer no"}
        ),
        401,
        "UNAUTHORIZED",
    )
    assert_error(
        await http.post("/nobody/message:send", json=send_body("x")), 400, "INVALID_PARAMS"
    )
    assert_error(await http.post("/tasks/t1:frobnicate"), 404, "METHOD_NOT_FOUND")


async def test_json_rpc_refuses_a_body_that_is_not_json(http: httpx.AsyncClient) -> None:
    response = await http.post("/", content=b"{'a': 1}", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == -32005


async def test_an_agent_may_answer_with_a_message_alone(http: httpx.AsyncClient) -> None:
    """A2A 3.1.1: SendMessage returns a Task or a Message; a stream still shows the task."""
    answer = (await http.post("/message:send", json=send_body("reply"))).json()
    assert set(answer) == {"message"}
    assert answer["message"]["role"] == "ROLE_AGENT"
    assert answer["message"]["parts"] == [{"text": "just this"}]
    rpc = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": send_body("reply")}
    assert "message" in (await http.post("/", json=rpc)).json()["result"]
    events = sse((await http.post("/message:stream", json=send_body("reply"))).text)
    assert "task" in events[0][1]
