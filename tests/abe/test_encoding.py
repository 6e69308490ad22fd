"""The versioned binary encodings of ABE keys: exact round trips, and one clear EncodingError for
every kind of malformed input (magic, version, kind, lengths, counts, group elements)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymcl import G1, G2, GT, Fr, g1, g2, pairing

from noosphere.abe.encoding import MAGIC, VERSION, EncodingError, Kind, Reader, Writer
from noosphere.abe.keys import (
    AttributeKey,
    AuthorityMasterKey,
    AuthorityPublicKey,
    issue_key,
    new_authority,
)

# BLS12-381 base field.
P = int(
    "1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab",
    16,
)
Keys = tuple[AuthorityPublicKey, AuthorityMasterKey, AttributeKey]


@pytest.fixture(scope="module")
def keys() -> Keys:
    public, master = new_authority(epoch=7)
    return public, master, issue_key(public, master, "holder-1", ["b:2", "a:1", "c:3"])


# --- offsets of fields in the encodings (header is magic + version + kind) ------------------------
HEADER = 6
PUB_ISSUER = 4  # the keys fixture's authority has an empty issuer: its length prefix only
PUB_T1 = HEADER + 4 + PUB_ISSUER + 3 * 96  # epoch, issuer, h, H1, H2


def secret_key_offsets(key: AttributeKey) -> dict[str, int]:
    start = HEADER + 4 + len(key.authority) + 4 + 4 + len(key.holder)
    return {"sk0": start, "sk'": start + 3 * 96, "count": start + 3 * 96 + 3 * 48}


def splice(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


def non_subgroup_g1() -> bytes:
    """A point on y^2 = x^3 + 4 that is not in the order-r subgroup (cofactor ≠ 1)."""
    x = 1
    while True:
        rhs = (x**3 + 4) % P
        y = pow(rhs, (P + 1) // 4, P)
        if y * y % P == rhs:
            return x.to_bytes(48, "little")
        x += 1


# --- round trips ---------------------------------------------------------------------------------


def test_round_trips_are_exact(keys: Keys) -> None:
    public, master, key = keys
    assert AuthorityPublicKey.decode(public.encode()) == public
    assert AuthorityPublicKey.decode(public.encode()).fingerprint == public.fingerprint
    decoded_master = AuthorityMasterKey.decode(master.encode())
    assert decoded_master.encode() == master.encode() and decoded_master.epoch == 7
    decoded = AttributeKey.decode(key.encode())
    assert decoded.encode() == key.encode()
    assert (decoded.authority, decoded.epoch, decoded.holder) == (public.fingerprint, 7, "holder-1")
    assert decoded.attributes == ["a:1", "b:2", "c:3"]


def test_fingerprint_names_authority_and_epoch(keys: Keys) -> None:
    public = keys[0]
    assert len(public.fingerprint) == 32 and int(public.fingerprint, 16) >= 0
    assert AuthorityPublicKey(8, public.key).fingerprint != public.fingerprint
    assert AuthorityPublicKey(public.epoch, public.key, "other").fingerprint != public.fingerprint


def test_layout_matches_the_documented_header(keys: Keys) -> None:
    data = keys[0].encode()
    assert data[:4] == MAGIC and data[4] == VERSION and data[5] == Kind.PUBLIC_KEY
    assert len(data) == HEADER + 4 + PUB_ISSUER + 3 * 96 + 2 * 576


# --- header problems -----------------------------------------------------------------------------


def test_bad_magic_version_and_kind(keys: Keys) -> None:
    data = keys[0].encode()
    with pytest.raises(EncodingError, match=r"^authority public key: .*\(bad magic\)$"):
        AuthorityPublicKey.decode(b"XABE" + data[4:])
    with pytest.raises(EncodingError, match="format version 2 is not supported"):
        AuthorityPublicKey.decode(data[:4] + b"\x02" + data[5:])
    with pytest.raises(EncodingError, match="this is a public_key, not a secret_key"):
        AttributeKey.decode(data)
    with pytest.raises(EncodingError, match="this is a secret_key, not a master_key"):
        AuthorityMasterKey.decode(keys[2].encode())
    with pytest.raises(EncodingError, match="this is a 99, not a public_key"):
        AuthorityPublicKey.decode(data[:5] + b"\x63" + data[6:])
    for short in (b"", b"NA", b"NABE", b"NABE\x01"):
        with pytest.raises(EncodingError, match="truncated"):
            AuthorityPublicKey.decode(short)


@pytest.mark.parametrize("which", [0, 1, 2])
def test_every_truncation_and_any_trailing_byte_is_rejected(keys: Keys, which: int) -> None:
    obj = keys[which]
    data = obj.encode()
    decode = type(obj).decode
    for cut in range(0, len(data), 7):
        with pytest.raises(EncodingError, match="truncated"):
            decode(data[:cut])
    with pytest.raises(EncodingError, match="truncated"):
        decode(data[:-1])
    with pytest.raises(EncodingError, match="1 unexpected bytes"):
        decode(data + b"\x00")


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=200))
def test_random_bytes_never_crash_the_decoders(data: bytes) -> None:
    for decode in (AuthorityPublicKey.decode, AuthorityMasterKey.decode, AttributeKey.decode):
        for candidate in (data, MAGIC + bytes([VERSION, Kind.SECRET_KEY]) + data):
            with pytest.raises(EncodingError):
                decode(candidate)


@settings(max_examples=80, deadline=None)
@given(position=st.integers(min_value=0), mask=st.integers(1, 255))
def test_flipped_byte_in_a_key_is_rejected_or_decodes_to_a_different_key(
    keys: Keys, position: int, mask: int
) -> None:
    data = keys[2].encode()
    position %= len(data)
    changed = data[:position] + bytes([data[position] ^ mask]) + data[position + 1 :]
    try:
        decoded = AttributeKey.decode(changed)
    except EncodingError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("attribute key: ")
    else:  # a sign bit of a point, a character of a string, a count that still parses...
        assert decoded.encode() == changed != data


# --- group elements ------------------------------------------------------------------------------


def test_invalid_group_elements_are_named(keys: Keys) -> None:
    public, _, key = keys
    at = secret_key_offsets(key)
    data = key.encode()
    with pytest.raises(EncodingError, match=r"^attribute key: sk0\[1\] is not a valid group"):
        AttributeKey.decode(splice(data, at["sk0"], b"\xff" * 96))
    with pytest.raises(EncodingError, match=r"sk'\[2\] is not a valid group element"):
        AttributeKey.decode(splice(data, at["sk'"] + 48, b"\x13" * 48))
    # x >= p (a non-canonical field element) does not decode either
    with pytest.raises(EncodingError, match=r"sk'\[1\] is not a valid group element"):
        AttributeKey.decode(splice(data, at["sk'"], (P + 1).to_bytes(48, "little")))
    with pytest.raises(EncodingError, match=r"H1 is not a valid group element"):
        AuthorityPublicKey.decode(
            splice(public.encode(), HEADER + 4 + PUB_ISSUER + 96, b"\x01" * 96)
        )


def test_points_outside_the_prime_order_subgroup_are_rejected(keys: Keys) -> None:
    key = keys[2]
    at = secret_key_offsets(key)
    # control: the generator's x with its sign bit is a valid encoding of ±g
    assert G1.deserialize(g1.serialize()) == g1
    outside = non_subgroup_g1()
    for flag in (0x00, 0x80):
        encoded = outside[:47] + bytes([outside[47] | flag])
        with pytest.raises(EncodingError, match="not a valid group element"):
            AttributeKey.decode(splice(key.encode(), at["sk'"], encoded))


def test_identity_elements_are_rejected(keys: Keys) -> None:
    public, master, key = keys
    at = secret_key_offsets(key)
    with pytest.raises(EncodingError, match=r"^attribute key: sk0\[3\] is the identity$"):
        AttributeKey.decode(splice(key.encode(), at["sk0"] + 192, bytes(96)))
    with pytest.raises(EncodingError, match=r"sk'\[1\] is the identity$"):
        AttributeKey.decode(splice(key.encode(), at["sk'"], bytes(48)))
    with pytest.raises(EncodingError, match=r"^authority master key: a1 is the identity$"):
        AuthorityMasterKey.decode(splice(master.encode(), HEADER + 4, bytes(32)))
    one = (pairing(g1, g2) ** Fr(0)).serialize()
    assert GT.deserialize(one).is_one()
    with pytest.raises(EncodingError, match=r"^authority public key: T1 is the identity$"):
        AuthorityPublicKey.decode(splice(public.encode(), PUB_T1, one))


def test_gt_values_outside_the_pairing_group_are_rejected(keys: Keys) -> None:
    public = keys[0]
    data = public.encode()
    t2 = PUB_T1 + 576
    with pytest.raises(EncodingError, match=r"^authority public key: T2 is not in the pairing"):
        AuthorityPublicKey.decode(splice(data, t2, bytes(576)))  # zero: mcl decodes it
    tweaked = bytearray(data[t2 : t2 + 576])
    tweaked[0] ^= 1  # still a field element of Fp12, but not of order r
    with pytest.raises(EncodingError, match="T2 is not in the pairing group GT"):
        AuthorityPublicKey.decode(splice(data, t2, bytes(tweaked)))


def test_scalars_must_be_reduced(keys: Keys) -> None:
    master = keys[1].encode()
    r_bytes = (0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001).to_bytes(
        32, "little"
    )
    with pytest.raises(EncodingError, match=r"a2 is not a valid group element"):
        AuthorityMasterKey.decode(splice(master, HEADER + 4 + 32, r_bytes))


# --- counts, strings, canonical order -----------------------------------------------------------


def test_huge_counts_and_lengths_get_clear_errors(keys: Keys) -> None:
    key = keys[2]
    at = secret_key_offsets(key)
    data = key.encode()
    with pytest.raises(EncodingError, match="attribute count 65535 is over the limit 1024"):
        AttributeKey.decode(splice(data, at["count"], b"\xff\xff"))
    with pytest.raises(EncodingError, match="truncated in attribute 3"):
        AttributeKey.decode(splice(data, at["count"], struct.pack(">H", 4)))
    with pytest.raises(EncodingError, match=r"authority of 4294967295 bytes is over 65536"):
        AttributeKey.decode(splice(data, HEADER, b"\xff\xff\xff\xff"))
    with pytest.raises(EncodingError, match="holds no attributes"):
        AttributeKey.decode(data[: at["count"]] + b"\x00\x00")


def _key_bytes(key: AttributeKey, names: list[str], holder: bytes | None = None) -> bytes:
    k = key.key
    w = Writer(Kind.SECRET_KEY).string(key.authority).u32(key.epoch)
    w.blob(holder) if holder is not None else w.string(key.holder)
    w.elements(k.sk0).elements(k.sk_prime).u16(len(names))
    for name in names:
        w.string(name).elements(k.attributes[name])
    return w.getvalue()


def test_attribute_order_must_be_canonical_and_unique(keys: Keys) -> None:
    key = keys[2]
    assert AttributeKey.decode(_key_bytes(key, ["a:1", "b:2", "c:3"])).encode() == key.encode()
    with pytest.raises(EncodingError, match="not in canonical"):
        AttributeKey.decode(_key_bytes(key, ["b:2", "a:1", "c:3"]))
    with pytest.raises(EncodingError, match="'a:1' appears twice"):
        AttributeKey.decode(_key_bytes(key, ["a:1", "a:1", "c:3"]))


def test_strings_must_be_utf8(keys: Keys) -> None:
    with pytest.raises(EncodingError, match=r"^attribute key: holder is not UTF-8$"):
        AttributeKey.decode(_key_bytes(keys[2], ["a:1"], holder=b"\xff\xfe"))


def test_reader_helpers() -> None:
    data = Writer(Kind.SEALED).u16(5).u32(9).raw(b"xy").element(G2() + g2).getvalue()
    r = Reader(data, Kind.SEALED, "thing")
    assert r.u16("a", limit=5) == 5 and r.u32("b") == 9 and r.raw(2, "c") == b"xy"
    assert r.element(G2, "d") == g2
    r.end()
    r = Reader(data, Kind.SEALED, "thing")
    with pytest.raises(EncodingError, match=r"^thing: a 5 is over the limit 4$"):
        r.u16("a", limit=4)
    r = Reader(data + b"rest", Kind.SEALED, "thing")
    r.u16("a")
    r.u32("b")
    assert r.rest().endswith(b"rest")
    r.end()
