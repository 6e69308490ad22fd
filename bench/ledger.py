"""Settle phase benchmark: gas and throughput of the noosphere contracts on the pinned anvil.

Setup: a fresh anvil (``LocalChain.start`` in a temporary directory, state dumps every hour so
they do not interfere), the four contracts deployed by dev account 0 (``deploy_all``, grace period
``--grace``), NOOS minted to every account used. Accounts are anvil's public dev keys
(``DEV_MNEMONIC``): 0 owner, 1-4 requesters (payers), 5-8 agents (payees), 9 a third party.
Every transaction goes through ``LedgerClient`` (local signing, its nonce manager, one receipt
wait per transaction); anvil mines each transaction on arrival (automine).

What is measured:

* Gas per operation (``gasUsed`` of the receipt, so the 21,000 base and calldata are included),
  beside a plain ERC-20 transfer: transfer, approve (zero to non-zero allowance), escrow open
  after an exact approve (the client's default path), openWithPermit (EIP-2612, no approve),
  commitResult, release, claim (after deadline + grace, the clock moved with
  ``evm_increaseTime``/``evm_mine``), refund (after the deadline, sent by a third party),
  channel open after an approve, withdraw (one voucher, verified on chain) and close (with the
  next voucher, verified on chain). Steady state: a ballast escrow and a ballast channel stay
  open and every account already holds NOOS, so no token balance goes from zero to non-zero or
  back inside a measured transaction (that would add 17,100 gas or earn a refund).
  Voucher verification: the contract has no public view that checks a voucher (its
  ``_verifyVoucher`` is private and runs inside withdraw and close); the table gives
  ``eth_estimateGas`` of the public ``voucherDigest`` view (the EIP-712 hash the check
  recomputes), and the ecrecover precompile adds 3,000 gas to that inside withdraw/close.
* Settlements per second: ``--settlements`` full escrow lifecycles (open, commitResult,
  release: 3 transactions each) sent one after another by one requester/agent pair, then the
  same count spread over ``--threads`` threads, each with its own requester/agent pair. Each
  requester approved the total once beforehand (not counted). Reported: transactions/s and
  settlements/s (wall clock over the whole run), and the gas of every lifecycle.
* Amortized gas per task, ``--tasks`` micro-tasks of ``--price`` token units each:

  - channel (measured): one approve + one open with deposit tasks x price, ``--tasks``
    off-chain vouchers of cumulative amounts price, 2 x price, ... (each signed by the payer
    with ``sign_voucher`` and checked by the payee with ``voucher_signer``, both timed; the
    pure signing time with the EIP-712 domain cached is timed too), one close with the last
    voucher; per task = (approve + open + close) / tasks;
  - one escrow per task (extrapolated): the mean gas of the sequential lifecycles measured
    above (open + commitResult + release) times tasks, plus one approve.

  Goal: under 1,000 gas per micro-task through the channel (PASS/FAIL).

Every result is checked (escrow statuses, token balances after the lifecycles and after the
channel closes, every voucher's recovered signer); a mismatch ends the run with exit status 1.

Output: rich tables and JSON (``--json``, default bench/results/ledger.json) with machine info,
the anvil version and every figure.

Run time: about 30-60 s with the defaults on 2 cores (anvil start, 600 + 600 lifecycle
transactions, 1,000 vouchers). ``--smoke`` runs every part (gas table, sequential and
concurrent settlements, the channel) with 6 settlements over 2 threads and 20 vouchers in a few
seconds, to check that the benchmark works; its JSON goes to a temporary file unless ``--json``
is given.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from benchkit import BenchParser, check_args, machine_info, stop_on_signals, write_results
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.logs import DISCARD

from noosphere.ledger import (
    ChannelStatus,
    EscrowStatus,
    LedgerClient,
    LedgerError,
    Voucher,
)
from noosphere.ledger.chain import DEV_MNEMONIC, LocalChain, anvil_binary

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON = BENCH_DIR / "results" / "ledger.json"
TOKEN = 10**18
GOAL_GAS = 1_000
FAR_FUTURE_S = 10 * 365 * 24 * 3600
ECRECOVER_GAS = 3_000
MAX_THREADS = 4  # requesters 1-4, agents 5-8
SMOKE = {"settlements": 6, "threads": 2, "tasks": 20}  # --smoke: the concurrent run included


class BenchError(RuntimeError):
    """A result did not check out; the message is one line."""


def progress(message: str) -> None:
    print(f"[ledger] {message}", file=sys.stderr, flush=True)


def check(ok: bool, message: str) -> None:
    if not ok:
        raise BenchError(message)


# ---------------------------------------------------------------------------------- the chain


def rpc(url: str, method: str, *params: object) -> Any:
    body = httpx.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    ).json()
    if "error" in body:
        raise BenchError(f"{method}: {body['error']}")
    return body["result"]


def advance(url: str, seconds: int) -> None:
    """Moves the chain clock forward and mines a block at the new time."""
    rpc(url, "evm_increaseTime", seconds)
    rpc(url, "evm_mine")


def dev_accounts(n: int) -> list[LocalAccount]:
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(n)
    ]


def anvil_version() -> str | None:
    try:
        out = subprocess.run(
            [str(anvil_binary()), "--version"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


@dataclass
class Ledger:
    url: str
    owner: LedgerClient
    requesters: list[LedgerClient]
    agents: list[LedgerClient]
    third: LedgerClient
    grace_s: int


def gas(receipt: Any) -> int:
    return int(receipt["gasUsed"])


def setup(url: str, args: argparse.Namespace) -> Ledger:
    accounts = dev_accounts(10)
    owner = LedgerClient(url, accounts[0])
    owner.deploy_all(grace_period_s=args.grace)
    requesters = [owner.for_account(a) for a in accounts[1:5]]
    agents = [owner.for_account(a) for a in accounts[5:9]]
    third = owner.for_account(accounts[9])
    ledger = Ledger(url, owner, requesters, agents, third, args.grace)
    # Enough for the lifecycles, the channel and the gas table, with room to spare.
    need = (args.settlements + 10) * args.amount + args.tasks * args.price + 100 * TOKEN
    for client in requesters:
        owner.tokens.mint(client.address, need)
    for client in [*agents, third]:
        owner.tokens.mint(client.address, TOKEN)  # every balance starts non-zero (steady state)
    # Ballast: the escrow and channel contracts never hold zero tokens during the measurements.
    r, a = requesters[0], agents[0]
    far = r.timestamp() + FAR_FUTURE_S
    r.escrows.open("ballast", a.address, 1, far)
    r.channels.open(a.address, 1, far)
    return ledger


# ---------------------------------------------------------------------------------- gas table


def open_channel_receipt(client: LedgerClient, recipient: str, deposit: int, expiry: int) -> Any:
    """``PaymentChannel.open`` (allowance already given): the receipt and the channel id."""
    receipt = client.transactor.transact(
        client.channels.contract.functions.open(recipient, deposit, expiry)
    )
    events = client.channels.contract.events.ChannelOpened().process_receipt(
        receipt, errors=DISCARD
    )
    check(bool(events), "PaymentChannel.open: no ChannelOpened event")
    return receipt, "0x" + bytes(events[0]["args"]["channelId"]).hex()


def measure_gas(ledger: Ledger, args: argparse.Namespace) -> list[dict[str, Any]]:
    r, a, third = ledger.requesters[0], ledger.agents[0], ledger.third
    amount = args.amount
    rows: list[dict[str, Any]] = []

    def add(operation: str, value: int, caller: str, note: str = "") -> None:
        rows.append({"operation": operation, "gas": value, "caller": caller, "note": note})

    add(
        "ERC-20 transfer",
        gas(r.tokens.transfer(a.address, amount)),
        "requester",
        "non-zero balances",
    )
    add(
        "ERC-20 approve",
        gas(r.tokens.approve(third.address, amount)),
        "requester",
        "allowance 0 -> non-zero",
    )
    deadline = r.timestamp() + 3600
    approve_escrow = gas(r.tokens.approve(r.escrows.address, amount))
    open_escrow = gas(r.escrows.open("gas-release", a.address, amount, deadline))
    add("escrow open", open_escrow, "requester", "after an exact approve (allowance -> 0)")
    add("escrow approve + open", approve_escrow + open_escrow, "requester", "2 transactions")
    add(
        "escrow openWithPermit",
        gas(r.escrows.open_with_permit("gas-permit", a.address, amount, deadline)),
        "requester",
        "EIP-2612 permit, 1 transaction",
    )
    add(
        "escrow commitResult",
        gas(a.escrows.commit_result("gas-release", Web3.keccak(text="result"))),
        "agent",
    )
    add("escrow release", gas(r.escrows.release("gas-release")), "requester", "after commitResult")
    check(r.escrows.get("gas-release").status is EscrowStatus.RELEASED, "release: wrong status")
    r.escrows.release("gas-permit")

    # claim and refund: deadline (and grace) passed on the chain clock.
    deadline = r.timestamp() + 60
    r.escrows.open("gas-claim", a.address, amount, deadline)
    r.escrows.open("gas-refund", a.address, amount, deadline)
    a.escrows.commit_result("gas-claim", Web3.keccak(text="claimed"))
    advance(ledger.url, 61 + ledger.grace_s)
    add("escrow claim", gas(a.escrows.claim("gas-claim")), "agent", "after deadline + grace")
    add(
        "escrow refund",
        gas(third.escrows.refund("gas-refund")),
        "third party",
        "after the deadline",
    )
    check(r.escrows.get("gas-claim").status is EscrowStatus.CLAIMED, "claim: wrong status")
    check(r.escrows.get("gas-refund").status is EscrowStatus.REFUNDED, "refund: wrong status")

    # Payment channel: approve + open, withdraw with voucher 1, close with voucher 2.
    deposit = 10 * amount
    expiry = r.timestamp() + 3600
    approve_channel = gas(r.tokens.approve(r.channels.address, deposit))
    receipt, cid = open_channel_receipt(r, a.address, deposit, expiry)
    add("channel open", gas(receipt), "payer", "after an exact approve")
    add("channel approve + open", approve_channel + gas(receipt), "payer", "2 transactions")
    first, second = r.channels.sign_voucher(cid, amount), r.channels.sign_voucher(cid, 3 * amount)
    add(
        "channel withdraw",
        gas(a.channels.withdraw(first)),
        "payee",
        "voucher verified on chain, channel stays open",
    )
    add(
        "channel close",
        gas(a.channels.close(second)),
        "payee",
        "voucher verified on chain, 2 transfers (payee, rest to payer)",
    )
    view = r.channels.get(cid)
    check(
        view.status is ChannelStatus.CLOSED and view.paid == 3 * amount,
        f"channel close: status {view.status.name}, paid {view.paid}",
    )

    digest_fn = r.channels.contract.functions.voucherDigest(bytes.fromhex(cid[2:]), 3 * amount)
    digest_gas = int(digest_fn.estimate_gas({"from": r.address}))
    add(
        "voucher verify",
        digest_gas,
        "view",
        "no public verify view (checked inside withdraw/close); shown: eth_estimateGas of the"
        f" voucherDigest view, ecrecover adds {ECRECOVER_GAS:,} on chain",
    )
    base = rows[0]["gas"]
    for row in rows:
        row["vs_transfer"] = row["gas"] / base
    return rows


# ----------------------------------------------------------------------- settlements per second


def lifecycles(
    requester: LedgerClient, agent: LedgerClient, ids: list[str], amount: int, deadline: int
) -> list[int]:
    """open, commitResult, release for every task id; the gas of each lifecycle."""
    out = []
    result = Web3.keccak(text="bench result")
    for tid in ids:
        used = gas(requester.escrows.open(tid, agent.address, amount, deadline))
        used += gas(agent.escrows.commit_result(tid, result))
        used += gas(requester.escrows.release(tid))
        out.append(used)
    return out


def measure_settlements(
    ledger: Ledger, n: int, threads: int, amount: int, tag: str
) -> dict[str, Any]:
    pairs = list(zip(ledger.requesters[:threads], ledger.agents[:threads], strict=True))
    shares = [n // threads + (1 if i < n % threads else 0) for i in range(threads)]
    ids = [[f"{tag}-{t}-{i}" for i in range(share)] for t, share in enumerate(shares)]
    for (r, _a), share in zip(pairs, shares, strict=True):
        r.tokens.approve(r.escrows.address, share * amount)  # once, not counted
    before = [a.tokens.balance_of() for _r, a in pairs]
    deadline = ledger.owner.timestamp() + 24 * 3600
    started = time.perf_counter()
    if threads == 1:
        per_thread = [lifecycles(*pairs[0], ids[0], amount, deadline)]
    else:
        barrier = threading.Barrier(threads)

        def work(t: int) -> list[int]:
            barrier.wait()
            return lifecycles(*pairs[t], ids[t], amount, deadline)

        with ThreadPoolExecutor(threads) as pool:
            per_thread = list(pool.map(work, range(threads)))
    elapsed = time.perf_counter() - started
    for (r, a), share, old, mine in zip(pairs, shares, before, ids, strict=True):
        got = a.tokens.balance_of() - old
        check(got == share * amount, f"{tag}: agent {a.address} received {got}, not {share}x")
        if share:
            last = r.escrows.get(mine[-1])
            check(last.status is EscrowStatus.RELEASED, f"{tag}: last escrow {last.status.name}")
    gas_each = [g for chunk in per_thread for g in chunk]
    return {
        "mode": "sequential" if threads == 1 else "concurrent",
        "threads": threads,
        "settlements": n,
        "transactions": 3 * n,
        "elapsed_s": elapsed,
        "tx_per_s": 3 * n / elapsed,
        "settlements_per_s": n / elapsed,
        "ms_per_settlement": elapsed / n * 1e3,
        "gas_per_settlement_mean": statistics.mean(gas_each),
        "gas_per_settlement_min": min(gas_each),
        "gas_per_settlement_max": max(gas_each),
        "gas_per_settlement": gas_each,
    }


# --------------------------------------------------------------------------- amortized per task


def voucher_typed_data(domain: dict[str, Any], channel_id: bytes, cumulative: int) -> Any:
    """The client's voucher as EIP-712 typed data (PaymentChannel.VOUCHER_TYPEHASH)."""
    return encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Voucher": [
                    {"name": "channelId", "type": "bytes32"},
                    {"name": "cumulativeAmount", "type": "uint256"},
                ],
            },
            "primaryType": "Voucher",
            "domain": domain,
            "message": {"channelId": channel_id, "cumulativeAmount": cumulative},
        }
    )


