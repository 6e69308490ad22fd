"""Reentrancy against the real contracts on anvil: a token that hands control to the receiver in
the middle of every payment (ERC-777 style hooks) and malicious contract accounts that use it to
re-enter the escrow or the payment channel, trying to be paid twice.

The committed ``TaskEscrow`` and ``PaymentChannel`` artifacts are deployed over the test-only
``HookToken`` (tests/integration/contracts/, compiled here with the pinned solc-js). Every attack
runs in two modes: ``swallow`` (the attacker catches the failed re-entry, so the outer payment
completes: it must be paid exactly once) and ``bubble`` (the attacker propagates the failure: the
whole payment reverts and nothing moves). The dispute path is covered too: a refund after the
arbiter stayed silent, a resolve of a disputed escrow, and a dispute attempted from inside a
payment. In every case the re-entry must fail with
``ReentrancyGuardReentrantCall``, the state the victim exposes mid-payment must already be final
(checks-effects-interactions), and the token supply must sit exactly where the open escrows and
channels say. ``NaiveEscrow`` (pay first, record later, no guard) is the positive control: the
same harness drains it, so a passing attack test is not a harness that never re-enters.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from noosphere.ledger import (
    CONTRACT_NAMES,
    ChannelStatus,
    Deployment,
    EscrowStatus,
    LedgerClient,
    LedgerError,
    decode_revert,
    load_artifact,
)
from noosphere.ledger.chain import DEV_MNEMONIC, LocalChain

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = Path(__file__).resolve().parent / "contracts"
TOKEN = 10**18
GRACE_S = 60
ARBITRATION_S = 120
MODES = ["swallow", "bubble"]
ZERO = "0x" + "00" * 20
ESCROW_TUPLE = "(address,uint64,uint8,address,uint64,address,uint64,uint256,bytes32)"
CHANNEL_TUPLE = "(address,uint64,uint8,address,uint256,uint256)"


def compile_test_contracts() -> dict[str, dict[str, Any]]:
    if not (ROOT / "node_modules" / "solc").is_dir():
        pytest.skip(
            "node_modules is missing (run `make install`): no solc-js for the test contracts"
        )
    result = subprocess.run(
        ["node", str(CONTRACTS / "compile.mjs")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    compiled: dict[str, dict[str, Any]] = json.loads(result.stdout)
    return compiled


def rpc(url: str, method: str, *params: object) -> object:
    reply = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    body = reply.json()
    assert "error" not in body, body
    return body["result"]


def advance(url: str, seconds: int) -> None:
    rpc(url, "evm_increaseTime", seconds)
    rpc(url, "evm_mine")


@dataclass
class Evm:
    chain: LocalChain
    compiled: dict[str, dict[str, Any]]
    owner: LedgerClient  # deploys everything and drives the attacker contracts
    requester: LedgerClient
    bystander: LedgerClient
    stranger: LedgerClient
    payer: LedgerClient
    naive: Contract
    holders: list[str] = field(default_factory=list)
    tasks: list[bytes] = field(default_factory=list)  # every escrow opened on TaskEscrow
    channels: list[str] = field(default_factory=list)  # every channel opened
    naive_tasks: dict[bytes, int] = field(default_factory=dict)  # NaiveEscrow task -> amount

    @property
    def url(self) -> str:
        return self.chain.runtime.rpc_url

    def deploy(self, name: str, *args: Any) -> Contract:
        artifact = self.compiled[name]
        factory = self.owner.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        receipt = self.owner.transactor.transact(factory.constructor(*args), label=f"deploy {name}")
        address = receipt["contractAddress"]
        self.holders.append(address)
        return self.owner.w3.eth.contract(address=address, abi=artifact["abi"])

    def attacker(self) -> Contract:
        return self.deploy("ReentrantAccount", self.owner.tokens.address)

    def exec(self, account: Contract, target: Contract, fn: str, *args: Any) -> Any:
        """``account`` (a ReentrantAccount owned by ``owner``) calls ``target.fn(*args)``."""
        data = target.encode_abi(fn, args=list(args))
        return self.owner.transactor.transact(
            account.functions.exec(target.address, data), label=f"{fn}"
        )

    def arm(
        self,
        account: Contract,
        target: Contract,
        fn: str,
        args: list[Any],
        *,
        bubble: bool,
        probe: tuple[Contract, str, list[Any]],
        on_send: bool = False,
    ) -> None:
        """The next payment to ``account`` re-enters ``target.fn(*args)`` once."""
        probe_contract, probe_fn, probe_args = probe
        self.owner.transactor.transact(
            account.functions.arm(
                target.address,
                target.encode_abi(fn, args=args),
                bubble,
                on_send,
                probe_contract.address,
                probe_contract.encode_abi(probe_fn, args=probe_args),
            )
        )

    def disarm(self, account: Contract) -> None:
        self.owner.transactor.transact(account.functions.arm(ZERO, b"", False, False, ZERO, b""))

    def fund(self, account: Contract, spender: str, amount: int) -> None:
        """Mints ``amount`` to the contract account and lets it approve ``spender``."""
        self.owner.tokens.mint(account.address, amount)
        self.exec(account, self.owner.tokens.contract, "approve", spender, amount)

    def assert_conserved(self) -> None:
        """Every token unit is where the books say: the escrow holds exactly its unsettled
        escrows, the channel exactly its open channels' unpaid deposits, and no unit vanished
        or appeared."""
        c = self.owner
        supply = c.tokens.total_supply()
        assert sum(c.tokens.balance_of(h) for h in self.holders) == supply
        unsettled = [c.escrows.get(t) for t in self.tasks]
        locked = sum(e.amount for e in unsettled if not e.status.final)
        assert c.tokens.balance_of(c.escrows.address) == locked
        channels = [c.channels.get(cid) for cid in self.channels]
        open_ = sum(ch.deposit - ch.paid for ch in channels if ch.status is ChannelStatus.OPEN)
        assert c.tokens.balance_of(c.channels.address) == open_
        naive_locked = sum(self.naive_tasks.values())
        assert c.tokens.balance_of(self.naive.address) == naive_locked


def dev_accounts(n: int) -> list[LocalAccount]:
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(n)
    ]


@pytest.fixture(scope="module")
def evm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Evm]:
    compiled = compile_test_contracts()
    chain = LocalChain.start(tmp_path_factory.mktemp("reentrancy"))
    try:
        accounts = dev_accounts(5)
        owner = LedgerClient(chain.runtime.rpc_url, accounts[0])
        start_block = owner.w3.eth.block_number
        hook = _deploy_raw(owner, compiled["HookToken"])
        escrow = _deploy_raw(owner, load_artifact("TaskEscrow"), hook, GRACE_S, ARBITRATION_S)
        registry = _deploy_raw(owner, load_artifact("AgentRegistry"), escrow)
        channel = _deploy_raw(owner, load_artifact("PaymentChannel"), hook)
        deployment = Deployment(
            chain_id=owner.chain_id,
            token=hook,
            escrow=escrow,
            registry=registry,
            channel=channel,
            deployer=owner.address,
            owner=owner.address,
            grace_period_s=GRACE_S,
            arbitration_period_s=ARBITRATION_S,
            arbiter=accounts[3].address,
            block_number=start_block + 1,
            source_hashes={n: load_artifact(n)["sourceHash"] for n in CONTRACT_NAMES},
        )
        owner.use(deployment)  # the production client drives the production contracts
        naive_address = _deploy_raw(owner, compiled["NaiveEscrow"], hook)
        naive = owner.w3.eth.contract(address=naive_address, abi=compiled["NaiveEscrow"]["abi"])
        requester, bystander, stranger, payer = (owner.for_account(a) for a in accounts[1:])
        state = Evm(chain, compiled, owner, requester, bystander, stranger, payer, naive)
        state.holders = [a.address for a in accounts] + [escrow, channel, naive_address]
        for client in (requester, bystander, payer):
            owner.tokens.mint(client.address, 1_000 * TOKEN)
        # Honest users' money sits in every victim, so a second payment would have funds to take.
        deadline = owner.timestamp() + 86_400
        bystander.escrows.open("bystander", stranger.address, 100 * TOKEN, deadline)
        state.tasks.append(Web3.keccak(text="bystander"))
        state.channels.append(bystander.channels.open(stranger.address, 100 * TOKEN, deadline))
        bystander.tokens.approve(naive_address, 100 * TOKEN)
        tid = Web3.keccak(text="naive-bystander")
        bystander.transactor.transact(naive.functions.open(tid, stranger.address, 100 * TOKEN))
        state.naive_tasks[tid] = 100 * TOKEN
        state.assert_conserved()
        yield state
    finally:
        chain.stop()


def _deploy_raw(client: LedgerClient, artifact: dict[str, Any], *args: Any) -> str:
    factory = client.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = client.transactor.transact(factory.constructor(*args), label="deploy")
    return str(receipt["contractAddress"])


def task_id(name: str, mode: str) -> bytes:
    return bytes(Web3.keccak(text=f"{name}-{mode}"))


def reentry_error(account: Contract) -> str | None:
    name, _args, _text = decode_revert(bytes(account.functions.reentryResult().call()))
    return name


def probed(account: Contract, tuple_type: str) -> tuple[Any, ...]:
    """The victim's record as the attacker saw it from inside the payment."""
    (record,) = abi_decode([tuple_type], bytes(account.functions.probeResult().call()))
    return tuple(record)


