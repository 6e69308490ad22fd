"""Recruit: what MARS knows about an agent, whatever the source (a signed card learned by gossip,
a bid, or a line of an evaluation set). Everything downstream (index, filter, ranking) works on
these profiles, never on raw cards, so the pipeline is tested and evaluated without a node."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from noosphere.protocol import AgentCard, CardError


@dataclass(frozen=True, slots=True)
class SkillProfile:
    name: str
    description: str
    tags: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    input_modes: tuple[str, ...] = ()
    output_modes: tuple[str, ...] = ()

    def text(self) -> str:
        """The text a skill is embedded and scored by."""
        parts = [f"{self.name}: {self.description}"]
        if self.tags:
            parts.append("tags: " + ", ".join(self.tags))
        if self.examples:
            parts.append("examples: " + "; ".join(self.examples))
        return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class AgentProfile:
    agent_id: str  # card id (PEER_ID/AGENT_ID) for network agents, any id in evaluation sets
    name: str
    description: str
    skills: tuple[SkillProfile, ...]
    peer_id: str = ""
    rpc_url: str = ""
    tenant: str | None = None
    price: int = 0  # smallest token unit per task
    attributes: tuple[str, ...] = ()
    attestation: dict[str, Any] | None = None
    input_modes: tuple[str, ...] = ()
    output_modes: tuple[str, ...] = ()
    issued_at: int = 0  # unix ms, card freshness
    expires_at: int = 0
    latency_ms: float | None = None  # as advertised; observed latency comes from history
    extra: dict[str, Any] = field(default_factory=dict)

    def texts(self) -> list[str]:
        """One text per skill, each prefixed by the agent's own name and description."""
        head = f"{self.name}: {self.description}"
        if not self.skills:
            return [head]
        return [f"{head}\n{skill.text()}" for skill in self.skills]


def profile_from_card(card_id: str, card: AgentCard) -> AgentProfile:
    """The profile of a verified card (raises CardError when the extension is missing)."""
    ext = card.noosphere()
    interface = card.supported_interfaces[0] if card.supported_interfaces else None
    try:
        price = int(ext.price.amount)
    except ValueError as exc:  # pragma: no cover - Price validates digits
        raise CardError(f"card {card_id}: bad price") from exc
    return AgentProfile(
        agent_id=card_id,
        name=card.name,
        description=card.description,
        skills=tuple(
            SkillProfile(
                name=s.name,
                description=s.description,
                tags=tuple(s.tags),
                examples=tuple(s.examples),
                input_modes=tuple(s.input_modes),
                output_modes=tuple(s.output_modes),
            )
            for s in card.skills
        ),
        peer_id=ext.peer_id,
        rpc_url=interface.url if interface else "",
        tenant=interface.tenant if interface else None,
        price=price,
        attributes=tuple(ext.attributes),
        attestation=ext.attestation,
        input_modes=tuple(card.default_input_modes),
        output_modes=tuple(card.default_output_modes),
        issued_at=ext.issued_at,
        expires_at=ext.expires_at,
        latency_ms=ext.latency_ms,
    )


def profile_from_record(record: dict[str, Any]) -> AgentProfile:
    """A profile from an evaluation-set line: {"id","name","description","skills":[...]} where a
    skill is a string or {"name","description","tags","examples"}."""
    skills: list[SkillProfile] = []
    raw_skills: Sequence[Any] = record.get("skills") or []
    for raw in raw_skills:
        if isinstance(raw, str):
            skills.append(SkillProfile(name=raw, description=raw))
        else:
            skills.append(
                SkillProfile(
                    name=str(raw.get("name", "")),
                    description=str(raw.get("description", raw.get("name", ""))),
                    tags=tuple(raw.get("tags") or ()),
                    examples=tuple(raw.get("examples") or ()),
                )
            )
    return AgentProfile(
        agent_id=str(record["id"]),
        name=str(record.get("name", record["id"])),
        description=str(record.get("description", "")),
        skills=tuple(skills),
        price=int(record.get("price", 0)),
        attributes=tuple(record.get("attributes") or ()),
    )
