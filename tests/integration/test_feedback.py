"""Feedback between real node processes: the agent's node signs a receipt when a task ends, the
requester rates it (its node signs the rating and gossips it), the rating moves the requester's
ranking, other nodes receive and verify it, and trust survives a restart."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from noosphere.node.auth import BearerAuth
from noosphere.node.client import NodeClient
from noosphere.protocol import RpcError
from noosphere.protocol.api import RecruitParams

from .support import EXAMPLES, Cluster, card_ids, metric, wait_until

pytestmark = pytest.mark.integration


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "noosphere.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_rating_moves_reputation_and_spreads(cluster: Cluster) -> None:
    b = cluster.start("b", agents=[EXAMPLES / "calculator.yaml"])
    c = cluster.start("c", bootstrap=[b.multiaddr])
    a = cluster.start("a", bootstrap=[b.multiaddr, c.multiaddr])
    card = f"{b.peer_id}/exact-calculator"
    wait_until(lambda: card in card_ids(a))

    common = ["--rpc", a.rpc_url, "--home", str(a.home), "--to", card]
    sent = cli("task", "send", *common, "what is 6*7?", "--json")
    assert sent.returncode == 0, sent.stderr
    task = json.loads(sent.stdout)
    receipt = task["metadata"]["noosphere"]["receipt"]
    assert receipt["requester"] == a.peer_id and receipt["agentPeer"] == b.peer_id

    def reputation() -> float:
        with NodeClient(a.rpc_url, timeout=60, auth=BearerAuth(a.token)) as client:
            reply = client.recruit(RecruitParams(task="what is 6*7?"))
        return next(ch.features["reputation"] for ch in reply.chosen if ch.card_id == card)

    assert reputation() == pytest.approx(0.5)
    rated = cli("task", "feedback", task["id"], "--rating", "1", *common)
    assert rated.returncode == 0, rated.stderr
    assert "reputation here is now" in rated.stdout
    assert reputation() > 0.6

    # Everyone else verifies the gossiped rating.
    wait_until(lambda: metric(c, "noosphere_gossip_envelopes_accepted_total", kind="feedback") >= 1)

    # Only the task's requester can rate it: B's operator cannot use A's receipt.
    with NodeClient(b.rpc_url, auth=BearerAuth(b.token)) as client, pytest.raises(RpcError) as err:
        client.call("noosphere.feedback", {"receipt": receipt, "rating": 0.0})
    assert err.value.code == -32602

    # Trust is kept across a restart.
    a.stop()
    a = cluster.start("a", bootstrap=[b.multiaddr])
    wait_until(lambda: card in card_ids(a))
    assert reputation() > 0.6
