"""The attribute authority on disk: init, issue (bundles sealed to a node key, with a signed
attestation), import on the node (0600 key file, checks), and re-keying with revocation."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from noosphere.abe.authority import (
    BUNDLE_FORMAT,
    Authority,
    AuthorityError,
    KeyBundle,
    import_bundle,
    load_attribute_key,
    load_public_key,
    node_keys,
)
from noosphere.abe.envelope import EnvelopeError, NotAuthorized, open_sealed, seal
from noosphere.protocol import NodeKey
from noosphere.protocol.attestation import verify_attestation


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("authority") / "home"
    Authority.init(path)
    return path


@pytest.fixture(scope="module")
def node() -> NodeKey:
    return NodeKey.generate()


def test_init_lays_out_the_home(home: Path) -> None:
    meta = json.loads((home / "authority.json").read_text())
    authority = Authority.load(home)
    assert meta == {"epoch": 1, "issuer": authority.signing_key.peer_id}
    for name in ("signing.key", "epoch-1.master"):
        assert mode(home / name) == 0o600
    assert mode(home) == 0o700
    public = load_public_key(home)
    assert public == load_public_key(home / "epoch-1.public") == authority.public_key(1)
    assert authority.master_key().epoch == 1
    with pytest.raises(AuthorityError, match="already holds an authority"):
        Authority.init(home)


def test_load_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(AuthorityError, match="is not an authority home"):
        Authority.load(tmp_path)
    (tmp_path / "authority.json").write_text("{}")
    with pytest.raises(AuthorityError, match=r"authority\.json is unreadable"):
        Authority.load(tmp_path)
    with pytest.raises(AuthorityError, match="cannot read"):
        load_public_key(tmp_path / "missing.public")
    (tmp_path / "bad.public").write_bytes(b"junk")
    with pytest.raises(AuthorityError, match="bad magic"):
        load_public_key(tmp_path / "bad.public")


def test_issue_and_import(home: Path, node: NodeKey, tmp_path: Path) -> None:
    authority = Authority.load(home)
    bundle = authority.issue(node.peer_id, ["role:analyst", "org:acme", "org:acme"])
    assert bundle.format == BUNDLE_FORMAT and bundle.holder == node.peer_id
    assert bundle.attestation.attributes == ["org:acme", "role:analyst"]
    verify_attestation(
        bundle.attestation,
        subject=node.peer_id,
        now_ms=bundle.attestation.issued_at,
        issuer=authority.signing_key.peer_id,
    )
    imported = import_bundle(tmp_path, node, bundle.model_dump_json(by_alias=True).encode())
    assert imported.key_path == tmp_path / "abe" / f"{bundle.authority}.key"
    assert mode(imported.key_path) == 0o600
    assert (
        imported.key.holder == node.peer_id
        and imported.key.attributes == bundle.attestation.attributes
    )
    assert load_attribute_key(imported.key_path).encode() == imported.key.encode()
    [(listed, attestation)] = node_keys(tmp_path)
    assert listed.encode() == imported.key.encode() and attestation == bundle.attestation
    sealed = seal(authority.public_key(), "org:acme and role:analyst", b"task", "t")
    assert open_sealed(listed, sealed, task_id="t") == b"task"
    imported.key_path.chmod(0o644)
    with pytest.raises(AuthorityError, match="chmod 600"):
        load_attribute_key(imported.key_path)


def test_issue_validates_its_inputs(home: Path, node: NodeKey) -> None:
    authority = Authority.load(home)
    with pytest.raises(AuthorityError, match="is not a node's peer id"):
        authority.issue("12D3KooWnope", ["org:acme"])
    with pytest.raises(AuthorityError, match="at least one attribute"):
        authority.issue(node.peer_id, [])
    with pytest.raises(AuthorityError, match="must look like name:value"):
        authority.issue(node.peer_id, ["Org Acme"])


@pytest.fixture(scope="module")
def bundle_json(home: Path, node: NodeKey) -> bytes:
    bundle = Authority.load(home).issue(node.peer_id, ["org:acme"])
    return bundle.model_dump_json(by_alias=True).encode()


def changed(bundle_json: bytes, **fields: object) -> bytes:
    data = json.loads(bundle_json)
    for name, value in fields.items():
        if name.startswith("attestation."):
            data["attestation"][name.removeprefix("attestation.")] = value
        else:
            data[name] = value
    return json.dumps(data).encode()


def flip_b64(text: str, index: int) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[index] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def test_bundle_for_another_node_is_rejected(bundle_json: bytes, tmp_path: Path) -> None:
    with pytest.raises(AuthorityError, match="issued to another node"):
        import_bundle(tmp_path, NodeKey.generate(), bundle_json)
    assert not (tmp_path / "abe").exists()


def test_tampered_bundles_are_rejected(bundle_json: bytes, node: NodeKey, tmp_path: Path) -> None:
    original = json.loads(bundle_json)
    other = NodeKey.generate()
    cases: dict[str, tuple[bytes, str]] = {
        "sealed key": (
            changed(bundle_json, sealed_key=flip_b64(original["sealed_key"], 60)),
            "bundle rejected: not sealed to this node",
        ),
        "epoch": (changed(bundle_json, epoch=2), "bundle rejected: not sealed"),
        "authority": (changed(bundle_json, authority="00" * 16), "bundle rejected: not sealed"),
        "public key": (
            changed(bundle_json, public_key=flip_b64(original["public_key"], 10)),
            "bundle rejected",
        ),
        "attributes": (
            changed(bundle_json, **{"attestation.attributes": ["org:acme", "role:admin"]}),
            "bundle rejected: attestation signature",
        ),
        "subject": (
            changed(bundle_json, **{"attestation.subject": other.peer_id}),
            "bundle rejected: attestation is about another node",
        ),
        "holder": (changed(bundle_json, holder=other.peer_id), "issued to another node"),
        "format": (changed(bundle_json, format="other/1"), "bundle format 'other/1'"),
        "base64": (changed(bundle_json, sealed_key="@@@"), "bundle rejected"),
        "extra field": (changed(bundle_json, extra=1), "not a key bundle"),
        "not json": (b"{", "not a key bundle"),
    }
    for name, (data, message) in cases.items():
        with pytest.raises(AuthorityError, match=message):
            import_bundle(tmp_path, node, data)
        assert not (tmp_path / "abe").exists(), name


def test_attestation_must_match_the_key(home: Path, node: NodeKey, tmp_path: Path) -> None:
    """A correctly sealed key with an attestation (validly signed) for other attributes."""
    authority = Authority.load(home)
    first = authority.issue(node.peer_id, ["org:acme"])
    second = authority.issue(node.peer_id, ["org:acme", "role:admin"])
    mixed = first.model_copy(update={"attestation": second.attestation})
    with pytest.raises(AuthorityError, match="do not match"):
        import_bundle(tmp_path, node, mixed.model_dump_json(by_alias=True).encode())


def test_rekey_revokes_and_reissues(tmp_path: Path) -> None:
    home, nodes = tmp_path / "authority", {name: NodeKey.generate() for name in "abc"}
    authority = Authority.init(home)
    old: dict[str, Path] = {}
    for name, key in nodes.items():
        bundle = authority.issue(key.peer_id, ["org:acme", f"team:{name}"])
        old[name] = import_bundle(tmp_path / name, key, bundle.model_dump_json().encode()).key_path
    epoch_1 = authority.public_key()

    bundles = authority.rekey({nodes["b"].peer_id})
    assert authority.epoch == 2 and Authority.load(home).epoch == 2
    assert {b.holder for b in bundles} == {nodes["a"].peer_id, nodes["c"].peer_id}
    assert all(b.epoch == 2 for b in bundles)
    epoch_2 = authority.public_key()
    assert epoch_2.fingerprint != epoch_1.fingerprint
    assert load_public_key(home) == epoch_2 and authority.public_key(1) == epoch_1

    sealed = seal(epoch_2, "org:acme", b"epoch two", "t")
    for name in "abc":  # old keys cannot open new-epoch payloads
        with pytest.raises(EnvelopeError, match=r"epoch 2, but this key .* epoch 1"):
            open_sealed(load_attribute_key(old[name]), sealed)
    by_holder = {b.holder: b for b in bundles}
    for name in "ac":
        key = nodes[name]
        imported = import_bundle(
            tmp_path / name, key, by_holder[key.peer_id].model_dump_json().encode()
        )
        assert imported.key.epoch == 2 and imported.key.attributes == ["org:acme", f"team:{name}"]
        assert open_sealed(imported.key, sealed) == b"epoch two"
        assert [k.epoch for k, _ in node_keys(tmp_path / name)] == [2, 1]
        with pytest.raises(NotAuthorized):
            open_sealed(imported.key, seal(epoch_2, "team:b", b"x", ""))

    # The revoked holder stays revoked at the next re-key (it is not in epoch 2's issue log).
    assert {b.holder for b in authority.rekey()} == {nodes["a"].peer_id, nodes["c"].peer_id}
    assert authority.epoch == 3


def test_rekey_keeps_latest_attributes(tmp_path: Path) -> None:
    authority = Authority.init(tmp_path / "authority")
    key = NodeKey.generate()
    authority.issue(key.peer_id, ["org:acme"])
    authority.issue(key.peer_id, ["org:acme", "role:lead"])
    [bundle] = authority.rekey()
    assert bundle.attestation.attributes == ["org:acme", "role:lead"]


def test_open_master_key_is_refused(tmp_path: Path) -> None:
    authority = Authority.init(tmp_path / "authority")
    (authority.home / "epoch-1.master").chmod(0o640)
    with pytest.raises(AuthorityError, match="accessible by other users"):
        authority.issue(NodeKey.generate().peer_id, ["org:acme"])


def test_key_bundle_model_is_strict() -> None:
    assert KeyBundle.model_config.get("extra") == "forbid"


def test_key_issued_to_another_holder_is_rejected(
    home: Path, node: NodeKey, tmp_path: Path
) -> None:
    """A bundle whose sealed key names another holder (all else consistent) is refused."""
    from noosphere.abe.keys import issue_key
    from noosphere.protocol.sealing import seal_to_node

    authority = Authority.load(home)
    bundle = authority.issue(node.peer_id, ["org:acme"])
    foreign = issue_key(authority.public_key(), authority.master_key(), "someone", ["org:acme"])
    sealed = seal_to_node(node.peer_id, foreign.encode(), bundle.associated_data())
    forged = bundle.model_copy(update={"sealed_key": base64.b64encode(sealed).decode()})
    with pytest.raises(AuthorityError, match="do not match"):
        import_bundle(tmp_path, node, forged.model_dump_json().encode())


def test_attestation_signed_by_another_issuer_is_rejected(
    bundle_json: bytes, node: NodeKey, tmp_path: Path
) -> None:
    """Anyone can sign an attestation naming the authority's fingerprint; import accepts only
    the issuer that the (fingerprinted) public key names."""
    from noosphere.protocol.attestation import Attestation, sign_attestation

    bundle = json.loads(bundle_json)
    forger = NodeKey.generate()
    claims = {k: v for k, v in bundle["attestation"].items() if k not in ("protected", "signature")}
    claims["issuer"] = forger.peer_id
    claims["attributes"] = bundle["attestation"]["attributes"]
    forged = sign_attestation(Attestation.model_validate(claims), forger)
    data = changed(bundle_json, attestation=forged.to_wire())
    with pytest.raises(AuthorityError, match="another authority"):
        import_bundle(tmp_path, node, data)
