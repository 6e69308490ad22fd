"""Refusals at the JSON-RPC layer that protect the node from its callers: signed requests over
the replay memory's quotas are rate limited (HTTP 429, JSON-RPC -32044, Retry-After), and only
the operator may make the node gossip a task request in its own name (recruit with
solicitBidsMs)."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.routing import Route

from noosphere.node.auth import RequestAuthenticator, signed_headers
from noosphere.node.mars_api import register_mars_api
from noosphere.node.metrics import NodeMetrics
from noosphere.node.rpc import CallContext, JsonRpcDispatcher
from noosphere.protocol import ErrorCode, NodeKey
from noosphere.protocol.api import RecruitParams, RecruitReply
from noosphere.protocol.rpcauth import LOCAL_PRINCIPAL

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

TOKEN = "operator-token-" + "x" * 30
OWN_PEER = "12D3KooWOwnNodeOwnNodeOwnNodeOwnNodeOwnNodeOwnNode"


@dataclass
class StubMars:
    """Stands for MarsService: records who recruited and whether bids were solicited."""

    board: Any = None
    calls: list[tuple[str, int]] = field(default_factory=list)

    async def recruit(self, params: RecruitParams, requester: str) -> RecruitReply:
        self.calls.append((requester, params.solicit_bids_ms))
        return RecruitReply(
            chosen=[], rejected=[], timings_ms={}, filter_mode="offline", cards_indexed=0
        )


def _dispatcher(**auth: Any) -> tuple[JsonRpcDispatcher, StubMars]:
    dispatcher = JsonRpcDispatcher(
        NodeMetrics(),
        max_body_bytes=64 * 1024,
        max_batch=10,
        authenticator=RequestAuthenticator(TOKEN, **auth),
    )
    mars = StubMars()
    register_mars_api(dispatcher, mars, OWN_PEER)  # type: ignore[arg-type]
    return dispatcher, mars


def _recruit(solicit_ms: int = 0) -> dict[str, Any]:
    params = {"task": "add two numbers"} | ({"solicitBidsMs": solicit_ms} if solicit_ms else {})
    return {"jsonrpc": "2.0", "id": 1, "method": "noosphere.recruit", "params": params}


async def test_a_remote_peer_cannot_make_the_node_solicit_bids() -> None:
    dispatcher, mars = _dispatcher()
    peer = NodeKey.generate().peer_id
    response = await dispatcher.handle_one(_recruit(2000), CallContext(principal=peer))
    assert response is not None and response.error is not None
    assert response.error.code == ErrorCode.UNAUTHORIZED
    assert "only this node's operator may solicit bids" in response.error.message
    assert mars.calls == []  # nothing was gossiped
    # the same peer may recruit from the index (no gossip in the node's name)
    response = await dispatcher.handle_one(_recruit(), CallContext(principal=peer))
    assert response is not None and response.error is None
    # the operator may solicit
    response = await dispatcher.handle_one(_recruit(2000), CallContext(principal=LOCAL_PRINCIPAL))
    assert response is not None and response.error is None
    assert mars.calls == [(peer, 0), (OWN_PEER, 2000)]


def test_signed_requests_over_the_peer_quota_are_rate_limited_over_http() -> None:
    dispatcher, _ = _dispatcher(nonces_per_peer=10, nonces_total=1000)
    app = Starlette(routes=[Route("/", dispatcher.handle_http, methods=["POST"])])
    key = NodeKey.generate()
    body = json.dumps(_recruit()).encode()
    with TestClient(app) as http:
        answers = [
            http.post("/", content=body, headers=signed_headers(key, "POST", "/", body))
            for _ in range(12)
        ]
    assert [a.status_code for a in answers] == [200] * 10 + [429] * 2
    limited = answers[-1]
    assert limited.json()["error"]["code"] == ErrorCode.RATE_LIMITED == -32044
    assert "rate limited" in limited.json()["error"]["message"]
    assert 1 <= int(limited.headers["retry-after"]) <= 61


async def test_anonymous_callers_cannot_recruit() -> None:
    dispatcher, mars = _dispatcher()
    response = await dispatcher.handle_one(_recruit(2000), CallContext(principal=None))
    assert response is not None and response.error is not None
    assert response.error.code == ErrorCode.UNAUTHORIZED and mars.calls == []