def attack(evm: Evm, mode: str, account: Contract, payee: str, amount: int, run: Any) -> int:
    """Runs ``run()`` (the payment that triggers the armed re-entry) in ``mode``; checks the
    payee gained exactly ``amount`` and returns how many payments its hook saw. In ``bubble`` mode
    the attack must revert as a whole; the payment is then made again with the attacker disarmed."""
    c = evm.owner
    before, hooks = c.tokens.balance_of(payee), account.functions.hookCount().call()
    if mode == "bubble":
        with pytest.raises(LedgerError) as info:
            run()
        assert info.value.error == "ReentrancyGuardReentrantCall", info.value
        assert c.tokens.balance_of(payee) == before  # nothing moved
        evm.assert_conserved()
        evm.disarm(account)
        run()
        assert account.functions.attempted().call() is False
    else:
        run()
        assert account.functions.attempted().call() is True
        assert account.functions.reentrySucceeded().call() is False
        assert reentry_error(account) == "ReentrancyGuardReentrantCall"
    evm.assert_conserved()
    assert c.tokens.balance_of(payee) - before == amount
    hook_calls: int = account.functions.hookCount().call() - hooks
    return hook_calls


# ----------------------------------------------------------------------- the positive control


def test_the_harness_drains_a_naive_escrow(evm: Evm) -> None:
    """Pay-then-record without a guard: the colluding agent re-enters release and is paid twice,
    out of the bystander's deposit. The same attack on TaskEscrow (next test) must fail."""
    requester, agent = evm.attacker(), evm.attacker()
    evm.owner.transactor.transact(requester.functions.setAccomplice(agent.address))
    tid, amount = Web3.keccak(text="naive-attack"), 10 * TOKEN
    evm.fund(requester, evm.naive.address, amount)
    evm.exec(requester, evm.naive, "open", tid, agent.address, amount)
    again = requester.encode_abi(
        "exec", args=[evm.naive.address, evm.naive.encode_abi("release", args=[tid])]
    )
    evm.owner.transactor.transact(
        agent.functions.arm(requester.address, again, True, False, ZERO, b"")
    )
    naive_before = evm.owner.tokens.balance_of(evm.naive.address)
    evm.exec(requester, evm.naive, "release", tid)
    assert agent.functions.reentrySucceeded().call() is True
    assert evm.owner.tokens.balance_of(agent.address) == 2 * amount  # paid twice
    assert agent.functions.hookCount().call() == 2
    assert evm.owner.tokens.balance_of(evm.naive.address) == naive_before - 2 * amount
    # the bystander's 100 tokens are now short by `amount`: the books no longer balance
    with pytest.raises(AssertionError):
        evm.assert_conserved()
    evm.naive_tasks[Web3.keccak(text="naive-bystander")] -= amount  # the loss, for later checks
    evm.assert_conserved()


