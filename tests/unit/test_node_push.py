"""Push notifications against a real local webhook (starlette under uvicorn on 127.0.0.1): what a
receiver gets from the task manager (events in order, token and Authorization headers), retries
on 5xx/429 only, ordering per webhook, shutdown, and URLs httpx refuses."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fake_resolver import Rebinder
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from threaded_server import serve_app

from noosphere.agents.turn import Turn, TurnResult, TurnSink
from noosphere.node.metrics import NodeMetrics
from noosphere.node.push import TOKEN_HEADER, PushNotifier
from noosphere.node.store import NodeStore
from noosphere.node.tasks import TaskManager
from noosphere.protocol.a2a import (
    Artifact,
    AuthenticationInfo,
    ListTaskPushNotificationConfigsRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    TaskPushConfigRef,
    TaskPushNotificationConfig,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)
from noosphere.protocol.rpcauth import LOCAL_PRINCIPAL

# ---- the webhook receiver --------------------------------------------------------------------


@dataclass
class Hit:
    name: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Receiver:
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    hits: list[Hit] = field(default_factory=list)
    # Per webhook name: status codes to answer, in order (then 200), and optional delays.
    script: dict[str, list[int]] = field(default_factory=dict)
    delay_s: dict[str, float] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"{self.base_url}/hook/{name}"

    def answer(self, name: str, *statuses: int) -> None:
        with self.lock:
            self.script[name] = list(statuses)

    def received(self, name: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.name == name]


def make_app(state: Receiver) -> Starlette:
    async def hook(request: Request) -> Response:
        name = request.path_params["name"]
        body = json.loads(await request.body())
        with state.lock:
            state.hits.append(Hit(name, dict(request.headers), body))
            script = state.script.get(name)
            status = script.pop(0) if script else 200
            delay = state.delay_s.get(name, 0.0)
        if delay:
            await asyncio.sleep(delay)
        return PlainTextResponse("ok" if status < 400 else "no", status_code=status)

    return Starlette(routes=[Route("/hook/{name}", hook, methods=["POST"])])


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    with serve_app(make_app(state), "webhook receiver") as url:
        state.base_url = url
        yield state


@pytest.fixture
def hook() -> str:
    """A webhook name of its own for each test (the receiver is shared by the module)."""
    return uuid.uuid4().hex


# ---- the node side ---------------------------------------------------------------------------


class TestAgent:
    """What every test agent shares: the media types it reads and writes."""

    __test__ = False
    input_modes: frozenset[str] = frozenset()
    output_modes: frozenset[str] = frozenset()


class ReportingAgent(TestAgent):
    """Progress, one artifact, completed."""

    agent_id = "reporter"

    async def run_turn(self, turn: Turn, sink: TurnSink) -> TurnResult:
        await sink.progress("step 1")
        await sink.artifact(Artifact(artifact_id="out", parts=[Part.of_text("result")]))
        return TurnResult(TaskState.COMPLETED, "done")


class HoldAgent(TestAgent):
    """Waits until released, so a push config can be added while the task runs."""

    agent_id = "hold"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def run_turn(self, turn: Turn, sink: TurnSink) -> TurnResult:
        self.started.set()
        await self.release.wait()
        await sink.progress("resumed")
        return TurnResult(TaskState.COMPLETED, "held and done")


@pytest.fixture
async def push(metrics: NodeMetrics) -> AsyncIterator[PushNotifier]:
    notifier = PushNotifier(metrics, attempts=3, backoff_s=0.01, timeout_s=2.0)
    yield notifier
    await notifier.aclose(grace_s=1.0)


def outcome(metrics: NodeMetrics, name: str) -> float:
    value = metrics.registry.get_sample_value(
        "noosphere_push_notifications_total", {"outcome": name}
    )
    return 0.0 if value is None else value


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def describe(body: dict[str, Any]) -> str:
    event = StreamResponse.model_validate(body)
    if event.status_update is not None:
        message = event.status_update.status.message
        return f"status:{event.status_update.status.state.short}:{message.text if message else ''}"
    assert event.artifact_update is not None
    return f"artifact:{event.artifact_update.artifact.artifact_id}"


def status_event(n: int) -> StreamResponse:
    return StreamResponse(
        status_update=TaskStatusUpdateEvent(
            task_id="t1",
            context_id="c1",
            status=TaskStatus(state=TaskState.WORKING, timestamp=f"2024-01-01T00:00:0{n}Z"),
        )
    )


def user_request(text: str, **configuration: Any) -> SendMessageRequest:
    return SendMessageRequest(
        message=Message(message_id=uuid.uuid4().hex, role=Role.USER, parts=[Part.of_text(text)]),
        configuration=SendMessageConfiguration(**configuration),
    )


# ---- through the task manager ----------------------------------------------------------------


async def test_send_with_push_config_delivers_every_event_in_order(
    receiver: Receiver, hook: str, store: NodeStore, metrics: NodeMetrics, push: PushNotifier
) -> None:
    manager = TaskManager(store, {"reporter": ReportingAgent()}, metrics, push)
    config = TaskPushNotificationConfig(
        url=receiver.url(hook),
        token="tok-123",
        authentication=AuthenticationInfo(scheme="Bearer", credentials="secret-cred"),
    )
    task = await manager.send(
        user_request("go", task_push_notification_config=config), LOCAL_PRINCIPAL
    )
    assert task.status.state is TaskState.COMPLETED
    await eventually(lambda: outcome(metrics, "delivered") == 4)

    hits = receiver.received(hook)
    assert [describe(h.body) for h in hits] == [
        "status:working:",
        "status:working:step 1",
        "artifact:out",
        "status:completed:done",
    ]
    for hit in hits:
        assert hit.headers[TOKEN_HEADER.lower()] == "tok-123"
        assert hit.headers["authorization"] == "Bearer secret-cred"
        assert hit.headers["content-type"] == "application/json"
        update = hit.body.get("statusUpdate") or hit.body["artifactUpdate"]
        assert update["taskId"] == task.id and update["contextId"] == task.context_id
    assert outcome(metrics, "delivered") == 4
    assert outcome(metrics, "retried") == 0 and outcome(metrics, "failed") == 0

    listing = manager.list_push_configs(
        ListTaskPushNotificationConfigsRequest(task_id=task.id), LOCAL_PRINCIPAL
    )
    (stored,) = listing.configs
    assert stored.url == receiver.url(hook) and stored.task_id == task.id and stored.id
    await manager.close()


async def test_set_push_config_on_running_task(
    receiver: Receiver, hook: str, store: NodeStore, metrics: NodeMetrics, push: PushNotifier
) -> None:
    agent = HoldAgent()
    manager = TaskManager(store, {"hold": agent}, metrics, push)
    task = await manager.send(user_request("wait", return_immediately=True), LOCAL_PRINCIPAL)
    await asyncio.wait_for(agent.started.wait(), 2)
    manager.set_push_config(
        TaskPushNotificationConfig(task_id=task.id, url=receiver.url(hook)), LOCAL_PRINCIPAL
    )
    agent.release.set()
    await eventually(lambda: len(receiver.received(hook)) == 2)
    hits = receiver.received(hook)
    assert [describe(h.body) for h in hits] == [
        "status:working:resumed",
        "status:completed:held and done",
    ]
    assert TOKEN_HEADER.lower() not in hits[0].headers
    assert "authorization" not in hits[0].headers
    await manager.close()


async def test_deleted_push_config_gets_nothing_more(
    receiver: Receiver, hook: str, store: NodeStore, metrics: NodeMetrics, push: PushNotifier
) -> None:
    agent = HoldAgent()
    manager = TaskManager(store, {"hold": agent}, metrics, push)
    config = TaskPushNotificationConfig(url=receiver.url(hook), id="only")
    task = await manager.send(
        user_request("x", return_immediately=True, task_push_notification_config=config),
        LOCAL_PRINCIPAL,
    )
    await asyncio.wait_for(agent.started.wait(), 2)
    await eventually(lambda: len(receiver.received(hook)) == 1)  # working
    manager.delete_push_config(TaskPushConfigRef(task_id=task.id, id="only"), LOCAL_PRINCIPAL)
    agent.release.set()
    await eventually(
        lambda: manager.get(task.id, LOCAL_PRINCIPAL).status.state is TaskState.COMPLETED
    )
    await asyncio.sleep(0.05)
    assert len(receiver.received(hook)) == 1
    await manager.close()


# ---- the notifier itself ---------------------------------------------------------------------


async def test_server_error_is_retried(
    receiver: Receiver, hook: str, metrics: NodeMetrics, push: PushNotifier
) -> None:
    receiver.answer(hook, 500)
    push.deliver(
        TaskPushNotificationConfig(task_id="t1", id="c", url=receiver.url(hook)),
        status_event(1),
        trusted=True,
    )
    await eventually(lambda: outcome(metrics, "delivered") == 1)
    hits = receiver.received(hook)
    assert len(hits) == 2 and hits[0].body == hits[1].body
    assert outcome(metrics, "retried") == 1 and outcome(metrics, "failed") == 0


async def test_too_many_requests_is_retried(
    receiver: Receiver, hook: str, metrics: NodeMetrics, push: PushNotifier
) -> None:
    receiver.answer(hook, 429, 503)
    push.deliver(
        TaskPushNotificationConfig(task_id="t1", id="c", url=receiver.url(hook)),
        status_event(1),
        trusted=True,
    )
    await eventually(lambda: outcome(metrics, "delivered") == 1)
    assert len(receiver.received(hook)) == 3 and outcome(metrics, "retried") == 2


async def test_client_error_is_not_retried(
    receiver: Receiver, hook: str, metrics: NodeMetrics, push: PushNotifier
) -> None:
    receiver.answer(hook, 400)
    push.deliver(
        TaskPushNotificationConfig(task_id="t1", id="c", url=receiver.url(hook)),
        status_event(1),
        trusted=True,
    )
    await eventually(lambda: outcome(metrics, "failed") == 1)
    await asyncio.sleep(0.05)
    assert len(receiver.received(hook)) == 1
    assert outcome(metrics, "retried") == 0 and outcome(metrics, "delivered") == 0


async def test_gives_up_after_the_last_attempt(
    receiver: Receiver, hook: str, metrics: NodeMetrics, push: PushNotifier
) -> None:
    receiver.answer(hook, 502, 502, 502, 502)
    push.deliver(
        TaskPushNotificationConfig(task_id="t1", id="c", url=receiver.url(hook)),
        status_event(1),
        trusted=True,
    )
    await eventually(lambda: outcome(metrics, "failed") == 1)
    assert len(receiver.received(hook)) == 3  # attempts=3
    assert outcome(metrics, "retried") == 2 and outcome(metrics, "delivered") == 0


async def test_retry_keeps_the_order_of_one_webhook(
    receiver: Receiver, hook: str, metrics: NodeMetrics, push: PushNotifier
) -> None:
    receiver.answer(hook, 500)
    config = TaskPushNotificationConfig(task_id="t1", id="c", url=receiver.url(hook))
    for n in range(1, 4):
        push.deliver(config, status_event(n), trusted=True)
    await eventually(lambda: outcome(metrics, "delivered") == 3)
    stamps = [h.body["statusUpdate"]["status"]["timestamp"][-2] for h in receiver.received(hook)]
    assert stamps == ["1", "1", "2", "3"]


async def test_unreachable_and_refused_urls_fail_quietly(
    metrics: NodeMetrics, push: PushNotifier
) -> None:
    """Regression: a URL httpx refuses (port out of range) raised out of the background job."""
    with socket.socket() as bound:  # bound, never listening: connections are refused, and
        bound.bind(("127.0.0.1", 0))  # no other process can take the port meanwhile
        dead_port = bound.getsockname()[1]
        push.deliver(
            TaskPushNotificationConfig(task_id="t1", id="a", url=f"http://127.0.0.1:{dead_port}/x"),
            status_event(1),
            trusted=True,
        )
        push.deliver(
            TaskPushNotificationConfig(task_id="t1", id="b", url="http://127.0.0.1:99999/x"),
            status_event(1),
            trusted=True,
        )
        await eventually(lambda: outcome(metrics, "failed") == 2, timeout=10)
    assert outcome(metrics, "retried") == 2  # the connection error is retried, the bad URL not
    await eventually(lambda: not push._pending)  # done callbacks run a loop turn later


async def test_aclose_cancels_slow_deliveries_and_drops_later_ones(
    receiver: Receiver, hook: str, metrics: NodeMetrics
) -> None:
    notifier = PushNotifier(metrics, attempts=1, timeout_s=5.0)
    receiver.delay_s[hook] = 0.5
    notifier.deliver(
        TaskPushNotificationConfig(task_id="t1", id="c", url=receiver.url(hook)),
        status_event(1),
        trusted=True,
    )
    await eventually(lambda: len(receiver.received(hook)) == 1)
    started = time.monotonic()
    await notifier.aclose(grace_s=0.05)
    assert time.monotonic() - started < 1
    assert not notifier._pending
    notifier.deliver(
        TaskPushNotificationConfig(task_id="t1", id="c", url=receiver.url(hook)), status_event(2)
    )
    assert outcome(metrics, "failed") == 1 and not notifier._pending


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::127.0.0.1]/hook",  # IPv4-compatible
        "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped
        "http://[64:ff9b::7f00:1]/hook",  # NAT64 well-known prefix
        "http://[64:ff9b:1::a00:1]/hook",  # NAT64 local-use prefix
        "http://[2002:7f00:1::1]/hook",  # 6to4 of 127.0.0.1
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",  # Teredo, client 127.0.0.1
        "http://[fe80::1]/hook",
        "http://[fd00::1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_remote_peers_cannot_aim_webhooks_at_private_addresses(
    metrics: NodeMetrics, url: str
) -> None:
    notifier = PushNotifier(metrics)
    with pytest.raises(ValueError, match="only make this node connect to public addresses"):
        notifier.check_target(url, trusted=False)
    notifier.check_target(url, trusted=True)  # the operator may
    PushNotifier(metrics, allow_private_targets=True).check_target(url, trusted=False)


def test_unresolvable_webhook_host_is_refused(metrics: NodeMetrics) -> None:
    with pytest.raises(ValueError, match="does not resolve"):
        PushNotifier(metrics).check_target("http://no-such-host.invalid/x", trusted=False)


# ---- DNS rebinding: the host is resolved and checked again at every delivery ------------------


async def test_webhook_rebound_to_loopback_after_registration_is_not_called(
    receiver: Receiver,
    hook: str,
    store: NodeStore,
    metrics: NodeMetrics,
    push: PushNotifier,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The attack: a peer registers a webhook whose name answers a public address while it is
    checked, then 127.0.0.1 (where the receiver, standing for an internal service, listens)."""
    port = int(receiver.base_url.rsplit(":", 1)[1])
    resolver = Rebinder({"hooks.rebind.test": ["93.184.216.34", "127.0.0.1"]})
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    peer = "12D3KooWPeerThatRegistersTheWebhook"
    manager = TaskManager(store, {"hold": (agent := HoldAgent())}, metrics, push)
    task = await manager.send(user_request("wait", return_immediately=True), peer)
    await asyncio.wait_for(agent.started.wait(), 2)
    manager.set_push_config(  # checked now: the name answers a public address
        TaskPushNotificationConfig(
            task_id=task.id, url=f"http://hooks.rebind.test:{port}/hook/{hook}"
        ),
        peer,
    )
    agent.release.set()
    await eventually(lambda: outcome(metrics, "failed") == 2)  # two events, both refused
    assert receiver.received(hook) == []
    assert outcome(metrics, "retried") == 0 and outcome(metrics, "delivered") == 0
    assert resolver.asked.count("hooks.rebind.test") >= 3  # registration + each delivery
    await manager.close()


