"""A hostile peer against real node processes: it floods the task topic with validly signed task
requests and garbage (the per-sender rate limit drops most of it; honest cards, open calls and
recruits keep working), replays feedback (refused, also after the victim restarts), and throws
malformed JSON-RPC at a node over HTTP (JSON-RPC errors, never a 500, the node keeps serving).

Forged, expired, misattributed and stale cards and undecodable pubsub frames are covered by
test_gossip_security.py; this file reuses its technique (a bare libp2p host in the test process)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Iterable
from typing import Any

import httpx
import pytest

from noosphere.node.a2a_client import A2AClient, text_message
from noosphere.node.auth import BearerAuth, PeerAuth
from noosphere.node.client import NodeClient
from noosphere.node.launcher import LocalNode
from noosphere.node.p2p import P2PHost
from noosphere.protocol import (
    TOPIC_FOR_KIND,
    Envelope,
    EnvelopeBatch,
    EnvelopeKind,
    ErrorCode,
    NodeKey,
    b64url_encode,
    seal,
)
from noosphere.protocol.a2a import Task, TaskState
from noosphere.protocol.api import RecruitParams
from noosphere.protocol.bids import TaskRequest
from noosphere.protocol.feedback import Feedback, TaskReceipt, sign_feedback

from .support import EXAMPLES, Cluster, card_ids, metric, own_card_ids, wait_until

pytestmark = pytest.mark.integration

TASKS = TOPIC_FOR_KIND[EnvelopeKind.TASK]
FEEDBACK = TOPIC_FOR_KIND[EnvelopeKind.FEEDBACK]
CARDS = TOPIC_FOR_KIND[EnvelopeKind.CARD]
ACCEPTED = "noosphere_gossip_envelopes_accepted_total"
REJECTED = "noosphere_gossip_envelopes_rejected_total"
RECEIVED = "noosphere_gossip_messages_received_total"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _batch(envelopes: Iterable[Envelope]) -> bytes:
    return EnvelopeBatch(envelopes=list(envelopes)).encode()


class Hostile:
    """A bare libp2p peer in the test process (as in test_gossip_security.py) that publishes
    whatever it is given, signed or not, with its own key as the pubsub origin."""

    def __init__(self, key: NodeKey, topics: list[str]) -> None:
        self.key = key
        self.seq = time.time_ns() // 1000
        self.host = P2PHost(
            seed=key.seed,
            listen_host="127.0.0.1",
            listen_port=0,
            topics=topics,
            on_message=lambda _m: None,
        )

    def seal(self, kind: EnvelopeKind, body: dict[str, Any]) -> Envelope:
        self.seq += 1
        return seal(kind, body, self.key, seq=self.seq, now_ms=_now_ms(), ttl_ms=120_000)

    async def join(self, targets: list[str], topic: str) -> None:
        await self.host.start()
        for target in targets:
            await self.host.connect(target)
        for _ in range(200):
            if await self.host.mesh_size(topic) >= len(targets):
                return
            await asyncio.sleep(0.1)
        pytest.fail(f"the hostile peer never joined the mesh of {topic}")

    async def publish(self, topic: str, messages: Iterable[bytes], pause: float = 0.0) -> None:
        for data in messages:
            await self.host.publish(topic, data)  # waits for room in libp2p's queues
            await asyncio.sleep(pause)

    async def stop(self) -> None:
        await self.host.stop()


def _counts(node: LocalNode) -> dict[str, float]:
    return {
        "received_task_messages": metric(node, RECEIVED, topic=TASKS),
        "accepted": metric(node, ACCEPTED, kind="task"),
        "rate_limited": metric(node, REJECTED, reason="rate_limited"),
        "malformed": metric(node, REJECTED, reason="malformed"),
        "wrong_topic": metric(node, REJECTED, reason="wrong_topic"),
        "bad_signature": metric(node, REJECTED, reason="bad_signature"),
        "overflow": metric(node, "noosphere_gossip_inbound_overflow_total"),
    }


async def _warm_up(node: LocalNode) -> None:
    """Agents judge open calls with the embedding model: load it before the clock matters."""
    async with A2AClient(node.rpc_url, auth=BearerAuth(node.token)) as client:
        await client.send(text_message("what is 1+1?"))


FLOOD = 6000  # validly signed task requests; the limit lets a sender 50/s after a burst of 1000
PER_MESSAGE = 100  # envelopes per gossip message (a batch holds up to 256)


def test_task_topic_flood_is_rate_limited_and_honest_nodes_keep_working(
    cluster: Cluster, record_property: Any
) -> None:
    calc = cluster.start("calc", agents=[EXAMPLES / "calculator.yaml"])
    req = cluster.start("req", bootstrap=[calc.multiaddr])
    wait_until(lambda: own_card_ids(calc) <= card_ids(req))
    asyncio.run(_warm_up(calc))

    hostile = Hostile(NodeKey.generate(), [TASKS])
    expires = _now_ms() + 120_000
    flood = [
        hostile.seal(
            EnvelopeKind.TASK,
            TaskRequest(
                request_id=f"flood-{i:08d}",
                task=f"what is {i} + {i}? answer at once",
                # Not the hostile's host: bidders drop these before judging them (the filter
                # would otherwise embed each admitted request; see the report of this test).
                reply_to="http://192.0.2.1:9/",
                expires_at=expires,
            ).to_wire(),
        )
        for i in range(FLOOD)
    ]
    flood_messages = [_batch(flood[i : i + PER_MESSAGE]) for i in range(0, FLOOD, PER_MESSAGE)]
    stranger = NodeKey.generate()
    forged = hostile.seal(EnvelopeKind.TASK, flood[0].body).model_copy(
        update={"signature": b64url_encode(stranger.sign(b"not this"))}
    )
    garbage = [
        b"\x00\xff" * 512,  # not JSON
        b'{"envelopes": "nope"}',  # JSON, not a batch
        b"[" * 5000,  # deeply nested
        _batch([forged]),  # bad signature
        _batch([hostile.seal(EnvelopeKind.CARD, {"card": {}})]),  # a card on the task topic
    ] * 4

    async def attack() -> None:
        await hostile.join([calc.multiaddr], TASKS)  # REQ hears the flood only through CALC
        try:
            await hostile.publish(TASKS, flood_messages)
            await hostile.publish(TASKS, garbage)
            await asyncio.sleep(1.0)
        finally:
            await hostile.stop()

    asyncio.run(attack())

    # CALC, next to the hostile peer, sees every valid envelope: its validator admits a burst
    # and drops the rest before forwarding, so REQ only hears what CALC relayed.
    wait_until(lambda: (c := _counts(calc))["accepted"] + c["rate_limited"] >= FLOOD, timeout=120)
    relayed = _counts(calc)["accepted"]
    wait_until(lambda: (c := _counts(req))["accepted"] + c["rate_limited"] >= relayed, timeout=120)
    counts = {"calc": _counts(calc), "req": _counts(req)}
    for name, c in counts.items():
        record_property(f"flood_{name}", json.dumps(c))
        print(
            f"\nflood of {FLOOD} task requests + {len(garbage)} garbage messages at {name}: "
            + ", ".join(f"{k}={int(v)}" for k, v in c.items())
        )
    calc_counts, req_counts = counts["calc"], counts["req"]
    assert calc_counts["accepted"] + calc_counts["rate_limited"] == FLOOD
    assert calc_counts["rate_limited"] > FLOOD / 2, "the rate limiter dropped most of the flood"
    # what CALC dropped was not relayed: REQ saw only the admitted part
    assert req_counts["accepted"] + req_counts["rate_limited"] < FLOOD / 2
    assert calc_counts["overflow"] == req_counts["overflow"] == 0
    # Garbage is refused by the validator of the node it was sent to, and not forwarded.
    assert counts["calc"]["malformed"] >= 3 * 4  # not JSON, not a batch, too deep
    assert counts["calc"]["bad_signature"] >= 4 and counts["calc"]["wrong_topic"] >= 4
    assert counts["req"]["malformed"] == counts["req"]["bad_signature"] == 0
    assert calc.alive and req.alive

    # Honest traffic still flows: a new node's card reaches both...
    late = cluster.start("late", agents=[EXAMPLES / "summarizer.toml"], bootstrap=[req.multiaddr])
    for node in (calc, req):
        wait_until(lambda node=node: own_card_ids(late) <= card_ids(node), timeout=60)
    # ...and an honest open call on the flooded topic draws the calculator's bid.
    accepted_before = metric(calc, ACCEPTED, kind="task")
    params = RecruitParams(task="what is 17/3 + 2^10?", solicit_bids_ms=5000)
    with NodeClient(req.rpc_url, timeout=120, auth=BearerAuth(req.token)) as client:
        reply = client.recruit(params)
    assert metric(calc, ACCEPTED, kind="task") == accepted_before + 1
    assert reply.bids == 1
    assert reply.chosen[0].card_id in own_card_ids(calc)


async def _task_as(node: LocalNode, key: NodeKey, text: str) -> TaskReceipt:
    """Have ``key``'s node ask ``node``'s agent for a task (signed peer request); its receipt."""
    async with A2AClient(node.rpc_url, auth=PeerAuth(key), timeout=120) as client:
        task = await client.send(text_message(text))
    assert isinstance(task, Task) and task.status.state == TaskState.COMPLETED
    assert task.metadata is not None
    return TaskReceipt.model_validate(task.metadata["noosphere"]["receipt"])


def _rating(receipt: TaskReceipt, rater: NodeKey, rating: float) -> dict[str, Any]:
    feedback = Feedback(receipt=receipt, rating=rating, issued_at=_now_ms())
    return sign_feedback(feedback, rater).to_wire()


def _log_lines(node: LocalNode, event: str) -> list[dict[str, Any]]:
    lines = []
    for raw in (node.home / "node.log").read_text(errors="replace").splitlines():
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == event:
            lines.append(entry)
    return lines


def test_replayed_feedback_is_refused_and_counted_even_after_a_restart(cluster: Cluster) -> None:
    agent = cluster.start("agent", agents=[EXAMPLES / "calculator.yaml"])
    observer = cluster.start("observer", bootstrap=[agent.multiaddr])
    hostile_key, honest_key = NodeKey.generate(), NodeKey.generate()
    # Both are real requesters of the agent: each holds a receipt the agent's node signed.
    hostile_receipt = asyncio.run(_task_as(agent, hostile_key, "what is 6*7?"))
    honest_receipt = asyncio.run(_task_as(agent, honest_key, "what is 2^10?"))
    assert hostile_receipt.requester == hostile_key.peer_id

    hostile = Hostile(hostile_key, [FEEDBACK])
    rating = hostile.seal(EnvelopeKind.FEEDBACK, _rating(hostile_receipt, hostile_key, 1.0))
    # The honest requester's signed rating, captured and relayed under the hostile's envelope.
    relayed = hostile.seal(EnvelopeKind.FEEDBACK, _rating(honest_receipt, honest_key, 0.0))

    def counts(node: LocalNode) -> tuple[float, float]:
        return metric(node, ACCEPTED, kind="feedback"), metric(node, REJECTED, reason="replay")

    async def first_session() -> None:
        await hostile.join([observer.multiaddr], FEEDBACK)
        try:
            await hostile.publish(FEEDBACK, [_batch([rating])])
            await asyncio.to_thread(wait_until, lambda: counts(observer) == (1, 0))
            await hostile.publish(FEEDBACK, [_batch([rating]), _batch([rating])], pause=0.2)
            await asyncio.to_thread(wait_until, lambda: counts(observer) == (1, 2))
            await hostile.publish(FEEDBACK, [_batch([relayed])])
            await asyncio.to_thread(
                wait_until, lambda: _log_lines(observer, "feedback rejected"), timeout=30
            )
        finally:
            await hostile.stop()

    asyncio.run(first_session())
    assert counts(observer) == (1, 2)  # the relayed envelope is well formed: its rating is not
    assert metric(observer, REJECTED, reason="invalid_body") == 1
    (refused,) = _log_lines(observer, "feedback rejected")
    assert refused["sender"] == hostile_key.peer_id
    assert "relayed by another node than its rater" in refused["reason"]

    # The replay guard's high-water marks survive a crash: the same rating is still refused.
    # (The agent's node may also re-gossip the old messages to the restarted observer: they
    # are refused as well. A fresh revision of the rating, in the same batch as the replay,
    # marks when the hostile's own message has been handled.)
    observer.kill()
    observer = cluster.start("observer")
    hostile = Hostile(hostile_key, [FEEDBACK])
    revision = hostile.seal(EnvelopeKind.FEEDBACK, _rating(hostile_receipt, hostile_key, 0.5))

    async def second_session() -> None:
        await hostile.join([observer.multiaddr], FEEDBACK)
        try:
            await hostile.publish(FEEDBACK, [_batch([rating, revision])])
            await asyncio.to_thread(wait_until, lambda: counts(observer)[0] >= 1)
        finally:
            await hostile.stop()

    asyncio.run(second_session())
    accepted, replays = counts(observer)
    assert accepted == 1 and replays >= 1  # the revision only; the replayed rating refused
    assert observer.alive and agent.alive


# ---- malformed JSON-RPC over HTTP ------------------------------------------------------------


def _post(node: LocalNode, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        node.rpc_url + "/",
        content=body,
        headers={"content-type": "application/json", **headers},
        timeout=30,
    )


def _error_code(response: httpx.Response) -> int:
    body = response.json()
    assert body["jsonrpc"] == "2.0" and "result" not in body, body
    return body["error"]["code"]


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _call(method: Any, params: Any = None, id_: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": params}


def test_malformed_json_rpc_gets_error_objects_and_the_node_keeps_serving(
    running_node: LocalNode,
) -> None:
    node = running_node
    limit = 1024 * 1024  # max_request_bytes default
    status, e = "noosphere.node.status", ErrorCode
    single: list[tuple[bytes, int | None]] = [
        (b"\xff\xfe\x00garbage\x80", e.PARSE_ERROR),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "noosphere.node.status"', e.PARSE_ERROR),
        (b"[" * 200_000 + b"]" * 200_000, e.PARSE_ERROR),  # nesting bomb, 400 kB
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, e.PARSE_ERROR),
        (b"9" * 100_000, e.PARSE_ERROR),  # an integer too long to convert
        (b"[]", e.INVALID_REQUEST),
        (b"null", e.INVALID_REQUEST),
        (b'"noosphere.node.status"', e.INVALID_REQUEST),
        (_json(_call(42)), e.INVALID_REQUEST),
        (_json(_call(status, id_={"x": 1})), e.INVALID_REQUEST),
        (_json({**_call(status), "jsonrpc": "1.0"}), e.INVALID_REQUEST),
        (_json(_call(status, params="all")), e.INVALID_REQUEST),
        (_json(_call("noosphere.cards.get", params={"id": ["x"]})), e.INVALID_PARAMS),
        (_json(_call("noosphere.cards.list", params=[1, 2, 3, 4, 5, 6])), e.INVALID_PARAMS),
        (_json(_call("noosphere.cards.get", params={"id": "x" * 100_000})), None),
        (_json(_call("rm -rf /")), e.METHOD_NOT_FOUND),
        (_json(_call("__init__")), e.METHOD_NOT_FOUND),
        (_json(_call("SendMessage")), e.UNAUTHORIZED),
        (_json([_call(status, id_=i) for i in range(101)]), e.INVALID_REQUEST),
    ]
    for body, code in single:
        response = _post(node, body)
        assert response.status_code == 200, (body[:60], response.status_code)
        if code is None:  # any JSON-RPC error is fine (the id is unknown, or too long)
            assert _error_code(response) < 0
        else:
            assert _error_code(response) == code, body[:80]

    # A batch of garbage items: one Invalid Request per item, in order; a streaming method
    # inside a batch is refused; good calls in the same batch are still answered.
    batch = [
        1,
        "x",
        None,
        [],
        {},
        _call("SendStreamingMessage", id_="s"),
        _call("x", id_=7),
        _call("noosphere.node.status", id_=8),
    ]
    answers = _post(node, json.dumps(batch).encode()).json()
    assert [a.get("error", {}).get("code") for a in answers] == [ErrorCode.INVALID_REQUEST] * 6 + [
        ErrorCode.METHOD_NOT_FOUND,
        None,
    ]
    assert answers[-1]["result"]["peerId"] == node.peer_id

    # Too large: refused before it is read, whether declared or streamed, with a JSON-RPC body.
    big = b'{"jsonrpc":"2.0","id":1,"method":"x","params":{"p":"' + b"a" * limit + b'"}}'
    too_large = _post(node, big)
    assert too_large.status_code == 413
    assert _error_code(too_large) == ErrorCode.REQUEST_TOO_LARGE

    def chunks() -> Iterable[bytes]:
        yield from (big[i : i + 65536] for i in range(0, len(big), 65536))

    streamed = httpx.post(node.rpc_url + "/", content=chunks(), timeout=30)
    assert streamed.status_code == 413

    # Bad credentials and versions are JSON-RPC errors too.
    bad_token = _post(node, json.dumps(_call("ListTasks")).encode(), authorization="Bearer x")
    assert bad_token.status_code == 401 and _error_code(bad_token) == ErrorCode.UNAUTHORIZED
    forged_peer = _post(
        node,
        json.dumps(_call("ListTasks")).encode(),
        **{
            "noosphere-peer": NodeKey.generate().peer_id,
            "noosphere-timestamp": str(_now_ms()),
            "noosphere-nonce": "n" * 16,
            "noosphere-signature": "AAAA",
        },
    )
    assert forged_peer.status_code == 401 and _error_code(forged_peer) == ErrorCode.UNAUTHORIZED
    # A correctly signed peer request, captured and sent again: the nonce is refused.
    signed = next(
        PeerAuth(NodeKey.generate()).auth_flow(
            httpx.Request("POST", node.rpc_url + "/", json=_call("ListTasks"))
        )
    )
    first = httpx.post(signed.url, content=signed.content, headers=signed.headers, timeout=30)
    assert first.status_code == 200 and "result" in first.json()
    again = httpx.post(signed.url, content=signed.content, headers=signed.headers, timeout=30)
    assert again.status_code == 401 and _error_code(again) == ErrorCode.UNAUTHORIZED
    assert "replayed" in again.json()["error"]["message"]
    version = _post(
        node, json.dumps(_call("noosphere.node.status")).encode(), **{"a2a-version": "9"}
    )
    assert _error_code(version) == ErrorCode.VERSION_NOT_SUPPORTED

    # Not even HTTP: bytes on a raw socket; then a request that lies about its length.
    host, port = node.rpc_url.split("//")[1].rstrip("/").split(":")
    for raw in (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64),  # a TLS ClientHello
        b'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"jsonrpc"',  # then hangs up
        b"GARBAGE\r\n\r\n",
    ):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
            with contextlib.suppress(OSError):
                sock.recv(4096)

    # Many at once, mixed, then the node still answers properly and logged no internal error.
    async def barrage() -> list[int]:
        async with httpx.AsyncClient(timeout=60) as client:
            bodies = [body for body, _ in single[:8]] * 6
            responses = await asyncio.gather(
                *(client.post(node.rpc_url + "/", content=b) for b in bodies)
            )
        return [r.status_code for r in responses]

    assert set(asyncio.run(barrage())) == {200}
    assert node.alive
    with NodeClient(node.rpc_url) as client:
        assert client.status().peer_id == node.peer_id
    assert (
        metric(node, "noosphere_rpc_requests_total", method="(unknown)", outcome="internal_error")
        == 0
    )
    text = httpx.get(node.rpc_url + "/metrics", timeout=10).text
    assert 'outcome="internal_error"' not in text