# ------------------------------------------------------------------------------- TaskEscrow


@pytest.mark.parametrize("mode", MODES)
def test_release_reentered_by_a_colluding_agent(evm: Evm, mode: str) -> None:
    """requester A releases to agent B; B's hook makes A release again (A lets B call it)."""
    requester, agent = evm.attacker(), evm.attacker()
    evm.owner.transactor.transact(requester.functions.setAccomplice(agent.address))
    escrow, tid, amount = evm.owner.escrows.contract, task_id("release", mode), 10 * TOKEN
    evm.fund(requester, escrow.address, amount)
    evm.exec(
        requester, escrow, "open", tid, agent.address, amount, evm.owner.timestamp() + 600, ZERO
    )
    evm.tasks.append(tid)
    release_again = [escrow.address, escrow.encode_abi("release", args=[tid])]
    evm.arm(
        agent,
        requester,
        "exec",
        release_again,
        bubble=mode == "bubble",
        probe=(escrow, "getEscrow", [tid]),
    )

    payments = attack(
        evm, mode, agent, agent.address, amount, lambda: evm.exec(requester, escrow, "release", tid)
    )
    assert payments == 1
    assert evm.owner.escrows.get(tid).status is EscrowStatus.RELEASED
    if mode == "swallow":  # mid-payment the escrow already read as settled
        assert probed(agent, ESCROW_TUPLE)[2] == EscrowStatus.RELEASED
    with pytest.raises(LedgerError, match="InvalidStatus"):
        evm.exec(requester, escrow, "release", tid)


