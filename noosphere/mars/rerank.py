"""Recruit, stage 2 (re-scoring): look again at each stage 1 candidate with features that a single
fused score cannot hold, all cheap (no model call: the vectors and BM25 scores come from stage 1),
and combine them linearly into the candidate's relevance:

* ``fused``: the stage 1 score (cosine and normalized BM25);
* ``cosine``: the best skill cosine on its own, and ``lexical``: normalized BM25 on its own (the
  fused score fixes their mix; re-scoring moves it for the candidates that made the pool);
* ``name``: the request names the agent (its whole name, as words, at least three characters):
  people often ask for a tool by name;
* ``skill_name``: the share of the agent's skill names (at least four characters) that the
  request names;
* ``example``: how much closer the request is to one of the agent's skill examples than to its
  best skill text (``max(0, example cosine - skill cosine)``; examples are written like
  requests, so a paraphrase often matches one better than the skill's description).

The weights were fitted on the tuning half of StableToolBench (coordinate search on Recall@1 +
nDCG@10) and checked on its report half and on mars-dev (docs/performance.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from .fusion import Candidate
from .profile import AgentProfile

_WORDS = re.compile(r"[a-z0-9]+")


class RescoreWeights(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fused: float = Field(1.0, ge=0)
    cosine: float = Field(0.0, ge=0)
    lexical: float = Field(0.0, ge=0)
    name: float = Field(0.2, ge=0)
    skill_name: float = Field(0.2, ge=0)
    example: float = Field(1.0, ge=0)


@dataclass(frozen=True, slots=True)
class Rescored:
    agent_id: str
    relevance: float
    features: dict[str, float]


def words(text: str) -> str:
    """Lowercased alphanumeric words joined by single spaces, padded with a space each side (so
    a phrase test is a substring test on whole words)."""
    return " " + " ".join(_WORDS.findall(text.lower())) + " "


@lru_cache(maxsize=65_536)
def _name_words(name: str) -> str:
    """``words`` of an agent or skill name (names recur in every query: cached)."""
    return words(name[:200])


def mention_features(task_words: str, profile: AgentProfile) -> tuple[float, float]:
    """(name, skill_name) of ``profile`` for a request already passed through ``words``."""
    name = _name_words(profile.name)
    named = 1.0 if len(name) >= 5 and name in task_words else 0.0  # 3+ characters of words
    skills = [_name_words(s.name) for s in profile.skills]
    skills = [s for s in skills if len(s) >= 6]
    skill_named = sum(1 for s in skills if s in task_words) / len(skills) if skills else 0.0
    return named, skill_named


def rescore(
    task: str,
    candidates: Sequence[Candidate],
    profiles: Mapping[str, AgentProfile],
    weights: RescoreWeights | None = None,
    *,
    examples: Mapping[str, float] | None = None,
) -> list[Rescored]:
    """One re-scored candidate per input, in the input order. ``examples``: agent id -> the
    request's best cosine with one of its skill examples (agents without examples absent)."""
    examples = examples or {}
    w = weights or RescoreWeights()
    task_words = words(task[:20_000])
    out = []
    for c in candidates:
        named, skill_named = mention_features(task_words, profiles[c.agent_id])
        example = max(0.0, examples.get(c.agent_id, c.cosine) - c.cosine)
        features = {
            "fused": c.fused,
            "cosine": c.cosine,
            "lexical": c.lexical,
            "name": named,
            "skill_name": skill_named,
            "example": example,
        }
        relevance = sum(getattr(w, name) * value for name, value in features.items())
        out.append(Rescored(c.agent_id, relevance, features))
    return out
