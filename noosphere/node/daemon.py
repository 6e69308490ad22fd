"""Publish, Discover and Execute (the daemon): one node process. Owns the key, the store, the
libp2p host, the gossip router, the card index, the agents with their task manager and the
JSON-RPC server; announces its agents' cards, learns everyone else's, dials peers it learns about,
runs the tasks it is sent, and shuts down cleanly on SIGINT/SIGTERM.

Start: lock the home (one daemon per home), narrow its permissions, open the store, bind the RPC
and P2P ports (a busy port is one clear error), and only once everything listens write a new
``config.toml`` and ``runtime.json``. Stop: refuse new tasks, give running turns
``shutdown_grace_s`` to finish (their results are kept; a second signal cuts the grace short),
fail the rest as retryable, end every stream, then close the server, libp2p and the store."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import random
import signal
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import structlog
import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from noosphere.abe.authority import AuthorityError, load_public_key, node_keys
from noosphere.abe.keys import AuthorityPublicKey
from noosphere.agents.memory import AgentMemoryError
from noosphere.agents.publish import NodeEndpoint, build_card
from noosphere.agents.runtime import create_agent
from noosphere.agents.spec import AgentSpec, load_agent_spec
from noosphere.agents.tools import ToolError
from noosphere.agents.turn import TaskAgent
from noosphere.errors import SetupError
from noosphere.mars.filter import SemanticFilter
from noosphere.mars.profile import AgentProfile, profile_from_card
from noosphere.mars.recruit import Recruiter
from noosphere.models.embedding import shared_embedder
from noosphere.models.llm import LlmBackend, LlmError, llm_config_from_env
from noosphere.node.web import SecurityHeaders, web_routes
from noosphere.protocol import MAX_CARD_BYTES, AgentCard, EnvelopeKind, NodeKey, card_id
from noosphere.protocol.base import one_line
from noosphere.protocol.bids import BID_PROTOCOL, MAX_BID_BYTES, TaskRequest
from noosphere.protocol.canonical import canonical_json
from noosphere.protocol.rpcauth import LOCAL_PRINCIPAL
from noosphere.protocol.sync import CARD_SYNC_PROTOCOL

from .a2a_api import register_a2a_api
from .a2a_rest import RestBinding
from .access import AnonymousCallers
from .api import NodeView, register_node_api
from .auth import RequestAuthenticator, load_or_create_token
from .bidding import BidBoard, BidCourier, Bidder
from .card_http import card_response
from .card_sync import CardSync
from .cards import CardIndex, CardQuotas
from .config import NodeConfig, save_config
from .egress import EgressPolicy, dialable_multiaddrs
from .feedback_api import FeedbackService, register_feedback_api
from .gossip import GossipRouter, now_ms
from .home import HomeInUse, HomeLock, make_private
from .http_server import ConnectionGuard, InFlightLimit, ensure_open_files, guarded_protocol
from .keystore import load_or_create_evm_account, load_or_create_node_key
from .ledger_api import register_ledger_api
from .mars_api import MarsService, register_mars_api
from .metrics import NodeMetrics
from .p2p import GossipParams, P2PError, P2PHost
from .peers import PeerBook
from .push import PushNotifier
from .rpc import JsonRpcDispatcher
from .runtime import RUNTIME_FILENAME, NodeRuntime, write_runtime
from .settlement import Settlement
from .store import STORE_FILENAME, NodeStore
from .submit import Submitter
from .submit_api import register_submit_api
from .tasks import TaskManager

log = structlog.get_logger("noosphere.node")

CHECKPOINT_INTERVAL_S = 1.0
MAX_DIALS_PER_ROUND = 4
ANNOUNCE_DEBOUNCE_S = 0.5
PEER_PRUNE_INTERVAL_S = 60.0
UNDIALABLE_RETRY_S = 300.0  # a peer whose announced addresses the egress rule refuses
#: After the grace: how long streams and connections get to close before the server stops.
SERVER_CLOSE_S = 2  # uvicorn takes whole seconds


class NodeStartError(SetupError, RuntimeError):
    """The node cannot start (port in use, bad agent file, corrupt store); the message says why."""


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the node owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Node:
    """One node process as its operator sees it: ``run`` locks the home, starts the node
    (``RunningNode``), serves until ``stop`` and shuts it down; ``runtime`` is set once it
    listens. Cheap to construct: only the agent files are read."""

    def __init__(self, home: Path, config: NodeConfig, *, new_config: bool = False) -> None:
        """``new_config``: ``HOME/config.toml`` does not exist yet; it is written from
        ``config`` once the node has started (a start that fails leaves the home without it)."""
        self.home = home
        self.config = config
        self.new_config = new_config
        self.metrics = NodeMetrics()
        self.started_at = time.monotonic()
        self.stopping = asyncio.Event()
        self.hurry = asyncio.Event()  # a second stop signal: no more grace for running turns
        self.specs: list[AgentSpec] = [load_agent_spec(p) for p in config.agents]
        ids = [s.id for s in self.specs]
        if len(set(ids)) != len(ids):
            raise NodeStartError(f"two agent files define the same agent id: {sorted(ids)}")
        self.running: RunningNode | None = None  # from the start of ``run`` to its end

    @property
    def runtime(self) -> NodeRuntime | None:
        """Where the node listens, once it does."""
        return None if self.running is None else self.running.runtime

    @property
    def key_created(self) -> bool:
        """This start created the node's key (a new identity)."""
        return self.running is not None and self.running.key_created

    async def run(self) -> None:
        """Start everything, serve until stopped, then shut down in reverse order."""
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)  # tasks and memory live here
        try:
            lock = HomeLock.acquire(self.home)  # before anything in the home is written
        except HomeInUse as exc:
            raise NodeStartError(str(exc)) from None
        try:
            make_private(self.home)
            async with contextlib.AsyncExitStack() as closing:
                self.running = await RunningNode.open(self, closing)
                await self.running.serve()
        finally:
            lock.release()

    def stop(self) -> None:
        """Begin a graceful stop; a second call (another Ctrl-C or SIGTERM) skips the grace."""
        if self.stopping.is_set():
            if not self.hurry.is_set():
                log.warning("stop requested again: not waiting for running tasks")
            self.hurry.set()
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)