@pytest.mark.parametrize("mode", MODES)
def test_claim_reentered_by_the_agent(evm: Evm, mode: str) -> None:
    agent = evm.attacker()
    escrow, tid, amount = evm.owner.escrows.contract, task_id("claim", mode), 7 * TOKEN
    deadline = evm.owner.timestamp() + 60
    evm.requester.escrows.open(tid, agent.address, amount, deadline)
    evm.tasks.append(tid)
    evm.exec(agent, escrow, "commitResult", tid, Web3.keccak(text="result"))
    advance(evm.url, 60 + GRACE_S + 1)
    evm.arm(
        agent, escrow, "claim", [tid], bubble=mode == "bubble", probe=(escrow, "getEscrow", [tid])
    )

    payments = attack(
        evm, mode, agent, agent.address, amount, lambda: evm.exec(agent, escrow, "claim", tid)
    )
    assert payments == 1
    assert evm.owner.escrows.get(tid).status is EscrowStatus.CLAIMED
    if mode == "swallow":
        assert probed(agent, ESCROW_TUPLE)[2] == EscrowStatus.CLAIMED
    with pytest.raises(LedgerError, match="InvalidStatus"):
        evm.exec(agent, escrow, "claim", tid)


@pytest.mark.parametrize("mode", MODES)
def test_refund_reentered_by_the_requester(evm: Evm, mode: str) -> None:
    """Anyone may trigger a refund after the deadline; the requester's hook re-enters refund."""
    requester = evm.attacker()
    escrow, tid, amount = evm.owner.escrows.contract, task_id("refund", mode), 5 * TOKEN
    evm.fund(requester, escrow.address, amount)
    deadline = evm.owner.timestamp() + 60
    evm.exec(requester, escrow, "open", tid, evm.stranger.address, amount, deadline, ZERO)
    evm.tasks.append(tid)
    advance(evm.url, 61)
    evm.arm(
        requester,
        escrow,
        "refund",
        [tid],
        bubble=mode == "bubble",
        probe=(escrow, "getEscrow", [tid]),
    )

    payments = attack(
        evm, mode, requester, requester.address, amount, lambda: evm.stranger.escrows.refund(tid)
    )
    assert payments == 1
    assert evm.owner.escrows.get(tid).status is EscrowStatus.REFUNDED
    if mode == "swallow":
        assert probed(requester, ESCROW_TUPLE)[2] == EscrowStatus.REFUNDED
    with pytest.raises(LedgerError, match="InvalidStatus"):
        evm.stranger.escrows.refund(tid)


