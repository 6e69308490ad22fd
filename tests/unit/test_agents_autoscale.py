"""The orchestrator's scaling decisions: queue and utilization targets, bounds, stabilization
windows, cooldown, and no flapping on a noisy signal."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from noosphere.orchestration.autoscale import Autoscaler, ScalingPolicy, WorkerSample


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
        min_replicas=1,
        max_replicas=6,
        target_queue_per_worker=4,
        scale_down_stabilization_s=20,
        cooldown_s=5,
    )
    scaler = Autoscaler(policy)
    current, last_change = 1, None
    for step, backlog in enumerate(backlogs):
        now = step * 1.0
        decision = scaler.decide(load(backlog), current=current, now=now)
        assert policy.min_replicas <= decision.desired <= policy.max_replicas
        if decision.changes:
            assert last_change is None or now - last_change >= policy.cooldown_s
            last_change, current = now, decision.desired


def test_cpu_of_workers_not_ready_is_left_out() -> None:
    """A worker still loading its models burns CPU that is not load (like the HPA ignores
    pods that are not ready): only ready workers' utilization is averaged."""
    policy = ScalingPolicy(target_utilization=0.5, max_replicas=10, cooldown_s=0)
    samples = [
        WorkerSample("ready", 0, 0, 0.2),
        WorkerSample("loading", 0, 0, 1.0, ready=False),
    ]
    decision = Autoscaler(policy).decide(samples, current=2, now=0)
    assert decision.inputs["mean_utilization"] == 0.2
    assert decision.inputs["workers_ready"] == 1 and decision.inputs["workers"] == 2
    assert decision.recommended == 1  # with the loading one: ceil(2 * 0.6 / 0.5) = 3
    only_loading = Autoscaler(policy).decide(samples[1:], current=1, now=0)
    assert only_loading.inputs["by_utilization"] == 0 and only_loading.desired == 1


def test_turns_waiting_at_the_orchestrator_are_backlog_not_a_worker() -> None:
    policy = ScalingPolicy(target_queue_per_worker=4, max_replicas=10, cooldown_s=0)
    decision = Autoscaler(policy).decide(load(4, util=0.1), current=1, now=0, waiting=12)
    assert decision.inputs["backlog"] == 16 and decision.inputs["waiting"] == 12
    assert decision.inputs["workers"] == 1 and decision.inputs["mean_utilization"] == 0.1
    assert decision.desired == 4


def test_every_decision_has_a_direction_and_reason_code() -> None:
    policy = ScalingPolicy(
        target_queue_per_worker=1,
        target_utilization=0.5,
        max_replicas=8,
        scale_down_stabilization_s=10,
        cooldown_s=2,
    )
    scaler = Autoscaler(policy)
    up = scaler.decide(load(3), current=1, now=0)
    assert (up.direction, up.code) == ("up", "queue") and up.reason.startswith("backlog 3")
    cooling = scaler.decide(load(5), current=3, now=1)
    assert (cooling.direction, cooling.code) == ("none", "cooldown")
    hot = scaler.decide(load(0, workers=3, util=1.0), current=3, now=3)
    assert (hot.direction, hot.code, hot.desired) == ("up", "utilization", 6)
    held = scaler.decide(load(0), current=6, now=6)
    assert (held.direction, held.code, held.desired) == ("none", "stabilization", 6)
    assert "highest in the last 10 s is 6" in held.reason
    down = scaler.decide(load(0), current=6, now=17)
    assert (down.direction, down.code, down.desired) == ("down", "queue", 1)
    steady = scaler.decide(load(0), current=1, now=18)
    assert (steady.direction, steady.code, steady.reason) == ("none", "steady", "steady")


def test_scale_up_stabilization_holds_a_short_spike() -> None:
    policy = ScalingPolicy(target_queue_per_worker=1, scale_up_stabilization_s=3, cooldown_s=0)
    scaler = Autoscaler(policy)
    assert scaler.decide(load(0), current=1, now=0).desired == 1
    spike = scaler.decide(load(5), current=1, now=1)
    assert (spike.desired, spike.code) == (1, "stabilization")
    assert "lowest in the last 3 s is 1" in spike.reason
    assert scaler.decide(load(5), current=1, now=3.5).desired == 5  # the 1 left the window
