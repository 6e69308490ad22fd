"""Settle inside a task's life, between real node processes and a real anvil: a priced agent works
only for an open escrow that pays it and that the caller is authorized to spend (a stranger
presenting someone else's escrow is refused), commits its result hash on chain before reporting
the task completed; the requester's node releases the payment when the result matches the
commitment (and disputes it before the arbiter when it does not, or when its operator rejects it),
records the rating on the registry only for an entry whose peer-key proof holds, and refunds the
escrow of an agent that died mid-task or whose dispute the arbiter left unanswered."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from noosphere.ledger import Deployment, EscrowStatus, LedgerClient, LedgerError
from noosphere.ledger.chain import DEV_MNEMONIC, LocalChain, set_gas_balance
from noosphere.ledger.registry_proof import sign_registration
from noosphere.node.a2a_client import A2AClient, text_message
from noosphere.node.auth import BearerAuth, PeerAuth
from noosphere.node.client import NodeClient
from noosphere.node.keystore import load_or_create_evm_account
from noosphere.node.launcher import LocalNode
from noosphere.node.settlement import Settlement
from noosphere.node.store import NodeStore
from noosphere.protocol import ErrorCode, NodeKey, RpcError
from noosphere.protocol.a2a import Message
from noosphere.protocol.api import Submission
from noosphere.protocol.payment import PAYMENT_METADATA_KEY, PaymentRef, authorize_payment

from .support import EXAMPLES, Cluster, wait_until

pytestmark = pytest.mark.integration

AGENTS = Path(__file__).parent / "agents"
FUNDS = 1_000
GRACE_S = 30
ARBITRATION_S = 60  # the deployment's default arbiter (dev account 0) has this long to decide


@dataclass
class Chain:
    home: Path
    url: str
    owner: LedgerClient
    deployment: Deployment

    def fund(self, home: Path, *, gas: bool = True, tokens: int = FUNDS) -> str:
        """Create the node's ledger key before it starts, give it gas and tokens."""
        home.mkdir(parents=True, exist_ok=True)
        account, _ = load_or_create_evm_account(home)
        if gas:
            set_gas_balance(self.url, account.address, 10**20)
        if tokens:
            self.owner.tokens.mint(account.address, tokens)
        return str(account.address)

    def env(self, window_s: int = 5) -> dict[str, str]:
        return {"NOOSPHERE_CHAIN_HOME": str(self.home), "NOOSPHERE_PAYMENT_WINDOW_S": str(window_s)}


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    home = tmp_path_factory.mktemp("chain")
    local = LocalChain.start(home)
    try:
        Account.enable_unaudited_hdwallet_features()
        owner_account = Account.from_mnemonic(DEV_MNEMONIC, account_path="m/44'/60'/0'/0/0")
        owner = LedgerClient(local.runtime.rpc_url, owner_account)
        deployment = owner.deploy_all(grace_period_s=GRACE_S, arbitration_period_s=ARBITRATION_S)
        deployment.save(home)
        yield Chain(home, local.runtime.rpc_url, owner, deployment)
    finally:
        local.stop()


def operator(node: LocalNode) -> NodeClient:
    return NodeClient(node.rpc_url, auth=BearerAuth(node.token), timeout=30)


def submit(node: LocalNode, **params: Any) -> Submission:
    with operator(node) as client:
        return Submission.model_validate(client.call("noosphere.tasks.submit", params))


def submission(node: LocalNode, submission_id: str) -> Submission:
    with operator(node) as client:
        return Submission.model_validate(
            client.call("noosphere.tasks.submission", {"id": submission_id})
        )


def finished(node: LocalNode, submission_id: str, timeout: float = 120) -> Submission:
    return wait_until(
        lambda: (s := submission(node, submission_id)).finished and s, timeout=timeout
    )


def card_of(node: LocalNode, card_id: str) -> dict[str, Any] | None:
    with node.client() as client:
        for entry in client.cards(full=True):
            if entry.card_id == card_id:
                return entry.card
    return None


def own_card(node: LocalNode) -> str:
    with node.client() as client:
        (agent,) = client.status().agents
    return agent.card_id


def reputation(node: LocalNode, card_id: str) -> float | None:
    with node.client() as client:
        return next((c.reputation for c in client.cards() if c.card_id == card_id), None)


