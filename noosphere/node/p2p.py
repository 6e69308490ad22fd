"""Discover (transport): the libp2p host and GossipSub, the ONLY module that imports trio/libp2p.

py-libp2p is trio-only while the node is asyncio, so the host lives in one dedicated thread under
``trio.run``. asyncio -> trio calls go through ``trio.from_thread`` on a worker thread; trio ->
asyncio delivery uses ``loop.call_soon_threadsafe``. Two libp2p pitfalls are designed around here:
each subscription is drained at once by its own task (its channel holds 32 and drops when full),
and GossipSub's per-peer spam limit (10 msg/s per topic, counted on *forwarders*) is disabled in
favour of noosphere's own per-sender limits, which the gossip layer applies after verification.

Three transport costs are cut here, without patching the library (docs/performance.md, "Where
the time goes"): inbound pubsub streams are read in whole available chunks (py-libp2p reads a
frame's varint byte by byte and yamux credits the sender's window after every read, so each RPC
cost three WINDOW_UPDATE frames); yamux credits windows go-yamux style (once half the window is
used); and our signed peer record rides on the first RPC of each pubsub stream only instead of
on every RPC, where every receiver re-verified its Ed25519 signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import multiaddr
import trio
from google.protobuf.message import DecodeError
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub, ValidationCache
from libp2p.tools.anyio_service import background_trio_service
from libp2p.utils.varint import encode_uvarint, read_varint_prefixed_bytes_limited

from noosphere.errors import ServiceError

log = logging.getLogger("noosphere.p2p")

# libp2p's per-peer outbound queue holds 32 RPCs and drops the newest when full; we publish only
# while every queue is below this mark, so our own bursts wait instead of being dropped.
OUTBOUND_HIGH_WATER = 16
PUBLISH_BACKPRESSURE_TIMEOUT = 5.0
RESTART_DELAY = 1.0
MAX_REPLY_BYTES = 16 * 1024 * 1024
REPLY_CHUNK_BYTES = 32 * 1024
# py-libp2p's yamux (0.8.1) sends a WINDOW_UPDATE after every read by default; "0" restores
# go-yamux's policy of crediting the window once half of it has been consumed. An operator's own
# setting of the variable wins.
YAMUX_ENV = {"PY_YAMUX_RELEASE_ON_READ": "0"}
ADDRS_CACHE_S = 5.0  # how long pubsub's view of our listen addresses is reused


def quiet_libp2p_loggers(level: int = logging.WARNING) -> None:
    """libp2p modules pin their own loggers to INFO at import; hold them at ``level``."""
    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] in ("libp2p", "multiaddr"):
            logger = logging.getLogger(name)
            if logger.level < level:
                logger.setLevel(level)


class P2PError(ServiceError, RuntimeError):
    """A libp2p operation failed (bad multiaddr, unreachable peer, host not running)."""


@dataclass(frozen=True, slots=True)
class GossipParams:
    """GossipSub mesh parameters (names as in the GossipSub v1.1 spec)."""

    degree: int = 6
    degree_low: int = 4
    degree_high: int = 12
    heartbeat_interval: int = 1
    gossip_window: int = 3
    gossip_history: int = 5
    fanout_ttl: int = 60
    target_peers: int = 8  # libp2p's auto-connector redials known peers up to about this
    max_peers: int = 256


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A gossip message that passed the topic validator, as delivered to asyncio."""

    topic: str
    origin: str  # peer id of the publisher (authenticated by pubsub strict signing)
    data: bytes


@dataclass(frozen=True, slots=True)
class PeerView:
    peer_id: str
    addrs: list[str]


TopicValidator = Callable[[str, str, bytes], bool]  # (topic, origin peer id, data)
Responder = Callable[[str], Coroutine[Any, Any, bytes]]  # asyncio: requesting peer id -> reply
# asyncio coroutine: (requesting peer id, request body) -> reply
RequestHandler = Callable[[str, bytes], Coroutine[Any, Any, bytes]]
REQUEST_READ_TIMEOUT = 10.0  # a request body must arrive within this


class _NoValidationCache(ValidationCache):
    """Remembers no verdict: every message not seen before is validated."""

    def get(self, msg_id: bytes) -> None:
        return None

    def put(self, msg_id: bytes, result: Any) -> None:
        return None


