"""Any A2A client, any binding: the official ``a2a-sdk`` 1.3 client, with no token and no
noosphere code, runs tasks on an open example agent (examples/agents/text-stats.json, ``access:
anyone``) over JSON-RPC and over HTTP+JSON, plain and streamed. Adversarial: the same anonymous
client cannot task the node's peers-only agent, nor see the operator's tasks."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import jwt
import pytest
from a2a.client import A2ACardResolver, Client, ClientConfig, create_client
from a2a.client.errors import A2AClientError
from a2a.types import AgentCard as SdkAgentCard
from a2a.types import GetTaskRequest, SendMessageRequest, TaskState
from a2a.types import Message as SdkMessage
from a2a.types import Part as SdkPart
from a2a.types import Role as SdkRole
from a2a.utils.errors import TaskNotFoundError
from a2a.utils.signing import create_signature_verifier

from noosphere.node.launcher import LocalNode, spawn_node
from noosphere.protocol import ErrorCode, b64url_encode
from noosphere.protocol.identity import public_key_from_peer_id

from .support import EXAMPLES

pytestmark = pytest.mark.integration

OPEN_AGENT = "readability-auditor"  # examples/agents/text-stats.json
PEERS_AGENT = "exact-calculator"  # examples/agents/calculator.yaml
TEXT = "How readable is this text?\nThe cat sat on the mat. It was a sunny day, and the cat slept."
BINDINGS = ("JSONRPC", "HTTP+JSON")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    started = spawn_node(
        tmp_path_factory.mktemp("open") / "node",
        agents=[EXAMPLES / "text-stats.json", EXAMPLES / "calculator.yaml"],
    )
    try:
        yield started
    finally:
        started.kill()


async def _card(node: LocalNode, agent_id: str) -> SdkAgentCard:
    """The agent's card, its signature checked by the SDK's verifier (the open card's empty
    security requirement is part of what is signed)."""

    def key_provider(kid: str | None, jku: str | None) -> jwt.PyJWK:
        assert kid == node.peer_id
        public = public_key_from_peer_id(kid)
        return jwt.PyJWK({"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(public)})

    verifier = create_signature_verifier(key_provider=key_provider, algorithms=["EdDSA"])
    async with httpx.AsyncClient() as http:
        return await A2ACardResolver(http, node.rpc_url).get_agent_card(
            relative_card_path=f"/agents/{agent_id}/.well-known/agent-card.json",
            signature_verifier=verifier,
        )


@contextlib.asynccontextmanager
async def anonymous_client(
    card: SdkAgentCard, binding: str, *, streaming: bool, paths: list[str]
) -> AsyncIterator[Client]:
    """A plain SDK client without credentials that talks ``binding`` only; ``paths`` records
    the URL paths it requests."""

    async def note(request: httpx.Request) -> None:
        assert "authorization" not in request.headers
        paths.append(request.url.path)

    async with httpx.AsyncClient(timeout=180.0, event_hooks={"request": [note]}) as http:
        config = ClientConfig(
            httpx_client=http, streaming=streaming, supported_protocol_bindings=[binding]
        )
        client = await create_client(card, client_config=config)
        async with client:
            yield client


def _request(text: str) -> SendMessageRequest:
    message = SdkMessage(
        message_id=str(uuid.uuid4()), role=SdkRole.ROLE_USER, parts=[SdkPart(text=text)]
    )
    return SendMessageRequest(message=message)


async def test_open_card_says_anyone_may_call(node: LocalNode) -> None:
    card = await _card(node, OPEN_AGENT)
    assert [i.protocol_binding for i in card.supported_interfaces] == list(BINDINGS)
    assert len(card.security_requirements[0].schemes) == 0  # the empty requirement: no auth
    closed = await _card(node, PEERS_AGENT)
    assert all(len(r.schemes) == 1 for r in closed.security_requirements)


@pytest.mark.parametrize("streaming", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("binding", BINDINGS)
async def test_sdk_client_without_token_runs_a_task(
    node: LocalNode, binding: str, streaming: bool
) -> None:
    card = await _card(node, OPEN_AGENT)
    paths: list[str] = []
    async with anonymous_client(card, binding, streaming=streaming, paths=paths) as client:
        events = [e async for e in client.send_message(_request(TEXT))]
        kinds = [e.WhichOneof("payload") for e in events]
        if streaming:
            assert kinds[0] == "task" and "status_update" in kinds[1:], kinds
            state = events[-1].status_update.status.state
            task_id = events[0].task.id
        else:
            assert kinds == ["task"], kinds
            state = events[0].task.status.state
            task_id = events[0].task.id
        assert state == TaskState.TASK_STATE_COMPLETED
        fetched = await client.get_task(GetTaskRequest(id=task_id))
        assert fetched.status.state == TaskState.TASK_STATE_COMPLETED
        assert fetched.artifacts  # the readability report
    verb = "stream" if streaming else "send"
    expected = "/" if binding == "JSONRPC" else f"/{OPEN_AGENT}/message:{verb}"
    assert paths[0] == expected, paths


@pytest.mark.parametrize("binding", BINDINGS)
async def test_anonymous_client_cannot_task_a_peers_only_agent(
    node: LocalNode, binding: str
) -> None:
    card = await _card(node, PEERS_AGENT)
    async with anonymous_client(card, binding, streaming=False, paths=[]) as client:
        with pytest.raises(A2AClientError) as excinfo:
            async for _ in client.send_message(_request("what is 2+2?")):
                pass
    text = str(excinfo.value)
    assert str(int(ErrorCode.UNAUTHORIZED)) in text or "401" in text or "Unauthorized" in text


async def test_anonymous_client_cannot_see_the_operators_task(node: LocalNode) -> None:
    card = await _card(node, OPEN_AGENT)
    async with httpx.AsyncClient(
        timeout=180.0, headers={"Authorization": f"Bearer {node.token}"}
    ) as http:
        operator = await create_client(card, client_config=ClientConfig(httpx_client=http))
        async with operator:
            events = [e async for e in operator.send_message(_request(TEXT))]
    own_task = events[0].task.id
    for binding in BINDINGS:
        async with anonymous_client(card, binding, streaming=False, paths=[]) as client:
            with pytest.raises(TaskNotFoundError):
                await client.get_task(GetTaskRequest(id=own_task))
