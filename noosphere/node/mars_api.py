"""Recruit (node side): keeps MARS's candidate index in step with the node's card index and
serves ``noosphere.recruit``. Indexing starts with the first recruit request, so nodes that never
recruit never load the embedding model; after that, new, changed and expired cards are applied
every ``sync_interval_s`` in one batch (embedding runs in a worker thread)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import structlog

from noosphere.mars.filter import Constraints
from noosphere.mars.profile import profile_from_card
from noosphere.mars.recruit import Recruiter, RecruitQuery
from noosphere.protocol import AgentCard, CardError, ErrorCode, RpcError
from noosphere.protocol.api import (
    RecruitChoice,
    RecruitParams,
    RecruitRejection,
    RecruitReply,
)
from noosphere.protocol.rpcauth import LOCAL_PRINCIPAL

from .gossip import now_ms

if TYPE_CHECKING:
    from .cards import CardIndex
    from .rpc import CallContext, JsonRpcDispatcher

log = structlog.get_logger("noosphere.mars")

STAGES = ("vector", "filter", "rank")


class MarsService:
    def __init__(self, recruiter: Recruiter, cards: CardIndex, *, sync_interval_s: float = 1.0):
        self.recruiter = recruiter
        self._cards = cards
        self._seen: dict[str, int] = {}  # card id -> seq indexed
        self._active = asyncio.Event()
        self._lock = asyncio.Lock()
        self.sync_interval_s = sync_interval_s

    async def sync(self) -> int:
        """Apply card changes to the index; returns how many profiles changed."""
        async with self._lock:
            now = now_ms()
            current = {c.card_id: c for c in self._cards.list(now)}
            changed = []
            for card_id, stored in current.items():
                if self._seen.get(card_id) == stored.seq:
                    continue
                try:
                    profile = profile_from_card(card_id, AgentCard.model_validate(stored.card))
                except (CardError, ValueError) as exc:
                    log.warning("card not indexed", card_id=card_id, error=str(exc))
                    continue
                changed.append((profile, stored.seq))
            if changed:
                await asyncio.to_thread(self.recruiter.upsert_many, [p for p, _ in changed])
                self._seen.update({p.agent_id: seq for p, seq in changed})
            gone = [card_id for card_id in self._seen if card_id not in current]
            for card_id in gone:
                self.recruiter.remove(card_id)
                del self._seen[card_id]
            return len(changed) + len(gone)

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
            raise RpcError(
                ErrorCode.INVALID_PARAMS,
                f"Invalid params: stages must include 'vector' and be among {', '.join(STAGES)}",
            )
        self._active.set()
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
                trusted_issuers=(
                    frozenset(params.trusted_issuers)
                    if params.trusted_issuers is not None
                    else None
                ),
            ),
            use_filter="filter" in params.stages,
            use_ranking="rank" in params.stages,
        )
        try:
            result = await self.recruiter.recruit(query, requester=requester, now_ms=now_ms())
        except ValueError as exc:  # a malformed policy
            raise RpcError(ErrorCode.INVALID_PARAMS, f"Invalid params: {exc}") from exc
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
        )


def register_mars_api(
    dispatcher: JsonRpcDispatcher, service: MarsService, own_peer_id: str
) -> None:
    async def recruit(params: RecruitParams, ctx: CallContext) -> RecruitReply:
        started = time.perf_counter()
        # The operator recruits for this node; a peer (signed request) for itself.
        requester = own_peer_id if ctx.principal in (None, LOCAL_PRINCIPAL) else ctx.principal
        reply = await service.recruit(params, requester)
        log.info(
            "recruit", chosen=len(reply.chosen), ms=round((time.perf_counter() - started) * 1000, 1)
        )
        return reply

    dispatcher.register("noosphere.recruit", RecruitParams, recruit, authenticated=True)
