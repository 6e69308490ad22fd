"""Recruit between real node processes: a requester node learns another node's agents by gossip,
its operator's ``noosphere recruit`` ranks them for a task, anonymous callers and bad stages are
refused, and once the agents' node dies and their cards expire the index forgets them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from noosphere.node.auth import BearerAuth
from noosphere.node.client import NodeClient
from noosphere.node.launcher import LocalNode
from noosphere.protocol import ErrorCode, RpcError
from noosphere.protocol.api import RecruitParams

from .support import EXAMPLES, Cluster, card_ids, wait_until

pytestmark = pytest.mark.integration


def cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "noosphere.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_recruit_ranks_remote_agents_and_follows_card_expiry(cluster: Cluster) -> None:
    b = cluster.start(
        "b",
        agents=[EXAMPLES / "calculator.yaml", EXAMPLES / "summarizer.toml"],
        extra_args=["--card-ttl", "6"],
    )
    a = cluster.start("a", bootstrap=[b.multiaddr], extra_args=["--card-ttl", "6"])
    calculator = f"{b.peer_id}/exact-calculator"
    summarizer = f"{b.peer_id}/document-summarizer"
    wait_until(lambda: {calculator, summarizer} <= card_ids(a))

    ran = cli(
        "recruit", "--rpc", a.rpc_url, "--home", str(a.home), "what is 17/3 + 2^10?", "--json"
    )
    assert ran.returncode == 0, ran.stderr
    reply = json.loads(ran.stdout)
    assert reply["cardsIndexed"] == 2
    first = reply["chosen"][0]
    assert first["cardId"] == calculator and first["name"] == "Exact Calculator"
    assert first["peerId"] == b.peer_id
    assert first["rpcUrl"].startswith(b.rpc_url.rstrip("/"))
    assert first["explanation"].startswith("relevance ")
    assert set(first["features"]) == {
        "relevance",
        "reputation",
        "latency",
        "availability",
        "history",
        "outcome",
        "price",
    }
    everyone = [c["cardId"] for c in reply["chosen"]] + [r["cardId"] for r in reply["rejected"]]
    assert summarizer in everyone and summarizer != everyone[0]
    assert reply["filterMode"].startswith("offline")

    # The table form names the agent and the filter honestly.
    table = cli(
        "recruit",
        "--rpc",
        a.rpc_url,
        "--home",
        str(a.home),
        "--rejected",
        "summarize this incident report in 3 sentences",
    )
    assert table.returncode == 0, table.stderr
    assert "Document Summarizer" in table.stdout and "no LLM" in table.stdout

    # A policy no agent here can prove (no attestations): nobody chosen, each says why.
    task = "what is 17/3 + 2^10?"
    sealed = cli(
        "recruit",
        "--rpc",
        a.rpc_url,
        "--home",
        str(a.home),
        "--rejected",
        "--policy",
        "org:noosphere",
        "--issuer",
        a.peer_id,
        task,
    )
    assert sealed.returncode == 2, sealed.stderr
    assert "Exact Calculator: no attribute attestation" in sealed.stdout

    # Anonymous callers are refused; a malformed request is invalid params.
    with NodeClient(a.rpc_url) as anonymous, pytest.raises(RpcError) as excinfo:
        anonymous.call("noosphere.recruit", {"task": "what is 1+1?"})
    assert excinfo.value.code == ErrorCode.UNAUTHORIZED == -32042
    bad = cli(
        "recruit",
        "--rpc",
        a.rpc_url,
        "--home",
        str(a.home),
        "--stages",
        "filter,rank",
        "what is 1+1?",
    )
    assert bad.returncode == 1 and "-32602" in bad.stderr
    with NodeClient(a.rpc_url, auth=BearerAuth(a.token)) as operator:
        for stages in (["vector", "telepathy"], []):
            with pytest.raises(RpcError) as excinfo:
                operator.recruit(RecruitParams(task="what is 1+1?", stages=stages))
            assert excinfo.value.code == ErrorCode.INVALID_PARAMS == -32602
        with pytest.raises(RpcError) as excinfo:
            operator.recruit(RecruitParams(task="what is 1+1?", policy="org:x and"))
        assert excinfo.value.code == -32602
        only_vector = operator.recruit(RecruitParams(task="what is 1+1?", stages=["vector"]))
        assert only_vector.filter_mode == "off" and len(only_vector.chosen) == 2

        # B dies; once its cards expire, A's index forgets its agents.
        b.kill()
        wait_until(lambda: not card_ids(a), timeout=20)
        after = operator.recruit(RecruitParams(task="what is 17/3 + 2^10?"))
        assert after.chosen == [] and after.rejected == [] and after.cards_indexed == 0


def test_policy_without_trusted_issuers_is_refused(running_node: LocalNode) -> None:
    """An agent's node could attest its own attributes: a policy needs named issuers."""
    auth = BearerAuth(running_node.token)
    with (
        NodeClient(running_node.rpc_url, timeout=60, auth=auth) as c,
        pytest.raises(RpcError) as excinfo,
    ):
        c.recruit(RecruitParams(task="what is 2+2?", policy="org:acme"))
    assert excinfo.value.code == -32602
    assert "trusted attestation issuers" in excinfo.value.message
