"""Wire formats (Publish, Discover): the A2A v1.0 Agent Card (field names as in ``a2a-sdk`` 1.x,
proto package ``lf.a2a.v1``) plus the noosphere extension carried in
``capabilities.extensions``, and the card's JWS signature.

The signature follows A2A: RFC 8785 canonical JSON of the card without ``signatures`` and with
empty strings, lists and objects removed, signed as a detached JWS (EdDSA, ``kid`` = peer id), so
the reference SDK's verifier accepts noosphere cards.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from noosphere.errors import InvalidData

from .base import WireModel
from .canonical import EncodingError, canonical_json
from .envelope import MAX_LIFETIME_MS, EnvelopeRejected, RejectReason
from .identity import InvalidPeerId, NodeKey, public_key_from_peer_id
from .jws import SignatureError, sign_detached, verify_detached

NOOSPHERE_EXTENSION_URI = "urn:noosphere:card:v1"
A2A_PROTOCOL_VERSION = "1.0"
#: Largest card (compact JSON) a node stores or relays; cards of the example agents take ~3.5 KB.
MAX_CARD_BYTES = 32 * 1024


class AgentProvider(WireModel):
    organization: str
    url: str


class AgentInterface(WireModel):
    url: str
    protocol_binding: str = "JSONRPC"
    protocol_version: str = A2A_PROTOCOL_VERSION
    tenant: str | None = None


class AgentExtension(WireModel):
    uri: str
    description: str | None = None
    required: bool | None = None
    params: dict[str, Any] | None = None


class AgentCapabilities(WireModel):
    streaming: bool | None = None
    push_notifications: bool | None = None
    extensions: list[AgentExtension] = Field(default_factory=list)
    extended_agent_card: bool | None = None


class AgentSkill(WireModel):
    id: str
    name: str
    description: str
    tags: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)
    input_modes: list[str] = Field(default_factory=list)
    output_modes: list[str] = Field(default_factory=list)


class AgentCardSignature(WireModel):
    protected: str
    signature: str
    header: dict[str, Any] | None = None


class Price(WireModel):
    """What an agent charges: ``amount`` in the token's smallest unit, as a decimal string."""

    amount: str = "0"
    token: str = "NOOS"
    unit: str = "task"

    @field_validator("amount")
    @classmethod
    def _non_negative_integer(cls, value: str) -> str:
        if not value.isdigit():
            raise ValueError("price amount must be a non-negative integer string")
        return value


class NoosphereCardParams(WireModel):
    """The noosphere extension: who runs the agent, where, for how much, and how fresh this is."""

    peer_id: str
    agent_id: str
    multiaddrs: list[str] = Field(default_factory=list)
    evm_address: str | None = None
    attributes: list[str] = Field(default_factory=list)
    attestation: dict[str, Any] | None = None
    price: Price = Field(default_factory=Price)
    latency_ms: int | None = None
    availability: int | None = None  # percent of the last window the agent answered
    reputation: int | None = None  # permille, as seen by the card's own node
    tools: list[dict[str, Any]] = Field(default_factory=list)  # {name, description, parameters}
    registry_id: int | None = Field(None, ge=1)  # the agent's identity token on the ledger
    seq: int = Field(ge=0)
    issued_at: int = Field(ge=0)  # unix milliseconds
    expires_at: int = Field(ge=0)  # unix milliseconds

    @field_validator("peer_id")
    @classmethod
    def _valid_peer_id(cls, value: str) -> str:
        try:
            public_key_from_peer_id(value)
        except InvalidPeerId as exc:
            raise ValueError(str(exc)) from exc
        return value

    @property
    def card_id(self) -> str:
        return card_id(self.peer_id, self.agent_id)


