"""Settle (on the node): the node's account on the ledger, for both sides of a paid task.

As the agent's node it admits a task for a priced agent only with a usable escrow (right chain and
contract, this node as payee, enough funds, a deadline far enough away, never used before), binds
the escrow to the task in the same transaction that stores the task, commits the result hash on
chain before the task is reported completed, and claims the payment after ``deadline + grace`` if
the requester stayed silent. As the requester's node it opens escrows (one EIP-2612 permit plus
one call), releases them when a result is accepted, records the rating on the registry, and
refunds escrows whose agent failed once their deadline passed.

Chain calls run in worker threads (web3 is synchronous); store writes stay on the event loop.
Every step is written to the ``payments`` table first, so a restarted node resumes its refunds and
claims. States: agent side ``bound`` -> ``committed`` -> ``paid`` | ``claimed`` (or ``unpaid``
when the task did not complete, ``late`` when the commit missed the deadline); requester side
``opening`` -> ``open`` -> ``released`` | ``refund`` -> ``refunded`` | ``agent-committed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import structlog
from pydantic import ValidationError

from noosphere.ledger.client import EscrowStatus, LedgerClient, LedgerError
from noosphere.protocol import ErrorCode, RpcError
from noosphere.protocol.a2a import Message, Task
from noosphere.protocol.api import EmptyParams, LedgerStatus
from noosphere.protocol.base import describe_validation_error
from noosphere.protocol.canonical import canonical_json
from noosphere.protocol.payment import (
    PAYMENT_METADATA_KEY,
    PaymentRef,
    PaymentTerms,
    result_hash,
)
from noosphere.protocol.rpcauth import LOCAL_PRINCIPAL

from .rpc import CallContext, JsonRpcDispatcher
from .store import NodeStore, StoredPayment

log = structlog.get_logger("noosphere.settlement")

T = TypeVar("T")

WORKER_INTERVAL_S = 2.0
RETRY_AFTER_S = 10
PAID_TO_AGENT = {EscrowStatus.RELEASED, EscrowStatus.CLAIMED, EscrowStatus.RESOLVED_FOR_AGENT}


@dataclass(frozen=True, slots=True)
class Admission:
    """A verified escrow for a new task, not yet bound to it."""

    escrow_id: str
    amount: int
    deadline: int
    requester: str


def artifacts_hash(task: Task) -> str:
    """The result commitment for a task: its artifacts, canonical JSON, hashed (see protocol)."""
    return result_hash(canonical_json([a.to_wire() for a in task.artifacts]))


def _now_s() -> int:
    return int(time.time())


class Settlement:
    """The node's ledger account. ``prices`` maps this node's agent ids to their price."""

    def __init__(
        self,
        client: LedgerClient,
        store: NodeStore,
        prices: Mapping[str, int],
        *,
        own_principals: frozenset[str] = frozenset(),
        min_window_s: int = 30,
    ) -> None:
        self.client = client
        self._store = store
        self._prices = dict(prices)
        self._own_principals = own_principals  # the operator and the node itself never pay
        self._min_window_s = min_window_s
        self._wake = asyncio.Event()
        self.registry_ids: dict[str, int] = {}
        self._register_warned = False
        for agent_id in self._prices:
            saved = store.get_meta(f"registry_id:{agent_id}")
            if saved is not None:
                self.registry_ids[agent_id] = int(saved)

    @property
    def address(self) -> str:
        return self.client.address

    @property
    def chain_id(self) -> int:
        return self.client.chain_id

    @property
    def escrow_address(self) -> str:
        return self.client.deployment.escrow

    async def _chain(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    # ---- agent side ----------------------------------------------------------------------------

    def price_of(self, agent_id: str) -> int:
        return self._prices.get(agent_id, 0)

    def terms(self, agent_id: str, reason: str) -> PaymentTerms:
        deployment = self.client.deployment
        return PaymentTerms(
            agent=agent_id,
            price=str(self.price_of(agent_id)),
            token=deployment.token,
            pay_to=self.address,
            chain_id=deployment.chain_id,
            escrow=deployment.escrow,
            min_deadline_s=self._min_window_s,
            reason=reason,
        )

    def _required(self, agent_id: str, reason: str) -> RpcError:
        terms = self.terms(agent_id, reason)
        return RpcError(
            ErrorCode.PAYMENT_REQUIRED,
            f"Payment required: {reason}",
            terms.to_wire(),
        )

    async def admit(self, agent_id: str, message: Message, principal: str) -> Admission | None:
        """Check the escrow a new task for ``agent_id`` carries; None if the agent is free (or
        the caller is this node's own operator or the node itself: nobody pays themselves)."""
        price = self.price_of(agent_id)
        if price <= 0 or principal in self._own_principals:
            return None
        raw = (message.metadata or {}).get(PAYMENT_METADATA_KEY)
        if raw is None:
            raise self._required(
                agent_id,
                f"agent {agent_id} charges {price}; open an escrow for it and reference it in"
                f" message.metadata[{PAYMENT_METADATA_KEY!r}]",
            )
        try:
            ref = PaymentRef.model_validate(raw)
        except ValidationError as exc:
            raise RpcError(
                ErrorCode.INVALID_PARAMS,
                f"Invalid params: {PAYMENT_METADATA_KEY}: {describe_validation_error(exc)}",
            ) from exc
        if ref.chain_id != self.chain_id or ref.escrow.lower() != self.escrow_address.lower():
            raise self._required(
                agent_id,
                f"the escrow must be on chain {self.chain_id} at {self.escrow_address}",
            )
        if self._store.get_payment(ref.escrow_id) is not None:
            raise self._required(agent_id, f"escrow {ref.escrow_id} already paid for a task")
        try:
            view = await self._chain(self.client.get_escrow, ref.escrow_id)
            now = await self._chain(self.client.timestamp)
        except (LedgerError, OSError) as exc:
            log.warning("escrow check failed", escrow_id=ref.escrow_id, error=str(exc))
            raise RpcError(
                ErrorCode.INTERNAL_ERROR, "this node cannot read the ledger right now; try again"
            ) from exc
        problem = None
        if view.status != EscrowStatus.OPEN:
            problem = f"escrow {ref.escrow_id} is {view.status.name.lower()}, not open"
        elif view.agent.lower() != self.address.lower():
            problem = f"escrow {ref.escrow_id} pays {view.agent}, not this agent ({self.address})"
        elif view.amount < price:
            problem = f"escrow {ref.escrow_id} holds {view.amount}, the price is {price}"
        elif view.deadline < now + self._min_window_s:
            problem = (
                f"escrow {ref.escrow_id} ends in {max(0, view.deadline - now)} s;"
                f" at least {self._min_window_s} s are needed"
            )
        if problem is not None:
            raise self._required(agent_id, problem)
        return Admission(ref.escrow_id, view.amount, view.deadline, view.requester)

    def bind(self, admission: Admission, task_id: str, agent_id: str) -> None:
        """Tie the escrow to the task (call inside the transaction that stores the task)."""
        row = StoredPayment(
            escrow_id=admission.escrow_id,
            role="agent",
            task_id=task_id,
            state="bound",
            due_at=admission.deadline + 1,  # unpaid after the deadline unless committed
            updated_at=_now_s(),
            payment={
                "agent": agent_id,
                "amount": str(admission.amount),
                "deadline": admission.deadline,
                "requester": admission.requester,
            },
        )
        if not self._store.insert_payment(row):
            raise self._required(agent_id, f"escrow {admission.escrow_id} already paid for a task")

    async def before_completion(self, task: Task) -> str | None:
        """Commit the result hash of a paid task before it is reported completed; returns the
        commitment, or None if the task is not paid through an escrow (or the commit failed)."""
        rows = [p for p in self._store.payments_for_task(task.id) if p.role == "agent"]
        if not rows or rows[0].state != "bound":
            return None
        row = rows[0]
        commitment = artifacts_hash(task)
        try:
            await self._chain(
                self.client.commit_result, row.escrow_id, bytes.fromhex(commitment[2:])
            )
        except (LedgerError, OSError) as exc:
            log.warning("result commit failed", escrow_id=row.escrow_id, error=str(exc))
            self._update(row, "late", payment={"error": str(exc)})
            return None
        grace = self.client.deployment.grace_period_s
        self._update(
            row, "committed", due_at=row.payment["deadline"] + grace + 1,
            payment={"resultHash": commitment},
        )  # fmt: skip
        return commitment

    def task_ended(self, task_id: str, completed: bool) -> None:
        """A task that will not be committed (failed, rejected, canceled) leaves its escrow to
        the requester's refund."""
        for row in self._store.payments_for_task(task_id):
            if row.role == "agent" and row.state == "bound" and not completed:
                self._update(row, "unpaid")

    # ---- requester side ------------------------------------------------------------------------

    async def open_escrow(
        self, escrow_id: str, submission_id: str, agent: str, amount: int, deadline: int
    ) -> PaymentRef:
        """Lock ``amount`` for ``agent`` until ``deadline`` (unix s) under ``escrow_id``."""
        row = StoredPayment(
            escrow_id=escrow_id,
            role="requester",
            task_id=submission_id,
            state="opening",
            due_at=deadline + 1,
            updated_at=_now_s(),
            payment={"agent": agent, "amount": str(amount), "deadline": deadline},
        )
        self._store.put_payment(row)

        try:
            await self._chain(
                self.client.open_escrow_with_permit, escrow_id, agent, amount, deadline
            )
        except (LedgerError, OSError) as exc:
            self._update(row, "refund")  # if it opened after all, the worker refunds it
            raise LedgerError(f"cannot open the escrow: {exc}") from exc
        self._update(row, "open")
        return PaymentRef(chain_id=self.chain_id, escrow=self.escrow_address, escrow_id=escrow_id)

    async def release(self, escrow_id: str, expected_hash: str | None) -> str:
        """Pay the agent. With ``expected_hash`` the agent's on-chain commitment must match the
        result received (otherwise nothing is paid and a ``LedgerError`` says why)."""
        row = self._row(escrow_id)
        view = await self._chain(self.client.get_escrow, escrow_id)
        if expected_hash is not None and (view.result_hash or "").lower() != expected_hash:
            raise LedgerError(
                f"escrow {escrow_id}: the agent committed {view.result_hash or 'nothing'},"
                f" the result received hashes to {expected_hash}"
            )
        receipt = await self._chain(self.client.release, escrow_id)
        self._update(row, "released")
        return "0x" + bytes(receipt["transactionHash"]).hex()

    async def rate_on_chain(self, registry_id: int, escrow_id: str, score: int, uri: str) -> None:
        await self._chain(self.client.give_feedback, registry_id, escrow_id, score, uri)

    def refund_later(self, escrow_id: str) -> None:
        """The agent failed: refund once the escrow's deadline has passed."""
        row = self._row(escrow_id)
        if row.state in ("opening", "open"):
            self._update(row, "refund")
            self._wake.set()

    async def balance(self) -> int:
        return await self._chain(self.client.balance_of, None)

    def payments(self) -> list[StoredPayment]:
        return self._store.list_payments()

    # ---- the worker ------------------------------------------------------------------------------

    async def run(
        self,
        register: Callable[[], list[tuple[str, str, bytes, str]]],
        registered: Callable[[], None],
    ) -> None:
        """Register this node's agents on the registry (``registered`` is called when one got its
        id, so cards can carry it), then refund, claim and settle what is due, every few
        seconds; chain errors are logged and retried, never fatal."""
        while True:
            try:
                if await self._register(register):
                    registered()
                await self._settle_due()
            except Exception:  # the ledger may be down; never stop the node for it
                log.exception("settlement worker round failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), WORKER_INTERVAL_S)

    async def _register(self, register: Callable[[], list[tuple[str, str, bytes, str]]]) -> bool:
        if self._prices.keys() <= self.registry_ids.keys():
            return False  # every agent has its identity (no card hashing every round)
        todo = [r for r in register() if r[0] not in self.registry_ids]
        for agent_id, card_uri, card_hash, peer_id in todo:
            try:
                registry_id = await self._chain(
                    self.client.register_agent, card_uri, card_hash, peer_id
                )
            except (LedgerError, OSError) as exc:
                if not self._register_warned:
                    log.warning("agent registration failed; retrying", agent=agent_id,
                                error=str(exc))  # fmt: skip
                    self._register_warned = True
                return False
            self.registry_ids[agent_id] = registry_id
            self._store.set_meta(f"registry_id:{agent_id}", str(registry_id))
            log.info("agent registered on the ledger", agent=agent_id, registry_id=registry_id)
        return bool(todo)

    async def _settle_due(self) -> None:
        for row in self._store.payments_due(["refund", "committed", "bound"], _now_s()):
            try:
                if row.state == "refund":
                    await self._refund(row)
                elif row.state == "committed":
                    await self._claim(row)
                else:  # bound past its deadline: the task never completed here
                    self._update(row, "unpaid")
            except (LedgerError, OSError) as exc:
                log.warning("settlement step failed", escrow_id=row.escrow_id, error=str(exc))
                self._update(row, row.state, due_at=_now_s() + RETRY_AFTER_S)

    async def _refund(self, row: StoredPayment) -> None:
        view = await self._chain(self.client.get_escrow, row.escrow_id)
        if view.status == EscrowStatus.NONE:  # never opened (the open failed)
            self._update(row, "refunded", payment={"note": "never opened"})
        elif view.status == EscrowStatus.OPEN:
            await self._chain(partial(self.client.refund, row.escrow_id, unestimated=True))
            self._update(row, "refunded")
            log.info("escrow refunded", escrow_id=row.escrow_id, amount=view.amount)
        elif view.status == EscrowStatus.COMMITTED:  # the agent says it delivered
            self._update(row, "agent-committed", payment={"resultHash": view.result_hash})
        else:
            self._update(row, view.status.name.lower().replace("_", "-"))

    async def _claim(self, row: StoredPayment) -> None:
        view = await self._chain(self.client.get_escrow, row.escrow_id)
        if view.status in PAID_TO_AGENT:
            self._update(row, "paid")
        elif view.status == EscrowStatus.COMMITTED:
            await self._chain(partial(self.client.claim, row.escrow_id, unestimated=True))
            self._update(row, "claimed")
            log.info("escrow claimed", escrow_id=row.escrow_id, amount=view.amount)
        else:
            self._update(row, "unpaid")

    # ---- records ------------------------------------------------------------------------------

    def _row(self, escrow_id: str) -> StoredPayment:
        row = self._store.get_payment(escrow_id)
        if row is None:
            raise LedgerError(f"no payment record for escrow {escrow_id}")
        return row

    def _update(
        self,
        row: StoredPayment,
        state: str,
        *,
        due_at: int | None = None,
        payment: Mapping[str, Any] | None = None,
    ) -> StoredPayment:
        fresh = self._store.get_payment(row.escrow_id) or row
        updated = StoredPayment(
            escrow_id=fresh.escrow_id,
            role=fresh.role,
            task_id=fresh.task_id,
            state=state,
            due_at=fresh.due_at if due_at is None else due_at,
            updated_at=_now_s(),
            payment={**fresh.payment, **(payment or {})},
        )
        self._store.put_payment(updated)
        return updated


def register_ledger_api(dispatcher: JsonRpcDispatcher, settlement: Settlement | None) -> None:
    async def status(_: EmptyParams, ctx: CallContext) -> LedgerStatus:
        if ctx.principal != LOCAL_PRINCIPAL:
            raise RpcError(ErrorCode.UNAUTHORIZED, "Unauthorized: only the node's operator")
        if settlement is None:
            raise RpcError(
                ErrorCode.UNSUPPORTED_OPERATION, "this node has no ledger (set chain_home)"
            )
        try:
            balance = await settlement.balance()
        except (LedgerError, OSError) as exc:
            raise RpcError(ErrorCode.INTERNAL_ERROR, f"cannot read the ledger: {exc}") from exc
        deployment = settlement.client.deployment
        return LedgerStatus(
            address=settlement.address,
            chain_id=settlement.chain_id,
            balance=str(balance),
            token=deployment.token,
            escrow=deployment.escrow,
            registry_ids=dict(settlement.registry_ids),
            payments=[
                {
                    "escrowId": p.escrow_id,
                    "role": p.role,
                    "taskId": p.task_id,
                    "state": p.state,
                    **p.payment,
                }
                for p in settlement.payments()
            ],
        )

    dispatcher.register("noosphere.ledger.status", EmptyParams, status, authenticated=True)
