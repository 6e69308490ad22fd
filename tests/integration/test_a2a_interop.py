"""A2A interop in both directions, against the reference SDK (``a2a-sdk`` 1.3).

1. The SDK's own client (card resolver, signature verifier, ``create_client``, the v0.3 compat
   transport) talks to a real ``noosphere node start`` process running the calculator agent.
2. Our ``A2AClient`` talks to the SDK's reference JSON-RPC server (``DefaultRequestHandler``,
   ``InMemoryTaskStore``, an echo ``AgentExecutor``) served by uvicorn on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import jwt
import pytest
import uvicorn
from a2a.client import A2ACardResolver, Client, ClientConfig, create_client
from a2a.client.errors import A2AClientError
from a2a.compat.v0_3 import types as v03
from a2a.compat.v0_3.jsonrpc_transport import CompatJsonRpcTransport
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentInterface,
    AgentSkill,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTaskPushNotificationConfigsResponse,
    ListTasksRequest,
    ListTasksResponse,
    SendMessageRequest,
    SendMessageResponse,
    SubscribeToTaskRequest,
    TaskPushNotificationConfig,
    TaskState,
)
from a2a.types import AgentCard as SdkAgentCard
from a2a.types import Message as SdkMessage
from a2a.types import Part as SdkPart
from a2a.types import Role as SdkRole
from a2a.types import StreamResponse as SdkStreamResponse
from a2a.types import Task as SdkTask
from a2a.utils.errors import (
    A2AError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from a2a.utils.signing import SignatureVerificationError, create_signature_verifier
from google.protobuf.json_format import MessageToDict, ParseDict
from starlette.applications import Starlette

from noosphere.node.a2a_client import A2AClient, text_message
from noosphere.node.launcher import LocalNode
from noosphere.protocol import ErrorCode, RpcError, b64url_encode
from noosphere.protocol import a2a as ours
from noosphere.protocol.identity import public_key_from_peer_id

pytestmark = pytest.mark.integration

QUESTION = "what is 17/3 + 2^10?"
AGENT_ID = "exact-calculator"
UNAUTHORIZED = str(int(ErrorCode.UNAUTHORIZED))  # -32042


# ---- helpers for direction 1 (SDK client -> noosphere node) -------------------------------


def _sdk_message(text: str, **ids: str) -> SdkMessage:
    return SdkMessage(
        message_id=str(uuid.uuid4()), role=SdkRole.ROLE_USER, parts=[SdkPart(text=text)], **ids
    )


def _send_request(text: str) -> SendMessageRequest:
    return SendMessageRequest(message=_sdk_message(text))


def _ed25519_verifier(expected_kid: str):
    """The SDK's JWS verifier, resolving the key from the kid (our peer id embeds it)."""
    seen: list[str | None] = []

    def key_provider(kid: str | None, jku: str | None) -> jwt.PyJWK:
        seen.append(kid)
        assert kid == expected_kid, f"card signed under kid {kid!r}, node is {expected_kid}"
        public = public_key_from_peer_id(kid)
        return jwt.PyJWK({"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(public)})

    verifier = create_signature_verifier(key_provider=key_provider, algorithms=["EdDSA"])
    return verifier, seen


def _artifact_texts(task: SdkTask) -> str:
    return "\n".join(p.text for a in task.artifacts for p in a.parts if p.HasField("text"))


@pytest.fixture
async def node_card(running_node: LocalNode) -> SdkAgentCard:
    verifier, _ = _ed25519_verifier(running_node.peer_id)
    async with httpx.AsyncClient() as http:
        return await A2ACardResolver(http, running_node.rpc_url).get_agent_card(
            signature_verifier=verifier
        )


@contextlib.asynccontextmanager
async def _sdk_client(
    card: SdkAgentCard, token: str | None, *, streaming: bool
) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with httpx.AsyncClient(headers=headers, timeout=60.0) as http:
        client = await create_client(
            card, client_config=ClientConfig(httpx_client=http, streaming=streaming)
        )
        async with client:
            yield client


@pytest.fixture
async def sdk(node_card: SdkAgentCard, running_node: LocalNode) -> AsyncIterator[Client]:
    """A non-streaming SDK client holding the operator token."""
    async with _sdk_client(node_card, running_node.token, streaming=False) as client:
        yield client


@pytest.fixture
async def sdk_streaming(node_card: SdkAgentCard, running_node: LocalNode) -> AsyncIterator[Client]:
    async with _sdk_client(node_card, running_node.token, streaming=True) as client:
        yield client


async def _send_once(client: Client, request: SendMessageRequest) -> SdkTask:
    events = [e async for e in client.send_message(request)]
    assert len(events) == 1 and events[0].HasField("task"), events
    return events[0].task


async def _send_for_task(client: Client, text: str) -> SdkTask:
    return await _send_once(client, _send_request(text))


@pytest.fixture
async def completed_task(sdk: Client) -> SdkTask:
    return await _send_for_task(sdk, QUESTION)


# ---- direction 1: the SDK client against a noosphere node ----------------------------------


async def test_sdk_resolver_fetches_a_card_the_sdk_verifier_accepts(running_node: LocalNode):
    verifier, seen = _ed25519_verifier(running_node.peer_id)
    async with httpx.AsyncClient() as http:
        resolver = A2ACardResolver(http, running_node.rpc_url)
        card = await resolver.get_agent_card(signature_verifier=verifier)
        per_agent = await resolver.get_agent_card(
            relative_card_path=f"/agents/{AGENT_ID}/.well-known/agent-card.json",
            signature_verifier=verifier,
        )
    assert seen == [running_node.peer_id, running_node.peer_id]
    assert card.name == per_agent.name == "Exact Calculator"
    assert card.capabilities.streaming
    assert [i.protocol_binding for i in card.supported_interfaces] == ["JSONRPC", "HTTP+JSON"]
    for interface in card.supported_interfaces:
        assert interface.protocol_version == "1.0"
        assert interface.url.rstrip("/") == running_node.rpc_url.rstrip("/")
        assert interface.tenant == AGENT_ID
    assert {s.name for s in card.skills} >= {"Arithmetic", "Unit conversion"}


async def test_sdk_verifier_rejects_a_tampered_card(running_node: LocalNode, node_card):
    verifier, _ = _ed25519_verifier(running_node.peer_id)
    tampered = SdkAgentCard()
    tampered.CopyFrom(node_card)
    tampered.description += " (now also does taxes)"
    with pytest.raises(SignatureVerificationError):
        verifier(tampered)


async def test_sdk_send_message_completes_with_the_exact_artifact(completed_task: SdkTask):
    assert completed_task.status.state == TaskState.TASK_STATE_COMPLETED
    assert "3089/3" in _artifact_texts(completed_task)
    assert completed_task.id and completed_task.context_id
    assert completed_task.history[0].role == SdkRole.ROLE_USER


async def test_sdk_streaming_sees_status_then_artifact_then_final_state(sdk_streaming: Client):
    events: list[SdkStreamResponse] = [
        e async for e in sdk_streaming.send_message(_send_request(QUESTION))
    ]
    kinds = [e.WhichOneof("payload") for e in events]
    assert kinds[0] == "task", kinds
    assert "status_update" in kinds[1:], kinds
    artifact_at = kinds.index("artifact_update")
    assert any(k == "status_update" for k in kinds[1:artifact_at]), kinds  # working first
    artifact = events[artifact_at].artifact_update.artifact
    assert any("3089/3" in p.text for p in artifact.parts)
    final = events[-1]
    assert kinds[-1] == "status_update" and artifact_at < len(events) - 1
    assert final.status_update.status.state == TaskState.TASK_STATE_COMPLETED
    task_id = events[0].task.id
    assert all(getattr(e, k).task_id == task_id for e, k in zip(events[1:], kinds[1:], strict=True))


async def test_sdk_get_task_returns_the_task(sdk: Client, completed_task: SdkTask):
    fetched = await sdk.get_task(GetTaskRequest(id=completed_task.id))
    assert fetched.id == completed_task.id
    assert fetched.status.state == TaskState.TASK_STATE_COMPLETED
    assert "3089/3" in _artifact_texts(fetched)
    trimmed = await sdk.get_task(GetTaskRequest(id=completed_task.id, history_length=1))
    assert len(trimmed.history) == 1


async def test_sdk_list_tasks_includes_the_task(sdk: Client, completed_task: SdkTask):
    listed = await sdk.list_tasks(ListTasksRequest(include_artifacts=True))
    by_id = {t.id: t for t in listed.tasks}
    assert completed_task.id in by_id
    assert by_id[completed_task.id].status.state == TaskState.TASK_STATE_COMPLETED
    assert listed.total_size >= len(listed.tasks) >= 1
    done = await sdk.list_tasks(ListTasksRequest(status=TaskState.TASK_STATE_COMPLETED))
    assert all(t.status.state == TaskState.TASK_STATE_COMPLETED for t in done.tasks)


async def test_sdk_cancel_of_a_task_waiting_for_input(sdk: Client):
    waiting = await _send_for_task(sdk, "what is")
    assert waiting.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    canceled = await sdk.cancel_task(CancelTaskRequest(id=waiting.id))
    assert canceled.id == waiting.id
    assert canceled.status.state == TaskState.TASK_STATE_CANCELED
    again = await sdk.get_task(GetTaskRequest(id=waiting.id))
    assert again.status.state == TaskState.TASK_STATE_CANCELED


async def test_sdk_cancel_of_a_completed_task_is_not_cancelable(sdk: Client, completed_task):
    with pytest.raises(TaskNotCancelableError):
        await sdk.cancel_task(CancelTaskRequest(id=completed_task.id))


async def test_sdk_get_of_an_unknown_task_is_not_found(sdk: Client):
    with pytest.raises(TaskNotFoundError):
        await sdk.get_task(GetTaskRequest(id=str(uuid.uuid4())))


async def test_sdk_subscribe_to_a_terminal_task_is_an_error(sdk_streaming: Client, completed_task):
    with pytest.raises(UnsupportedOperationError):
        async for _ in sdk_streaming.subscribe(SubscribeToTaskRequest(id=completed_task.id)):
            pass


async def test_sdk_client_without_token_gets_unauthorized(node_card: SdkAgentCard):
    async with _sdk_client(node_card, None, streaming=False) as anonymous:
        with pytest.raises(A2AClientError, match=UNAUTHORIZED):
            async for _ in anonymous.send_message(_send_request(QUESTION)):
                pytest.fail("an anonymous caller got a result")
        with pytest.raises(A2AClientError, match=UNAUTHORIZED):
            await anonymous.get_task(GetTaskRequest(id=str(uuid.uuid4())))
    async with _sdk_client(node_card, None, streaming=True) as anonymous:
        with pytest.raises(A2AClientError, match=UNAUTHORIZED):
            async for _ in anonymous.send_message(_send_request(QUESTION)):
                pytest.fail("an anonymous caller got a stream event")


async def test_sdk_client_with_a_wrong_token_gets_an_error(node_card: SdkAgentCard):
    """A wrong token is refused with HTTP 401 (JSON-RPC body -32042); the SDK reports the 401."""
    async with _sdk_client(node_card, "x" * 43, streaming=False) as impostor:
        with pytest.raises(A2AError, match="401"):
            async for _ in impostor.send_message(_send_request(QUESTION)):
                pytest.fail("a caller with a wrong token got a result")


async def test_sdk_continues_a_task_that_waits_for_input(sdk_streaming: Client):
    first = [e async for e in sdk_streaming.send_message(_send_request("what is"))]
    assert first[-1].status_update.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    task = first[0].task
    follow_up = SendMessageRequest(
        message=_sdk_message("17/3 + 2^10", task_id=task.id, context_id=task.context_id)
    )
    events = [e async for e in sdk_streaming.send_message(follow_up)]
    final = events[-1].status_update
    assert final.task_id == task.id
    assert final.status.state == TaskState.TASK_STATE_COMPLETED
    assert any(
        "3089/3" in p.text
        for e in events
        if e.HasField("artifact_update")
        for p in e.artifact_update.artifact.parts
    )


async def test_sdk_polling_client_gets_the_task_at_once_then_polls(node_card, running_node):
    headers = {"Authorization": f"Bearer {running_node.token}"}
    async with httpx.AsyncClient(headers=headers, timeout=60.0) as http:
        config = ClientConfig(httpx_client=http, streaming=False, polling=True)
        async with await create_client(node_card, client_config=config) as poller:
            task = await _send_for_task(poller, QUESTION)
            assert task.status.state in (
                TaskState.TASK_STATE_SUBMITTED,
                TaskState.TASK_STATE_WORKING,
                TaskState.TASK_STATE_COMPLETED,
            )
            deadline = time.monotonic() + 30
            while task.status.state != TaskState.TASK_STATE_COMPLETED:
                assert time.monotonic() < deadline, task.status
                await asyncio.sleep(0.05)
                task = await poller.get_task(GetTaskRequest(id=task.id))
    assert "3089/3" in _artifact_texts(task)


async def test_sdk_list_tasks_pages_and_filters(sdk: Client):
    context_id = str(uuid.uuid4())
    ids = []
    for _ in range(3):
        request = SendMessageRequest(message=_sdk_message(QUESTION, context_id=context_id))
        ids.append((await _send_once(sdk, request)).id)
    seen: list[str] = []
    token = ""
    while True:
        page = await sdk.list_tasks(
            ListTasksRequest(context_id=context_id, page_size=2, page_token=token)
        )
        assert page.total_size == 3 and len(page.tasks) <= 2
        seen += [t.id for t in page.tasks]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(ids)


async def test_sdk_subscribe_to_a_task_waiting_for_input(sdk: Client, sdk_streaming: Client):
    """The stream stays open while the task waits (A2A 3.1.6: it ends at a terminal state)."""
    waiting = await _send_for_task(sdk, "what is")
    stream = sdk_streaming.subscribe(SubscribeToTaskRequest(id=waiting.id))
    first = await asyncio.wait_for(anext(stream), 60)
    assert first.HasField("task") and first.task.id == waiting.id
    assert first.task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    answer = SendMessageRequest(
        message=_sdk_message("17/3 + 2^10", task_id=waiting.id, context_id=waiting.context_id)
    )
    answered = await _send_once(sdk, answer)
    assert answered.status.state == TaskState.TASK_STATE_COMPLETED
    async with asyncio.timeout(60):
        rest = [e async for e in stream]
    assert rest[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED


async def test_sdk_extended_card(sdk: Client, running_node: LocalNode, node_card):
    assert node_card.capabilities.extended_agent_card
    verifier, _ = _ed25519_verifier(running_node.peer_id)
    extended = await sdk.get_extended_agent_card(
        GetExtendedAgentCardRequest(), signature_verifier=verifier
    )
    assert extended.name == node_card.name


async def test_sdk_push_notification_config_round_trip(sdk: Client, completed_task: SdkTask):
    created = await sdk.create_task_push_notification_config(
        TaskPushNotificationConfig(
            task_id=completed_task.id, url="http://127.0.0.1:9/hook", token="secret"
        )
    )
    assert created.task_id == completed_task.id and created.id
    assert created.url == "http://127.0.0.1:9/hook"
    fetched = await sdk.get_task_push_notification_config(
        GetTaskPushNotificationConfigRequest(task_id=completed_task.id, id=created.id)
    )
    assert fetched.url == created.url and fetched.token == "secret"
    listed = await sdk.list_task_push_notification_configs(
        ListTaskPushNotificationConfigsRequest(task_id=completed_task.id)
    )
    assert [c.id for c in listed.configs] == [created.id]
    await sdk.delete_task_push_notification_config(
        DeleteTaskPushNotificationConfigRequest(task_id=completed_task.id, id=created.id)
    )
    listed = await sdk.list_task_push_notification_configs(
        ListTaskPushNotificationConfigsRequest(task_id=completed_task.id)
    )
    assert list(listed.configs) == []
    await sdk.delete_task_push_notification_config(  # again: idempotent (A2A 3.1.10)
        DeleteTaskPushNotificationConfigRequest(task_id=completed_task.id, id=created.id)
    )


async def test_every_v1_result_parses_strictly_into_the_sdk_proto_types(running_node):
    """The SDK client parses leniently (unknown fields dropped); here every result must parse
    with ``ignore_unknown_fields=False``, so no field we send is silently lost."""

    def strict(value: object, message):
        return ParseDict(value, message, ignore_unknown_fields=False)

    headers = {"Authorization": f"Bearer {running_node.token}", "A2A-Version": "1.0"}
    async with httpx.AsyncClient(headers=headers, timeout=60.0) as http:

        async def call(method: str, params: dict) -> dict:
            body = {"jsonrpc": "2.0", "id": method, "method": method, "params": params}
            reply = (await http.post(running_node.rpc_url, json=body)).json()
            assert "result" in reply, reply
            return reply["result"]

        card = await http.get(f"{running_node.rpc_url.rstrip('/')}/.well-known/agent-card.json")
        strict(card.json(), SdkAgentCard())
        strict(await call("GetExtendedAgentCard", {}), SdkAgentCard())
        message = MessageToDict(_sdk_message(QUESTION))
        sent = strict(await call("SendMessage", {"message": message}), SendMessageResponse())
        task_id = sent.task.id
        strict(await call("GetTask", {"id": task_id}), SdkTask())
        strict(await call("ListTasks", {"includeArtifacts": True}), ListTasksResponse())
        config = {"taskId": task_id, "url": "http://127.0.0.1:9/hook"}
        created = strict(
            await call("CreateTaskPushNotificationConfig", config), TaskPushNotificationConfig()
        )
        strict(
            await call("GetTaskPushNotificationConfig", {"taskId": task_id, "id": created.id}),
            TaskPushNotificationConfig(),
        )
        strict(
            await call("ListTaskPushNotificationConfigs", {"taskId": task_id}),
            ListTaskPushNotificationConfigsResponse(),
        )
        waiting = await call("SendMessage", {"message": MessageToDict(_sdk_message("what is"))})
        strict(await call("CancelTask", {"id": waiting["task"]["id"]}), SdkTask())
        body = {
            "jsonrpc": "2.0",
            "id": "s",
            "method": "SendStreamingMessage",
            "params": {"message": MessageToDict(_sdk_message(QUESTION))},
        }
        async with http.stream("POST", running_node.rpc_url, json=body) as stream:
            frames = [
                json.loads(line[5:])
                async for line in stream.aiter_lines()
                if line.startswith("data:")
            ]
    assert len(frames) >= 4
    for frame in frames:
        assert frame["id"] == "s" and "result" in frame, frame
        strict(frame["result"], SdkStreamResponse())


PROTO_JSON_READER_CASES = {
    # proto3 JSON: "Either standard or URL-safe base64 encoding with/without paddings are
    # accepted" for bytes, and "Parsers accept both enum names and integer values".
    "bytes-url-safe-base64": {"raw": "aGVsbG8_Pg", "mediaType": "text/plain"},
    "bytes-unpadded-base64": {"raw": "aGVsbG8/Pg", "mediaType": "text/plain"},
}


@pytest.mark.parametrize("part", PROTO_JSON_READER_CASES.values(), ids=PROTO_JSON_READER_CASES)
async def test_node_reads_bytes_the_way_proto_json_readers_do(running_node: LocalNode, part):
    message = {
        "messageId": str(uuid.uuid4()),
        "role": "ROLE_USER",
        "parts": [{"text": "what is 2+2"}, part],
    }
    params = {"message": message, "configuration": {"returnImmediately": True}}
    sdk_view = ParseDict(params, SendMessageRequest(), ignore_unknown_fields=False)
    assert sdk_view.message.parts[1].raw == b"hello?>"  # the SDK reads it fine
    headers = {"Authorization": f"Bearer {running_node.token}", "A2A-Version": "1.0"}
    async with httpx.AsyncClient(headers=headers, timeout=30.0) as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params}
        reply = (await http.post(running_node.rpc_url, json=body)).json()
    assert "result" in reply, reply["error"]


async def test_node_reads_enum_numbers_the_way_proto_json_readers_do(running_node: LocalNode):
    message = {"messageId": str(uuid.uuid4()), "role": 1, "parts": [{"text": "what is 2+2"}]}
    params = {"message": message, "configuration": {"returnImmediately": True}}
    assert ParseDict(params, SendMessageRequest()).message.role == SdkRole.ROLE_USER
    headers = {"Authorization": f"Bearer {running_node.token}", "A2A-Version": "1.0"}
    async with httpx.AsyncClient(headers=headers, timeout=30.0) as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": params}
        reply = (await http.post(running_node.rpc_url, json=body)).json()
    assert "result" in reply, reply["error"]


# ---- direction 1, v0.3: the SDK's compat transport and raw v0.3 JSON-RPC --------------------


@contextlib.asynccontextmanager
async def _compat(node: LocalNode, card: SdkAgentCard) -> AsyncIterator[CompatJsonRpcTransport]:
    headers = {"Authorization": f"Bearer {node.token}"}
    async with httpx.AsyncClient(headers=headers, timeout=60.0) as http:
        yield CompatJsonRpcTransport(http, card, node.rpc_url, is_shared_httpx=True)


async def test_sdk_v03_compat_transport(running_node: LocalNode, node_card: SdkAgentCard):
    async with _compat(running_node, node_card) as compat:
        sent = await compat.send_message(_send_request(QUESTION))
        assert sent.HasField("task")
        task = sent.task
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        assert "3089/3" in _artifact_texts(task)

        fetched = await compat.get_task(GetTaskRequest(id=task.id))
        assert fetched.id == task.id and fetched.status.state == TaskState.TASK_STATE_COMPLETED

        events = [e async for e in compat.send_message_streaming(_send_request(QUESTION))]
        kinds = [e.WhichOneof("payload") for e in events]
        assert kinds[0] == "task" and "artifact_update" in kinds, kinds
        assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED

        waiting = (await compat.send_message(_send_request("what is"))).task
        assert waiting.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        canceled = await compat.cancel_task(CancelTaskRequest(id=waiting.id))
        assert canceled.status.state == TaskState.TASK_STATE_CANCELED

        with pytest.raises(TaskNotFoundError):
            await compat.get_task(GetTaskRequest(id=str(uuid.uuid4())))
        with pytest.raises(TaskNotCancelableError):
            await compat.cancel_task(CancelTaskRequest(id=task.id))


async def test_raw_v03_json_rpc_validates_with_the_sdk_v03_types(running_node: LocalNode):
    headers = {"Authorization": f"Bearer {running_node.token}", "A2A-Version": "0.3"}
    message = {
        "kind": "message",
        "messageId": str(uuid.uuid4()),
        "role": "user",
        "parts": [{"kind": "text", "text": QUESTION}],
    }
    async with httpx.AsyncClient(headers=headers, timeout=60.0) as http:
        sent = await http.post(
            running_node.rpc_url,
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "message/send",
                "params": {"message": message},
            },
        )
        response = v03.SendMessageSuccessResponse.model_validate(sent.json())
        task = response.result
        assert isinstance(task, v03.Task)
        assert task.status.state == v03.TaskState.completed
        texts = [
            p.root.text for a in task.artifacts or [] for p in a.parts if p.root.kind == "text"
        ]
        assert any("3089/3" in t for t in texts)

        got = await http.post(
            running_node.rpc_url,
            json={"jsonrpc": "2.0", "id": "g", "method": "tasks/get", "params": {"id": task.id}},
        )
        fetched = v03.GetTaskSuccessResponse.model_validate(got.json())
        assert fetched.id == "g" and fetched.result.id == task.id

        missing = await http.post(
            running_node.rpc_url,
            json={"jsonrpc": "2.0", "id": 3, "method": "tasks/get", "params": {"id": "nope"}},
        )
        error = v03.JSONRPCErrorResponse.model_validate(missing.json())
        assert error.error.code == -32001

        async with http.stream(
            "POST",
            running_node.rpc_url,
            json={
                "jsonrpc": "2.0",
                "id": 4,
                "method": "message/stream",
                "params": {"message": {**message, "messageId": str(uuid.uuid4())}},
            },
        ) as stream:
            assert "text/event-stream" in stream.headers["content-type"]
            results = [
                v03.SendStreamingMessageSuccessResponse.model_validate_json(line[5:]).result
                async for line in stream.aiter_lines()
                if line.startswith("data:")
            ]
    assert isinstance(results[0], v03.Task)
    assert any(isinstance(r, v03.TaskArtifactUpdateEvent) for r in results)
    final = results[-1]
    assert isinstance(final, v03.TaskStatusUpdateEvent)
    assert final.status.state == v03.TaskState.completed and final.final


# ---- direction 2: our client against the SDK reference server ------------------------------


class EchoExecutor(AgentExecutor):
    """Echoes the text (and any non-text parts) back as an artifact and completes; 'ask' waits
    for input; 'direct' answers with a bare Message; cancel cancels."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id and context.context_id and context.message
        text = context.get_user_input()
        if text == "direct":  # answer with a bare Message, no task
            await event_queue.enqueue_event(
                SdkMessage(
                    message_id=str(uuid.uuid4()),
                    role=SdkRole.ROLE_AGENT,
                    context_id=context.context_id,
                    parts=[SdkPart(text="direct reply")],
                )
            )
            return
        if context.current_task is None:
            await event_queue.enqueue_event(
                SdkTask(
                    id=context.task_id,
                    context_id=context.context_id,
                    status={"state": TaskState.TASK_STATE_SUBMITTED},
                    history=[context.message],
                )
            )
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        if text == "ask":
            await updater.requires_input(updater.new_agent_message([SdkPart(text="ask what?")]))
            return
        await updater.start_work(updater.new_agent_message([SdkPart(text="echoing")]))
        others = [p for p in context.message.parts if not p.HasField("text")]
        await updater.add_artifact(
            [SdkPart(text=f"echo: {text}"), *others], name="echo", last_chunk=True
        )
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id and context.context_id
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


@pytest.fixture(scope="module")
def reference_server() -> Iterator[str]:
    """The SDK's JSON-RPC app with its default handler, on a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    card = SdkAgentCard(
        name="Reference Echo",
        description="a2a-sdk reference server used by noosphere's interop test",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="echo", name="Echo", description="echoes text", tags=["echo"])],
    )
    handler = DefaultRequestHandler(
        agent_executor=EchoExecutor(), task_store=InMemoryTaskStore(), agent_card=card
    )
    app = Starlette(
        routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, rpc_url="/")]
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "reference server did not start"
        time.sleep(0.02)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
