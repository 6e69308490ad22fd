"""The ``noosphere ledger`` commands (Settle): deploy the contracts to a chain, check token
balances, hand out development tokens, look at escrows, settle disputes, read the agent registry
(every entry's peer-key proof checked) and pay through payment channels
(``ledger channel open|voucher|close|show``). The signing account is a local key:
``--key-index N`` of the development mnemonic (anvil's public test accounts, for local chains
only) or ``--private-key`` / ``NOOSPHERE_LEDGER_KEY``. ``ledger release`` and ``ledger dispute``
act on escrows your node opened, through your node (which holds the requester's key and the
evidence); ``ledger resolve`` is the arbiter's, signed with the arbiter's key."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .kit import (
    DEFAULT_RPC,
    HomeOption,
    JsonOption,
    RpcOption,
    TokenOption,
    fail,
    node_client,
    operator_auth,
    out,
    print_json,
)

if TYPE_CHECKING:
    from noosphere.ledger import ChannelView, EscrowView, LedgerClient, Voucher
    from noosphere.ledger.registry_proof import RegistryEntry

ledger_app = typer.Typer(
    help="Token balances, escrows and contract deployment on the chain.", no_args_is_help=True
)
channel_app = typer.Typer(
    help="Payment channels: many small payments settled in one transaction.",
    no_args_is_help=True,
)
ledger_app.add_typer(channel_app, name="channel")

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


def _bytes32_hex(value: str, what: str) -> str:
    """A 0x-prefixed 32-byte hex id, lower-cased; anything else fails."""
    body = value[2:] if value.startswith(("0x", "0X")) else ""
    if len(body) != 64 or any(c not in "0123456789abcdefABCDEF" for c in body):
        fail(f"{value!r} is not a {what} (0x followed by 64 hex digits)")
    return "0x" + body.lower()


def _client(
    chain_rpc: str | None,
    chain_home: Path,
    key_index: int,
    private_key: str | None,
    *,
    deployed: bool = True,
) -> LedgerClient:
    from eth_account import Account

    from noosphere.ledger import Deployment, LedgerClient, LedgerError
    from noosphere.ledger.chain import DEV_MNEMONIC, read_runtime

    home = chain_home.expanduser()
    if chain_rpc is None:
        runtime = read_runtime(home)
        if runtime is None:
            fail(
                f"no chain runs for {home}: start one (noosphere chain start --home {home})"
                " or pass --chain-rpc"
            )
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
                fail(
                    f"no contracts recorded for chain {client.chain_id} in {home};"
                    " run: noosphere ledger deploy"
                )
            client.use(saved)
    except LedgerError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot reach the chain at {chain_rpc}: {exc}")
    return client


@ledger_app.command("deploy")
def deploy(
    chain_home: ChainHome,
    chain_rpc: ChainRpc = None,
    key_index: KeyIndex = 0,
    private_key: PrivateKey = None,
    arbiter: Annotated[
        str,
        typer.Option(
            "--arbiter",
            help="The deployment's default arbiter, named in escrows and"
            " accepted by agents unless their config says otherwise: an address,"
            " 'owner' (the token owner) or 'none'.",
        ),
    ] = "owner",
    arbitration_period_s: Annotated[
        int,
        typer.Option(
            "--arbitration-period-s",
            min=60,
            help="How long an arbiter has to resolve"
            " a dispute before the requester can be refunded.",
        ),
    ] = 3 * 86_400,
    as_json: JsonOption = False,
) -> None:
    """Deploy token, escrow, registry and payment channel (or reuse the recorded deployment)."""
    from noosphere.ledger import OWNER_ARBITER, LedgerError

    chosen: str | None = None if arbiter == "none" else arbiter
    if chosen is not None and chosen != OWNER_ARBITER:
        chosen = _address(chosen)
    client = _client(chain_rpc, chain_home, key_index, private_key, deployed=False)
    try:
        deployment = client.load_or_deploy(
            chain_home.expanduser(), arbitration_period_s=arbitration_period_s, arbiter=chosen
        )
    except LedgerError as exc:
        fail(str(exc))
    if as_json:
        return print_json(deployment)
    out.print(
        f"chain {deployment.chain_id}: token {deployment.token}, escrow {deployment.escrow},"
        f" registry {deployment.registry}, channel {deployment.channel}, default arbiter"
        f" {deployment.arbiter or 'none'}",
        highlight=False,
        soft_wrap=True,
    )


@ledger_app.command("balance")
def balance(
    chain_home: ChainHome,
    address: Annotated[str | None, typer.Argument(help="Account (default: the signer).")] = None,
    chain_rpc: ChainRpc = None,
    key_index: KeyIndex = 0,
    private_key: PrivateKey = None,
    as_json: JsonOption = False,
) -> None:
    """Token balance of an account (smallest unit)."""
    from noosphere.ledger import LedgerError

    address = _address(address) if address is not None else None
    client = _client(chain_rpc, chain_home, key_index, private_key)
    try:
        value = client.tokens.balance_of(address)
    except (LedgerError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        return print_json({"address": address or client.address, "balance": str(value)})
    out.print(f"{address or client.address}: {value} NOOS units")


@ledger_app.command("faucet")
def faucet(
    chain_home: ChainHome,
    address: Annotated[str, typer.Argument(help="Account to fund.")],
    amount: Annotated[int, typer.Option("--amount", min=1, help="Smallest units to mint.")] = 10
    ** 21,
    chain_rpc: ChainRpc = None,
    key_index: KeyIndex = 0,
    private_key: PrivateKey = None,
    gas: Annotated[
        bool,
        typer.Option(
            "--gas/--no-gas",
            help="On the local dev chain, also give the account"
            " ether for gas (anvil_setBalance) when it has less than 1 ETH.",
        ),
    ] = True,
) -> None:
    """Mint development tokens to an account (the token owner signs; local chains only)."""
    from web3 import Web3

    from noosphere.ledger import LedgerError
    from noosphere.ledger.chain import DEV_CHAIN_ID, ChainError, set_gas_balance

    address = _address(address)
    client = _client(chain_rpc, chain_home, key_index, private_key)
    try:
        client.tokens.mint(address, amount)
        value = client.tokens.balance_of(address)
        if (
            gas
            and client.chain_id == DEV_CHAIN_ID
            and client.w3.eth.get_balance(Web3.to_checksum_address(address)) < 10**18
        ):
            set_gas_balance(client.rpc_url, address, 10 * 10**18)
            out.print(f"gave {address} 10 ETH for gas")
    except (LedgerError, ChainError, ValueError) as exc:
        fail(str(exc))
    out.print(f"minted {amount} to {address}; balance {value}")


@ledger_app.command("escrow")
def escrow(
    chain_home: ChainHome,
    task_id: Annotated[str, typer.Argument(help="Task id (as used when the escrow was opened).")],
    chain_rpc: ChainRpc = None,
    key_index: KeyIndex = 0,
    private_key: PrivateKey = None,
    as_json: JsonOption = False,
) -> None:
    """Show one escrow: parties, amount, deadline, status."""
    from noosphere.ledger import LedgerError

    client = _client(chain_rpc, chain_home, key_index, private_key)
    try:
        view = client.escrows.get(task_id)
    except LedgerError as exc:
        fail(str(exc))
    if view.status == 0:
        fail(f"no escrow for task {task_id!r} on chain {client.chain_id}")
    if as_json:
        return print_json(view)
    for key, value in view.model_dump().items():
        out.print(f"{key:>14} {value}")
    if view.disputed_at:
        _show_dispute(client, view)


def _show_dispute(client: LedgerClient, view: EscrowView) -> None:
    """The dispute's evidence as the chain holds it: the commitment, what the requester says it
    received, its reason, and when a silent arbiter lets the requester be refunded."""
    from noosphere.ledger import LedgerError

    try:
        record = client.escrows.get_dispute(view.task_id)
    except LedgerError as exc:
        fail(str(exc))
    silent_after = view.disputed_at + client.deployment.arbitration_period_s
    out.print(
        f"{'disputed':>14} at {view.disputed_at}; refundable after {silent_after} if the"
        " arbiter stays silent",
        highlight=False,
        soft_wrap=True,
    )
    if record is None:
        return
    same = record.delivered_hash is not None and record.delivered_hash == view.result_hash
    delivered = record.delivered_hash or "nothing (the requester says no result arrived)"
    verdict = "matches the commitment" if same else "differs from the commitment"
    out.print(f"{'delivered':>14} {delivered} ({verdict})", highlight=False, soft_wrap=True)
    out.print(f"{'reason':>14} {record.reason}", highlight=False, soft_wrap=True)
    out.print(f"{'dispute tx':>14} {record.tx}", highlight=False, soft_wrap=True)


def _node_call(
    rpc: str, home: Path | None, token: str | None, method: str, params: dict[str, Any]
) -> dict[str, Any]:
    """One operator call to your node; failures end the command with one line."""
    with node_client(rpc, auth=operator_auth(home, token)) as client:
        reply: dict[str, Any] = client.call(method, params)
    return reply


@ledger_app.command("release")
def release(
    escrow_id: Annotated[str, typer.Argument(help="Escrow id (0x + 64 hex digits).")],
    rpc: RpcOption = DEFAULT_RPC,
    home: HomeOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Accept a result: your node pays the agent of an escrow it opened."""
    params = {"escrowId": _bytes32_hex(escrow_id, "escrow id")}
    reply = _node_call(rpc, home, token, "noosphere.ledger.release", params)
    if as_json:
        return print_json(reply)
    out.print(
        f"released escrow {reply['escrowId']} (tx {reply['tx']})", highlight=False, soft_wrap=True
    )


