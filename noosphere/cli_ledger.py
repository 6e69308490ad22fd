"""The ``noosphere ledger`` commands (Settle): deploy the contracts to a chain, check token
balances, hand out development tokens, and look at an escrow. The signing account is a local
key: ``--key-index N`` of the development mnemonic (anvil's public test accounts, for local
chains only) or ``--private-key`` / ``NOOSPHERE_LEDGER_KEY``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from noosphere.clikit import JsonOption, fail, out, print_json

if TYPE_CHECKING:
    from noosphere.ledger.client import LedgerClient

ledger_app = typer.Typer(
    help="Token balances, escrows and contract deployment on the chain.", no_args_is_help=True
)

ChainRpc = Annotated[
    str | None,
    typer.Option(
        "--chain-rpc",
        envvar="NOOSPHERE_CHAIN_RPC",
        help="EVM JSON-RPC URL (default: the chain of --chain-home).",
    ),
]
ChainHome = Annotated[
    Path,
    typer.Option(
        "--chain-home",
        envvar="NOOSPHERE_CHAIN_HOME",
        help="Where deployments are recorded (and the local chain runs).",
    ),
]
KeyIndex = Annotated[
    int, typer.Option("--key-index", min=0, max=9, help="Development account index (0 = deployer).")
]
PrivateKey = Annotated[
    str | None,
    typer.Option("--private-key", envvar="NOOSPHERE_LEDGER_KEY", help="Signing key (hex)."),
]


def _address(value: str) -> str:
    from web3 import Web3

    if not Web3.is_address(value):
        fail(f"{value!r} is not an account address (0x followed by 40 hex digits)")
    return Web3.to_checksum_address(value)


def _client(
    chain_rpc: str | None, chain_home: Path, key_index: int, private_key: str | None,
    *, deployed: bool = True,
) -> LedgerClient:  # fmt: skip
    from eth_account import Account

    from noosphere.ledger.chain import DEV_MNEMONIC, read_runtime
    from noosphere.ledger.client import Deployment, LedgerClient, LedgerError

    home = chain_home.expanduser()
    if chain_rpc is None:
        runtime = read_runtime(home)
        if runtime is None:
            fail(f"no chain runs for {home}: start one (noosphere chain start --home {home})"
                 " or pass --chain-rpc")  # fmt: skip
        chain_rpc = runtime.rpc_url
    if private_key:
        account = Account.from_key(private_key)
    else:
        Account.enable_unaudited_hdwallet_features()
        account = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{key_index}")
    try:
        client = LedgerClient(chain_rpc, account)
        if deployed:
            saved = Deployment.load(home, client.chain_id)
            if saved is None:
                fail(f"no contracts recorded for chain {client.chain_id} in {home};"
                     " run: noosphere ledger deploy")  # fmt: skip
            client.use(saved)
    except LedgerError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot reach the chain at {chain_rpc}: {exc}")
    return client


@ledger_app.command("deploy")
def deploy(
    chain_home: ChainHome, chain_rpc: ChainRpc = None, key_index: KeyIndex = 0,
    private_key: PrivateKey = None, as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Deploy token, escrow, registry and payment channel (or reuse the recorded deployment)."""
    from noosphere.ledger.client import LedgerError

    client = _client(chain_rpc, chain_home, key_index, private_key, deployed=False)
    try:
        deployment = client.load_or_deploy(chain_home.expanduser())
    except LedgerError as exc:
        fail(str(exc))
    if as_json:
        return print_json(deployment)
    out.print(f"chain {deployment.chain_id}: token {deployment.token}, escrow {deployment.escrow},"
              f" registry {deployment.registry}, channel {deployment.channel}")  # fmt: skip


@ledger_app.command("balance")
def balance(
    chain_home: ChainHome,
    address: Annotated[str | None, typer.Argument(help="Account (default: the signer).")] = None,
    chain_rpc: ChainRpc = None, key_index: KeyIndex = 0, private_key: PrivateKey = None,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Token balance of an account (smallest unit)."""
    from noosphere.ledger.client import LedgerError

    address = _address(address) if address is not None else None
    client = _client(chain_rpc, chain_home, key_index, private_key)
    try:
        value = client.balance_of(address)
    except (LedgerError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        return print_json({"address": address or client.address, "balance": str(value)})
    out.print(f"{address or client.address}: {value} NOOS units")


@ledger_app.command("faucet")
def faucet(
    chain_home: ChainHome,
    address: Annotated[str, typer.Argument(help="Account to fund.")],
    amount: Annotated[
        int, typer.Option("--amount", min=1, help="Smallest units to mint.")
    ] = 10**21,
    chain_rpc: ChainRpc = None, key_index: KeyIndex = 0, private_key: PrivateKey = None,
) -> None:  # fmt: skip
    """Mint development tokens to an account (the token owner signs; local chains only)."""
    from noosphere.ledger.client import LedgerError

    address = _address(address)
    client = _client(chain_rpc, chain_home, key_index, private_key)
    try:
        client.mint(address, amount)
        value = client.balance_of(address)
    except (LedgerError, ValueError) as exc:
        fail(str(exc))
    out.print(f"minted {amount} to {address}; balance {value}")


@ledger_app.command("escrow")
def escrow(
    chain_home: ChainHome,
    task_id: Annotated[str, typer.Argument(help="Task id (as used when the escrow was opened).")],
    chain_rpc: ChainRpc = None, key_index: KeyIndex = 0, private_key: PrivateKey = None,
    as_json: JsonOption = False,
) -> None:  # fmt: skip
    """Show one escrow: parties, amount, deadline, status."""
    from noosphere.ledger.client import LedgerError

    client = _client(chain_rpc, chain_home, key_index, private_key)
    try:
        view = client.get_escrow(task_id)
    except LedgerError as exc:
        fail(str(exc))
    if view.status == 0:
        fail(f"no escrow for task {task_id!r} on chain {client.chain_id}")
    if as_json:
        return print_json(view)
    for key, value in view.model_dump().items():
        out.print(f"{key:>14} {value}")