async def ours_client(reference_server: str) -> AsyncIterator[A2AClient]:
    async with A2AClient(reference_server, timeout=10.0) as client:
        yield client


def _our_artifact_text(task: ours.Task) -> str:
    return "\n".join(p.text for a in task.artifacts for p in a.parts if p.text is not None)


async def test_our_client_reads_the_reference_card(ours_client: A2AClient, reference_server):
    card = await ours_client.get_card()
    assert card.name == "Reference Echo"
    assert card.supported_interfaces[0].url == reference_server
    assert card.capabilities.streaming


async def test_our_client_send_completes_with_the_echo_artifact(ours_client: A2AClient):
    task = await ours_client.send(text_message("hello interop"))
    assert isinstance(task, ours.Task)
    assert task.status.state == ours.TaskState.COMPLETED
    assert _our_artifact_text(task) == "echo: hello interop"
    fetched = await ours_client.get_task(task.id)
    assert fetched.id == task.id and fetched.status.state == ours.TaskState.COMPLETED
    assert _our_artifact_text(fetched) == "echo: hello interop"


async def test_our_client_stream_parses_every_reference_event(ours_client: A2AClient):
    events = [e async for e in ours_client.stream(text_message("streamed"))]
    assert all(isinstance(e, ours.StreamResponse) for e in events)
    assert events[0].task is not None
    task_id = events[0].task.id
    states = [e.status_update.status.state for e in events if e.status_update is not None]
    assert states[0] == ours.TaskState.WORKING and states[-1] == ours.TaskState.COMPLETED
    (artifact,) = [e.artifact_update for e in events if e.artifact_update is not None]
    assert artifact.task_id == task_id and artifact.artifact.parts[0].text == "echo: streamed"
    assert events[-1].status_update is not None


