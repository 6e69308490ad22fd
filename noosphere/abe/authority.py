"""Execute (who may read task data): the attribute authority on disk and the key bundles it
hands out, plus the node side that imports them.

Authority home::

    authority.json        current epoch, issuer id (the signing key's peer id)
    signing.key           Ed25519 key that signs attestations (0600)
    public.key            the current epoch's ABE public key (give this to requesters)
    epoch-N.public/.master  every epoch's keys (master keys 0600)
    issued.jsonl          who got which attributes in which epoch (for re-keying)

A bundle (``PEER_ID.epoch-N.abekey.json``) carries the attribute key sealed to the agent's node
key (only that node can open it), the authority public key, and a signed attestation of the
attributes that the agent's card then carries. Revocation is by epoch: ``rekey`` starts epoch
N+1 and re-issues bundles to every holder except the revoked ones; payloads sealed for N+1 cannot
be opened with epoch-N keys."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from noosphere.errors import CryptoError
from noosphere.protocol import NodeKey
from noosphere.protocol.attestation import (
    Attestation,
    AttestationError,
    sign_attestation,
    verify_attestation,
)
from noosphere.protocol.canonical import canonical_json
from noosphere.protocol.identity import InvalidPeerId, public_key_from_peer_id
from noosphere.protocol.sealing import SealError, open_sealed_to_node, seal_to_node
from noosphere.securefile import KeyFileError, read_secret_file, write_secret_file

from .encoding import EncodingError
from .keys import AttributeKey, AuthorityMasterKey, AuthorityPublicKey, issue_key, new_authority
from .policy import ATTRIBUTE as ATTRIBUTE_PATTERN

BUNDLE_FORMAT = "noosphere-abe-key/1"
DEFAULT_VALIDITY_DAYS = 365
NODE_ABE_DIR = "abe"
CLOCK_SKEW_MS = 5 * 60_000


class AuthorityError(CryptoError, RuntimeError):
    """The authority home or a bundle cannot be used; the message says why, in one line."""


class KeyBundle(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str
    holder: str
    authority: str
    epoch: int
    public_key: str  # base64 of the encoded AuthorityPublicKey
    sealed_key: str  # base64 of the attribute key sealed to the holder's node key
    attestation: Attestation

    def associated_data(self) -> bytes:
        return canonical_json(
            {
                "format": self.format,
                "holder": self.holder,
                "authority": self.authority,
                "epoch": self.epoch,
            }
        )


def _write_private(path: Path, data: bytes) -> None:
    write_secret_file(path, data, replace=True)


def _read_private(path: Path) -> bytes:
    try:
        return read_secret_file(path)
    except FileNotFoundError as exc:
        raise AuthorityError(f"cannot read {path}: {exc.strerror}") from exc
    except KeyFileError as exc:
        raise AuthorityError(str(exc)) from exc


@dataclass
class Authority:
    home: Path
    epoch: int
    signing_key: NodeKey

    # ---- creation and loading ----------------------------------------------------------------

    @classmethod
    def init(cls, home: Path) -> Authority:
        if (home / "authority.json").exists():
            raise AuthorityError(f"{home} already holds an authority (authority.json exists)")
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        signing = NodeKey.generate()
        _write_private(home / "signing.key", signing.to_pem())
        authority = cls(home, 0, signing)
        authority._start_epoch(1)
        return authority

    @classmethod
    def load(cls, home: Path) -> Authority:
        try:
            meta = json.loads((home / "authority.json").read_text())
            epoch = int(meta["epoch"])
        except FileNotFoundError as exc:
            raise AuthorityError(
                f"{home} is not an authority home (run: noosphere abe authority init --home {home})"
            ) from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise AuthorityError(f"{home}/authority.json is unreadable: {exc}") from exc
        try:
            signing = NodeKey.from_pem(_read_private(home / "signing.key"))
        except ValueError as exc:
            raise AuthorityError(f"{home}/signing.key: {exc}") from exc
        return cls(home, epoch, signing)

    def _start_epoch(self, epoch: int) -> None:
        public, master = new_authority(epoch, self.signing_key.peer_id)
        (self.home / f"epoch-{epoch}.public").write_bytes(public.encode())
        _write_private(self.home / f"epoch-{epoch}.master", master.encode())
        (self.home / "public.key").write_bytes(public.encode())
        meta = {"epoch": epoch, "issuer": self.signing_key.peer_id}
        (self.home / "authority.json").write_text(json.dumps(meta, indent=2) + "\n")
        self.epoch = epoch

    def public_key(self, epoch: int | None = None) -> AuthorityPublicKey:
        return load_public_key(self.home / f"epoch-{self.epoch if epoch is None else epoch}.public")

    def master_key(self) -> AuthorityMasterKey:
        data = _read_private(self.home / f"epoch-{self.epoch}.master")
        try:
            return AuthorityMasterKey.decode(data)
        except EncodingError as exc:
            raise AuthorityError(str(exc)) from exc

    # ---- issuing -----------------------------------------------------------------------------

    def issue(
        self, holder: str, attributes: list[str], *, valid_days: int = DEFAULT_VALIDITY_DAYS
    ) -> KeyBundle:
        try:
            public_key_from_peer_id(holder)
        except InvalidPeerId as exc:
            raise AuthorityError(f"--agent {holder!r} is not a node's peer id: {exc}") from exc
        attributes = sorted(set(attributes))
        if not attributes:
            raise AuthorityError("give at least one attribute (--attrs org:acme,role:analyst)")
        for attr in attributes:
            if not ATTRIBUTE_PATTERN.fullmatch(attr):
                raise AuthorityError(f"attribute {attr!r} must look like name:value")
        public = self.public_key()
        key = issue_key(public, self.master_key(), holder, attributes)
        now = int(time.time() * 1000)
        attestation = sign_attestation(
            Attestation(
                authority=public.fingerprint,
                issuer=self.signing_key.peer_id,
                epoch=public.epoch,
                subject=holder,
                attributes=attributes,
                issued_at=now,
                expires_at=now + valid_days * 86_400_000,
            ),
            self.signing_key,
        )
        unsealed = KeyBundle(
            format=BUNDLE_FORMAT,
            holder=holder,
            authority=public.fingerprint,
            epoch=public.epoch,
            public_key=base64.b64encode(public.encode()).decode("ascii"),
            sealed_key="",
            attestation=attestation,
        )
        sealed = seal_to_node(holder, key.encode(), unsealed.associated_data())
        with (self.home / "issued.jsonl").open("a") as log:
            entry = {"holder": holder, "attributes": attributes, "epoch": public.epoch, "at": now}
            log.write(json.dumps(entry) + "\n")
        return unsealed.model_copy(update={"sealed_key": base64.b64encode(sealed).decode("ascii")})

    def rekey(self, revoke: set[str] | None = None) -> list[KeyBundle]:
        """Start the next epoch; re-issue every holder's latest attributes except ``revoke``.

        Only keys issued in the current epoch are carried over, so a holder revoked once stays
        revoked at every later re-key (the log keeps its older entries)."""
        latest: dict[str, list[str]] = {}
        log = self.home / "issued.jsonl"
        if log.exists():
            for number, line in enumerate(log.read_text().splitlines(), start=1):
                try:
                    entry = json.loads(line)
                    holder, attributes, epoch = entry["holder"], entry["attributes"], entry["epoch"]
                except (ValueError, KeyError, TypeError) as exc:
                    raise AuthorityError(f"{log}:{number} is not an issue record: {exc}") from exc
                if epoch == self.epoch:
                    latest[holder] = attributes
        self._start_epoch(self.epoch + 1)
        return [
            self.issue(holder, attributes)
            for holder, attributes in sorted(latest.items())
            if holder not in (revoke or set())
        ]


def load_public_key(path: Path) -> AuthorityPublicKey:
    """An authority public key from a file, or from an authority home's ``public.key``."""
    if path.is_dir():
        path = path / "public.key"
    try:
        return AuthorityPublicKey.decode(path.read_bytes())
    except OSError as exc:
        raise AuthorityError(f"cannot read {path}: {exc.strerror}") from exc
    except EncodingError as exc:
        raise AuthorityError(str(exc)) from exc


