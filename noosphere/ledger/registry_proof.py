"""Settle (identity on the ledger): the proof that an ``AgentRegistry`` entry belongs to the node it
names. The node's Ed25519 key (its libp2p identity) signs the chain id, the registry's address, the
owner account, the peer id and the agent's name; the registry stores the signature with the entry.
The EVM cannot verify Ed25519, so every noosphere reader checks the proof here and treats an entry
whose proof fails as not the peer's: anyone can register any peer id, nobody can prove someone
else's. The node's card (signed by the same key) names its ``registryId`` and ``evmAddress``, so
the binding is checked from both sides.

Signed bytes: ``"noosphere/registry/v1\\0" || RFC 8785 JSON {"agent", "chainId", "owner",
"peerId", "registry"}`` with addresses lower-cased and the chain id as a decimal string (chain ids
may exceed JSON's exact integers).
"""

from __future__ import annotations

from dataclasses import dataclass

from noosphere.protocol.canonical import canonical_json
from noosphere.protocol.identity import NodeKey, verify_signature

PROOF_DOMAIN = b"noosphere/registry/v1\x00"
#: Ed25519 signatures are 64 bytes; the registry accepts up to 128 (other key types later).
PROOF_BYTES = 64


def proof_message(chain_id: int, registry: str, owner: str, peer_id: str, agent_name: str) -> bytes:
    """The bytes a registration proof signs."""
    body = {
        "agent": agent_name,
        "chainId": str(chain_id),
        "owner": owner.lower(),
        "peerId": peer_id,
        "registry": registry.lower(),
    }
    return PROOF_DOMAIN + canonical_json(body)


def sign_registration(
    key: NodeKey, chain_id: int, registry: str, owner: str, agent_name: str
) -> bytes:
    """The proof ``key``'s node gives for registering ``agent_name`` under ``owner``."""
    return key.sign(proof_message(chain_id, registry, owner, key.peer_id, agent_name))


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """One ``AgentRegistry`` record with its current owner (as read from the chain)."""

    agent_id: int
    owner: str
    card_uri: str
    card_hash: str
    peer_id: str
    agent_name: str
    peer_proof: bytes


def proof_problem(entry: RegistryEntry, chain_id: int, registry: str) -> str | None:
    """Why ``entry``'s proof does not bind its peer id to its owner and name; None if it does."""
    if len(entry.peer_proof) != PROOF_BYTES:
        return f"the proof is {len(entry.peer_proof)} bytes, not an Ed25519 signature"
    message = proof_message(chain_id, registry, entry.owner, entry.peer_id, entry.agent_name)
    if not verify_signature(entry.peer_id, message, entry.peer_proof):
        return (
            f"the proof is not {entry.peer_id}'s signature over owner {entry.owner},"
            f" agent {entry.agent_name!r}, chain {chain_id}, registry {registry}"
        )
    return None


def binding_problem(
    entry: RegistryEntry,
    chain_id: int,
    registry: str,
    *,
    peer_id: str,
    agent_name: str,
    owner: str | None = None,
) -> str | None:
    """Why ``entry`` is not the proven identity of ``agent_name`` on ``peer_id`` (paid at
    ``owner``, the card's ``evmAddress``, when given); None if it is. The check a card's
    ``registryId`` gets."""
    if entry.peer_id != peer_id:
        return f"registry entry #{entry.agent_id} names peer {entry.peer_id}, not {peer_id}"
    if entry.agent_name != agent_name:
        return (
            f"registry entry #{entry.agent_id} names agent {entry.agent_name!r}, not {agent_name!r}"
        )
    if owner is not None and entry.owner.lower() != owner.lower():
        return f"registry entry #{entry.agent_id} belongs to {entry.owner}, not {owner}"
    problem = proof_problem(entry, chain_id, registry)
    return None if problem is None else f"registry entry #{entry.agent_id}: {problem}"
