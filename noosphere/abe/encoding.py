"""Execute (who may read task data): the binary encoding of ABE keys and sealed payloads.

pymcl objects do not pickle, and keys cross process and trust boundaries, so every object has one
explicit, versioned, compact encoding: ``NABE`` magic, a format version, a kind byte, then fields
in a fixed order (group elements at their fixed sizes, counts and strings length-prefixed).
Loading checks the magic, version, kind, every length and count, that each group element
decodes, is canonical (re-encodes to the same bytes), lies in its prime-order group and is not
the identity (mcl checks G1/G2 subgroup membership itself; GT is checked here), and that nothing
trails; every failure is one ``EncodingError`` line naming what is wrong."""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import TypeVar

from pymcl import G1, G2, GT, Fr
from pymcl import r as GROUP_ORDER

from noosphere.errors import EncodingError  # one class for both encodings

MAGIC = b"NABE"
VERSION = 1
MAX_ITEMS = 4096
MAX_STRING = 64 * 1024

_SIZES: dict[type, int] = {G1: 48, G2: 96, GT: 576, Fr: 32}

Element = TypeVar("Element", G1, G2, GT, Fr)


class Kind(IntEnum):
    PUBLIC_KEY = 1
    MASTER_KEY = 2
    SECRET_KEY = 3
    SEALED = 4


class Writer:
    def __init__(self, kind: Kind) -> None:
        self._parts: list[bytes] = [MAGIC, bytes([VERSION, kind])]

    def element(self, value: G1 | G2 | GT | Fr) -> Writer:
        self._parts.append(value.serialize())
        return self

    def elements(self, values: tuple[G1 | G2 | GT | Fr, ...]) -> Writer:
        for value in values:
            self.element(value)
        return self

    def u16(self, value: int) -> Writer:
        self._parts.append(struct.pack(">H", value))
        return self

    def u32(self, value: int) -> Writer:
        self._parts.append(struct.pack(">I", value))
        return self

    def string(self, value: str) -> Writer:
        return self.blob(value.encode("utf-8"))

    def blob(self, data: bytes) -> Writer:
        self._parts.append(struct.pack(">I", len(data)) + data)
        return self

    def raw(self, data: bytes) -> Writer:
        self._parts.append(data)
        return self

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


class Reader:
    def __init__(self, data: bytes, kind: Kind, what: str) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self.what = what
        if bytes(self._take(4, "magic")) != MAGIC:
            raise EncodingError(f"{what}: not a noosphere ABE object (bad magic)")
        version, found = self._take(2, "header")
        if version != VERSION:
            raise EncodingError(f"{what}: format version {version} is not supported")
        if found != kind:
            name = Kind(found).name.lower() if found in Kind._value2member_map_ else str(found)
            raise EncodingError(f"{what}: this is a {name}, not a {kind.name.lower()}")

    @property
    def offset(self) -> int:
        return self._pos

    def _take(self, size: int, field: str) -> memoryview:
        if self._pos + size > len(self._data):
            raise EncodingError(f"{self.what}: truncated in {field}")
        chunk = self._data[self._pos : self._pos + size]
        self._pos += size
        return chunk

    def element(self, cls: type[Element], field: str) -> Element:
        data = bytes(self._take(_SIZES[cls], field))
        try:
            value = cls.deserialize(data)
        except ValueError as exc:
            raise EncodingError(f"{self.what}: {field} is not a valid group element") from exc
        if value.serialize() != data:
            raise EncodingError(f"{self.what}: {field} is not canonically encoded")
        if isinstance(value, GT):
            # mcl decodes any Fp12 element (zero included) as a GT value: check membership in
            # the order-r subgroup (x^r = 1, as x^(r-1)·x since r is 0 in Fr) and the identity.
            if value.is_zero() or not (value ** Fr(str(GROUP_ORDER - 1)) * value).is_one():
                raise EncodingError(f"{self.what}: {field} is not in the pairing group GT")
            if value.is_one():
                raise EncodingError(f"{self.what}: {field} is the identity")
        elif value.is_zero():
            raise EncodingError(f"{self.what}: {field} is the identity")
        return value

    def u16(self, field: str, *, limit: int = MAX_ITEMS) -> int:
        (value,) = struct.unpack(">H", self._take(2, field))
        if value > limit:
            raise EncodingError(f"{self.what}: {field} {value} is over the limit {limit}")
        return value

    def u32(self, field: str) -> int:
        (value,) = struct.unpack(">I", self._take(4, field))
        return value

    def blob(self, field: str, *, limit: int) -> bytes:
        size = self.u32(field)
        if size > limit:
            raise EncodingError(f"{self.what}: {field} of {size} bytes is over {limit}")
        return bytes(self._take(size, field))

    def string(self, field: str) -> str:
        try:
            return self.blob(field, limit=MAX_STRING).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EncodingError(f"{self.what}: {field} is not UTF-8") from exc

    def raw(self, size: int, field: str) -> bytes:
        return bytes(self._take(size, field))

    def rest(self) -> bytes:
        data = bytes(self._data[self._pos :])
        self._pos = len(self._data)
        return data

    def end(self) -> None:
        if self._pos != len(self._data):
            raise EncodingError(f"{self.what}: {len(self._data) - self._pos} unexpected bytes")
