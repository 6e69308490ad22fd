"""All six phases from the requester's node: ``noosphere.tasks.submit`` takes a task in plain words
and runs Recruit (MARS over the card index), Settle's first half (an escrow for the chosen agent's
price, naming this node's arbiter, and an authorization that lets only this node spend it on this
message), Execute (A2A streaming to the agent, parts sealed under an ABE policy if asked), Settle's
second half (release when the result matches the agent's on-chain commitment, a dispute before the
arbiter when it does not; with ``auto_release`` off the operator releases or disputes) and
Feedback (a signed rating gossiped to the network, and the score on the registry entry the card
names, if that entry proves it belongs to the card's node).

An agent that fails, refuses or cannot be reached costs an attempt: its escrow is refunded once its
deadline passes and the next candidate is tried. Each submission is a record in the store, updated
at every step; the operator follows it with ``noosphere.tasks.submission`` (the CLI polls). A
node that restarts mid-submission reports it failed and refunds what it had locked.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import structlog
from pydantic import ValidationError

from noosphere.abe.envelope import MEDIA_TYPE as SEALED_MEDIA_TYPE
from noosphere.abe.keys import AuthorityPublicKey
from noosphere.abe.sealed import seal_parts
from noosphere.errors import (
    InvalidParams,
    LedgerError,
    NoosphereError,
    RequestError,
    TaskNotFound,
)
from noosphere.protocol import AgentCard, NodeKey, RpcError
from noosphere.protocol.a2a import Message, Part, Task, TaskState
from noosphere.protocol.api import (
    FeedbackParams,
    RecruitChoice,
    RecruitParams,
    Submission,
    SubmissionAttempt,
    SubmissionEvent,
    SubmitParams,
)
from noosphere.protocol.feedback import FeedbackError, TaskReceipt, verify_receipt
from noosphere.protocol.payment import PAYMENT_METADATA_KEY, PaymentRef, escrow_id_for

from .a2a_client import A2AClient, text_message
from .auth import PeerAuth
from .cards import CardIndex
from .egress import EgressPolicy
from .feedback_api import FeedbackService
from .mars_api import MarsService
from .settlement import CommitmentMismatch, Settlement, artifacts_hash
from .store import NodeStore

log = structlog.get_logger("noosphere.submit")

#: Ratings given automatically: a completed, verified and paid result; an agent that failed.
RATING_COMPLETED = 1.0
RATING_FAILED = 0.0
_RESTARTED = "the requester node restarted during this submission; submit it again"
#: An agent commits its result on chain by the escrow deadline and only then reports completion,
#: so the requester waits this much past the deadline: a result committed in time (which the
#: requester can no longer refund) is never thrown away for arriving a moment late.
RESULT_MARGIN_S = 10


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Failed(NoosphereError):
    """One attempt failed; ``state`` says how (failed, rejected, unreachable, unpaid)."""

    def __init__(self, state: str, reason: str, task: Task | None = None) -> None:
        super().__init__(reason)
        self.state = state
        self.reason = reason
        self.task = task


class Submitter:
    """Runs submissions as background jobs and keeps their records."""

    def __init__(
        self,
        key: NodeKey,
        store: NodeStore,
        mars: MarsService,
        cards: CardIndex,
        feedback: FeedbackService,
        settlement: Settlement | None,
        authorities: Callable[[], Sequence[AuthorityPublicKey]],
        *,
        escrow_deadline_s: int,
        auto_release: bool = True,
        egress: EgressPolicy | None = None,
    ) -> None:
        self._key = key
        self._egress = egress  # agents' URLs come from their cards: a stranger's word
        self._store = store
        self._mars = mars
        self._cards = cards
        self._feedback = feedback
        self._settlement = settlement
        self._authorities = authorities
        self._deadline_s = escrow_deadline_s
        self._auto_release = auto_release
        self._jobs: dict[str, asyncio.Task[None]] = {}

    # ---- API -----------------------------------------------------------------------------------

    def submit(self, params: SubmitParams) -> Submission:
        if params.policy is not None:
            self._authority(params.issuer)  # fail now, not in the background
        now = _now_ms()
        submission = Submission(
            id=str(uuid.uuid4()), state="running", task=params.task, created_at=now, updated_at=now
        )
        self.save(submission)
        job = asyncio.create_task(self._run(submission, params), name=f"submit-{submission.id}")
        self._jobs[submission.id] = job
        job.add_done_callback(lambda _job: self._jobs.pop(submission.id, None))
        return submission

    def get(self, submission_id: str) -> Submission:
        body = self._store.get_submission(submission_id)
        if body is None:
            raise TaskNotFound(f"submission {submission_id} not found")
        return Submission.model_validate(body)

    def recover(self) -> int:
        """Submissions cut short by a restart end failed; what they had locked is refunded."""
        stale = [
            Submission.model_validate(b)
            for b in self._store.list_submissions(states=["running"], limit=100_000)
        ]
        for submission in stale:
            for attempt in submission.attempts:
                if attempt.escrow_id and self._settlement is not None:
                    with contextlib.suppress(LedgerError):  # unrecorded: nothing was locked
                        self._settlement.refund_later(attempt.escrow_id)
            self.save(submission.model_copy(update={"state": "failed", "error": _RESTARTED}))
        return len(stale)

    async def close(self) -> None:
        jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)

    # ---- one submission ------------------------------------------------------------------------

    async def _run(self, submission: Submission, params: SubmitParams) -> None:
        record = _Record(self, submission)
        try:
            await self._phases(record, params)
        except asyncio.CancelledError:
            record.fail(_RESTARTED)
            raise
        except Exception as exc:  # a bug must end the submission, not leave it running
            log.exception("submission crashed", submission=submission.id)
            record.fail(f"internal error: {type(exc).__name__}: {exc}")

    async def _phases(self, record: _Record, params: SubmitParams) -> None:
        issuers = None if params.policy is None else [self._authority(params.issuer).issuer]
        with record.phase("recruit"):
            reply = await self._mars.recruit(
                RecruitParams(
                    task=params.task,
                    top=params.max_attempts,
                    required_tags=params.required_tags,
                    max_price=params.budget,
                    policy=params.policy,
                    trusted_issuers=issuers,
                    solicit_bids_ms=params.solicit_bids_ms,
                ),
                self._key.peer_id,
            )
        if not reply.chosen:
            record.event("recruit", f"no agent fits ({len(reply.rejected)} filtered out)")
            record.fail("no agent this node knows fits the task")
            return
        ranking = ", ".join(f"{c.name} {c.score:.2f}" for c in reply.chosen)
        record.event("recruit", f"ranked {len(reply.chosen)} of {reply.cards_indexed}: {ranking}")
        for number, choice in enumerate(reply.chosen):
            if number > 0:
                record.event("recruit", f"re-recruiting: next candidate {choice.name}")
            try:
                task = await self._attempt(record, params, number, choice)
            except _Failed as failure:
                record.attempt(state=failure.state, reason=failure.reason)
                record.event("execute", f"{choice.name} {failure.state}: {failure.reason}")
                await self._after_failure(record, failure)
                continue
            await self._settle(record, choice, task)
            return
        record.fail(f"all {len(reply.chosen)} recruited agents failed")

    async def _attempt(
        self, record: _Record, params: SubmitParams, number: int, choice: RecruitChoice
    ) -> Task:
        card = self._card(choice.card_id)
        record.add_attempt(
            SubmissionAttempt(
                agent=choice.card_id,
                name=choice.name,
                rpc_url=choice.rpc_url,
                price=choice.price,
                score=choice.score,
            )
        )
        message = self._message(params)
        pay_to = card.noosphere().evm_address if card is not None else None
        # without a ledger on its node the price is advisory; this node's own agents are free
        if choice.price > 0 and pay_to and choice.peer_id != self._key.peer_id:
            ref = await self._pay(
                record, number, choice, pay_to, params.deadline_s or self._deadline_s
            )
            assert self._settlement is not None  # _pay fails without one
            ref = self._settlement.authorize(ref, self._key.peer_id, message.message_id)
            metadata = {PAYMENT_METADATA_KEY: ref.to_wire()}
            message = message.model_copy(update={"metadata": metadata})
        with record.phase("execute"):
            return await self._execute(
                record, choice, message, (params.deadline_s or self._deadline_s) + RESULT_MARGIN_S
            )

    async def _pay(
        self,
        record: _Record,
        number: int,
        choice: RecruitChoice,
        pay_to: str,
        deadline_s: int,
    ) -> PaymentRef:
        if self._settlement is None:
            raise _Failed(
                "unpaid",
                f"{choice.name} charges {choice.price} and this node has no"
                " ledger (set chain_home in its config)",
            )
        escrow_id = escrow_id_for(self._key.peer_id, record.id, number)
        deadline = int(time.time()) + deadline_s
        with record.phase("pay"):
            try:
                ref = await self._settlement.open_escrow(
                    escrow_id, record.id, pay_to, choice.price, deadline
                )
            except LedgerError as exc:
                raise _Failed("unpaid", str(exc)) from exc
        record.attempt(escrow_id=escrow_id, payment="open")
        record.event(
            "pay",
            f"escrow {escrow_id[:10]}… locks {choice.price} for {choice.name}"
            f" until {time.strftime('%H:%M:%S', time.localtime(deadline))}",
        )
        return ref

    def _message(self, params: SubmitParams) -> Message:
        message = text_message(params.task, extra_parts=[Part.of_data(d) for d in params.data])
        if params.policy is not None:
            sealed = seal_parts(
                self._authority(params.issuer), params.policy, message.parts, message.message_id
            )
            message = message.model_copy(update={"parts": [sealed]})
        return message

    async def _execute(
        self, record: _Record, choice: RecruitChoice, message: Message, timeout_s: int
    ) -> Task:
        sealed = "sealed " if message.parts[0].media_type == SEALED_MEDIA_TYPE else ""
        record.event("execute", f"sending the {sealed}task to {choice.name} ({choice.rpc_url})")
        task: Task | None = None
        try:
            async with (
                asyncio.timeout(timeout_s),
                A2AClient(
                    choice.rpc_url,
                    auth=PeerAuth(self._key),
                    tenant=choice.tenant,
                    egress=self._egress,
                ) as client,
            ):
                async for event in client.stream(message):
                    task = self._follow(record, event, task)
                if task is not None:  # the stored task: final state, artifacts, signed receipt
                    task = await client.get_task(task.id)
        except RpcError as exc:
            raise _Failed("rejected", f"{exc.message} (JSON-RPC {exc.code})") from exc
        except (httpx.HTTPError, OSError, ConnectionError, TimeoutError) as exc:
            raise _Failed("unreachable", f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        if task is None:
            raise _Failed("unreachable", "the agent's stream ended without a task")
        state = task.status.state
        reason = task.status.message.text if task.status.message is not None else ""
        if state == TaskState.COMPLETED:
            return task
        if state.interrupted:
            raise _Failed("failed", f"the agent asked for input: {reason}", task)
        raise _Failed(state.short, reason or state.short, task)

    def _follow(self, record: _Record, event: Any, task: Task | None) -> Task | None:
        if event.task is not None:
            record.attempt(task_id=event.task.id, state="running")
            return event.task
        if task is None:
            return None
        if event.status_update is not None:
            status = event.status_update.status
            if status.message is not None and status.message.text:
                record.event("execute", status.message.text[:300])
            return task.model_copy(update={"status": status})
        if event.artifact_update is not None:
            artifact = event.artifact_update.artifact
            record.event("execute", f"artifact {artifact.name or artifact.artifact_id}")
            return task.model_copy(update={"artifacts": [*task.artifacts, artifact]})
        return task

    async def _after_failure(self, record: _Record, failure: _Failed) -> None:
        attempt = record.current
        if attempt.escrow_id and self._settlement is not None:
            self._settlement.refund_later(attempt.escrow_id)
            record.attempt(payment="refund after deadline")
        receipt = self._receipt(failure.task, attempt) if failure.task is not None else None
        if receipt is not None and failure.state == "failed":
            self._rate(record, receipt, RATING_FAILED)

    async def _settle(self, record: _Record, choice: RecruitChoice, task: Task) -> None:
        attempt = record.current
        record.attempt(state="completed")
        receipt = self._receipt(task, attempt)
        paid, released = 0, True
        if attempt.escrow_id and self._settlement is not None:
            with record.phase("settle"):
                outcome = await self._release(record, choice, attempt.escrow_id, task)
            if outcome is None:
                return
            released = outcome
            paid = choice.price if released else 0
        before = self._feedback.trust.reputation(choice.card_id)
        with record.phase("feedback"):
            if receipt is not None and released:  # a result awaiting the operator: not yet
                self._rate(record, receipt, RATING_COMPLETED)
            await self._rate_on_chain(record, choice, record.current)
        after = self._feedback.trust.reputation(choice.card_id)
        record.complete(choice.card_id, task, paid, before, after)

    async def _release(
        self, record: _Record, choice: RecruitChoice, escrow_id: str, task: Task
    ) -> bool | None:
        """Pay for a completed result: True once released, False when it waits for the
        operator (``auto_release`` off), None when the submission failed (no or a wrong
        commitment: disputed before the arbiter if the escrow has one)."""
        assert self._settlement is not None
        delivered = artifacts_hash(task)
        try:
            if not self._auto_release:
                await self._settlement.check_commitment(escrow_id, delivered)
                record.attempt(payment="awaiting the operator")
                record.event(
                    "settle",
                    f"result committed on chain; release it (noosphere ledger"
                    f" release {escrow_id}) or dispute it (noosphere ledger dispute"
                    f" {escrow_id} --reason ...)",
                )
                return False
            tx = await self._settlement.release(escrow_id, delivered)
        except CommitmentMismatch as exc:
            await self._dispute_mismatch(record, escrow_id, exc)
            return None
        except LedgerError as exc:
            self._settlement.refund_later(escrow_id)
            record.attempt(payment="refund after deadline", reason=str(exc))
            record.fail(f"result not paid: {exc}")
            return None
        record.attempt(payment="released")
        record.event("settle", f"released {choice.price} to {choice.name} (tx {tx[:10]}…)")
        return True

    async def _dispute_mismatch(
        self, record: _Record, escrow_id: str, mismatch: CommitmentMismatch
    ) -> None:
        """The agent committed something other than what it delivered: dispute it (the arbiter
        decides), or, without an arbiter, let the escrow settle by the contract's rules."""
        assert self._settlement is not None
        if mismatch.committed is None:  # nothing committed: refunded after the deadline
            self._settlement.refund_later(escrow_id)
            record.attempt(payment="refund after deadline", reason=str(mismatch))
            record.fail(f"result not paid: {mismatch}")
            return
        if not self._settlement.has_arbiter(escrow_id):
            record.attempt(payment="not released (no arbiter)", reason=str(mismatch))
            record.fail(f"result not paid: {mismatch}; the escrow names no arbiter to dispute to")
            return
        reason = f"delivered result does not match the commitment: {mismatch}"
        try:
            tx = await self._settlement.dispute(escrow_id, mismatch.delivered, reason[:1024])
        except LedgerError as exc:
            record.attempt(payment="not released", reason=f"{mismatch}; dispute failed: {exc}")
            record.fail(f"result not paid: {mismatch}; dispute failed: {exc}")
            return
        record.attempt(payment="disputed", reason=str(mismatch))
        record.event(
            "settle",
            f"disputed escrow {escrow_id[:10]}… before its arbiter (tx {tx[:10]}…): {mismatch}",
        )
        record.fail(f"result not paid: {mismatch}; disputed, the arbiter decides")

    def _receipt(self, task: Task, attempt: SubmissionAttempt) -> TaskReceipt | None:
        raw = (task.metadata or {}).get("noosphere", {}).get("receipt")
        try:
            receipt = verify_receipt(TaskReceipt.model_validate(raw))
        except (ValidationError, FeedbackError) as exc:
            log.warning("task receipt unusable", task_id=task.id, error=str(exc))
            return None
        if receipt.agent != attempt.agent or receipt.task_id != task.id:
            log.warning("task receipt for another task or agent", task_id=task.id)
            return None
        return receipt

    def _rate(self, record: _Record, receipt: TaskReceipt, rating: float) -> None:
        try:
            reply = self._feedback.rate(FeedbackParams(receipt=receipt, rating=rating))
        except RequestError as exc:
            record.event("feedback", f"rating not recorded: {exc.message}")
            return
        shown = "n/a" if reply.reputation is None else f"{reply.reputation:.3f}"
        record.event("feedback", f"rated {rating:g}, gossiped; reputation now {shown}")

    async def _rate_on_chain(
        self, record: _Record, choice: RecruitChoice, attempt: SubmissionAttempt
    ) -> None:
        card = self._card(choice.card_id)
        ext = card.noosphere() if card is not None else None
        if self._settlement is None or attempt.escrow_id is None or ext is None:
            return
        if ext.registry_id is None or ext.evm_address is None or attempt.payment != "released":
            return
        score = round(RATING_COMPLETED * 100)
        try:
            await self._settlement.rate_on_chain(
                ext.registry_id,
                attempt.escrow_id,
                score,
                f"noosphere:task:{attempt.task_id}",
                peer_id=ext.peer_id,
                agent_name=ext.agent_id,
                owner=ext.evm_address,
            )
        except LedgerError as exc:
            record.event("feedback", f"on-chain rating failed: {exc}")
            return
        record.event(
            "feedback", f"score {score} recorded on the registry for agent #{ext.registry_id}"
        )

    # ---- helpers -------------------------------------------------------------------------------

    def _card(self, card_id: str) -> AgentCard | None:
        stored = self._cards.get(card_id, _now_ms())
        return None if stored is None else AgentCard.model_validate(stored.card)

    def _authority(self, issuer: str | None) -> AuthorityPublicKey:
        keys = list(self._authorities())
        for key in keys:
            if issuer is None or key.issuer == issuer:
                return key
        if not keys:
            raise InvalidParams(
                "Invalid params: a policy needs an attribute"
                " authority: set abe_authorities in the node config"
            )
        raise InvalidParams(f"Invalid params: no configured authority {issuer!r}")

    def save(self, submission: Submission) -> None:
        self._store.put_submission(
            submission.id,
            submission.state,
            submission.created_at,
            submission.updated_at,
            submission.to_wire(),
        )


