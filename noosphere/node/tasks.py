"""Execute (task manager): the A2A task life cycle on the node that runs the agent.

A message creates a task (``submitted``) or continues one that waits for input; the task is
persisted before anyone is told about it, then one turn runs on the agent (``working`` with
progress, artifacts) and ends ``completed``, ``input-required``, ``failed``, ``rejected`` or
``canceled``. Every change is written to the store, then fanned out to streams, subscribers and
push-notification webhooks. A node killed mid-turn reports the task on restart as failed and
retryable, so ``GetTask`` never forgets an acknowledged task. A node told to stop first lets
running turns finish for a grace period (``drain``: refusing new tasks, storing the results of
turns that end in time), then fails the rest as retryable (``close``).

A turn runs as the task's owner (``Turn.principal``), also when the operator answers a question
the task asked, so an agent keeps each requester's data in that requester's scope.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from noosphere.abe.envelope import MEDIA_TYPE as SEALED_MEDIA_TYPE
from noosphere.agents.turn import TaskAgent, Turn, TurnResult
from noosphere.errors import (
    ContentTypeNotSupported,
    InvalidParams,
    TaskNotCancelable,
    TaskNotFound,
    UnsupportedOperation,
)
from noosphere.protocol.a2a import (
    Artifact,
    ListTaskPushNotificationConfigsRequest,
    ListTaskPushNotificationConfigsResponse,
    ListTasksRequest,
    ListTasksResponse,
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    Task,
    TaskArtifactUpdateEvent,
    TaskPushConfigRef,
    TaskPushNotificationConfig,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
    now_rfc3339,
)
from noosphere.protocol.rpcauth import LOCAL_PRINCIPAL

from .access import AgentAccess, check_access, check_anonymous_listing, memory_scope
from .metrics import NodeMetrics
from .push import PushNotifier
from .settlement import Admission, ResultNotCommitted, Settlement
from .store import NodeStore, StoredTask

log = structlog.get_logger("noosphere.tasks")

_RESTART_REASON = "the node restarted while this task was running; send it again"
_SHUTDOWN_REASON = "the node shut down while this task was running; send it again"
_CLOSING_REASON = "this node is shutting down; send the task again later or to another node"
_END_OF_TURN = None


def is_reply_only(task: Task) -> bool:
    """The agent answered this task with a message alone (``TurnResult.reply_only``)."""
    noosphere = (task.metadata or {}).get("noosphere")
    return isinstance(noosphere, dict) and noosphere.get("replyOnly") is True


def _now_ms() -> int:
    return int(time.time() * 1000)


def _agent_message(text: str, task: Task, metadata: Mapping[str, Any] | None = None) -> Message:
    return Message(
        message_id=str(uuid.uuid4()),
        role=Role.AGENT,
        parts=[Part.of_text(text)],
        task_id=task.id,
        context_id=task.context_id,
        metadata=dict(metadata) if metadata else None,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class _Watcher:
    """A stream on one task: a SendStreamingMessage stream ends with its turn, a
    SubscribeToTask stream (``until_terminal``) only when the task reaches a terminal state."""

    queue: asyncio.Queue[StreamResponse | None]
    until_terminal: bool = False


class _Sink:
    """What an agent's turn reports through: progress lines and artifacts of one task."""

    def __init__(self, manager: TaskManager, task_id: str) -> None:
        self._manager = manager
        self._task_id = task_id
        self.closed = False

    async def progress(self, text: str) -> None:
        if self._usable("progress"):
            self._manager._set_status(self._task_id, TaskState.WORKING, text)

    async def artifact(self, artifact: Artifact) -> None:
        if self._usable("artifact"):
            self._manager._add_artifact(self._task_id, artifact)

    def _usable(self, what: str) -> bool:
        """A sink outlives its turn only by mistake (an agent's stray background job): a late
        report must not turn a finished task back to ``working``."""
        if self.closed:
            log.warning("agent reported after its turn ended", task_id=self._task_id, what=what)
        return not self.closed


