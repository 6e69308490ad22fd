"""The demo (all six phases on this machine): start a local chain (anvil) with the contracts, an
attribute authority, and node processes running the example agents (one deliberately unreliable);
then Publish (signed cards, agents registered on chain), Discover (gossip until every node sees
every card), and for each demo task, through the requester's node: Recruit (MARS ranking),
Execute (A2A streaming, one task sealed with CP-ABE), Settle (escrow released, balances moved)
and Feedback (ratings gossiped and on the registry; reputations as every node sees them, before
and after the tasks: node-1 pre-trusts the requester, every other node pre-trusts node-1, the
bootstrap node it joined through; gossip counts by EigenTrust, the registry's paid ratings by
the payer's standing - the requester's account counts because it paid node-1 - and a newcomer
node that joins after the tasks, having heard none of the gossip, sees the registry prior).
Ends with a summary and stops everything unless ``--keep``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from rich.console import Console
from rich.live import Live
from rich.table import Table

from noosphere.abe.authority import Authority, import_bundle
from noosphere.agents.spec import load_agent_spec
from noosphere.errors import SetupError
from noosphere.ledger import LedgerClient, LedgerError
from noosphere.ledger.chain import DEV_MNEMONIC, ChainError, LocalChain, set_gas_balance
from noosphere.node.auth import BearerAuth
from noosphere.node.client import NodeClient, NodeUnreachable
from noosphere.node.keystore import load_or_create_evm_account, load_or_create_node_key
from noosphere.node.launcher import LaunchError, LocalNode, spawn_node, wait_ready
from noosphere.node.runtime import RUNTIME_FILENAME
from noosphere.protocol import AgentCard, NoosphereCardParams, RpcError
from noosphere.protocol.api import CardEntry, Submission, SubmitParams

from .submit import follow_submission, print_summary

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "agents"
CONVERGENCE_TIMEOUT_S = 90.0
PRIOR_TIMEOUT_S = 30.0  # the settlement worker reads the registry every 2 s
REQUESTER_FUNDS = 1_000  # NOOS units minted to the requester's node
GAS_WEI = 10**20
GRACE_PERIOD_S = 120
UNRELIABLE_AGENT = "flaky-bargain"
ESCROW_ROW = "escrow (locked)"
SEALED_POLICY = "org:acme and clearance:secret"


@dataclass(frozen=True)
class DemoTask:
    text: str
    budget: int | None = None
    policy: str | None = None


#: What the requester's node submits, in order. The first arithmetic task tempts MARS with the
#: unreliable agent's price; its failure costs it reputation and its escrow comes back.
DEMO_TASKS = [
    DemoTask("what is 12*12?", budget=10),
    DemoTask("what is 17/3 + 2^10?", budget=10),
    DemoTask(
        "summarize in 2 sentences: The outage began at 09:12 UTC when a configuration push "
        "disabled the load balancer health checks. Traffic shifted to a single region, which "
        "saturated within minutes. Engineers rolled back the change at 09:40. Customers saw "
        "elevated error rates for 28 minutes. A postmortem found that the push skipped the "
        "canary stage. The team will add a mandatory canary gate to the deploy pipeline.",
        policy=SEALED_POLICY,
    ),
    DemoTask("total sales by region:\nregion,sales\nnorth,120\nsouth,80\nnorth,45\nwest,60"),
    DemoTask("10 business days after 2026-12-18"),
]


class DemoError(SetupError, RuntimeError):
    """The demo could not run; the message says what to do."""


@dataclass
class DemoReport:
    """What the demo observed (the end-to-end test asserts on it)."""

    cards: dict[str, set[str]] = field(default_factory=dict)  # node -> card ids it holds
    submissions: list[Submission] = field(default_factory=list)
    balances_before: dict[str, int] = field(default_factory=dict)  # node -> NOOS units
    balances_after: dict[str, int] = field(default_factory=dict)
    reputation: dict[str, dict[str, float | None]] = field(default_factory=dict)  # node->card->r
    reputation_before: dict[str, dict[str, float | None]] = field(default_factory=dict)
    newcomer_reputation: dict[str, float | None] = field(default_factory=dict)  # card -> r
    timings_s: dict[str, float] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # card id -> agent name
    addresses: dict[str, str] = field(default_factory=dict)  # node -> EVM address
    prices: dict[str, int] = field(default_factory=dict)  # card id -> price
    peers: dict[str, str] = field(default_factory=dict)  # node -> peer id
    rpc_urls: dict[str, str] = field(default_factory=dict)  # node -> JSON-RPC URL


def example_agents() -> list[Path]:
    files = sorted(p for p in EXAMPLES.glob("*") if p.suffix in (".toml", ".yaml", ".yml", ".json"))
    if not files:
        raise DemoError(f"no example agent files in {EXAMPLES}")
    return files


def _assign(agents: list[Path], agent_nodes: int) -> list[list[Path]]:
    """The unreliable agent alone on node-2 (its failure rate is set per process); the others
    round-robin over the remaining agent nodes."""
    assignment: list[list[Path]] = [[] for _ in range(agent_nodes)]
    others = [i for i in range(agent_nodes) if i != 1]
    rest = [a for a in agents if a.stem != UNRELIABLE_AGENT]
    for i, agent in enumerate(rest):
        assignment[others[i % len(others)]].append(agent)
    assignment[1] += [a for a in agents if a.stem == UNRELIABLE_AGENT]
    return assignment


def _stop_leftovers(workdir: Path) -> None:
    """Kill nodes and the chain a previous ``demo --keep`` left running in ``workdir``."""
    runtimes = [*workdir.glob(f"nodes/*/{RUNTIME_FILENAME}"), workdir / "chain" / "chain.json"]
    pids = []
    for runtime in runtimes:
        with contextlib.suppress(OSError, ValueError, KeyError, ProcessLookupError):
            pid = int(json.loads(runtime.read_text())["pid"])
            os.kill(pid, signal.SIGTERM)
            pids.append(pid)
    deadline = time.monotonic() + 20  # a node holds its home's lock until it has exited
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if _alive(pid)]
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _view(nodes: list[LocalNode], expected: int, started: float) -> tuple[Table, int]:
    table = Table(title=f"network view after {time.monotonic() - started:4.1f} s")
    for column in ("node", "peer id", "rpc", "agents", "peers", "cards seen"):
        table.add_column(column)
    converged = 0
    for i, node in enumerate(nodes, 1):
        try:
            with node.client(timeout=2) as client:
                cards = client.cards()
                peers = sum(1 for p in client.peers() if p.connected)
        except NodeUnreachable:
            table.add_row(f"node-{i}", node.peer_id[-8:], node.rpc_url, "-", "-", "[red]down[/]")
            continue
        local = ", ".join(c.name for c in cards if c.local)
        done = len(cards) == expected
        converged += done
        seen = f"[green]{len(cards)}/{expected}[/]" if done else f"{len(cards)}/{expected}"
        table.add_row(f"node-{i}", "…" + node.peer_id[-8:], node.rpc_url, local, str(peers), seen)
    return table, converged


def _views_matrix(nodes: list[LocalNode], report: DemoReport) -> Table:
    """One row per card, one column per node: what each node's own index holds."""
    views = []
    for i, node in enumerate(nodes, 1):
        with node.client() as client:
            view = {c.card_id: c for c in client.cards(full=True)}
        views.append(view)
        report.cards[f"node-{i}"] = set(view)
    owner_of = {n.peer_id: f"node-{i}" for i, n in enumerate(nodes, 1)}
    table = Table(title="each node's view: ● own card, ✓ learned by gossip")
    for column in ("agent", "owner", "price", "attributes", "registry"):
        table.add_column(column)
    for i in range(1, len(nodes) + 1):
        table.add_column(f"node-{i}", justify="center")
    every = {cid: card for view in views for cid, card in view.items()}
    for cid, card in sorted(
        every.items(), key=lambda kv: (owner_of.get(kv[1].peer_id, ""), kv[1].name)
    ):
        marks = ["●" if cid in v and v[cid].local else "✓" if cid in v else "·" for v in views]
        ext = _extension(card)
        report.names[cid] = card.name
        report.prices[cid] = int(ext.price.amount)
        table.add_row(
            card.name,
            owner_of.get(card.peer_id, "?"),
            card.price,
            " ".join(card.attributes),
            f"#{ext.registry_id}" if ext.registry_id else "-",
            *marks,
        )
    return table


