"""Execute (who may read task data): FAME, the ciphertext-policy attribute-based encryption of
Shashank Agrawal and Melissa Chase, "FAME: Fast Attribute-based Message Encryption", ACM CCS 2017
(Section 3, the CP-ABE scheme; secure under the decisional linear assumption in the random
oracle model, fully/adaptively secure, with type-III pairings and no bound on attributes).

Here over BLS12-381 with ``pymcl``: ``g`` generates G1, ``h`` generates G2. The paper's hash
``H`` into G1 is mcl's hash-to-curve applied to domain-separated, length-prefixed labels, so no
hashed point has a known discrete logarithm. The scheme is used as a KEM: the blinding value
``T1^s1 · T2^s2`` of the paper's ciphertext is itself the fresh GT key, which the envelope turns
into an AES-256-GCM key with HKDF (so ``ct'`` is not sent).

    Setup:   a1,a2,b1,b2,d1,d2,d3 ← Zp
             mpk = (h, H1 = h^a1, H2 = h^a2, T1 = e(g,h)^(d1·a1+d3), T2 = e(g,h)^(d2·a2+d3))
             msk = (a1, a2, b1, b2, g^d1, g^d2, g^d3)
    KeyGen:  r1,r2 ← Zp;  sk0 = (h^(b1·r1), h^(b2·r2), h^(r1+r2));  c = (b1·r1, b2·r2, r1+r2)
             per attribute y, σ ← Zp:  sk_y,t = Π_ℓ H(y,ℓ,t)^(c_ℓ/a_t) · g^(σ/a_t) (t = 1, 2),
                                       sk_y,3 = g^(−σ)
             σ' ← Zp:  sk'_t = g^(d_t) · Π_ℓ H(0,1,ℓ,t)^(c_ℓ/a_t) · g^(σ'/a_t),  sk'_3 = g^(d3 − σ')
    Encrypt: s1,s2 ← Zp;  ct0 = (H1^s1, H2^s2, h^(s1+s2));  key = T1^s1 · T2^s2
             row i of the span program M with label π(i), ℓ = 1..3:
             ct_i,ℓ = H(π(i),ℓ,1)^s1 · H(π(i),ℓ,2)^s2 · Π_j (H(0,j,ℓ,1)^s1 · H(0,j,ℓ,2)^s2)^M_ij
    Decrypt: γ with Σ γ_i·M_i = (1,0,…,0) over the rows of the key's attributes;
             key = Π_t e(sk'_t · Π_i sk_π(i),t^γ_i, ct0_t) / Π_ℓ e(Π_i ct_i,ℓ^γ_i, sk0_ℓ)
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pymcl import G1, G2, GT, Fr, g1, g2, pairing
from pymcl import r as GROUP_ORDER

from noosphere.errors import CryptoError

from .lsss import SpanProgram, reconstruction, span_program
from .policy import Policy

_DOMAIN = b"noosphere/abe/fame/v1"


class AbeError(CryptoError, ValueError):
    """A key, ciphertext or policy cannot be used; the message is one line."""


class NotAuthorized(AbeError):
    """The key's attributes do not satisfy the ciphertext's policy."""


def fr(value: int) -> Fr:
    """An integer (any sign or size) as an element of Zp."""
    return Fr(str(value % GROUP_ORDER))


def _label(*parts: bytes | int) -> bytes:
    """Length-prefixed encoding of a hash input: no two different inputs share a label."""
    out = [_DOMAIN]
    for part in parts:
        data = part.to_bytes(4, "big") if isinstance(part, int) else part
        out.append(struct.pack(">H", len(data)) + data)
    return b"".join(out)


@functools.lru_cache(maxsize=65_536)
def hash_attribute(attribute: str, ell: int, t: int) -> G1:
    """H(y, ℓ, t) for an attribute y: a G1 point nobody knows the logarithm of."""
    return G1.hash(_label(b"attr", attribute.encode("utf-8"), ell, t))


@functools.lru_cache(maxsize=65_536)
def hash_column(j: int, ell: int, t: int) -> G1:
    """H(0, j, ℓ, t) for column j of the span program (j starts at 1)."""
    return G1.hash(_label(b"col", j, ell, t))


@dataclass(frozen=True, slots=True)
class PublicKey:
    h: G2
    h1: G2
    h2: G2
    t1: GT
    t2: GT


@dataclass(frozen=True, slots=True)
class MasterKey:
    a1: Fr
    a2: Fr
    b1: Fr
    b2: Fr
    g_d1: G1
    g_d2: G1
    g_d3: G1


@dataclass(frozen=True, slots=True)
class SecretKey:
    """A user's key for a set of attributes."""

    sk0: tuple[G2, G2, G2]
    attributes: Mapping[str, tuple[G1, G1, G1]]
    sk_prime: tuple[G1, G1, G1]


@dataclass(frozen=True)
class Ciphertext:
    """The KEM part: the policy, its span program (derived, not sent) and the group elements."""

    policy: Policy
    ct0: tuple[G2, G2, G2]
    rows: tuple[tuple[G1, G1, G1], ...]

    @functools.cached_property
    def program(self) -> SpanProgram:
        return span_program(self.policy)


