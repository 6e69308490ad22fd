"""Feedback (operations): how many workers an orchestrator wants. Each observation of the
workers (queued and running task turns, CPU utilization) gives a recommendation, like the
Kubernetes horizontal pod autoscaler: enough workers for the queue at ``target_queue_per_worker``,
and enough for the load at ``target_utilization``, whichever is more, within [min, max].
Scale-up follows the lowest recommendation of its (short) stabilization window, scale-down the
highest of its (long) window, and no change happens within ``cooldown_s`` of the last one, so a
noisy signal cannot make the pool flap. Like the HPA, the CPU of a worker that is not ready yet
(still loading its models) is left out: start-up work is not load. Every decision records its
inputs, a readable reason and a reason code (for the decisions counter of /metrics).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ScalingPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(8, ge=1)
    target_queue_per_worker: float = Field(4.0, gt=0, description="turns (queued + running)")
    target_utilization: float = Field(0.7, gt=0, le=1, description="CPU share per worker")
    scale_up_stabilization_s: float = Field(0.0, ge=0)
    scale_down_stabilization_s: float = Field(30.0, ge=0)
    cooldown_s: float = Field(5.0, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> ScalingPolicy:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        return self


@dataclass(frozen=True, slots=True)
class WorkerSample:
    """One worker's metrics at one moment (from its /metrics)."""

    name: str
    queued: float  # noosphere_task_queue_depth
    running: float  # noosphere_tasks_running
    utilization: float | None = None  # CPU seconds per second over the last interval, or None
    ready: bool = True  # serving with its models loaded; otherwise its CPU is not load


# Reason codes: what drove a decision (a small fixed set, usable as a metric label).
QUEUE = "queue"  # scaled for the backlog (queued + running turns)
UTILIZATION = "utilization"  # scaled for the CPU load
STEADY = "steady"  # the recommendation is the current count
STABILIZATION = "stabilization"  # a different count is recommended, the window holds it
COOLDOWN = "cooldown"  # a change was due, but the last one was too recent
REASON_CODES = (QUEUE, UTILIZATION, STEADY, STABILIZATION, COOLDOWN)


@dataclass(frozen=True, slots=True)
class Decision:
    at: float
    current: int
    desired: int
    recommended: int
    reason: str
    inputs: dict[str, float] = field(default_factory=dict)
    code: str = STEADY  # one of REASON_CODES

    @property
    def changes(self) -> bool:
        return self.desired != self.current

    @property
    def direction(self) -> str:
        """``up``, ``down`` or ``none``: the change this decision applies."""
        if self.desired > self.current:
            return "up"
        return "down" if self.desired < self.current else "none"


class Autoscaler:
    def __init__(self, policy: ScalingPolicy) -> None:
        self.policy = policy
        self._recommendations: deque[tuple[float, int]] = deque()
        self._last_change: float | None = None

    def recommend(
        self, samples: list[WorkerSample], current: int, waiting: float = 0.0
    ) -> tuple[int, dict[str, float]]:
        """The replica count these samples call for (before windows and cooldown); ``waiting``
        is backlog held outside the workers (turns queued at the orchestrator)."""
        p = self.policy
        backlog = sum(s.queued + s.running for s in samples) + waiting
        by_queue = math.ceil(backlog / p.target_queue_per_worker)
        utilizations = [s.utilization for s in samples if s.ready and s.utilization is not None]
        mean_util = sum(utilizations) / len(utilizations) if utilizations else 0.0
        by_util = math.ceil(current * mean_util / p.target_utilization) if utilizations else 0
        wanted = max(by_queue, by_util)
        inputs = {
            "workers": float(len(samples)),
            "workers_ready": float(sum(1 for s in samples if s.ready)),
            "waiting": float(waiting),
            "backlog": backlog,
            "mean_utilization": round(mean_util, 4),
            "by_queue": float(by_queue),
            "by_utilization": float(by_util),
        }
        return min(p.max_replicas, max(p.min_replicas, wanted)), inputs

    def decide(
        self, samples: list[WorkerSample], current: int, now: float, waiting: float = 0.0
    ) -> Decision:
        p = self.policy
        recommended, inputs = self.recommend(samples, current, waiting)
        self._recommendations.append((now, recommended))
        horizon = now - max(p.scale_up_stabilization_s, p.scale_down_stabilization_s)
        while self._recommendations and self._recommendations[0][0] < horizon:
            self._recommendations.popleft()

        def window(seconds: float) -> list[int]:
            return [r for t, r in self._recommendations if t >= now - seconds]

        by_util = inputs["by_utilization"] > inputs["by_queue"]
        signal = UTILIZATION if by_util else QUEUE
        why = (
            f"utilization {inputs['mean_utilization']:g} needs {recommended}"
            if by_util
            else f"backlog {inputs['backlog']:g} needs {recommended}"
        )
        if recommended > current:
            lowest = min(window(p.scale_up_stabilization_s) or [recommended])
            desired = max(current, lowest)
            code = signal if desired > current else STABILIZATION
            reason = why
            if desired < recommended:
                reason += f"; lowest in the last {p.scale_up_stabilization_s:g} s is {lowest}"
        elif recommended < current:
            desired = min(current, max(window(p.scale_down_stabilization_s) or [recommended]))
            code = signal if desired < current else STABILIZATION
            reason = f"{why}; highest in the last {p.scale_down_stabilization_s:g} s is {desired}"
        else:
            desired, code, reason = current, STEADY, "steady"
        if desired != current and self._last_change is not None:
            since = now - self._last_change
            if since < p.cooldown_s:
                return Decision(
                    now,
                    current,
                    current,
                    recommended,
                    f"cooldown: {since:.1f} s since the last change < {p.cooldown_s:g} s; {why}",
                    inputs,
                    COOLDOWN,
                )
        if desired != current:
            self._last_change = now
        return Decision(now, current, desired, recommended, reason, inputs, code)