class RunningNode:
    """The parts of a started node (store, agents, task manager, card index, gossip, libp2p,
    MARS, settlement) and what it does while it serves. Every part exists from ``__init__`` on;
    each one that holds a resource registers its close on ``closing`` as it is created, so a
    start that fails half-way closes exactly what was opened, in reverse order."""

    @classmethod
    async def open(cls, node: Node, closing: contextlib.AsyncExitStack) -> RunningNode:
        """Open the (locked) home: key, store, RPC token, ledger account; then build the parts
        and mark what a restart cut short."""
        key, key_created = load_or_create_node_key(node.home)
        store = NodeStore(
            node.home / STORE_FILENAME,
            synchronous=node.config.store_sync.upper(),
            background_checkpoints=True,
        )
        closing.callback(store.close)
        _bind_identity(node.home, store, key)
        token = load_or_create_token(node.home)
        settlement = await asyncio.to_thread(_connect_ledger, node, key, store)
        # where this node may connect when a stranger chose the address (egress.py)
        egress = await asyncio.to_thread(EgressPolicy.for_host, node.config.advertised_host)
        running = cls(node, closing, key, key_created, store, token, settlement, egress)
        running.tasks.recover()
        running.submitter.recover()
        return running

    def __init__(
        self,
        node: Node,
        closing: contextlib.AsyncExitStack,
        key: NodeKey,
        key_created: bool,
        store: NodeStore,
        token: str,
        settlement: Settlement | None,
        egress: EgressPolicy,
    ) -> None:
        cfg = self.config = node.config
        self.home = node.home
        self.specs = node.specs
        self.metrics = node.metrics
        self.started_at = node.started_at
        self.stopping = node.stopping
        self.hurry = node.hurry
        self.key = key
        self.key_created = key_created
        self.store = store
        self.token = token
        self.settlement = settlement
        self.egress = egress
        self.runtime: NodeRuntime | None = None
        self._node = node
        self._tasks: list[asyncio.Task[Any]] = []
        self._announce_soon = asyncio.Event()
        # agent runtimes (tools, memory, planner) and the task manager; a bad tool stops the start
        self.llm = _llm_backend(cfg)
        if self.llm is not None:
            closing.push_async_callback(self.llm.aclose)
        self.agents: dict[str, TaskAgent] = {}
        try:
            keys = node_keys(self.home)  # attribute keys imported with `noosphere abe import`
            # carried by this node's cards: the newest epoch's
            self.attestation: dict[str, Any] | None = keys[0][1].to_wire() if keys else None
            for spec in self.specs:
                agent = create_agent(spec, self.home, shared_embedder(), self.llm)
                self.agents[spec.id] = agent
                closing.callback(agent.close)
        except (ToolError, AgentMemoryError, AuthorityError, ValidationError) as exc:
            raise NodeStartError(one_line(str(exc))) from exc
        self.feedback = FeedbackService(
            self.key,
            self.store,
            lambda body: self.gossip.publish(EnvelopeKind.FEEDBACK, body),
            pretrusted=self.config.trusted_peers,
        )
        self.push = PushNotifier(self.metrics, allow_private_targets=cfg.push_private_targets)
        closing.push_async_callback(self.push.aclose)
        closing.callback(self.feedback.save)
        self.tasks = TaskManager(
            self.store,
            self.agents,
            self.metrics,
            self.push,
            max_concurrent_turns=cfg.max_concurrent_tasks,
            turn_timeout_s=cfg.task_timeout_s,
            receipts=self.feedback.receipt,
            payments=self.settlement,
            access={spec.id: spec.access for spec in self.specs},
            operators=frozenset({key.peer_id}),  # the node itself (e.g. its own submissions)
        )
        closing.push_async_callback(self.tasks.close)
        # discovery: peers, cards, MARS and the bids it may solicit
        self.peers = PeerBook(self.store)
        self.cards = CardIndex(self.store, self.metrics, self.peers, CardQuotas.from_config(cfg))
        self.board = BidBoard(self._learn_bid_card)
        self.mars = MarsService(
            Recruiter(shared_embedder(), llm=self.llm, signals=self.feedback.trust),
            self.cards,
            solicit=self._solicit,
            board=self.board,
        )
        for path in cfg.abe_authorities:
            try:
                self.mars.trusted_issuers.add(load_public_key(path).issuer)
            except AuthorityError as exc:
                raise NodeStartError(f"abe_authorities: {exc}") from exc
        self.submitter = Submitter(
            self.key,
            self.store,
            self.mars,
            self.cards,
            self.feedback,
            self.settlement,
            self._authorities,
            escrow_deadline_s=cfg.escrow_deadline_s,
            auto_release=cfg.auto_release,
            egress=self.egress,
        )
        closing.push_async_callback(self.submitter.close)
        # gossip and libp2p
        self.gossip = GossipRouter(self.key, self.store, self.metrics, cfg)
        self.gossip.on(EnvelopeKind.CARD, self._on_card, precheck=self.cards.precheck_gossiped)
        self.card_sync = CardSync(self.cards, self.store, self.metrics, allow=self.gossip.allow)
        self.gossip.on(EnvelopeKind.TASK, lambda envelope: self.bidder.on_request(envelope))
        self.gossip.on(EnvelopeKind.FEEDBACK, self.feedback.on_gossip)
        self.p2p = P2PHost(
            seed=self.key.seed,
            listen_host=cfg.host,
            listen_port=cfg.p2p_port,
            topics=self.gossip.topics,
            on_message=self.gossip.deliver,
            validator=self.gossip.validate,
            on_sent=self.metrics.record_sent,
            params=GossipParams(
                degree=cfg.gossip.degree,
                degree_low=cfg.gossip.degree_low,
                degree_high=cfg.gossip.degree_high,
                heartbeat_interval=cfg.gossip.heartbeat_interval,
                target_peers=cfg.target_peers,
            ),
        )
        bid_filter = SemanticFilter(shared_embedder())
        courier = BidCourier(self.p2p, self._peer_addrs, self.egress)
        self.bidder = Bidder(self.key, self._own_profiles, lambda: bid_filter, courier)

    # ---- lifecycle -----------------------------------------------------------------------

    async def serve(self) -> None:
        """Listen (RPC and libp2p), publish ``runtime.json``, run the background jobs until
        the node is stopped, then shut down (``_shut_down``)."""
        cfg = self.config
        rpc_socket = self._bind_rpc_socket()
        self.p2p.serve(CARD_SYNC_PROTOCOL, self._serve_cards)
        self.p2p.serve_requests(BID_PROTOCOL, self.board.on_stream, max_request_bytes=MAX_BID_BYTES)
        try:
            self._check_p2p_port()
            await self.p2p.start()
        except (P2PError, NodeStartError) as exc:
            rpc_socket.close()
            await self.p2p.stop()
            raise NodeStartError(str(exc)) from exc
        guard = ConnectionGuard(  # slow and idle clients: http_server.py
            max_connections=ensure_open_files(cfg.rpc_max_connections),
            max_per_client=cfg.rpc_max_connections_per_ip,
            header_timeout_s=cfg.rpc_header_timeout_s,
            body_timeout_s=cfg.rpc_body_timeout_s,
            write_timeout_s=cfg.rpc_write_timeout_s,
            metrics=self.metrics,
        )
        self.runtime = self._runtime(rpc_socket.getsockname()[1])
        app = InFlightLimit(
            self._rpc_app(self.runtime),
            max_in_flight=cfg.rpc_max_in_flight,
            max_body_bytes=cfg.max_request_bytes,
            metrics=self.metrics,
        )
        server = _Server(
            uvicorn.Config(
                app,
                http=guarded_protocol(guard),
                ws="none",  # no WebSocket routes; an upgrade would leave the guard's view
                log_config=None,
                access_log=False,
                lifespan="off",
                backlog=4096,
                # asked to exit only once every turn has ended (and with it every task stream)
                timeout_graceful_shutdown=SERVER_CLOSE_S,
            )
        )
        server_task = asyncio.create_task(server.serve(sockets=[rpc_socket]), name="rpc-server")
        try:
            self._check_own_cards()
            if self._node.new_config:  # started: now the flags that worked become the config
                save_config(self.home, self.config)
                self._node.new_config = False
            self._write_runtime()
            self._spawn(self.gossip.run_receiver(), "gossip-receiver")
            for topic in self.gossip.topics:
                self._spawn(
                    self.gossip.run_publisher(topic, self.p2p.publish), f"publisher:{topic}"
                )
            self._spawn(self._announce_when_ready(), "announce")
            self._spawn(self._sweep_loop(), "sweep")
            self._spawn(self._checkpoint_loop(), "checkpoint")
            self._spawn(self.mars.run(), "mars-index")
            self._spawn(self._connect_loop(), "connect")
            if self.settlement is not None:
                self._spawn(
                    self.settlement.run(
                        self._registrations, self._announce_soon.set, self.feedback.set_registry
                    ),
                    "settlement",
                )
            for agent_id, agent in self.agents.items():  # agents with a life of their own
                start = getattr(agent, "start", None)
                if start is not None:
                    self._spawn(start(), f"agent:{agent_id}")
            if self.config.preload_models and not self._sells():  # priced: loaded before
                self._spawn(asyncio.to_thread(shared_embedder().load), "embedder-load")
            await self.stopping.wait()
        finally:
            await self._shut_down(server, server_task)

    async def _shut_down(self, server: uvicorn.Server, server_task: asyncio.Task[Any]) -> None:
        """Refuse new tasks, let running turns finish for the grace period (the server still
        answers GetTask and streams meanwhile; /healthz says 503), fail the rest as retryable
        (every stream then ends), then stop the server, background jobs and libp2p."""
        grace = self.config.shutdown_grace_s
        running = self.tasks.running + self.tasks.queue_depth
        log.info("node stopping", peer_id=self.key.peer_id, running_tasks=running, grace_s=grace)
        left = await self.tasks.drain(grace, interrupt=self.hurry)
        if left:
            log.warning(
                "tasks still running after the grace; failing them as retryable",
                count=left,
                grace_s=grace,
            )
        await self.tasks.close()  # every stream gets its final status and ends
        server.should_exit = True  # uvicorn cancels what is left after SERVER_CLOSE_S
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server_task, SERVER_CLOSE_S + 1)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.p2p.stop()
        with contextlib.suppress(FileNotFoundError):
            (self.home / RUNTIME_FILENAME).unlink()

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "node task crashed; stopping", task=task.get_name(), error=repr(task.exception())
            )
            self._node.stop()

    def _rpc_app(self, runtime: NodeRuntime) -> Starlette:
        dispatcher = JsonRpcDispatcher(
            self.metrics,
            max_body_bytes=self.config.max_request_bytes,
            max_batch=self.config.max_batch_requests,
            authenticator=RequestAuthenticator(
                self.token,
                nonces_per_peer=self.config.rpc_nonces_per_peer,
                nonces_total=self.config.rpc_nonces_total,
            ),
        )
        node = NodeView(
            runtime=runtime,
            started_at=self.started_at,
            agents=[(spec.id, spec.name) for spec in self.specs],
            evm_address=self.settlement.address if self.settlement is not None else None,
            cards=self.cards,
            peers=self.peers,
            connections=self.p2p,
            tasks=self.tasks,
            reputation=lambda card: self.feedback.trust.reputation(card),
        )
        register_node_api(dispatcher, node)
        open_agents = any(spec.access == "anyone" for spec in self.specs)
        anonymous = (
            AnonymousCallers(
                rate=self.config.rpc_anonymous_rate, burst=self.config.rpc_anonymous_burst
            )
            if open_agents
            else None
        )
        register_a2a_api(dispatcher, self.tasks, self._local_card, anonymous)
        register_mars_api(dispatcher, self.mars, self.key.peer_id)
        register_feedback_api(dispatcher, self.feedback)
        register_submit_api(dispatcher, self.submitter)
        register_ledger_api(dispatcher, self.settlement)
        return Starlette(
            routes=[
                Route("/", dispatcher.handle_http, methods=["POST"]),
                *web_routes(self),  # GET / and /ui/...: the web view (noosphere/node/web)
                Route("/.well-known/agent-card.json", self._agent_card, methods=["GET"]),
                Route(
                    "/agents/{agent_id}/.well-known/agent-card.json",
                    self._agent_card,
                    methods=["GET"],
                ),
                Route("/metrics", self._metrics_endpoint, methods=["GET"]),
                Route("/healthz", self._healthz, methods=["GET"]),
                # A2A HTTP+JSON (/message:send, /tasks/...): after every route above
                *RestBinding(dispatcher, max_body_bytes=self.config.max_request_bytes).routes(),
            ],
            middleware=[Middleware(SecurityHeaders)],
        )

    def _bind_rpc_socket(self) -> socket.socket:
        """Bind the RPC port up front so a busy port is a clear error, and port 0 works."""
        # IPPROTO_TCP explicitly: asyncio enables TCP_NODELAY only for sockets created so, and
        # without it every keep-alive response waits ~40 ms for the peer's delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.config.host, self.config.rpc_port))
        except OSError as exc:
            sock.close()
            raise NodeStartError(
                f"cannot listen for JSON-RPC on {self.config.host}:{self.config.rpc_port}:"
                f" {exc.strerror}"
            ) from exc
        sock.set_inheritable(True)
        return sock

    def _check_p2p_port(self) -> None:
        """Refuse a P2P port another process listens on. libp2p binds with SO_REUSEPORT, so a
        second host on a busy port would start and split the incoming connections with the
        first; a plain bind (no SO_REUSEPORT) fails on such a port and says so."""
        port = self.config.p2p_port
        if port == 0:
            return  # the kernel picks a free port
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
            sock.bind((self.config.host, port))
        except OSError as exc:
            raise NodeStartError(
                f"cannot listen for libp2p on {self.config.host}:{port}: {exc.strerror}"
            ) from exc
        finally:
            sock.close()

    def _runtime(self, port: int) -> NodeRuntime:
        host = self.config.advertised_host
        return NodeRuntime(
            peer_id=self.key.peer_id,
            name=self.config.name or f"node-{self.key.peer_id[-6:]}",
            multiaddrs=[_advertise(a, host) for a in self.p2p.listen_addrs],
            rpc_url=f"http://{host}:{port}",
        )

    def _write_runtime(self) -> None:
        """Tell tools and tests the node is up (HOME/runtime.json): the last step of a start."""
        assert self.runtime is not None
        write_runtime(self.home, self.runtime)
        log.info(
            "node started",
            peer_id=self.runtime.peer_id,
            multiaddr=self.runtime.multiaddrs[0] if self.runtime.multiaddrs else None,
            rpc_url=self.runtime.rpc_url,
            agents=[s.id for s in self.specs],
            new_identity=self.key_created,
        )

    # ---- HTTP endpoints ----------------------------------------------------------------------

    def _local_card(self, agent_id: str | None) -> dict[str, Any] | None:
        """The current card of one of this node's agents (the first when ``agent_id`` is None)."""
        agent_id = agent_id or (self.specs[0].id if self.specs else None)
        if agent_id is None:
            return None
        stored = self.cards.get(card_id(self.key.peer_id, agent_id), now_ms())
        return stored.card if stored is not None and stored.local else None

    async def _agent_card(self, request: Request) -> Response:
        card = self._local_card(request.path_params.get("agent_id"))
        if card is None:
            return JSONResponse({"error": "no such agent on this node"}, status_code=404)
        return card_response(request, card, int(self.config.effective_announce_interval_s))

    async def _metrics_endpoint(self, _request: Request) -> Response:
        self.metrics.peers_connected.set(len(await self.p2p.connected_peers()))
        self.metrics.p2p_restarts.set(self.p2p.restarts)
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")

    async def _healthz(self, _request: Request) -> Response:
        if self.stopping.is_set():  # load balancers stop sending work during the grace
            return JSONResponse(
                {"ok": False, "stopping": True, "peerId": self.key.peer_id}, status_code=503
            )
        return JSONResponse({"ok": True, "peerId": self.key.peer_id})

    # ---- gossip and discovery ----------------------------------------------------------------

    def _on_card(self, envelope: Any) -> None:
        self.cards.accept_gossiped(envelope, now_ms())  # records the owner in the peer book

    # ---- open calls (task requests and bids) --------------------------------------------------

    def _solicit(self, request: TaskRequest) -> TaskRequest:
        assert self.runtime is not None
        request = request.model_copy(update={"reply_to": self.runtime.rpc_url})
        self.gossip.publish(EnvelopeKind.TASK, request.to_wire())
        return request

    def _learn_bid_card(self, card: dict[str, Any]) -> None:
        owner = AgentCard.model_validate(card).noosphere().peer_id  # the bidder (BidBoard checks)
        with self.store.transaction():
            self.cards.accept_synced(card, now_ms(), via=owner)

    def _own_profiles(self) -> list[AgentProfile]:
        """This node's agents as MARS sees them (with the signed card, to send in bids)."""
        profiles = []
        private = {spec.id for spec in self.specs if spec.access == "operator"}
        for stored in self.cards.list(now_ms(), local_only=True):
            card = AgentCard.model_validate(stored.card)
            if card.noosphere().agent_id in private:
                continue  # works only for the operator: never bids for strangers' tasks
            profile = profile_from_card(stored.card_id, card)
            profiles.append(dataclasses.replace(profile, extra={"card": stored.card}))
        return profiles

    def _peer_addrs(self, peer_id: str) -> list[str]:
        """The multiaddrs a peer announced in its cards (its own word: the caller checks them)."""
        return [a for p in self.peers.list() if p.peer_id == peer_id for a in p.addrs]

    def _own_card(self, spec: AgentSpec, seq: int, now: int) -> AgentCard:
        """A freshly signed card for one of this node's agents."""
        assert self.runtime is not None
        endpoint = NodeEndpoint(
            rpc_url=self.runtime.rpc_url,
            multiaddrs=self.runtime.multiaddrs,
            evm_address=self.settlement.address if self.settlement is not None else None,
        )
        registry_ids = self.settlement.registry_ids if self.settlement is not None else {}
        return build_card(
            spec,
            self.key,
            endpoint,
            seq=seq,
            issued_at_ms=now,
            ttl_ms=self.config.card_ttl_s * 1000,
            tools=self.agents[spec.id].tool_schemas(),
            attestation=self.attestation,
            registry_id=registry_ids.get(spec.id),
        )

    def _check_own_cards(self) -> None:
        """Refuse to start with a card the network would refuse (larger than MAX_CARD_BYTES)."""
        for spec in self.specs:
            size = len(
                json.dumps(
                    self._own_card(spec, 1, now_ms()).to_wire(),
                    separators=(",", ":"),
                    ensure_ascii=False,
                ).encode()
            )
            if size > MAX_CARD_BYTES:
                raise NodeStartError(
                    f"agent {spec.id}: its card takes {size} bytes, more than the network's"
                    f" limit of {MAX_CARD_BYTES}; shorten its skills, examples or tools"
                )

    def announce_cards(self) -> None:
        """Sign fresh versions of this node's cards, store them and gossip them (one batch)."""
        now = now_ms()
        keep = set()
        with self.store.transaction():
            for spec in self.specs:
                card = self._own_card(spec, self.gossip.next_seq(), now)
                params = self.cards.put_local(card, now)
                keep.add(params.card_id)
                if spec.access != "operator":  # an operator-only agent is not offered around
                    self.gossip.publish(EnvelopeKind.CARD, {"card": card.to_wire()})
            self.store.delete_local_cards_except(keep)

    def _registrations(self) -> list[tuple[str, str, bytes, str]]:
        """What the ledger's agent registry records for each of this node's agents: card URL,
        hash of the card as first registered, and the node's peer id."""
        out = []
        for spec in self.specs:
            stored = self.cards.get(card_id(self.key.peer_id, spec.id), now_ms())
            if stored is None or self.runtime is None:
                continue
            url = f"{self.runtime.rpc_url}/agents/{spec.id}/.well-known/agent-card.json"
            digest = hashlib.sha256(canonical_json(stored.card)).digest()
            out.append((spec.id, url, digest, self.key.peer_id))
        return out

    def _authorities(self) -> list[AuthorityPublicKey]:
        """The attribute authorities this node trusts and seals to (``abe_authorities``)."""
        return [load_public_key(path) for path in self.config.abe_authorities]

    def _sells(self) -> bool:
        """Whether one of this node's agents charges for its work (on a node without a ledger
        prices are advisory: nobody pays, no escrow deadline runs)."""
        return self.settlement is not None and any(spec.price.amount > 0 for spec in self.specs)

    async def _announce_when_ready(self) -> None:
        """A priced agent is published only once it can start a paid task at once: a paid task
        runs against an escrow deadline, and loading the model in its first turn took 15 s on a
        busy 2-core machine (enough to miss a 20 s deadline). Free agents load it lazily unless
        ``preload_models`` says otherwise."""
        if self._sells():
            started = time.monotonic()
            await asyncio.to_thread(shared_embedder().load)
            log.info("agents ready", model_load_s=round(time.monotonic() - started, 2))
        await self._announce_loop()

    async def _announce_loop(self) -> None:
        """Announce at start, every announce interval, and soon after a new connection (so a
        peer that joined after the last announcement gets this node's cards right away)."""
        while True:
            self.announce_cards()
            # ±10 % jitter: nodes started together do not keep announcing in the same instant
            interval = self.config.effective_announce_interval_s * random.uniform(0.9, 1.1)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._announce_soon.wait(), interval)
                await asyncio.sleep(ANNOUNCE_DEBOUNCE_S)  # one announcement for a burst of joins
            self._announce_soon.clear()

    async def _serve_cards(self, peer: str) -> bytes:
        """Answer a card pull-sync (bounded per peer: see CardSync.serve)."""
        return self.card_sync.serve(peer)

    async def _sync_from(self, peer_id: str) -> None:
        """Pull a newly connected peer's card index and keep the cards that are new to us."""
        try:
            await self.card_sync.pull(
                peer_id, lambda peer: self.p2p.request(peer, CARD_SYNC_PROTOCOL)
            )
        except P2PError as exc:
            log.warning("card sync failed", peer=peer_id, error=str(exc))

    async def _checkpoint_loop(self) -> None:
        """Move the SQLite WAL into the database file every second, off the event loop."""
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL_S)
            self.feedback.save()  # trust records, when changed
            try:
                await asyncio.to_thread(self.store.checkpoint)
            except sqlite3.Error as exc:
                log.warning("store checkpoint failed", error=str(exc))

    async def _sweep_loop(self) -> None:
        pruned_at = time.monotonic()
        while True:
            removed = self.cards.sweep(now_ms())
            if removed:
                log.info("cards expired", count=len(removed))
            if time.monotonic() - pruned_at >= PEER_PRUNE_INTERVAL_S:
                pruned_at = time.monotonic()
                if forgotten := self.peers.prune(self.config.max_peers):
                    log.info("peers forgotten", count=forgotten, kept=self.config.max_peers)
            await asyncio.sleep(self.config.sweep_interval_s)

    async def _dial_candidates(
        self, connected: set[str], retry_at: dict[str, float], now: float
    ) -> list[tuple[str, str]]:
        """(peer id, multiaddr) to dial now: bootstrap peers (the operator's word), then, below
        ``target_peers``, peers learned from cards, whose addresses are a stranger's word: only
        what the egress rule allows (public, or this node's own loopback/private scope)."""

        def due(peer_id: str) -> bool:
            return (
                peer_id != self.key.peer_id
                and peer_id not in connected
                and retry_at.get(peer_id, 0) <= now
            )

        wanted = [(a.rsplit("/p2p/", 1)[1], a) for a in self.config.bootstrap]
        if len(connected) < self.config.target_peers:
            learned = [p for p in self.peers.list() if p.addrs and due(p.peer_id)]
            for peer in learned[: 4 * MAX_DIALS_PER_ROUND]:
                allowed = await dialable_multiaddrs(peer.addrs, self.egress)
                if allowed:
                    wanted.append((peer.peer_id, allowed[0]))
                else:
                    retry_at[peer.peer_id] = now + UNDIALABLE_RETRY_S
        return [(pid, addr) for pid, addr in dict(wanted).items() if due(pid)]

    async def _connect_loop(self) -> None:
        """Keep bootstrap peers connected, and up to ``target_peers`` connections to peers learned
        from cards or remembered from earlier runs; failed dials back off per peer."""
        failures: dict[str, int] = {}
        retry_at: dict[str, float] = {}
        while True:
            connected = {p.peer_id for p in await self.p2p.connected_peers()}
            self.metrics.peers_connected.set(len(connected))
            for peer in connected:
                self.peers.seen(peer, [], now_ms())
            now = time.monotonic()
            todo = await self._dial_candidates(connected, retry_at, now)
            for peer_id, addr in todo[:MAX_DIALS_PER_ROUND]:
                try:
                    await self.p2p.connect(addr, timeout=5)
                except P2PError as exc:
                    failures[peer_id] = failures.get(peer_id, 0) + 1
                    retry_at[peer_id] = now + min(60.0, 2.0 ** failures[peer_id])
                    log.debug("dial failed", peer=peer_id, addr=addr, error=str(exc))
                else:
                    failures.pop(peer_id, None)
                    self.peers.seen(peer_id, [addr], now_ms())
                    log.info("connected", peer=peer_id, addr=addr)
                    self._announce_soon.set()
                    await self._sync_from(peer_id)
            await asyncio.sleep(1.0 if not connected or todo else 5.0)


