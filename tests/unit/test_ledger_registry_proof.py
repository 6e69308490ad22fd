"""The peer-key proof an agent registry entry carries (Settle's identity check): the node's Ed25519
key signs (chain id, registry, owner, peer id, agent name); readers accept an entry only if its
proof verifies for exactly those values."""

from __future__ import annotations

import dataclasses

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from web3 import Web3

from noosphere.ledger.registry_proof import (
    RegistryEntry,
    binding_problem,
    proof_message,
    proof_problem,
    sign_registration,
)
from noosphere.protocol import NodeKey

NODE = NodeKey.from_seed(b"\x07" * 32)
OTHER = NodeKey.from_seed(b"\x08" * 32)
ADDRESSES = st.binary(min_size=20, max_size=20).map(lambda b: Web3.to_checksum_address(b))
NAMES = st.text(min_size=1, max_size=40)


def entry_for(chain_id: int, registry: str, owner: str, name: str) -> RegistryEntry:
    proof = sign_registration(NODE, chain_id, registry, owner, name)
    return RegistryEntry(
        agent_id=1,
        owner=owner,
        card_uri="https://x/card",
        card_hash="0x" + "00" * 32,
        peer_id=NODE.peer_id,
        agent_name=name,
        peer_proof=proof,
    )


@settings(max_examples=60, deadline=None)
@given(
    chain_id=st.integers(1, 2**63),
    registry=ADDRESSES,
    owner=ADDRESSES,
    name=NAMES,
    field=st.sampled_from(["chain", "registry", "owner", "peer", "name", "proof"]),
    other_chain=st.integers(1, 2**63),
    other_address=ADDRESSES,
    other_name=NAMES,
    flip=st.integers(0, 63),
)
def test_a_proof_holds_for_exactly_what_it_signed(
    chain_id: int,
    registry: str,
    owner: str,
    name: str,
    field: str,
    other_chain: int,
    other_address: str,
    other_name: str,
    flip: int,
) -> None:
    entry = entry_for(chain_id, registry, owner, name)
    assert proof_problem(entry, chain_id, registry) is None
    # addresses are compared case-insensitively (checksummed or not, one identity)
    assert (
        proof_problem(dataclasses.replace(entry, owner=owner.lower()), chain_id, registry.lower())
        is None
    )
    if field == "chain":
        assume(other_chain != chain_id)
        chain_id = other_chain
    elif field == "registry":
        assume(other_address.lower() != registry.lower())
        registry = other_address
    elif field == "owner":
        assume(other_address.lower() != owner.lower())
        entry = dataclasses.replace(entry, owner=other_address)
    elif field == "peer":
        entry = dataclasses.replace(entry, peer_id=OTHER.peer_id)
    elif field == "name":
        assume(other_name != name)
        entry = dataclasses.replace(entry, agent_name=other_name)
    else:
        proof = bytearray(entry.peer_proof)
        proof[flip] ^= 0x01
        entry = dataclasses.replace(entry, peer_proof=bytes(proof))
    assert proof_problem(entry, chain_id, registry) is not None


def test_someone_elses_key_cannot_prove_a_peer_id() -> None:
    registry, owner = "0x" + "11" * 20, "0x" + "22" * 20
    forged = sign_registration(OTHER, 1, registry, owner, "calc")
    entry = dataclasses.replace(entry_for(1, registry, owner, "calc"), peer_proof=forged)
    problem = proof_problem(entry, 1, registry)
    assert problem is not None and NODE.peer_id in problem
    short = dataclasses.replace(entry, peer_proof=b"\x01")
    assert "not an Ed25519 signature" in (proof_problem(short, 1, registry) or "")


def test_binding_checks_the_cards_peer_name_and_payee() -> None:
    registry, owner = "0x" + "11" * 20, "0x" + "22" * 20
    entry = entry_for(1, registry, owner, "calc")
    ok = {"peer_id": NODE.peer_id, "agent_name": "calc", "owner": owner.upper().replace("X", "x")}
    assert binding_problem(entry, 1, registry, **ok) is None
    assert "names peer" in (
        binding_problem(entry, 1, registry, **{**ok, "peer_id": OTHER.peer_id}) or ""
    )
    assert "names agent" in (binding_problem(entry, 1, registry, **{**ok, "agent_name": "x"}) or "")
    assert "belongs to" in (binding_problem(entry, 1, registry, **{**ok, "owner": registry}) or "")
    assert "#1" in (binding_problem(entry, 2, registry, **ok) or "")


def test_the_signed_bytes_are_domain_separated_canonical_json() -> None:
    message = proof_message(1, "0xAB" + "00" * 19, "0xCD" + "00" * 19, NODE.peer_id, "calc")
    assert message.startswith(b"noosphere/registry/v1\x00{")
    assert b'"registry":"0xab' in message and b'"owner":"0xcd' in message
