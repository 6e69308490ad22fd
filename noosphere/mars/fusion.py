"""Recruit, stage 1 (hybrid candidate generation): fuse the vector half (best skill cosine) and
the lexical half (weighted BM25) into one score per agent. Every agent found by either half is a
candidate. Both scores are divided by the query's best one (an agent the lexical half did not
return counts 0; the vector index gives a cosine for every candidate, also those found only by
words), and the fused score is a convex combination
``share * cosine / best cosine + (1 - share) * bm25 / best bm25``.

The dense share depends on how many distinct words (after stop words) the request has: a short
request carries few words for BM25 to match and is better served by the vectors (paraphrases),
a long one names things that words find. The share is ``SHARE_SHORT`` up to ``TERMS_SHORT``
words, ``SHARE_LONG`` from ``TERMS_LONG`` words, linear in between. These four numbers were chosen
on the tuning halves of StableToolBench (long requests, BM25 beats vectors) and mars-dev (short
paraphrases, vectors beat BM25) and checked on the report halves (docs/performance.md, "Recruit:
quality"): a fixed share could not serve both (0.5 lost 25 points of Recall@1 on mars-dev, 0.9
lost 3 on StableToolBench)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .index import Hit
from .lexical import LexicalHit

#: Weight of the normalized cosine in the fused score for short and for long requests.
SHARE_SHORT = 0.9
SHARE_LONG = 0.5
TERMS_SHORT = 10
TERMS_LONG = 20


def dense_share(terms: int) -> float:
    """The weight of the cosine for a request of ``terms`` distinct words."""
    if terms <= TERMS_SHORT:
        return SHARE_SHORT
    if terms >= TERMS_LONG:
        return SHARE_LONG
    step = (terms - TERMS_SHORT) / (TERMS_LONG - TERMS_SHORT)
    return SHARE_SHORT - (SHARE_SHORT - SHARE_LONG) * step


@dataclass(frozen=True, slots=True)
class Candidate:
    agent_id: str
    fused: float  # stage 1 score
    cosine: float  # best skill cosine (vector half)
    skill: int  # that skill's index in the profile
    lexical: float  # BM25 / the query's best BM25, in [0, 1] (0: not found by words)


def fuse(
    dense: Mapping[str, Hit], lexical: Sequence[LexicalHit], *, share: float
) -> list[Candidate]:
    """One candidate per agent in ``dense`` (which must hold every agent of ``lexical`` that the
    vector index still has), best fused score first, ties by agent id. ``share`` 1 with no
    lexical hits: the fused score is the raw cosine (stage 1 on vectors alone)."""
    best = max((h.score for h in lexical), default=0.0)
    words = {h.agent_id: h.score / best for h in lexical} if best > 0 else {}
    top = max((h.score for h in dense.values()), default=0.0)
    scale = 1.0 if share >= 1.0 or top <= 0 else 1.0 / top
    out = []
    for agent_id, hit in dense.items():
        lex = words.get(agent_id, 0.0)
        fused = share * hit.score * scale + (1.0 - share) * lex
        out.append(Candidate(agent_id, fused, hit.score, hit.skill, lex))
    out.sort(key=lambda c: (-c.fused, c.agent_id))
    return out
