"""Recruit and Execute (shared): a dynamic batcher for one model. Callers in many threads (or
coroutines) hand in small lists of items; one worker thread takes every request waiting, makes one
call of ``run`` for all their items, and hands each caller its own slice of the result, or the
call's exception.

Batches form by themselves: requests that arrive while the model is busy wait in the queue and
all go into the next call. Only when the previous call served several requests (the load is
concurrent) does the worker also wait up to ``max_wait_s`` for more, so a lone caller never waits
for company it will not get. A batch stops growing at ``max_batch`` items; a single request larger
than that is still served in one call (``run`` splits it as it likes)."""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from noosphere.errors import ModelError

T = TypeVar("T")
R = TypeVar("R")


@dataclass(eq=False)
class _Request(Generic[T, R]):
    items: Sequence[T]
    future: Future[list[R]] = field(default_factory=Future)


_STOP = object()


class DynamicBatcher(Generic[T, R]):
    """``run(items) -> results`` (same length, same order) called from one worker thread."""

    def __init__(
        self,
        run: Callable[[list[T]], Sequence[R]],
        *,
        max_batch: int = 64,
        max_wait_s: float = 0.002,
        name: str = "batcher",
    ) -> None:
        if max_batch < 1 or max_wait_s < 0:
            raise ValueError("max_batch must be >= 1 and max_wait_s >= 0")
        self._run = run
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.name = name
        self._lock = threading.Lock()
        # the queue, its worker and the pid that started it (a forked child starts its own)
        self._lane: tuple[queue.SimpleQueue[object], threading.Thread, int] | None = None
        self.calls = 0  # calls of ``run`` so far (tests and benchmarks read them)
        self.requests = 0  # requests served so far

    # ---- callers ---------------------------------------------------------------------------

    def submit(self, items: Sequence[T]) -> Future[list[R]]:
        """Queue ``items``; the future holds their results (or the exception of their call)."""
        request: _Request[T, R] = _Request(list(items))
        if not request.items:
            request.future.set_result([])
            return request.future
        with self._lock:
            if self._lane is None or self._lane[2] != os.getpid():  # first use, close(), fork
                lane: queue.SimpleQueue[object] = queue.SimpleQueue()
                worker = threading.Thread(
                    target=self._work, args=(lane,), name=self.name, daemon=True
                )
                worker.start()
                self._lane = (lane, worker, os.getpid())
            self._lane[0].put(request)
        return request.future

    def __call__(self, items: Sequence[T]) -> list[R]:
        """Blocking form of ``submit`` (call it from a worker thread in async code)."""
        return self.submit(items).result()

    async def run_async(self, items: Sequence[T]) -> list[R]:
        """Awaitable form: the event loop waits, no thread is held while the batch forms."""
        return await asyncio.wrap_future(self.submit(items))

    def close(self, timeout: float = 5.0) -> None:
        """Serve what is queued, then stop the worker; returns after at most ``timeout`` s even if
        a call is still running (the worker is a daemon thread: it never holds the process).
        A later ``submit`` starts a new worker."""
        with self._lock:
            lane, self._lane = self._lane, None
        if lane is None or lane[2] != os.getpid():
            return
        lane[0].put(_STOP)
        if lane[1] is not threading.current_thread():
            lane[1].join(timeout)

    # ---- the worker ------------------------------------------------------------------------

    def _work(self, lane: queue.SimpleQueue[object]) -> None:
        concurrent = False  # did the last call serve several requests?
        stopping = False
        while not stopping:
            first = lane.get()
            if first is _STOP:
                return
            batch: list[_Request[T, R]] = [first]  # type: ignore[list-item]
            size = len(batch[0].items)
            deadline = time.monotonic() + (self.max_wait_s if concurrent else 0.0)
            while size < self.max_batch:
                try:
                    more = lane.get_nowait()
                except queue.Empty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        more = lane.get(timeout=remaining)
                    except queue.Empty:
                        break
                if more is _STOP:
                    stopping = True
                    break
                batch.append(more)  # type: ignore[arg-type]
                size += len(more.items)  # type: ignore[attr-defined]
            concurrent = len(batch) > 1
            self._serve(batch)

    def _serve(self, batch: list[_Request[T, R]]) -> None:
        live = [r for r in batch if r.future.set_running_or_notify_cancel()]
        if not live:
            return
        items = [item for request in live for item in request.items]
        try:
            results = list(self._run(items))
            if len(results) != len(items):
                raise ModelError(f"{self.name}: {len(results)} results for {len(items)} items")
        except BaseException as exc:  # every caller gets the failure, the worker goes on
            for request in live:
                request.future.set_exception(exc)
            return
        finally:
            self.calls += 1
            self.requests += len(live)
        start = 0
        for request in live:
            end = start + len(request.items)
            request.future.set_result(results[start:end])
            start = end
