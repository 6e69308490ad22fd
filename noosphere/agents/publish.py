"""Publish: turn an agent file plus the node's identity into a signed A2A Agent Card with the
noosphere extension. Every re-announcement gets a new sequence number and expiry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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

#: How callers authenticate (A2A security schemes): the operator's bearer token, or a request
#: signed with the calling node's key (see docs/protocol.md). An agent open to anyone also
#: lists the empty security requirement (OpenAPI: no credentials needed).
SECURITY_SCHEMES: dict[str, Any] = {
    "operatorToken": {
        "httpAuthSecurityScheme": {
            "scheme": "bearer",
            "description": "the node operator's token (rpc.token in the node home)",
        }
    },
    "peerSignature": {
        "apiKeySecurityScheme": {
            "location": "header",
            "name": "Noosphere-Signature",
            "description": "Ed25519 signature by the calling node over method, path, "
            "Noosphere-Timestamp, Noosphere-Nonce and the body hash",
        }
    },
}


#: The schemes each ``access`` level of an agent file accepts, in the card's order.
ACCESS_SCHEMES: dict[str, tuple[str, ...]] = {
    "operator": ("operatorToken",),
    "peers": ("operatorToken", "peerSignature"),
    "anyone": ("operatorToken", "peerSignature"),
}


def security_of(access: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The card's ``securitySchemes`` and ``securityRequirements`` for an ``access`` level:
    one requirement per accepted scheme, and an empty one first when anyone may call."""
    names = ACCESS_SCHEMES[access]
    requirements: list[dict[str, Any]] = [{"schemes": {name: {}}} for name in names]
    if access == "anyone":
        requirements.insert(0, {})
    return {name: SECURITY_SCHEMES[name] for name in names}, requirements


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
    tools: list[dict[str, Any]] | None = None,
    attestation: dict[str, Any] | None = None,
    registry_id: int | None = None,
) -> AgentCard:
    """The signed card for ``spec`` as served by the node that owns ``key``; ``tools`` are the
    JSON schemas of the agent's tools (function-calling shape), published in the extension;
    ``attestation`` is the attribute authority's signed statement of the node's attributes."""
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
        tools=tools or [],
        attestation=attestation,
        registry_id=registry_id,
    )
    schemes, requirements = security_of(spec.access)
    card = AgentCard(
        name=spec.name,
        description=spec.description,
        # JSON-RPC (POST /) first, then HTTP+JSON (/{tenant}/message:send, ...): one server
        supported_interfaces=[
            AgentInterface(url=endpoint.rpc_url, protocol_binding=binding, tenant=spec.id)
            for binding in ("JSONRPC", "HTTP+JSON")
        ],
        provider=AgentProvider(organization=spec.organization, url=spec.organization_url),
        version=spec.version,
        security_schemes=schemes,
        security_requirements=requirements,
        capabilities=AgentCapabilities(
            streaming=True,
            push_notifications=True,
            extended_agent_card=True,
            extensions=[
                AgentExtension(
                    uri=NOOSPHERE_EXTENSION_URI,
                    description="noosphere node identity, price, attributes and freshness",
                    params=params.to_wire(),
                )
            ],
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
