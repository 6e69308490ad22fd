"""The ``noosphere task`` commands (Execute): send a task to an agent and follow it, get, list and
cancel tasks. Talking to your own node uses its operator token (``HOME/rpc.token``); sending to
another node's agent (``--to CARD``) signs each request with your node's key, so the remote node
knows which node asks and shows it only that node's tasks."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table

if TYPE_CHECKING:
    import httpx

from .kit import (
    DEFAULT_RPC,
    HomeOption,
    JsonOption,
    RpcOption,
    TokenOption,
    fail,
    node_client,
    node_errors,
    operator_auth,
    out,
    print_json,
)

T = TypeVar("T")

task_app = typer.Typer(
    help="Send tasks to agents (A2A JSON-RPC) and follow, list or cancel them.",
    no_args_is_help=True,
)

ToOption = Annotated[
    str | None,
    typer.Option(
        "--to",
        help="Send to this agent's card (PEER_ID/AGENT_ID or a unique prefix) as found by the"
        " --rpc node, instead of to the --rpc node itself.",
    ),
]
AgentOption = Annotated[
    str | None,
    typer.Option("--agent", help="Agent id on the target node (needed when it runs several)."),
]


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    tenant: str | None
    auth: httpx.Auth


def _resolve_target(
    rpc: str, home: Path | None, to: str | None, agent: str | None, token: str | None
) -> Target:
    """Where to send and how to authenticate: own node by token, another node by signature."""
    from noosphere.node.auth import PeerAuth
    from noosphere.node.keystore import KeyFileError, load_or_create_node_key
    from noosphere.protocol import AgentCard

    home = home.expanduser() if home is not None else None
    if to is None:
        return Target(rpc.rstrip("/"), agent, operator_auth(home, token))
    if home is None or not (home / "node.key").exists():
        fail("--to signs requests with your node's key: pass --home DIR of a node that has run")
    try:
        key, _ = load_or_create_node_key(home)
    except KeyFileError as exc:
        fail(str(exc))
    with node_client(rpc) as client:
        entry = client.card(to)
    card = AgentCard.model_validate(entry.card)
    if not card.supported_interfaces:
        fail(f"card {entry.card_id} advertises no JSON-RPC interface")
    interface = card.supported_interfaces[0]
    return Target(interface.url.rstrip("/"), agent or interface.tenant, PeerAuth(key))


def _run(target: Target, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(client)`` with an A2A client for ``target``; errors become one-line exits."""
    import asyncio

    from noosphere.node.a2a_client import A2AClient

    async def main() -> T:
        async with A2AClient(target.url, auth=target.auth, tenant=target.tenant) as client:
            return await work(client)

    try:
        with node_errors():
            return asyncio.run(main())
    except KeyboardInterrupt:
        fail("interrupted (the task keeps running on the agent's node)", 130)


def _read_data(path: Path | None) -> list[Any]:
    """Parts for --file: JSON becomes a data part, anything else a file part."""
    from noosphere.protocol.a2a import Part

    if path is None:
        return []
    try:
        content = path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    if path.suffix.lower() == ".json":
        try:
            return [Part.of_data(json.loads(content))]
        except ValueError as exc:
            fail(f"{path} is not valid JSON: {exc}")
    media = {".csv": "text/csv", ".txt": "text/plain", ".md": "text/markdown"}.get(
        path.suffix.lower(), "application/octet-stream"
    )
    return [Part.of_bytes(content, filename=path.name, media_type=media)]


def _sealed(message: Any, policy: str, authority: Path | None) -> Any:
    """The message with its parts sealed under ``policy`` (bound to its message id)."""
    from noosphere.abe.authority import AuthorityError, load_public_key
    from noosphere.abe.fame import AbeError
    from noosphere.abe.policy import PolicyError
    from noosphere.abe.sealed import seal_parts

    if authority is None:
        fail("--policy needs --authority (an authority home or public key file)")
    try:
        public = load_public_key(authority.expanduser())
        sealed = seal_parts(public, policy, message.parts, message.message_id)
    except (AuthorityError, PolicyError, AbeError) as exc:
        fail(str(exc))
    return message.model_copy(update={"parts": [sealed]})


