"""The dynamic batcher and the embedder on top of it (Recruit, Execute): concurrent callers share
forward passes and get the vectors they would get alone; failures reach every caller; shutdown
never hangs. Batching is made deterministic by holding the first call on an event, so requests
pile up behind it: no sleeps, no timing assertions."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from noosphere.models.batcher import DynamicBatcher
from noosphere.models.embedding import Embedder, EmbeddingError

WAIT = 60.0  # generous bound for a shared, loaded machine; never reached when things work


class GatedRun:
    """A ``run`` that doubles numbers, records every call and holds the first one until
    ``release`` is set (while it is held, later requests queue up behind it)."""

    def __init__(self, *, fail_on: int | None = None) -> None:
        self.calls: list[list[int]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_on = fail_on

    def __call__(self, items: list[int]) -> list[int]:
        self.calls.append(list(items))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(WAIT)
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"cannot take {self.fail_on}")
        return [2 * item for item in items]


def test_requests_waiting_during_a_call_share_the_next_call() -> None:
    run = GatedRun()
    batcher: DynamicBatcher[int, int] = DynamicBatcher(run, max_batch=64)
    first = batcher.submit([1])
    assert run.entered.wait(WAIT)
    waiting = [batcher.submit([10 * i, 10 * i + 1]) for i in range(1, 6)]
    run.release.set()
    assert first.result(WAIT) == [2]
    assert [f.result(WAIT) for f in waiting] == [[20 * i, 20 * i + 2] for i in range(1, 6)]
    assert len(run.calls) == 2 and batcher.calls == 2 and batcher.requests == 6
    assert run.calls[1] == [item for i in range(1, 6) for item in (10 * i, 10 * i + 1)]
    batcher.close()


def test_a_batch_stops_growing_at_max_batch() -> None:
    run = GatedRun()
    batcher: DynamicBatcher[int, int] = DynamicBatcher(run, max_batch=4, max_wait_s=0)
    first = batcher.submit([0])
    assert run.entered.wait(WAIT)
    waiting = [batcher.submit([i]) for i in range(1, 10)]
    run.release.set()
    assert [f.result(WAIT) for f in [first, *waiting]] == [[2 * i] for i in range(10)]
    assert [len(call) for call in run.calls] == [1, 4, 4, 1]
    batcher.close()


def test_a_failed_call_fails_each_of_its_callers_and_the_batcher_goes_on() -> None:
    run = GatedRun(fail_on=7)
    batcher: DynamicBatcher[int, int] = DynamicBatcher(run)
    first = batcher.submit([1])
    assert run.entered.wait(WAIT)
    doomed = [batcher.submit([7]), batcher.submit([8])]  # one call: 7 fails it for both
    run.release.set()
    assert first.result(WAIT) == [2]
    for future in doomed:
        with pytest.raises(ValueError, match="cannot take 7"):
            future.result(WAIT)
    assert batcher.submit([3]).result(WAIT) == [6]
    batcher.close()


def test_a_run_that_returns_the_wrong_count_is_an_error() -> None:
    batcher: DynamicBatcher[int, int] = DynamicBatcher(lambda items: items[:-1])
    with pytest.raises(Exception, match="1 results for 2 items"):
        batcher([1, 2])
    batcher.close()


def test_close_serves_what_is_queued_then_returns_and_a_later_submit_restarts() -> None:
    run = GatedRun()
    batcher: DynamicBatcher[int, int] = DynamicBatcher(run)
    first = batcher.submit([1])
    assert run.entered.wait(WAIT)
    queued = batcher.submit([2])
    batcher.close(timeout=0.05)  # the first call is still held: close returns anyway
    run.release.set()
    assert first.result(WAIT) == [2] and queued.result(WAIT) == [4]
    assert batcher([5]) == [10]  # a new worker
    batcher.close()
    batcher.close()  # idempotent


def test_worker_threads_never_hold_the_process() -> None:
    batcher: DynamicBatcher[int, int] = DynamicBatcher(lambda items: items, name="probe")
    batcher([1])
    workers = [t for t in threading.enumerate() if t.name == "probe"]
    assert workers and all(t.daemon for t in workers)
    batcher.close()


def test_empty_requests_and_invalid_settings() -> None:
    batcher: DynamicBatcher[int, int] = DynamicBatcher(lambda items: items)
    assert batcher([]) == []
    assert batcher.calls == 0
    with pytest.raises(ValueError):
        DynamicBatcher(lambda items: items, max_batch=0)
    with pytest.raises(ValueError):
        DynamicBatcher(lambda items: items, max_wait_s=-1)


async def test_coroutines_share_calls_without_holding_threads() -> None:
    run = GatedRun()
    batcher: DynamicBatcher[int, int] = DynamicBatcher(run)
    first = asyncio.ensure_future(batcher.run_async([1]))
    assert await asyncio.to_thread(run.entered.wait, WAIT)
    others = [asyncio.ensure_future(batcher.run_async([i])) for i in range(2, 40)]
    await asyncio.sleep(0)  # let every coroutine submit
    run.release.set()
    results = await asyncio.wait_for(asyncio.gather(first, *others), WAIT)
    assert results == [[2 * i] for i in range(1, 40)]
    assert len(run.calls) == 2
    batcher.close()


# ---- the embedder ------------------------------------------------------------------------------

TEXTS = [
    "what is 1234 * 5678?",
    "summarize this report: the quarterly numbers went up, costs went down",
    "translate 'good morning' to French",
    "convert 9:30 Europe/Paris to Asia/Tokyo",
    "hi",
    "find every person named in the attached document and list their roles " * 4,
    "what is 1234 * 5678?",  # a duplicate inside the same batch
    "extract the dates",
]


def sharing(model: Embedder, embedder: Embedder) -> Embedder:
    """``embedder`` with ``model``'s loaded model (no second load)."""
    embedder._model, embedder.backend = model._model, model.backend
    return embedder