async def test_our_client_lists_reference_tasks(ours_client: A2AClient):
    task = await ours_client.send(text_message("to be listed"))
    assert isinstance(task, ours.Task)
    listed = await ours_client.list_tasks()
    assert task.id in {t.id for t in listed.tasks}


async def test_our_client_cancels_an_input_required_reference_task(ours_client: A2AClient):
    task = await ours_client.send(text_message("ask"))
    assert isinstance(task, ours.Task)
    assert task.status.state == ours.TaskState.INPUT_REQUIRED
    canceled = await ours_client.cancel(task.id)
    assert canceled.status.state == ours.TaskState.CANCELED
    assert (await ours_client.get_task(task.id)).status.state == ours.TaskState.CANCELED


async def test_our_client_return_immediately_then_polls_the_reference(ours_client):
    task = await ours_client.send(text_message("later"), return_immediately=True)
    assert isinstance(task, ours.Task)
    deadline = time.monotonic() + 10
    while task.status.state != ours.TaskState.COMPLETED:
        assert time.monotonic() < deadline, task.status
        await asyncio.sleep(0.02)
        task = await ours_client.get_task(task.id)
    assert _our_artifact_text(task) == "echo: later"


async def test_our_client_continues_an_input_required_reference_task(ours_client):
    task = await ours_client.send(text_message("ask"))
    assert isinstance(task, ours.Task)
    assert task.status.state == ours.TaskState.INPUT_REQUIRED
    follow = text_message("the answer", task_id=task.id, context_id=task.context_id)
    done = await ours_client.send(follow)
    assert isinstance(done, ours.Task)
    assert done.id == task.id and done.status.state == ours.TaskState.COMPLETED
    assert _our_artifact_text(done) == "echo: the answer"