def _part_lines(parts: list[Any]) -> list[str]:
    """What an artifact's parts show: texts as they are, data as indented JSON (capped)."""
    lines = []
    for part in parts:
        if part.text is not None:
            lines.append(part.text)
        elif part.data is not None:
            lines.append(json.dumps(part.data, indent=2)[:4000])
    return lines


def task_lines(task: Any) -> list[str]:
    """The lines a person wants to see: state, agent reply, artifact texts."""
    lines = [f"task {task.id}  [bold]{task.status.state.short}[/]  context {task.context_id}"]
    for artifact in task.artifacts:
        lines.append(f"[dim]artifact {artifact.name or artifact.artifact_id}:[/]")
        lines.extend(_part_lines(artifact.parts))
    if task.status.message is not None:
        lines.append(f"[dim]agent:[/] {task.status.message.text}")
    if task.status.state.interrupted:
        lines.append(
            f"[yellow]the agent needs more input:[/] noosphere task send --task {task.id} "
            '"<your answer>" (same --rpc/--to)'
        )
    return lines


@task_app.command("send")
def task_send(
    text: Annotated[str, typer.Argument(help="What you ask the agent, in plain words.")],
    rpc: RpcOption = DEFAULT_RPC,
    home: HomeOption = None,
    to: ToOption = None,
    agent: AgentOption = None,
    token: TokenOption = None,
    stream: Annotated[
        bool, typer.Option("--stream", help="Show progress as it happens (SSE).")
    ] = False,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Attach a file (.json as data, others as a file part)."),
    ] = None,
    context: Annotated[
        str | None, typer.Option("--context", help="Continue a conversation (contextId).")
    ] = None,
    task_id: Annotated[
        str | None, typer.Option("--task", help="Answer a task that asked for input.")
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Return as soon as the task is accepted.")
    ] = False,
    policy: Annotated[
        str | None,
        typer.Option(
            "--policy",
            help='Seal the text and file under an attribute policy, e.g. "(org:acme and'
            ' role:analyst) or clearance:secret": only agents holding satisfying keys read it.',
        ),
    ] = None,
    authority: Annotated[
        Path | None,
        typer.Option(
            "--authority",
            envvar="NOOSPHERE_ABE_AUTHORITY",
            help="Attribute authority home or public key file (for --policy).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Send a task to an agent and print its result (or stream its progress)."""
    from noosphere.node.a2a_client import text_message
    from noosphere.protocol.a2a import Task

    target = _resolve_target(rpc, home, to, agent, token)
    message = text_message(text, context_id=context, task_id=task_id, extra_parts=_read_data(file))
    if policy is not None:
        message = _sealed(message, policy, authority)

    if stream:

        async def follow(client: Any) -> None:
            async for event in client.stream(message):
                if as_json:
                    print_json(event, indent=None)
                    continue
                if event.task is not None:
                    out.print(f"[dim]accepted task {event.task.id}[/]")
                elif event.status_update is not None:
                    status = event.status_update.status
                    if status.message is not None:
                        line = status.message.text
                        out.print(f"[cyan]{status.state.short:>14}[/] {line}", highlight=False)
                elif event.artifact_update is not None:
                    artifact = event.artifact_update.artifact
                    out.print(f"[green]{'artifact':>14}[/] {artifact.name or ''}")
                    for line in _part_lines(artifact.parts):
                        out.print(line, highlight=False)

        _run(target, follow)
        return

    result = _run(target, lambda c: c.send(message, return_immediately=no_wait))
    if as_json:
        return print_json(result)
    if isinstance(result, Task):
        for line in task_lines(result):
            out.print(line, highlight=False)
        if result.status.state.short in ("failed", "rejected", "canceled"):
            raise typer.Exit(2)
    else:
        out.print(result.text, highlight=False)


@task_app.command("get")
def task_get(
    task_id: Annotated[str, typer.Argument(help="Task id.")],
    rpc: RpcOption = DEFAULT_RPC,
    home: HomeOption = None,
    to: ToOption = None,
    agent: AgentOption = None,
    token: TokenOption = None,
    history: Annotated[
        int | None, typer.Option("--history", help="At most this many messages of history.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show a task: state, agent reply and artifacts."""
    target = _resolve_target(rpc, home, to, agent, token)
    task = _run(target, lambda c: c.get_task(task_id, history_length=history))
    if as_json:
        return print_json(task)
    for line in task_lines(task):
        out.print(line, highlight=False)


@task_app.command("cancel")
def task_cancel(
    task_id: Annotated[str, typer.Argument(help="Task id.")],
    rpc: RpcOption = DEFAULT_RPC,
    home: HomeOption = None,
    to: ToOption = None,
    agent: AgentOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a task that is still running or waiting for input."""
    target = _resolve_target(rpc, home, to, agent, token)
    task = _run(target, lambda c: c.cancel(task_id))
    if as_json:
        return print_json(task)
    out.print(f"task {task.id} {task.status.state.short}")


@task_app.command("list")
def task_list(
    rpc: RpcOption = DEFAULT_RPC,
    home: HomeOption = None,
    to: ToOption = None,
    agent: AgentOption = None,
    token: TokenOption = None,
    context: Annotated[str | None, typer.Option("--context", help="Only this context.")] = None,
    state: Annotated[
        str | None,
        typer.Option("--state", help="Only this state (completed, failed, input-required, ...)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """List tasks, most recently updated first."""
    from noosphere.protocol.a2a import ListTasksRequest, TaskState

    status = None
    if state is not None:
        matches = [s for s in TaskState if state.lower() in (s.short, s.value.lower())]
        if not matches:
            fail(f"unknown state {state!r}; one of: " + ", ".join(s.short for s in TaskState))
        status = matches[0]
    target = _resolve_target(rpc, home, to, agent, token)
    request = ListTasksRequest(context_id=context, status=status, page_size=limit)
    page = _run(target, lambda c: c.list_tasks(request))
    if as_json:
        return print_json(page)
    table = Table("task id", "state", "agent", "updated", "reply")
    for task in page.tasks:
        reply = task.status.message.text if task.status.message else ""
        table.add_row(
            task.id,
            task.status.state.short,
            str((task.metadata or {}).get("agentId", "")),
            task.status.timestamp or "",
            reply.splitlines()[0][:60] if reply else "",
        )
    out.print(table)
    if page.total_size > len(page.tasks):
        out.print(f"[dim]{len(page.tasks)} of {page.total_size} tasks[/]")


@task_app.command("feedback")
def task_feedback(
    task_id: Annotated[str, typer.Argument(help="The task to rate.")],
    rating: Annotated[
        float, typer.Option("--rating", min=0.0, max=1.0, help="0 = useless ... 1 = perfect.")
    ],
    rpc: RpcOption = DEFAULT_RPC,
    home: HomeOption = None,
    to: ToOption = None,
    agent: AgentOption = None,
    token: TokenOption = None,
    comment: Annotated[str | None, typer.Option("--comment", max=280)] = None,
    as_json: JsonOption = False,
) -> None:
    """Rate a finished task: your node signs the rating around the agent's receipt, records it
    and gossips it, so every node's trust in the agent moves."""
    from noosphere.protocol.api import FeedbackParams
    from noosphere.protocol.feedback import TaskReceipt

    target = _resolve_target(rpc, home, to, agent, token)
    task = _run(target, lambda c: c.get_task(task_id))
    raw = ((task.metadata or {}).get("noosphere") or {}).get("receipt")
    if raw is None:
        fail(f"task {task_id} has no receipt yet (state {task.status.state.short})")
    params = FeedbackParams(receipt=TaskReceipt.model_validate(raw), rating=rating, comment=comment)
    with node_client(rpc, auth=operator_auth(home, token)) as client:
        reply = client.call("noosphere.feedback", params.to_wire())
    if as_json:
        return print_json(reply)
    reputation = reply.get("reputation")
    shown = "no evidence" if reputation is None else f"{reputation:.3f}"
    out.print(f"rated {reply['agent']} {rating:g}; its reputation here is now {shown}")