def timing(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    return {
        "count": len(samples),
        "total_s": sum(samples),
        "median_ms": statistics.median(ordered) * 1e3,
        "p90_ms": ordered[max(0, -(-len(ordered) * 9 // 10) - 1)] * 1e3,
        "per_s": len(samples) / sum(samples),
    }


def measure_channel(ledger: Ledger, args: argparse.Namespace) -> dict[str, Any]:
    payer, payee = ledger.requesters[1 % len(ledger.requesters)], ledger.agents[1]
    tasks, price = args.tasks, args.price
    deposit = tasks * price
    payer_before, payee_before = payer.tokens.balance_of(), payee.tokens.balance_of()
    approve_gas = gas(payer.tokens.approve(payer.channels.address, deposit))
    receipt, cid = open_channel_receipt(payer, payee.address, deposit, payer.timestamp() + 3600)
    open_gas = gas(receipt)

    sign_s: list[float] = []
    verify_s: list[float] = []
    vouchers: list[Voucher] = []
    for i in range(1, tasks + 1):
        t0 = time.perf_counter()
        voucher = payer.channels.sign_voucher(cid, i * price)
        t1 = time.perf_counter()
        signer = payee.channels.voucher_signer(voucher)
        t2 = time.perf_counter()
        check(signer == payer.address, f"voucher {i}: signer {signer}, not the payer")
        sign_s.append(t1 - t0)
        verify_s.append(t2 - t1)
        vouchers.append(voucher)

    # Pure signing (domain fetched once): what sign_voucher costs without its eth_call.
    _f, name, version, chain_id, verifying, _s, _e = payer.transactor.call(
        payer.channels.contract.functions.eip712Domain()
    )
    domain = {"name": name, "version": version, "chainId": chain_id, "verifyingContract": verifying}
    raw_cid = bytes.fromhex(cid[2:])
    local_s: list[float] = []
    for i in range(1, tasks + 1):
        t0 = time.perf_counter()
        signed = payer.account.sign_message(voucher_typed_data(domain, raw_cid, i * price))
        local_s.append(time.perf_counter() - t0)
        if i == tasks:
            check(
                "0x" + bytes(signed.signature).hex() == vouchers[-1].signature,
                "local voucher signature differs from the client's",
            )

    close_gas = gas(payee.channels.close(vouchers[-1]))
    view = payer.channels.get(cid)
    check(
        view.status is ChannelStatus.CLOSED and view.paid == deposit,
        f"channel: status {view.status.name}, paid {view.paid} of {deposit}",
    )
    check(
        payee.tokens.balance_of() - payee_before == deposit, "channel: payee was not paid in full"
    )
    check(payer_before - payer.tokens.balance_of() == deposit, "channel: payer paid a wrong amount")
    total = approve_gas + open_gas + close_gas
    return {
        "tasks": tasks,
        "price": price,
        "transactions": 3,
        "approve_gas": approve_gas,
        "open_gas": open_gas,
        "close_gas": close_gas,
        "total_gas": total,
        "gas_per_task": total / tasks,
        "gas_per_task_without_approve": (open_gas + close_gas) / tasks,
        "sign_voucher": timing(sign_s),
        "sign_voucher_note": (
            "LedgerClient.channels.sign_voucher: one eth_call (eip712Domain) + signing"
        ),
        "voucher_signer": timing(verify_s),
        "voucher_signer_note": (
            "LedgerClient.channels.voucher_signer: eth_call (eip712Domain) + ecrecover"
        ),
        "sign_local": timing(local_s),
        "sign_local_note": "eth_account EIP-712 encode + sign, domain cached (no RPC)",
        "measured": True,
    }


def escrow_per_task(sequential: dict[str, Any], approve_gas: int, tasks: int) -> dict[str, Any]:
    mean = sequential["gas_per_settlement_mean"]
    total = mean * tasks + approve_gas
    return {
        "tasks": tasks,
        "transactions": 3 * tasks + 1,
        "gas_per_lifecycle_mean": mean,
        "approve_gas": approve_gas,
        "total_gas": total,
        "gas_per_task": total / tasks,
        "measured": False,
        "how": f"extrapolated: mean of {sequential['settlements']} measured lifecycles"
        f" (open + commitResult + release) x {tasks} + one approve",
    }


# ------------------------------------------------------------------------------------- output


def console() -> Any:
    from rich.console import Console

    out = Console()
    return out if out.is_terminal else Console(width=200)  # piped output would wrap at 80


def print_report(
    gas_rows: list[dict[str, Any]],
    throughput: list[dict[str, Any]],
    channel: dict[str, Any],
    escrow: dict[str, Any],
    goal: dict[str, Any],
) -> None:
    from rich.table import Table

    out = console()
    table = Table(title="Gas per operation (receipt gasUsed, 21,000 base included), anvil")
    for name in ("operation", "gas", "x transfer", "sent by", "note"):
        table.add_column(name, justify="right" if name in ("gas", "x transfer") else "left")
    for row in gas_rows:
        table.add_row(
            row["operation"],
            f"{row['gas']:,}",
            f"{row['vs_transfer']:.2f}",
            row["caller"],
            row["note"],
        )
    out.print(table)

    tput = Table(title="Escrow settlements (open + commitResult + release) through LedgerClient")
    for name in ("mode", "threads", "settlements", "txs", "s", "tx/s", "settlements/s", "gas"):
        tput.add_column(name, justify="left" if name == "mode" else "right")
    for t in throughput:
        tput.add_row(
            t["mode"],
            str(t["threads"]),
            str(t["settlements"]),
            str(t["transactions"]),
            f"{t['elapsed_s']:.2f}",
            f"{t['tx_per_s']:.1f}",
            f"{t['settlements_per_s']:.1f}",
            f"{t['gas_per_settlement_mean']:,.0f}",
        )
    out.print(tput)

    tasks = channel["tasks"]
    amort = Table(title=f"Amortized on-chain gas per micro-task, {tasks:,} tasks")
    for name in ("path", "on-chain txs", "total gas", "gas / task", "how"):
        amort.add_column(name, justify="left" if name in ("path", "how") else "right")
    amort.add_row(
        "one payment channel",
        str(channel["transactions"]),
        f"{channel['total_gas']:,}",
        f"{channel['gas_per_task']:,.1f}",
        f"measured: approve {channel['approve_gas']:,} + open {channel['open_gas']:,} + close"
        f" {channel['close_gas']:,}, {tasks:,} off-chain vouchers",
    )
    amort.add_row(
        "one escrow per task",
        f"{escrow['transactions']:,}",
        f"{escrow['total_gas']:,.0f}",
        f"{escrow['gas_per_task']:,.1f}",
        escrow["how"],
    )
    out.print(amort)
    sv, vs, sl = channel["sign_voucher"], channel["voucher_signer"], channel["sign_local"]
    out.print(
        f"vouchers: {tasks:,} signed by the payer in {sv['total_s']:.2f} s (median"
        f" {sv['median_ms']:.2f} ms, {sv['per_s']:.0f}/s, sign_voucher incl. one eth_call);"
        f" checked by the payee in {vs['total_s']:.2f} s (median {vs['median_ms']:.2f} ms,"
        f" voucher_signer incl. one eth_call); pure signing with the domain cached median"
        f" {sl['median_ms']:.3f} ms ({sl['per_s']:.0f}/s)"
    )
    out.print(
        f"channel vs escrow per task: {escrow['gas_per_task'] / channel['gas_per_task']:,.0f}x"
        " less gas through the channel"
    )
    verdict = "PASS" if goal["pass"] else "FAIL"
    out.print(
        f"goal: amortized gas per micro-task through one channel under {GOAL_GAS:,}:"
        f" {goal['channel_gas_per_task']:,.1f} => {verdict}"
    )


# ----------------------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = BenchParser("bench/ledger.py", __doc__, results=DEFAULT_JSON, smoke=SMOKE)
    parser.add_argument(
        "--settlements", type=int, default=200, help="escrow lifecycles per throughput run"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=4,
        help=f"threads of the concurrent run (1..{MAX_THREADS}; 1 skips it)",
    )
    parser.add_argument(
        "--tasks", type=int, default=1000, help="micro-tasks paid through one channel"
    )
    parser.add_argument(
        "--price", type=int, default=10**15, help="token units per micro-task (voucher step)"
    )
    parser.add_argument(
        "--amount", type=int, default=TOKEN, help="token units per escrow in the lifecycles"
    )
    parser.add_argument(
        "--grace", type=int, default=3600, help="TaskEscrow grace period in seconds"
    )
    args = parser.parse_args(argv)
    check_args(
        parser,
        [
            (args.settlements >= 1, "--settlements must be >= 1"),
            (1 <= args.threads <= MAX_THREADS, f"--threads must be in 1..{MAX_THREADS}"),
            (args.threads <= args.settlements, "--threads must not exceed --settlements"),
            (args.tasks >= 1, "--tasks must be >= 1"),
            (args.price >= 1, "--price must be >= 1"),
            (args.amount >= 1, "--amount must be >= 1"),
            (args.grace >= 0, "--grace must be >= 0"),
        ],
    )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_signals()
    info = machine_info(["web3"])
    info["anvil"] = anvil_version()
    started = time.monotonic()
    chain = None
    with tempfile.TemporaryDirectory(prefix="noosphere-bench-ledger-") as tmp:
        try:
            progress("starting anvil, deploying, funding accounts")
            chain = LocalChain.start(Path(tmp), state_interval_s=3600)
            ledger = setup(chain.runtime.rpc_url, args)
            progress("gas per operation")
            gas_rows = measure_gas(ledger, args)
            progress(f"{args.settlements} sequential settlements")
            throughput = [measure_settlements(ledger, args.settlements, 1, args.amount, "seq")]
            if args.threads > 1:
                progress(f"{args.settlements} settlements over {args.threads} threads")
                throughput.append(
                    measure_settlements(ledger, args.settlements, args.threads, args.amount, "par")
                )
            progress(f"{args.tasks} micro-tasks through one channel")
            channel = measure_channel(ledger, args)
        except (BenchError, LedgerError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            progress("interrupted")
            return 130
        finally:
            if chain is not None:
                chain.stop()
    approve_gas = next(r["gas"] for r in gas_rows if r["operation"] == "ERC-20 approve")
    escrow = escrow_per_task(throughput[0], approve_gas, args.tasks)
    goal = {
        "limit_gas_per_task": GOAL_GAS,
        "channel_gas_per_task": channel["gas_per_task"],
        "escrow_gas_per_task": escrow["gas_per_task"],
        "pass": channel["gas_per_task"] < GOAL_GAS,
    }
    print_report(gas_rows, throughput, channel, escrow, goal)
    total = time.monotonic() - started
    parameters = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    payload = {
        "benchmark": "bench/ledger.py",
        "machine": info,
        "parameters": parameters,
        "chain": "anvil (automine), chain id 31337",
        "gas": gas_rows,
        "settlements": throughput,
        "amortized": {"channel": channel, "escrow_per_task": escrow},
        "goal": goal,
        "total_run_s": total,
    }
    write_results(args.json, payload)
    console().print(f"total run time {total:.0f} s; results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