async def test_our_client_subscribes_to_an_input_required_reference_task(ours_client):
    task = await ours_client.send(text_message("ask"))
    assert isinstance(task, ours.Task)
    events = []
    async with asyncio.timeout(5):
        async for event in ours_client.subscribe(task.id):
            events.append(event)
            if event.task is not None:
                break
    assert events[0].task is not None and events[0].task.id == task.id


async def test_our_client_gets_push_not_supported_from_the_reference(ours_client):
    task = await ours_client.send(text_message("push"))
    assert isinstance(task, ours.Task)
    with pytest.raises(RpcError) as excinfo:
        await ours_client.set_push_config(
            ours.TaskPushNotificationConfig(task_id=task.id, url="http://127.0.0.1:9/hook")
        )
    assert excinfo.value.code == ErrorCode.PUSH_NOTIFICATION_NOT_SUPPORTED == -32003


async def test_our_client_stream_errors_from_the_reference(ours_client: A2AClient):
    done = await ours_client.send(text_message("over"))
    assert isinstance(done, ours.Task)
    with pytest.raises(RpcError) as excinfo:
        async for _ in ours_client.subscribe(done.id):
            pass
    assert excinfo.value.code == ErrorCode.UNSUPPORTED_OPERATION == -32004
    with pytest.raises(RpcError) as excinfo:
        async for _ in ours_client.subscribe(str(uuid.uuid4())):
            pass
    assert excinfo.value.code == ErrorCode.TASK_NOT_FOUND