class GatedEmbedder(Embedder):
    """The session's loaded model behind a forward pass that holds its first call."""

    def __init__(self, model: Embedder) -> None:
        super().__init__(cache_size=0)
        sharing(model, self)
        self.batches: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def _forward(self, texts: list[str]) -> list[np.ndarray]:
        self.batches.append(list(texts))
        if len(self.batches) == 1:
            self.entered.set()
            assert self.release.wait(WAIT)
        return super()._forward(texts)


def alone(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """Each text in a forward pass of its own."""
    fresh = sharing(embedder, Embedder(cache_size=0))
    try:
        return np.stack([fresh.encode([text])[0] for text in texts])
    finally:
        fresh.close()


def test_concurrent_callers_get_their_own_vectors_from_shared_passes(embedder: Embedder) -> None:
    expected = alone(embedder, TEXTS)
    gated = GatedEmbedder(embedder)
    with ThreadPoolExecutor(len(TEXTS) + 1) as pool:
        first = pool.submit(gated.encode, ["warm-up request"])
        assert gated.entered.wait(WAIT)
        futures = [pool.submit(gated.encode, [text]) for text in TEXTS]
        while queued(gated) < len(TEXTS):
            threading.Event().wait(0.005)  # every caller queued behind the held pass
        gated.release.set()
        first.result(WAIT)
        got = np.stack([f.result(WAIT)[0] for f in futures])
    assert gated.forward_passes == 2  # eight callers, one shared pass after the held one
    assert sorted(gated.batches[1]) == sorted(TEXTS)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    gated.close()


def queued(embedder: Embedder) -> int:
    lane = embedder.batcher._lane
    return lane[0].qsize() if lane is not None else 0


async def test_aencode_shares_passes_and_matches_encode(embedder: Embedder) -> None:
    expected = alone(embedder, TEXTS)
    gated = GatedEmbedder(embedder)
    first = asyncio.ensure_future(gated.aencode(["warm-up request"]))
    assert await asyncio.to_thread(gated.entered.wait, WAIT)
    others = [asyncio.ensure_future(gated.aencode([text])) for text in TEXTS]
    while queued(gated) < len(TEXTS):
        await asyncio.sleep(0.005)  # every coroutine queued behind the held pass
    gated.release.set()
    got = await asyncio.wait_for(asyncio.gather(first, *others), WAIT)
    np.testing.assert_allclose(np.stack([g[0] for g in got[1:]]), expected, atol=1e-5)
    assert gated.forward_passes == 2
    gated.close()


def test_a_model_that_cannot_load_fails_every_waiting_caller() -> None:
    class Broken(Embedder):
        def load(self) -> None:
            raise EmbeddingError("embedding model weights missing under /nowhere")

    broken = Broken()
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(broken.encode, [f"text {i}"]) for i in range(4)]
        for future in futures:
            with pytest.raises(EmbeddingError, match="weights missing"):
                future.result(WAIT)
    broken.close()


def test_small_passes_run_torch_on_one_thread_large_ones_on_its_default() -> None:
    import torch

    from noosphere.models import embedding

    seen: list[tuple[int, int]] = []

    class Recording(Embedder):
        def _forward(self, texts: list[str]) -> list[np.ndarray]:
            result = super()._forward(texts)
            seen.append((len(set(texts)), torch.get_num_threads()))
            return result

    recording = Recording(cache_size=0, backend="torch")
    recording.encode(["one short request"])
    many = [f"index text {i}" for i in range(embedding.ONE_THREAD_MAX_TEXTS + 1)]
    recording.encode(many)
    assert seen == [(1, 1), (len(many), embedding._torch_default_threads)]
    recording.close()