def registered(node: LocalNode, card_id: str) -> dict[str, Any] | None:
    """The card as ``node`` knows it, once it carries the agent's registry id."""
    card = card_of(node, card_id)
    ext = card["capabilities"]["extensions"][0]["params"] if card else {}
    return ext if ext.get("registryId") and ext.get("evmAddress") else None


def test_submit_pays_the_agent_exactly_once_and_rates_it_on_chain(
    cluster: Cluster, chain: Chain
) -> None:
    # as the README's steps: the agent's node gets nothing (it gives itself gas on the dev
    # chain when it starts), the requester only tokens
    agent_addr = chain.fund(cluster.root / "agent", gas=False, tokens=0)
    requester_addr = chain.fund(cluster.root / "requester", gas=False)
    agent = cluster.start("agent", agents=[EXAMPLES / "calculator.yaml"], env=chain.env())
    requester = cluster.start("requester", bootstrap=[agent.multiaddr], env=chain.env())
    calculator = own_card(agent)
    ext = wait_until(lambda: registered(requester, calculator), timeout=60)
    assert ext["evmAddress"] == agent_addr

    started = submit(requester, task="what is 17 * 23?", budget=10)
    assert started.state == "running"
    done = finished(requester, started.id)

    assert done.state == "completed", done.error
    assert done.winner == calculator and done.paid == "5"
    assert "391" in str(done.result)
    phases = {e.phase for e in done.events}
    assert {"recruit", "pay", "execute", "settle", "feedback", "done"} <= phases
    (attempt,) = done.attempts
    assert attempt.payment == "released" and attempt.escrow_id is not None
    # balances moved by exactly the price, once
    assert chain.owner.tokens.balance_of(agent_addr) == 5
    assert chain.owner.tokens.balance_of(requester_addr) == FUNDS - 5
    view = chain.owner.escrows.get(attempt.escrow_id)
    assert view.status == EscrowStatus.RELEASED and view.result_hash is not None
    # the rating is on the registry and in the trust model
    assert chain.owner.registry.feedback_count(ext["registryId"]) == 1
    assert chain.owner.registry.average_score_x100(ext["registryId"]) == 100 * 100
    assert done.reputation["after"] is not None, done.events
    # the agent's node kept its side of the record
    with operator(agent) as client:
        status = client.call("noosphere.ledger.status")
    (payment,) = status["payments"]
    assert payment["escrowId"] == attempt.escrow_id
    assert payment["role"] == "agent" and payment["state"] == "committed"
    assert payment["resultHash"] == view.result_hash


@dataclass
class Requester:
    """A peer in the test process that pays for its own tasks: node key (the A2A principal) and
    ledger account (opens escrows and signs payment authorizations)."""

    key: NodeKey
    ledger: LedgerClient

    def message(self, text: str = "what is 2 + 2?") -> Message:
        return text_message(text)

    def pay(self, message: Message, escrow_id: str) -> Message:
        """``message`` carrying ``escrow_id``, authorized by this requester for itself."""
        ref = PaymentRef(
            chain_id=self.ledger.chain_id,
            escrow=self.ledger.deployment.escrow,
            escrow_id=escrow_id,
        )
        ref = authorize_payment(ref, self.ledger.account, self.key.peer_id, message.message_id)
        return with_ref(message, ref.to_wire())

    async def send(self, node: LocalNode, message: Message) -> Any:
        async with A2AClient(node.rpc_url, auth=PeerAuth(self.key)) as client:
            return await client.send(message)


def with_ref(message: Message, ref: dict[str, Any] | None) -> Message:
    metadata = None if ref is None else {PAYMENT_METADATA_KEY: ref}
    return message.model_copy(update={"metadata": metadata})


def new_requester(chain: Chain, funds: int = 100) -> Requester:
    account = Account.create()
    set_gas_balance(chain.url, account.address, 10**20)
    chain.owner.tokens.mint(account.address, funds)
    return Requester(NodeKey.generate(), chain.owner.for_account(account))


def refused(call: Any, match: str) -> RpcError:
    with pytest.raises(RpcError, match=match) as info:
        asyncio.run(call)
    assert info.value.code == ErrorCode.PAYMENT_REQUIRED, info.value
    return info.value


