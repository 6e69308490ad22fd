"""The demo (Publish and Discover so far): start local node processes with the example agents,
watch their cards spread by gossip until every node sees every card, and show each node's view.
Later phases (recruit, execute, settle, feedback) join this flow as they land."""

from __future__ import annotations

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

from noosphere.node.client import NodeUnreachable
from noosphere.node.daemon import RUNTIME_FILENAME
from noosphere.node.launcher import LaunchError, LocalNode, spawn_node, wait_ready

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "agents"
CONVERGENCE_TIMEOUT_S = 60.0


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
        if keep:
            console.print("\nThe nodes keep running. Explore them with the CLI, for example:")
            console.print(f"  noosphere node status --rpc {first.rpc_url}")
            console.print(f"  noosphere peers --rpc {first.rpc_url}")
            console.print(f"  noosphere cards list --rpc {running[-1].rpc_url}")
            console.print(
                "Run `noosphere demo` again (or kill the PIDs in runtime.json) to stop them."
            )
    finally:
        if not keep:
            for node in running:
                node.stop(timeout=10)
            console.print(f"Stopped {len(running)} nodes; their homes are in {workdir / 'nodes'}.")