class TaskManager:
    """Owns tasks: accepts messages, runs turns with bounded concurrency, answers queries."""

    def __init__(
        self,
        store: NodeStore,
        agents: Mapping[str, TaskAgent],
        metrics: NodeMetrics,
        push: PushNotifier,
        *,
        max_concurrent_turns: int = 4,
        turn_timeout_s: float = 300.0,
        receipts: Callable[[StoredTask, TaskState], dict[str, Any] | None] | None = None,
        payments: Settlement | None = None,
        access: Mapping[str, AgentAccess] | None = None,
        operators: frozenset[str] = frozenset(),
    ) -> None:
        """``access``: who may task each agent (default ``peers``); ``operators``: principals
        treated as the operator for that (the node's own peer id)."""
        self._store = store
        self._access = dict(access or {})
        self._operators = operators
        self._payments = payments  # priced agents work only for an escrow
        self._receipts = receipts  # signs a receipt when a task ends (the requester's proof)
        self._agents = dict(agents)
        self._metrics = metrics
        self._push = push
        self._slots = asyncio.Semaphore(max_concurrent_turns)
        self._turn_timeout_s = turn_timeout_s
        self._running: dict[str, asyncio.Task[None]] = {}
        self._cancel_requested: set[str] = set()
        self._watchers: dict[str, list[_Watcher]] = {}
        self._waiting = 0
        # Tasks with a turn in progress, kept in memory: progress lines change only this copy;
        # state changes, artifacts and the end of the turn are also written to the store.
        self._live: dict[str, tuple[Task, StoredTask]] = {}
        self._push_tasks: set[str] = self._store.push_config_task_ids()
        self._closing = False  # draining for shutdown: no new turns

    # ---- life cycle --------------------------------------------------------------------------

    def recover(self) -> int:
        """Mark tasks that were mid-turn when the node died as failed and retryable."""
        rows, _ = self._store.list_tasks(
            states=[TaskState.SUBMITTED.value, TaskState.WORKING.value], limit=1_000_000
        )
        for row in rows:
            task = Task.model_validate(row.task)
            self._finish(task, row, TaskState.FAILED, _RESTART_REASON, retryable=True)
        if rows:
            log.warning("tasks interrupted by a restart marked failed", count=len(rows))
        return len(rows)

    async def drain(self, grace_s: float, interrupt: asyncio.Event | None = None) -> int:
        """Refuse new turns and wait up to ``grace_s`` (or until ``interrupt`` is set) for the
        running and queued ones to end; each that ends is stored as it ended (a completed result
        is kept) and its streams finish normally. Returns how many are still running."""
        self._closing = True
        jobs = set(self._running.values())
        if jobs and grace_s > 0:
            waiters: set[asyncio.Future[Any]] = set(jobs)
            stop = None if interrupt is None else asyncio.ensure_future(interrupt.wait())
            if stop is not None:
                waiters.add(stop)
            try:
                async with asyncio.timeout(grace_s):
                    while jobs and (stop is None or not stop.done()):
                        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                        jobs = {job for job in jobs if not job.done()}
                        waiters = jobs | ({stop} if stop is not None else set())
            except TimeoutError:
                pass
            finally:
                if stop is not None:
                    stop.cancel()
        return sum(not job.done() for job in self._running.values())

    async def close(self) -> None:
        """Stop running turns (their tasks fail as retryable) and end every stream."""
        self._closing = True
        running = list(self._running.values())
        for job in running:
            job.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.queue.put_nowait(_END_OF_TURN)
        self._watchers.clear()

    # ---- A2A methods -------------------------------------------------------------------------

    async def send(self, request: SendMessageRequest, principal: str) -> Task:
        """SendMessage: returns when the turn ends (or at once with ``returnImmediately``)."""
        self._check_open()
        self._check_access(request, principal)
        task = self._accept(request, principal, await self._admit(request, principal))
        config = request.configuration
        if not (config and config.return_immediately):
            job = self._running.get(task.id)
            if job is not None:
                # not shield(): a turn cancelled at shutdown still ends in a stored state
                # (failed, retryable) that the caller gets; the caller going away never
                # cancels the turn either way
                await asyncio.wait([job])
            task = self._load(task.id)
        return task.trimmed(config.history_length if config else None)

    async def stream(
        self, request: SendMessageRequest, principal: str
    ) -> AsyncIterator[StreamResponse]:
        """SendStreamingMessage: the task, then its updates until the turn ends."""
        self._check_open()
        self._check_access(request, principal)
        queue: asyncio.Queue[StreamResponse | None] = asyncio.Queue()
        admission = await self._admit(request, principal)
        task = self._accept(
            request, principal, admission, before_start=lambda t: self._watch(t, queue)
        )
        return self._drain(task, queue)

    def _check_open(self) -> None:
        if self._closing:
            raise UnsupportedOperation(_CLOSING_REASON)

    def get(self, task_id: str, principal: str, history_length: int | None = None) -> Task:
        return self._owned(task_id, principal).trimmed(history_length)

    def list(self, request: ListTasksRequest, principal: str) -> ListTasksResponse:
        check_anonymous_listing(principal, request.context_id)
        page_size = request.page_size or 50
        offset = _decode_page_token(request.page_token)
        agent_id = self._agent_for(request.tenant).agent_id if request.tenant else None
        rows, total = self._store.list_tasks(
            principal=None if principal == LOCAL_PRINCIPAL else principal,
            agent_id=agent_id,
            context_id=request.context_id,
            states=[request.status.value] if request.status else None,
            updated_after=_parse_timestamp_ms(request.status_timestamp_after),
            offset=offset,
            limit=page_size,
        )
        tasks = [
            Task.model_validate(r.task).trimmed(
                request.history_length, artifacts=request.include_artifacts
            )
            for r in rows
        ]
        more = offset + len(rows) < total
        return ListTasksResponse(
            tasks=tasks,
            next_page_token=_encode_page_token(offset + len(rows)) if more else "",
            page_size=page_size,
            total_size=total,
        )

    async def cancel(self, task_id: str, principal: str) -> Task:
        task = self._owned(task_id, principal)
        if task.status.state.terminal:
            raise TaskNotCancelable(
                f"task {task_id} is already {task.status.state.short} and cannot be canceled",
            )
        job = self._running.get(task_id)
        if job is not None:
            self._cancel_requested.add(task_id)
            job.cancel()
            await asyncio.gather(job, return_exceptions=True)
        else:  # waiting for input: nothing runs, end it here
            self._finish(task, self._row(task_id), TaskState.CANCELED, "canceled by the requester")
        return self._load(task_id)

    def subscribe(self, task_id: str, principal: str) -> AsyncIterator[StreamResponse]:
        """SubscribeToTask: the task, then its updates until it reaches a terminal state (a task
        waiting for input keeps the stream open: the turns its answers start stream on it)."""
        task = self._owned(task_id, principal)
        if task.status.state.terminal:
            raise UnsupportedOperation(
                f"task {task_id} is {task.status.state.short}; nothing more will happen to it",
            )
        queue: asyncio.Queue[StreamResponse | None] = asyncio.Queue()
        self._watch(task, queue, until_terminal=True)  # now: no update between missed
        return self._drain(task, queue)

    def set_push_config(
        self, config: TaskPushNotificationConfig, principal: str
    ) -> TaskPushNotificationConfig:
        if not config.task_id:
            raise InvalidParams("Invalid params: taskId is required")
        self._owned(config.task_id, principal)
        try:
            self._push.check_target(config.url, trusted=principal == LOCAL_PRINCIPAL)
        except ValueError as exc:
            raise InvalidParams(f"Invalid params: {exc}") from exc
        stored = config.model_copy(update={"id": config.id or str(uuid.uuid4()), "tenant": None})
        self._store.put_push_config(config.task_id, stored.id or "", stored.to_wire())
        self._push_tasks.add(config.task_id)
        return stored

    def get_push_config(self, ref: TaskPushConfigRef, principal: str) -> TaskPushNotificationConfig:
        self._owned(ref.task_id, principal)
        for config in self._push_configs(ref.task_id):
            if config.id == ref.id:
                return config
        raise TaskNotFound(f"no push notification config {ref.id} for task {ref.task_id}")

    def list_push_configs(
        self, request: ListTaskPushNotificationConfigsRequest, principal: str
    ) -> ListTaskPushNotificationConfigsResponse:
        self._owned(request.task_id, principal)
        return ListTaskPushNotificationConfigsResponse(configs=self._push_configs(request.task_id))

    def delete_push_config(self, ref: TaskPushConfigRef, principal: str) -> None:
        """Idempotent (A2A 3.1.10): deleting a config that is already gone succeeds."""
        self._owned(ref.task_id, principal)
        self._store.delete_push_config(ref.task_id, ref.id)

    # ---- accepting messages ------------------------------------------------------------------

    def _agent_for(self, tenant: str | None) -> TaskAgent:
        if tenant:
            agent = self._agents.get(tenant)
            if agent is None:
                known = ", ".join(sorted(self._agents)) or "none"
                raise InvalidParams(
                    f"Invalid params: this node runs no agent {tenant!r} (agents: {known})",
                )
            return agent
        if len(self._agents) == 1:
            return next(iter(self._agents.values()))
        if not self._agents:
            raise UnsupportedOperation("this node runs no agents")
        raise InvalidParams(
            "Invalid params: this node runs several agents; set tenant to one of "
            + ", ".join(sorted(self._agents)),
        )

    def _check_access(self, request: SendMessageRequest, principal: str) -> None:
        """Refuse a caller the target agent's ``access`` excludes (a continued task: its agent;
        an unknown task id is left to ``_continue``, which says it is not found)."""
        if request.message.task_id:
            row = self._store.get_task(request.message.task_id)
            if row is None:
                return
            agent_id = row.agent_id
        else:
            agent_id = self._agent_for(request.tenant).agent_id
        check_access(agent_id, self._access.get(agent_id, "peers"), principal, self._operators)

    async def _admit(self, request: SendMessageRequest, principal: str) -> Admission | None:
        """The escrow paying for a new task to a priced agent (checked on chain), if needed."""
        if self._payments is None or request.message.task_id:
            return None  # a continued task was paid for when it was created
        agent = self._agent_for(request.tenant)
        return await self._payments.admit(agent.agent_id, request.message, principal)

    def _accept(
        self,
        request: SendMessageRequest,
        principal: str,
        admission: Admission | None = None,
        before_start: Callable[[Task], None] | None = None,
    ) -> Task:
        message = request.message
        if message.role != Role.USER:
            raise InvalidParams("Invalid params: message.role must be user")
        if message.task_id:
            owner = self._store.get_task(message.task_id)
            if owner is not None and owner.agent_id in self._agents:
                _check_content(self._agents[owner.agent_id], request)
            task, agent_id = self._continue(message, principal)
            agent = self._agents.get(agent_id)
            if agent is None:
                raise UnsupportedOperation(
                    f"the agent {agent_id!r} of task {task.id} no longer runs on this node",
                )
        else:
            agent = self._agent_for(request.tenant)
            _check_content(agent, request)
            task_id = str(uuid.uuid4())
            context_id = message.context_id or str(uuid.uuid4())
            message = message.model_copy(update={"task_id": task_id, "context_id": context_id})
            task = Task(
                id=task_id,
                context_id=context_id,
                status=TaskStatus(state=TaskState.SUBMITTED, timestamp=now_rfc3339()),
                history=[message],
                metadata={"agentId": agent.agent_id},
            )
            now = _now_ms()
            row = StoredTask(
                task_id=task_id,
                agent_id=agent.agent_id,
                context_id=context_id,
                principal=principal,
                state=TaskState.SUBMITTED.value,
                created_at=now,
                updated_at=now,
                task=task.to_wire(),
            )
            with self._store.transaction():  # acknowledged only once stored
                if admission is not None and self._payments is not None:
                    self._payments.bind(admission, task_id, agent.agent_id)
                self._store.put_task(row)
        config = request.configuration
        if config and config.task_push_notification_config:
            self.set_push_config(
                config.task_push_notification_config.model_copy(update={"task_id": task.id}),
                principal,
            )
        if before_start is not None:
            before_start(task)
        if message.task_id:
            row = self._store_row(task.id)
        turn = Turn(
            task_id=task.id,
            context_id=task.context_id,
            message=task.history[-1],
            history=tuple(task.history[:-1]),
            # the task's owner, also when the operator continues it (anonymous: per context)
            principal=memory_scope(row.principal, task.context_id),
        )
        self._go_live(task, dataclasses.replace(row, task={}))
        accepted = time.perf_counter()
        job = asyncio.create_task(self._run_turn(agent, turn, accepted), name=f"task-{task.id}")
        self._running[task.id] = job
        job.add_done_callback(lambda j: self._turn_done(agent, task.id, j, accepted))
        return task

    def _continue(self, message: Message, principal: str) -> tuple[Task, str]:
        assert message.task_id is not None
        task = self._owned(message.task_id, principal)
        state = task.status.state
        if message.context_id and message.context_id != task.context_id:
            raise InvalidParams(
                f"Invalid params: task {task.id} belongs to context {task.context_id}",
            )
        if state.terminal:
            raise UnsupportedOperation(
                f"task {task.id} is {state.short}; send a new message in context "
                f"{task.context_id} (without taskId) to continue the conversation",
            )
        if not state.interrupted:
            raise UnsupportedOperation(
                f"task {task.id} is {state.short}; wait until it asks for input",
            )
        message = message.model_copy(update={"context_id": task.context_id})
        row = self._row(task.id)
        task = task.model_copy(
            update={
                "history": [*task.history, message],
                "status": TaskStatus(state=TaskState.SUBMITTED, timestamp=now_rfc3339()),
            }
        )
        self._save(task, row)
        return task, row.agent_id

    # ---- running turns -----------------------------------------------------------------------

    async def _run_turn(self, agent: TaskAgent, turn: Turn, accepted: float) -> None:
        self._queued(+1)
        started = False
        final: TurnResult
        sink = _Sink(self, turn.task_id)
        try:
            async with self._slots:
                started = True
                self._queued(-1)
                self._metrics.tasks_running.inc()
                deadline = asyncio.timeout(self._turn_timeout_s)
                try:
                    self._set_status(turn.task_id, TaskState.WORKING, None)
                    async with deadline:
                        result = await agent.run_turn(turn, sink)
                    final = _checked_result(result)
                except TimeoutError as exc:
                    if not deadline.expired():  # the agent's own timeout escaped: its error
                        final = self._crashed(turn, exc)
                    else:
                        final = TurnResult(
                            TaskState.FAILED,
                            f"the turn took longer than {self._turn_timeout_s:g} s",
                        )
                except Exception as exc:  # an agent must not raise; never let it kill the node
                    final = self._crashed(turn, exc)
                finally:
                    sink.closed = True
                    self._metrics.tasks_running.dec()
            if final.state == TaskState.COMPLETED and self._payments is not None:
                try:
                    await self._payments.before_completion(self._load(turn.task_id))
                except ResultNotCommitted as exc:  # unpaid work: the requester tries another
                    final = TurnResult(TaskState.FAILED, str(exc), {"retryable": True})
        except asyncio.CancelledError:
            final = self._interrupted(turn.task_id)
        finally:
            sink.closed = True
            if not started:
                self._queued(-1)
            self._cancel_requested.discard(turn.task_id)
            self._running.pop(turn.task_id, None)
        self._end_turn(agent, turn.task_id, final, accepted)

    def _crashed(self, turn: Turn, exc: BaseException) -> TurnResult:
        log.exception("agent turn crashed", task_id=turn.task_id)  # called in ``except``
        return TurnResult(TaskState.FAILED, f"agent error: {type(exc).__name__}")

    def _interrupted(self, task_id: str) -> TurnResult:
        """How a turn that was cancelled ends: by the requester, or by the node shutting down."""
        if task_id in self._cancel_requested:
            return TurnResult(TaskState.CANCELED, "canceled by the requester")
        return TurnResult(TaskState.FAILED, _SHUTDOWN_REASON, {"retryable": True})

    def _end_turn(self, agent: TaskAgent, task_id: str, final: TurnResult, accepted: float) -> None:
        task = self._load(task_id)
        self._finish(
            task,
            self._row(task_id),
            final.state,
            final.text,
            retryable=bool(final.metadata.get("retryable")),
            meta=final.metadata,
            reply_only=final.reply_only and final.state == TaskState.COMPLETED,
        )
        self._metrics.tasks_total.labels(agent=agent.agent_id, state=final.state.short).inc()
        self._metrics.task_latency.labels(agent=agent.agent_id).observe(
            time.perf_counter() - accepted
        )

    def _turn_done(
        self, agent: TaskAgent, task_id: str, job: asyncio.Task[None], accepted: float
    ) -> None:
        """A job still registered when it is done never ran its body: it was cancelled before
        its first step (``close()`` or ``CancelTask`` right after the message was accepted).
        End its turn here, or the task would stay ``submitted`` and its streams never end."""
        if self._running.get(task_id) is not job:
            if not job.cancelled() and job.exception() is not None:
                log.error("task turn bookkeeping failed", task_id=task_id, exc_info=job.exception())
            return
        del self._running[task_id]
        final = self._interrupted(task_id)
        self._cancel_requested.discard(task_id)
        self._end_turn(agent, task_id, final, accepted)

    def _queued(self, delta: int) -> None:
        self._waiting += delta
        self._metrics.task_queue_depth.set(self._waiting)

    @property
    def queue_depth(self) -> int:
        return self._waiting

    @property
    def running(self) -> int:
        return len(self._running) - self._waiting

    def _set_status(self, task_id: str, state: TaskState, text: str | None) -> None:
        """A status update: a new state is stored; a progress line (same state) only goes to
        the in-memory task and the event stream."""
        task = self._load(task_id)
        status = TaskStatus(
            state=state,
            message=_agent_message(text, task) if text else None,
            timestamp=now_rfc3339(),
        )
        persist = state != task.status.state
        task = task.model_copy(update={"status": status})
        self._save(task, self._row(task_id), persist=persist)
        self._publish(
            task_id,
            StreamResponse(
                status_update=TaskStatusUpdateEvent(
                    task_id=task.id, context_id=task.context_id, status=status
                )
            ),
        )

    def _add_artifact(self, task_id: str, artifact: Artifact) -> None:
        task = self._load(task_id)
        task = task.model_copy(update={"artifacts": [*task.artifacts, artifact]})
        self._save(task, self._row(task_id))
        self._publish(
            task_id,
            StreamResponse(
                artifact_update=TaskArtifactUpdateEvent(
                    task_id=task.id, context_id=task.context_id, artifact=artifact, last_chunk=True
                )
            ),
        )

    def _finish(
        self,
        task: Task,
        row: StoredTask,
        state: TaskState,
        text: str,
        *,
        retryable: bool = False,
        meta: Mapping[str, Any] | None = None,
        reply_only: bool = False,
    ) -> None:
        """End the current turn: final status with the agent's message (carrying the turn's
        metadata, e.g. which inputs are missing) in history; ``retryable`` marks the task."""
        reply = _agent_message(text, task, meta)
        metadata = dict(task.metadata or {})
        if retryable:
            metadata["noosphere"] = {**metadata.get("noosphere", {}), "retryable": True}
        if reply_only:  # SendMessage answers with the reply alone (``is_reply_only``)
            metadata["noosphere"] = {**metadata.get("noosphere", {}), "replyOnly": True}
        if state.terminal and self._payments is not None:
            self._payments.task_ended(task.id, completed=state == TaskState.COMPLETED)
        if state.terminal and self._receipts is not None:
            receipt = self._receipts(row, state)
            if receipt is not None:
                metadata["noosphere"] = {**metadata.get("noosphere", {}), "receipt": receipt}
        status = TaskStatus(state=state, message=reply, timestamp=now_rfc3339())
        task = task.model_copy(
            update={"status": status, "history": [*task.history, reply], "metadata": metadata}
        )
        self._save(task, row)
        self._live.pop(task.id, None)
        self._publish(
            task.id,
            StreamResponse(
                status_update=TaskStatusUpdateEvent(
                    task_id=task.id, context_id=task.context_id, status=status
                )
            ),
        )
        staying = []
        for watcher in self._watchers.pop(task.id, []):
            if watcher.until_terminal and not state.terminal:
                staying.append(watcher)  # a subscriber stays for the next turn
            else:
                watcher.queue.put_nowait(_END_OF_TURN)
        if staying:
            self._watchers[task.id] = staying

    # ---- persistence and fan-out ---------------------------------------------------------

    def _row(self, task_id: str) -> StoredTask:
        live = self._live.get(task_id)
        return live[1] if live is not None else self._store_row(task_id)

    def _load(self, task_id: str) -> Task:
        live = self._live.get(task_id)
        if live is not None:
            return live[0]
        return Task.model_validate(self._row(task_id).task)

    def _owned(self, task_id: str, principal: str) -> Task:
        """The task if ``principal`` may see it; unknown and foreign tasks look the same."""
        try:
            row = self._row(task_id)
        except TaskNotFound:
            row = None
        if row is None or (principal != LOCAL_PRINCIPAL and row.principal != principal):
            raise TaskNotFound(f"task {task_id} not found")
        return self._load(task_id)

    def _save(self, task: Task, row: StoredTask, *, persist: bool = True) -> None:
        """Update the task: in memory while its turn runs, in the store when ``persist``."""
        row = dataclasses.replace(
            row,
            state=task.status.state.value,
            updated_at=max(_now_ms(), row.updated_at),
            task={},  # the JSON is built only when written
        )
        if task.id in self._live:
            self._live[task.id] = (task, row)
        if persist:
            self._store.put_task(dataclasses.replace(row, task=task.to_wire()))

    def _store_row(self, task_id: str) -> StoredTask:
        row = self._store.get_task(task_id)
        if row is None:
            raise TaskNotFound(f"task {task_id} not found")
        return row

    def _go_live(self, task: Task, row: StoredTask) -> None:
        """A turn starts: serve this task from memory until the turn ends."""
        self._live[task.id] = (task, row)

    def _push_configs(
        self, task_id: str
    ) -> builtins.list[TaskPushNotificationConfig]:  # `list`: a method
        if task_id not in self._push_tasks:  # most tasks have none: skip the query
            return []
        return [
            TaskPushNotificationConfig.model_validate(c)
            for c in self._store.list_push_configs(task_id)
        ]

    def _publish(self, task_id: str, event: StreamResponse) -> None:
        for watcher in self._watchers.get(task_id, []):
            watcher.queue.put_nowait(event)
        configs = self._push_configs(task_id)
        if configs:  # webhooks on the operator's own tasks are trusted (egress rule skipped)
            trusted = self._row(task_id).principal == LOCAL_PRINCIPAL
            for config in configs:
                self._push.deliver(config, event, trusted=trusted)

    def _watch(
        self,
        task: Task,
        queue: asyncio.Queue[StreamResponse | None],
        *,
        until_terminal: bool = False,
    ) -> None:
        queue.put_nowait(StreamResponse(task=task))
        self._watchers.setdefault(task.id, []).append(_Watcher(queue, until_terminal))

    async def _drain(
        self, task: Task, queue: asyncio.Queue[StreamResponse | None]
    ) -> AsyncIterator[StreamResponse]:
        try:
            while (event := await queue.get()) is not _END_OF_TURN:
                yield event
        finally:
            watchers = self._watchers.get(task.id, [])
            watchers[:] = [w for w in watchers if w.queue is not queue]
            if not watchers:
                self._watchers.pop(task.id, None)


