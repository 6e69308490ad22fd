"""Execute (who may read task data): the attribute authority's keys and the attribute keys it
issues, with the metadata that makes mistakes explicit: every object names its authority (the
fingerprint of the public key) and key epoch, and an attribute key names the agent it was issued
to. Revocation is by epoch: the authority re-keys (new epoch, new public key), re-issues keys to
the agents that keep their attributes, and ciphertexts sealed for the new epoch cannot be
opened with keys of an older one."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pymcl import G1, G2, GT, Fr

from .encoding import EncodingError, Kind, Reader, Writer
from .fame import MasterKey, PublicKey, SecretKey, keygen, setup

MAX_KEY_ATTRIBUTES = 1024


@dataclass(frozen=True, slots=True)
class AuthorityPublicKey:
    epoch: int
    key: PublicKey
    issuer: str = ""  # peer id of the authority's attestation-signing key (stable over epochs)

    @property
    def fingerprint(self) -> str:
        """Names the authority and epoch: 16 bytes of SHA-256 over the encoded key, in hex.
        The encoding includes the issuer, so an attestation that names this fingerprint is
        only valid when signed by this issuer."""
        return hashlib.sha256(self.encode()).hexdigest()[:32]

    def encode(self) -> bytes:
        k = self.key
        w = Writer(Kind.PUBLIC_KEY).u32(self.epoch).string(self.issuer)
        return w.elements((k.h, k.h1, k.h2, k.t1, k.t2)).getvalue()

    @classmethod
    def decode(cls, data: bytes) -> AuthorityPublicKey:
        r = Reader(data, Kind.PUBLIC_KEY, "authority public key")
        epoch = r.u32("epoch")
        issuer = r.string("issuer")
        key = PublicKey(
            h=r.element(G2, "h"),
            h1=r.element(G2, "H1"),
            h2=r.element(G2, "H2"),
            t1=r.element(GT, "T1"),
            t2=r.element(GT, "T2"),
        )
        r.end()
        return cls(epoch, key, issuer)


@dataclass(frozen=True, slots=True)
class AuthorityMasterKey:
    epoch: int
    key: MasterKey

    def encode(self) -> bytes:
        k = self.key
        w = Writer(Kind.MASTER_KEY).u32(self.epoch)
        return w.elements((k.a1, k.a2, k.b1, k.b2, k.g_d1, k.g_d2, k.g_d3)).getvalue()

    @classmethod
    def decode(cls, data: bytes) -> AuthorityMasterKey:
        r = Reader(data, Kind.MASTER_KEY, "authority master key")
        epoch = r.u32("epoch")
        a1, a2, b1, b2 = (r.element(Fr, name) for name in ("a1", "a2", "b1", "b2"))
        d1, d2, d3 = (r.element(G1, name) for name in ("g^d1", "g^d2", "g^d3"))
        r.end()
        return cls(epoch, MasterKey(a1, a2, b1, b2, d1, d2, d3))


@dataclass(frozen=True, slots=True)
class AttributeKey:
    """The attribute key of one agent (``holder`` = its node's peer id)."""

    authority: str  # fingerprint of the authority public key it belongs to
    epoch: int
    holder: str
    key: SecretKey

    @property
    def attributes(self) -> list[str]:
        return sorted(self.key.attributes)

    def encode(self) -> bytes:
        k = self.key
        w = Writer(Kind.SECRET_KEY).string(self.authority).u32(self.epoch).string(self.holder)
        w.elements(k.sk0).elements(k.sk_prime).u16(len(k.attributes))
        for name in sorted(k.attributes):
            w.string(name).elements(k.attributes[name])
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> AttributeKey:
        r = Reader(data, Kind.SECRET_KEY, "attribute key")
        authority = r.string("authority")
        epoch = r.u32("epoch")
        holder = r.string("holder")
        sk0 = (r.element(G2, "sk0[1]"), r.element(G2, "sk0[2]"), r.element(G2, "sk0[3]"))
        sk_prime = (r.element(G1, "sk'[1]"), r.element(G1, "sk'[2]"), r.element(G1, "sk'[3]"))
        count = r.u16("attribute count", limit=MAX_KEY_ATTRIBUTES)
        if count == 0:
            raise EncodingError("attribute key: holds no attributes")
        attributes: dict[str, tuple[G1, G1, G1]] = {}
        previous: str | None = None
        for i in range(count):
            name = r.string(f"attribute {i}")
            if name in attributes:
                raise EncodingError(f"attribute key: attribute {name!r} appears twice")
            if previous is not None and name < previous:
                raise EncodingError("attribute key: attributes are not in canonical (sorted) order")
            previous = name
            attributes[name] = (
                r.element(G1, f"{name}[1]"),
                r.element(G1, f"{name}[2]"),
                r.element(G1, f"{name}[3]"),
            )
        r.end()
        return cls(authority, epoch, holder, SecretKey(sk0, attributes, sk_prime))


def new_authority(
    epoch: int = 1, issuer: str = ""
) -> tuple[AuthorityPublicKey, AuthorityMasterKey]:
    mpk, msk = setup()
    return AuthorityPublicKey(epoch, mpk, issuer), AuthorityMasterKey(epoch, msk)


def issue_key(
    public: AuthorityPublicKey, master: AuthorityMasterKey, holder: str, attributes: list[str]
) -> AttributeKey:
    if public.epoch != master.epoch:
        raise ValueError("the authority's public and master keys are from different epochs")
    return AttributeKey(
        public.fingerprint, public.epoch, holder, keygen(public.key, master.key, attributes)
    )