@pytest.mark.parametrize("mode", MODES)
def test_resolve_reentered_by_a_colluding_agent(evm: Evm, mode: str) -> None:
    """Arbiter A resolves for agent B; B's hook makes A resolve again."""
    arbiter, agent = evm.attacker(), evm.attacker()
    evm.owner.transactor.transact(arbiter.functions.setAccomplice(agent.address))
    escrow, tid, amount = evm.owner.escrows.contract, task_id("resolve", mode), 3 * TOKEN
    evm.requester.escrows.open(
        tid, agent.address, amount, evm.owner.timestamp() + 600, arbiter.address
    )
    evm.tasks.append(tid)
    resolve_again = [escrow.address, escrow.encode_abi("resolve", args=[tid, True])]
    evm.arm(
        agent,
        arbiter,
        "exec",
        resolve_again,
        bubble=mode == "bubble",
        probe=(escrow, "getEscrow", [tid]),
    )

    payments = attack(
        evm,
        mode,
        agent,
        agent.address,
        amount,
        lambda: evm.exec(arbiter, escrow, "resolve", tid, True),
    )
    assert payments == 1
    assert evm.owner.escrows.get(tid).status is EscrowStatus.RESOLVED_FOR_AGENT
    if mode == "swallow":
        assert probed(agent, ESCROW_TUPLE)[2] == EscrowStatus.RESOLVED_FOR_AGENT


def open_disputed(evm: Evm, requester: Contract, tid: bytes, amount: int, arbiter: str) -> None:
    """``requester`` (a ReentrantAccount) opens an escrow for the EOA ``payer`` as agent, naming
    ``arbiter``; the agent commits and the requester disputes."""
    escrow = evm.owner.escrows.contract
    evm.fund(requester, escrow.address, amount)
    deadline = evm.owner.timestamp() + 600
    evm.exec(requester, escrow, "open", tid, evm.payer.address, amount, deadline, arbiter)
    evm.tasks.append(tid)
    evm.payer.escrows.commit_result(tid, Web3.keccak(text="junk"))
    evm.exec(requester, escrow, "dispute", tid, Web3.keccak(text="delivered"), "junk")
    assert evm.owner.escrows.get(tid).status is EscrowStatus.DISPUTED


@pytest.mark.parametrize("mode", MODES)
def test_refund_after_a_silent_arbiter_reentered_by_the_requester(evm: Evm, mode: str) -> None:
    """The arbiter never answers; anyone refunds after the arbitration period; the requester's
    hook re-enters refund to be paid twice."""
    requester = evm.attacker()
    escrow, tid, amount = evm.owner.escrows.contract, task_id("silent", mode), 6 * TOKEN
    open_disputed(evm, requester, tid, amount, evm.bystander.address)
    advance(evm.url, ARBITRATION_S + 1)
    evm.arm(
        requester,
        escrow,
        "refund",
        [tid],
        bubble=mode == "bubble",
        probe=(escrow, "getEscrow", [tid]),
    )

    payments = attack(
        evm, mode, requester, requester.address, amount, lambda: evm.stranger.escrows.refund(tid)
    )
    assert payments == 1
    assert evm.owner.escrows.get(tid).status is EscrowStatus.REFUNDED
    if mode == "swallow":
        assert probed(requester, ESCROW_TUPLE)[2] == EscrowStatus.REFUNDED
    with pytest.raises(LedgerError, match="InvalidStatus"):
        evm.stranger.escrows.refund(tid)