class AgentCard(WireModel):
    """An A2A v1.0 Agent Card. Unknown top-level fields from newer peers are kept, not rejected."""

    model_config = WireModel.model_config | {"extra": "allow"}

    name: str
    description: str
    supported_interfaces: list[AgentInterface] = Field(default_factory=list)
    provider: AgentProvider | None = None
    version: str
    documentation_url: str | None = None
    capabilities: AgentCapabilities = Field(default_factory=AgentCapabilities)
    security_schemes: dict[str, Any] | None = None
    security_requirements: list[dict[str, Any]] | None = None
    default_input_modes: list[str] = Field(default_factory=list)
    default_output_modes: list[str] = Field(default_factory=list)
    skills: list[AgentSkill] = Field(default_factory=list)
    signatures: list[AgentCardSignature] = Field(default_factory=list)
    icon_url: str | None = None

    def noosphere(self) -> NoosphereCardParams:
        """The noosphere extension's parameters; raises ``CardError`` when absent or invalid."""
        for extension in self.capabilities.extensions:
            if extension.uri == NOOSPHERE_EXTENSION_URI:
                try:
                    return NoosphereCardParams.model_validate(extension.params or {})
                except ValueError as exc:
                    raise CardError(f"invalid noosphere extension: {exc}") from exc
        raise CardError("card has no noosphere extension")


class CardError(InvalidData, ValueError):
    """Raised when a card is malformed, unsigned or signed by the wrong node."""


class CardSignatureError(CardError):
    """Raised when a card is unsigned or no signature verifies for the node it names."""


def card_id(peer_id: str, agent_id: str) -> str:
    """A card's network-wide id: the node's peer id and the agent's id on that node."""
    return f"{peer_id}/{agent_id}"


def _drop_empty(value: Any) -> Any:
    """Remove empty strings, lists and objects recursively (A2A canonicalization rule)."""
    if isinstance(value, dict):
        cleaned = {k: c for k, v in value.items() if (c := _drop_empty(v)) is not None}
        return cleaned or None
    if isinstance(value, list):
        items = [c for v in value if (c := _drop_empty(v)) is not None]
        return items or None
    if isinstance(value, str) and not value:
        return None
    return value


def card_signing_payload(card: AgentCard) -> bytes:
    """The bytes a card signature covers: canonical JSON of the card minus its signatures.
    Raises CardError when the card has no canonical form (non-finite or huge numbers)."""
    fields = card.to_signable()
    fields.pop("signatures", None)
    for extension in fields.get("capabilities", {}).get("extensions", []):
        # A2A's proto field has no presence, so the SDK never sees (or signs) required=false.
        if extension.get("required") is False:
            del extension["required"]
    try:
        return canonical_json(_drop_empty(fields) or {})
    except EncodingError as exc:
        raise CardError(f"card has no canonical form: {exc}") from exc


def sign_card(card: AgentCard, key: NodeKey) -> AgentCard:
    """Return ``card`` with its signatures replaced by one JWS from ``key``."""
    unsigned = card.model_copy(update={"signatures": []})
    protected, signature = sign_detached(card_signing_payload(unsigned), key)
    return unsigned.model_copy(
        update={"signatures": [AgentCardSignature(protected=protected, signature=signature)]}
    )


def check_card_limits(
    params: NoosphereCardParams, size_bytes: int, *, now_ms: int, max_skew_ms: int
) -> None:
    """The network's rules for any card a node stores or relays, whoever sent it: at most
    ``MAX_CARD_BYTES``, valid for at most ``MAX_LIFETIME_MS``, not issued in the future beyond
    the clock skew, not expired. Raises ``EnvelopeRejected`` with the rule that failed."""
    if size_bytes > MAX_CARD_BYTES:
        raise EnvelopeRejected(
            RejectReason.OVERSIZED, f"card of {size_bytes} bytes (limit {MAX_CARD_BYTES})"
        )
    if params.issued_at > now_ms + max_skew_ms:
        raise EnvelopeRejected(RejectReason.NOT_YET_VALID, "card is issued in the future")
    if params.expires_at <= now_ms:
        raise EnvelopeRejected(RejectReason.EXPIRED, "card has expired")
    if params.expires_at - params.issued_at > MAX_LIFETIME_MS:
        raise EnvelopeRejected(RejectReason.LIFETIME, "card is valid for more than a day")


def verify_card(card: AgentCard) -> NoosphereCardParams:
    """Check that the card is signed by the node its extension names; returns the extension."""
    params = card.noosphere()
    if not card.signatures:
        raise CardSignatureError("card is not signed")
    payload = card_signing_payload(card)
    for sig in card.signatures:
        try:
            verify_detached(payload, sig.protected, sig.signature, params.peer_id)
        except SignatureError:
            continue
        return params
    raise CardSignatureError("no card signature verifies for the card's node")
