"""RFC 8785 canonical JSON and strict unpadded base64url (noosphere.protocol.canonical)."""

from __future__ import annotations

import base64
import json
import math
import struct

import pytest
from a2a.utils._jcs import canonicalize as sdk_canonicalize
from hypothesis import given, settings
from hypothesis import strategies as st

from noosphere.protocol import EncodingError, b64url_decode, b64url_encode, canonical_json

FAST = settings(max_examples=200, deadline=None, database=None)

# RFC 8785 section 3.2.2, input exactly as printed in the RFC (a raw string: the JSON escapes
# are part of the input text, not Python escapes).
RFC8785_INPUT = r"""{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"""
# Expected output as printed in the RFC: non-ASCII stays literal UTF-8, only the C0 controls,
# '"' and '\' are escaped, with lowercase hex and the short forms \n etc. where they exist.
RFC8785_OUTPUT = (
    r'{"literals":[null,true,false],'
    r'"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
    r""""string":"€$\u000f\nA'B\"\\\\\"/"}"""
).encode()

# RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical number text.
RFC8785_NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]

# JSON values with an RFC 8785 form: integers inside the IEEE 754 exact range, finite floats,
# any Unicode text without lone surrogates (hypothesis never generates those by default).
SAFE_INT = st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | SAFE_INT
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=20,
)


def _float_from_bits(hex_bits: str) -> float:
    return struct.unpack(">d", bytes.fromhex(hex_bits))[0]


# ---- canonical_json --------------------------------------------------------------------------


def test_canonical_json_matches_rfc8785_section_3_2_2_example():
    assert canonical_json(json.loads(RFC8785_INPUT)) == RFC8785_OUTPUT


@pytest.mark.parametrize(("bits", "expected"), RFC8785_NUMBERS)
def test_canonical_json_formats_numbers_as_rfc8785_appendix_b(bits, expected):
    assert canonical_json(_float_from_bits(bits)) == expected.encode("ascii")


def test_canonical_json_sorts_keys_by_utf16_code_units_as_rfc8785_section_3_2_3():
    # The RFC's sorting example: U+1F600 (UTF-16 D83D DE00) sorts before U+FB33, although its
    # code point is larger; a code-point sort would put it last.
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    assert list(json.loads(canonical_json(value))) == [
        "\r",
        "1",
        "\u0080",
        "\u00f6",
        "\u20ac",
        "\U0001f600",
        "\ufb33",
    ]


def test_canonical_json_writes_nested_objects_without_whitespace():
    assert (
        canonical_json({"b": [1, {"d": 2, "c": 3}], "a": "x"}) == b'{"a":"x","b":[1,{"c":3,"d":2}]}'
    )


def test_canonical_json_writes_integral_floats_like_integers():
    assert canonical_json([1.0, -0.0, 1e21, 100.0]) == b"[1,0,1e+21,100]"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, {"a": [math.inf]}])
def test_canonical_json_rejects_non_finite_floats(value):
    with pytest.raises(EncodingError):
        canonical_json(value)


@pytest.mark.parametrize("value", [2**53, -(2**53), 2**63])
def test_canonical_json_rejects_integers_outside_the_exact_double_range(value):
    with pytest.raises(EncodingError):
        canonical_json(value)


@pytest.mark.parametrize("value", [{1: "a"}, b"bytes", object(), "\ud800", {"k": {1, 2}}])
def test_canonical_json_rejects_values_without_a_json_form(value):
    with pytest.raises(EncodingError):
        canonical_json(value)


@FAST
@given(JSON_VALUES)
def test_canonical_json_parses_back_to_an_equal_value(value):
    # RFC 8785 numbers are IEEE 754 doubles: 4.459524864307546e16 is written 44595248643075460,
    # which Python's json would otherwise read as a different (exact) integer.
    assert json.loads(canonical_json(value), parse_int=float) == value


@FAST
@given(JSON_VALUES)
def test_canonical_json_agrees_with_the_a2a_sdk_canonicalizer(value):
    # a2a-sdk ships an independent RFC 8785 implementation: both must produce the same bytes.
    assert canonical_json(value) == sdk_canonicalize(value).encode("utf-8")


# ---- b64url ----------------------------------------------------------------------------------


@FAST
@given(st.binary(max_size=200))
def test_b64url_round_trips_any_bytes(data):
    assert b64url_decode(b64url_encode(data)) == data


@FAST
@given(st.binary(max_size=200))
def test_b64url_encode_is_unpadded_urlsafe_base64(data):
    text = b64url_encode(data)
    assert "=" not in text
    assert text == base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def test_b64url_encode_known_answer():
    assert b64url_encode(b"\xfb\xff\xfe") == "-__-"
    assert b64url_encode(b"Example of Ed25519 signing") == "RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"


def test_b64url_decode_accepts_the_empty_string():
    assert b64url_decode("") == b""


@pytest.mark.parametrize("text", ["AA==", "AAA=", "AA=", "=", "QUJD===="])
def test_b64url_decode_rejects_padding(text):
    with pytest.raises(EncodingError):
        b64url_decode(text)


@pytest.mark.parametrize("text", ["+___", "/___", "ab+c", "ab/c"])
def test_b64url_decode_rejects_standard_base64_alphabet(text):
    with pytest.raises(EncodingError):
        b64url_decode(text)


@pytest.mark.parametrize("text", [" AAA", "AA AA", "AAAA\n", "AAA\n", "\tAAAA", "AAAA\r\n", "\n"])
def test_b64url_decode_rejects_whitespace(text):
    with pytest.raises(EncodingError):
        b64url_decode(text)


@pytest.mark.parametrize("text", ["A", "AAAAA", "AAAAAAAAA"])
def test_b64url_decode_rejects_length_one_modulo_four(text):
    with pytest.raises(EncodingError):
        b64url_decode(text)


@pytest.mark.parametrize("value", [b"AAAA", None, 1234])
def test_b64url_decode_rejects_non_string_input(value):
    with pytest.raises(EncodingError):
        b64url_decode(value)


@FAST
@given(st.text(max_size=40))
def test_b64url_decode_of_arbitrary_text_returns_bytes_or_raises_encoding_error(text):
    try:
        result = b64url_decode(text)
    except EncodingError:
        return
    assert isinstance(result, bytes)


def test_b64url_decode_rejects_non_canonical_trailing_bits():
    assert b64url_encode(b"\x00") == "AA"
    with pytest.raises(EncodingError):
        b64url_decode("AB")