def _bind_identity(home: Path, store: NodeStore, key: NodeKey) -> None:
    """Record the key's identity in the store on first start; refuse a swapped key file."""
    known = store.get_meta("peer_id")
    if known is None:
        with store.transaction():
            store.set_meta("peer_id", key.peer_id)
            store.set_meta("public_key", key.public_key.hex())
            store.set_meta("key_created_at", str(now_ms()))
    elif known != key.peer_id:
        raise NodeStartError(
            f"{home}/node.key is not the key this node's store belongs to "
            f"(store: {known}, key: {key.peer_id}); restore the original key"
        )


def _connect_ledger(node: Node, key: NodeKey, store: NodeStore) -> Settlement | None:
    """The node's ledger account when ``chain_home`` is set (else agents work for free)."""
    from noosphere.ledger import Deployment, LedgerClient, LedgerError
    from noosphere.ledger.chain import ChainError, read_runtime, top_up_dev_gas

    cfg = node.config
    if cfg.chain_home is None:
        if cfg.chain_rpc:
            raise NodeStartError(
                "chain_rpc is set but chain_home is not: chain_home holds the contract"
                " addresses (deployments/<chainId>.json, written by `noosphere ledger deploy`)"
            )
        return None
    chain_home = cfg.chain_home.expanduser()
    url = cfg.chain_rpc
    if not url:
        runtime = read_runtime(chain_home)
        if runtime is None:
            raise NodeStartError(
                f"no chain runs for {chain_home}: start it (noosphere chain start --home"
                f" {chain_home}) or set chain_rpc"
            )
        url = runtime.rpc_url
    account, created = load_or_create_evm_account(node.home)
    try:
        client = LedgerClient(url, account)
        deployment = Deployment.load(chain_home, client.chain_id)
        if deployment is None:
            raise NodeStartError(
                f"no contracts recorded for chain {client.chain_id} in {chain_home}:"
                f" run noosphere ledger deploy --chain-home {chain_home}"
            )
        client.use(deployment)
    except (LedgerError, OSError) as exc:
        raise NodeStartError(f"ledger at {url}: {one_line(str(exc))}") from exc
    log.info(
        "ledger account", address=account.address, chain_id=client.chain_id, new_account=created
    )
    try:  # a paid task needs gas on both sides (the agent commits, the requester opens)
        if top_up_dev_gas(client):
            log.info("dev chain: gave the account ether for gas", address=account.address)
    except (ChainError, OSError) as exc:
        log.warning("dev chain: no ether for gas", address=account.address, error=str(exc))
    for spec in node.specs:
        if spec.price.amount and spec.price.token != "NOOS":
            raise NodeStartError(
                f"agent {spec.id}: the ledger pays in NOOS, not {spec.price.token}"
            )
    return Settlement(
        client,
        store,
        {spec.id: int(spec.price.amount) for spec in node.specs},
        key=key,
        own_principals=frozenset({LOCAL_PRINCIPAL, key.peer_id}),
        min_window_s=cfg.payment_window_s,
        arbiter=cfg.arbiter,
        accepted_arbiters=cfg.accepted_arbiters,
    )


def _llm_backend(config: NodeConfig) -> LlmBackend | None:
    """The LLM backend from config (``llm_base_url``/``llm_model``, key from the environment)
    or from NOOSPHERE_LLM_* variables; None runs the offline planner."""
    try:
        if config.llm_base_url:
            if not config.llm_model:
                raise NodeStartError("llm_base_url is set but llm_model is not")
            env = llm_config_from_env(
                {
                    "NOOSPHERE_LLM_BASE_URL": config.llm_base_url,
                    "NOOSPHERE_LLM_MODEL": config.llm_model,
                    "NOOSPHERE_LLM_API_KEY": os.environ.get("NOOSPHERE_LLM_API_KEY", ""),
                }
            )
        else:
            env = llm_config_from_env()
    except LlmError as exc:
        raise NodeStartError(f"LLM configuration: {exc}") from exc
    return None if env is None else LlmBackend(env)


def _advertise(addr: str, host: str) -> str:
    """Replace the listen IP in ``/ip4/<ip>/tcp/...`` with the advertised host."""
    parts = addr.split("/")
    if len(parts) > 2 and parts[1] == "ip4" and parts[2] in ("0.0.0.0", "127.0.0.1"):
        parts[2] = host
    return "/".join(parts)