class _AddrCachingHost:
    """The host as pubsub sees it, with ``get_addrs`` cached for a few seconds. py-libp2p
    builds the signed peer record it attaches to RPCs from ``get_addrs()`` on every forwarded
    message and control RPC (about 0.2 ms each: base58 and multiaddr work); a record is
    re-issued whenever the cached addresses change."""

    __slots__ = ("_addrs", "_host", "_stamp")

    def __init__(self, host: Any) -> None:
        self._host = host
        self._addrs: list[Any] = []
        self._stamp = float("-inf")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._host, name)

    def get_addrs(self) -> list[Any]:
        now = time.monotonic()
        if now - self._stamp > ADDRS_CACHE_S:
            self._addrs = self._host.get_addrs()
            self._stamp = now
        return list(self._addrs)


class _ChunkReader:
    """A pubsub stream read in whole available chunks: the RPC framing (varint length, then
    body) is parsed from our buffer, so yamux sees one read (and sends at most one window
    update) per chunk instead of one per varint byte and one per body. Everything else is the
    wrapped stream's."""

    __slots__ = ("_buffer", "_stream")

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._buffer = bytearray()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    async def read(self, n: int | None = None) -> bytes:
        if not self._buffer:
            chunk = await self._stream.read()  # all that is buffered, waiting for at least 1 byte
            if not chunk:
                return b""
            self._buffer += chunk
        if n is None or n < 0 or n >= len(self._buffer):
            data = bytes(self._buffer)
            self._buffer.clear()
            return data
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data


