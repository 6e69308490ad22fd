"""Feedback feeding Recruit: what this node learned from its own tasks about which agent does
well on which kind of request. Every rated task leaves (request vector, agent, rating); for a new
request, an agent's past requests are compared with it, and the ratings of the similar ones
(cosine above ``MIN_SIMILARITY``, weighted by how far above) count as Beta evidence:
``(good + 1) / (good + bad + 2)`` where ``good`` sums ``w * rating`` and ``bad`` sums
``w * (1 - rating)``. An agent nobody asked anything similar has no evidence and stays neutral
(``None``), so the feature reorders only where this node has seen outcomes on like requests: an
agent that failed a kind of request sinks for that kind only, one that did well rises.

Memory is bounded: at most ``per_agent`` outcomes per agent (the oldest go first) and
``max_agents`` agents (the least recently rated go first). Vectors are stored as float16."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Iterable

import numpy as np

#: Past requests less similar than this to a new one say nothing about it.
MIN_SIMILARITY = 0.35
#: How many of an agent's most similar past requests count.
NEAREST = 8


class OutcomeMemory:
    """Thread-safe store of rated outcomes and the request-similarity feature built on it."""

    def __init__(
        self,
        *,
        per_agent: int = 64,
        max_agents: int = 20_000,
        min_similarity: float = MIN_SIMILARITY,
    ) -> None:
        self.per_agent = per_agent
        self.max_agents = max_agents
        self.min_similarity = min_similarity
        self._lock = threading.Lock()
        self._by_agent: OrderedDict[str, deque[tuple[np.ndarray, float]]] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._by_agent.values())

    def record(self, agent_id: str, request: np.ndarray, rating: float) -> None:
        """One rated outcome: ``request`` is the task's unit vector, ``rating`` in [0, 1]."""
        if not 0.0 <= rating <= 1.0:
            raise ValueError(f"rating must be in [0, 1], got {rating}")
        vector = np.asarray(request, dtype=np.float16).reshape(-1)
        with self._lock:
            past = self._by_agent.pop(agent_id, None)
            if past is None:
                past = deque(maxlen=self.per_agent)
            past.append((vector, float(rating)))
            self._by_agent[agent_id] = past  # most recently rated last
            while len(self._by_agent) > self.max_agents:
                self._by_agent.popitem(last=False)

    def score(self, request: np.ndarray, agent_ids: Iterable[str]) -> dict[str, float]:
        """For each listed agent with evidence on requests like ``request``: the Beta mean of
        its similarity-weighted ratings, in (0, 1). Agents without such evidence are absent."""
        query = np.asarray(request, dtype=np.float32).reshape(-1)
        out: dict[str, float] = {}
        with self._lock:
            pasts = [(a, list(self._by_agent[a])) for a in agent_ids if a in self._by_agent]
        for agent_id, past in pasts:
            vectors = np.vstack([v for v, _ in past]).astype(np.float32)
            ratings = np.asarray([r for _, r in past], dtype=np.float32)
            sims = vectors @ query
            nearest = np.argsort(-sims)[:NEAREST]
            weights = np.clip(sims[nearest] - self.min_similarity, 0.0, None) / (
                1.0 - self.min_similarity
            )
            if not np.any(weights > 0):
                continue
            good = float(np.sum(weights * ratings[nearest]))
            bad = float(np.sum(weights * (1.0 - ratings[nearest])))
            out[agent_id] = (good + 1.0) / (good + bad + 2.0)
        return out
