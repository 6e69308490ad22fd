"""Settle (on the node): the node's account on the ledger, for both sides of a paid task.

As the agent's node it admits a task for a priced agent only with a usable escrow (right chain and
contract, this node as payee, enough funds, a deadline far enough away, an arbiter it accepts, never
used before) that the caller may spend: the escrow's requester signed a payment authorization for
exactly this caller and message. It binds the escrow to the task in the same transaction that
stores the task, commits the result hash on chain before the task is reported completed, and claims
the payment after ``deadline + grace`` if the requester stayed silent. As the requester's node it
opens escrows naming its arbiter (one EIP-2612 permit plus one call), authorizes each message,
releases an escrow when the result matches the agent's commitment, disputes it when it does not (or
when its operator rejects the result), refunds escrows whose agent failed once their deadline
passed and disputes the arbiter left unanswered, and rates agents on the registry only through
entries whose peer-key proof holds. It registers its own agents with such a proof. It also reads
the registry's paid ratings for the trust model's registry prior (``mars.registry_prior``): only
ratings of entries whose proof holds, with the escrow amount behind each.

Chain calls run in worker threads (web3 is synchronous); store writes stay on the event loop.
Every step is written to the ``payments`` table first, so a restarted node resumes its refunds and
claims. States: agent side ``bound`` -> ``committed`` -> ``paid`` | ``claimed`` | ``disputed`` ->
``paid`` | ``unpaid`` (or ``unpaid`` when the task did not complete, ``late`` when the commit
missed the deadline); requester side ``opening`` -> ``open`` -> ``released`` | ``delivered``
(awaiting the operator) | ``disputed`` -> ``refunded`` | ``resolved-*`` | ``refund`` ->
``refunded`` | ``agent-committed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import structlog
from pydantic import ValidationError

from noosphere.errors import InvalidParams, PaymentRequired, ServerError
from noosphere.ledger import EscrowStatus, EscrowView, LedgerClient, LedgerError
from noosphere.ledger.registry_proof import RegistryEntry, proof_problem, sign_registration
from noosphere.mars.registry_prior import PaidEscrow, PaidRating, RegistrySnapshot
from noosphere.protocol import NodeKey, card_id
from noosphere.protocol.a2a import Message, Task
from noosphere.protocol.base import describe_validation_error
from noosphere.protocol.canonical import canonical_json
from noosphere.protocol.payment import (
    PAYMENT_METADATA_KEY,
    InvalidAuthorization,
    PaymentRef,
    PaymentTerms,
    authorization_signer,
    authorize_payment,
    result_hash,
)

from .store import NodeStore, StoredPayment

log = structlog.get_logger("noosphere.settlement")

T = TypeVar("T")

WORKER_INTERVAL_S = 2.0
RETRY_AFTER_S = 10
#: How often an agent's node looks again at a dispute past its arbitration period (the requester's
#: node, or anyone, refunds it then; until it does the agent cannot be paid, so no hurry).
SILENT_ARBITER_RECHECK_S = 60
PAID_TO_AGENT = {EscrowStatus.RELEASED, EscrowStatus.CLAIMED, EscrowStatus.RESOLVED_FOR_AGENT}
#: Seconds between re-reads of registry entries (an entry's owner or proof can change).
REGISTRY_ENTRY_TTL_S = 300
#: Arbiter settings: the deployment's default arbiter, and "no arbiter" (as a name or accepted).
DEFAULT_ARBITER = "default"
NO_ARBITER = "none"


class CommitmentMismatch(LedgerError):
    """The agent's on-chain commitment is not the hash of the result received."""

    def __init__(self, escrow_id: str, committed: str | None, delivered: str) -> None:
        super().__init__(
            f"escrow {escrow_id}: the agent committed {committed or 'nothing'},"
            f" the result received hashes to {delivered}"
        )
        self.committed = committed
        self.delivered = delivered


class ResultNotCommitted(LedgerError):
    """The agent's node could not commit a paid task's result hash on chain."""

    def __init__(self, escrow_id: str, error: str) -> None:
        super().__init__(f"escrow {escrow_id}: the result could not be committed on chain: {error}")
        self.escrow_id = escrow_id


