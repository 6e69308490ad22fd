"""A node's A2A server without the node, for the A2A unit tests: a real task manager, the
JSON-RPC dispatcher with the A2A methods, and the HTTP+JSON binding, served in-process."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route

from noosphere.agents.turn import Turn, TurnResult, TurnSink
from noosphere.node.a2a_api import register_a2a_api
from noosphere.node.a2a_rest import RestBinding
from noosphere.node.access import AnonymousCallers
from noosphere.node.auth import RequestAuthenticator
from noosphere.node.metrics import NodeMetrics
from noosphere.node.rpc import JsonRpcDispatcher
from noosphere.node.tasks import TaskManager
from noosphere.protocol.a2a import Artifact, Part, TaskState

TOKEN = "operator-token-" + "y" * 30
BEARER = {"Authorization": f"Bearer {TOKEN}"}


class RecordingAgent:
    """Answers each turn with an artifact (the text upper-cased); records the turns' principals.
    A message "ask" asks for input first; "reply" is answered with a message alone."""

    input_modes: frozenset[str] = frozenset()
    output_modes: frozenset[str] = frozenset()

    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id
        self.principals: list[str] = []

    async def run_turn(self, turn: Turn, sink: TurnSink) -> TurnResult:
        self.principals.append(turn.principal)
        if turn.message.text == "ask" and not turn.history:
            return TurnResult(TaskState.INPUT_REQUIRED, "what else?")
        if turn.message.text == "reply":
            return TurnResult(TaskState.COMPLETED, "just this", reply_only=True)
        await sink.progress("working on it")
        await sink.artifact(
            Artifact(artifact_id="a1", parts=[Part.of_text(turn.message.text.upper())])
        )
        return TurnResult(TaskState.COMPLETED, f"done: {turn.message.text}")

    def tool_schemas(self) -> list[dict[str, object]]:
        return []

    def close(self) -> None:
        pass


def a2a_app(manager: TaskManager, anonymous: AnonymousCallers | None) -> Starlette:
    dispatcher = JsonRpcDispatcher(
        NodeMetrics(),
        max_body_bytes=256 * 1024,
        max_batch=10,
        authenticator=RequestAuthenticator(TOKEN),
    )
    register_a2a_api(dispatcher, manager, lambda tenant: None, anonymous)
    return Starlette(
        routes=[
            Route("/", dispatcher.handle_http, methods=["POST"]),
            *RestBinding(dispatcher, max_body_bytes=256 * 1024).routes(),
        ]
    )
