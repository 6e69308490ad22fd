"""Recruit, stage 1 (hybrid candidate generation): fuse the vector half (best skill cosine) and
the lexical half (weighted BM25) into one score per agent. Every agent found by either half is a
candidate; its lexical score is divided by the best lexical score of the query (an agent the
lexical half did not return counts 0) and its cosine is taken as is (the vector index gives it
for every candidate, also those found only by words). The fused score is a convex combination:
``DENSE_SHARE * cosine + (1 - DENSE_SHARE) * lexical / best lexical``. The share was chosen on
the tuning half of StableToolBench and checked on its report half and on mars-dev
(docs/performance.md, "Recruit: quality")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .index import Hit
from .lexical import LexicalHit

#: Weight of the cosine in the fused stage 1 score (the rest goes to normalized BM25).
DENSE_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class Candidate:
    agent_id: str
    fused: float  # stage 1 score
    cosine: float  # best skill cosine (vector half)
    skill: int  # that skill's index in the profile
    lexical: float  # BM25 / the query's best BM25, in [0, 1] (0: not found by words)


def fuse(
    dense: Mapping[str, Hit],
    lexical: Sequence[LexicalHit],
    *,
    dense_share: float = DENSE_SHARE,
) -> list[Candidate]:
    """One candidate per agent in ``dense`` (which must hold every agent of ``lexical`` that the
    vector index still has), best fused score first, ties by agent id."""
    best = max((h.score for h in lexical), default=0.0)
    words = {h.agent_id: h.score / best for h in lexical} if best > 0 else {}
    out = []
    for agent_id, hit in dense.items():
        lex = words.get(agent_id, 0.0)
        fused = dense_share * hit.score + (1.0 - dense_share) * lex
        out.append(Candidate(agent_id, fused, hit.score, hit.skill, lex))
    out.sort(key=lambda c: (-c.fused, c.agent_id))
    return out