def test_a_priced_agent_refuses_unpaid_and_replayed_escrows(cluster: Cluster, chain: Chain) -> None:
    agent_addr = chain.fund(cluster.root / "agent")
    agent = cluster.start("agent", agents=[EXAMPLES / "calculator.yaml"], env=chain.env())
    payer = new_requester(chain)  # another node: it signs its requests and must pay
    r = payer.ledger

    async def as_operator() -> Any:
        async with A2AClient(agent.rpc_url, auth=BearerAuth(agent.token)) as client:
            return await client.send(text_message("what is 2 + 2?"))

    # the node's own operator never pays its own agent
    assert asyncio.run(as_operator()).status.state.short == "completed"

    unpaid = refused(payer.send(agent, payer.message()), "charges 5")
    terms = unpaid.data
    assert terms["price"] == "5" and terms["payTo"] == agent_addr
    assert terms["escrow"] == chain.deployment.escrow
    assert chain.deployment.arbiter is not None
    assert terms["arbiters"] == [chain.deployment.arbiter.lower()]  # the deployment's default
    assert terms["arbiterRequired"] is False

    now = r.timestamp()
    too_small = "0x" + "11" * 32
    r.escrows.open(too_small, agent_addr, 4, now + 600)
    refused(payer.send(agent, payer.pay(payer.message(), too_small)), "holds 4, the price is 5")

    good = "0x" + "22" * 32
    r.escrows.open(good, agent_addr, 5, now + 600)
    task = asyncio.run(payer.send(agent, payer.pay(payer.message(), good)))
    assert task.status.state.short == "completed"
    assert r.escrows.get(good).status == EscrowStatus.COMMITTED
    refused(payer.send(agent, payer.pay(payer.message(), good)), "already paid")

    malformed = {"chainId": 1, "escrow": "x", "escrowId": "y"}
    with pytest.raises(RpcError) as bad:
        asyncio.run(payer.send(agent, with_ref(payer.message(), malformed)))
    assert bad.value.code == ErrorCode.INVALID_PARAMS

    # an escrow for someone else, one about to expire, one on another chain
    other = "0x" + "33" * 32
    r.escrows.open(other, Account.create().address, 5, now + 600)
    refused(payer.send(agent, payer.pay(payer.message(), other)), "not this agent")
    soon = "0x" + "44" * 32
    r.escrows.open(soon, agent_addr, 5, r.timestamp() + 3)
    refused(payer.send(agent, payer.pay(payer.message(), soon)), "at least 5 s are needed")
    message = payer.pay(payer.message(), good)
    foreign = {**(message.metadata or {})[PAYMENT_METADATA_KEY], "chainId": 1}
    refused(payer.send(agent, with_ref(message, foreign)), "must be on chain")
    # an arbiter the agent does not accept (it takes the deployment's default, or none)
    odd_arbiter = "0x" + "55" * 32
    r.escrows.open(odd_arbiter, agent_addr, 5, now + 600, Account.create().address)
    refused(payer.send(agent, payer.pay(payer.message(), odd_arbiter)), "this agent accepts")

    # a restarted agent node still knows the escrow it was paid with
    agent.kill()
    agent = cluster.start("agent", env=chain.env())
    refused(payer.send(agent, payer.pay(payer.message(), good)), "already paid")


