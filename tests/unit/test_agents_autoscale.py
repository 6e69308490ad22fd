"""The orchestrator's scaling decisions: queue and utilization targets, bounds, stabilization
windows, cooldown, and no flapping on a noisy signal."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from noosphere.agents.autoscale import Autoscaler, ScalingPolicy, WorkerSample


def load(queued: float, running: float = 0.0, workers: int = 1, util: float | None = None):
    return [
        WorkerSample(f"w{i}", queued / workers, running / workers, util) for i in range(workers)
    ]


def test_queue_target_sets_the_recommendation() -> None:
    scaler = Autoscaler(ScalingPolicy(target_queue_per_worker=4, max_replicas=10, cooldown_s=0))
    decision = scaler.decide(load(200), current=1, now=0)
    assert decision.recommended == 10  # capped by max_replicas
    assert decision.desired == 10 and decision.changes
    assert decision.inputs["backlog"] == 200


def test_utilization_target_scales_like_the_hpa() -> None:
    policy = ScalingPolicy(target_utilization=0.5, max_replicas=10, cooldown_s=0)
    decision = Autoscaler(policy).decide(load(0, workers=2, util=0.9), current=2, now=0)
    assert decision.recommended == 4  # ceil(2 * 0.9 / 0.5)


def test_min_replicas_hold_when_idle() -> None:
    decision = Autoscaler(ScalingPolicy(min_replicas=2)).decide(load(0), current=2, now=0)
    assert decision.desired == 2 and decision.reason == "steady"


def test_scale_down_waits_for_its_stabilization_window() -> None:
    policy = ScalingPolicy(target_queue_per_worker=1, scale_down_stabilization_s=30, cooldown_s=0)
    scaler = Autoscaler(policy)
    assert scaler.decide(load(6), current=1, now=0).desired == 6
    assert scaler.decide(load(0), current=6, now=10).desired == 6  # 6 still in the window
    assert scaler.decide(load(0), current=6, now=29).desired == 6
    assert scaler.decide(load(0), current=6, now=41).desired == 1  # window passed


def test_cooldown_blocks_back_to_back_changes() -> None:
    policy = ScalingPolicy(target_queue_per_worker=1, scale_down_stabilization_s=0, cooldown_s=5)
    scaler = Autoscaler(policy)
    assert scaler.decide(load(3), current=1, now=0).desired == 3
    blocked = scaler.decide(load(8), current=3, now=2)
    assert blocked.desired == 3 and blocked.reason.startswith("cooldown")
    assert scaler.decide(load(8), current=3, now=6).desired == 8


def test_bad_policy_is_refused() -> None:
    with pytest.raises(ValidationError):
        ScalingPolicy(min_replicas=5, max_replicas=2)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=5, max_size=60))
def test_no_flapping_and_always_in_bounds(backlogs: list[int]) -> None:
    """A noisy signal changes the count at most once per cooldown, never outside the bounds."""
    policy = ScalingPolicy(
        min_replicas=1, max_replicas=6, target_queue_per_worker=4,
        scale_down_stabilization_s=20, cooldown_s=5,
    )  # fmt: skip
    scaler = Autoscaler(policy)
    current, last_change = 1, None
    for step, backlog in enumerate(backlogs):
        now = step * 1.0
        decision = scaler.decide(load(backlog), current=current, now=now)
        assert policy.min_replicas <= decision.desired <= policy.max_replicas
        if decision.changes:
            assert last_change is None or now - last_change >= policy.cooldown_s
            last_change, current = now, decision.desired
