"""Wire formats (Settle): how a requester tells an agent "this task is paid for" and how an agent
says what it wants before it works.

A message to a priced agent carries a :class:`PaymentRef` under ``metadata[PAYMENT_METADATA_KEY]``:
the chain, the escrow contract and the id of an escrow the requester opened for that agent. The
agent's node reads the escrow on chain before it accepts the task; without a usable one the call
fails with ``PAYMENT_REQUIRED`` and :class:`PaymentTerms` as the error data. One escrow pays for one
task: an escrow id already bound to a task is refused (replay).
"""

from __future__ import annotations

import hashlib
import re

from pydantic import Field, field_validator

from .base import WireModel

PAYMENT_METADATA_KEY = "urn:noosphere:payment:v1"
RESULT_HASH_DOMAIN = b"noosphere/result/v1\x00"

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_BYTES32 = re.compile(r"^0x[0-9a-f]{64}$")


def _check_address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError("must be an EVM address (0x followed by 40 hex digits)")
    return value


class PaymentRef(WireModel):
    """Points at the escrow that pays for a task."""

    chain_id: int = Field(ge=1)
    escrow: str  # TaskEscrow contract address
    escrow_id: str  # bytes32, 0x + 64 lowercase hex digits

    @field_validator("escrow")
    @classmethod
    def _address(cls, value: str) -> str:
        return _check_address(value)

    @field_validator("escrow_id")
    @classmethod
    def _bytes32(cls, value: str) -> str:
        if not _BYTES32.match(value):
            raise ValueError("must be 0x followed by 64 lowercase hex digits")
        return value


class PaymentTerms(WireModel):
    """What a priced agent needs before it works (the data of a ``PAYMENT_REQUIRED`` error)."""

    agent: str  # card id
    price: str  # smallest token unit, decimal string
    token: str  # token contract address
    pay_to: str  # the agent node's EVM address (the escrow's agent)
    chain_id: int
    escrow: str  # the TaskEscrow contract the agent accepts
    min_deadline_s: int  # the escrow's deadline must be at least this far in the future
    reason: str


def escrow_id_for(requester_peer_id: str, submission_id: str, attempt: int) -> str:
    """The escrow id a requester uses for one attempt of one submission (unique per attempt)."""
    digest = hashlib.sha256(
        f"noosphere/escrow/v1\x00{requester_peer_id}\x00{submission_id}\x00{attempt}".encode()
    ).hexdigest()
    return "0x" + digest


def result_hash(canonical_artifacts: bytes) -> str:
    """The commitment an agent records on chain for a result: SHA-256 over a domain tag and the
    RFC 8785 canonical JSON of the task's artifacts, so the requester can recompute it."""
    return "0x" + hashlib.sha256(RESULT_HASH_DOMAIN + canonical_artifacts).hexdigest()
