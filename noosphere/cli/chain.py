"""The ``noosphere chain`` commands (Settle): run the local development EVM (anvil, pinned in
package.json) with its state kept in the chain home, and check on it."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from .kit import JsonOption, fail, out, print_json

chain_app = typer.Typer(
    help="The local EVM chain (anvil) the ledger settles on.", no_args_is_help=True
)

ChainHome = Annotated[
    Path,
    typer.Option("--home", help="Chain home: state file and logs.", envvar="NOOSPHERE_CHAIN_HOME"),
]


@chain_app.command("start")
def chain_start(
    home: ChainHome,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="0 = any free.")] = 8545,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    state_interval: Annotated[
        int, typer.Option("--state-interval", min=1, help="Seconds between state dumps.")
    ] = 1,
) -> None:
    """Run anvil in the foreground until Ctrl-C; balances and contracts survive restarts
    (HOME/anvil-state.json is loaded at start and written every second and on exit)."""
    from noosphere.ledger.chain import ChainError, LocalChain

    try:
        chain = LocalChain.start(
            home.expanduser(), host=host, port=port, state_interval_s=state_interval
        )
    except ChainError as exc:
        fail(str(exc))
    out.print(f"chain {chain.runtime.chain_id} at {chain.runtime.rpc_url}")
    out.print(f"  state {chain.runtime.state_file}")
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    while not stopped.wait(0.5):
        if chain.process.poll() is not None:
            fail(f"anvil exited (code {chain.process.returncode}); see {home}/anvil.log")
    chain.stop()
    out.print("chain stopped; state saved")


@chain_app.command("status")
def chain_status(home: ChainHome, as_json: JsonOption = False) -> None:
    """Show whether the chain of HOME runs, its RPC URL and chain id."""
    from noosphere.ledger.chain import read_runtime, rpc_ready

    runtime = read_runtime(home.expanduser())
    chain_id = rpc_ready(runtime.rpc_url) if runtime else None
    if runtime is None or chain_id is None:
        fail(f"no chain runs for {home} (start one: noosphere chain start --home {home})")
    if as_json:
        return print_json({"rpcUrl": runtime.rpc_url, "chainId": chain_id, "pid": runtime.pid})
    out.print(f"chain {chain_id} at {runtime.rpc_url} (pid {runtime.pid})")
