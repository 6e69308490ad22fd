"""The dispatcher's A2A duties: authentication, the A2A-Version header, streaming methods as
Server-Sent Events, and v0.3 method names translated both ways."""

from __future__ import annotations

import json
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.routing import Route

from noosphere.node.auth import RequestAuthenticator, signed_headers
from noosphere.node.metrics import NodeMetrics
from noosphere.node.rpc import CallContext, JsonRpcDispatcher
from noosphere.protocol import ErrorCode, NodeKey, RpcError
from noosphere.protocol.a2a import (
    GetTaskRequest,
    ListTasksRequest,
    ListTasksResponse,
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    Task,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

TOKEN = "operator-token-" + "x" * 30
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def _task(task_id: str, state: TaskState = TaskState.COMPLETED) -> Task:
    return Task(id=task_id, context_id="c1", status=TaskStatus(state=state))


async def get_task(params: GetTaskRequest, ctx: CallContext) -> Task:
    if params.id == "missing":
        raise RpcError(ErrorCode.TASK_NOT_FOUND, "task missing not found")
    return _task(params.id).model_copy(update={"metadata": {"principal": ctx.principal}})


async def stream(params: SendMessageRequest, ctx: CallContext) -> AsyncIterator[StreamResponse]:
    if params.message.text == "refuse":
        raise RpcError(ErrorCode.UNSUPPORTED_OPERATION, "no")

    async def events() -> AsyncIterator[StreamResponse]:
        yield StreamResponse(task=_task("t1", TaskState.SUBMITTED))
        for state in (TaskState.WORKING, TaskState.COMPLETED):
            yield StreamResponse(
                status_update=TaskStatusUpdateEvent(
                    task_id="t1", context_id="c1", status=TaskStatus(state=state)
                )
            )
        if params.message.text == "break":
            raise RpcError(ErrorCode.INTERNAL_ERROR, "stream broke")

    return events()


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    dispatcher = JsonRpcDispatcher(
        NodeMetrics(),
        max_body_bytes=64 * 1024,
        max_batch=10,
        authenticator=RequestAuthenticator(TOKEN),
    )
    dispatcher.register("GetTask", GetTaskRequest, get_task, authenticated=True)
    dispatcher.register(
        "SendStreamingMessage", SendMessageRequest, stream, authenticated=True, streaming=True
    )
    app = Starlette(routes=[Route("/", dispatcher.handle_http, methods=["POST"])])
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def rpc(method: str, params: dict[str, Any], id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, "method": method, "params": params}


def send_params(text: str) -> dict[str, Any]:
    message = Message(message_id="m1", role=Role.USER, parts=[Part.of_text(text)])
    return SendMessageRequest(message=message).to_wire()


def sse_payloads(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[5:].strip()) for line in text.splitlines() if line.startswith("data:")]


def test_anonymous_call_of_an_authenticated_method_is_refused(client: TestClient) -> None:
    body = client.post("/", json=rpc("GetTask", {"id": "t1"})).json()
    assert body["error"]["code"] == ErrorCode.UNAUTHORIZED