class _NoospherePubsub(Pubsub):
    """Pubsub that (1) drops a peer sending an undecodable RPC frame instead of letting the
    protobuf DecodeError escape into the swarm's nursery, which in libp2p 0.8.1 stops the whole
    host, (2) reports every RPC it writes (own and forwarded messages, control traffic), (3)
    reads inbound streams in chunks (``_ChunkReader``) and (4) sends our signed peer record once
    per stream: py-libp2p attaches it to every RPC and every receiver verifies it each time
    (an Ed25519 verification per RPC), though it only changes when our addresses do."""

    on_sent: Callable[[int, int], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Message ids are origin + seqno. py-libp2p seeds the seqno counter with the time in
        # seconds and adds one per message, so a host restarted a few seconds after a burst
        # reuses ids still in its peers' seen caches and they drop its new messages unread.
        # Nanoseconds, as go-libp2p does.
        self.counter = time.time_ns()
        # py-libp2p caches a validator's verdict by message id for 300 s but forgets seen ids
        # after 120 s: a peer reusing the id of one of its valid messages for other data would
        # skip the validator (signatures, expiry, sender = origin) altogether. Never reuse one.
        self.validation_cache = _NoValidationCache()
        # stream -> the signed peer record already written on it (streams die with their peer)
        self._record_sent: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()
        # a wrapper that delegates to the host (an IHost in all but its class)
        self.host = _AddrCachingHost(self.host)  # type: ignore[assignment]

    async def write_msg(self, stream: Any, rpc_msg: Any) -> bool:
        record = rpc_msg.senderRecord
        if record and self._record_sent.get(stream) == record:
            # the peer verified and stored this record when it came first on this stream; the
            # RPC object may be shared by several peers' queues, so strip a copy
            trimmed = rpc_pb2.RPC()
            trimmed.CopyFrom(rpc_msg)
            trimmed.ClearField("senderRecord")
            rpc_msg = trimmed
        ok = await super().write_msg(stream, rpc_msg)
        if ok:
            if record:
                self._record_sent[stream] = record
            if self.on_sent is not None:
                self.on_sent(len(rpc_msg.publish), rpc_msg.ByteSize())
        return ok

    async def continuously_read_stream(self, stream: Any) -> None:
        try:
            # _ChunkReader wraps the stream (all but reads is the stream's), not an INetStream
            await super().continuously_read_stream(_ChunkReader(stream))  # type: ignore[arg-type]
        except DecodeError:
            peer_id = stream.muxed_conn.peer_id
            log.warning("peer %s sent an undecodable pubsub frame; dropping it", peer_id)
            with contextlib.suppress(Exception):
                await stream.reset()
            self._handle_dead_peer(peer_id)


class P2PHost:
    """A libp2p host with GossipSub running in its own trio thread.

    ``validator(topic, origin, data)`` runs in the trio thread before a message is forwarded or
    delivered (it must be fast and thread-safe); ``on_message`` runs in the asyncio loop;
    ``on_sent(messages, bytes)`` runs in the trio thread for every RPC written to a peer.
    """

    def __init__(
        self,
        *,
        seed: bytes,
        listen_host: str,
        listen_port: int,
        topics: Sequence[str],
        on_message: Callable[[InboundMessage], None],
        validator: TopicValidator | None = None,
        params: GossipParams | None = None,
        on_sent: Callable[[int, int], None] | None = None,
    ) -> None:
        self._seed = seed
        self._listen = multiaddr.Multiaddr(f"/ip4/{listen_host}/tcp/{listen_port}")
        self._topics = list(topics)
        self._on_message = on_message
        self._validator = validator
        self._on_sent = on_sent
        # protocol -> (responder, largest request body; 0: the request has no body)
        self._responders: dict[str, tuple[RequestHandler, int]] = {}
        self._params = params or GossipParams()
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._host: Any = None
        self._pubsub: Pubsub | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self.restarts = 0
        self.peer_id = ""
        self.listen_addrs: list[str] = []

    def serve(self, protocol: str, responder: Responder) -> None:
        """Answer request/response streams of ``protocol`` (register before ``start``): the
        asyncio ``responder`` gets the requesting peer id and returns the reply bytes."""
        self._responders[protocol] = (lambda peer, _body: responder(peer), 0)

    def serve_requests(
        self, protocol: str, handler: RequestHandler, *, max_request_bytes: int
    ) -> None:
        """Like ``serve`` for requests that carry a body: the requester writes it varint-length
        prefixed (at most ``max_request_bytes``, within ``REQUEST_READ_TIMEOUT``), and the
        asyncio ``handler`` gets the peer id (authenticated by the connection) and the body."""
        if max_request_bytes <= 0:
            raise ValueError("max_request_bytes must be positive")
        self._responders[protocol] = (handler, max_request_bytes)

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self, timeout: float = 20.0) -> None:
        """Start the trio thread and wait until the host listens and topics are subscribed."""
        quiet_libp2p_loggers()
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._thread_main, name="libp2p", daemon=True)
        self._thread.start()
        ready = await asyncio.to_thread(self._ready.wait, timeout)
        if self._failure is not None:
            raise P2PError(f"libp2p host failed to start: {self._failure}") from self._failure
        if not ready:
            raise P2PError(f"libp2p host did not start within {timeout:.0f}s")

    async def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping = True
        if self._token is not None and self._stop is not None:
            with contextlib.suppress(trio.RunFinishedError):
                await asyncio.to_thread(
                    trio.from_thread.run_sync, self._stop.set, trio_token=self._token
                )
        await asyncio.to_thread(self._thread.join, 10.0)
        self._thread = None

    def _thread_main(self) -> None:
        """Run the trio host; if it dies after a successful start, restart it on the same port."""
        while True:
            try:
                trio.run(self._trio_main)
                return
            except BaseException as exc:
                if not self._ready.is_set() or self._stopping:
                    self._failure = exc
                    if not self._stopping:
                        log.error("libp2p host failed: %r", exc)
                    self._ready.set()
                    return
                self.restarts += 1
                log.error("libp2p host crashed (%r); restarting it", exc)
                self._token = None
                time.sleep(RESTART_DELAY)

    async def _trio_main(self) -> None:
        for name, value in YAMUX_ENV.items():
            os.environ.setdefault(name, value)
        key_pair = create_new_key_pair(self._seed)
        p = self._params
        connections = ConnectionConfig(
            min_connections=0,
            low_watermark=p.target_peers,
            high_watermark=max(p.target_peers, p.max_peers // 2),
            max_connections=p.max_peers,
        )
        host = new_host(
            key_pair=key_pair, listen_addrs=[self._listen], connection_config=connections
        )
        router = GossipSub(
            protocols=[PROTOCOL_ID_V11, PROTOCOL_ID],
            degree=p.degree,
            degree_low=p.degree_low,
            degree_high=p.degree_high,
            time_to_live=p.fanout_ttl,
            gossip_window=p.gossip_window,
            gossip_history=p.gossip_history,
            heartbeat_initial_delay=0.1,
            heartbeat_interval=p.heartbeat_interval,
            spam_protection_enabled=False,
            eclipse_protection_enabled=False,
        )
        pubsub = _NoospherePubsub(host, router, strict_signing=True)
        pubsub.on_sent = self._on_sent
        self._stop = trio.Event()
        async with (
            host.run(listen_addrs=[self._listen]),
            trio.open_nursery() as nursery,
            background_trio_service(pubsub),
            background_trio_service(router),
        ):
            await pubsub.wait_until_ready()
            for protocol in self._responders:
                host.set_stream_handler(TProtocol(protocol), self._make_stream_handler(protocol))
            for topic in self._topics:
                if self._validator is not None:
                    pubsub.set_topic_validator(topic, self._make_validator(topic), False)
                subscription = await pubsub.subscribe(topic)
                nursery.start_soon(self._drain, topic, subscription)
            self._host, self._pubsub = host, pubsub
            self.peer_id = host.get_id().to_base58()
            self.listen_addrs = [
                f"{addr}" if "/p2p/" in str(addr) else f"{addr}/p2p/{self.peer_id}"
                for addr in host.get_addrs()
            ]
            if self.listen_addrs:  # a restart must come back on the same port
                self._listen = multiaddr.Multiaddr(self.listen_addrs[0].split("/p2p/")[0])
            self._token = trio.lowlevel.current_trio_token()
            self._ready.set()
            await self._stop.wait()
            nursery.cancel_scope.cancel()

    def _make_validator(self, topic: str) -> Callable[[ID, Any], bool]:
        validator = self._validator
        assert validator is not None

        def validate(_forwarder: ID, msg: Any) -> bool:
            try:
                return validator(topic, ID(msg.from_id).to_base58(), bytes(msg.data))
            except Exception:  # a validator bug must not kill the router
                log.exception("gossip validator raised")
                return False

        return validate

    def _make_stream_handler(self, protocol: str) -> Callable[[Any], Awaitable[None]]:
        responder, max_request_bytes = self._responders[protocol]
        loop = self._loop
        assert loop is not None

        async def handle(stream: Any) -> None:
            peer = stream.muxed_conn.peer_id.to_base58()
            try:
                if max_request_bytes:
                    with trio.fail_after(REQUEST_READ_TIMEOUT):
                        body = await read_varint_prefixed_bytes_limited(stream, max_request_bytes)
                else:
                    body = b""
                call = responder(peer, body)
                future = asyncio.run_coroutine_threadsafe(call, loop)
                reply = await trio.to_thread.run_sync(future.result, 30.0)
                await stream.write(encode_uvarint(len(reply)))
                for start in range(0, len(reply), REPLY_CHUNK_BYTES):
                    await stream.write(reply[start : start + REPLY_CHUNK_BYTES])
                await stream.close()
            except Exception as exc:  # one bad request must not hurt the host
                log.warning("answering %s for %s failed: %r", protocol, peer, exc)
                with contextlib.suppress(Exception):
                    await stream.reset()

        return handle

    async def _drain(self, topic: str, subscription: Any) -> None:
        """Hand each delivered message to asyncio at once: libp2p's 32-slot channel never fills."""
        assert self._loop is not None
        own = self.peer_id
        while True:
            msg = await subscription.get()
            try:
                origin = ID(msg.from_id).to_base58()
            except Exception:
                continue
            if origin == own:
                continue  # pubsub hands a publisher its own messages
            inbound = InboundMessage(topic=topic, origin=origin, data=bytes(msg.data))
            self._loop.call_soon_threadsafe(self._on_message, inbound)

    # ---- operations (called from asyncio) ----------------------------------------------------

    async def _call(self, fn: Callable[..., Any], *args: Any, what: str = "libp2p call") -> Any:
        return await self._in_trio(trio.from_thread.run, fn, *args, what=what)

    async def _call_sync(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self._in_trio(trio.from_thread.run_sync, fn, *args, what="libp2p call")

    async def _in_trio(
        self, runner: Callable[..., Any], fn: Callable[..., Any], *args: Any, what: str
    ) -> Any:
        """Run ``fn`` in the trio thread; every failure comes back as P2PError naming ``what``."""
        token = self._token
        if token is None:
            raise P2PError("libp2p host is not running")
        try:
            return await asyncio.to_thread(runner, fn, *args, trio_token=token)
        except (trio.RunFinishedError, trio.Cancelled) as exc:
            raise P2PError("libp2p host stopped during the call") from exc
        except BaseExceptionGroup as exc:
            if exc.subgroup((KeyboardInterrupt, SystemExit)) is not None:
                raise
            raise P2PError(f"{what} failed: {exc!r}") from exc
        except Exception as exc:
            raise P2PError(f"{what} failed: {exc!r}") from exc

    async def publish(self, topic: str, data: bytes) -> None:
        """Publish once every peer's outbound queue has room (libp2p drops when one is full)."""
        await self._call(self._publish_when_room, topic, data, what=f"publishing on {topic}")

    async def _publish_when_room(self, topic: str, data: bytes) -> None:
        pubsub = self._pubsub
        assert pubsub is not None
        with trio.move_on_after(PUBLISH_BACKPRESSURE_TIMEOUT):
            while any(len(q) >= OUTBOUND_HIGH_WATER for q in pubsub.peer_queues.values()):
                await trio.sleep(0.002)
        await pubsub.publish(topic, data)

    async def connect(self, address: str, timeout: float = 10.0) -> str:
        """Dial a ``/ip4/.../tcp/.../p2p/<id>`` multiaddr; returns the remote peer id."""
        try:
            info = info_from_p2p_addr(multiaddr.Multiaddr(address))
        except Exception as exc:
            raise P2PError(f"not a dialable multiaddr with /p2p/ id: {address!r}") from exc
        host = self._host

        async def dial() -> None:
            with trio.fail_after(timeout):
                await host.connect(info)

        await self._call(dial, what=f"connecting to {address}")
        return info.peer_id.to_base58()

    async def request(
        self,
        peer_id: str,
        protocol: str,
        timeout: float = 20.0,
        *,
        body: bytes | None = None,
        max_reply_bytes: int = MAX_REPLY_BYTES,
        connected_only: bool = False,
    ) -> bytes:
        """Open a ``protocol`` stream to a peer, write ``body`` (varint-length prefixed) if
        given, and read its whole reply. With ``connected_only`` the stream must ride on an
        existing connection: libp2p would otherwise dial whatever addresses its peerstore
        holds for the peer, which the peer itself announced."""
        host = self._host

        async def ask() -> bytes:
            with trio.fail_after(timeout):
                pid = ID.from_base58(peer_id)
                if connected_only and pid not in host.get_connected_peers():
                    raise P2PError(f"not connected to {peer_id}")
                stream = await host.new_stream(pid, [TProtocol(protocol)])
                try:
                    if body is not None:
                        await stream.write(encode_uvarint(len(body)) + body)
                    return await read_varint_prefixed_bytes_limited(stream, max_reply_bytes)
                finally:
                    with contextlib.suppress(Exception):
                        await stream.close()

        return await self._call(ask, what=f"{protocol} request to {peer_id}")

    async def connected_peers(self) -> list[PeerView]:
        """Peers connected now; empty while the host is down or restarting."""
        host = self._host

        def snapshot() -> list[PeerView]:
            store = host.get_peerstore()
            views = []
            for pid in host.get_connected_peers():
                try:
                    addrs = [str(a) for a in store.addrs(pid)]
                except Exception:
                    addrs = []
                views.append(PeerView(peer_id=pid.to_base58(), addrs=addrs))
            return views

        try:
            return await self._call_sync(snapshot)
        except P2PError:
            return []

    async def mesh_size(self, topic: str) -> int:
        pubsub = self._pubsub

        def size() -> int:
            assert pubsub is not None
            return len(getattr(pubsub.router, "mesh", {}).get(topic, ()))

        return await self._call_sync(size)
