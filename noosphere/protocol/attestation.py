"""Wire formats (Recruit and Execute): an attribute authority's signed statement that a node
holds attribute keys for a set of attributes in a key epoch. Agent cards carry it in the
noosphere extension, so a requester (and MARS) can tell, without seeing any key, whether an
agent can open a payload sealed under a policy. Signed like cards: detached JWS (EdDSA) over
RFC 8785 canonical JSON, by the authority's Ed25519 signing key (``issuer`` is its peer-id
style id)."""

from __future__ import annotations

from pydantic import Field

from noosphere.errors import InvalidData

from .base import WireModel
from .canonical import EncodingError, canonical_json
from .identity import NodeKey
from .jws import SignatureError, sign_detached, verify_detached


class AttestationError(InvalidData, ValueError):
    """The attestation is malformed, not signed by its issuer, expired, or about someone else."""


class Attestation(WireModel):
    authority: str = Field(min_length=1, max_length=128)  # fingerprint of the ABE public key
    issuer: str  # the authority's signing key, as a peer id
    epoch: int = Field(ge=0)
    subject: str  # the node (peer id) holding the keys
    attributes: list[str] = Field(max_length=1024)
    issued_at: int = Field(ge=0)  # unix ms
    expires_at: int = Field(ge=0)
    protected: str = ""
    signature: str = ""

    def signing_payload(self) -> bytes:
        body = self.to_signable()
        body.pop("protected", None)
        body.pop("signature", None)
        try:
            return canonical_json(body)
        except EncodingError as exc:
            raise AttestationError(f"attestation has no canonical form: {exc}") from exc


def sign_attestation(unsigned: Attestation, key: NodeKey) -> Attestation:
    if unsigned.issuer != key.peer_id:
        raise AttestationError("the attestation's issuer is not the signing key")
    protected, signature = sign_detached(unsigned.signing_payload(), key)
    return unsigned.model_copy(update={"protected": protected, "signature": signature})


def verify_attestation(
    attestation: Attestation,
    *,
    subject: str,
    now_ms: int,
    issuer: str | None = None,
    skew_ms: int = 0,
) -> Attestation:
    """Check signature, subject, validity window and (optionally) the expected issuer.
    ``skew_ms`` tolerates a verifier clock that is behind the issuer's (``issued_at``)."""
    if issuer is not None and attestation.issuer != issuer:
        raise AttestationError("attestation issued by another authority")
    if attestation.subject != subject:
        raise AttestationError("attestation is about another node")
    if not attestation.issued_at - skew_ms <= now_ms < attestation.expires_at:
        raise AttestationError("attestation is expired or not yet valid")
    try:
        verify_detached(
            attestation.signing_payload(),
            attestation.protected,
            attestation.signature,
            attestation.issuer,
        )
    except SignatureError as exc:
        raise AttestationError(f"attestation signature: {exc}") from exc
    return attestation
