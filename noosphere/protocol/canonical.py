"""Wire formats (all phases): RFC 8785 canonical JSON and strict base64url, the byte forms that
every signature in noosphere covers."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import rfc8785

from noosphere.errors import EncodingError  # one class for both encodings

_B64URL = re.compile(r"\A[A-Za-z0-9_-]*\Z")


def canonical_json(value: Any) -> bytes:
    """Serialize ``value`` as RFC 8785 (JCS) canonical JSON bytes."""
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise EncodingError(f"value has no canonical JSON form: {exc}") from exc


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict inverse of :func:`b64url_encode`: rejects padding and foreign characters."""
    if not isinstance(text, str) or not _B64URL.match(text) or len(text) % 4 == 1:
        raise EncodingError("not unpadded base64url text")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise EncodingError(f"invalid base64url: {exc}") from exc
    if b64url_encode(data) != text:  # non-zero trailing bits: one value, one encoding
        raise EncodingError("non-canonical base64url")
    return data
