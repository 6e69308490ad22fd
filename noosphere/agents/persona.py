"""Execute: an agent's persona from its agent file: the system prompt an LLM backend receives
(identity, style, goals, refusal rules), and the refusal check every request goes through first,
whichever planner runs (a refused request ends ``rejected`` with the rule it matched)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from noosphere.models.embedding import Embedder

from .spec import AgentSpec

#: Cosine similarity between a request and a refusal rule above which the rule applies.
REFUSAL_SIMILARITY = 0.55


def _mentions(text: str, rule: str) -> bool:
    """Whether ``text`` contains the words of ``rule`` as whole words, ignoring case and how
    they are spaced ("Tax  advice" matches "tax advice"; "C++" matches although it ends in
    non-word characters, where a plain ``\\b`` boundary never matches)."""
    words = rule.split()
    if not words:
        return False
    pattern = r"\s+".join(re.escape(word) for word in words)
    return re.search(rf"(?<!\w){pattern}(?!\w)", text, re.IGNORECASE) is not None


@dataclass(frozen=True, slots=True)
class Refusal:
    rule: str
    similarity: float


class Persona:
    def __init__(self, spec: AgentSpec, embedder: Embedder) -> None:
        self.name = spec.name
        self.description = spec.description
        self.spec = spec.persona
        self._embedder = embedder
        self._rule_vectors: np.ndarray | None = None

    def system_prompt(self) -> str:
        lines = [f"You are {self.name}: {self.description}"]
        if self.spec.prompt.strip():
            lines.append(self.spec.prompt.strip())
        if self.spec.style.strip():
            lines.append(f"Style: {self.spec.style.strip()}")
        if self.spec.goals:
            lines.append("Goals: " + "; ".join(self.spec.goals))
        if self.spec.refuse:
            lines.append("Refuse any request about: " + "; ".join(self.spec.refuse))
        lines.append("Use exactly one of your tools to answer; never invent a result.")
        return "\n".join(lines)

    def refusal(self, text: str) -> Refusal | None:
        """The refusal rule ``text`` falls under (word match or meaning), or None. Blocking."""
        rules = self.spec.refuse
        if not rules or not text.strip():
            return None
        for rule in rules:
            if _mentions(text, rule):
                return Refusal(rule, 1.0)
        if self._rule_vectors is None:
            self._rule_vectors = self._embedder.encode(rules)
        scores = self._rule_vectors @ self._embedder.encode_one(text[:2000])
        best = int(np.argmax(scores))
        if scores[best] >= REFUSAL_SIMILARITY:
            return Refusal(rules[best], float(scores[best]))
        return None