def test_a_stranger_cannot_spend_someone_elses_escrow(cluster: Cluster, chain: Chain) -> None:
    """Escrow ids are public. A stranger presents the victim's open escrow: without an
    authorization, with one it signed itself, with a forged signature, with the victim's
    signature under its own name, and with the victim's authorization copied verbatim (also
    re-sending the victim's very message). Every attempt is refused with -32043, the escrow is
    never bound, and the victim's own request then succeeds and pays the agent exactly once."""
    agent_addr = chain.fund(cluster.root / "agent")
    agent = cluster.start("agent", agents=[EXAMPLES / "calculator.yaml"], env=chain.env())
    victim, attacker = new_requester(chain), new_requester(chain)
    escrow_id = "0x" + "77" * 32
    victim.ledger.escrows.open(escrow_id, agent_addr, 5, victim.ledger.timestamp() + 600)
    victims_message = victim.pay(victim.message("what is 6 * 7?"), escrow_id)
    victims_ref = (victims_message.metadata or {})[PAYMENT_METADATA_KEY]
    victims_auth = victims_ref["authorization"]

    def attempt(message: Message) -> Any:
        return attacker.send(agent, message)

    bare = {k: v for k, v in victims_ref.items() if k != "authorization"}
    refused(attempt(with_ref(attacker.message(), bare)), "carries no authorization")
    refused(
        attempt(attacker.pay(attacker.message(), escrow_id)),
        f"signed by {attacker.ledger.address}, not by the escrow's requester",
    )
    forged_auth = {
        **victims_auth,
        "principal": attacker.key.peer_id,
        "signature": "0x" + "ab" * 64 + "1b",
    }
    forged = attacker.message()
    forged_auth["messageId"] = forged.message_id
    refused(attempt(with_ref(forged, {**victims_ref, "authorization": forged_auth})), "escrow")
    # the victim's signature under the attacker's name and message: EIP-712 covers both, so it
    # recovers to some unrelated address, not the escrow's requester
    renamed = attacker.message()
    renamed_auth = {
        **victims_auth,
        "principal": attacker.key.peer_id,
        "messageId": renamed.message_id,
    }
    refused(
        attempt(with_ref(renamed, {**victims_ref, "authorization": renamed_auth})),
        "not by the escrow's requester",
    )
    # verbatim copies: on another message, and the victim's very message re-sent
    refused(attempt(with_ref(attacker.message(), victims_ref)), "is authorized for")
    refused(attempt(victims_message), f"not for the caller {attacker.key.peer_id}")
    # nor can the victim's authorization be moved to another of the victim's messages
    refused(victim.send(agent, with_ref(victim.message(), victims_ref)), "authorized for message")

    # nothing was bound: the escrow is open and the agent's node has no record of it
    assert victim.ledger.escrows.get(escrow_id).status == EscrowStatus.OPEN
    with operator(agent) as client:
        assert client.call("noosphere.ledger.status")["payments"] == []

    before = victim.ledger.tokens.balance_of(agent_addr)
    task = asyncio.run(victim.send(agent, victims_message))
    assert task.status.state.short == "completed" and "42" in str(task.artifacts)
    assert victim.ledger.escrows.get(escrow_id).status == EscrowStatus.COMMITTED
    victim.ledger.escrows.release(escrow_id)
    assert victim.ledger.tokens.balance_of(agent_addr) == before + 5
    assert victim.ledger.tokens.balance_of(victim.ledger.address) == 100 - 5
    assert (
        attacker.ledger.tokens.balance_of(attacker.ledger.address) == 100
    )  # paid nothing, got nothing
    refused(attempt(victims_message), "not for the caller")
    refused(victim.send(agent, victims_message), "already paid")


def test_agent_killed_mid_task_is_replaced_and_its_escrow_refunded(
    cluster: Cluster, chain: Chain
) -> None:
    """kill -9 of the executing agent's node: the requester re-recruits, the task completes on
    the other agent, the dead agent's escrow is refunded after its deadline, nothing is paid
    twice."""
    requester_addr = chain.fund(cluster.root / "requester")
    first_addr = chain.fund(cluster.root / "w1")
    second_addr = chain.fund(cluster.root / "w2")
    # models loaded at start: the replacement's first turn must not spend its deadline loading
    # them on a busy machine
    preload = {**chain.env(), "NOOSPHERE_PRELOAD_MODELS": "true"}
    w1 = cluster.start("w1", agents=[AGENTS / "slow-paid.yaml"], env=preload)
    w2 = cluster.start(
        "w2", agents=[AGENTS / "slow-paid.yaml"], bootstrap=[w1.multiaddr], env=preload
    )
    requester = cluster.start("requester", bootstrap=[w1.multiaddr], env=chain.env())
    workers = {own_card(w): w for w in (w1, w2)}
    for card_id, worker in workers.items():
        wait_until(lambda c=card_id: registered(requester, c), timeout=60)
        wait_until(lambda w=worker: w.client().status().models_loaded, timeout=120)

    started = submit(requester, task="wait 6 seconds", deadlineS=20, maxAttempts=2)
    running = wait_until(
        lambda: next(
            (a for a in submission(requester, started.id).attempts if a.state == "running"), None
        ),
        timeout=60,
    )
    victim = workers[running.agent]
    victim.kill()
    done = finished(requester, started.id)

    assert done.state == "completed", (done.error, done.attempts)
    first, second = done.attempts
    assert first.agent == running.agent and first.state == "unreachable"
    assert first.payment == "refund after deadline"
    assert second.agent != first.agent and second.payment == "released"
    survivor_addr = second_addr if workers[second.agent] is w2 else first_addr
    victim_addr = first_addr if survivor_addr == second_addr else second_addr

    # the first escrow goes back to the requester once its deadline has passed
    wait_until(
        lambda: chain.owner.escrows.get(first.escrow_id).status == EscrowStatus.REFUNDED,
        timeout=60,
    )
    assert chain.owner.tokens.balance_of(requester_addr) == FUNDS - 3
    assert chain.owner.tokens.balance_of(survivor_addr) == FUNDS + 3
    assert chain.owner.tokens.balance_of(victim_addr) == FUNDS


