"""Settle on a real chain: the ledger client against the pinned anvil, with anvil's public dev keys.

One chain serves the whole module (tests move its clock forward with ``evm_increaseTime``, so every
test reads deadlines from the chain, never from the wall clock); the restart test runs last.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from noosphere.ledger import (
    ChannelStatus,
    Deployment,
    EscrowStatus,
    LedgerClient,
    LedgerError,
)
from noosphere.ledger.chain import DEV_CHAIN_ID, DEV_MNEMONIC, LocalChain
from noosphere.ledger.registry_proof import proof_problem, sign_registration
from noosphere.protocol import NodeKey

pytestmark = pytest.mark.integration

TOKEN = 10**18
GRACE_S = 120
ARBITRATION_S = 300
GAS: dict[str, int] = {}


def rpc(url: str, method: str, *params: object) -> object:
    reply = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    body = reply.json()
    assert "error" not in body, body
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


def record(label: str, receipt: object) -> None:
    GAS[label] = int(receipt["gasUsed"])  # type: ignore[index]


@dataclass
class Ledger:
    home: Path
    chain: LocalChain
    deployment: Deployment
    owner: LedgerClient
    requester: LedgerClient
    agent: LedgerClient
    arbiter: LedgerClient
    stranger: LedgerClient
    payer: LedgerClient

    @property
    def url(self) -> str:
        return self.chain.runtime.rpc_url

    def holders(self) -> list[str]:
        clients = [self.owner, self.requester, self.agent, self.arbiter, self.stranger, self.payer]
        return [c.address for c in clients] + [self.deployment.escrow, self.deployment.channel]


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    home = tmp_path_factory.mktemp("ledger")
    chain = LocalChain.start(home)
    accounts = dev_accounts(6)
    owner = LedgerClient(chain.runtime.rpc_url, accounts[0])
    arbiter = accounts[3]  # the deployment's default arbiter (a third party)
    deployment = owner.deploy_all(
        grace_period_s=GRACE_S, arbitration_period_s=ARBITRATION_S, arbiter=arbiter.address
    )
    deployment.save(home)
    clients = [owner.for_account(a) for a in accounts[1:]]
    state = Ledger(home, chain, deployment, owner, *clients)
    for client in (state.requester, state.payer):
        owner.tokens.mint(client.address, 1_000 * TOKEN)
    try:
        yield state
    finally:
        state.chain.stop()
        if GAS:
            print("\ngas used:", ", ".join(f"{k} {v:,}" for k, v in sorted(GAS.items())))


def test_deploy_saves_a_loadable_deployment(ledger: Ledger) -> None:
    loaded = Deployment.load(ledger.home, DEV_CHAIN_ID)
    assert loaded == ledger.deployment
    assert (ledger.home / "deployments" / f"{DEV_CHAIN_ID}.json").is_file()
    client = LedgerClient(ledger.url, ledger.stranger.account, loaded)
    assert client.transactor.call(client.escrows.contract.functions.gracePeriod()) == GRACE_S
    assert (
        client.transactor.call(client.escrows.contract.functions.arbitrationPeriod())
        == ARBITRATION_S
    )
    assert loaded.arbiter == ledger.arbiter.address
    assert loaded.arbitration_period_s == ARBITRATION_S
    assert client.transactor.call(client.tokens.contract.functions.owner()) == ledger.owner.address
    assert (
        client.transactor.call(client.registry.contract.functions.escrow())
        == ledger.deployment.escrow
    )
    assert (
        client.transactor.call(client.channels.contract.functions.token())
        == ledger.deployment.token
    )
    assert Deployment.load(ledger.home, 1) is None


def test_deploy_all_hands_the_minting_right_to_owner(ledger: Ledger) -> None:
    deployer = LedgerClient(ledger.url, ledger.stranger.account)  # not the shared client
    other = deployer.deploy_all(ledger.arbiter.address, grace_period_s=5)
    assert other.owner == ledger.arbiter.address and other.token != ledger.deployment.token
    assert other.arbiter == ledger.arbiter.address  # by default the owner arbitrates
    assert deployer.deploy_all(grace_period_s=5, arbiter=None).arbiter is None
    minter = LedgerClient(ledger.url, ledger.arbiter.account, other)
    minter.tokens.mint(minter.address, TOKEN)
    assert minter.tokens.balance_of() == TOKEN
    with pytest.raises(LedgerError, match="OwnableUnauthorizedAccount"):
        LedgerClient(ledger.url, ledger.stranger.account, other).tokens.mint(minter.address, 1)


def test_mint_is_owner_only(ledger: Ledger) -> None:
    supply = ledger.owner.tokens.total_supply()
    record("NoosToken.mint", ledger.owner.tokens.mint(ledger.stranger.address, 5 * TOKEN))
    assert ledger.stranger.tokens.balance_of() == 5 * TOKEN
    assert ledger.owner.tokens.total_supply() == supply + 5 * TOKEN
    with pytest.raises(LedgerError, match="OwnableUnauthorizedAccount") as info:
        ledger.stranger.tokens.mint(ledger.stranger.address, TOKEN)
    assert info.value.error == "OwnableUnauthorizedAccount"
    assert info.value.error_args["account"] == ledger.stranger.address.lower()
    record("NoosToken.transfer", ledger.stranger.tokens.transfer(ledger.owner.address, 5 * TOKEN))


def test_escrow_happy_path_moves_exactly_the_amount(ledger: Ledger) -> None:
    r, a = ledger.requester, ledger.agent
    amount = 7 * TOKEN + 3
    before_r, before_a = r.tokens.balance_of(), a.tokens.balance_of()
    deadline = r.timestamp() + 600
    r.escrows.open("happy", a.address, amount, deadline)
    assert r.tokens.balance_of() == before_r - amount
    assert r.tokens.balance_of(ledger.deployment.escrow) >= amount
    view = r.escrows.get("happy")
    assert (view.status, view.amount, view.agent, view.deadline) == (
        EscrowStatus.OPEN,
        amount,
        a.address,
        deadline,
    )
    record("TaskEscrow.commitResult", a.escrows.commit_result("happy", Web3.keccak(text="result")))
    assert r.escrows.get("happy").result_hash == Web3.keccak(text="result").to_0x_hex()
    record("TaskEscrow.release", r.escrows.release("happy"))
    assert r.escrows.get("happy").status is EscrowStatus.RELEASED
    assert r.tokens.balance_of() == before_r - amount
    assert a.tokens.balance_of() == before_a + amount


def test_refund_after_deadline(ledger: Ledger) -> None:
    r, a, s = ledger.requester, ledger.agent, ledger.stranger
    before = r.tokens.balance_of()
    deadline = r.timestamp() + 60
    record("TaskEscrow.open", r.escrows.open("refund-me", a.address, 2 * TOKEN, deadline))
    with pytest.raises(LedgerError, match="TooEarly"):
        s.escrows.refund("refund-me")
    advance(ledger.url, 61)
    with pytest.raises(LedgerError, match="DeadlinePassed"):
        a.escrows.commit_result("refund-me", Web3.keccak(text="late"))
    record("TaskEscrow.refund", s.escrows.refund("refund-me"))  # anyone may trigger; funds go back
    assert r.tokens.balance_of() == before
    assert r.escrows.get("refund-me").status is EscrowStatus.REFUNDED
    with pytest.raises(LedgerError, match="InvalidStatus"):
        r.escrows.release("refund-me")


def test_claim_after_deadline_and_grace_with_a_committed_result(ledger: Ledger) -> None:
    r, a = ledger.requester, ledger.agent
    before_a = a.tokens.balance_of()
    deadline = r.timestamp() + 60
    r.escrows.open("claim-me", a.address, 3 * TOKEN, deadline)
    a.escrows.commit_result("claim-me", Web3.keccak(text="done"))
    with pytest.raises(LedgerError, match="TooEarly") as info:
        a.escrows.claim("claim-me")
    assert info.value.error_args["availableAfter"] == deadline + GRACE_S
    advance(ledger.url, 61)
    with pytest.raises(LedgerError, match="InvalidStatus"):
        r.escrows.refund("claim-me")  # committed: no refund
    with pytest.raises(LedgerError, match="TooEarly"):
        a.escrows.claim("claim-me")  # inside the grace period
    advance(ledger.url, GRACE_S)
    with pytest.raises(LedgerError, match="Unauthorized"):
        r.escrows.claim("claim-me")
    record("TaskEscrow.claim", a.escrows.claim("claim-me"))
    assert a.tokens.balance_of() == before_a + 3 * TOKEN
    assert r.escrows.get("claim-me").status is EscrowStatus.CLAIMED


def test_double_release_reverts_with_the_decoded_error(ledger: Ledger) -> None:
    r, a = ledger.requester, ledger.agent
    r.escrows.open("twice", a.address, TOKEN, r.timestamp() + 600)
    with pytest.raises(LedgerError, match=r"TaskEscrow\.release reverted: Unauthorized"):
        a.escrows.release("twice")
    r.escrows.release("twice")
    with pytest.raises(LedgerError) as info:
        r.escrows.release("twice")
    message = str(info.value)
    assert "InvalidStatus" in message and "status=3" in message and "\n" not in message
    assert info.value.error == "InvalidStatus"
    assert info.value.function == "TaskEscrow.release"
    with pytest.raises(LedgerError, match="EscrowExists"):
        r.escrows.open("twice", a.address, TOKEN, r.timestamp() + 600)
    with pytest.raises(LedgerError, match="EscrowNotFound"):
        r.escrows.release("never-opened")


def test_open_with_permit_needs_no_approve(ledger: Ledger) -> None:
    r, a, arb = ledger.requester, ledger.agent, ledger.arbiter
    escrow = ledger.deployment.escrow
    r.tokens.approve(escrow, 0)
    nonce = r.transactor.call(r.tokens.contract.functions.nonces(r.address))
    before = r.tokens.balance_of()
    deadline = r.timestamp() + 600
    receipt = r.escrows.open_with_permit("permit", a.address, 4 * TOKEN, deadline, arb.address)
    record("TaskEscrow.openWithPermit", receipt)
    assert r.transactor.call(r.tokens.contract.functions.nonces(r.address)) == nonce + 1
    assert r.tokens.allowance(escrow) == 0 and r.tokens.balance_of() == before - 4 * TOKEN
    view = r.escrows.get("permit")
    assert view.arbiter == arb.address and view.amount == 4 * TOKEN
    record("TaskEscrow.resolve", arb.escrows.resolve("permit", pay_agent=False))
    assert r.tokens.balance_of() == before
    # a permit signed by someone else, without allowance: PermitFailed
    forged = ledger.stranger.tokens.sign_permit(escrow, TOKEN, deadline)
    fn = r.escrows.contract.functions.openWithPermit(
        Web3.keccak(text="forged"),
        a.address,
        TOKEN,
        deadline,
        "0x" + "00" * 20,
        forged.deadline,
        forged.v,
        forged.r,
        forged.s,
    )
    with pytest.raises(LedgerError, match="PermitFailed"):
        r.transactor.transact(fn)


def test_payment_channel_vouchers(ledger: Ledger) -> None:
    payer, payee, stranger = ledger.payer, ledger.agent, ledger.stranger
    before_payer, before_payee = payer.tokens.balance_of(), payee.tokens.balance_of()
    cid = payer.channels.open(payee.address, 10 * TOKEN, payer.timestamp() + 3600)
    assert payer.channels.get(cid).status is ChannelStatus.OPEN
    vouchers = [payer.channels.sign_voucher(cid, n * TOKEN) for n in (1, 3, 6)]
    assert all(payee.channels.voucher_signer(v) == payer.address for v in vouchers)
    record("PaymentChannel.withdraw", payee.channels.withdraw(vouchers[1]))
    assert payee.tokens.balance_of() == before_payee + 3 * TOKEN
    for stale in vouchers[:2]:  # replayed and older vouchers
        with pytest.raises(LedgerError, match="StaleVoucher"):
            payee.channels.withdraw(stale)
    forged = stranger.channels.sign_voucher(cid, 8 * TOKEN)
    assert payee.channels.voucher_signer(forged) == stranger.address
    with pytest.raises(LedgerError, match="InvalidSignature"):
        payee.channels.close(forged)
    with pytest.raises(LedgerError, match="AmountExceedsDeposit"):
        payee.channels.close(payer.channels.sign_voucher(cid, 11 * TOKEN))
    with pytest.raises(LedgerError, match="Unauthorized"):
        stranger.channels.close(vouchers[2])
    record("PaymentChannel.close", payee.channels.close(vouchers[2]))
    assert payee.tokens.balance_of() == before_payee + 6 * TOKEN
    assert payer.tokens.balance_of() == before_payer - 6 * TOKEN
    channel = payer.channels.get(cid)
    assert (channel.status, channel.paid) == (ChannelStatus.CLOSED, 6 * TOKEN)
    with pytest.raises(LedgerError, match="ChannelNotOpen"):
        payee.channels.close(vouchers[2])


def test_feedback_only_after_a_settled_escrow(ledger: Ledger) -> None:
    r, a, s = ledger.requester, ledger.agent, ledger.stranger
    receipt_card = Web3.keccak(text="card")
    node = NodeKey.generate()
    proof = sign_registration(node, DEV_CHAIN_ID, ledger.deployment.registry, a.address, "rated")
    agent_id = a.registry.register(
        "https://agent.example/card.json", receipt_card, node.peer_id, "rated", proof
    )
    r.escrows.open("rated", a.address, TOKEN, r.timestamp() + 600)
    a.escrows.commit_result("rated", Web3.keccak(text="rated result"))
    with pytest.raises(LedgerError, match="TaskNotSettled"):
        r.registry.give_feedback(agent_id, "rated", 90)
    r.escrows.release("rated")
    with pytest.raises(LedgerError, match="NotTaskRequester"):
        s.registry.give_feedback(agent_id, "rated", 10)
    with pytest.raises(LedgerError, match="ScoreOutOfRange"):
        r.registry.give_feedback(agent_id, "rated", 101)
    record(
        "AgentRegistry.giveFeedback", r.registry.give_feedback(agent_id, "rated", 90, "ipfs://fb")
    )
    with pytest.raises(LedgerError, match="FeedbackExists"):
        r.registry.give_feedback(agent_id, "rated", 50)
    assert (
        a.registry.feedback_count(agent_id) == 1 and a.registry.average_score_x100(agent_id) == 9000
    )
    # released without a committed result: the agent took no provable part, no rating
    r.escrows.open("uncommitted", a.address, TOKEN, r.timestamp() + 600)
    r.escrows.release("uncommitted")
    with pytest.raises(LedgerError, match="NoCommittedResult"):
        r.registry.give_feedback(agent_id, "uncommitted", 10)


def open_committed(ledger: Ledger, task: str, amount: int, *, arbiter: bool = True) -> int:
    """An escrow naming the deployment's arbiter whose agent committed; returns its deadline."""
    r, a = ledger.requester, ledger.agent
    deadline = r.timestamp() + 60
    r.escrows.open(task, a.address, amount, deadline, ledger.arbiter.address if arbiter else None)
    a.escrows.commit_result(task, Web3.keccak(text=f"junk for {task}"))
    return deadline