def load_attribute_key(path: Path) -> AttributeKey:
    try:
        return AttributeKey.decode(_read_private(path))
    except EncodingError as exc:
        raise AuthorityError(str(exc)) from exc


# ---- the node side ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportedKey:
    key: AttributeKey
    public: AuthorityPublicKey
    attestation: Attestation
    key_path: Path


def import_bundle(node_home: Path, node_key: NodeKey, bundle_json: bytes) -> ImportedKey:
    """Open a bundle with the node key, check it, and store key (0600), public key and
    attestation under ``NODE_HOME/abe/``."""
    try:
        bundle = KeyBundle.model_validate_json(bundle_json)
    except ValidationError as exc:
        raise AuthorityError(f"not a key bundle: {exc.errors()[0]['msg']}") from exc
    if bundle.format != BUNDLE_FORMAT:
        raise AuthorityError(f"bundle format {bundle.format!r} is not {BUNDLE_FORMAT!r}")
    if bundle.holder != node_key.peer_id:
        raise AuthorityError("this bundle was issued to another node")
    try:
        public = AuthorityPublicKey.decode(base64.b64decode(bundle.public_key, validate=True))
        sealed = base64.b64decode(bundle.sealed_key, validate=True)
        raw_key = open_sealed_to_node(node_key, sealed, bundle.associated_data())
        key = AttributeKey.decode(raw_key)
        verify_attestation(
            bundle.attestation,
            subject=node_key.peer_id,
            now_ms=int(time.time() * 1000),
            issuer=public.issuer,  # the fingerprint covers the issuer: no forged attestations
            skew_ms=CLOCK_SKEW_MS,  # the node's clock may be a little behind the authority's
        )
    except (ValueError, SealError, EncodingError, AttestationError) as exc:
        raise AuthorityError(f"bundle rejected: {exc}") from exc
    if (
        public.fingerprint != bundle.authority
        or key.authority != public.fingerprint
        or bundle.attestation.authority != public.fingerprint
        or {key.epoch, bundle.attestation.epoch, public.epoch} != {bundle.epoch}
        or sorted(key.attributes) != sorted(bundle.attestation.attributes)
        or key.holder != node_key.peer_id
    ):
        raise AuthorityError("bundle rejected: key, public key and attestation do not match")
    target = node_home / NODE_ABE_DIR
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_path = target / f"{public.fingerprint}.key"
    _write_private(key_path, raw_key)
    (target / f"{public.fingerprint}.public").write_bytes(public.encode())
    (target / f"{public.fingerprint}.attestation.json").write_text(
        bundle.attestation.model_dump_json(by_alias=True, indent=2)
    )
    return ImportedKey(key, public, bundle.attestation, key_path)


def node_keys(node_home: Path) -> list[tuple[AttributeKey, Attestation]]:
    """Every attribute key a node imported, with its attestation (newest epoch first)."""
    found = []
    for path in sorted((node_home / NODE_ABE_DIR).glob("*.key")):
        key = load_attribute_key(path)
        attestation_path = path.with_suffix(".attestation.json")
        try:
            attestation = Attestation.model_validate_json(attestation_path.read_text())
        except OSError as exc:
            raise AuthorityError(f"cannot read {attestation_path}: {exc.strerror}") from exc
        except ValidationError as exc:
            raise AuthorityError(f"{attestation_path} is not an attestation") from exc
        found.append((key, attestation))
    return sorted(found, key=lambda pair: -pair[0].epoch)