def test_requester_killed_mid_submission_ends_it_and_the_agent_claims(
    cluster: Cluster, chain: Chain
) -> None:
    """kill -9 of the requester while its agent works: on restart the submission is reported
    failed (nothing accepted is lost); the agent had committed its result, so the requester's
    node cannot refund, and the agent's node claims the payment after deadline + grace."""
    requester_addr = chain.fund(cluster.root / "requester")
    worker_addr = chain.fund(cluster.root / "worker")
    worker = cluster.start(
        "worker",
        agents=[AGENTS / "slow-paid.yaml"],
        env={**chain.env(), "NOOSPHERE_PRELOAD_MODELS": "true"},  # commits well in time
    )
    requester = cluster.start("requester", bootstrap=[worker.multiaddr], env=chain.env())
    wait_until(lambda: registered(requester, own_card(worker)), timeout=60)
    wait_until(lambda: worker.client().status().models_loaded, timeout=120)

    started = submit(requester, task="wait 4 seconds", deadlineS=12, maxAttempts=1)
    running = wait_until(
        lambda: next(
            (a for a in submission(requester, started.id).attempts if a.state == "running"), None
        ),
        timeout=60,
    )
    requester.kill()
    requester = cluster.start("requester", env=chain.env())

    after = submission(requester, started.id)
    assert after.state == "failed" and "restarted" in (after.error or "")
    assert after.attempts[0].escrow_id == running.escrow_id
    escrow_id = running.escrow_id
    assert escrow_id is not None
    # the agent finished and committed; after the deadline the requester's node sees that ...
    wait_until(lambda: payment_state(requester, escrow_id) == "agent-committed", timeout=60)
    # ... and after deadline + grace the agent's node claims its pay
    wait_until(
        lambda: chain.owner.escrows.get(escrow_id).status == EscrowStatus.CLAIMED, timeout=90
    )
    wait_until(lambda: payment_state(worker, escrow_id) == "claimed", timeout=30)
    assert chain.owner.tokens.balance_of(worker_addr) == FUNDS + 3
    assert chain.owner.tokens.balance_of(requester_addr) == FUNDS - 3


def payment_state(node: LocalNode, escrow_id: str) -> str | None:
    with operator(node) as client:
        payments = client.call("noosphere.ledger.status")["payments"]
    return next((p["state"] for p in payments if p["escrowId"] == escrow_id), None)


