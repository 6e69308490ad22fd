"""Execute (A2A API): the A2A v1.0 JSON-RPC methods a node serves for the agents it runs, thin
adapters from validated requests to the task manager. A caller is the operator (bearer token),
a peer (signed request) or, when the node runs an open agent (``access: anyone``), an anonymous
client known by its address and rate-limited per address (``access.py``); without open agents
anonymous calls are refused. Tasks are visible only to the principal that created them (the
operator sees all); which agent a principal may task is the task manager's check."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from noosphere.errors import ExtendedCardNotConfigured
from noosphere.protocol import AgentCard
from noosphere.protocol.a2a import (
    CancelTaskRequest,
    GetExtendedAgentCardRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTaskPushNotificationConfigsResponse,
    ListTasksRequest,
    ListTasksResponse,
    SendMessageRequest,
    SendMessageResponse,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskPushConfigRef,
    TaskPushNotificationConfig,
)

from .access import AnonymousCallers
from .rpc import CallContext, JsonRpcDispatcher
from .tasks import is_reply_only


class A2ATasks(Protocol):
    """The A2A task operations (``tasks.TaskManager``), each for one principal."""

    async def send(self, request: SendMessageRequest, principal: str) -> Task: ...

    async def stream(
        self, request: SendMessageRequest, principal: str
    ) -> AsyncIterator[StreamResponse]: ...

    def get(self, task_id: str, principal: str, history_length: int | None = None) -> Task: ...

    async def cancel(self, task_id: str, principal: str) -> Task: ...

    def subscribe(self, task_id: str, principal: str) -> AsyncIterator[StreamResponse]: ...

    def set_push_config(
        self, config: TaskPushNotificationConfig, principal: str
    ) -> TaskPushNotificationConfig: ...

    def get_push_config(
        self, ref: TaskPushConfigRef, principal: str
    ) -> TaskPushNotificationConfig: ...

    def list_push_configs(
        self, request: ListTaskPushNotificationConfigsRequest, principal: str
    ) -> ListTaskPushNotificationConfigsResponse: ...

    def delete_push_config(self, ref: TaskPushConfigRef, principal: str) -> None: ...

    def list(self, request: ListTasksRequest, principal: str) -> ListTasksResponse: ...


def register_a2a_api(
    dispatcher: JsonRpcDispatcher,
    tasks: A2ATasks,
    local_card: Callable[[str | None], dict[str, Any] | None],
    anonymous: AnonymousCallers | None = None,
) -> None:
    """Register the A2A methods; ``local_card(tenant)`` returns one of this node's cards;
    ``anonymous`` admits callers without credentials (the node runs an open agent)."""

    def _principal(ctx: CallContext) -> str:
        if ctx.principal is not None:
            return ctx.principal
        assert anonymous is not None  # else the dispatcher refused the anonymous call
        return anonymous.principal(ctx.client)

    async def send_message(params: SendMessageRequest, ctx: CallContext) -> SendMessageResponse:
        task = await tasks.send(params, _principal(ctx))
        if is_reply_only(task) and task.status.message is not None:
            return SendMessageResponse(message=task.status.message)  # A2A 3.1.1: a Message
        return SendMessageResponse(task=task)

    async def send_streaming_message(
        params: SendMessageRequest, ctx: CallContext
    ) -> AsyncIterator[StreamResponse]:
        return await tasks.stream(params, _principal(ctx))

    async def get_task(params: GetTaskRequest, ctx: CallContext) -> Task:
        return tasks.get(params.id, _principal(ctx), params.history_length)

    async def list_tasks(params: ListTasksRequest, ctx: CallContext) -> dict[str, Any]:
        wire = tasks.list(params, _principal(ctx)).to_wire()
        if not params.include_artifacts:  # A2A 3.1.4: "the artifacts field MUST be omitted"
            for task in wire["tasks"]:
                task.pop("artifacts", None)
        return wire

    async def cancel_task(params: CancelTaskRequest, ctx: CallContext) -> Task:
        return await tasks.cancel(params.id, _principal(ctx))

    async def subscribe(
        params: SubscribeToTaskRequest, ctx: CallContext
    ) -> AsyncIterator[StreamResponse]:
        return tasks.subscribe(params.id, _principal(ctx))

    async def create_push_config(
        params: TaskPushNotificationConfig, ctx: CallContext
    ) -> TaskPushNotificationConfig:
        return tasks.set_push_config(params, _principal(ctx))

    async def get_push_config(
        params: TaskPushConfigRef, ctx: CallContext
    ) -> TaskPushNotificationConfig:
        return tasks.get_push_config(params, _principal(ctx))

    async def list_push_configs(
        params: ListTaskPushNotificationConfigsRequest, ctx: CallContext
    ) -> ListTaskPushNotificationConfigsResponse:
        return tasks.list_push_configs(params, _principal(ctx))

    async def delete_push_config(params: TaskPushConfigRef, ctx: CallContext) -> None:
        tasks.delete_push_config(params, _principal(ctx))

    async def extended_card(params: GetExtendedAgentCardRequest, _: CallContext) -> AgentCard:
        card = local_card(params.tenant)
        if card is None:
            raise ExtendedCardNotConfigured(
                "no agent card for this tenant on this node",
            )
        return AgentCard.model_validate(card)

    for name, model, handler, streaming in (
        ("SendMessage", SendMessageRequest, send_message, False),
        ("SendStreamingMessage", SendMessageRequest, send_streaming_message, True),
        ("GetTask", GetTaskRequest, get_task, False),
        ("ListTasks", ListTasksRequest, list_tasks, False),
        ("CancelTask", CancelTaskRequest, cancel_task, False),
        ("SubscribeToTask", SubscribeToTaskRequest, subscribe, True),
        ("CreateTaskPushNotificationConfig", TaskPushNotificationConfig, create_push_config, False),
        ("GetTaskPushNotificationConfig", TaskPushConfigRef, get_push_config, False),
        (
            "ListTaskPushNotificationConfigs",
            ListTaskPushNotificationConfigsRequest,
            list_push_configs,
            False,
        ),
        ("DeleteTaskPushNotificationConfig", TaskPushConfigRef, delete_push_config, False),
    ):
        dispatcher.register(
            name, model, handler, authenticated=anonymous is None, streaming=streaming
        )
    # the extended card is for authenticated callers (A2A 3.1.11)
    dispatcher.register(
        "GetExtendedAgentCard", GetExtendedAgentCardRequest, extended_card, authenticated=True
    )