def test_dispute_blocks_claim_until_the_arbiter_decides(ledger: Ledger) -> None:
    r, a, arb, s = ledger.requester, ledger.agent, ledger.arbiter, ledger.stranger
    before_r, before_a = r.tokens.balance_of(), a.tokens.balance_of()
    open_committed(ledger, "junk", 2 * TOKEN)
    delivered = Web3.keccak(text="what arrived")
    with pytest.raises(LedgerError, match="Unauthorized"):
        s.escrows.dispute("junk", delivered, "not mine to dispute")
    with pytest.raises(LedgerError, match="Unauthorized"):
        a.escrows.dispute("junk", delivered, "the agent cannot dispute either")
    with pytest.raises(LedgerError, match="ReasonTooLong"):
        r.escrows.dispute("junk", delivered, "x" * 1025)
    record("TaskEscrow.dispute", r.escrows.dispute("junk", delivered, "the summary is empty"))
    view = r.escrows.get("junk")
    assert view.status is EscrowStatus.DISPUTED and view.disputed_at > 0
    record_ = s.escrows.get_dispute("junk")  # the evidence is public: the arbiter reads it
    assert record_ is not None and record_.delivered_hash == delivered.to_0x_hex()
    assert record_.reason == "the summary is empty" and record_.requester == r.address
    assert s.escrows.get_dispute("never-disputed") is None
    with pytest.raises(LedgerError, match="InvalidStatus"):
        r.escrows.dispute("junk", delivered, "twice")
    advance(ledger.url, 61 + GRACE_S)  # past deadline + grace: an undisputed agent could claim
    with pytest.raises(LedgerError, match="InvalidStatus"):
        a.escrows.claim("junk")
    with pytest.raises(LedgerError, match="TooEarly"):
        s.escrows.refund("junk")  # the arbiter still has time
    with pytest.raises(LedgerError, match="Unauthorized"):
        s.escrows.resolve("junk", pay_agent=True)
    arb.escrows.resolve("junk", pay_agent=False)
    assert r.escrows.get("junk").status is EscrowStatus.RESOLVED_FOR_REQUESTER
    assert (r.tokens.balance_of(), a.tokens.balance_of()) == (before_r, before_a)


