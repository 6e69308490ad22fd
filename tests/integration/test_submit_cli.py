"""``noosphere task submit`` as a user runs it: recruit, execute and rate through one's own node.
Without a ledger on the agent's node its price is advisory, so nothing is paid; bad input and an
unreachable node give one-line errors and non-zero exits."""

from __future__ import annotations

import json

import pytest

from .support import EXAMPLES, Cluster, wait_until
from .test_tasks import cli

pytestmark = pytest.mark.integration


def test_submit_runs_the_task_through_the_requesters_node(cluster: Cluster) -> None:
    agent = cluster.start("agent", agents=[EXAMPLES / "calculator.yaml"])
    requester = cluster.start("requester", bootstrap=[agent.multiaddr])
    wait_until(lambda: len(requester.client().cards()) == 1, timeout=60)
    home = ["--rpc", requester.rpc_url, "--home", str(requester.home)]

    done = cli("task", "submit", *home, "what is 17 * 23?", timeout=180)
    assert done.returncode == 0, done.stderr
    for line in ("recruit ranked 1 of 1: Exact Calculator", "execute", "391", "completed"):
        assert line in done.stdout, done.stdout
    assert "paid 0" in done.stdout  # the agent's node has no ledger: its price is advisory

    as_json = cli("task", "submit", *home, "--json", "convert 5 miles to km", timeout=180)
    submission = json.loads(as_json.stdout)
    assert submission["state"] == "completed" and "8.04672" in json.dumps(submission["result"])
    assert submission["events"][0]["phase"] == "recruit"

    nobody = cli("task", "submit", *home, "--budget", "0", "what is 1 + 1?", timeout=180)
    assert nobody.returncode == 2 and "no agent this node knows fits the task" in nobody.stdout


def test_submit_input_errors_are_one_line(cluster: Cluster) -> None:
    node = cluster.start("node")
    bad = cli(
        "task", "submit", "--rpc", node.rpc_url, "--home", str(node.home), "--attempts", "0", "x"
    )
    assert bad.returncode == 2 and "--attempts" in bad.stderr
    no_token = cli("task", "submit", "--rpc", node.rpc_url, "x")
    assert no_token.returncode == 1 and "needs your node's token" in no_token.stderr
    down = cli("task", "submit", "--rpc", "http://127.0.0.1:9", "--token", "t", "x")
    assert down.returncode == 1 and len(down.stderr.strip().splitlines()) == 1
