"""Wire formats (Settle): how a requester tells an agent "this task is paid for, by me" and how an
agent says what it wants before it works.

A message to a priced agent carries a :class:`PaymentRef` under ``metadata[PAYMENT_METADATA_KEY]``:
the chain, the escrow contract, the id of an escrow the requester opened for that agent, and a
:class:`PaymentAuthorization`: the requester's EVM key signs (EIP-712) the escrow id together with
the calling principal (the requester node's peer id) and the message id, under a domain naming the
chain and the escrow contract. The agent's node reads the escrow on chain and accepts the task only
if the signer is the escrow's requester and the principal is the authenticated caller, so an escrow
id seen in public cannot be spent by anyone else. Without a usable reference the call fails with
``PAYMENT_REQUIRED`` and :class:`PaymentTerms` as the error data. One escrow pays for one task: an
escrow id already bound to a task is refused (replay).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Protocol

from pydantic import Field, field_validator

from noosphere.errors import InvalidData

from .base import WireModel
from .identity import InvalidPeerId, public_key_from_peer_id

PAYMENT_METADATA_KEY = "urn:noosphere:payment:v1"
RESULT_HASH_DOMAIN = b"noosphere/result/v1\x00"

#: The EIP-712 domain of payment authorizations (chain id and escrow contract come from the ref).
AUTHORIZATION_DOMAIN_NAME = "noosphere payment"
AUTHORIZATION_DOMAIN_VERSION = "1"
AUTHORIZATION_TYPE = [
    {"name": "escrowId", "type": "bytes32"},
    {"name": "principal", "type": "string"},
    {"name": "messageId", "type": "string"},
]
MAX_MESSAGE_ID_CHARS = 128
#: TaskEscrow.MAX_REASON_BYTES: a dispute reason is for the arbiter; evidence stays off chain.
MAX_DISPUTE_REASON_BYTES = 1024

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_BYTES32 = re.compile(r"^0x[0-9a-f]{64}$")
_SIGNATURE = re.compile(r"^0x[0-9a-f]{130}$")
_SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


class InvalidAuthorization(InvalidData, ValueError):
    """A payment authorization is missing or its signature cannot be recovered."""


class TypedDataSigner(Protocol):
    """What signs an authorization: an ``eth_account`` ``LocalAccount``."""

    def sign_message(self, signable_message: Any) -> Any: ...


def _check_address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError("must be an EVM address (0x followed by 40 hex digits)")
    return value


class PaymentAuthorization(WireModel):
    """The requester's EIP-712 signature binding an escrow to one caller and one message."""

    principal: str  # the peer id that sends the message (the agent checks it is the caller)
    message_id: str = Field(min_length=1, max_length=MAX_MESSAGE_ID_CHARS)
    signature: str  # 65 bytes (r, s, v) as 0x + 130 lowercase hex digits

    @field_validator("principal")
    @classmethod
    def _peer_id(cls, value: str) -> str:
        try:
            public_key_from_peer_id(value)
        except InvalidPeerId as exc:
            raise ValueError(f"must be a peer id: {exc}") from exc
        return value

    @field_validator("signature")
    @classmethod
    def _signature(cls, value: str) -> str:
        if not _SIGNATURE.match(value):
            raise ValueError("must be 0x followed by 130 lowercase hex digits (65 bytes)")
        return value


class PaymentRef(WireModel):
    """Points at the escrow that pays for a task, with the requester's authorization to use it."""

    chain_id: int = Field(ge=1)
    escrow: str  # TaskEscrow contract address
    escrow_id: str  # bytes32, 0x + 64 lowercase hex digits
    authorization: PaymentAuthorization | None = None  # required by agents (PAYMENT_REQUIRED)

    @field_validator("escrow")
    @classmethod
    def _address(cls, value: str) -> str:
        return _check_address(value)

    @field_validator("escrow_id")
    @classmethod
    def _bytes32(cls, value: str) -> str:
        return _check_bytes32(value)


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
    arbiters: list[str] = Field(default_factory=list)  # arbiters an escrow may name
    arbiter_required: bool = False  # false: an escrow without an arbiter is accepted too