def test_the_arbiter_may_side_with_the_agent_and_the_requester_may_withdraw(
    ledger: Ledger,
) -> None:
    r, a, arb = ledger.requester, ledger.agent, ledger.arbiter
    before_a = a.tokens.balance_of()
    open_committed(ledger, "fine-after-all", TOKEN)
    r.escrows.dispute("fine-after-all", None, "looked wrong")
    record("TaskEscrow.resolve (disputed)", arb.escrows.resolve("fine-after-all", pay_agent=True))
    assert r.escrows.get("fine-after-all").status is EscrowStatus.RESOLVED_FOR_AGENT
    open_committed(ledger, "withdrawn", TOKEN)
    r.escrows.dispute("withdrawn", None, "hasty")
    r.escrows.release("withdrawn")  # the requester may still accept (and pay) while disputed
    assert r.escrows.get("withdrawn").status is EscrowStatus.RELEASED
    assert a.tokens.balance_of() == before_a + 2 * TOKEN


def test_a_silent_arbiter_lets_the_requester_be_refunded(ledger: Ledger) -> None:
    r, a, s = ledger.requester, ledger.agent, ledger.stranger
    before_r = r.tokens.balance_of()
    open_committed(ledger, "silence", 3 * TOKEN)
    r.escrows.dispute("silence", None, "no result arrived")
    disputed_at = r.escrows.get("silence").disputed_at
    with pytest.raises(LedgerError, match="TooEarly") as early:
        s.escrows.refund("silence")
    assert early.value.error_args["availableAfter"] == disputed_at + ARBITRATION_S
    advance(ledger.url, ARBITRATION_S + 1)
    with pytest.raises(LedgerError, match="InvalidStatus"):
        a.escrows.claim("silence")
    record(
        "TaskEscrow.refund (silent arbiter)", s.escrows.refund("silence")
    )  # anyone may trigger it
    assert r.escrows.get("silence").status is EscrowStatus.REFUNDED
    assert r.tokens.balance_of() == before_r