@pytest.mark.parametrize("mode", MODES)
def test_resolve_of_a_disputed_escrow_reentered_by_the_requester(evm: Evm, mode: str) -> None:
    """The arbiter refunds a disputed escrow; the requester's hook re-enters refund (its
    arbitration period is over by then, so only the guard and the final state stop it)."""
    requester = evm.attacker()
    escrow, tid, amount = evm.owner.escrows.contract, task_id("resolve-disputed", mode), 2 * TOKEN
    open_disputed(evm, requester, tid, amount, evm.bystander.address)
    advance(evm.url, ARBITRATION_S + 1)
    evm.arm(
        requester,
        escrow,
        "refund",
        [tid],
        bubble=mode == "bubble",
        probe=(escrow, "getEscrow", [tid]),
    )

    payments = attack(
        evm,
        mode,
        requester,
        requester.address,
        amount,
        lambda: evm.bystander.escrows.resolve(tid, pay_agent=False),
    )
    assert payments == 1
    assert evm.owner.escrows.get(tid).status is EscrowStatus.RESOLVED_FOR_REQUESTER
    if mode == "swallow":
        assert probed(requester, ESCROW_TUPLE)[2] == EscrowStatus.RESOLVED_FOR_REQUESTER


@pytest.mark.parametrize("mode", MODES)
def test_dispute_reentered_while_the_arbiter_pays_a_colluding_agent(evm: Evm, mode: str) -> None:
    """Requester A and agent B collude: while the arbiter pays B, B makes A dispute the escrow
    (to block the payment and later take a silent-arbiter refund as well)."""
    requester, agent = evm.attacker(), evm.attacker()
    evm.owner.transactor.transact(requester.functions.setAccomplice(agent.address))
    escrow, tid, amount = evm.owner.escrows.contract, task_id("dispute", mode), 3 * TOKEN
    evm.fund(requester, escrow.address, amount)
    deadline = evm.owner.timestamp() + 600
    arbiter = evm.bystander
    evm.exec(requester, escrow, "open", tid, agent.address, amount, deadline, arbiter.address)
    evm.tasks.append(tid)
    evm.exec(agent, escrow, "commitResult", tid, Web3.keccak(text="result"))
    dispute_again = [
        escrow.address,
        escrow.encode_abi("dispute", args=[tid, bytes(32), "from the hook"]),
    ]
    evm.arm(
        agent,
        requester,
        "exec",
        dispute_again,
        bubble=mode == "bubble",
        probe=(escrow, "getEscrow", [tid]),
    )

    payments = attack(
        evm,
        mode,
        agent,
        agent.address,
        amount,
        lambda: arbiter.escrows.resolve(tid, pay_agent=True),
    )
    assert payments == 1
    view = evm.owner.escrows.get(tid)
    assert view.status is EscrowStatus.RESOLVED_FOR_AGENT and view.disputed_at == 0
    if mode == "swallow":
        assert probed(agent, ESCROW_TUPLE)[2] == EscrowStatus.RESOLVED_FOR_AGENT


# --------------------------------------------------------------------------- PaymentChannel


@pytest.mark.parametrize("mode", MODES)
def test_withdraw_reentered_with_the_same_voucher(evm: Evm, mode: str) -> None:
    recipient = evm.attacker()
    channel = evm.owner.channels.contract
    cid = evm.payer.channels.open(recipient.address, 10 * TOKEN, evm.owner.timestamp() + 3600)
    evm.channels.append(cid)
    voucher = evm.payer.channels.sign_voucher(cid, 3 * TOKEN)
    args = [bytes.fromhex(cid[2:]), voucher.cumulative_amount, bytes.fromhex(voucher.signature[2:])]
    evm.arm(
        recipient,
        channel,
        "withdraw",
        args,
        bubble=mode == "bubble",
        probe=(channel, "getChannel", [args[0]]),
    )

    payments = attack(
        evm,
        mode,
        recipient,
        recipient.address,
        3 * TOKEN,
        lambda: evm.exec(recipient, channel, "withdraw", *args),
    )
    assert payments == 1
    assert evm.owner.channels.get(cid).paid == 3 * TOKEN
    if mode == "swallow":
        assert probed(recipient, CHANNEL_TUPLE)[5] == 3 * TOKEN  # `paid` written before paying
    with pytest.raises(LedgerError, match="StaleVoucher"):
        evm.exec(recipient, channel, "withdraw", *args)