def _check_bytes32(value: str) -> str:
    if not _BYTES32.match(value):
        raise ValueError("must be 0x followed by 64 lowercase hex digits")
    return value


class EscrowReleaseParams(WireModel):
    """``noosphere.ledger.release`` (operator): pay the agent of an escrow this node opened."""

    escrow_id: str

    @field_validator("escrow_id")
    @classmethod
    def _bytes32(cls, value: str) -> str:
        return _check_bytes32(value)


class EscrowDisputeParams(WireModel):
    """``noosphere.ledger.dispute`` (operator): contest the result committed for an escrow this
    node opened; the escrow's arbiter decides. ``deliveredHash`` defaults to the hash of the
    result this node received for it (none if nothing arrived)."""

    escrow_id: str
    reason: str = Field(min_length=1)
    delivered_hash: str | None = None

    @field_validator("escrow_id", "delivered_hash")
    @classmethod
    def _bytes32(cls, value: str | None) -> str | None:
        return None if value is None else _check_bytes32(value)

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if len(value.encode()) > MAX_DISPUTE_REASON_BYTES:
            raise ValueError(f"must be at most {MAX_DISPUTE_REASON_BYTES} bytes (UTF-8)")
        return value


class EscrowSettled(WireModel):
    """What ``noosphere.ledger.release`` / ``dispute`` did: the escrow's new state and the tx."""

    escrow_id: str
    state: str
    tx: str


def authorization_typed_data(
    chain_id: int, escrow: str, escrow_id: str, principal: str, message_id: str
) -> dict[str, Any]:
    """The EIP-712 typed data a payment authorization signs (``eth_account`` full message)."""
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, "PaymentAuthorization": AUTHORIZATION_TYPE},
        "primaryType": "PaymentAuthorization",
        "domain": {
            "name": AUTHORIZATION_DOMAIN_NAME,
            "version": AUTHORIZATION_DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": escrow,
        },
        "message": {
            "escrowId": bytes.fromhex(escrow_id[2:]),
            "principal": principal,
            "messageId": message_id,
        },
    }


def authorize_payment(
    ref: PaymentRef, signer: TypedDataSigner, principal: str, message_id: str
) -> PaymentRef:
    """``ref`` with the authorization of ``signer`` (the escrow's requester) for ``principal`` to
    pay with it for the message ``message_id``."""
    from eth_account.messages import encode_typed_data

    typed = authorization_typed_data(ref.chain_id, ref.escrow, ref.escrow_id, principal, message_id)
    signed = signer.sign_message(encode_typed_data(full_message=typed))
    authorization = PaymentAuthorization(
        principal=principal, message_id=message_id, signature="0x" + bytes(signed.signature).hex()
    )
    return ref.model_copy(update={"authorization": authorization})


def authorization_signer(ref: PaymentRef) -> str:
    """The EVM address (checksummed) that signed ``ref``'s authorization; ``InvalidAuthorization``
    if there is none or it does not recover."""
    from eth_account import Account
    from eth_account.messages import encode_typed_data

    auth = ref.authorization
    if auth is None:
        raise InvalidAuthorization("the payment reference carries no authorization")
    signature = bytes.fromhex(auth.signature[2:])
    if signature[64] not in (27, 28) or int.from_bytes(signature[32:64], "big") > _SECP256K1_HALF_N:
        # one encoding per signature (EIP-2 low s, v 27/28), as eth_account produces them
        raise InvalidAuthorization("the authorization signature is not in canonical form")
    typed = authorization_typed_data(
        ref.chain_id, ref.escrow, ref.escrow_id, auth.principal, auth.message_id
    )
    try:
        signer: str = Account.recover_message(
            encode_typed_data(full_message=typed), signature=signature
        )
    except Exception as exc:  # eth_keys raises several types for malformed signatures
        raise InvalidAuthorization(f"the authorization signature does not recover: {exc}") from exc
    return signer


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