def test_no_dispute_without_an_arbiter_after_the_window_or_before_a_commit(
    ledger: Ledger,
) -> None:
    r, a = ledger.requester, ledger.agent
    open_committed(ledger, "no-arbiter", TOKEN, arbiter=False)
    with pytest.raises(LedgerError, match="NoArbiter"):
        r.escrows.dispute("no-arbiter", None, "nobody would hear it")
    r.escrows.open(
        "uncommitted-dispute", a.address, TOKEN, r.timestamp() + 60, ledger.arbiter.address
    )
    with pytest.raises(LedgerError, match="InvalidStatus"):
        r.escrows.dispute("uncommitted-dispute", None, "nothing committed: refund instead")
    deadline = open_committed(ledger, "too-late", TOKEN)
    advance(ledger.url, deadline + GRACE_S - r.timestamp() + 1)
    with pytest.raises(LedgerError, match="DisputeWindowClosed") as closed:
        r.escrows.dispute("too-late", None, "after the window")
    assert closed.value.error_args["closedAt"] == deadline + GRACE_S
    a.escrows.claim("too-late")  # the window is the claim's: one or the other, never both
    r.escrows.refund("uncommitted-dispute")
    r.escrows.release("no-arbiter")


def test_registry_entries_carry_a_peer_key_proof_that_readers_check(ledger: Ledger) -> None:
    """A stranger registers the victim's peer id with a forged proof, and with the victim's own
    proof copied verbatim: the chain stores both (peer ids are not unique), every proof check
    rejects them, and the victim's own registration is unaffected."""
    a, s = ledger.agent, ledger.stranger
    chain_id, registry = DEV_CHAIN_ID, ledger.deployment.registry
    victim, attacker = NodeKey.generate(), NodeKey.generate()
    proof = sign_registration(victim, chain_id, registry, a.address, "calc")
    card_hash = Web3.keccak(text="victim card")
    receipt_id = a.registry.register(
        "https://victim/card", card_hash, victim.peer_id, "calc", proof
    )
    assert (
        a.registry.registration_problem(
            receipt_id, peer_id=victim.peer_id, agent_name="calc", owner=a.address
        )
        is None
    )
    forged = sign_registration(attacker, chain_id, registry, s.address, "calc")
    squat = s.registry.register("https://evil/card", card_hash, victim.peer_id, "calc", forged)
    copied = s.registry.register("https://evil/card", card_hash, victim.peer_id, "calc", proof)
    junk = s.registry.register("https://evil/card", card_hash, victim.peer_id, "calc", b"\x01")
    for fake in (squat, copied, junk):
        entry = s.registry.get(fake)
        assert entry.peer_id == victim.peer_id and entry.owner == s.address  # stored as given
        assert proof_problem(entry, chain_id, registry) is not None
        problem = s.registry.registration_problem(fake, peer_id=victim.peer_id, agent_name="calc")
        assert problem is not None and f"#{fake}" in problem
    # the victim's entry is untouched and still the only proven one for its peer id
    assert proof_problem(a.registry.get(receipt_id), chain_id, registry) is None
    proven = [
        i
        for i in range(1, a.registry.total() + 1)
        if (e := a.registry.get(i)).peer_id == victim.peer_id
        and proof_problem(e, chain_id, registry) is None
    ]
    assert proven == [receipt_id]
    # a proof for another chain, registry or name does not carry over
    for other in (
        sign_registration(victim, 1, registry, s.address, "calc"),
        sign_registration(victim, chain_id, ledger.deployment.escrow, s.address, "calc"),
        sign_registration(victim, chain_id, registry, s.address, "other"),
    ):
        wrong = s.registry.register("https://evil/card", card_hash, victim.peer_id, "calc", other)
        assert proof_problem(s.registry.get(wrong), chain_id, registry) is not None
    # a transferred identity reads as unproven until its new owner proves it again
    a.transactor.transact(
        a.registry.contract.functions.transferFrom(a.address, s.address, receipt_id)
    )
    assert "belongs to" in (
        a.registry.registration_problem(
            receipt_id, peer_id=victim.peer_id, agent_name="calc", owner=a.address
        )
        or ""
    )
    assert proof_problem(a.registry.get(receipt_id), chain_id, registry) is not None
    again = sign_registration(victim, chain_id, registry, s.address, "calc")
    record(
        "AgentRegistry.update",
        s.registry.update(
            receipt_id, "https://victim/card", card_hash, victim.peer_id, "calc", again
        ),
    )
    assert proof_problem(s.registry.get(receipt_id), chain_id, registry) is None
    with pytest.raises(LedgerError, match="EmptyField"):
        a.registry.register("https://x", card_hash, victim.peer_id, "calc", b"")
    with pytest.raises(LedgerError, match="FieldTooLong"):
        a.registry.register("https://x", card_hash, victim.peer_id, "calc", bytes(129))
    record(
        "AgentRegistry.register",
        a.transactor.transact(
            a.registry.contract.functions.register(
                "https://victim/card2",
                card_hash,
                victim.peer_id,
                "calc2",
                sign_registration(victim, chain_id, registry, a.address, "calc2"),
            )
        ),
    )