def _wait_for(what: str, predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(NodeUnreachable, RpcError):
            if predicate():
                return
        time.sleep(0.25)
    raise DemoError(f"timed out waiting for {what}")


def _models_loaded(node: LocalNode) -> bool:
    with node.client() as client:
        return client.status().models_loaded


def _registered(node: LocalNode, expected: int) -> bool:
    """Every card ``node`` holds names its agent's registry id (agents registered on chain)."""
    with node.client() as client:
        cards = client.cards(full=True)
    return len(cards) == expected and all(_extension(c).registry_id for c in cards)


def _extension(entry: CardEntry) -> NoosphereCardParams:
    """The noosphere extension of a card listed with ``full=True``."""
    return AgentCard.model_validate(entry.card).noosphere()


class _Setup:
    """The chain, its contracts, the authority and the node homes' keys, before any node runs."""

    def __init__(self, workdir: Path, console: Console) -> None:
        self.workdir = workdir
        self.console = console
        self.chain: LocalChain | None = None
        self.owner: LedgerClient

    def start_chain(self) -> None:
        home = self.workdir / "chain"
        shutil.rmtree(home, ignore_errors=True)
        try:
            self.chain = LocalChain.start(home)
        except ChainError as exc:
            raise DemoError(str(exc)) from exc
        Account.enable_unaudited_hdwallet_features()
        owner = Account.from_mnemonic(DEV_MNEMONIC, account_path="m/44'/60'/0'/0/0")
        try:
            self.owner = LedgerClient(self.chain.runtime.rpc_url, owner)
            deployment = self.owner.deploy_all(grace_period_s=GRACE_PERIOD_S)
        except LedgerError as exc:
            raise DemoError(f"cannot deploy the contracts: {exc}") from exc
        deployment.save(home)
        self.console.print(
            f"  chain {deployment.chain_id} at {self.chain.runtime.rpc_url}: token"
            f" {deployment.token[:10]}…, escrow {deployment.escrow[:10]}…, registry"
            f" {deployment.registry[:10]}…"
        )

    def prepare_home(self, home: Path, attributes: list[str], funds: int) -> str:
        """Node key, ledger key with gas (and ``funds`` tokens), attribute key if it has any."""
        home.mkdir(parents=True, exist_ok=True)
        key, _ = load_or_create_node_key(home)
        account, _ = load_or_create_evm_account(home)
        assert self.chain is not None
        set_gas_balance(self.chain.runtime.rpc_url, account.address, GAS_WEI)
        if funds:
            self.owner.tokens.mint(account.address, funds)
        if attributes:
            bundle = self.authority.issue(key.peer_id, attributes)
            import_bundle(home, key, bundle.model_dump_json().encode())
        return str(account.address)

    def start_authority(self) -> None:
        home = self.workdir / "authority"
        shutil.rmtree(home, ignore_errors=True)
        self.authority = Authority.init(home)
        self.console.print(f"  attribute authority (FAME over BLS12-381) in {home}")

    @property
    def node_env(self) -> dict[str, str]:
        return {
            "NOOSPHERE_CHAIN_HOME": str(self.workdir / "chain"),
            "NOOSPHERE_ABE_AUTHORITIES": str(self.workdir / "authority" / "public.key"),
            "NOOSPHERE_PRELOAD_MODELS": "true",  # the model loads while the cards spread
        }

    def stop(self) -> None:
        if self.chain is not None:
            self.chain.stop()


def _balances(setup: _Setup, report: DemoReport) -> dict[str, int]:
    """Token balances of every node, and of the escrow contract (what is locked in escrows)."""
    balances = {
        name: setup.owner.tokens.balance_of(addr) for name, addr in report.addresses.items()
    }
    balances[ESCROW_ROW] = setup.owner.tokens.balance_of(setup.owner.deployment.escrow)
    return balances


def _reputation_views(nodes: list[LocalNode]) -> dict[str, dict[str, float | None]]:
    views = {}
    for i, node in enumerate(nodes, 1):
        with node.client() as client:
            views[f"node-{i}"] = {c.card_id: c.reputation for c in client.cards()}
    return views


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _reputations(report: DemoReport) -> Table:
    table = Table(
        title="Feedback: each agent's reputation as every node sees it, before → after the tasks",
        caption="node-1 pre-trusts the requester (trusted_peers): its gossiped ratings count in"
        " full there. The others pre-trust node-1 and weigh the requester's gossip by EigenTrust"
        " (nobody vouches for a node that hosts no agent yet); they count its paid ratings on the"
        " registry, because it paid node-1 (capped per paying account). The newcomer joined"
        " after the tasks, heard none of the gossip and sees the registry prior",
    )
    table.add_column("agent")
    nodes = sorted(report.reputation, key=lambda n: int(n.split("-")[1]))
    for node in nodes:
        table.add_column(node, justify="right")
    table.add_column("newcomer", justify="right")
    for card_id, name in sorted(report.names.items(), key=lambda kv: kv[1]):
        cells = []
        for node in nodes:
            before = report.reputation_before.get(node, {}).get(card_id)
            after = report.reputation[node].get(card_id)
            cell = f"{_shown(before)} → {_shown(after)}"
            cells.append(f"[bold]{cell}[/]" if before != after else cell)
        cells.append(_shown(report.newcomer_reputation.get(card_id)))
        table.add_row(name, *cells)
    return table


def _card_count(node: LocalNode) -> int:
    with node.client() as client:
        return len(client.cards())


def _paid_winners(report: DemoReport) -> set[str]:
    """Agents paid for a task in the demo (rated on the registry)."""
    return {s.winner for s in report.submissions if s.winner and int(s.paid) > 0}


def _prior_applied(node: LocalNode, agents: set[str]) -> bool:
    """Whether ``node`` holds every agent in ``agents`` above the neutral 0.5 (the registry's
    paid ratings have reached its trust model)."""
    with node.client() as client:
        seen = {c.card_id: c.reputation for c in client.cards()}
    return all((seen.get(agent) or 0.0) > 0.5 for agent in agents)


def _join_newcomer(
    workdir: Path, first: LocalNode, env: dict[str, str], report: DemoReport, console: Console
) -> None:
    """Start a node that heard none of the demo's gossip (pre-trusting node-1, the bootstrap
    node it joins through) and read its reputation view."""
    newcomer = spawn_node(
        workdir / "nodes" / "newcomer",
        bootstrap=[first.multiaddr],
        env={**env, "NOOSPHERE_PRELOAD_MODELS": "false", "NOOSPHERE_TRUSTED_PEERS": first.peer_id},
    )
    try:
        expected = len(report.names)
        _wait_for("the newcomer to learn every card",
                  lambda: _card_count(newcomer) == expected, CONVERGENCE_TIMEOUT_S)  # fmt: skip
        paid = _paid_winners(report)
        with contextlib.suppress(DemoError):
            _wait_for("the registry prior", lambda: _prior_applied(newcomer, paid), PRIOR_TIMEOUT_S)
        with newcomer.client() as client:
            report.newcomer_reputation = {c.card_id: c.reputation for c in client.cards()}
        console.print(
            f"  a newcomer node joined after the tasks ({newcomer.peer_id[-8:]}): it learned the"
            " cards by sync and its reputations from the registry"
        )
    finally:
        newcomer.stop(timeout=10)


def _balance_table(report: DemoReport) -> Table:
    table = Table(title="Settle: NOOS balances on chain")
    for column in ("node", "address", "before", "after", "change"):
        table.add_column(column, justify="right" if column != "address" else "left")
    rows = [*report.addresses.items(), (ESCROW_ROW, "TaskEscrow contract")]
    for name, addr in rows:
        before, after = report.balances_before[name], report.balances_after[name]
        change = after - before
        shown = f"[green]+{change}[/]" if change > 0 else f"[red]{change}[/]" if change else "0"
        shown_addr = addr[:12] + "…" if addr.startswith("0x") else addr
        table.add_row(name, shown_addr, str(before), str(after), shown)
    table.caption = (
        "escrows of failed attempts stay locked until their deadline, then the requester's"
        " node refunds them"
    )
    return table


def _summary_table(report: DemoReport) -> Table:
    table = Table(title="noosphere demo: summary")
    table.add_column("phase")
    table.add_column("time", justify="right")
    table.add_column("what happened")
    agents = len(report.names)
    done = [s for s in report.submissions if s.state == "completed"]
    paid = sum(int(s.paid) for s in report.submissions)
    failed = sum(1 for s in report.submissions for a in s.attempts if a.state != "completed")
    rows = [
        ("publish", "publish", f"{agents} signed cards, agents registered on chain"),
        ("discover", "discover", f"every node holds all {agents} cards"),
        ("recruit", "recruit", "MARS: vector search, semantic filter, ranking"),
        ("pay", "pay", "escrows opened with EIP-2612 permits"),
        (
            "execute",
            "execute",
            f"{len(done)}/{len(report.submissions)} tasks completed,"
            f" {failed} failed attempts re-recruited",
        ),
        ("settle", "settle", f"{paid} NOOS released on matching result commitments"),
        ("feedback", "feedback", "ratings gossiped to every node and recorded on the registry"),
    ]
    for phase, key, text in rows:
        table.add_row(phase, f"{report.timings_s.get(key, 0.0):.2f} s", text)
    return table


def run_demo(*, nodes: int, keep: bool, workdir: Path, console: Console) -> DemoReport:
    if nodes < 3:
        raise DemoError("the demo needs at least 3 nodes (agents on 2, one requester)")
    agents = example_agents()
    workdir = workdir.resolve()
    _stop_leftovers(workdir)
    shutil.rmtree(workdir / "nodes", ignore_errors=True)
    assignment = [*_assign(agents, nodes - 1), []]  # the last node only requests
    report = DemoReport()
    setup = _Setup(workdir, console)
    running: list[LocalNode] = []
    started = time.monotonic()
    try:
        console.rule("[bold]noosphere demo[/]: chain, authority, keys")
        setup.start_chain()
        setup.start_authority()
        for i, files in enumerate(assignment, 1):
            attributes = sorted({a for f in files for a in load_agent_spec(f).attributes})
            funds = REQUESTER_FUNDS if i == nodes else 0
            home = workdir / "nodes" / f"node-{i}"
            report.addresses[f"node-{i}"] = setup.prepare_home(home, attributes, funds)
        requester_peer = load_or_create_node_key(workdir / "nodes" / f"node-{nodes}")[0].peer_id
        report.balances_before = _balances(setup, report)

        console.rule("[bold]1 publish + 2 discover[/]: signed cards spread by gossip")
        console.print(
            f"Starting {nodes} node processes on 127.0.0.1 with {len(agents)} example agents;"
            f" node-{nodes} is the requester, node-2 runs the unreliable agent."
        )
        publish_started = time.monotonic()
        running += _start_nodes(workdir, assignment, setup.node_env, trusts=requester_peer)
        for i, node in enumerate(running, 1):
            report.peers[f"node-{i}"] = node.peer_id
            report.rpc_urls[f"node-{i}"] = node.rpc_url
        report.timings_s["publish"] = time.monotonic() - publish_started
        console.print(
            f"Web view of the requester: {running[-1].rpc_url}/ (operator token:"
            f" {running[-1].home / 'rpc.token'})",
            highlight=False,
        )
        _converge(running, len(agents), publish_started, console)
        _wait_for("agents registered on chain", lambda: _registered(running[-1], len(agents)), 60)
        report.timings_s["discover"] = time.monotonic() - publish_started
        console.print(_views_matrix(running, report))

        console.rule("[bold]3 recruit · 4 execute · 5 settle · 6 feedback[/]")
        with console.status("nodes are loading the embedding model (all-MiniLM-L6-v2)"):
            for node in running:
                _wait_for("the embedding model", lambda n=node: _models_loaded(n), 120)
        requester = running[-1]
        report.reputation_before = _reputation_views(running)
        for task in DEMO_TASKS:
            report.submissions.append(_submit(requester, task, console))
        for submission in report.submissions:
            for phase, ms in submission.timings_ms.items():
                report.timings_s[phase] = report.timings_s.get(phase, 0.0) + ms / 1000
        time.sleep(1.0)  # the last rating's gossip
        report.balances_after = _balances(setup, report)
        console.print(_balance_table(report))
        with console.status("agent nodes are reading the registry's paid ratings"):
            paid = _paid_winners(report)
            with contextlib.suppress(DemoError):
                _wait_for("the registry prior",
                          lambda: all(_prior_applied(n, paid) for n in running[1:-1]),
                          PRIOR_TIMEOUT_S)  # fmt: skip
            report.reputation = _reputation_views(running)
        with console.status("a newcomer node joins"):
            _join_newcomer(workdir, running[0], setup.node_env, report, console)
        console.print(_reputations(report))
        console.print(_summary_table(report))
        console.print(f"Total {time.monotonic() - started:.1f} s.")
        if keep:
            _explain_keep(running, report.addresses[f"node-{nodes}"], workdir, console)
    except (LaunchError, LedgerError) as exc:
        raise DemoError(f"{exc}; see the logs in {workdir / 'nodes'}/*/node.log") from exc
    finally:
        if not keep:
            for node in running:
                node.stop(timeout=10)
            setup.stop()
            console.print(
                f"Stopped {len(running)} nodes and the chain; their homes are in {workdir}."
            )
    return report


def _start_nodes(
    workdir: Path, assignment: list[list[Path]], env: dict[str, str], *, trusts: str
) -> list[LocalNode]:
    """Node-1 pre-trusts ``trusts`` (the requester); the others pre-trust node-1."""
    running: list[LocalNode] = []
    unreliable = {"FLAKY_FAILURE_RATE": "1.0"}
    try:
        first = spawn_node(
            workdir / "nodes" / "node-1",
            agents=assignment[0],
            env={**env, "NOOSPHERE_TRUSTED_PEERS": trusts},
        )
        running.append(first)
        for i in range(1, len(assignment)):
            node_env = {**env, **(unreliable if i == 1 else {})}
            running.append(spawn_node(
                workdir / "nodes" / f"node-{i + 1}", agents=assignment[i],
                bootstrap=[first.multiaddr], wait=False,
                env={**node_env, "NOOSPHERE_TRUSTED_PEERS": first.peer_id},
            ))  # fmt: skip
        for node in running[1:]:
            wait_ready(node)
    except LaunchError:
        for node in running:
            node.kill()
        raise
    return running


def _converge(running: list[LocalNode], expected: int, started: float, console: Console) -> None:
    with Live(console=console, refresh_per_second=4) as live:
        while True:
            table, converged = _view(running, expected, started)
            live.update(table)
            if converged == len(running):
                return
            if time.monotonic() - started > CONVERGENCE_TIMEOUT_S:
                raise DemoError(
                    f"cards did not reach every node within {CONVERGENCE_TIMEOUT_S:.0f}s"
                )
            time.sleep(0.25)


def _submit(requester: LocalNode, task: DemoTask, console: Console) -> Submission:
    """Hand one task to the requester's node and follow its six phases."""
    title = task.text.splitlines()[0][:70]
    sealed = f"  [yellow](sealed: {task.policy})[/]" if task.policy else ""
    console.print(f"\n[bold]task:[/] {title}{sealed}", highlight=False)
    params = SubmitParams(task=task.text, budget=task.budget, policy=task.policy)
    with NodeClient(requester.rpc_url, timeout=60, auth=BearerAuth(requester.token)) as client:
        submission = Submission.model_validate(
            client.call("noosphere.tasks.submit", params.to_wire())
        )
        submission = follow_submission(client, submission, console)
    print_summary(submission, console, result=False)
    return submission


def _explain_keep(running: list[LocalNode], address: str, workdir: Path, console: Console) -> None:
    requester = running[-1]
    console.print(f"\nWeb view: {requester.rpc_url}/ (token in {requester.home / 'rpc.token'})")
    console.print("The chain and the nodes keep running. Explore them with the CLI, e.g.:")
    console.print(f"  noosphere node status --rpc {running[0].rpc_url}")
    console.print(f"  noosphere cards list --rpc {requester.rpc_url}")
    console.print(
        f'  noosphere task submit --rpc {requester.rpc_url} --home {requester.home} "what is 2^64?"'
    )
    console.print(f"  noosphere ledger escrows {address} --chain-home {workdir / 'chain'}")
    console.print("Run `noosphere demo` again (or kill the PIDs in runtime.json) to stop them.")
