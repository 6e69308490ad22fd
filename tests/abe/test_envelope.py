"""The hybrid envelope: the header (authority, epoch, policy, task id, ABE ciphertext) is bound to
the AES-GCM body, so tampering with any region, replaying under another task, truncating or
appending fails with an error — never a wrong plaintext — and keys of another authority or epoch
are refused with a message that names them."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noosphere.abe.encoding import MAX_STRING, EncodingError, Kind, Writer
from noosphere.abe.envelope import (
    MEDIA_TYPE,
    EnvelopeError,
    NotAuthorized,
    open_sealed,
    read_header,
    seal,
)
from noosphere.abe.fame import AbeError
from noosphere.abe.keys import AttributeKey, AuthorityPublicKey, issue_key, new_authority
from noosphere.abe.policy import PolicyError, parse_policy

POLICY = "a:1 and (b:2 or c:3)"
TASK = "task-42"
PAYLOAD = b"the task data \x00\xff" * 8
REJECTED = (EnvelopeError, EncodingError, NotAuthorized)


class World:
    def __init__(self) -> None:
        self.public, self.master = new_authority()
        self.key = issue_key(self.public, self.master, "holder", ["a:1", "b:2", "c:3"])
        self.sealed = seal(self.public, POLICY, PAYLOAD, TASK)


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def regions(sealed: bytes) -> dict[str, tuple[int, int]]:
    """Byte ranges [start, end) of every field of a sealed payload."""
    out: dict[str, tuple[int, int]] = {"magic": (0, 4), "version+kind": (4, 6)}
    pos = 6
    for name in ("authority", "epoch", "policy", "task id"):
        if name == "epoch":
            out[name] = (pos, pos + 4)
            pos += 4
            continue
        (size,) = struct.unpack(">I", sealed[pos : pos + 4])
        out[f"{name} length"] = (pos, pos + 4)
        out[name] = (pos + 4, pos + 4 + size)
        pos += 4 + size
    out["ct0"] = (pos, pos + 3 * 96)
    pos += 3 * 96
    (rows,) = struct.unpack(">H", sealed[pos : pos + 2])
    out["row count"] = (pos, pos + 2)
    pos += 2
    out["rows"] = (pos, pos + rows * 3 * 48)
    pos += rows * 3 * 48
    out["nonce"] = (pos, pos + 12)
    out["body"] = (pos + 12, len(sealed) - 16)
    out["tag"] = (len(sealed) - 16, len(sealed))
    return out


def flip(data: bytes, position: int, mask: int) -> bytes:
    return data[:position] + bytes([data[position] ^ mask]) + data[position + 1 :]


def test_round_trip_and_header(world: World) -> None:
    assert open_sealed(world.key, world.sealed, task_id=TASK) == PAYLOAD
    assert open_sealed(world.key, world.sealed) == PAYLOAD
    header = read_header(world.sealed)
    assert header.authority == world.public.fingerprint and header.epoch == 1
    assert header.policy == parse_policy(POLICY) and header.task_id == TASK
    assert len(header.ciphertext.rows) == 3
    assert world.sealed.startswith(header.header_bytes)
    assert regions(world.sealed)["tag"][1] == len(world.sealed)
    assert MEDIA_TYPE == "application/vnd.noosphere.abe"


@pytest.mark.parametrize("payload", [b"", b"x", bytes(range(256)) * 400])
def test_payload_sizes(world: World, payload: bytes) -> None:
    sealed = seal(world.public, "a:1", payload, "")
    assert open_sealed(world.key, sealed, task_id="") == payload


def test_sealing_is_randomized(world: World) -> None:
    assert seal(world.public, POLICY, PAYLOAD, TASK) != world.sealed


def test_wrong_task_id_is_refused(world: World) -> None:
    with pytest.raises(EnvelopeError, match="sealed for task 'task-42', not 'task-43'"):
        open_sealed(world.key, world.sealed, task_id="task-43")


def test_swapping_the_task_id_in_the_header_fails_authentication(world: World) -> None:
    start, end = regions(world.sealed)["task id"]
    replayed = world.sealed[:start] + b"task-43" + world.sealed[end:]
    assert read_header(replayed).task_id == "task-43"
    with pytest.raises(EnvelopeError, match="failed authentication"):
        open_sealed(world.key, replayed, task_id="task-43")


def test_swapping_the_policy_for_one_with_the_same_shape_fails(world: World) -> None:
    start, end = regions(world.sealed)["policy"]
    swapped_text = str(parse_policy(POLICY)).replace("b:2", "d:4").encode()
    assert len(swapped_text) == end - start
    swapped = world.sealed[:start] + swapped_text + world.sealed[end:]
    holder_of_d = issue_key(world.public, world.master, "d", ["a:1", "d:4"])
    with pytest.raises(EnvelopeError, match="failed authentication"):
        open_sealed(holder_of_d, swapped)
    with pytest.raises(EnvelopeError, match="failed authentication"):
        open_sealed(world.key, swapped)


@pytest.mark.parametrize(
    "region",
    [
        "magic",
        "version+kind",
        "authority length",
        "authority",
        "epoch",
        "policy length",
        "policy",
        "task id length",
        "task id",
        "ct0",
        "row count",
        "rows",
        "nonce",
        "body",
        "tag",
    ],
)
def test_flipping_bytes_in_every_region_is_rejected(world: World, region: str) -> None:
    start, end = regions(world.sealed)[region]
    positions = sorted({start, (start + end) // 2, end - 1})
    for position in positions:
        for mask in (0x01, 0x80, 0xFF):
            changed = flip(world.sealed, position, mask)
            with pytest.raises(REJECTED) as caught:
                open_sealed(world.key, changed)
            message = str(caught.value)
            assert message and "\n" not in message, (region, position, mask)


@settings(max_examples=150, deadline=None)
@given(position=st.integers(min_value=0), mask=st.integers(1, 255))
def test_any_single_byte_change_is_rejected(world: World, position: int, mask: int) -> None:
    position %= len(world.sealed)
    with pytest.raises(REJECTED):
        open_sealed(world.key, flip(world.sealed, position, mask))


def test_truncation_and_trailing_bytes(world: World) -> None:
    sealed = world.sealed
    header_length = len(read_header(sealed).header_bytes)
    for cut in [*range(0, header_length, 97), header_length - 1]:
        with pytest.raises(EncodingError, match="truncated"):
            open_sealed(world.key, sealed[:cut])
    for cut in (header_length, header_length + 12, header_length + 27):
        with pytest.raises(EnvelopeError, match="truncated body"):
            open_sealed(world.key, sealed[:cut])
    for cut in (header_length + 28, len(sealed) - 1):
        with pytest.raises(EnvelopeError, match="failed authentication"):
            open_sealed(world.key, sealed[:cut])
    for extra in (b"\x00", b"trailing bytes"):
        with pytest.raises(EnvelopeError, match="failed authentication"):
            open_sealed(world.key, sealed + extra)


def test_key_of_another_authority_is_refused_by_name(world: World) -> None:
    other_public, other_master = new_authority()
    stranger = issue_key(other_public, other_master, "holder", ["a:1", "b:2"])
    with pytest.raises(EnvelopeError) as caught:
        open_sealed(stranger, world.sealed)
    message = str(caught.value)
    assert world.public.fingerprint in message and other_public.fingerprint in message
    assert "authority" in message
    # Even if it claims to be of this authority, it cannot open the payload.
    impostor = AttributeKey(world.public.fingerprint, 1, "holder", stranger.key)
    with pytest.raises(EnvelopeError, match="failed authentication"):
        open_sealed(impostor, world.sealed)


def test_key_of_an_older_epoch_is_refused(world: World) -> None:
    next_public, next_master = new_authority(epoch=2)
    sealed = seal(next_public, "a:1", b"new", "")
    with pytest.raises(EnvelopeError, match=r"epoch 2, but this key .* epoch 1 \(if the"):
        open_sealed(world.key, sealed)
    renewed = issue_key(next_public, next_master, "holder", ["a:1"])
    assert open_sealed(renewed, sealed) == b"new"
    with pytest.raises(EnvelopeError, match=r"epoch 1, but this key .* epoch 2"):
        open_sealed(renewed, world.sealed)
    # A key relabelled with the new epoch still holds the old epoch's secrets.
    relabelled = AttributeKey(next_public.fingerprint, 2, "holder", world.key.key)
    with pytest.raises(EnvelopeError, match="failed authentication"):
        open_sealed(relabelled, sealed)


def test_not_authorized_comes_before_decryption(world: World) -> None:
    weak = issue_key(world.public, world.master, "weak", ["b:2", "c:3"])
    with pytest.raises(NotAuthorized, match="do not satisfy the policy"):
        open_sealed(weak, world.sealed, task_id=TASK)


def test_header_problems_have_clear_messages(world: World) -> None:
    def header(policy: str, rows: int) -> bytes:
        w = Writer(Kind.SEALED).string(world.public.fingerprint).u32(1).string(policy)
        w.string("t")
        ct0 = read_header(world.sealed).ciphertext.ct0
        w.elements(ct0).u16(rows)
        for row in read_header(world.sealed).ciphertext.rows[:rows]:
            w.elements(row)
        return w.getvalue()

    with pytest.raises(EnvelopeError, match=r"^sealed payload: policy: .*column"):
        read_header(header("a:1 and", 0))
    with pytest.raises(EnvelopeError, match="2 rows for a policy with 3"):
        read_header(header(POLICY, 2))
    with pytest.raises(EncodingError, match="row count 5000 is over the limit 1024"):
        read_header(header(POLICY, 0)[:-2] + struct.pack(">H", 5000))
    with pytest.raises(EncodingError, match="this is a public_key, not a sealed"):
        read_header(world.public.encode())


def test_seal_refuses_bad_inputs(world: World) -> None:
    with pytest.raises(PolicyError):
        seal(world.public, "a:1 or", b"x", "")
    with pytest.raises(AbeError, match="task id is over"):
        seal(world.public, "a:1", b"x", "t" * (MAX_STRING + 1))
    assert isinstance(AuthorityPublicKey.decode(world.public.encode()), AuthorityPublicKey)
