"""The six phases end to end, as ``make demo`` runs them: a real anvil, an attribute authority and
five node processes. Every phase's observable outcome is checked: cards on every node, the
ranked winners (the unreliable agent replaced after it fails), a sealed payload that an agent
outside the policy cannot read, token balances moved by exactly the prices, and reputations
changed on every node."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from rich.console import Console

from noosphere.abe.authority import load_public_key
from noosphere.abe.sealed import seal_parts
from noosphere.cli.demo import (
    DEMO_TASKS,
    ESCROW_ROW,
    SEALED_POLICY,
    DemoReport,
    _stop_leftovers,
    run_demo,
)
from noosphere.ledger import Deployment, LedgerClient
from noosphere.ledger.chain import DEV_MNEMONIC, read_runtime
from noosphere.node.a2a_client import A2AClient, text_message
from noosphere.node.auth import BearerAuth
from noosphere.protocol.payment import PAYMENT_METADATA_KEY, PaymentRef

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoReport, Path, str]]:
    workdir = tmp_path_factory.mktemp("demo")
    console = Console(file=io.StringIO(), width=120)
    try:
        report = run_demo(nodes=5, keep=True, workdir=workdir, console=console)
        yield report, workdir, console.file.getvalue()  # type: ignore[attr-defined]
    finally:
        _stop_leftovers(workdir)


def winner_names(report: DemoReport) -> list[str | None]:
    return [report.names.get(s.winner or "") for s in report.submissions]


def test_every_node_holds_every_card(demo: tuple[DemoReport, Path, str]) -> None:
    report, _, _ = demo
    views = list(report.cards.values())
    assert len(views) == 5 and len(views[0]) == 6
    assert all(view == views[0] for view in views)


def test_demo_prints_the_web_view_of_the_requester(demo: tuple[DemoReport, Path, str]) -> None:
    report, _, output = demo
    url = report.rpc_urls["node-5"] + "/"
    assert f"Web view of the requester: {url}" in " ".join(output.split())
    page = httpx.get(url, timeout=10)
    assert page.status_code == 200 and "noosphere" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_recruit_and_execute_pick_the_right_agents(demo: tuple[DemoReport, Path, str]) -> None:
    report, _, output = demo
    assert [s.state for s in report.submissions] == ["completed"] * len(DEMO_TASKS)
    assert winner_names(report) == [
        "Exact Calculator",
        "Exact Calculator",
        "Document Summarizer",
        "Data Wrangler",
        "Time Zone Scheduler",
    ]
    first = report.submissions[0]
    bargain, exact = first.attempts
    assert (bargain.name, bargain.state, bargain.payment) == (
        "Bargain Calculator",
        "failed",
        "refund after deadline",
    )
    assert (exact.name, exact.state, exact.payment) == ("Exact Calculator", "completed", "released")
    # after its failure MARS ranks the unreliable agent below the honest one
    ranking = next(e.text for e in report.submissions[1].events if e.phase == "recruit")
    assert ranking.index("Exact Calculator") < ranking.index("Bargain Calculator")
    sealed = report.submissions[2]
    assert any("sealed task" in e.text for e in sealed.events)
    assert "canary stage" in str(sealed.result)  # sentences taken from the sealed text
    assert "Settle: NOOS balances" in output and "summary" in output


def test_balances_moved_by_exactly_the_prices(demo: tuple[DemoReport, Path, str]) -> None:
    report, _, _ = demo
    change = {k: report.balances_after[k] - report.balances_before[k] for k in report.addresses}
    paid = sum(int(s.paid) for s in report.submissions)
    locked = sum(a.price for s in report.submissions for a in s.attempts if a.payment != "released")
    assert paid == sum(report.prices[s.winner or ""] for s in report.submissions)
    assert change["node-5"] == -(paid + locked)
    assert report.balances_after[ESCROW_ROW] - report.balances_before[ESCROW_ROW] == locked
    owner_of = {peer: node for node, peer in report.peers.items()}
    earned = dict.fromkeys((f"node-{i}" for i in range(1, 5)), 0)
    for s in report.submissions:
        earned[owner_of[(s.winner or "").split("/")[0]]] += int(s.paid)
    assert {n: change[n] for n in earned} == earned


def test_reputation_changed_on_every_node(demo: tuple[DemoReport, Path, str]) -> None:
    report, _, _ = demo
    winners = {s.winner for s in report.submissions}
    for node, view in report.reputation.items():
        for winner in winners:
            assert view.get(winner or "") is not None, (node, winner)
    requester = report.reputation["node-5"]
    bargain = next(c for c, n in report.names.items() if n == "Bargain Calculator")
    exact = next(c for c, n in report.names.items() if n == "Exact Calculator")
    assert requester[bargain] < 0.5 < requester[exact]


def test_other_nodes_views_move_and_a_newcomer_starts_from_the_registry(
    demo: tuple[DemoReport, Path, str],
) -> None:
    """Before the tasks nobody has an opinion; after them every agent node sees the paid winners
    above the neutral 0.5 - node-1 because it pre-trusts the requester, the others through the
    registry's paid ratings (the requester's account paid node-1, which they pre-trust) - and so
    does a node that joined after the tasks. The unreliable agent's failure was never paid, so
    it is not on the registry and nothing lifts it."""
    report, _, output = demo
    assert all(v is None for view in report.reputation_before.values() for v in view.values())
    paid = {s.winner for s in report.submissions if s.winner and int(s.paid) > 0}
    assert len(paid) == 4
    for node in ("node-1", "node-2", "node-3", "node-4"):
        for agent in paid:
            assert (report.reputation[node][agent] or 0.0) > 0.5, (node, report.names[agent])
    bargain = next(c for c, n in report.names.items() if n == "Bargain Calculator")
    assert (report.reputation["node-1"][bargain] or 1.0) < 0.5  # the requester's 0 counts there
    assert (report.reputation["node-3"][bargain] or 0.5) >= 0.5  # nobody vouches for its rater
    for agent in paid:
        assert (report.newcomer_reputation[agent] or 0.0) > 0.5, report.names[agent]
    # never paid, so not on the registry (the requester's gossip may reach it, at weight 0)
    assert (report.newcomer_reputation[bargain] or 0.5) <= 0.5
    assert "newcomer" in output and "before → after" in output


def test_sealed_payload_is_unreadable_outside_the_policy(
    demo: tuple[DemoReport, Path, str],
) -> None:
    """The scheduler's node (org:globex, role:assistant) is paid properly and still cannot open a
    task sealed for org:acme and clearance:secret: it rejects it, and never stores the
    plaintext."""
    report, workdir, _ = demo
    scheduler = next(c for c, n in report.names.items() if n == "Time Zone Scheduler")
    node = next(n for n, peer in report.peers.items() if peer == scheduler.split("/")[0])
    home = workdir / "nodes" / node
    chain_home = workdir / "chain"
    runtime = read_runtime(chain_home)
    assert runtime is not None
    Account.enable_unaudited_hdwallet_features()
    payer_account = Account.from_mnemonic(DEV_MNEMONIC, account_path="m/44'/60'/0'/0/1")
    payer = LedgerClient(runtime.rpc_url, payer_account)
    deployment = Deployment.load(chain_home, payer.chain_id)
    assert deployment is not None
    payer.use(deployment)
    owner = LedgerClient(
        runtime.rpc_url,
        Account.from_mnemonic(DEV_MNEMONIC, account_path="m/44'/60'/0'/0/0"),
        deployment,
    )
    owner.tokens.mint(payer.address, 8)
    escrow_id = "0x" + "ab" * 32
    payer.tokens.approve(deployment.escrow, 8)
    payer.escrows.open(escrow_id, report.addresses[node], 8, payer.timestamp() + 600)
    secret = "SECRET-incident-42 needs a summary"
    message = text_message(secret)
    public = load_public_key(workdir / "authority")
    sealed = seal_parts(public, SEALED_POLICY, message.parts, message.message_id)
    ref = PaymentRef(chain_id=payer.chain_id, escrow=deployment.escrow, escrow_id=escrow_id)
    message = message.model_copy(
        update={"parts": [sealed], "metadata": {PAYMENT_METADATA_KEY: ref.to_wire()}}
    )

    async def send() -> object:
        token = (home / "rpc.token").read_text().strip()
        tenant = scheduler.split("/", 1)[1]
        url = report.rpc_urls[node]
        async with A2AClient(url, auth=BearerAuth(token), tenant=tenant) as client:
            return await client.send(message)

    task = asyncio.run(send())
    assert task.status.state.short == "rejected"  # type: ignore[attr-defined]
    assert "policy" in task.status.message.text  # type: ignore[attr-defined]
    for path in home.glob("*.db*"):
        assert secret.encode() not in path.read_bytes()
