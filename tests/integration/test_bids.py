"""Recruit by open call between real node processes: a requester gossips a task request, nodes
whose agents fit bid back over signed JSON-RPC, and the bids enter the ranking."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from noosphere.node.a2a_client import A2AClient, text_message
from noosphere.node.auth import BearerAuth
from noosphere.node.client import NodeClient
from noosphere.node.launcher import LocalNode
from noosphere.protocol.api import RecruitParams

from .support import EXAMPLES, Cluster, wait_until


async def _warm_up(node: LocalNode) -> None:
    async with A2AClient(node.rpc_url, auth=BearerAuth(node.token)) as client:
        await client.send(text_message("what is 1+1?"))


pytestmark = pytest.mark.integration


def test_gossiped_request_draws_bids_from_fitting_agents(cluster: Cluster) -> None:
    calc = cluster.start("calc", agents=[EXAMPLES / "calculator.yaml"])
    prose = cluster.start(
        "prose", agents=[EXAMPLES / "summarizer.toml"], bootstrap=[calc.multiaddr]
    )
    requester = cluster.start("req", bootstrap=[calc.multiaddr, prose.multiaddr])
    with NodeClient(requester.rpc_url) as client:
        wait_until(lambda: client.status().peers_connected >= 2)
    for node in (calc, prose):  # agents judge requests with the embedding model: load it now
        asyncio.run(_warm_up(node))

    params = RecruitParams(task="what is 17/3 + 2^10?", solicit_bids_ms=4000)
    with NodeClient(requester.rpc_url, timeout=60, auth=BearerAuth(requester.token)) as client:
        reply = client.recruit(params)
    assert reply.bids == 1  # the calculator bids; the summarizer does not fit
    assert reply.chosen[0].name == "Exact Calculator"

    # A bid must be signed by the bidding node: the operator token is not enough.
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "noosphere.bid",
        "params": {"requestId": "x" * 12, "card": {}, "relevance": 0.5},
    }
    answer = httpx.post(requester.rpc_url, json=body, auth=BearerAuth(requester.token)).json()
    assert answer["result"]["accepted"] is False
    anonymous = httpx.post(requester.rpc_url, json=body).json()
    assert anonymous["error"]["code"] == -32042