def test_chain_and_nodes_restart_with_balances_and_open_escrows_intact(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Stop anvil and kill -9 both nodes while an escrow is open; start everything again: the
    balances and the open escrow are still there, and the requester's node refunds it."""
    local = LocalChain.start(tmp_path / "chain")
    try:
        Account.enable_unaudited_hdwallet_features()
        owner = LedgerClient(
            local.runtime.rpc_url,
            Account.from_mnemonic(DEV_MNEMONIC, account_path="m/44'/60'/0'/0/0"),
        )
        deployment = owner.deploy_all(grace_period_s=GRACE_S)
        deployment.save(local.home)
        own = Chain(local.home, local.runtime.rpc_url, owner, deployment)
        requester_addr = own.fund(cluster.root / "requester")
        own.fund(cluster.root / "worker")
        worker = cluster.start("worker", agents=[AGENTS / "slow-paid.yaml"], env=own.env())
        requester = cluster.start("requester", bootstrap=[worker.multiaddr], env=own.env())
        wait_until(lambda: registered(requester, own_card(worker)), timeout=60)
        started = submit(requester, task="wait 20 seconds", deadlineS=25, maxAttempts=1)
        running = wait_until(
            lambda: next(
                (a for a in submission(requester, started.id).attempts if a.state == "running"),
                None,
            ),
            timeout=60,
        )
        escrow_id = running.escrow_id
        assert escrow_id is not None

        worker.kill()
        requester.kill()
        port = int(local.runtime.rpc_url.rsplit(":", 1)[1])
        local.stop()  # anvil writes its state on SIGTERM
        local = LocalChain.start(local.home, port=port)
        assert owner.tokens.balance_of(requester_addr) == FUNDS - 3  # locked, not lost
        assert owner.tokens.balance_of(deployment.escrow) == 3
        assert owner.escrows.get(escrow_id).status == EscrowStatus.OPEN
        requester = cluster.start("requester", env=own.env())
        cluster.start("worker", env=own.env())

        assert submission(requester, started.id).state == "failed"
        wait_until(lambda: owner.escrows.get(escrow_id).status == EscrowStatus.REFUNDED, timeout=90)
        assert owner.tokens.balance_of(requester_addr) == FUNDS
        assert payment_state(requester, escrow_id) == "refunded"
    finally:
        local.stop()


def evm_account(home: Path) -> LocalAccount:
    account, _ = load_or_create_evm_account(home)
    return account


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "noosphere.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def test_a_result_that_does_not_match_its_commitment_is_disputed_and_refunded(
    cluster: Cluster, chain: Chain
) -> None:
    """A hostile agent commits the hash of junk while delivering something else (here: its
    ledger key commits before its node does). The requester's node sees the mismatch, pays
    nothing and disputes before the escrow's arbiter (the deployment's default); the arbiter's
    operator sees the evidence with `ledger resolve` and refunds the requester."""
    requester_addr = chain.fund(cluster.root / "requester")
    chain.fund(cluster.root / "worker")
    hostile = chain.owner.for_account(evm_account(cluster.root / "worker"))
    worker = cluster.start("worker", agents=[AGENTS / "slow-paid.yaml"], env=chain.env())
    requester = cluster.start("requester", bootstrap=[worker.multiaddr], env=chain.env())
    wait_until(lambda: registered(requester, own_card(worker)), timeout=60)

    started = submit(requester, task="wait 3 seconds", deadlineS=60, maxAttempts=1)
    running = wait_until(
        lambda: next(
            (a for a in submission(requester, started.id).attempts if a.state == "running"), None
        ),
        timeout=60,
    )
    escrow_id = running.escrow_id
    assert escrow_id is not None
    junk = Web3.keccak(text="the hash of something useless")
    hostile.escrows.commit_result(escrow_id, junk)  # before the worker's node commits the real hash
    done = finished(requester, started.id)

    assert done.state == "failed" and "disputed" in (done.error or ""), done.error
    (attempt,) = done.attempts
    assert attempt.payment == "disputed" and junk.to_0x_hex() in attempt.reason
    view = chain.owner.escrows.get(escrow_id)
    assert view.status == EscrowStatus.DISPUTED and view.arbiter == chain.deployment.arbiter
    evidence = chain.owner.escrows.get_dispute(escrow_id)
    assert evidence is not None and evidence.requester == requester_addr
    assert evidence.delivered_hash is not None and evidence.delivered_hash != view.result_hash
    assert payment_state(requester, escrow_id) == "disputed"
    assert chain.owner.tokens.balance_of(requester_addr) == FUNDS - 3  # locked, not paid

    home = ["--chain-home", str(chain.home)]
    shown = cli("ledger", "resolve", *home, escrow_id)  # no decision: evidence only
    assert shown.returncode == 2, (shown.stdout, shown.stderr)
    assert "differs from the commitment" in shown.stdout and evidence.delivered_hash in shown.stdout
    assert "decide with --pay-agent or --refund" in shown.stderr
    not_arbiter = cli("ledger", "resolve", *home, escrow_id, "--refund", "--key-index", "5")
    assert not_arbiter.returncode == 1 and "is not this escrow's arbiter" in not_arbiter.stderr
    resolved = cli("ledger", "resolve", *home, escrow_id, "--refund")  # key 0: the arbiter
    assert resolved.returncode == 0, resolved.stderr
    assert chain.owner.escrows.get(escrow_id).status == EscrowStatus.RESOLVED_FOR_REQUESTER
    assert chain.owner.tokens.balance_of(requester_addr) == FUNDS
    wait_until(lambda: payment_state(requester, escrow_id) == "resolved-for-requester", 120)