async def test_our_client_gets_a_bare_message_from_the_reference(ours_client: A2AClient):
    reply = await ours_client.send(text_message("direct"))
    assert isinstance(reply, ours.Message)
    assert reply.role == ours.Role.AGENT and reply.text == "direct reply"
    events = [e async for e in ours_client.stream(text_message("direct"))]
    assert len(events) == 1 and events[0].message is not None
    assert events[0].message.text == "direct reply"


async def test_our_client_round_trips_bytes_and_data_parts_through_the_reference(ours_client):
    payload = bytes(range(256))
    parts = [
        ours.Part.of_bytes(payload, filename="blob.bin", media_type="application/octet-stream"),
        ours.Part.of_data({"k": [1, 2, {"n": None}]}),
    ]
    task = await ours_client.send(text_message("parts", extra_parts=parts))
    assert isinstance(task, ours.Task)
    (artifact,) = task.artifacts
    text, raw, data = artifact.parts
    assert text.text == "echo: parts"
    assert raw.content_bytes == payload
    assert raw.filename == "blob.bin" and raw.media_type == "application/octet-stream"
    assert data.data == {"k": [1, 2, {"n": None}]}


async def test_our_client_maps_reference_errors(ours_client: A2AClient):
    with pytest.raises(RpcError) as excinfo:
        await ours_client.get_task(str(uuid.uuid4()))
    assert excinfo.value.code == ErrorCode.TASK_NOT_FOUND == -32001
    done = await ours_client.send(text_message("finished"))
    assert isinstance(done, ours.Task)
    with pytest.raises(RpcError) as excinfo:
        await ours_client.cancel(done.id)
    assert excinfo.value.code == ErrorCode.TASK_NOT_CANCELABLE == -32002