async def test_operator_webhook_on_loopback_is_still_delivered(
    receiver: Receiver, hook: str, store: NodeStore, metrics: NodeMetrics, push: PushNotifier
) -> None:
    """Honest traffic: the operator's own task, its loopback webhook, no egress rule."""
    manager = TaskManager(store, {"reporter": ReportingAgent()}, metrics, push)
    config = TaskPushNotificationConfig(url=receiver.url(hook))
    await manager.send(user_request("go", task_push_notification_config=config), LOCAL_PRINCIPAL)
    await eventually(lambda: outcome(metrics, "delivered") == 4)
    assert len(receiver.received(hook)) == 4
    await manager.close()


async def test_remote_webhook_delivery_connects_to_the_checked_address(
    receiver: Receiver, hook: str, metrics: NodeMetrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Honest traffic for a remote peer's webhook: resolved at delivery, connected to exactly
    that address, Host header with the name. (Loopback stands for a public receiver here: the
    notifier is told to allow it, as ``push_private_targets`` does.)"""
    port = int(receiver.base_url.rsplit(":", 1)[1])
    monkeypatch.setattr(socket, "getaddrinfo", Rebinder({"hooks.ok.test": ["127.0.0.1"]}))
    notifier = PushNotifier(metrics, attempts=1, allow_private_targets=True)
    notifier.deliver(
        TaskPushNotificationConfig(
            task_id="t1", id="c", url=f"http://hooks.ok.test:{port}/hook/{hook}"
        ),
        status_event(1),
    )
    await eventually(lambda: outcome(metrics, "delivered") == 1)
    (hit,) = receiver.received(hook)
    assert hit.headers["host"] == f"hooks.ok.test:{port}"
    await notifier.aclose()
