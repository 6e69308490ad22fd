"""Signed A2A Agent Cards with the noosphere extension (noosphere.protocol.card)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import a2a.types
import jwt
import pytest
from a2a.utils.signing import (
    InvalidSignaturesError,
    create_agent_card_signer,
    create_signature_verifier,
)
from google.protobuf.json_format import MessageToDict, ParseDict
from hypothesis import given, settings
from hypothesis import strategies as st

from noosphere.agents.publish import NodeEndpoint, build_card
from noosphere.agents.spec import load_agent_spec
from noosphere.protocol import (
    NOOSPHERE_EXTENSION_URI,
    AgentCapabilities,
    AgentCard,
    AgentExtension,
    CardError,
    CardSignatureError,
    NodeKey,
    NoosphereCardParams,
    b64url_decode,
    b64url_encode,
    card_id,
    card_signing_payload,
    sign_card,
    sign_detached,
    verify_card,
)
from noosphere.protocol.card import AgentCardSignature

FAST = settings(max_examples=25, deadline=None, database=None)

EXAMPLES = Path(__file__).parents[2] / "examples" / "agents"
EXAMPLE_FILES = sorted(p for p in EXAMPLES.iterdir() if p.suffix in {".yaml", ".toml", ".json"})
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
ISSUED_AT_MS = 1_700_000_000_000
TTL_MS = 3_600_000

KEY = NodeKey.from_seed(RFC8032_SEED)
OTHER_KEY = NodeKey.from_seed(b"\x42" * 32)


def _endpoint(key: NodeKey) -> NodeEndpoint:
    return NodeEndpoint(
        rpc_url="http://127.0.0.1:7070",
        multiaddrs=[f"/ip4/127.0.0.1/tcp/4001/p2p/{key.peer_id}"],
    )


def _build(path: Path, key: NodeKey = KEY) -> AgentCard:
    spec = load_agent_spec(path)
    return build_card(spec, key, _endpoint(key), seq=1, issued_at_ms=ISSUED_AT_MS, ttl_ms=TTL_MS)


@pytest.fixture(scope="module")
def card() -> AgentCard:
    return _build(EXAMPLES / "calculator.yaml")


def _extension_params(wire: dict) -> dict:
    (extension,) = [
        e for e in wire["capabilities"]["extensions"] if e["uri"] == NOOSPHERE_EXTENSION_URI
    ]
    return extension["params"]


def _sdk_verifier(key: NodeKey):
    def key_provider(kid: str | None, jku: str | None) -> jwt.PyJWK:
        return jwt.PyJWK({"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(key.public_key)})

    return create_signature_verifier(key_provider=key_provider, algorithms=["EdDSA"])


def _to_sdk(card: AgentCard) -> a2a.types.AgentCard:
    return ParseDict(card.to_wire(), a2a.types.AgentCard(), ignore_unknown_fields=False)


# ---- building and verifying ------------------------------------------------------------------


def test_verify_card_returns_the_extension_naming_the_signer(card):
    params = verify_card(card)
    assert isinstance(params, NoosphereCardParams)
    assert params.peer_id == KEY.peer_id
    assert params.agent_id == "exact-calculator"
    assert params.card_id == card_id(KEY.peer_id, "exact-calculator")


def test_built_card_carries_the_spec_and_endpoint(card):
    params = verify_card(card)
    assert card.name == "Exact Calculator"
    assert params.price.amount == "5"
    assert params.attributes == ["org:noosphere", "role:analyst"]
    assert params.multiaddrs == [f"/ip4/127.0.0.1/tcp/4001/p2p/{KEY.peer_id}"]
    assert params.expires_at == ISSUED_AT_MS + TTL_MS
    assert card.supported_interfaces[0].url == "http://127.0.0.1:7070"


def test_card_has_one_signature_whose_kid_is_the_peer_id(card):
    assert len(card.signatures) == 1
    header = json.loads(b64url_decode(card.signatures[0].protected))
    assert header == {"alg": "EdDSA", "kid": KEY.peer_id, "typ": "JOSE"}


def test_there_are_example_agent_files():
    assert len(EXAMPLE_FILES) >= 2


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_every_example_agent_builds_a_card_that_verifies(path):
    assert verify_card(_build(path)).peer_id == KEY.peer_id


def test_card_survives_a_wire_round_trip(card):
    restored = AgentCard.model_validate(card.to_wire())
    assert verify_card(restored).peer_id == KEY.peer_id


def test_signing_payload_excludes_signatures(card):
    unsigned = card.model_copy(update={"signatures": []})
    assert card_signing_payload(card) == card_signing_payload(unsigned)


def test_signing_payload_drops_empty_values(card):
    with_empty = card.model_copy(update={"documentation_url": "", "icon_url": ""})
    assert card_signing_payload(with_empty) == card_signing_payload(card)


def test_resigning_replaces_the_signatures(card):
    resigned = sign_card(card, KEY)
    assert len(resigned.signatures) == 1
    verify_card(resigned)


# ---- tampering ---------------------------------------------------------------------------------


def _tamper_name(wire: dict) -> None:
    wire["name"] = "Exact Calculator Pro"


def _tamper_description(wire: dict) -> None:
    wire["description"] += "."


def _tamper_price(wire: dict) -> None:
    _extension_params(wire)["price"]["amount"] = "0"


def _tamper_skill_tag(wire: dict) -> None:
    wire["skills"][0]["tags"].append("finance")


def _tamper_expiry(wire: dict) -> None:
    _extension_params(wire)["expiresAt"] += 1


def _tamper_seq(wire: dict) -> None:
    _extension_params(wire)["seq"] = 2


def _tamper_multiaddr(wire: dict) -> None:
    _extension_params(wire)["multiaddrs"] = ["/ip4/10.0.0.1/tcp/4001"]


def _tamper_rpc_url(wire: dict) -> None:
    wire["supportedInterfaces"][0]["url"] = "http://evil.example:7070"


def _tamper_extra_field(wire: dict) -> None:
    wire["iconUrl"] = "http://evil.example/icon.png"


@pytest.mark.parametrize(
    "tamper",
    [
        _tamper_name,
        _tamper_description,
        _tamper_price,
        _tamper_skill_tag,
        _tamper_expiry,
        _tamper_seq,
        _tamper_multiaddr,
        _tamper_rpc_url,
        _tamper_extra_field,
    ],
    ids=lambda f: f.__name__.removeprefix("_tamper_"),
)
def test_tampered_card_fails_verification(card, tamper):
    wire = copy.deepcopy(card.to_wire())
    tamper(wire)
    with pytest.raises(CardSignatureError):
        verify_card(AgentCard.model_validate(wire))


def test_card_signed_by_another_key_naming_the_first_peer_fails(card):
    with pytest.raises(CardSignatureError):
        verify_card(sign_card(card, OTHER_KEY))


def test_card_with_forged_kid_signed_by_another_key_fails(card):
    forged = sign_detached(
        card_signing_payload(card), OTHER_KEY, {"alg": "EdDSA", "kid": KEY.peer_id}
    )
    signature = AgentCardSignature(protected=forged[0], signature=forged[1])
    with pytest.raises(CardSignatureError):
        verify_card(card.model_copy(update={"signatures": [signature]}))


def test_card_whose_extension_is_rewritten_to_another_peer_fails(card):
    wire = copy.deepcopy(card.to_wire())
    params = _extension_params(wire)
    params["peerId"] = OTHER_KEY.peer_id
    with pytest.raises(CardSignatureError):
        verify_card(AgentCard.model_validate(wire))


def test_one_valid_signature_among_invalid_ones_is_enough(card):
    bogus = AgentCardSignature(protected="e30", signature="AAAA")
    verify_card(card.model_copy(update={"signatures": [bogus, *card.signatures]}))


def test_unsigned_card_fails(card):
    with pytest.raises(CardSignatureError, match="not signed"):
        verify_card(card.model_copy(update={"signatures": []}))


def test_card_without_the_noosphere_extension_raises_card_error(card):
    unsigned = card.model_copy(update={"capabilities": AgentCapabilities(), "signatures": []})
    signed = sign_card(unsigned, KEY)
    with pytest.raises(CardError, match="no noosphere extension") as excinfo:
        verify_card(signed)
    assert not isinstance(excinfo.value, CardSignatureError)


def test_card_with_only_foreign_extensions_raises_card_error(card):
    foreign = AgentExtension(uri="urn:example:other", params={"peerId": KEY.peer_id})
    unsigned = card.model_copy(
        update={"capabilities": AgentCapabilities(extensions=[foreign]), "signatures": []}
    )
    with pytest.raises(CardError):
        verify_card(sign_card(unsigned, KEY))


@pytest.mark.parametrize(
    "params",
    [
        None,
        {},
        {"peerId": "not-a-peer-id", "agentId": "a", "seq": 1, "issuedAt": 0, "expiresAt": 1},
        {"peerId": KEY.peer_id, "agentId": "a", "seq": -1, "issuedAt": 0, "expiresAt": 1},
        {"peerId": KEY.peer_id, "agentId": "a", "seq": 1, "issuedAt": 0, "expiresAt": 1, "x": 1},
    ],
    ids=["none", "empty", "bad-peer-id", "negative-seq", "unknown-field"],
)
def test_card_with_an_invalid_extension_raises_card_error(card, params):
    extension = AgentExtension(uri=NOOSPHERE_EXTENSION_URI, params=params)
    unsigned = card.model_copy(
        update={"capabilities": AgentCapabilities(extensions=[extension]), "signatures": []}
    )
    with pytest.raises(CardError, match="invalid noosphere extension"):
        verify_card(sign_card(unsigned, KEY))


# ---- interoperability with the reference A2A SDK -----------------------------------------------


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_a2a_sdk_verifier_accepts_our_signed_card(path):
    _sdk_verifier(KEY)(_to_sdk(_build(path)))


def test_a2a_sdk_verifier_rejects_a_tampered_card(card):
    wire = copy.deepcopy(card.to_wire())
    _tamper_price(wire)
    tampered = ParseDict(wire, a2a.types.AgentCard(), ignore_unknown_fields=False)
    with pytest.raises(InvalidSignaturesError):
        _sdk_verifier(KEY)(tampered)


def test_a2a_sdk_verifier_rejects_a_card_signed_by_another_key(card):
    with pytest.raises(InvalidSignaturesError):
        _sdk_verifier(KEY)(_to_sdk(sign_card(card, OTHER_KEY)))


def test_we_accept_a_card_signed_by_the_a2a_sdk(card):
    private_jwk = jwt.PyJWK(
        {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64url_encode(KEY.public_key),
            "d": b64url_encode(KEY.seed),
        }
    )
    signer = create_agent_card_signer(
        private_jwk, {"alg": "EdDSA", "kid": KEY.peer_id, "typ": "JOSE"}
    )
    sdk_card = _to_sdk(card)
    del sdk_card.signatures[:]
    signed_wire = MessageToDict(signer(sdk_card))
    assert verify_card(AgentCard.model_validate(signed_wire)).peer_id == KEY.peer_id


@FAST
@given(
    name=st.text(min_size=1, max_size=30),
    description=st.text(min_size=1, max_size=60),
    tag=st.text(min_size=1, max_size=12),
)
def test_a2a_sdk_agrees_on_signatures_for_arbitrary_unicode_text(card, name, description, tag):
    skill = card.skills[0].model_copy(update={"tags": [tag]})
    unsigned = card.model_copy(
        update={"name": name, "description": description, "skills": [skill], "signatures": []}
    )
    signed = sign_card(unsigned, KEY)
    verify_card(signed)
    _sdk_verifier(KEY)(_to_sdk(signed))


def test_a2a_sdk_verifier_accepts_our_card_with_a_non_required_extension(card):
    extension = card.capabilities.extensions[0].model_copy(update={"required": False})
    unsigned = card.model_copy(
        update={"capabilities": AgentCapabilities(extensions=[extension]), "signatures": []}
    )
    signed = sign_card(unsigned, KEY)
    verify_card(signed)  # our own verifier accepts it
    _sdk_verifier(KEY)(_to_sdk(signed))


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_card_with_an_injected_non_finite_field_fails_verification(card, literal):
    text = card.model_dump_json(by_alias=True, exclude_none=True)
    injected = text[:-1] + f',"injected":{literal}}}'
    try:
        received = AgentCard.model_validate_json(injected)
    except ValueError:
        return  # refusing non-finite numbers at parse time would also be a fix
    with pytest.raises(CardError):
        verify_card(received)
