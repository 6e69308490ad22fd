"""Recruit, stage 1 (candidate generation): a faiss index of agent skill vectors (one unit vector
per skill, all-MiniLM-L6-v2), kept in step with the card store: cards are added, replaced and
removed as they arrive, change and expire. Small sets are searched exactly (inner product over
every vector); beyond ``exact_threshold`` vectors the index becomes an inverted file with 8-bit
scalar quantization (IVF-SQ8 of the vectors themselves, not residuals, trained on the vectors it
holds), which keeps search time and memory flat as the network grows; its recall against exact
search is measured by bench/mars.py. An agent's score is the best cosine of any of its skills."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import faiss
import numpy as np

DIMENSION = 384


@dataclass(frozen=True, slots=True)
class Hit:
    agent_id: str
    score: float  # cosine of the best-matching skill
    skill: int  # index of that skill in the profile


class VectorIndex:
    """Thread-safe; ``search`` may run in worker threads while cards arrive."""

    def __init__(
        self,
        *,
        dimension: int = DIMENSION,
        exact_threshold: int = 50_000,
        nprobe: int = 32,
    ) -> None:
        self.dimension = dimension
        self.exact_threshold = exact_threshold
        self.nprobe = nprobe
        # One query at a time: OpenMP threads only add overhead (bench/mars.py: a flat search
        # of 20k vectors took 13.6 ms with 2 threads on a busy 2-core machine, 1.9 ms with 1).
        faiss.omp_set_num_threads(1)
        self._lock = threading.RLock()
        self._index: faiss.Index = self._flat()
        self._approximate = False
        self._next_id = 0
        self._owner: dict[int, tuple[str, int]] = {}  # vector id -> (agent id, skill)
        self._ids: dict[str, list[int]] = {}  # agent id -> vector ids

    def _flat(self) -> faiss.Index:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimension))

    # ---- updates -----------------------------------------------------------------------------

    def upsert(self, agent_id: str, vectors: np.ndarray) -> None:
        """Index ``agent_id``'s skill vectors (rows), replacing what it had."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        with self._lock:
            self._remove_locked(agent_id)
            if not len(vectors):
                return
            ids = np.arange(self._next_id, self._next_id + len(vectors), dtype=np.int64)
            self._next_id += len(vectors)
            for skill, vector_id in enumerate(ids.tolist()):
                self._owner[vector_id] = (agent_id, skill)
            self._ids[agent_id] = ids.tolist()
            self._maybe_grow(len(vectors))
            self._index.add_with_ids(vectors, ids)

    def remove(self, agent_id: str) -> bool:
        with self._lock:
            return self._remove_locked(agent_id)

    def _remove_locked(self, agent_id: str) -> bool:
        ids = self._ids.pop(agent_id, None)
        if not ids:
            return False
        self._index.remove_ids(np.asarray(ids, dtype=np.int64))
        for vector_id in ids:
            del self._owner[vector_id]
        return True

    def _maybe_grow(self, incoming: int) -> None:
        """Switch to IVF-SQ8 once the exact index would pass the threshold (retrained on what
        is held; later additions use the trained quantizer)."""
        total = self._index.ntotal + incoming
        if self._approximate or total <= self.exact_threshold:
            return
        held = self._index.ntotal
        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        vectors = self._index.index.reconstruct_n(0, held) if held else None
        nlist = max(16, int(4 * math.sqrt(max(total, 1))))
        if vectors is None or len(vectors) < nlist:
            return  # not enough to train on yet; stay exact
        quantizer = faiss.IndexFlatIP(self.dimension)
        # Codes are the vectors themselves, not residuals to their list's centroid, on per-
        # dimension ranges widened by a fifth beyond those seen in training: residual codes
        # trained on a few tight clusters clip any skill unlike them (a new kind of agent),
        # which measured a cosine of 0.46 for a stored vector against itself.
        ivf = faiss.IndexIVFScalarQuantizer(
            quantizer,
            self.dimension,
            nlist,
            faiss.ScalarQuantizer.QT_8bit,
            faiss.METRIC_INNER_PRODUCT,
            False,
        )
        ivf.sq.rangestat = faiss.ScalarQuantizer.RS_minmax
        ivf.sq.rangestat_arg = 0.2
        ivf.train(vectors)
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # removals without scanning lists
        ivf.nprobe = self.nprobe
        ivf.add_with_ids(vectors, ids)
        self._index = ivf
        self._approximate = True

    # ---- queries -----------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock:
            return len(self._ids)

    @property
    def vectors(self) -> int:
        with self._lock:
            return int(self._index.ntotal)

    @property
    def approximate(self) -> bool:
        return self._approximate

    def search(self, query: np.ndarray, k: int) -> list[Hit]:
        """The ``k`` agents whose best skill is closest to ``query`` (a unit vector)."""
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(1, self.dimension)
        with self._lock:
            if self._index.ntotal == 0 or k <= 0:
                return []
            total = int(self._index.ntotal)
            k = min(k, len(self._ids))
            # Several vectors per agent: ask for more than k vectors, and more again while fewer
            # than k distinct agents come back (agents with many similar skills crowd the list).
            fetch = min(total, max(4 * k, k + 16))
            while True:
                best = self._best_per_agent(query, fetch)
                if len(best) >= k or fetch >= total:
                    break
                fetch = min(total, fetch * 4)
        ranked = sorted(best.values(), key=lambda h: (-h.score, h.agent_id))
        return ranked[:k]

    def score_agents(self, query: np.ndarray, agent_ids: Iterable[str]) -> dict[str, Hit]:
        """The best skill cosine of each listed agent that the index holds, whether or not a
        search would return it (its vectors are read back from the index: exact for the flat
        index, the 8-bit codes decoded for IVF-SQ8)."""
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(self.dimension)
        out: dict[str, Hit] = {}
        with self._lock:
            wanted = [(a, self._ids[a]) for a in dict.fromkeys(agent_ids) if a in self._ids]
            if not wanted:
                return out
            flat = np.asarray([v for _, ids in wanted for v in ids], dtype=np.int64)
            vectors = self._index.reconstruct_batch(flat)  # IDMap2 / hashtable direct map
        sims = vectors @ query
        at = 0
        for agent_id, ids in wanted:
            part = sims[at : at + len(ids)]
            skill = int(np.argmax(part))
            out[agent_id] = Hit(agent_id, float(part[skill]), skill)
            at += len(ids)
        return out

    def _best_per_agent(self, query: np.ndarray, fetch: int) -> dict[str, Hit]:
        scores, ids = self._index.search(query, fetch)
        best: dict[str, Hit] = {}
        for score, vector_id in zip(scores[0].tolist(), ids[0].tolist(), strict=True):
            if vector_id < 0:
                continue
            owner = self._owner.get(vector_id)
            if owner is None:
                continue
            agent_id, skill = owner
            if agent_id not in best or score > best[agent_id].score:
                best[agent_id] = Hit(agent_id, score, skill)
        return best
