"""Recruit, stage 3 (multi-feature ranking): relevance, reputation, observed latency, availability
(card freshness), history with this requester, outcomes on similar requests (this node's rated
tasks, ``outcomes.OutcomeMemory``) and price, each scaled to [0, 1], combined by
configurable weights. Missing evidence counts as neutral (0.5), so a new agent is neither
favoured nor buried. Ties break by agent id, so the same inputs always give the same order, and
every score comes with its parts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from .profile import AgentProfile

NEUTRAL = 0.5


class RankingWeights(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    relevance: float = Field(0.45, ge=0)
    reputation: float = Field(0.20, ge=0)
    latency: float = Field(0.05, ge=0)
    availability: float = Field(0.05, ge=0)
    history: float = Field(0.10, ge=0)
    outcome: float = Field(0.15, ge=0)
    price: float = Field(0.15, ge=0)

    def normalized(self) -> dict[str, float]:
        weights = self.model_dump()
        total = sum(weights.values()) or 1.0
        return {name: value / total for name, value in weights.items()}


class Signals(Protocol):
    """What the node has learned about agents (trust, observed latency, history)."""

    def reputation(self, agent_id: str) -> float | None:
        """Trust in [0, 1], or None without evidence."""
        ...

    def history(self, requester: str, agent_id: str) -> float | None:
        """How this requester's own tasks with the agent went, in [0, 1], or None."""
        ...

    def latency_ms(self, agent_id: str) -> float | None:
        """Observed task latency, or None."""
        ...


class NoSignals:
    """A node that has learned nothing yet: every signal is neutral."""

    def reputation(self, agent_id: str) -> float | None:
        return None

    def history(self, requester: str, agent_id: str) -> float | None:
        return None

    def latency_ms(self, agent_id: str) -> float | None:
        return None


@dataclass(frozen=True, slots=True)
class Ranked:
    profile: AgentProfile
    score: float
    features: dict[str, float]  # each in [0, 1]
    contributions: dict[str, float] = field(default_factory=dict)  # weight x feature

    def explain(self, top: int = 3) -> str:
        """The features that weighed most, e.g. ``relevance 0.74, price 0.67, reputation 0.50``."""
        parts = sorted(self.contributions.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        return ", ".join(f"{name} {self.features[name]:.2f}" for name, _ in parts)


def scale_relevance(relevance: float) -> float:
    """Stage 2 relevance lives in roughly [0.1, 1.3] (the fused stage 1 score, at most 1 for the
    best candidate, plus re-scoring's bonuses for names and examples; a cosine when a bid's
    relevance is ranked): spread that over [0, 1] without clipping the best candidates to ties."""
    return min(1.0, max(0.0, (relevance - 0.1) / 1.2))


def rank(
    candidates: list[tuple[AgentProfile, float]],
    *,
    requester: str,
    signals: Signals,
    weights: RankingWeights,
    now_ms: int,
    max_price: int | None = None,
    outcomes: Mapping[str, float] | None = None,
) -> list[Ranked]:
    """Order ``(profile, relevance)`` pairs best first. ``outcomes``: agent id -> how its tasks
    on requests like this one went, in [0, 1] (absent: neutral)."""
    outcomes = outcomes or {}
    w = weights.normalized()
    out: list[Ranked] = []
    for profile, relevance in candidates:
        latency = signals.latency_ms(profile.agent_id)
        if latency is None:  # observed beats advertised, even an observed 0 ms
            latency = profile.latency_ms
        features = {
            "relevance": scale_relevance(relevance),
            "reputation": _or_neutral(signals.reputation(profile.agent_id)),
            "latency": NEUTRAL if latency is None else 1.0 / (1.0 + latency / 1000.0),
            "availability": _freshness(profile, now_ms),
            "history": _or_neutral(signals.history(requester, profile.agent_id)),
            "outcome": _or_neutral(outcomes.get(profile.agent_id)),
            "price": _price_feature(profile.price, max_price),
        }
        contributions = {name: w[name] * value for name, value in features.items()}
        out.append(Ranked(profile, sum(contributions.values()), features, contributions))
    # Equal scores (e.g. relevance clipped to 0) fall back to raw relevance, then the card id.
    raw = {profile.agent_id: relevance for profile, relevance in candidates}
    out.sort(key=lambda r: (-round(r.score, 12), -raw[r.profile.agent_id], r.profile.agent_id))
    return out


def _or_neutral(value: float | None) -> float:
    return NEUTRAL if value is None else min(1.0, max(0.0, value))


def _freshness(profile: AgentProfile, now_ms: int) -> float:
    """1 for a card just re-announced, falling to 0 at its expiry (unknown: neutral)."""
    if not profile.expires_at or profile.expires_at <= profile.issued_at:
        return NEUTRAL
    remaining = (profile.expires_at - now_ms) / (profile.expires_at - profile.issued_at)
    return min(1.0, max(0.0, remaining))


def _price_feature(price: int, max_price: int | None) -> float:
    if max_price:
        return max(0.0, 1.0 - price / max_price)
    return 1.0 / (1.0 + price / 10.0)