def test_the_operator_rejects_a_result_and_a_silent_arbiter_means_a_refund(
    cluster: Cluster, chain: Chain
) -> None:
    """With auto_release off the operator judges each paid result: it rejects one with
    `noosphere ledger dispute`. The agent's node cannot claim after deadline + grace (it sees the
    dispute), the arbiter never answers, and after the arbitration period the requester's node
    takes its refund."""
    requester_home = cluster.root / "requester"
    requester_addr = chain.fund(requester_home)
    worker_addr = chain.fund(cluster.root / "worker")
    worker = cluster.start(
        "worker",
        agents=[AGENTS / "slow-paid.yaml"],
        env={**chain.env(), "NOOSPHERE_PRELOAD_MODELS": "true"},  # a short deadline is enough
    )
    requester = cluster.start(
        "requester",
        bootstrap=[worker.multiaddr],
        env={**chain.env(), "NOOSPHERE_AUTO_RELEASE": "false"},
    )
    wait_until(lambda: registered(requester, own_card(worker)), timeout=60)
    wait_until(lambda: worker.client().status().models_loaded, timeout=120)

    done = finished(requester, submit(requester, task="wait 1 seconds", deadlineS=15).id)
    assert done.state == "completed", (done.error, done.attempts)
    (attempt,) = done.attempts
    assert attempt.payment == "awaiting the operator" and done.paid == "0"
    escrow_id = attempt.escrow_id
    assert escrow_id is not None
    assert chain.owner.escrows.get(escrow_id).status == EscrowStatus.COMMITTED
    assert payment_state(requester, escrow_id) == "delivered"

    node = ["--rpc", requester.rpc_url, "--home", str(requester_home)]
    empty = cli("ledger", "dispute", escrow_id, "--reason", " ", *node)
    assert empty.returncode == 1 and "--reason" in empty.stderr
    foreign = cli("ledger", "dispute", "0x" + "99" * 32, "--reason", "x", *node)
    assert foreign.returncode == 1 and "was not opened by this node" in foreign.stderr
    rejected = cli("ledger", "dispute", escrow_id, "--reason", "it did not wait at all", *node)
    assert rejected.returncode == 0, rejected.stderr
    view = chain.owner.escrows.get(escrow_id)
    assert view.status == EscrowStatus.DISPUTED
    evidence = chain.owner.escrows.get_dispute(escrow_id)
    assert evidence is not None and evidence.reason == "it did not wait at all"
    assert evidence.delivered_hash == view.result_hash  # delivered as committed, but rejected
    again = cli("ledger", "dispute", escrow_id, "--reason", "twice", *node)
    assert again.returncode == 1 and "disputed" in again.stderr

    # deadline + grace passes: the agent's node would claim now, but the dispute blocks it
    wait_until(lambda: payment_state(worker, escrow_id) == "disputed", timeout=120)
    assert chain.owner.escrows.get(escrow_id).status == EscrowStatus.DISPUTED
    # the arbiter stays silent: after the arbitration period the requester's node refunds
    wait_until(lambda: payment_state(requester, escrow_id) == "refunded", timeout=120)
    assert chain.owner.escrows.get(escrow_id).status == EscrowStatus.REFUNDED
    assert chain.owner.tokens.balance_of(requester_addr) == FUNDS
    assert chain.owner.tokens.balance_of(worker_addr) == FUNDS
    wait_until(lambda: payment_state(worker, escrow_id) == "unpaid", timeout=120)


