"""Execute (who may read task data): the hybrid envelope that seals a task payload under a
policy. FAME encapsulates a fresh GT key; HKDF-SHA256 turns it into an AES-256-GCM key; the
payload is encrypted with the whole header (authority, epoch, policy, task id and the ABE
ciphertext) as associated data, so changing any of it, or replaying it under another task id,
fails authentication.

    sealed = NABE | v1 | kind 4 | authority | epoch | policy | task id | ct0 (3×G2)
             | rows (n × 3×G1) | nonce (12 B) | AES-256-GCM(payload) with the header as AAD
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pymcl import G1, G2, GT

from .encoding import MAX_STRING, Kind, Reader, Writer
from .fame import AbeError, Ciphertext, NotAuthorized, decapsulate, encapsulate
from .keys import AttributeKey, AuthorityPublicKey
from .policy import Policy, PolicyError, parse_policy

MEDIA_TYPE = "application/vnd.noosphere.abe"
MAX_PAYLOAD = 64 * 1024 * 1024
MAX_ROWS = 1024
_NONCE = 12
_KDF_INFO = b"noosphere/abe/envelope/v1"


class EnvelopeError(AbeError):
    """The sealed payload cannot be opened: tampered, wrong authority or epoch, wrong task."""


@dataclass(frozen=True, slots=True)
class SealedHeader:
    authority: str
    epoch: int
    policy: Policy
    task_id: str
    ciphertext: Ciphertext
    header_bytes: bytes


def _aead_key(gt_key: GT, header: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=_KDF_INFO + hashlib.sha256(header).digest(),
    ).derive(gt_key.serialize())


def seal(
    authority: AuthorityPublicKey, policy: str | Policy, payload: bytes, task_id: str
) -> bytes:
    """Encrypt ``payload`` so that only keys of this authority satisfying ``policy`` open it."""
    if len(payload) > MAX_PAYLOAD:
        raise AbeError(f"payload of {len(payload)} bytes is over {MAX_PAYLOAD}")
    if len(task_id.encode("utf-8")) > MAX_STRING:
        raise AbeError(f"task id is over {MAX_STRING} bytes")
    parsed = policy if isinstance(policy, Policy) else parse_policy(policy)
    gt_key, ciphertext = encapsulate(authority.key, parsed)
    w = Writer(Kind.SEALED).string(authority.fingerprint).u32(authority.epoch)
    w.string(str(parsed)).string(task_id).elements(ciphertext.ct0).u16(len(ciphertext.rows))
    for row in ciphertext.rows:
        w.elements(row)
    header = w.getvalue()
    nonce = os.urandom(_NONCE)
    body = AESGCM(_aead_key(gt_key, header)).encrypt(nonce, payload, header)
    return header + nonce + body


def read_header(sealed: bytes) -> SealedHeader:
    """Parse and validate the header (no key needed): who can open it, for which task."""
    r = Reader(sealed, Kind.SEALED, "sealed payload")
    authority = r.string("authority")
    epoch = r.u32("epoch")
    try:
        policy = parse_policy(r.string("policy"))
    except PolicyError as exc:
        raise EnvelopeError(f"sealed payload: {exc}") from exc
    task_id = r.string("task id")
    ct0 = (r.element(G2, "ct0[1]"), r.element(G2, "ct0[2]"), r.element(G2, "ct0[3]"))
    count = r.u16("row count", limit=MAX_ROWS)
    rows = tuple(
        (r.element(G1, f"row {i}[1]"), r.element(G1, f"row {i}[2]"), r.element(G1, f"row {i}[3]"))
        for i in range(count)
    )
    ciphertext = Ciphertext(policy=policy, ct0=ct0, rows=rows)
    if len(rows) != len(ciphertext.program.rows):
        raise EnvelopeError(
            f"sealed payload: {len(rows)} rows for a policy with {len(ciphertext.program.rows)}"
        )
    return SealedHeader(authority, epoch, policy, task_id, ciphertext, sealed[: r.offset])


def open_sealed(key: AttributeKey, sealed: bytes, *, task_id: str | None = None) -> bytes:
    """The payload, if ``key`` satisfies the policy and nothing was changed. Raises
    NotAuthorized (attributes do not satisfy the policy) or EnvelopeError (another authority
    or epoch, another task, tampering)."""
    header = read_header(sealed)
    if header.authority != key.authority or header.epoch != key.epoch:
        # Every epoch has its own public key, so its fingerprint changes too: name both.
        hint = (
            " (if the authority re-keyed, import its new key)" if header.epoch > key.epoch else ""
        )
        raise EnvelopeError(
            f"sealed for attribute authority {header.authority} epoch {header.epoch}, but this"
            f" key is for authority {key.authority} epoch {key.epoch}{hint}"
        )
    if task_id is not None and header.task_id != task_id:
        raise EnvelopeError(f"sealed for task {header.task_id!r}, not {task_id!r}")
    gt_key = decapsulate(key.key, header.ciphertext)  # NotAuthorized passes through
    rest = sealed[len(header.header_bytes) :]
    if len(rest) < _NONCE + 16:
        raise EnvelopeError("sealed payload: truncated body")
    nonce, body = rest[:_NONCE], rest[_NONCE:]
    try:
        return AESGCM(_aead_key(gt_key, header.header_bytes)).decrypt(
            nonce, body, header.header_bytes
        )
    except InvalidTag as exc:
        raise EnvelopeError("sealed payload failed authentication (tampered or wrong key)") from exc


__all__ = [
    "MEDIA_TYPE",
    "EnvelopeError",
    "NotAuthorized",
    "SealedHeader",
    "open_sealed",
    "read_header",
    "seal",
]
