"""Execute (A2A client): talk to any A2A v1.0 JSON-RPC agent, a noosphere node or another
implementation such as the ``a2a-sdk`` reference server. Async, httpx-based, typed with the same
wire models the server uses; streams are read as Server-Sent Events. JSON-RPC errors raise
``RpcError``; transport failures raise ``NodeUnreachable``. A client given an ``EgressPolicy``
(an agent URL taken from a stranger's card) connects only where that rule allows, to exactly the
address it checked."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from noosphere.protocol import AgentCard, ErrorCode, RpcError
from noosphere.protocol.a2a import (
    A2A_VERSION_HEADER,
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    ListTasksResponse,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    SendMessageResponse,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskPushNotificationConfig,
)
from noosphere.protocol.base import describe_validation_error

from .client import NodeUnreachable
from .egress import EgressPolicy, EgressRefused, guarded_client

M = TypeVar("M", bound=BaseModel)


def text_message(
    text: str,
    *,
    context_id: str | None = None,
    task_id: str | None = None,
    extra_parts: list[Part] | None = None,
) -> Message:
    """A user message with one text part (plus any extra parts)."""
    return Message(
        message_id=str(uuid.uuid4()),
        role=Role.USER,
        parts=[Part.of_text(text), *(extra_parts or [])],
        context_id=context_id,
        task_id=task_id,
    )


class A2AClient:
    def __init__(
        self,
        url: str,
        *,
        auth: httpx.Auth | None = None,
        tenant: str | None = None,
        timeout: float = 60.0,
        egress: EgressPolicy | None = None,
    ) -> None:
        """``egress``: the rule for a URL a stranger chose (None: the caller trusts the URL)."""
        self.url = url.rstrip("/") + "/"
        self.tenant = tenant
        self._http = guarded_client(
            egress,
            auth=auth,
            timeout=httpx.Timeout(timeout, connect=5.0),
            headers={A2A_VERSION_HEADER: "1.0"},
        )
        self._ids = itertools.count(1)

    async def __aenter__(self) -> A2AClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ---- methods ---------------------------------------------------------------------------

    async def get_card(self, path: str = ".well-known/agent-card.json") -> AgentCard:
        try:
            response = await self._http.get(self.url + path)
        except httpx.HTTPError as exc:
            raise _unreachable(self.url, exc) from exc
        if response.status_code != 200:
            raise RpcError(
                ErrorCode.CARD_NOT_FOUND, f"{self.url}{path}: HTTP {response.status_code}"
            )
        return _parse(AgentCard, response.json())

    async def send(
        self,
        message: Message,
        *,
        return_immediately: bool = False,
        history_length: int | None = None,
        push: TaskPushNotificationConfig | None = None,
    ) -> Task | Message:
        params = self._send_params(message, return_immediately, history_length, push)
        result = _parse(SendMessageResponse, await self._call("SendMessage", params))
        if result.task is not None:
            return result.task
        if result.message is not None:
            return result.message
        raise RpcError(
            ErrorCode.INVALID_AGENT_RESPONSE, "SendMessage returned neither task nor message"
        )

    def stream(self, message: Message) -> AsyncIterator[StreamResponse]:
        return self._stream("SendStreamingMessage", self._send_params(message, False, None, None))

    async def get_task(self, task_id: str, *, history_length: int | None = None) -> Task:
        request = GetTaskRequest(tenant=self.tenant, id=task_id, history_length=history_length)
        return _parse(Task, await self._call("GetTask", request.to_wire()))

    async def list_tasks(self, request: ListTasksRequest | None = None) -> ListTasksResponse:
        request = request or ListTasksRequest()
        if self.tenant and not request.tenant:
            request = request.model_copy(update={"tenant": self.tenant})
        return _parse(ListTasksResponse, await self._call("ListTasks", request.to_wire()))

    async def cancel(self, task_id: str) -> Task:
        request = CancelTaskRequest(tenant=self.tenant, id=task_id)
        return _parse(Task, await self._call("CancelTask", request.to_wire()))

    def subscribe(self, task_id: str) -> AsyncIterator[StreamResponse]:
        request = SubscribeToTaskRequest(tenant=self.tenant, id=task_id)
        return self._stream("SubscribeToTask", request.to_wire())

    async def set_push_config(
        self, config: TaskPushNotificationConfig
    ) -> TaskPushNotificationConfig:
        result = await self._call("CreateTaskPushNotificationConfig", config.to_wire())
        return _parse(TaskPushNotificationConfig, result)

    # ---- transport -------------------------------------------------------------------------

    def _send_params(
        self,
        message: Message,
        return_immediately: bool,
        history_length: int | None,
        push: TaskPushNotificationConfig | None,
    ) -> dict[str, Any]:
        return SendMessageRequest(
            tenant=self.tenant,
            message=message,
            configuration=SendMessageConfiguration(
                return_immediately=return_immediately,
                history_length=history_length,
                task_push_notification_config=push,
            ),
        ).to_wire()

    def _envelope(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        try:
            response = await self._http.post(self.url, json=self._envelope(method, params))
        except httpx.HTTPError as exc:
            raise _unreachable(self.url, exc) from exc
        return _result(_json_body(response))

    async def _stream(self, method: str, params: dict[str, Any]) -> AsyncIterator[StreamResponse]:
        request = self._http.build_request(
            "POST",
            self.url,
            json=self._envelope(method, params),
            headers={"Accept": "text/event-stream"},
        )
        try:
            response = await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _unreachable(self.url, exc) from exc
        try:
            if "text/event-stream" not in response.headers.get("content-type", ""):
                await response.aread()
                _result(_json_body(response))  # raises the JSON-RPC error
                raise RpcError(ErrorCode.INVALID_AGENT_RESPONSE, f"{method} did not stream")
            async for data in _sse_data(response):
                try:
                    payload = json.loads(data)
                except ValueError as exc:
                    raise RpcError(
                        ErrorCode.INVALID_AGENT_RESPONSE, "stream event is not JSON"
                    ) from exc
                yield _parse(StreamResponse, _result(payload))
        except httpx.HTTPError as exc:
            raise NodeUnreachable(f"the stream from {self.url} broke ({exc})") from exc
        finally:
            await response.aclose()


def _unreachable(url: str, exc: httpx.HTTPError) -> NodeUnreachable:
    if isinstance(exc, EgressRefused):
        return NodeUnreachable(f"not calling {url}: {exc}")
    return NodeUnreachable(f"no agent answered at {url} ({exc})")


async def _sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The ``data`` of each Server-Sent Event (multi-line data joined; comments skipped)."""
    lines: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if lines:
                yield "\n".join(lines)
                lines = []
        elif line.startswith("data:"):
            lines.append(line[5:].removeprefix(" "))
    if lines:
        yield "\n".join(lines)


def _json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise RpcError(
            ErrorCode.INVALID_AGENT_RESPONSE,
            f"HTTP {response.status_code} without a JSON-RPC body",
        ) from exc


def _result(body: Any) -> Any:
    if not isinstance(body, dict):
        raise RpcError(ErrorCode.INVALID_AGENT_RESPONSE, "response is not a JSON-RPC object")
    error = body.get("error")
    if isinstance(error, dict):
        raise RpcError(
            int(error.get("code", 0)), str(error.get("message", "error")), error.get("data")
        )
    if "result" not in body:
        raise RpcError(ErrorCode.INVALID_AGENT_RESPONSE, "response has neither result nor error")
    return body["result"]


def _parse(model: type[M], value: Any) -> M:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise RpcError(
            ErrorCode.INVALID_AGENT_RESPONSE,
            f"invalid {model.__name__} from agent: {describe_validation_error(exc)}",
        ) from exc
