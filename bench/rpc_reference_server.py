"""Server B of bench/rpc.py: the a2a-sdk reference JSON-RPC server with an echo agent.

The SDK's own pieces, as its documentation wires them: ``create_jsonrpc_routes`` (starlette),
``DefaultRequestHandler`` with an ``InMemoryTaskStore``, and an ``AgentExecutor`` that enqueues
one completed Task whose artifact is the request text. Served by uvicorn, one worker, no access
log, on 127.0.0.1:PORT: ``python bench/rpc_reference_server.py PORT [uvicorn|prebound]``. When it
listens it prints ``READY <port>`` on stdout.

``uvicorn`` (default) lets uvicorn bind the port, as ``uvicorn.run(app, host=..., port=...)`` does.
``prebound`` binds ``socket.socket(AF_INET, SOCK_STREAM)`` first and hands it to uvicorn, as the
noosphere daemon does: that socket's ``proto`` is 0, so asyncio does not set TCP_NODELAY on the
accepted connections, and uvicorn's two writes per response (headers, body) meet Nagle plus the
client's delayed ACK (about 40 ms per keep-alive request on Linux). It exists to show that effect.
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
    mode = sys.argv[2] if len(sys.argv) > 2 else "uvicorn"
    if mode not in ("uvicorn", "prebound"):
        sys.exit(f"unknown bind mode {mode!r} (uvicorn or prebound)")
    sockets: list[socket.socket] | None = None
    if mode == "prebound" or port == 0:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        port = sock.getsockname()[1]
        if mode == "prebound":
            sockets = [sock]
        else:
            sock.close()  # uvicorn binds the port it was told (a tiny race with other programs)
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
        task = asyncio.create_task(server.serve(sockets=sockets))
        while not server.started and not task.done():
            await asyncio.sleep(0.02)
        print(f"READY {port}", flush=True)
        await task

    asyncio.run(serve())


if __name__ == "__main__":
    main()
