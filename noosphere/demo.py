"""The demo (Publish, Discover and Execute so far): start local node processes with the example
agents, watch their cards spread by gossip until every node sees every card, show each node's
view, then have one node hand tasks to other nodes' agents over A2A JSON-RPC (signed with its
node key) and stream their progress. Later phases (recruit, settle, feedback) join as they land."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import time
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from noosphere.node.a2a_client import A2AClient, text_message
from noosphere.node.auth import BearerAuth, PeerAuth
from noosphere.node.client import NodeClient, NodeUnreachable
from noosphere.node.daemon import RUNTIME_FILENAME
from noosphere.node.keystore import load_or_create_node_key
from noosphere.node.launcher import LaunchError, LocalNode, spawn_node, wait_ready
from noosphere.protocol import RpcError
from noosphere.protocol.api import RecruitChoice, RecruitParams

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "agents"
CONVERGENCE_TIMEOUT_S = 60.0

#: The Recruit + Execute step: tasks the last node recruits agents for and sends them.
DEMO_TASKS = [
    "what is 17/3 + 2^10?",
    "convert 26.2 miles to km",
    (
        "summarize in 2 sentences: The outage began at 09:12 UTC when a configuration push "
        "disabled the load balancer health checks. Traffic shifted to a single region, which "
        "saturated within minutes. Engineers rolled back the change at 09:40. Customers saw "
        "elevated error rates for 28 minutes. A postmortem found that the push skipped the "
        "canary stage. The team will add a mandatory canary gate to the deploy pipeline."
    ),
    "total sales by region:\nregion,sales\nnorth,120\nsouth,80\nnorth,45\nwest,60",
    "10 business days after 2026-12-18",
]


class DemoError(RuntimeError):
    """The demo could not run; the message says what to do."""


def example_agents() -> list[Path]:
    files = sorted(p for p in EXAMPLES.glob("*") if p.suffix in (".toml", ".yaml", ".yml", ".json"))
    if not files:
        raise DemoError(f"no example agent files in {EXAMPLES}")
    return files


def _stop_leftovers(workdir: Path) -> None:
    """Kill nodes a previous ``demo --keep`` left running in ``workdir``."""
    for runtime in workdir.glob(f"nodes/*/{RUNTIME_FILENAME}"):
        with contextlib.suppress(OSError, ValueError, KeyError, ProcessLookupError):
            os.kill(int(json.loads(runtime.read_text())["pid"]), signal.SIGTERM)
    time.sleep(0.5)


def _view(nodes: list[LocalNode], expected: int, started: float) -> tuple[Table, int]:
    table = Table(title=f"network view after {time.monotonic() - started:4.1f} s")
    for column in ("node", "peer id", "rpc", "agents", "peers", "cards seen"):
        table.add_column(column)
    converged = 0
    for i, node in enumerate(nodes, 1):
        try:
            with node.client(timeout=2) as client:
                cards = client.cards()
                peers = sum(1 for p in client.peers() if p.connected)
        except NodeUnreachable:
            table.add_row(f"node-{i}", node.peer_id[-8:], node.rpc_url, "-", "-", "[red]down[/]")
            continue
        local = ", ".join(c.name for c in cards if c.local)
        done = len(cards) == expected
        converged += done
        seen = f"[green]{len(cards)}/{expected}[/]" if done else f"{len(cards)}/{expected}"
        table.add_row(f"node-{i}", "…" + node.peer_id[-8:], node.rpc_url, local, str(peers), seen)
    return table, converged


def _views_matrix(nodes: list[LocalNode]) -> Table:
    """One row per card, one column per node: what each node's own index holds."""
    views = []
    for node in nodes:
        with node.client() as client:
            views.append({c.card_id: c for c in client.cards()})
    owner_of = {n.peer_id: f"node-{i}" for i, n in enumerate(nodes, 1)}
    table = Table(title="each node's view: ● own card, ✓ learned by gossip")
    for column in ("agent", "owner", "price", "attributes"):
        table.add_column(column)
    for i in range(1, len(nodes) + 1):
        table.add_column(f"node-{i}", justify="center")
    every = {cid: card for view in views for cid, card in view.items()}
    for cid, card in sorted(
        every.items(), key=lambda kv: (owner_of.get(kv[1].peer_id, ""), kv[1].name)
    ):
        marks = ["●" if cid in v and v[cid].local else "✓" if cid in v else "·" for v in views]
        table.add_row(
            card.name,
            owner_of.get(card.peer_id, "?"),
            card.price,
            " ".join(card.attributes),
            *marks,
        )
    return table


