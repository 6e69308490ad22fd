"""The ``noosphere node``, ``cards``, ``agent``, ``peers``, ``demo`` and ``version`` commands
(Publish, Discover): run a node, inspect what it sees, check agent files, run the demo."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from noosphere import __version__

from .kit import JsonOption, RpcOption, fail, node_client, out, print_json, rpc_query

node_app = typer.Typer(help="Run a node and query its status.", no_args_is_help=True)
cards_app = typer.Typer(
    help="Agent Cards this node knows (its own and gossiped).", no_args_is_help=True
)
agent_app = typer.Typer(
    help="Agent files: check them and preview their cards.", no_args_is_help=True
)
top_app = typer.Typer()  # commands that sit at the top level (peers, demo, version)

T = TypeVar("T")


def _ago(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M:%S")


def _query(rpc: str, fetch: Callable[[Any], T]) -> T:
    with node_client(rpc) as client:
        return fetch(client)


# ---- node -------------------------------------------------------------------------------------


@node_app.command("start")
def node_start(
    home: Annotated[
        Path, typer.Option("--home", help="Node home: key, config, store.", envvar="NOOSPHERE_HOME")
    ],
    p2p_port: Annotated[
        int | None, typer.Option("--p2p-port", help="libp2p TCP port (0 = any free).")
    ] = None,
    rpc_port: Annotated[
        int | None, typer.Option("--rpc-port", help="JSON-RPC HTTP port (0 = any free).")
    ] = None,
    host: Annotated[str | None, typer.Option("--host", help="Interface to listen on.")] = None,
    bootstrap: Annotated[
        list[str] | None,
        typer.Option("--bootstrap", help="Multiaddr of a peer to join through (repeatable)."),
    ] = None,
    agent: Annotated[
        list[Path] | None,
        typer.Option("--agent", help="Agent file (TOML/YAML) to run (repeatable)."),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Human-friendly node name.")] = None,
    card_ttl: Annotated[
        int | None, typer.Option("--card-ttl", help="Seconds a card lives unless refreshed.")
    ] = None,
    log_level: Annotated[
        str | None, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = None,
    log_format: Annotated[str | None, typer.Option("--log-format", help="console or json.")] = None,
) -> None:
    """Run a node in the foreground until Ctrl-C or SIGTERM. The first start creates
    HOME/node.key (0600) and, once the node runs, HOME/config.toml; later starts reuse them, so
    the peer id stays the same. One node per home (HOME/node.lock); the home is kept 0700.
    On SIGTERM running tasks get shutdown_grace_s to finish; a second signal stops at once."""
    from noosphere.agents.spec import AgentFileError
    from noosphere.node.config import ConfigError, load_config
    from noosphere.node.daemon import Node, NodeStartError
    from noosphere.node.keystore import KeyFileError
    from noosphere.node.logging import configure_logging
    from noosphere.node.store import StoreError

    home = home.expanduser().resolve()
    for path in agent or []:
        if not path.is_file():
            fail(f"agent file not found: {path}")
    overrides = {
        "p2p_port": p2p_port,
        "rpc_port": rpc_port,
        "host": host,
        "bootstrap": bootstrap or None,
        "agents": [p.resolve() for p in agent] if agent else None,
        "name": name,
        "card_ttl_s": card_ttl,
        "log_level": log_level,
        "log_format": log_format,
    }
    os.umask(0o077)  # whatever the node writes (stores, their WAL files, workers' homes) is private
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        config, created = load_config(home, overrides, write=False)  # written once started
        configure_logging(config.log_level, config.log_format)
        node = Node(home, config, new_config=created)
    except (ConfigError, AgentFileError, NodeStartError, OSError) as exc:
        fail(str(exc))

    import asyncio

    async def main() -> None:
        node.install_signal_handlers()
        task = asyncio.create_task(node.run())
        while node.runtime is None and not task.done():
            await asyncio.sleep(0.02)
        if node.runtime is not None:
            rt = node.runtime
            lines = [f"noosphere {__version__} node {rt.name}", f"  peer id   {rt.peer_id}"]
            lines += [f"  multiaddr {addr}" for addr in rt.multiaddrs]
            lines += [
                f"  rpc       {rt.rpc_url}",
                f"  home      {home}" + (" (new identity)" if node.key_created else ""),
            ]
            print("\n".join(lines), flush=True)
        await task

    try:
        _run_node(main())
    except (NodeStartError, KeyFileError, StoreError) as exc:
        fail(str(exc))
    _exit_now()


def _run_node(main: Any) -> None:
    """``asyncio.run`` without its final wait for worker threads: a tool still running in a
    thread when the grace ended (Python cannot stop a thread) must not hold the process; its
    task is already stored as failed and retryable, and the store is closed."""
    import asyncio

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(main)
    finally:
        try:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                gathered = asyncio.gather(*pending, return_exceptions=True)
                loop.run_until_complete(gathered)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()  # shuts the thread pool down without waiting for it
    busy = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    deadline = time.monotonic() + 0.2
    for thread in busy:  # idle pool threads exit at once
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    busy = [t for t in busy if t.is_alive()]
    if busy:
        import structlog

        structlog.get_logger("noosphere.node").warning(
            "exiting without waiting for threads still running a tool", threads=len(busy)
        )


def _exit_now() -> None:
    """End a node process that has shut down cleanly (store and memory closed, runtime file
    removed, home unlocked) without the interpreter's teardown: it would wait for a tool thread
    still running, and with the embedding model loaded it alone takes 4-6 s of the grace."""
    import logging

    logging.shutdown()  # flush the log handlers
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@node_app.command("status")
def node_status(rpc: RpcOption = "http://127.0.0.1:7070", as_json: JsonOption = False) -> None:
    """Show a running node's identity, addresses, agents and counts."""
    status = rpc_query(rpc, "noosphere.node.status")  # the light path: no httpx, no models
    if as_json:
        return print_json(status)
    try:
        rows = [
            ("name", status["name"]),
            ("peer id", status["peerId"]),
            *(("multiaddr", addr) for addr in status["multiaddrs"]),
            ("rpc", status["rpcUrl"]),
            ("version", status["version"]),
            ("uptime", f"{float(status['uptimeS']):.0f} s"),
            ("peers", str(status["peersConnected"])),
            ("cards", str(status["cardsKnown"])),
            ("agents", ", ".join(a["name"] for a in status.get("agents", [])) or "-"),
            ("ledger account", status.get("evmAddress") or "- (no chain_home configured)"),
        ]
    except (KeyError, TypeError, ValueError) as exc:
        fail(f"{rpc} answered noosphere.node.status without a node status ({exc!r})")
    table = Table(show_header=False, box=None)
    for label, value in rows:
        table.add_row(label, str(value))
    out.print(table)


