"""Hostile clients against a real node's RPC server on loopback, one test per attack class of
issue 14 ("The RPC server"), each asserting that the attack fails and honest traffic still flows:

* slowloris: ~1,000 half-open requests from one address (127.0.0.2; Linux routes all of 127/8
  on lo), then spread over 100 addresses; calls from 127.0.0.1 keep succeeding;
* replay after a flood: a peer floods its own signed requests to push a captured nonce out of the
  replay memory, then replays it; sybils fill the memory; the operator is never locked out;
* a remote peer asking the node to solicit bids (gossip a task request in the node's name);
* bids aimed at an internal service: a hostile requester names a loopback URL as its replyTo.

Webhook DNS rebinding is covered with a resolver the test controls in
tests/unit/test_node_push.py (a real node cannot have its resolver replaced)."""

from __future__ import annotations

import asyncio
import json
import resource
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from noosphere.node.a2a_client import A2AClient, text_message
from noosphere.node.auth import BearerAuth, signed_headers
from noosphere.node.launcher import LocalNode
from noosphere.node.p2p import P2PHost
from noosphere.protocol import TOPIC_FOR_KIND, EnvelopeBatch, EnvelopeKind, ErrorCode, NodeKey, seal
from noosphere.protocol.bids import BID_PROTOCOL, MAX_BID_BYTES, Bid, BidAck, TaskRequest

from .support import EXAMPLES, Cluster, metric, wait_until

pytestmark = pytest.mark.integration

ATTACKER = "127.0.0.2"
SLOW_HEAD = b"POST / HTTP/1.1\r\nHost: victim\r\nContent-Type: application/json\r\n"
TASKS = TOPIC_FOR_KIND[EnvelopeKind.TASK]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _status_call(url: str) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": "noosphere.node.status"}
    return httpx.post(url, json=body, timeout=30)


def _room_for_sockets(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + 512
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


@contextmanager
def slow_connections(
    port: int, sources: list[str], per_source: int
) -> Iterator[list[socket.socket]]:
    """Open ``per_source`` connections from each source address, each sending an unfinished
    request head, and hold them for the ``with`` block."""
    _room_for_sockets(len(sources) * per_source)
    held: list[socket.socket] = []
    try:
        for _ in range(per_source):
            for source in sources:
                try:
                    conn = socket.create_connection(
                        ("127.0.0.1", port), timeout=10, source_address=(source, 0)
                    )
                    conn.sendall(SLOW_HEAD)
                except OSError:  # refused or reset: the server is defending itself
                    continue
                held.append(conn)
        yield held
    finally:
        for conn in held:
            conn.close()


def _honest_calls_succeed(node: LocalNode, count: int = 30) -> None:
    for _ in range(count):
        response = _status_call(node.rpc_url)
        assert response.status_code == 200, response.text
        assert response.json()["result"]["peerId"] == node.peer_id


def test_slowloris_from_one_address_does_not_starve_honest_calls(cluster: Cluster) -> None:
    node = cluster.start("victim")
    port = int(node.rpc_url.rsplit(":", 1)[1])
    with slow_connections(port, [ATTACKER], 1000):
        _honest_calls_succeed(node)
        # the attacker's address holds at most its cap; its oldest idle connections made room
        assert metric(node, "noosphere_http_connections_closed_total", reason="evicted") >= 700
        assert metric(node, "noosphere_http_connections_open") <= 256 + 5
    assert node.alive


def test_slowloris_from_many_addresses_cannot_use_up_the_request_limit(cluster: Cluster) -> None:
    node = cluster.start("victim", env={"NOOSPHERE_RPC_HEADER_TIMEOUT_S": "5"})
    port = int(node.rpc_url.rsplit(":", 1)[1])
    sources = [f"127.0.0.{n}" for n in range(2, 102)]  # 100 addresses, 10 connections each
    with slow_connections(port, sources, 10) as held:
        assert len(held) == 1000
        wait_until(lambda: metric(node, "noosphere_http_connections_open") >= 1000)
        _honest_calls_succeed(node)
        # and the header deadline closes them all
        wait_until(lambda: metric(node, "noosphere_http_connections_open") < 10, timeout=60)
        timed_out = metric(node, "noosphere_http_connections_closed_total", reason="header_timeout")
        assert timed_out >= 1000
    _honest_calls_succeed(node, 5)


def _signed_post(
    url: str, key: NodeKey, body: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    headers = headers or signed_headers(key, "POST", "/", body)
    return httpx.post(url, content=body, headers=headers | {"Content-Type": "application/json"})


def test_flooding_signed_requests_never_makes_the_node_forget_a_nonce(cluster: Cluster) -> None:
    node = cluster.start(
        "victim",
        env={"NOOSPHERE_RPC_NONCES_PER_PEER": "50", "NOOSPHERE_RPC_NONCES_TOTAL": "120"},
    )
    url = node.rpc_url + "/"
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {}}).encode()
    attacker = NodeKey.generate()
    captured = signed_headers(attacker, "POST", "/", body)
    assert _signed_post(url, attacker, body, captured).status_code == 200

    flood = [_signed_post(url, attacker, body) for _ in range(80)]
    statuses = [r.status_code for r in flood]
    assert statuses.count(200) == 49 and statuses.count(429) == 31  # quota 50, then refused
    limited = flood[-1].json()["error"]
    assert limited["code"] == ErrorCode.RATE_LIMITED and "rate limited" in limited["message"]

    replay = _signed_post(url, attacker, body, captured)
    assert replay.status_code == 401 and "replayed" in replay.json()["error"]["message"]
    honest = NodeKey.generate()  # another peer is not affected by the attacker's flood
    assert _signed_post(url, honest, body).status_code == 200

    # Sybils fill the node's whole replay memory (50 + 1 + 69 = 120): new signed requests are
    # refused, a captured one still cannot be replayed, and the operator is not locked out.
    for sybil in (NodeKey.generate(), NodeKey.generate()):
        for _ in range(50):
            _signed_post(url, sybil, body)
    newcomer = _signed_post(url, NodeKey.generate(), body)
    assert newcomer.status_code == 429
    assert "most signed requests" in newcomer.json()["error"]["message"]
    replay = _signed_post(url, attacker, body, captured)
    assert replay.status_code == 401 and "replayed" in replay.json()["error"]["message"]
    operator = httpx.post(url, content=body, auth=BearerAuth(node.token))
    assert operator.status_code == 200 and "result" in operator.json()