def setup() -> tuple[PublicKey, MasterKey]:
    a1, a2, b1, b2 = (Fr.random() for _ in range(4))
    d1, d2, d3 = (Fr.random() for _ in range(3))
    h = g2
    e_gh = pairing(g1, h)
    mpk = PublicKey(h=h, h1=h * a1, h2=h * a2, t1=e_gh ** (d1 * a1 + d3), t2=e_gh ** (d2 * a2 + d3))
    msk = MasterKey(a1=a1, a2=a2, b1=b1, b2=b2, g_d1=g1 * d1, g_d2=g1 * d2, g_d3=g1 * d3)
    return mpk, msk


def keygen(mpk: PublicKey, msk: MasterKey, attributes: Iterable[str]) -> SecretKey:
    names = sorted(set(attributes))
    if not names:
        raise AbeError("a key needs at least one attribute")
    r1, r2 = Fr.random(), Fr.random()
    c = (msk.b1 * r1, msk.b2 * r2, r1 + r2)
    sk0 = (mpk.h * c[0], mpk.h * c[1], mpk.h * c[2])
    inverse_a = (Fr(1) / msk.a1, Fr(1) / msk.a2)

    def component(hashes: list[list[G1]], sigma: Fr) -> tuple[G1, G1]:
        """Π_ℓ H_ℓt^(c_ℓ/a_t) · g^(σ/a_t) for t = 1, 2."""
        out = []
        for t in range(2):
            acc = g1 * (sigma * inverse_a[t])
            for ell in range(3):
                acc = acc + hashes[ell][t] * (c[ell] * inverse_a[t])
            out.append(acc)
        return out[0], out[1]

    keys: dict[str, tuple[G1, G1, G1]] = {}
    for name in names:
        sigma = Fr.random()
        hashes = [[hash_attribute(name, ell, t) for t in (1, 2)] for ell in (1, 2, 3)]
        first, second = component(hashes, sigma)
        keys[name] = (first, second, g1 * (-sigma))
    sigma_prime = Fr.random()
    column_one = [[hash_column(1, ell, t) for t in (1, 2)] for ell in (1, 2, 3)]
    p1, p2 = component(column_one, sigma_prime)
    sk_prime = (msk.g_d1 + p1, msk.g_d2 + p2, msk.g_d3 + g1 * (-sigma_prime))
    return SecretKey(sk0=sk0, attributes=keys, sk_prime=sk_prime)


def encapsulate(mpk: PublicKey, policy: Policy) -> tuple[GT, Ciphertext]:
    """A fresh GT key and the ciphertext that lets holders of satisfying keys recover it."""
    program = span_program(policy)
    s1, s2 = Fr.random(), Fr.random()
    ct0 = (mpk.h1 * s1, mpk.h2 * s2, mpk.h * (s1 + s2))
    # Column terms C_j,ℓ = H(0,j,ℓ,1)^s1 · H(0,j,ℓ,2)^s2, computed once and combined per row.
    columns = [
        [hash_column(j, ell, 1) * s1 + hash_column(j, ell, 2) * s2 for ell in (1, 2, 3)]
        for j in range(1, program.columns + 1)
    ]
    rows = []
    for label, row in zip(program.labels, program.rows, strict=True):
        parts = []
        for ell in (1, 2, 3):
            acc = hash_attribute(label, ell, 1) * s1 + hash_attribute(label, ell, 2) * s2
            for j, m in enumerate(row):
                if m:
                    acc = acc + _times(columns[j][ell - 1], m)
            parts.append(acc)
        rows.append((parts[0], parts[1], parts[2]))
    key = mpk.t1**s1 * mpk.t2**s2
    return key, Ciphertext(policy=policy, ct0=ct0, rows=tuple(rows))


def decapsulate(key: SecretKey, ciphertext: Ciphertext) -> GT:
    """The GT key of ``ciphertext``; NotAuthorized when the key's attributes do not satisfy
    its policy. (A wrong key that does satisfy it yields a wrong GT key, which the envelope's
    authentication then rejects.)"""
    program = ciphertext.program
    gammas = reconstruction(program, key.attributes, GROUP_ORDER)
    if gammas is None:
        raise NotAuthorized("this key's attributes do not satisfy the policy")
    num_g1: list[G1] = [G1(), G1(), G1()]
    den_g1: list[G1] = list(key.sk_prime)
    for i, gamma in gammas.items():
        label = program.labels[i]
        attr_key = key.attributes[label]
        row = ciphertext.rows[i]
        for ell in range(3):
            num_g1[ell] = num_g1[ell] + _times(row[ell], gamma)
            den_g1[ell] = den_g1[ell] + _times(attr_key[ell], gamma)
    numerator = pairing(num_g1[0], key.sk0[0])
    numerator = numerator * pairing(num_g1[1], key.sk0[1]) * pairing(num_g1[2], key.sk0[2])
    denominator = pairing(den_g1[0], ciphertext.ct0[0])
    denominator = denominator * pairing(den_g1[1], ciphertext.ct0[1])
    denominator = denominator * pairing(den_g1[2], ciphertext.ct0[2])
    return denominator / numerator


def _times(point: G1, scalar: int) -> G1:
    """point^scalar; small coefficients (the usual ±1) by addition instead of multiplication."""
    if scalar == 1:
        return point
    if scalar == GROUP_ORDER - 1 or scalar == -1:
        return G1() - point
    return point * fr(scalar)