# ---- peers and cards --------------------------------------------------------------------------


@top_app.command("peers")
def peers(rpc: RpcOption = "http://127.0.0.1:7070", as_json: JsonOption = False) -> None:
    """List the peers a node knows: connected now, or learned from cards and earlier runs."""
    entries = _query(rpc, lambda c: c.peers())
    if as_json:
        return print_json(entries)
    table = Table("peer id", "connected", "cards", "last seen", "address")
    for p in entries:
        table.add_row(
            p.peer_id,
            "yes" if p.connected else "no",
            str(p.cards),
            _ago(p.last_seen),
            p.addrs[0] if p.addrs else "-",
        )
    out.print(table)


@cards_app.command("list")
def cards_list(rpc: RpcOption = "http://127.0.0.1:7070", as_json: JsonOption = False) -> None:
    """List the unexpired cards a node holds."""
    entries = _query(rpc, lambda c: c.cards())
    if as_json:
        return print_json(entries)
    table = Table("card id", "name", "skills", "price", "attributes", "expires", "")
    for c in entries:
        short_id = f"{c.peer_id[:8]}…{c.peer_id[-6:]}/{c.agent_id}"
        table.add_row(
            short_id,
            c.name,
            ", ".join(c.skills),
            c.price,
            ", ".join(c.attributes),
            _ago(c.expires_at),
            "local" if c.local else "",
        )
    out.print(table)


@cards_app.command("show")
def cards_show(
    card_id: Annotated[str, typer.Argument(help="Card id (PEER_ID/AGENT_ID) or a unique prefix.")],
    rpc: RpcOption = "http://127.0.0.1:7070",
) -> None:
    """Print one card as JSON (the signed A2A Agent Card)."""
    entry = _query(rpc, lambda c: c.card(card_id))
    print_json(entry.card)


@agent_app.command("check")
def agent_check(
    file: Annotated[Path, typer.Argument(help="Agent file (.toml, .yaml, .json).")],
) -> None:
    """Validate an agent file, load the tool of every skill, and print the agent and its tools."""
    from noosphere.agents.runtime import load_skill_tools
    from noosphere.agents.spec import AgentFileError, load_agent_spec
    from noosphere.agents.tools import ToolError
    from noosphere.agents.tools.registry import resolve_object

    try:
        spec = load_agent_spec(file)
        toolbox, _ = load_skill_tools(spec)
        if spec.runtime is not None:
            runtime, attr = resolve_object(spec.runtime, base_dir=spec.base_dir, kind="runtime")
            if not callable(getattr(runtime, "create", None)):
                raise ToolError(f"runtime {spec.runtime!r}: {attr} has no create() classmethod")
    except (AgentFileError, ToolError) as exc:
        fail(str(exc))
    print_json({"agent": spec.model_dump(mode="json"), "tools": toolbox.schemas()})


@top_app.command("demo")
def demo(
    nodes: Annotated[
        int, typer.Option("--nodes", min=3, max=10, help="Local nodes (the last one requests).")
    ] = 5,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the chain and the nodes running when done.")
    ] = False,
    workdir: Annotated[Path, typer.Option("--workdir", help="Where node homes go.")] = Path(
        ".noosphere-demo"
    ),
) -> None:
    """Run the six phases on this machine: a local chain, nodes with the example agents, then
    publish, discover, recruit, execute (one task sealed), settle and feedback."""
    from noosphere.cli.demo import DemoError, run_demo

    try:
        run_demo(nodes=nodes, keep=keep, workdir=workdir, console=out)
    except DemoError as exc:
        fail(str(exc))


@top_app.command("version")
def version() -> None:
    """Print the noosphere version."""
    out.print(__version__)