def test_a_remote_peer_cannot_make_the_node_gossip_in_its_name(cluster: Cluster) -> None:
    node = cluster.start("victim")
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "noosphere.recruit",
            "params": {"task": "summarize the news", "solicitBidsMs": 1000},
        }
    ).encode()
    answer = _signed_post(node.rpc_url + "/", NodeKey.generate(), body).json()
    assert answer["error"]["code"] == ErrorCode.UNAUTHORIZED
    assert "only this node's operator may solicit bids" in answer["error"]["message"]
    assert metric(node, "noosphere_gossip_messages_published_total", topic=TASKS) == 0


# ---- bids aimed at an internal service ---------------------------------------------------------


class _InternalService:
    """Stands for a service that listens on the bidder's loopback (a database admin API...)."""

    def __init__(self) -> None:
        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                hits.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def _warm_up(node: LocalNode) -> None:
    async with A2AClient(node.rpc_url, auth=BearerAuth(node.token), timeout=120) as client:
        await client.send(text_message("what is 1+1?"))


def test_bids_never_go_to_a_url_the_requester_chose(cluster: Cluster) -> None:
    calc = cluster.start("calc", agents=[EXAMPLES / "calculator.yaml"])
    asyncio.run(_warm_up(calc))  # bidders judge requests with the embedding model
    internal = _InternalService()
    key = NodeKey.generate()
    bids: list[tuple[str, Bid]] = []

    async def on_bid(peer: str, raw: bytes) -> bytes:
        bids.append((peer, Bid.model_validate_json(raw)))
        return BidAck(accepted=True).model_dump_json(by_alias=True).encode()

    hostile = P2PHost(
        seed=key.seed,
        listen_host="127.0.0.1",
        listen_port=0,
        topics=[TASKS],
        on_message=lambda _m: None,
    )
    hostile.serve_requests(BID_PROTOCOL, on_bid, max_request_bytes=MAX_BID_BYTES)

    async def attack() -> None:
        await hostile.start()
        try:
            await hostile.connect(calc.multiaddr)
            for _ in range(200):
                if await hostile.mesh_size(TASKS):
                    break
                await asyncio.sleep(0.1)
            now = _now_ms()
            request = TaskRequest(
                request_id="hostile-request-1",
                task="what is 17/3 + 2^10?",
                reply_to=internal.url,  # the loopback service; the hostile's host is 127.0.0.1 too
                expires_at=now + 60_000,
            )
            envelope = seal(
                EnvelopeKind.TASK, request.to_wire(), key, seq=1, now_ms=now, ttl_ms=60_000
            )
            await hostile.publish(TASKS, EnvelopeBatch(envelopes=[envelope]).encode())
            for _ in range(600):  # the bid comes back over the libp2p connection
                if bids:
                    break
                await asyncio.sleep(0.1)
        finally:
            await hostile.stop()

    try:
        asyncio.run(attack())
        assert [(peer, bid.request_id) for peer, bid in bids] == [
            (calc.peer_id, "hostile-request-1")
        ]
        assert bids[0][1].card["name"] == "Exact Calculator"
        assert internal.hits == []  # nothing was POSTed to the URL the requester named
    finally:
        internal.close()