class _Phase:
    """Adds the time spent inside ``with record.phase(name):`` to the submission's timings."""

    def __init__(self, record: _Record, name: str) -> None:
        self._record = record
        self._name = name
        self._started = 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, *_: object) -> None:
        spent = (time.perf_counter() - self._started) * 1000
        timings = dict(self._record.submission.timings_ms)
        timings[self._name] = round(timings.get(self._name, 0.0) + spent, 1)
        self._record.update(timings_ms=timings)


class _Record:
    """The submission being run; every change is saved at once."""

    def __init__(self, owner: Submitter, submission: Submission) -> None:
        self._owner = owner
        self.submission = submission

    @property
    def id(self) -> str:
        return self.submission.id

    @property
    def current(self) -> SubmissionAttempt:
        return self.submission.attempts[-1]

    def update(self, **changes: Any) -> None:
        self.submission = self.submission.model_copy(update={**changes, "updated_at": _now_ms()})
        self._owner.save(self.submission)

    def phase(self, name: str) -> _Phase:
        return _Phase(self, name)

    def event(self, phase: str, text: str) -> None:
        at = _now_ms() - self.submission.created_at
        event = SubmissionEvent(at_ms=at, phase=phase, text=text)
        self.update(events=[*self.submission.events, event])

    def add_attempt(self, attempt: SubmissionAttempt) -> None:
        self.update(attempts=[*self.submission.attempts, attempt])

    def attempt(self, **changes: Any) -> None:
        attempts = list(self.submission.attempts)
        attempts[-1] = attempts[-1].model_copy(update=changes)
        self.update(attempts=attempts)

    def fail(self, error: str) -> None:
        self.event("done", f"failed: {error}")
        self.update(state="failed", error=error)

    def complete(
        self, winner: str, task: Task, paid: int, before: float | None, after: float | None
    ) -> None:
        self.event("done", f"completed by {winner}")
        self.update(
            state="completed",
            winner=winner,
            result=task.to_wire(),
            paid=str(paid),
            reputation={"before": before, "after": after},
        )