def test_a_forged_registration_of_a_peer_id_is_ignored_by_every_reader(
    cluster: Cluster, chain: Chain, tmp_path: Path
) -> None:
    """A stranger registers the worker's peer id and agent name under its own account with a
    forged proof (and with the worker's real proof copied), then rates the fake entry from a
    sock-puppet requester through self-dealt escrows. The worker's own registration is
    unaffected; `ledger agents` flags the fakes; the requester's node rates only the entry that
    proves the card's node; a node's settlement refuses to rate an entry that does not, and its
    registry prior counts only the proven entry's paid rating - which is what a node that joins
    afterwards sees."""
    requester_addr = chain.fund(cluster.root / "requester")
    chain.fund(cluster.root / "worker")
    worker = cluster.start("worker", agents=[EXAMPLES / "calculator.yaml"], env=chain.env())
    requester = cluster.start("requester", bootstrap=[worker.multiaddr], env=chain.env())
    card_id = own_card(worker)
    ext = wait_until(lambda: registered(requester, card_id), timeout=60)
    real_id, agent_name = ext["registryId"], ext["agentId"]
    owner = chain.owner
    real = owner.registry.get(real_id)

    squatter, puppet = new_requester(chain), new_requester(chain)
    impostor = NodeKey.generate()
    forged = sign_registration(
        impostor,
        chain.deployment.chain_id,
        chain.deployment.registry,
        squatter.ledger.address,
        agent_name,
    )
    fake_ids = [
        squatter.ledger.registry.register(
            real.card_uri, bytes.fromhex(real.card_hash[2:]), worker.peer_id, agent_name, proof
        )
        for proof in (forged, real.peer_proof)
    ]
    for n, fake in enumerate(fake_ids):  # self-dealt "reputation" for the fakes
        task = f"sock-puppet-{fake}-{n}"
        puppet.ledger.escrows.open(task, squatter.ledger.address, 1, owner.timestamp() + 600)
        squatter.ledger.escrows.commit_result(task, Web3.keccak(text=task))
        puppet.ledger.escrows.release(task)
        puppet.ledger.registry.give_feedback(fake, task, 100)
        assert owner.registry.feedback_count(fake) == 1

    # the worker's own entry is untouched and still proves the worker
    assert (
        owner.registry.registration_problem(
            real_id, peer_id=worker.peer_id, agent_name=agent_name, owner=ext["evmAddress"]
        )
        is None
    )
    for fake in fake_ids:
        problem = owner.registry.registration_problem(
            fake, peer_id=worker.peer_id, agent_name=agent_name
        )
        assert problem is not None and "proof" in problem
    listed = cli(
        "ledger", "agents", "--chain-home", str(chain.home), "--peer", worker.peer_id, "--json"
    )
    assert listed.returncode == 0, listed.stderr
    proofs = {row["registry_id"]: row["proof"] for row in json.loads(listed.stdout)}
    assert proofs == {real_id: "valid", **{f: "INVALID" for f in fake_ids}}
    one = cli("ledger", "agent", "--chain-home", str(chain.home), str(fake_ids[0]))
    assert one.returncode == 0 and "INVALID" in one.stdout

    # an honest submission rates the proven entry, never the fakes
    done = finished(requester, submit(requester, task="what is 3 * 3?", budget=10).id)
    assert done.state == "completed", done.error
    assert owner.registry.feedback_count(real_id) == 1
    assert [owner.registry.feedback_count(f) for f in fake_ids] == [1, 1]
    assert chain.owner.tokens.balance_of(requester_addr) == FUNDS - 5

    # a card naming someone else's entry (or an unproven one) is not rated on chain
    store = NodeStore(tmp_path / "reader.db")
    try:
        reader = Settlement(owner, store, {})
        with pytest.raises(LedgerError, match="not rated on chain"):
            asyncio.run(
                reader.rate_on_chain(
                    fake_ids[0],
                    "0x" + "00" * 32,
                    100,
                    "",
                    peer_id=worker.peer_id,
                    agent_name=agent_name,
                    owner=squatter.ledger.address,
                )
            )
        with pytest.raises(LedgerError, match="names peer"):
            asyncio.run(
                reader.rate_on_chain(
                    real_id,
                    "0x" + "00" * 32,
                    100,
                    "",
                    peer_id=impostor.peer_id,
                    agent_name=agent_name,
                    owner=ext["evmAddress"],
                )
            )
        # the registry prior reads only the proven entry's paid rating, with its amount; the
        # squatter's self-dealt ratings of the fakes are not there
        # (the chain is the module's: earlier tests' ratings of their own agents are there too)
        read = asyncio.run(reader.registry_ratings())
        assert read is not None
        worker_account = ext["evmAddress"].lower()
        ratings = [r for r in read.ratings if r.agent.startswith(worker.peer_id)]
        assert [(r.agent, r.rater, r.owner, r.score, r.amount) for r in ratings] == [
            (card_id, requester_addr.lower(), worker_account, 100, 5)
        ]
        assert not [r for r in read.ratings if r.owner == squatter.ledger.address.lower()]
        assert ratings[0].uri.startswith("noosphere:task:") and ratings[0].task_id
        assert read.linked[worker_account] == worker.peer_id
        assert squatter.ledger.address.lower() not in read.linked
        assert read.agents_of[worker_account] == [card_id]
        # the worker's escrows are all before their deadline: none counts as a failure
        assert not [e for e in read.escrows if e.owner == worker_account]
        assert asyncio.run(reader.registry_ratings()) is None  # nothing new on chain
    finally:
        store.close()

    # a node that joins now heard none of the gossip: its view comes from the registry prior.
    # It pre-trusts the worker's node, so the requester's account, which paid that node, is
    # credible (an account that paid only nodes the newcomer does not know would count nothing)
    newcomer = cluster.start(
        "newcomer",
        bootstrap=[worker.multiaddr],
        env={**chain.env(), "NOOSPHERE_TRUSTED_PEERS": worker.peer_id},
    )
    assert wait_until(lambda: (reputation(newcomer, card_id) or 0.0) > 0.5, timeout=60)
