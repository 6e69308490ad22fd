"""The ``noosphere cluster`` command (operations): a local cluster in one command: a bootstrap
node and an orchestrator node whose agent scales a pool of worker processes with the load
(LocalScaler). Ctrl-C stops everything, workers included."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from .kit import fail, out

cluster_app = typer.Typer(help="Run a local cluster (bootstrap + orchestrator + workers).")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "orchestrator" / "orchestrator.yaml"


@cluster_app.command("up")
def cluster_up(
    workdir: Annotated[
        Path, typer.Option("--workdir", help="Homes of the cluster's nodes.")
    ] = Path(".noosphere-cluster"),
    orchestrator: Annotated[
        Path,
        typer.Option(
            "--orchestrator",
            help="Orchestrator agent file (its settings say"
            " which agents the workers run and how to scale).",
        ),
    ] = EXAMPLE,
    rpc_port: Annotated[
        int, typer.Option("--rpc-port", help="JSON-RPC port of the orchestrator (0 = any).")
    ] = 0,
) -> None:
    """Start the cluster in the foreground; tasks sent to the orchestrator's RPC URL are
    queued there and served by workers it starts and stops as the load changes."""
    from noosphere.node.launcher import LaunchError, spawn_node

    if not orchestrator.is_file():
        fail(f"orchestrator agent file not found: {orchestrator}")
    workdir = workdir.expanduser().resolve()
    nodes = []
    try:
        bootstrap = spawn_node(workdir / "bootstrap")
        nodes.append(bootstrap)
        pool = spawn_node(
            workdir / "orchestrator",
            agents=[orchestrator.resolve()],
            bootstrap=[bootstrap.multiaddr],
            rpc_port=rpc_port,
        )
        nodes.append(pool)
    except LaunchError as exc:
        for node in nodes:
            node.stop()
        fail(f"the cluster did not start: {exc}")
    out.print(f"bootstrap     {bootstrap.multiaddr}")
    out.print(f"orchestrator  {pool.rpc_url}  (agent file {orchestrator})")
    out.print(f'send tasks:   noosphere task send --rpc {pool.rpc_url} --home {pool.home} "..."')
    out.print(f"workers:      {workdir / 'orchestrator' / 'workers'} (started on demand)")
    out.print("Ctrl-C stops the cluster.")
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    while not stopped.wait(1.0):
        if not pool.alive:
            out.print(f"[red]the orchestrator exited[/]; see {pool.home / 'node.log'}")
            break
    for node in reversed(nodes):  # the orchestrator stops its workers on the way out
        node.stop(timeout=30)
    out.print("cluster stopped")