_TURN_END_STATES = frozenset(
    {
        TaskState.COMPLETED,
        TaskState.FAILED,
        TaskState.CANCELED,
        TaskState.REJECTED,
        TaskState.INPUT_REQUIRED,
        TaskState.AUTH_REQUIRED,
    }
)


def _checked_result(result: object) -> TurnResult:
    """An agent's answer, if it ends a turn (a ``working`` result would leave the task stuck)."""
    if not isinstance(result, TurnResult):
        raise TypeError(f"run_turn returned {type(result).__name__}, not TurnResult")
    if result.state not in _TURN_END_STATES:
        raise ValueError(f"a turn cannot end in state {result.state.short}")
    return result


_MAX_OFFSET = 2**62


#: Every agent reads plain text, JSON (a data part shaped like a tool's arguments) and parts
#: sealed under an attribute policy (its runtime opens them, or rejects the task with why).
ALWAYS_ACCEPTED = frozenset({"text/plain", "application/json", SEALED_MEDIA_TYPE})


def _media_type(part: Part) -> str:
    if part.media_type:
        return part.media_type.split(";", 1)[0].strip().lower()
    if part.text is not None:
        return "text/plain"
    if part.data is not None:
        return "application/json"
    return "application/octet-stream"


def _check_content(agent: TaskAgent, request: SendMessageRequest) -> None:
    """Refuse parts the agent cannot read and output modes it cannot produce (-32005)."""
    inputs = set(agent.input_modes) | ALWAYS_ACCEPTED
    if "*/*" not in inputs:
        for part in request.message.parts:
            media = _media_type(part)
            if media not in inputs:
                raise ContentTypeNotSupported(
                    f"agent {agent.agent_id!r} does not read {media}"
                    f" (it reads {', '.join(sorted(inputs))})",
                )
    config = request.configuration
    wanted = {
        m.split(";", 1)[0].strip().lower() for m in (config.accepted_output_modes if config else [])
    }
    outputs = set(agent.output_modes) | {"text/plain"}
    if wanted and "*/*" not in wanted and not wanted & outputs:
        raise ContentTypeNotSupported(
            f"agent {agent.agent_id!r} answers in {', '.join(sorted(outputs))},"
            f" none of the accepted output modes",
        )


def _encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode("ascii").rstrip("=")


def _decode_page_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
        if raw.startswith("o:") and raw[2:].isdigit() and int(raw[2:]) < _MAX_OFFSET:
            return int(raw[2:])
    except (ValueError, UnicodeDecodeError):
        pass
    raise InvalidParams("Invalid params: pageToken is not a token we issued")


def _parse_timestamp_ms(value: str | None) -> int | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:  # RFC 3339 always has an offset; never read node-local time
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    except (ValueError, OverflowError) as exc:
        raise InvalidParams(
            "Invalid params: statusTimestampAfter must be an RFC 3339 timestamp",
        ) from exc
