"""Execute: embedding-based ranking shared by the summary and keyword tools: a document vector
(centroid of its sentence vectors) and Maximal Marginal Relevance selection for diversity."""

from __future__ import annotations

import numpy as np


def centroid(vectors: np.ndarray) -> np.ndarray:
    """The unit-length mean of unit row vectors (zeros stay zeros)."""
    mean = vectors.mean(axis=0) if len(vectors) else np.zeros(vectors.shape[1], np.float32)
    norm = float(np.linalg.norm(mean))
    return (mean / norm if norm > 0 else mean).astype(np.float32)


def mmr(query: np.ndarray, candidates: np.ndarray, k: int, *, diversity: float) -> list[int]:
    """Indices of ``k`` candidates chosen by MMR: each step takes the candidate maximizing
    ``(1 - diversity) * sim(query) - diversity * max sim(already chosen)``; ties go to the
    earlier candidate, so the order is deterministic. Rows must be unit vectors."""
    n = len(candidates)
    if n == 0 or k <= 0:
        return []
    relevance = candidates @ query
    pairwise = candidates @ candidates.T
    chosen = [int(np.argmax(relevance))]
    redundancy = pairwise[chosen[0]].copy()
    available = np.ones(n, dtype=bool)
    available[chosen[0]] = False
    while len(chosen) < min(k, n):
        score = (1 - diversity) * relevance - diversity * redundancy
        score[~available] = -np.inf
        best = int(np.argmax(score))
        chosen.append(best)
        available[best] = False
        redundancy = np.maximum(redundancy, pairwise[best])
    return chosen