def test_wrong_token_is_http_401_with_a_json_rpc_error(client: TestClient) -> None:
    response = client.post(
        "/", json=rpc("GetTask", {"id": "t1"}), headers={"Authorization": "Bearer nope"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == ErrorCode.UNAUTHORIZED


def test_token_and_signature_set_the_principal(client: TestClient) -> None:
    body = client.post("/", json=rpc("GetTask", {"id": "t1"}), headers=BEARER).json()
    assert body["result"]["metadata"]["principal"] == "local"
    key = NodeKey.generate()
    content = json.dumps(rpc("GetTask", {"id": "t1"})).encode()
    headers = {**signed_headers(key, "POST", "/", content), "content-type": "application/json"}
    body = client.post("/", content=content, headers=headers).json()
    assert body["result"]["metadata"]["principal"] == key.peer_id


@pytest.mark.parametrize("version", ["1.0", "0.3", " 1.0 "])
def test_supported_versions_pass(client: TestClient, version: str) -> None:
    headers = {**BEARER, "A2A-Version": version}
    assert "result" in client.post("/", json=rpc("GetTask", {"id": "t1"}), headers=headers).json()


def test_unsupported_version_is_refused(client: TestClient) -> None:
    headers = {**BEARER, "A2A-Version": "2.0"}
    body = client.post("/", json=rpc("GetTask", {"id": "t1"}), headers=headers).json()
    assert body["error"]["code"] == ErrorCode.VERSION_NOT_SUPPORTED


def test_streaming_method_answers_with_server_sent_events(client: TestClient) -> None:
    response = client.post(
        "/", json=rpc("SendStreamingMessage", send_params("go"), 7), headers=BEARER
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_payloads(response.text)
    assert [e["id"] for e in events] == [7, 7, 7]
    assert events[0]["result"]["task"]["status"]["state"] == "TASK_STATE_SUBMITTED"
    assert events[2]["result"]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"


def test_error_before_the_first_event_is_a_plain_json_response(client: TestClient) -> None:
    response = client.post(
        "/", json=rpc("SendStreamingMessage", send_params("refuse")), headers=BEARER
    )
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == ErrorCode.UNSUPPORTED_OPERATION


def test_error_mid_stream_is_the_last_event(client: TestClient) -> None:
    response = client.post(
        "/", json=rpc("SendStreamingMessage", send_params("break")), headers=BEARER
    )
    events = sse_payloads(response.text)
    assert events[-1]["error"]["message"] == "stream broke"


def test_streaming_method_in_a_batch_is_refused(client: TestClient) -> None:
    batch = [rpc("SendStreamingMessage", send_params("go")), rpc("GetTask", {"id": "t1"}, 2)]
    body = client.post("/", json=batch, headers=BEARER).json()
    assert body[0]["error"]["code"] == ErrorCode.INVALID_REQUEST
    assert "result" in body[1]


def test_v03_names_are_translated_both_ways(client: TestClient) -> None:
    body = client.post("/", json=rpc("tasks/get", {"id": "t9"}), headers=BEARER).json()
    assert body["result"]["kind"] == "task"
    assert body["result"]["status"]["state"] == "completed"


def test_v03_stream_events_are_v03_shaped(client: TestClient) -> None:
    params = {
        "message": {
            "kind": "message",
            "messageId": "m1",
            "role": "user",
            "parts": [{"kind": "text", "text": "go"}],
        }
    }
    response = client.post("/", json=rpc("message/stream", params), headers=BEARER)
    events = [e["result"] for e in sse_payloads(response.text)]
    assert events[0]["kind"] == "task"
    assert events[-1]["kind"] == "status-update"
    assert events[-1]["final"] is True


def test_v03_malformed_params_are_invalid_params(client: TestClient) -> None:
    params = {"message": {"kind": "message", "messageId": "m1", "role": "robot", "parts": []}}
    body = client.post("/", json=rpc("message/stream", params), headers=BEARER).json()
    assert body["error"]["code"] == ErrorCode.INVALID_PARAMS


def test_v03_errors_keep_their_codes(client: TestClient) -> None:
    body = client.post("/", json=rpc("tasks/get", {"id": "missing"}), headers=BEARER).json()
    assert body["error"]["code"] == ErrorCode.TASK_NOT_FOUND


@pytest.mark.parametrize(("size", "valid"), [(0, False), (1, True), (100, True), (101, False)])
async def test_list_tasks_page_size_is_1_to_100(size: int, valid: bool) -> None:
    """A2A ListTasksRequest.page_size: "The minimum value is 1. The maximum value is 100."."""

    async def list_tasks(params: ListTasksRequest, ctx: CallContext) -> ListTasksResponse:
        return ListTasksResponse(page_size=params.page_size or 50)

    dispatcher = JsonRpcDispatcher(NodeMetrics(), max_body_bytes=1024, max_batch=1)
    dispatcher.register("ListTasks", ListTasksRequest, list_tasks)
    response = await dispatcher.handle_one(rpc("ListTasks", {"pageSize": size}))
    assert response is not None
    if valid:
        assert response.result["pageSize"] == size
    else:
        assert response.error is not None and response.error.code == ErrorCode.INVALID_PARAMS
        assert "pageSize" in response.error.message
