"""The ``reference`` server of bench/rpc.py: the a2a-sdk JSON-RPC server with an echo agent.

The SDK's own pieces, as its documentation wires them: ``create_jsonrpc_routes`` (starlette),
``DefaultRequestHandler`` with an ``InMemoryTaskStore``, and an ``AgentExecutor`` that enqueues
one completed Task whose artifact is the request text. Served by uvicorn, one worker, no access
log, on 127.0.0.1:PORT: ``python bench/rpc_reference_server.py [PORT]`` (0, the default, picks a
free port). uvicorn binds the port itself, as ``uvicorn.run(app, host=..., port=...)`` does (so
asyncio sets TCP_NODELAY on the accepted connections). When it listens it prints
``READY <port>`` on stdout.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import uuid

import uvicorn
from a2a.helpers.proto_helpers import new_text_artifact
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events.event_queue_v2 import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Task,
    TaskState,
    TaskStatus,
)
from starlette.applications import Starlette


class EchoExecutor(AgentExecutor):
    """Answers every message with a completed task holding the text as an artifact."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        message = context.message
        task = Task(
            id=context.task_id or str(uuid.uuid4()),
            context_id=context.context_id or str(uuid.uuid4()),
            status=TaskStatus(state=TaskState.TASK_STATE_COMPLETED),
            artifacts=[new_text_artifact(name="echo", text=context.get_user_input())],
            history=[message] if message is not None else [],
        )
        await event_queue.enqueue_event(task)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError("echo tasks end at once")


def build_app(url: str) -> Starlette:
    card = AgentCard(
        name="Echo",
        description="Echoes its input (bench/rpc.py reference server).",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        capabilities=AgentCapabilities(streaming=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="echo", name="Echo", description="Echo the input.", tags=["bench"])],
    )
    handler = DefaultRequestHandler(
        agent_executor=EchoExecutor(), task_store=InMemoryTaskStore(), agent_card=card
    )
    return Starlette(routes=create_jsonrpc_routes(handler, rpc_url="/"))


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    if port == 0:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        # uvicorn binds the port it is told (a tiny race with other programs)
    logging.basicConfig(level=logging.WARNING)
    config = uvicorn.Config(
        build_app(f"http://127.0.0.1:{port}/"),
        host="127.0.0.1",
        port=port,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        workers=1,
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.02)
        print(f"READY {port}", flush=True)
        await task

    asyncio.run(serve())


if __name__ == "__main__":
    main()