async def test_concurrent_transfers_from_one_account_all_land(ledger: Ledger) -> None:
    payer, to = ledger.payer, ledger.stranger.address
    second = payer.for_account(payer.account)  # another client, same account: same nonces
    before = payer.tokens.balance_of(to)
    start_nonce = payer.w3.eth.get_transaction_count(payer.address)
    receipts = await asyncio.gather(
        *(asyncio.to_thread((payer, second)[i % 2].tokens.transfer, to, i + 1) for i in range(20))
    )
    assert all(r["status"] == 1 for r in receipts)
    assert payer.tokens.balance_of(to) == before + sum(range(1, 21))
    assert payer.w3.eth.get_transaction_count(payer.address) == start_nonce + 20


def test_nonce_resyncs_after_a_transaction_sent_elsewhere(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    payer = ledger.payer
    payer.tokens.transfer(ledger.stranger.address, 1)  # the manager now tracks the next nonce
    # the same key used by another program (anvil holds the dev keys unlocked)
    rpc(ledger.url, "eth_sendTransaction", {"from": payer.address, "to": payer.address})
    resyncs: list[int] = []
    original = payer.transactor.nonces.resync
    monkeypatch.setattr(
        payer.transactor.nonces, "resync", lambda: (resyncs.append(1), original())[1]
    )
    before = payer.tokens.balance_of(ledger.stranger.address)
    payer.tokens.transfer(ledger.stranger.address, 1)  # "nonce too low" -> resync -> retry
    assert resyncs == [1]
    assert payer.tokens.balance_of(ledger.stranger.address) == before + 1


def test_total_supply_is_conserved_over_random_escrow_operations(ledger: Ledger) -> None:
    rng = random.Random(20240611)
    r, a, s = ledger.requester, ledger.agent, ledger.stranger
    supply = r.tokens.total_supply()
    holders = ledger.holders()
    escrow_before = r.tokens.balance_of(ledger.deployment.escrow)
    locked: dict[str, int] = {}  # unsettled escrows we opened -> amount
    opened: list[str] = []
    reverts = 0
    for step in range(40):
        op = rng.choice(
            [
                "open",
                "open",
                "commit",
                "release",
                "refund",
                "claim",
                "dispute",
                "resolve",
                "time",
                "pay",
            ]
        )
        task = rng.choice(opened) if opened else None
        try:
            if op == "open" or task is None:
                task = f"prop-{step}"
                amount = rng.randint(1, 5 * TOKEN)
                arbiter = rng.choice([ledger.arbiter.address, None])
                deadline = r.timestamp() + rng.randint(30, 200)
                r.escrows.open(task, a.address, amount, deadline, arbiter)
                opened.append(task)
                locked[task] = amount
            elif op == "dispute":
                r.escrows.dispute(task, Web3.keccak(text="delivered"), "property test")
            elif op == "resolve":
                ledger.arbiter.escrows.resolve(task, rng.random() < 0.5)
                locked.pop(task, None)
            elif op == "commit":
                a.escrows.commit_result(task, Web3.keccak(text=task))
            elif op == "release":
                r.escrows.release(task)
                locked.pop(task, None)
            elif op == "refund":
                s.escrows.refund(task)
                locked.pop(task, None)
            elif op == "claim":
                a.escrows.claim(task)
                locked.pop(task, None)
            elif op == "time":
                advance(ledger.url, rng.randint(10, 200))
            else:
                a.tokens.transfer(r.address, rng.randint(0, 10))
        except LedgerError as exc:  # invalid in the current state: must be a named contract error
            assert exc.error is not None, exc
            reverts += 1
        assert r.tokens.total_supply() == supply
        assert sum(r.tokens.balance_of(h) for h in holders) == supply
        assert r.tokens.balance_of(ledger.deployment.escrow) == escrow_before + sum(locked.values())
    for task in opened:
        settled = r.escrows.get(task).status.final
        assert settled == (task not in locked)
    assert 0 < reverts < 40


def test_list_escrows_from_events_with_current_status(ledger: Ledger) -> None:
    r, a, s = ledger.requester, ledger.agent, ledger.stranger
    r.escrows.open("listed-1", a.address, 11, r.timestamp() + 600)
    r.escrows.open("listed-2", a.address, 22, r.timestamp() + 600)
    r.escrows.release("listed-2")
    mine = r.escrows.find()  # the signer, both sides
    assert mine and all(e.role == "requester" and e.requester == r.address for e in mine)
    assert [e.opened_block for e in mine] == sorted(e.opened_block for e in mine)
    by_id = {e.task_id: e for e in mine}
    listed_1, listed_2 = (Web3.keccak(text=t).to_0x_hex() for t in ("listed-1", "listed-2"))
    assert (by_id[listed_1].status, by_id[listed_1].amount) == (EscrowStatus.OPEN, 11)
    assert by_id[listed_2].status is EscrowStatus.RELEASED
    extra = {"role", "opened_block", "opened_tx"}
    assert all(e.model_dump(exclude=extra) == r.escrows.get(e.task_id).model_dump() for e in mine)
    as_agent = s.escrows.find(a.address, "agent")
    assert {e.task_id for e in as_agent} >= {listed_1, listed_2}
    assert all(e.role == "agent" and e.agent == a.address for e in as_agent)
    assert s.escrows.find(a.address, "requester") == []
    assert r.escrows.find(chunk_blocks=3) == mine  # paged eth_getLogs, same answer
    assert s.escrows.find(ledger.arbiter.address) == []  # arbiters are neither side
    with pytest.raises(ValueError, match="role must be"):
        r.escrows.find(role="arbiter")


def test_restart_keeps_deployment_balances_and_open_escrows(ledger: Ledger) -> None:
    r, a = ledger.requester, ledger.agent
    r.escrows.open("survivor", a.address, 2 * TOKEN, r.timestamp() + 86_400)
    holders = ledger.holders()
    balances = {h: r.tokens.balance_of(h) for h in holders}
    escrow = r.escrows.get("survivor")
    ledger.chain.stop()
    ledger.chain = LocalChain.start(ledger.home)
    loaded = Deployment.load(ledger.home, DEV_CHAIN_ID)
    assert loaded == ledger.deployment
    requester = LedgerClient(ledger.url, r.account, loaded)
    agent = requester.for_account(a.account)
    assert {h: requester.tokens.balance_of(h) for h in holders} == balances
    assert requester.escrows.get("survivor") == escrow
    agent.escrows.commit_result("survivor", Web3.keccak(text="after restart"))
    requester.escrows.release("survivor")
    assert agent.tokens.balance_of() == balances[a.address] + 2 * TOKEN
    # a fresh client on the same home finds the deployment instead of deploying again
    assert requester.load_or_deploy(ledger.home) == ledger.deployment
