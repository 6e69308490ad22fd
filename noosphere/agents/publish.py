"""Publish: turn an agent file plus the node's identity into a signed A2A Agent Card with the
noosphere extension. Every re-announcement gets a new sequence number and expiry."""

from __future__ import annotations

from dataclasses import dataclass

from noosphere.protocol import (
    NOOSPHERE_EXTENSION_URI,
    AgentCapabilities,
    AgentCard,
    AgentExtension,
    AgentInterface,
    AgentProvider,
    AgentSkill,
    NodeKey,
    NoosphereCardParams,
    Price,
    sign_card,
)

from .spec import AgentSpec


@dataclass(frozen=True, slots=True)
class NodeEndpoint:
    """Where a node can be reached: what every card from it advertises."""

    rpc_url: str
    multiaddrs: list[str]
    evm_address: str | None = None


def build_card(
    spec: AgentSpec,
    key: NodeKey,
    endpoint: NodeEndpoint,
    *,
    seq: int,
    issued_at_ms: int,
    ttl_ms: int,
) -> AgentCard:
    """The signed card for ``spec`` as served by the node that owns ``key``."""
    params = NoosphereCardParams(
        peer_id=key.peer_id,
        agent_id=spec.id,
        multiaddrs=endpoint.multiaddrs,
        evm_address=endpoint.evm_address,
        attributes=spec.attributes,
        price=Price(amount=str(spec.price.amount), token=spec.price.token, unit=spec.price.unit),
        seq=seq,
        issued_at=issued_at_ms,
        expires_at=issued_at_ms + ttl_ms,
    )
    card = AgentCard(
        name=spec.name,
        description=spec.description,
        supported_interfaces=[AgentInterface(url=endpoint.rpc_url, tenant=spec.id)],
        provider=AgentProvider(organization=spec.organization, url=spec.organization_url),
        version=spec.version,
        capabilities=AgentCapabilities(
            extensions=[
                AgentExtension(
                    uri=NOOSPHERE_EXTENSION_URI,
                    description="noosphere node identity, price, attributes and freshness",
                    params=params.to_wire(),
                )
            ]
        ),
        default_input_modes=spec.input_modes,
        default_output_modes=spec.output_modes,
        skills=[
            AgentSkill(
                id=s.id,
                name=s.name,
                description=s.description,
                tags=s.tags,
                examples=s.examples,
                input_modes=s.input_modes,
                output_modes=s.output_modes,
            )
            for s in spec.skills
        ],
    )
    return sign_card(card, key)
