"""Recruit (node side): keeps MARS's candidate index in step with the node's card index and
serves ``noosphere.recruit``. Indexing starts with the first recruit request, so nodes that never
recruit never load the embedding model; after that, new, changed and expired cards are applied
every ``sync_interval_s`` in one batch (embedding runs in a worker thread)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from noosphere.errors import InvalidParams, Unauthorized, UnsupportedOperation
from noosphere.mars.filter import Constraints
from noosphere.mars.profile import profile_from_card
from noosphere.mars.recruit import Recruiter, RecruitQuery
from noosphere.protocol import AgentCard, CardError
from noosphere.protocol.api import (
    RecruitChoice,
    RecruitParams,
    RecruitRejection,
    RecruitReply,
)
from noosphere.protocol.bids import MAX_TASK_TEXT, Bid, BidAck, TaskRequest
from noosphere.protocol.rpcauth import LOCAL_PRINCIPAL

from .bidding import BidBoard
from .gossip import now_ms

if TYPE_CHECKING:
    from .cards import CardIndex
    from .rpc import CallContext, JsonRpcDispatcher

log = structlog.get_logger("noosphere.mars")

STAGES = ("vector", "filter", "rank")


class MarsService:
    def __init__(
        self,
        recruiter: Recruiter,
        cards: CardIndex,
        *,
        solicit: Callable[[TaskRequest], TaskRequest] | None = None,
        board: BidBoard | None = None,
        sync_interval_s: float = 1.0,
    ):
        self.recruiter = recruiter
        self._cards = cards
        self._solicit = solicit  # gossips a task request (None: open calls unavailable)
        self.board = board
        self.trusted_issuers: set[str] = set()  # from the node's abe_authorities
        self._seen: dict[str, int] = {}  # card id -> seq indexed
        self._active = asyncio.Event()
        self._lock = asyncio.Lock()
        self.sync_interval_s = sync_interval_s

    async def sync(self) -> int:
        """Apply card changes to the index; returns how many profiles changed."""
        async with self._lock:
            now = now_ms()
            current = self._cards.versions(now)  # only changed cards are read and decoded
            changed = []
            bad = []
            for card_id, seq in current.items():
                if self._seen.get(card_id) == seq:
                    continue
                stored = self._cards.get(card_id, now)
                if stored is None:  # expired since
                    continue
                try:
                    profile = profile_from_card(card_id, AgentCard.model_validate(stored.card))
                except (CardError, ValueError) as exc:
                    # Remember the version (no warning every second) and drop any older one:
                    # the index follows the store, whose current version is this one.
                    log.warning("card not indexed", card_id=card_id, error=str(exc))
                    bad.append(card_id)
                    self._seen[card_id] = stored.seq
                    continue
                changed.append((profile, stored.seq))
            if changed:
                await asyncio.to_thread(self.recruiter.upsert_many, [p for p, _ in changed])
                self._seen.update({p.agent_id: seq for p, seq in changed})
            gone = [card_id for card_id in self._seen if card_id not in current]
            for card_id in gone:
                del self._seen[card_id]
            for card_id in [*gone, *bad]:
                self.recruiter.remove(card_id)
            return len(changed) + len(gone) + len(bad)

    async def run(self) -> None:
        """Keep the index in step, once someone has asked for a recruit."""
        await self._active.wait()
        while True:
            try:
                await self.sync()
            except Exception:  # never let indexing stop the node
                log.exception("mars index sync failed")
            await asyncio.sleep(self.sync_interval_s)

    async def recruit(self, params: RecruitParams, requester: str) -> RecruitReply:
        unknown = [s for s in params.stages if s not in STAGES]
        if unknown or "vector" not in params.stages:
            raise InvalidParams(
                f"Invalid params: stages must include 'vector' and be among {', '.join(STAGES)}",
            )
        self._active.set()
        bids = await self._solicit_bids(params) if params.solicit_bids_ms else 0
        await self.sync()
        query = RecruitQuery(
            task=params.task,
            top=params.top,
            candidates=params.candidates,
            constraints=Constraints(
                required_tags=tuple(params.required_tags),
                input_modes=tuple(params.input_modes),
                output_modes=tuple(params.output_modes),
                max_price=params.max_price,
                policy=params.policy,
                trusted_issuers=self._issuers(params),
            ),
            use_filter="filter" in params.stages,
            use_ranking="rank" in params.stages,
        )
        try:
            result = await self.recruiter.recruit(query, requester=requester, now_ms=now_ms())
        except ValueError as exc:  # a malformed policy
            raise InvalidParams(f"Invalid params: {exc}") from exc
        return RecruitReply(
            chosen=[
                RecruitChoice(
                    card_id=c.profile.agent_id,
                    name=c.profile.name,
                    peer_id=c.profile.peer_id,
                    rpc_url=c.profile.rpc_url,
                    tenant=c.profile.tenant,
                    price=c.profile.price,
                    score=round(c.score, 6),
                    vector=round(c.vector, 6),
                    relevance=round(c.relevance, 6),
                    features={
                        k: round(v, 6) for k, v in (c.ranked.features if c.ranked else {}).items()
                    },
                    explanation=c.ranked.explain() if c.ranked else "",
                )
                for c in result.chosen
            ],
            rejected=[
                RecruitRejection(
                    card_id=r.profile.agent_id,
                    name=r.profile.name,
                    vector=round(r.vector, 6),
                    reason=r.reason,
                )
                for r in result.rejected
            ],
            timings_ms=result.timings_ms,
            filter_mode=result.filter_mode,
            cards_indexed=len(self.recruiter.index),
            bids=bids,
        )

    def _issuers(self, params: RecruitParams) -> frozenset[str] | None:
        """Whose attestations count for a policy: the caller's list, else the authorities this
        node is configured to trust. A policy with neither is refused (an agent's node could
        otherwise attest its own attributes)."""
        if params.trusted_issuers is not None:
            return frozenset(params.trusted_issuers)
        if params.policy is None:
            return None
        if not self.trusted_issuers:
            raise InvalidParams(
                "Invalid params: a policy needs trusted attestation issuers: pass trustedIssuers"
                " (CLI: --issuer or --authority) or set abe_authorities in the node config",
            )
        return frozenset(self.trusted_issuers)

    async def _solicit_bids(self, params: RecruitParams) -> int:
        """Gossip the task, wait for bids; their cards join the card index. Returns the count."""
        if self._solicit is None or self.board is None:
            raise UnsupportedOperation("this node cannot gossip requests")
        wait_s = params.solicit_bids_ms / 1000
        request = TaskRequest(
            request_id=str(uuid.uuid4()),
            task=params.task[:MAX_TASK_TEXT],
            required_tags=params.required_tags,
            max_price=params.max_price,
            policy=params.policy,
            reply_to="pending",  # the solicit callback puts this node's RPC URL here
            expires_at=now_ms() + int(wait_s * 1000) + 500,
        )
        request = self._solicit(request)
        self.board.open(request)
        await asyncio.sleep(wait_s)
        return len(self.board.collect(request.request_id))


def register_mars_api(
    dispatcher: JsonRpcDispatcher, service: MarsService, own_peer_id: str
) -> None:
    async def recruit(params: RecruitParams, ctx: CallContext) -> RecruitReply:
        started = time.perf_counter()
        if params.solicit_bids_ms and ctx.principal != LOCAL_PRINCIPAL:
            # soliciting gossips a task request signed by this node: it speaks in its own name
            raise Unauthorized(
                "Unauthorized: only this node's operator may solicit bids (solicitBidsMs);"
                " a peer can recruit from this node's index without it",
            )
        # The operator recruits for this node; a peer (signed request) for itself.
        requester = own_peer_id if ctx.principal in (None, LOCAL_PRINCIPAL) else ctx.principal
        reply = await service.recruit(params, requester)
        log.info(
            "recruit", chosen=len(reply.chosen), ms=round((time.perf_counter() - started) * 1000, 1)
        )
        return reply

    dispatcher.register("noosphere.recruit", RecruitParams, recruit, authenticated=True)

    async def bid(params: Bid, ctx: CallContext) -> BidAck:
        if service.board is None:
            return BidAck(accepted=False, reason="this node takes no bids")
        if ctx.principal in (None, LOCAL_PRINCIPAL):
            return BidAck(accepted=False, reason="bids must be signed by the bidding node")
        return service.board.add(params, ctx.principal)

    dispatcher.register("noosphere.bid", Bid, bid, authenticated=True)