@ledger_app.command("dispute")
def dispute(
    escrow_id: Annotated[str, typer.Argument(help="Escrow id (0x + 64 hex digits).")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why you reject the result (for the arbiter).")
    ],
    delivered_hash: Annotated[
        str | None,
        typer.Option(
            "--delivered-hash",
            help="Hash of the result received (default: what your node recorded for this escrow).",
        ),
    ] = None,
    rpc: RpcOption = DEFAULT_RPC,
    home: HomeOption = None,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reject a committed result: the agent cannot claim until the escrow's arbiter decides."""
    from noosphere.protocol.payment import MAX_DISPUTE_REASON_BYTES

    if not reason.strip():
        fail("--reason must say why (the arbiter reads it)")
    if len(reason.encode()) > MAX_DISPUTE_REASON_BYTES:
        fail(f"--reason is longer than {MAX_DISPUTE_REASON_BYTES} bytes; keep evidence off chain")
    params: dict[str, Any] = {"escrowId": _bytes32_hex(escrow_id, "escrow id"), "reason": reason}
    if delivered_hash is not None:
        params["deliveredHash"] = _bytes32_hex(delivered_hash, "result hash")
    reply = _node_call(rpc, home, token, "noosphere.ledger.dispute", params)
    if as_json:
        return print_json(reply)
    out.print(
        f"disputed escrow {reply['escrowId']} (tx {reply['tx']}): its arbiter decides",
        highlight=False,
        soft_wrap=True,
    )


def _result_hash_of(path: Path) -> str:
    """The result commitment of a task (JSON object with ``artifacts``) or artifacts list file."""
    import json

    from noosphere.protocol.canonical import EncodingError, canonical_json
    from noosphere.protocol.payment import result_hash

    try:
        body = json.loads(path.expanduser().read_text())
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    except ValueError as exc:
        fail(f"{path} is not JSON: {exc}")
    artifacts = body.get("artifacts") if isinstance(body, dict) else body
    if not isinstance(artifacts, list):
        fail(f"{path} holds neither a task with artifacts nor a list of artifacts")
    try:
        return result_hash(canonical_json(artifacts))
    except EncodingError as exc:
        fail(f"{path}: {exc}")


@ledger_app.command("resolve")
def resolve(
    chain_home: ChainHome,
    escrow_id: Annotated[str, typer.Argument(help="Escrow id (0x + 64 hex digits).")],
    pay_agent: Annotated[
        bool, typer.Option("--pay-agent", help="Decide for the agent: it is paid.")
    ] = False,
    refund: Annotated[
        bool, typer.Option("--refund", help="Decide for the requester: it gets its funds back.")
    ] = False,
    result: Annotated[
        Path | None,
        typer.Option(
            "--result",
            help="A task or artifacts JSON either party handed you: its"
            " hash is compared with the commitment and the delivered hash.",
        ),
    ] = None,
    chain_rpc: ChainRpc = None,
    key_index: KeyIndex = 0,
    private_key: PrivateKey = None,
) -> None:
    """As an escrow's arbiter: show the evidence, then pay the agent or refund the requester."""
    from noosphere.ledger import EscrowStatus, LedgerError

    if pay_agent and refund:
        fail("choose one: --pay-agent or --refund")
    eid = _bytes32_hex(escrow_id, "escrow id")
    client = _client(chain_rpc, chain_home, key_index, private_key)
    try:
        view = client.escrows.get(eid)
    except LedgerError as exc:
        fail(str(exc))
    if view.status is EscrowStatus.NONE:
        fail(f"no escrow {eid} on chain {client.chain_id}")
    for key in ("requester", "agent", "arbiter", "amount", "deadline", "status", "result_hash"):
        value = getattr(view, key)
        shown = value.name.lower() if key == "status" else value
        out.print(f"{key:>14} {shown}", highlight=False, soft_wrap=True)
    if view.disputed_at:
        _show_dispute(client, view)
    if result is not None:
        digest = _result_hash_of(result)
        verdict = "matches" if digest == view.result_hash else "does NOT match"
        out.print(
            f"{'result file':>14} {digest} ({verdict} the commitment)",
            highlight=False,
            soft_wrap=True,
        )
    if view.arbiter is None or view.arbiter != client.address:
        fail(f"{client.address} is not this escrow's arbiter ({view.arbiter or 'none'})")
    if view.status.final:
        fail(f"escrow {eid} is already settled ({view.status.name.lower()})")
    if not (pay_agent or refund):
        fail("decide with --pay-agent or --refund", 2)
    try:
        receipt = client.escrows.resolve(eid, pay_agent)
    except LedgerError as exc:
        fail(str(exc))
    tx = "0x" + bytes(receipt["transactionHash"]).hex()
    to = f"the agent {view.agent}" if pay_agent else f"the requester {view.requester}"
    out.print(
        f"resolved escrow {eid}: {view.amount} units to {to} (tx {tx})",
        highlight=False,
        soft_wrap=True,
    )


@ledger_app.command("agent")
def agent(
    chain_home: ChainHome,
    registry_id: Annotated[int, typer.Argument(min=1, help="Registry id (the card's registryId).")],
    chain_rpc: ChainRpc = None,
    key_index: KeyIndex = 0,
    private_key: PrivateKey = None,
    as_json: JsonOption = False,
) -> None:
    """One agent registry entry, its proof checked, and its on-chain score."""
    from noosphere.ledger import LedgerError

    client = _client(chain_rpc, chain_home, key_index, private_key)
    if registry_id > _total_agents(client):
        fail(f"no registry entry #{registry_id} on chain {client.chain_id}")
    try:
        row = _registry_row(client, registry_id)
    except LedgerError as exc:
        fail(str(exc))
    if as_json:
        return print_json(row)
    for key, value in row.items():
        out.print(f"{key:>14} {value}", highlight=False, soft_wrap=True)


@ledger_app.command("agents")
def agents(
    chain_home: ChainHome,
    peer: Annotated[
        str | None, typer.Option("--peer", help="Only entries naming this peer id.")
    ] = None,
    chain_rpc: ChainRpc = None,
    key_index: KeyIndex = 0,
    private_key: PrivateKey = None,
    as_json: JsonOption = False,
) -> None:
    """Every agent registry entry, with whether its peer-key proof holds (entries whose proof
    fails are not the peer's: anyone can name any peer id on chain)."""
    from noosphere.ledger import LedgerError

    client = _client(chain_rpc, chain_home, key_index, private_key)
    rows = []
    try:
        for registry_id in range(1, _total_agents(client) + 1):
            entry = client.registry.get(registry_id)
            if peer is None or entry.peer_id == peer:
                rows.append(_registry_row(client, registry_id, entry))
    except LedgerError as exc:
        fail(str(exc))
    if as_json:
        return print_json(rows)
    if not rows:
        out.print(f"no registry entries{f' for {peer}' if peer else ''} on chain {client.chain_id}")
        return
    for row in rows:
        out.print(
            f"#{row['registry_id']} {row['proof']:<8} {row['peer_id']}/{row['agent']}"
            f" owner {row['owner']} score {row['score']} ({row['ratings']} ratings)",
            highlight=False,
            soft_wrap=True,
        )


def _total_agents(client: LedgerClient) -> int:
    from noosphere.ledger import LedgerError

    try:
        return client.registry.total()
    except LedgerError as exc:
        fail(str(exc))


def _registry_row(
    client: LedgerClient, registry_id: int, entry: RegistryEntry | None = None
) -> dict[str, Any]:
    """A registry entry for display: proof ``valid`` or ``INVALID`` (with why), score."""
    from noosphere.ledger.registry_proof import proof_problem

    if entry is None:
        entry = client.registry.get(registry_id)
    problem = proof_problem(entry, client.chain_id, client.deployment.registry)
    count = client.registry.feedback_count(registry_id)
    average = client.registry.average_score_x100(registry_id) / 100
    return {
        "registry_id": registry_id,
        "proof": "valid" if problem is None else "INVALID",
        "problem": problem or "",
        "peer_id": entry.peer_id,
        "agent": entry.agent_name,
        "owner": entry.owner,
        "card_uri": entry.card_uri,
        "score": f"{average:.2f}" if count else "-",
        "ratings": count,
    }


@ledger_app.command("escrows")
def escrows(
    chain_home: ChainHome,
    address: Annotated[str | None, typer.Argument(help="Account (default: the signer).")] = None,
    role: Annotated[
        str | None,
        typer.Option("--role", help="requester or agent: only that side."),
    ] = None,
    chain_rpc: ChainRpc = None,
    key_index: KeyIndex = 0,
    private_key: PrivateKey = None,
    as_json: JsonOption = False,
) -> None:
    """List an account's escrows (as requester and/or agent) with their current status."""
    from noosphere.ledger import ESCROW_ROLES, LedgerError

    if role is not None and role not in ESCROW_ROLES:
        fail(f"--role must be one of {', '.join(ESCROW_ROLES)}, not {role!r}")
    address = _address(address) if address is not None else None
    client = _client(chain_rpc, chain_home, key_index, private_key)
    try:
        entries = client.escrows.find(address, role)
    except (LedgerError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        return print_json(entries)
    who = address or client.address
    if not entries:
        out.print(f"no escrows for {who} on chain {client.chain_id}")
        return
    for e in entries:  # one line each, full ids and addresses (for copying into other commands)
        other = f"agent {e.agent}" if e.role == "requester" else f"requester {e.requester}"
        out.print(
            f"{e.task_id} {e.role:<9} {e.status.name.lower():<22} {e.amount} units,"
            f" {other}, deadline {e.deadline}",
            highlight=False,
            soft_wrap=True,
        )


# ------------------------------------------------------------------------------ channels


def _channel(client: LedgerClient, channel_id: str) -> ChannelView:
    """The channel under ``channel_id``; fails if there is none on this chain."""
    from noosphere.ledger import ChannelStatus, LedgerError

    cid = _bytes32_hex(channel_id, "channel id")
    try:
        view = client.channels.get(cid)
    except LedgerError as exc:
        fail(str(exc))
    if view.status is ChannelStatus.NONE:
        fail(f"no channel {cid} on chain {client.chain_id}")
    return view


def _show_channel(view: ChannelView, as_json: bool) -> None:
    if as_json:
        return print_json(view)
    for key, value in view.model_dump().items():
        shown = value.name.lower() if key == "status" else value
        out.print(f"{key:>10} {shown}", highlight=False, soft_wrap=True)


@channel_app.command("open")
def channel_open(
    chain_home: ChainHome,
    recipient: Annotated[str, typer.Argument(help="Account the vouchers will pay.")],
    deposit: Annotated[int, typer.Option("--deposit", min=1, help="Smallest units to lock.")],
    expiry_s: Annotated[
        int,
        typer.Option("--expiry-s", min=1, help="Chain seconds until the sender may reclaim."),
    ] = 86_400,
    chain_rpc: ChainRpc = None,
    key_index: KeyIndex = 0,
    private_key: PrivateKey = None,
    as_json: JsonOption = False,
) -> None:
    """Open a channel from the signer to RECIPIENT, locking --deposit; prints the channel id."""
    from noosphere.ledger import LedgerError

    recipient = _address(recipient)
    client = _client(chain_rpc, chain_home, key_index, private_key)
    try:
        channel_id = client.channels.open(recipient, deposit, client.timestamp() + expiry_s)
        view = client.channels.get(channel_id)
    except LedgerError as exc:
        fail(str(exc))
    if as_json:
        return print_json(view)
    out.print(
        f"opened channel {channel_id} to {recipient}: deposit {deposit}, expires at {view.expiry}",
        highlight=False,
        soft_wrap=True,
    )


@channel_app.command("voucher")
def channel_voucher(
    chain_home: ChainHome,
    channel_id: Annotated[str, typer.Argument(help="Channel id (0x + 64 hex digits).")],
    amount: Annotated[
        int, typer.Option("--amount", min=1, help="Cumulative amount paid so far (smallest units).")
    ],
    chain_rpc: ChainRpc = None,
    key_index: KeyIndex = 0,
    private_key: PrivateKey = None,
) -> None:
    """Sign a voucher as the channel's sender and print it as JSON (hand it to the recipient)."""
    from noosphere.ledger import ChannelStatus, LedgerError

    client = _client(chain_rpc, chain_home, key_index, private_key)
    view = _channel(client, channel_id)
    if view.status is not ChannelStatus.OPEN:
        fail(f"channel {view.channel_id} is closed")
    if view.sender != client.address:
        fail(f"only the channel's sender {view.sender} signs its vouchers, not {client.address}")
    if amount > view.deposit:
        fail(f"--amount {amount} exceeds the channel's deposit {view.deposit}")
    if amount <= view.paid:
        fail(
            f"--amount {amount} is not above what was already paid out ({view.paid});"
            " vouchers carry the cumulative amount"
        )
    try:
        voucher = client.channels.sign_voucher(view.channel_id, amount)
    except LedgerError as exc:
        fail(str(exc))
    print_json(voucher)


def _read_voucher(source: str) -> Voucher:
    from pydantic import ValidationError

    from noosphere.ledger import Voucher

    try:
        text = sys.stdin.read() if source == "-" else Path(source).expanduser().read_text()
    except OSError as exc:
        fail(f"cannot read the voucher from {source}: {exc.strerror or exc}")
    try:
        voucher = Voucher.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "voucher"
        fail(f"{source} is not a voucher ({where}: {first['msg']})")
    _bytes32_hex(voucher.channel_id, "channel id in the voucher")
    if not 0 <= voucher.cumulative_amount < 2**256:
        fail(f"the voucher's cumulative_amount {voucher.cumulative_amount} is out of range")
    sig = voucher.signature
    if not sig.startswith("0x") or len(sig) != 132:
        fail("bad voucher signature: expected 0x followed by 130 hex digits (65 bytes)")
    try:
        bytes.fromhex(sig[2:])
    except ValueError:
        fail("bad voucher signature: not hex")
    return voucher


@channel_app.command("close")
def channel_close(
    chain_home: ChainHome,
    voucher_file: Annotated[
        str, typer.Argument(help="Voucher JSON (from `ledger channel voucher`), or - for stdin.")
    ],
    chain_rpc: ChainRpc = None,
    key_index: KeyIndex = 0,
    private_key: PrivateKey = None,
    as_json: JsonOption = False,
) -> None:
    """Close a channel as its recipient with the latest voucher: the recipient gets what the
    voucher adds, the rest of the deposit goes back to the sender."""
    from eth_keys.exceptions import BadSignature
    from web3.logs import DISCARD

    from noosphere.ledger import ChannelStatus, LedgerError

    voucher = _read_voucher(voucher_file)
    client = _client(chain_rpc, chain_home, key_index, private_key)
    view = _channel(client, voucher.channel_id)
    if view.status is not ChannelStatus.OPEN:
        fail(f"channel {view.channel_id} is already closed")
    try:
        signer = client.channels.voucher_signer(voucher)
    except BadSignature as exc:
        fail(f"bad voucher signature: {exc}")
    except LedgerError as exc:
        fail(str(exc))
    if signer != view.sender:
        fail(
            f"bad voucher signature: signed by {signer}, not by the channel's sender {view.sender}"
        )
    try:
        receipt = client.channels.close(voucher)
    except LedgerError as exc:
        fail(str(exc))
    events = client.channels.contract.events.ChannelClosed().process_receipt(
        receipt, errors=DISCARD
    )
    to_recipient = int(events[0]["args"]["toRecipient"]) if events else 0
    to_sender = int(events[0]["args"]["toSender"]) if events else 0
    tx = "0x" + bytes(receipt["transactionHash"]).hex()
    if as_json:
        return print_json(
            {
                "channel_id": view.channel_id,
                "to_recipient": to_recipient,
                "to_sender": to_sender,
                "tx": tx,
            }
        )
    out.print(
        f"closed channel {view.channel_id}: {to_recipient} to the recipient {view.recipient},"
        f" {to_sender} back to the sender {view.sender}",
        highlight=False,
        soft_wrap=True,
    )


@channel_app.command("show")
def channel_show(
    chain_home: ChainHome,
    channel_id: Annotated[str, typer.Argument(help="Channel id (0x + 64 hex digits).")],
    chain_rpc: ChainRpc = None,
    key_index: KeyIndex = 0,
    private_key: PrivateKey = None,
    as_json: JsonOption = False,
) -> None:
    """Show one channel: sender, recipient, deposit, paid out, expiry, status."""
    client = _client(chain_rpc, chain_home, key_index, private_key)
    _show_channel(_channel(client, channel_id), as_json)
