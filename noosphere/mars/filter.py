"""Recruit, stage 2 (semantic filter): look at each candidate closely, skill by skill, and apply
the requester's hard constraints. Offline it is a real local stage: the task is compared with
every skill's description and with each of its examples (all-MiniLM-L6-v2 cosines), which
re-scores candidates far better than stage 1's one vector per skill; then required tags,
input/output modes, the price budget, card expiry and the task's ABE policy against the agent's
verified attribute attestation are checked. Every rejection carries its reason. With an LLM
endpoint configured, an LLM judge can veto candidates on top (batched, with a timeout; on any
failure the offline verdicts stand and the output says so)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from noosphere.abe.policy import Policy, PolicyError, parse_policy
from noosphere.models.embedding import Embedder
from noosphere.models.llm import LlmBackend, LlmError
from noosphere.models.text import instruction_of
from noosphere.protocol.attestation import Attestation, AttestationError, verify_attestation

from .profile import AgentProfile

#: Below this re-scored similarity a candidate is not relevant to the task.
#: Measured on the development set (bench/data/mars-dev): 0.25 rejected about one relevant
#: agent per query (short paraphrased requests score low); 0.15 keeps them and still drops
#: unrelated agents.
MIN_RELEVANCE = 0.15
ALWAYS_READ = frozenset({"text/plain", "application/json"})
_EXAMPLE_WEIGHT = 0.4
#: Tolerated lag of this node's clock behind the attribute authority's (attestation issued_at).
ATTESTATION_SKEW_MS = 5 * 60_000
#: How long the LLM judge may take before the offline verdicts stand.
JUDGE_TIMEOUT_S = 20.0


@dataclass(frozen=True, slots=True)
class Constraints:
    required_tags: tuple[str, ...] = ()
    input_modes: tuple[str, ...] = ()  # media types the task sends
    output_modes: tuple[str, ...] = ()  # media types the requester accepts (any of them)
    max_price: int | None = None
    policy: str | None = None  # ABE policy the agent's attested attributes must satisfy
    trusted_issuers: frozenset[str] | None = None  # attestation signers the requester trusts


@dataclass(frozen=True, slots=True)
class Verdict:
    profile: AgentProfile
    relevance: float  # re-scored similarity (best skill)
    skill: int  # best skill index
    reason: str | None = None  # None: kept
    notes: list[str] = field(default_factory=list)

    @property
    def kept(self) -> bool:
        return self.reason is None


class SemanticFilter:
    def __init__(self, embedder: Embedder, *, min_relevance: float = MIN_RELEVANCE) -> None:
        self._embedder = embedder
        self.min_relevance = min_relevance

    def judge(
        self,
        task: str,
        candidates: Sequence[AgentProfile],
        constraints: Constraints,
        *,
        now_ms: int,
    ) -> list[Verdict]:
        """One verdict per candidate, in the input order (blocking: embeds texts)."""
        policy = _parse(constraints.policy)
        scores = self._rescore(task, candidates)
        verdicts = []
        for profile, (relevance, skill) in zip(candidates, scores, strict=True):
            reason = _hard_constraint(profile, constraints, policy, now_ms)
            if reason is None and relevance < self.min_relevance:
                reason = f"not relevant: best skill scores {relevance:.3f} < {self.min_relevance}"
            verdicts.append(Verdict(profile, relevance, skill, reason))
        return verdicts

    def _rescore(self, task: str, candidates: Sequence[AgentProfile]) -> list[tuple[float, int]]:
        """Per candidate: max over skills of 0.6·cos(task, skill) + 0.4·max cos(task, example),
        the task being its full text or its instruction (the words before a document it
        carries, so "summarize this: <report about outages>" is about summarizing)."""
        texts: list[str] = [task, instruction_of(task)]
        layout: list[list[tuple[int, list[int]]]] = []
        for profile in candidates:
            skills = []
            for skill_text, examples in _skill_texts(profile):
                skill_at = len(texts)
                texts.append(skill_text)
                example_at = list(range(len(texts), len(texts) + len(examples)))
                texts.extend(examples)
                skills.append((skill_at, example_at))
            layout.append(skills)
        vectors = self._embedder.encode(texts)
        sims = np.maximum(vectors @ vectors[0], vectors @ vectors[1])
        out = []
        for skills in layout:
            best, best_skill = -1.0, 0
            for i, (skill_at, example_at) in enumerate(skills):
                score = float(sims[skill_at])
                if example_at:
                    example = float(np.max(sims[example_at]))
                    score = (1 - _EXAMPLE_WEIGHT) * score + _EXAMPLE_WEIGHT * max(score, example)
                if score > best:
                    best, best_skill = score, i
            out.append((best, best_skill))
        return out


def _skill_texts(profile: AgentProfile) -> list[tuple[str, list[str]]]:
    if not profile.skills:
        return [(f"{profile.name}: {profile.description}", [])]
    return [
        (f"{skill.name}: {skill.description}. {profile.description}", list(skill.examples))
        for skill in profile.skills
    ]


def validate_policy(policy: str) -> None:
    """Raise ValueError when ``policy`` is not a valid access policy."""
    _parse(policy)


def _parse(policy: str | None) -> Policy | None:
    if policy is None:
        return None
    try:
        return parse_policy(policy)
    except PolicyError as exc:
        raise ValueError(str(exc)) from exc


def _hard_constraint(
    profile: AgentProfile, c: Constraints, policy: Policy | None, now_ms: int
) -> str | None:
    if profile.expires_at and profile.expires_at <= now_ms:
        return "card expired"
    tags = {t.lower() for skill in profile.skills for t in skill.tags}
    missing = [t for t in c.required_tags if t.lower() not in tags]
    if missing:
        return "lacks required tags: " + ", ".join(missing)
    reads = set(profile.input_modes) | ALWAYS_READ
    reads |= {m for skill in profile.skills for m in skill.input_modes}
    unread = [m for m in c.input_modes if not any(_media_match(m, r) for r in reads)]
    if unread:
        return "cannot read " + ", ".join(unread)
    writes = set(profile.output_modes) | {"text/plain"}
    writes |= {m for skill in profile.skills for m in skill.output_modes}
    if c.output_modes and not any(_media_match(w, a) for w in writes for a in c.output_modes):
        return "answers in none of " + ", ".join(c.output_modes)
    if c.max_price is not None and profile.price > c.max_price:
        return f"price {profile.price} over the budget {c.max_price}"
    if policy is not None:
        return _policy_reason(profile, policy, c.trusted_issuers, now_ms)
    return None


def _media_match(a: str, b: str) -> bool:
    """Whether two media types overlap: case-insensitive, parameters ignored, ``*/*`` and
    ``type/*`` wildcards on either side."""
    a_type, _, a_sub = a.split(";", 1)[0].strip().lower().partition("/")
    b_type, _, b_sub = b.split(";", 1)[0].strip().lower().partition("/")
    return (a_type == "*" or b_type == "*" or a_type == b_type) and (
        a_sub in ("*", "") or b_sub in ("*", "") or a_sub == b_sub
    )


def _policy_reason(
    profile: AgentProfile, policy: Policy, issuers: frozenset[str] | None, now_ms: int
) -> str | None:
    if profile.attestation is None:
        return "no attribute attestation (cannot open sealed task data)"
    try:
        attestation = Attestation.model_validate(profile.attestation)
        if issuers is not None and attestation.issuer not in issuers:
            return "attestation from an authority the requester does not trust"
        verify_attestation(
            attestation, subject=profile.peer_id, now_ms=now_ms, skew_ms=ATTESTATION_SKEW_MS
        )
    except (ValueError, AttestationError) as exc:
        return f"attestation invalid: {exc}"
    if not policy.satisfied_by(attestation.attributes):
        return f"attested attributes do not satisfy {policy}"
    return None


#: Ask for a JSON object (OpenAI's JSON mode; llama.cpp turns it into a grammar, so even a small
#: local model answers with parseable JSON).
JSON_MODE: dict[str, object] = {"response_format": {"type": "json_object"}}
#: Candidates the judge reads at most (the best by stage 2 relevance): the listing must fit a
#: small model's context, and its cost grows with every candidate.
JUDGE_MAX_CANDIDATES = 20


class LlmJudge:
    """Asks an OpenAI-compatible model which kept candidates can do the task (one batched
    request over the best ``max_candidates``); returns the ids it rejects with its reasons.
    Any failure (endpoint, timeout, an answer that is not the JSON asked for): no vetoes."""

    def __init__(
        self,
        backend: LlmBackend,
        *,
        timeout_s: float = JUDGE_TIMEOUT_S,
        max_candidates: int = JUDGE_MAX_CANDIDATES,
        extra: dict[str, object] | None = None,
        json_schema: bool = False,
    ) -> None:
        """``json_schema``: constrain the answer to the judge's schema (ids limited to the
        candidates shown) in llama.cpp's ``response_format`` dialect - a small local model
        then cannot answer anything else; other servers take plain JSON mode."""
        self._backend = backend
        self.timeout_s = timeout_s
        self.max_candidates = max_candidates
        self.extra: dict[str, object] = JSON_MODE if extra is None else extra  # beyond messages
        self.json_schema = json_schema

    async def vetoes(self, task: str, kept: Iterable[Verdict]) -> tuple[dict[str, str], str]:
        best = sorted(kept, key=lambda v: -v.relevance)[: self.max_candidates]
        listing: list[dict[str, object]] = [
            {
                "id": v.profile.agent_id,
                "name": v.profile.name,
                "skills": [s.name + ": " + s.description for s in v.profile.skills],
            }
            for v in best
        ]
        if not listing:
            return {}, "llm judge: nothing to judge"
        messages = [
            {
                "role": "system",
                "content": "You decide which agents can do a task. Answer only JSON: "
                '{"reject": [{"id": ..., "reason": ...}]} listing agents that cannot.',
            },
            {"role": "user", "content": json.dumps({"task": task, "agents": listing})},
        ]
        try:
            reply = await asyncio.wait_for(
                self._backend.chat(
                    messages, tools=None, tool_choice=None, extra=self._extra(listing)
                ),
                self.timeout_s,
            )
            data = json.loads(_strip_fences(reply.content or "{}"))
            shown = {entry["id"] for entry in listing}
            rejected = {
                str(item["id"]): "llm judge: " + str(item.get("reason") or "judged unable")
                for item in data.get("reject", [])
                if str(item["id"]) in shown  # a made-up id vetoes nothing
            }
        except (LlmError, TimeoutError, ValueError, KeyError, TypeError, AttributeError) as exc:
            return {}, f"llm judge failed ({type(exc).__name__}); offline verdicts kept"
        return rejected, f"llm judge ({self._backend.config.model})"

    def _extra(self, listing: list[dict[str, object]]) -> dict[str, object]:
        if not self.json_schema:
            return self.extra
        reject = {
            "type": "object",
            "properties": {
                "id": {"type": "string", "enum": [entry["id"] for entry in listing]},
                "reason": {"type": "string", "maxLength": 60},
            },
            "required": ["id", "reason"],
        }
        schema = {
            "type": "object",
            "properties": {"reject": {"type": "array", "items": reject, "maxItems": len(listing)}},
            "required": ["reject"],
        }
        extra: dict[str, object] = {**self.extra}
        extra["response_format"] = {"type": "json_object", "schema": schema}
        return extra


def _strip_fences(text: str) -> str:
    """Models often wrap JSON in a Markdown code fence: keep what is inside."""
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text


def constraint_reasons(
    candidates: Sequence[AgentProfile], constraints: Constraints, *, now_ms: int
) -> list[str | None]:
    """The hard constraints alone (no relevance), one reason or None per candidate, in order:
    what the recruiter's stage 2 applies after its own re-scoring. Raises ValueError for a
    malformed policy."""
    policy = _parse(constraints.policy)
    return [_hard_constraint(p, constraints, policy, now_ms) for p in candidates]
