"""The libp2p host wrapper: two in-process hosts exchange gossip, and a crashed host restarts."""

from __future__ import annotations

import asyncio

import pytest
import trio

from noosphere.node.p2p import P2PError, P2PHost
from noosphere.protocol import NodeKey


def _host(received: list[bytes], **kwargs) -> P2PHost:
    return P2PHost(
        seed=NodeKey.generate().seed,
        listen_host="127.0.0.1",
        listen_port=0,
        topics=["t"],
        on_message=lambda m: received.append(m.data),
        **kwargs,
    )


async def _wait_for(predicate, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met")


class _CrashOnce(P2PHost):
    """Dies with an error shortly after its first successful start."""

    runs = 0

    async def _trio_main(self) -> None:
        self.runs += 1
        if self.runs > 1:
            return await super()._trio_main()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(super()._trio_main)
            await trio.sleep(0.5)
            raise RuntimeError("simulated libp2p crash")


async def test_validated_messages_arrive_and_invalid_ones_do_not() -> None:
    got_a: list[bytes] = []
    got_b: list[bytes] = []
    a = _host(got_a)
    b = _host(got_b, validator=lambda _topic, _origin, data: not data.startswith(b"bad"))
    await a.start()
    await b.start()
    try:
        assert await b.connect(a.listen_addrs[0]) == a.peer_id
        for _ in range(100):
            if await a.mesh_size("t") and await b.mesh_size("t"):
                break
            await asyncio.sleep(0.1)
        for i in range(50):
            await a.publish("t", b"ok %d" % i)
        await a.publish("t", b"bad")
        await _wait_for(lambda: len(got_b) >= 50)
        await asyncio.sleep(0.5)
        assert sorted(got_b) == sorted(b"ok %d" % i for i in range(50))
        assert got_a == []  # a publisher does not receive its own messages
    finally:
        await a.stop()
        await b.stop()


async def test_connect_rejects_an_address_without_peer_id() -> None:
    host = _host([])
    await host.start()
    try:
        with pytest.raises(P2PError, match="/p2p/"):
            await host.connect("/ip4/127.0.0.1/tcp/1")
    finally:
        await host.stop()


async def test_crashed_host_restarts_with_same_identity_and_port() -> None:
    host = _CrashOnce(
        seed=NodeKey.generate().seed,
        listen_host="127.0.0.1",
        listen_port=0,
        topics=["t"],
        on_message=lambda _m: None,
    )
    await host.start()
    try:
        first_addrs = list(host.listen_addrs)
        await _wait_for(lambda: host.restarts == 1 and host._token is not None)
        await _wait_for(lambda: host.runs == 2 and host._pubsub is not None, timeout=15)
        await asyncio.sleep(0.5)
        assert host.listen_addrs == first_addrs
        other = _host([])
        await other.start()
        try:
            assert await other.connect(host.listen_addrs[0]) == host.peer_id
        finally:
            await other.stop()
    finally:
        await host.stop()


async def test_request_with_a_body_reaches_the_handler_with_the_callers_peer_id() -> None:
    seen: list[tuple[str, bytes]] = []

    async def echo(peer: str, body: bytes) -> bytes:
        seen.append((peer, body))
        return b"got " + body

    server, client = _host([]), _host([])
    server.serve_requests("/test/echo/1", echo, max_request_bytes=1024)
    await server.start()
    await client.start()
    try:
        # not connected: refused rather than dialing what the peerstore may hold
        with pytest.raises(P2PError, match="not connected"):
            await client.request(server.peer_id, "/test/echo/1", body=b"x", connected_only=True)
        await client.connect(server.listen_addrs[0])
        reply = await client.request(
            server.peer_id, "/test/echo/1", body=b"hello", connected_only=True
        )
        assert reply == b"got hello" and seen == [(client.peer_id, b"hello")]
        with pytest.raises(P2PError):  # over the handler's limit: the stream is reset
            await client.request(server.peer_id, "/test/echo/1", body=b"x" * 2048, timeout=5)
        assert len(seen) == 1
    finally:
        await client.stop()
        await server.stop()