def resolve_arbiter(setting: str, default: str | None) -> str | None:
    """The arbiter address a requester's ``arbiter`` setting names (None: no arbiter)."""
    if setting == NO_ARBITER:
        return None
    if setting == DEFAULT_ARBITER:
        return default
    return setting


def resolve_accepted_arbiters(
    settings: Sequence[str], default: str | None
) -> tuple[frozenset[str], bool]:
    """(accepted arbiter addresses, lower-cased; whether escrows without an arbiter are accepted)
    from an agent's ``accepted_arbiters`` setting."""
    addresses = set()
    for setting in settings:
        address = None if setting == NO_ARBITER else resolve_arbiter(setting, default)
        if address is not None:
            addresses.add(address.lower())
    return frozenset(addresses), NO_ARBITER in settings


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
        key: NodeKey | None = None,
        own_principals: frozenset[str] = frozenset(),
        min_window_s: int = 30,
        arbiter: str = DEFAULT_ARBITER,
        accepted_arbiters: Sequence[str] = (DEFAULT_ARBITER, NO_ARBITER),
    ) -> None:
        self.client = client
        self._store = store
        self._prices = dict(prices)
        self._key = key  # signs registry proofs
        self._own_principals = own_principals  # the operator and the node itself never pay
        self._min_window_s = min_window_s
        default = client.deployment.arbiter
        self.arbiter = resolve_arbiter(arbiter, default)
        self.accepted_arbiters, self.accepts_no_arbiter = resolve_accepted_arbiters(
            accepted_arbiters, default
        )
        self._wake = asyncio.Event()
        self.registry_ids: dict[str, int] = {}
        self._registry_checked = False
        self._register_warned = False
        # the registry prior: FeedbackGiven events read so far, and entries checked
        self._feedback_next_block: int | None = None
        self._paid: list[tuple[int, str, str, int, int, int, str]] = []  # per FeedbackGiven
        self._opened: list[PaidEscrow] = []  # per EscrowOpened
        self._expired = 0
        self._entries: dict[int, tuple[RegistryEntry | None, float]] = {}  # id -> (proven, read)
        for agent_id in self._prices:
            saved = store.get_meta(self._registry_key(agent_id))
            if saved is not None:
                self.registry_ids[agent_id] = int(saved)

    def _registry_key(self, agent_id: str) -> str:
        return f"registry_id:{self.client.deployment.registry.lower()}:{agent_id}"

    @property
    def address(self) -> str:
        return self.client.address

    @property
    def chain_id(self) -> int:
        return self.client.chain_id

    @property
    def escrow_address(self) -> str:
        return self.client.deployment.escrow

    @property
    def token_address(self) -> str:
        return self.client.deployment.token

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
            arbiters=sorted(self.accepted_arbiters),
            arbiter_required=not self.accepts_no_arbiter,
        )

    def _required(self, agent_id: str, reason: str) -> PaymentRequired:
        terms = self.terms(agent_id, reason)
        return PaymentRequired(f"Payment required: {reason}", terms.to_wire())

    async def admit(self, agent_id: str, message: Message, principal: str) -> Admission | None:
        """Check the escrow a new task for ``agent_id`` carries; None if the agent is free (or
        the caller is this node's own operator or the node itself: nobody pays themselves).

        The escrow must be spendable by the caller: its requester's EVM key signed a payment
        authorization for ``principal`` (the authenticated caller) and this message. Everything
        that needs no chain read is checked first, and a refused escrow is never bound, so a
        stranger presenting someone else's escrow id leaves it to its owner."""
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
            raise InvalidParams(
                f"Invalid params: {PAYMENT_METADATA_KEY}: {describe_validation_error(exc)}",
            ) from exc
        if ref.chain_id != self.chain_id or ref.escrow.lower() != self.escrow_address.lower():
            raise self._required(
                agent_id,
                f"the escrow must be on chain {self.chain_id} at {self.escrow_address}",
            )
        signer = self._authorized_signer(agent_id, ref, message, principal)
        if self._store.get_payment(ref.escrow_id) is not None:
            raise self._required(agent_id, f"escrow {ref.escrow_id} already paid for a task")
        try:
            view = await self._chain(self.client.escrows.get, ref.escrow_id)
            now = await self._chain(self.client.timestamp)
        except (LedgerError, OSError) as exc:
            log.warning("escrow check failed", escrow_id=ref.escrow_id, error=str(exc))
            raise ServerError("this node cannot read the ledger right now; try again") from exc
        problem = self._escrow_problem(ref.escrow_id, view, price, now, signer)
        if problem is not None:
            raise self._required(agent_id, problem)
        return Admission(ref.escrow_id, view.amount, view.deadline, view.requester)

    def _authorized_signer(
        self, agent_id: str, ref: PaymentRef, message: Message, principal: str
    ) -> str:
        """Who authorized ``principal`` to pay with ``ref`` for ``message`` (not yet compared
        with the escrow's requester, which needs the chain)."""
        auth = ref.authorization
        if auth is None:
            raise self._required(
                agent_id,
                f"escrow {ref.escrow_id}: the payment reference carries no authorization; the"
                " escrow's requester must sign it for the calling peer and this message",
            )
        if auth.principal != principal:
            raise self._required(
                agent_id,
                f"escrow {ref.escrow_id} is authorized for {auth.principal}, not for the caller"
                f" {principal}",
            )
        if auth.message_id != message.message_id:
            raise self._required(
                agent_id,
                f"escrow {ref.escrow_id} is authorized for message {auth.message_id!r}, not"
                f" {message.message_id!r}",
            )
        try:
            return authorization_signer(ref)
        except InvalidAuthorization as exc:
            raise self._required(agent_id, f"escrow {ref.escrow_id}: {exc}") from exc

    def _escrow_problem(
        self, escrow_id: str, view: EscrowView, price: int, now: int, signer: str
    ) -> str | None:
        if view.status != EscrowStatus.OPEN:
            return f"escrow {escrow_id} is {view.status.name.lower()}, not open"
        if signer.lower() != view.requester.lower():
            return (
                f"escrow {escrow_id}: the authorization is signed by {signer}, not by the"
                f" escrow's requester {view.requester}"
            )
        if view.agent.lower() != self.address.lower():
            return f"escrow {escrow_id} pays {view.agent}, not this agent ({self.address})"
        if view.amount < price:
            return f"escrow {escrow_id} holds {view.amount}, the price is {price}"
        if view.deadline < now + self._min_window_s:
            return (
                f"escrow {escrow_id} ends in {max(0, view.deadline - now)} s;"
                f" at least {self._min_window_s} s are needed"
            )
        if view.arbiter is None and not self.accepts_no_arbiter:
            accepted = ", ".join(sorted(self.accepted_arbiters)) or "none"
            return f"escrow {escrow_id} names no arbiter; this agent requires one of: {accepted}"
        if view.arbiter is not None and view.arbiter.lower() not in self.accepted_arbiters:
            accepted = ", ".join(sorted(self.accepted_arbiters))
            if self.accepts_no_arbiter:
                accepted = f"{accepted} or none" if accepted else "none"
            return f"escrow {escrow_id} names arbiter {view.arbiter}; this agent accepts {accepted}"
        return None

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
        commitment, or None if the task is not paid through an escrow. A failed commit is logged;
        if the escrow then holds no commitment at all (no gas, the chain unreachable) it raises
        ``ResultNotCommitted``: the task must fail, not complete (nobody could be paid for it),
        and say why."""
        rows = [p for p in self._store.payments_for_task(task.id) if p.role == "agent"]
        if not rows or rows[0].state != "bound":
            return None
        row = rows[0]
        commitment = artifacts_hash(task)
        try:
            await self._chain(
                self.client.escrows.commit_result, row.escrow_id, bytes.fromhex(commitment[2:])
            )
        except (LedgerError, OSError) as exc:
            log.warning("result commit failed", escrow_id=row.escrow_id, error=str(exc))
            self._update(row, "late", payment={"error": str(exc)})
            if not await self._holds_a_commitment(row.escrow_id):
                raise ResultNotCommitted(row.escrow_id, str(exc)) from exc
            return None  # committed already (by this node's key): the requester compares
        grace = self.client.deployment.grace_period_s
        self._update(
            row,
            "committed",
            due_at=row.payment["deadline"] + grace + 1,
            payment={"resultHash": commitment},
        )
        return commitment

    async def _holds_a_commitment(self, escrow_id: str) -> bool:
        try:
            view = await self._chain(self.client.escrows.get, escrow_id)
        except (LedgerError, OSError):
            return False
        return view.result_hash is not None

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
        """Lock ``amount`` for ``agent`` until ``deadline`` (unix s) under ``escrow_id``, naming
        this node's arbiter; the reference still needs ``authorize`` for each message."""
        arbiter = self.arbiter
        if arbiter is not None and arbiter.lower() in (agent.lower(), self.address.lower()):
            raise LedgerError(
                f"cannot open the escrow: {arbiter} is this node's arbiter and a party to the"
                " escrow (set arbiter in the node config to a third party or 'none')"
            )
        row = StoredPayment(
            escrow_id=escrow_id,
            role="requester",
            task_id=submission_id,
            state="opening",
            due_at=deadline + 1,
            updated_at=_now_s(),
            payment={
                "agent": agent,
                "amount": str(amount),
                "deadline": deadline,
                "arbiter": arbiter,
            },
        )
        self._store.put_payment(row)

        try:
            await self._chain(
                self.client.escrows.open_with_permit, escrow_id, agent, amount, deadline, arbiter
            )
        except (LedgerError, OSError) as exc:
            self._update(row, "refund")  # if it opened after all, the worker refunds it
            raise LedgerError(f"cannot open the escrow: {exc}") from exc
        self._update(row, "open")
        return PaymentRef(chain_id=self.chain_id, escrow=self.escrow_address, escrow_id=escrow_id)

    def authorize(self, ref: PaymentRef, principal: str, message_id: str) -> PaymentRef:
        """``ref`` signed by this node's ledger account for ``principal`` (this node's peer id)
        and the message ``message_id``: only that caller can spend the escrow, for that message."""
        return authorize_payment(ref, self.client.account, principal, message_id)

    async def release(self, escrow_id: str, expected_hash: str | None) -> str:
        """Pay the agent. With ``expected_hash`` the agent's on-chain commitment must match the
        result received (otherwise nothing is paid and ``CommitmentMismatch`` says why)."""
        row = self._row(escrow_id)
        view = await self._chain(self.client.escrows.get, escrow_id)
        if expected_hash is not None and (view.result_hash or "").lower() != expected_hash:
            raise CommitmentMismatch(escrow_id, view.result_hash, expected_hash)
        receipt = await self._chain(self.client.escrows.release, escrow_id)
        self._update(row, "released")
        return "0x" + bytes(receipt["transactionHash"]).hex()

    async def check_commitment(self, escrow_id: str, delivered_hash: str) -> None:
        """Raise ``CommitmentMismatch`` unless the agent committed ``delivered_hash``; record the
        escrow as delivered (the operator releases or disputes it)."""
        row = self._row(escrow_id)
        view = await self._chain(self.client.escrows.get, escrow_id)
        if (view.result_hash or "").lower() != delivered_hash:
            raise CommitmentMismatch(escrow_id, view.result_hash, delivered_hash)
        until = view.deadline + self.client.deployment.grace_period_s
        # looked at again once the agent may claim (then it is no longer this node's to decide)
        self._update(
            row,
            "delivered",
            due_at=until + 1,
            payment={"resultHash": view.result_hash, "disputeUntil": until},
        )

    def has_arbiter(self, escrow_id: str) -> bool:
        """Whether this node named an arbiter in the escrow it opened (so it can dispute)."""
        row = self._store.get_payment(escrow_id)
        return row is not None and bool(row.payment.get("arbiter"))

    async def dispute(self, escrow_id: str, delivered_hash: str | None, reason: str) -> str:
        """Contest the agent's committed result before the arbiter: ``claim`` is blocked until it
        resolves; if it stays silent for the arbitration period the worker refunds the escrow."""
        row = self._row(escrow_id)
        if row.role != "requester":
            raise LedgerError(f"escrow {escrow_id} was not opened by this node")
        view = await self._chain(self.client.escrows.get, escrow_id)
        if view.arbiter is None:
            raise LedgerError(f"escrow {escrow_id} names no arbiter: nobody can hear a dispute")
        if view.status != EscrowStatus.COMMITTED:
            raise LedgerError(
                f"escrow {escrow_id} is {view.status.name.lower()}; only an escrow whose agent"
                " committed a result (and nothing settled yet) can be disputed"
            )
        receipt = await self._chain(self.client.escrows.dispute, escrow_id, delivered_hash, reason)
        disputed = await self._chain(self.client.escrows.get, escrow_id)
        period = self.client.deployment.arbitration_period_s
        self._update(
            row,
            "disputed",
            due_at=disputed.disputed_at + period + 1,
            payment={
                "reason": reason,
                "deliveredHash": delivered_hash,
                "resultHash": view.result_hash,
                "arbiter": view.arbiter,
                "disputedAt": disputed.disputed_at,
            },
        )
        self._wake.set()
        log.info("escrow disputed", escrow_id=escrow_id, arbiter=view.arbiter)
        return "0x" + bytes(receipt["transactionHash"]).hex()

    def delivered_hash(self, escrow_id: str) -> str | None:
        """The hash of the result this node received for ``escrow_id``'s attempt, if any."""
        row = self._store.get_payment(escrow_id)
        if row is None or row.role != "requester":
            return None
        body = self._store.get_submission(row.task_id)
        attempts = (body or {}).get("attempts") or []
        winner = attempts[-1] if attempts else {}
        if body is None or body.get("result") is None or winner.get("escrowId") != escrow_id:
            return None
        try:
            return artifacts_hash(Task.model_validate(body["result"]))
        except ValidationError:
            return None

    async def rate_on_chain(
        self,
        registry_id: int,
        escrow_id: str,
        score: int,
        uri: str,
        *,
        peer_id: str,
        agent_name: str,
        owner: str,
    ) -> None:
        """Record ``score`` on the registry entry ``registry_id``, only if that entry is the
        proven identity of ``agent_name`` on ``peer_id`` paid at ``owner`` (LedgerError if not)."""
        problem = await self._chain(
            partial(
                self.client.registry.registration_problem,
                registry_id,
                peer_id=peer_id,
                agent_name=agent_name,
                owner=owner,
            )
        )
        if problem is not None:
            raise LedgerError(f"not rated on chain: {problem}")
        await self._chain(self.client.registry.give_feedback, registry_id, escrow_id, score, uri)

    # ---- the registry prior (reading scores only) ---------------------------------------------

    async def registry_ratings(self) -> RegistrySnapshot | None:
        """The registry's paid ratings whose entry's proof holds, the expired escrows, and which
        account belongs to which node (owners of proven entries); None when nothing changed
        since the last call. Events are read incrementally; entries are re-read every few
        minutes (a transfer or an update may change their owner or proof)."""
        return await self._chain(self._read_registry)

    def _read_registry(self) -> RegistrySnapshot | None:
        client = self.client
        latest = client.w3.eth.block_number
        start = self._feedback_next_block
        if start is None:
            start = client.deployment.block_number
        changed = start <= latest
        if changed:
            for event in client.registry.feedback_given(start, latest):
                amount = client.escrows.get(event.task_id).amount
                self._paid.append(
                    (
                        event.agent_id,
                        event.client.lower(),
                        event.task_id,
                        event.score,
                        amount,
                        event.timestamp * 1000,
                        event.uri,
                    )
                )
            self._opened += [
                PaidEscrow(
                    e.requester.lower(), e.agent.lower(), e.amount, e.deadline * 1000, e.task_id
                )
                for e in client.escrows.opened(start, latest)
            ]
        self._feedback_next_block = latest + 1
        chain_now_ms = client.timestamp() * 1000
        expired = [e for e in self._opened if e.deadline_ms < chain_now_ms]
        changed |= len(expired) != self._expired
        self._expired = len(expired)
        now = time.monotonic()
        stale = [i for i, (_, at) in self._entries.items() if now - at > REGISTRY_ENTRY_TTL_S]
        wanted = set(range(1, client.registry.total() + 1))  # every entry: owners link to nodes
        for registry_id in sorted(set(stale) | (wanted - self._entries.keys())):
            self._entries[registry_id] = (self._proven_entry(registry_id), now)
            changed = True
        if not changed:
            return None
        linked: dict[str, str] = {}
        agents_of: dict[str, list[str]] = {}
        for entry, _ in self._entries.values():
            if entry is not None:
                linked.setdefault(entry.owner.lower(), entry.peer_id)
                agent = card_id(entry.peer_id, entry.agent_name)
                agents_of.setdefault(entry.owner.lower(), []).append(agent)
        ratings = []
        for registry_id, rater, escrow_id, score, amount, at_ms, uri in self._paid:
            entry = self._entries.get(registry_id, (None, 0.0))[0]
            if entry is None:
                continue  # the entry's proof fails: not the peer's agent
            ratings.append(
                PaidRating(
                    agent=card_id(entry.peer_id, entry.agent_name),
                    rater=rater,
                    owner=entry.owner.lower(),
                    score=score,
                    amount=amount,
                    at_ms=at_ms,
                    escrow_id=escrow_id,
                    uri=uri,
                )
            )
        return RegistrySnapshot(ratings, linked, expired, agents_of)

    def _proven_entry(self, registry_id: int) -> RegistryEntry | None:
        """The entry if its peer-key proof holds, else None (logged once per read)."""
        try:
            entry = self.client.registry.get(registry_id)
        except LedgerError:
            return None
        deployment = self.client.deployment
        problem = proof_problem(entry, deployment.chain_id, deployment.registry)
        if problem is not None:
            log.info("registry entry ignored", registry_id=registry_id, problem=problem)
            return None
        return entry

    def refund_later(self, escrow_id: str) -> None:
        """The agent failed: refund once the escrow's deadline has passed."""
        row = self._row(escrow_id)
        if row.state in ("opening", "open"):
            self._update(row, "refund")
            self._wake.set()

    async def balance(self) -> int:
        return await self._chain(self.client.tokens.balance_of, None)

    def payments(self) -> list[StoredPayment]:
        return self._store.list_payments()

    # ---- the worker ------------------------------------------------------------------------------

    async def run(
        self,
        register: Callable[[], list[tuple[str, str, bytes, str]]],
        registered: Callable[[], None],
        on_registry: Callable[[RegistrySnapshot], None] | None = None,
    ) -> None:
        """Register this node's agents on the registry (``registered`` is called when one got its
        id, so cards can carry it), then refund, claim and settle what is due, and hand new
        registry ratings to ``on_registry``, every few seconds; chain errors are logged and
        retried, never fatal."""
        while True:
            try:
                if await self._register(register):
                    registered()
                await self._settle_due()
                if on_registry is not None:
                    fresh = await self.registry_ratings()
                    if fresh is not None:
                        on_registry(fresh)
            except Exception:  # the ledger may be down; never stop the node for it
                log.exception("settlement worker round failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), WORKER_INTERVAL_S)

    async def _register(self, register: Callable[[], list[tuple[str, str, bytes, str]]]) -> bool:
        if not self._registry_checked:
            await self._forget_unproven_ids()
        if self._prices.keys() <= self.registry_ids.keys():
            return False  # every agent has its identity (no card hashing every round)
        if self._key is None:
            return False  # no node key: nothing can prove the registration
        deployment = self.client.deployment
        todo = [r for r in register() if r[0] not in self.registry_ids]
        for agent_id, card_uri, card_hash, peer_id in todo:
            proof = sign_registration(
                self._key, deployment.chain_id, deployment.registry, self.address, agent_id
            )
            try:
                registry_id = await self._chain(
                    self.client.registry.register, card_uri, card_hash, peer_id, agent_id, proof
                )
            except (LedgerError, OSError) as exc:
                if not self._register_warned:
                    log.warning(
                        "agent registration failed; retrying", agent=agent_id, error=str(exc)
                    )
                    self._register_warned = True
                return False
            self.registry_ids[agent_id] = registry_id
            self._store.set_meta(self._registry_key(agent_id), str(registry_id))
            log.info("agent registered on the ledger", agent=agent_id, registry_id=registry_id)
        return bool(todo)

    async def _forget_unproven_ids(self) -> None:
        """Once per start: drop saved registry ids that no longer name this node's proven entry
        (a reset chain, a transferred token), so the agents register again."""
        if self._key is None:
            self._registry_checked = True
            return
        for agent_id, registry_id in list(self.registry_ids.items()):
            problem = await self._chain(
                partial(
                    self.client.registry.registration_problem,
                    registry_id,
                    peer_id=self._key.peer_id,
                    agent_name=agent_id,
                    owner=self.address,
                )
            )
            if problem is not None:
                log.warning(
                    "saved registry id is not this agent's; registering again",
                    agent=agent_id,
                    registry_id=registry_id,
                    problem=problem,
                )
                del self.registry_ids[agent_id]
        self._registry_checked = True

    async def _settle_due(self) -> None:
        states = ["refund", "committed", "bound", "disputed", "delivered"]
        for row in self._store.payments_due(states, _now_s()):
            try:
                if row.role == "requester":  # refund, disputed, delivered
                    await self._refund(row)
                elif row.state in ("committed", "disputed"):
                    await self._claim(row)
                else:  # bound past its deadline: the task never completed here
                    self._update(row, "unpaid")
            except (LedgerError, OSError) as exc:
                log.warning("settlement step failed", escrow_id=row.escrow_id, error=str(exc))
                self._update(row, row.state, due_at=_now_s() + RETRY_AFTER_S)

    async def _refund(self, row: StoredPayment) -> None:
        view = await self._chain(self.client.escrows.get, row.escrow_id)
        if view.status == EscrowStatus.NONE:  # never opened (the open failed)
            self._update(row, "refunded", payment={"note": "never opened"})
        elif view.status == EscrowStatus.OPEN:
            await self._chain(partial(self.client.escrows.refund, row.escrow_id, unestimated=True))
            self._update(row, "refunded")
            log.info("escrow refunded", escrow_id=row.escrow_id, amount=view.amount)
        elif view.status == EscrowStatus.COMMITTED:  # the agent says it delivered
            self._update(row, "agent-committed", payment={"resultHash": view.result_hash})
        elif view.status == EscrowStatus.DISPUTED:
            period = self.client.deployment.arbitration_period_s
            if _now_s() <= view.disputed_at + period:  # the arbiter may still decide
                self._update(row, "disputed", due_at=view.disputed_at + period + 1)
                return
            await self._chain(partial(self.client.escrows.refund, row.escrow_id, unestimated=True))
            self._update(row, "refunded", payment={"note": "the arbiter did not decide in time"})
            log.info(
                "disputed escrow refunded: the arbiter stayed silent",
                escrow_id=row.escrow_id,
                amount=view.amount,
            )
        else:
            self._update(row, view.status.name.lower().replace("_", "-"))

    async def _claim(self, row: StoredPayment) -> None:
        view = await self._chain(self.client.escrows.get, row.escrow_id)
        if view.status in PAID_TO_AGENT:
            self._update(row, "paid")
        elif view.status == EscrowStatus.COMMITTED:
            await self._chain(partial(self.client.escrows.claim, row.escrow_id, unestimated=True))
            self._update(row, "claimed")
            log.info("escrow claimed", escrow_id=row.escrow_id, amount=view.amount)
        elif view.status == EscrowStatus.DISPUTED:  # the arbiter decides; look again after
            period = self.client.deployment.arbitration_period_s
            if row.state != "disputed":
                log.warning(
                    "the requester disputed a committed result; the arbiter decides",
                    escrow_id=row.escrow_id,
                    arbiter=view.arbiter,
                )
            decided_by = view.disputed_at + period + 1  # then a silent arbiter means refund
            due = decided_by if _now_s() < decided_by else _now_s() + SILENT_ARBITER_RECHECK_S
            self._update(row, "disputed", due_at=due, payment={"arbiter": view.arbiter})
        else:
            self._update(row, "unpaid", payment={"escrowStatus": view.status.name.lower()})

    # ---- records ------------------------------------------------------------------------------

    def payments_row(self, escrow_id: str) -> StoredPayment | None:
        return self._store.get_payment(escrow_id)

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