def _wait_for_models(nodes: list[LocalNode], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    for node in nodes:
        while time.monotonic() < deadline:
            with node.client() as client:
                if client.status().models_loaded:
                    break
            time.sleep(0.2)


def _run_execute(requester: LocalNode, console: Console) -> Table:
    return asyncio.run(_execute(requester, console))


def _recruit(requester: LocalNode, text: str, console: Console) -> RecruitChoice | None:
    """Recruit: ask the requester's node (MARS) who should do ``text``; print the ranking."""
    with NodeClient(requester.rpc_url, timeout=60, auth=BearerAuth(requester.token)) as client:
        reply = client.recruit(RecruitParams(task=text, top=3))
    ranking = ", ".join(f"{c.name} {c.score:.2f}" for c in reply.chosen) or "nobody"
    console.print(f"[bold]recruit[/] {text.splitlines()[0][:60]!r}: {ranking}", highlight=False)
    return reply.chosen[0] if reply.chosen else None


async def _execute(requester: LocalNode, console: Console) -> Table:
    """For each demo task: recruit on ``requester`` (MARS), then send it to the winner and
    stream its progress (requests signed with the requester's node key)."""
    key, _ = load_or_create_node_key(requester.home)
    table = Table(title=f"Recruit + Execute: tasks from …{requester.peer_id[-8:]} over A2A")
    for column in ("agent", "request", "state", "result", "seconds"):
        table.add_column(column)
    for text in DEMO_TASKS:
        winner = await asyncio.to_thread(_recruit, requester, text, console)
        if winner is None:
            continue
        console.print(f"[bold]→ {winner.name}[/] on …{winner.peer_id[-8:]}")
        started = time.monotonic()
        state, result = "?", ""
        async with A2AClient(winner.rpc_url, auth=PeerAuth(key), tenant=winner.tenant) as a2a:
            try:
                async for event in a2a.stream(text_message(text)):
                    if event.status_update is not None:
                        status = event.status_update.status
                        state = status.state.short
                        if status.message is not None:
                            line = status.message.text.splitlines()[0]
                            console.print(f"   [cyan]{state:>14}[/] {line}", highlight=False)
                    elif event.artifact_update is not None:
                        result = event.artifact_update.artifact.parts[0].text or ""
                        console.print(f"   [green]{'artifact':>14}[/] {result}", highlight=False)
            except (RpcError, NodeUnreachable) as exc:
                state, result = "error", str(exc)
        table.add_row(
            winner.name,
            text.splitlines()[0][:40],
            state,
            result.replace("\n", " ")[:70],
            f"{time.monotonic() - started:.2f}",
        )
    return table


def run_demo(*, nodes: int, keep: bool, workdir: Path, console: Console) -> None:
    agents = example_agents()
    workdir = workdir.resolve()
    _stop_leftovers(workdir)
    shutil.rmtree(workdir / "nodes", ignore_errors=True)
    assignment: list[list[Path]] = [[] for _ in range(nodes)]
    for i, agent in enumerate(agents):
        assignment[i % nodes].append(agent)

    console.rule("[bold]noosphere demo[/]: publish and discover")
    console.print(
        f"Starting {nodes} node processes on 127.0.0.1 with {len(agents)} example agents "
        f"from {EXAMPLES}."
    )
    started = time.monotonic()
    running: list[LocalNode] = []
    try:
        try:
            first = spawn_node(workdir / "nodes" / "node-1", agents=assignment[0])
            running.append(first)
            console.print(f"  node-1 is the bootstrap peer: {first.multiaddr}")
            for i in range(1, nodes):
                node = spawn_node(
                    workdir / "nodes" / f"node-{i + 1}",
                    agents=assignment[i],
                    bootstrap=[first.multiaddr],
                    wait=False,
                )
                running.append(node)
            for node in running[1:]:
                wait_ready(node)
        except LaunchError as exc:
            raise DemoError(f"a node failed to start: {exc}") from exc
        boot_s = time.monotonic() - started

        with Live(console=console, refresh_per_second=4) as live:
            while True:
                table, converged = _view(running, len(agents), started)
                live.update(table)
                if converged == nodes:
                    break
                if time.monotonic() - started > CONVERGENCE_TIMEOUT_S:
                    raise DemoError(
                        f"cards did not reach every node within {CONVERGENCE_TIMEOUT_S:.0f}s; "
                        f"see the logs in {workdir / 'nodes'}/*/node.log"
                    )
                time.sleep(0.25)
        total_s = time.monotonic() - started
        console.print()
        console.print(_views_matrix(running))
        console.print(
            f"[bold green]Every node holds all {len(agents)} signed cards.[/] "
            f"Processes up in {boot_s:.1f} s; full convergence {total_s:.1f} s after start."
        )
        console.rule("[bold]recruit + execute[/]: MARS picks an agent, A2A runs the task")
        with console.status("agents are loading their embedding model (all-MiniLM-L6-v2)"):
            _wait_for_models(running[:-1])
        console.print(_run_execute(running[-1], console))
        if keep:
            console.print("\nThe nodes keep running. Explore them with the CLI, for example:")
            console.print(f"  noosphere node status --rpc {first.rpc_url}")
            console.print(f"  noosphere peers --rpc {first.rpc_url}")
            console.print(f"  noosphere cards list --rpc {running[-1].rpc_url}")
            console.print(
                f"  noosphere task send --rpc {running[-1].rpc_url} --home {running[-1].home}"
                f' --to <card id> "what is 2^64?"'
            )
            console.print(
                "Run `noosphere demo` again (or kill the PIDs in runtime.json) to stop them."
            )
    finally:
        if not keep:
            for node in running:
                node.stop(timeout=10)
            console.print(f"Stopped {len(running)} nodes; their homes are in {workdir / 'nodes'}.")
