"""Faults between real node processes: a bootstrap node killed with SIGKILL and restarted, churn
(30% of a network killed at once), and a node whose SQLite store was damaged while it was down."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from noosphere.node.auth import BearerAuth
from noosphere.node.client import NodeClient
from noosphere.node.launcher import LocalNode
from noosphere.protocol.api import RecruitParams

from .support import (
    EXAMPLES,
    Cluster,
    card_ids,
    free_port,
    own_card_ids,
    start_many,
    wait_until,
)

pytestmark = pytest.mark.integration


def connected(node: LocalNode) -> set[str]:
    with node.client() as client:
        return {p.peer_id for p in client.peers() if p.connected}


def test_bootstrap_node_killed_and_restarted(cluster: Cluster) -> None:
    port = free_port()  # a bootstrap node lives at a known address: it comes back on it
    a = cluster.start("a", agents=[EXAMPLES / "calculator.yaml"], p2p_port=port)
    b, c = start_many(
        cluster,
        [
            ("b", {"agents": [EXAMPLES / "summarizer.toml"], "bootstrap": [a.multiaddr]}),
            ("c", {"agents": [EXAMPLES / "scheduler.yaml"], "bootstrap": [a.multiaddr]}),
        ],
    )
    first = own_card_ids(a) | own_card_ids(b) | own_card_ids(c)
    assert len(first) == 3
    for node in (a, b, c):
        wait_until(lambda node=node: card_ids(node) == first, timeout=60)
    wait_until(lambda: c.peer_id in connected(b), timeout=60)  # B and C met through A's cards

    a.kill()
    # The others keep their whole view (the cards of A live until their TTL), and a node that
    # joins meanwhile (through B) reaches C but has never been seen by A.
    d = cluster.start("d", agents=[EXAMPLES / "data-wrangler.toml"], bootstrap=[b.multiaddr])
    everyone = first | own_card_ids(d)
    for node in (b, c, d):
        wait_until(lambda node=node: card_ids(node) == everyone, timeout=60)
    assert card_ids(b) == everyone and card_ids(c) == everyone

    a2 = cluster.start("a", p2p_port=port)  # same home: same key, config, store
    assert a2.peer_id == a.peer_id
    assert a2.multiaddr == a.multiaddr
    # D's card reaches A only from the others (pull-sync on connection or gossip).
    wait_until(lambda: card_ids(a2) == everyone, timeout=60)
    wait_until(lambda: {b.peer_id, c.peer_id} <= connected(a2), timeout=60)

    # A node started after the restart joins through A alone and learns everything.
    e = cluster.start(
        "e",
        agents=[EXAMPLES / "text-stats.json"],
        bootstrap=[a2.multiaddr],
        env={"NOOSPHERE_TARGET_PEERS": "0"},  # no dialing of peers learned from cards
    )
    final = everyone | own_card_ids(e)
    assert len(final) == 5
    for node in (a2, b, c, d, e):
        wait_until(lambda node=node: card_ids(node) == final, timeout=60)
    assert a2.peer_id in connected(e)  # (the others may dial E once they hold its card)


TTL_S = 10


def test_churn_survivors_converge_and_recruit_only_live_agents(cluster: Cluster) -> None:
    agents = [
        "calculator.yaml",
        "summarizer.toml",
        "scheduler.yaml",
        "text-stats.json",
        "flaky-bargain.yaml",
        "data-wrangler.toml",
        "calculator.yaml",
        "summarizer.toml",
    ]
    env = {"NOOSPHERE_CARD_TTL_S": str(TTL_S)}
    seed = cluster.start("n0", agents=[EXAMPLES / agents[0]], env=env)
    rest = start_many(
        cluster,
        [
            (
                f"n{i}",
                {
                    "agents": [EXAMPLES / name],
                    "bootstrap": [seed.multiaddr],
                    "env": env,
                },
            )
            for i, name in enumerate(agents[1:], start=1)
        ],
    )
    nodes = [seed, *rest]
    owned = {node.peer_id: own_card_ids(node) for node in nodes}
    everything = set().union(*owned.values())
    assert len(everything) == len(nodes)
    for node in nodes:
        wait_until(lambda node=node: card_ids(node) == everything, timeout=90)

    survivor = nodes[1]
    operator = NodeClient(survivor.rpc_url, timeout=120, auth=BearerAuth(survivor.token))
    query = RecruitParams(task="what is 17/3 + 2^10?", top=20)
    with operator:
        before = operator.recruit(query)  # loads the embedding model, indexes every card
        assert before.cards_indexed == len(everything)

        # 30% die at once, without a chance to say goodbye.
        dead = [nodes[3], nodes[5], nodes[7]]
        for node in dead:
            node.process.kill()
        for node in dead:
            node.kill()
        alive = [n for n in nodes if n not in dead]
        live_cards = set().union(*(owned[n.peer_id] for n in alive))
        dead_cards = everything - live_cards

        # Every survivor drops the dead nodes' cards once they expire and keeps the live ones
        # (re-announced every TTL/3). The bound is the TTL plus sweep and scheduling slack.
        for node in alive:
            wait_until(lambda node=node: card_ids(node) == live_cards, timeout=TTL_S + 30)
        for node in alive:
            assert node.alive
            assert card_ids(node) == live_cards  # no live card lost meanwhile

        after = operator.recruit(query)
    returned = {ch.card_id for ch in after.chosen} | {r.card_id for r in after.rejected}
    assert after.cards_indexed == len(live_cards)
    assert returned <= live_cards and not returned & dead_cards
    assert after.chosen, "the calculators that are still alive fit this task"
    assert {ch.peer_id for ch in after.chosen} <= {n.peer_id for n in alive}


def _node_start(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "noosphere.cli",
            "node",
            "start",
            "--home",
            str(home),
            "--p2p-port",
            "0",
            "--rpc-port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "300"},
    )


@pytest.mark.parametrize("damage", ["pages", "header"])
def test_node_with_corrupted_store_refuses_to_start(cluster: Cluster, damage: str) -> None:
    a = cluster.start("a", agents=[EXAMPLES / "calculator.yaml"])
    b = cluster.start("b", bootstrap=[a.multiaddr])
    wait_until(lambda: own_card_ids(a) <= card_ids(b))
    assert b.stop() == 0
    db = b.home / "node.db"
    assert not (b.home / "node.db-wal").exists() or (b.home / "node.db-wal").stat().st_size == 0
    data = bytearray(db.read_bytes())
    assert data.startswith(b"SQLite format 3\x00")
    if damage == "pages":
        page_size = int.from_bytes(data[16:18], "big")  # the header and schema page stay
        data[page_size:] = os.urandom(len(data) - page_size)
    else:
        data[:100] = os.urandom(100)
    db.write_bytes(bytes(data))

    ran = _node_start(b.home)
    assert ran.returncode != 0
    assert "Traceback" not in ran.stderr + ran.stdout
    errors = [line for line in ran.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, ran.stderr
    assert str(db) in errors[0]
    assert "restore it from a backup or move it aside" in errors[0]
    assert db.read_bytes() == bytes(data)  # left as found, for the operator to inspect