@pytest.mark.parametrize("mode", MODES)
def test_close_reentered_with_the_same_voucher(evm: Evm, mode: str) -> None:
    recipient = evm.attacker()
    channel = evm.owner.channels.contract
    cid = evm.payer.channels.open(recipient.address, 10 * TOKEN, evm.owner.timestamp() + 3600)
    evm.channels.append(cid)
    voucher = evm.payer.channels.sign_voucher(cid, 6 * TOKEN)
    args = [bytes.fromhex(cid[2:]), voucher.cumulative_amount, bytes.fromhex(voucher.signature[2:])]
    evm.arm(
        recipient,
        channel,
        "close",
        args,
        bubble=mode == "bubble",
        probe=(channel, "getChannel", [args[0]]),
    )
    payer_before = evm.payer.tokens.balance_of()

    payments = attack(
        evm,
        mode,
        recipient,
        recipient.address,
        6 * TOKEN,
        lambda: evm.exec(recipient, channel, "close", *args),
    )
    assert payments == 1
    assert evm.payer.tokens.balance_of() == payer_before + 4 * TOKEN  # the rest, once
    assert evm.owner.channels.get(cid).status is ChannelStatus.CLOSED
    if mode == "swallow":
        assert probed(recipient, CHANNEL_TUPLE)[2] == ChannelStatus.CLOSED
    with pytest.raises(LedgerError, match="ChannelNotOpen"):
        evm.exec(recipient, channel, "close", *args)


@pytest.mark.parametrize("mode", MODES)
def test_refund_expired_reentered_by_the_sender(evm: Evm, mode: str) -> None:
    sender = evm.attacker()
    channel = evm.owner.channels.contract
    evm.fund(sender, channel.address, 8 * TOKEN)
    receipt = evm.exec(
        sender, channel, "open", evm.stranger.address, 8 * TOKEN, evm.owner.timestamp() + 60
    )
    (opened,) = channel.events.ChannelOpened().process_receipt(receipt, errors=DISCARD)
    cid = "0x" + bytes(opened["args"]["channelId"]).hex()
    evm.channels.append(cid)
    advance(evm.url, 61)
    evm.arm(
        sender,
        channel,
        "refundExpired",
        [bytes.fromhex(cid[2:])],
        bubble=mode == "bubble",
        probe=(channel, "getChannel", [bytes.fromhex(cid[2:])]),
    )

    payments = attack(
        evm,
        mode,
        sender,
        sender.address,
        8 * TOKEN,
        lambda: evm.exec(sender, channel, "refundExpired", bytes.fromhex(cid[2:])),
    )
    assert payments == 1
    assert evm.owner.channels.get(cid).status is ChannelStatus.CLOSED
    if mode == "swallow":
        assert probed(sender, CHANNEL_TUPLE)[2] == ChannelStatus.CLOSED


def test_open_reentered_from_the_senders_hook(evm: Evm) -> None:
    """The token calls the requester before pulling its deposit, when the escrow record already
    exists: re-entering release then would pay the agent out of other escrows' funds."""
    requester = evm.attacker()
    escrow, tid, amount = evm.owner.escrows.contract, task_id("open", "swallow"), 4 * TOKEN
    evm.fund(requester, escrow.address, amount)
    probe = (escrow, "getEscrow", [tid])
    evm.arm(requester, escrow, "release", [tid], bubble=False, probe=probe, on_send=True)
    agent_before = evm.stranger.tokens.balance_of()
    deadline = evm.owner.timestamp() + 600
    evm.exec(requester, escrow, "open", tid, evm.stranger.address, amount, deadline, ZERO)
    evm.tasks.append(tid)
    assert requester.functions.attempted().call() is True
    assert reentry_error(requester) == "ReentrancyGuardReentrantCall"
    assert probed(requester, ESCROW_TUPLE)[2] == EscrowStatus.OPEN  # recorded before the pull
    assert evm.stranger.tokens.balance_of() == agent_before
    assert evm.owner.escrows.get(tid).status is EscrowStatus.OPEN
    evm.assert_conserved()
