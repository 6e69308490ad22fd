"""Execute (who may read task data): task parts sealed under an attribute policy.

A requester replaces a message's parts with one part holding the ABE envelope of those parts
(JSON of their A2A wire form), bound to the message id (A2A assigns the task id only after the
message is accepted, so the message id is what the sender can bind). The agent's runtime opens
sealed parts in memory, with the attribute keys its node imported; the node stores only the
sealed form (task history), so plaintext never reaches the disk or logs of a node that cannot
open it. A node whose keys do not satisfy the policy rejects the task with the reason."""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import TypeAdapter, ValidationError

from noosphere.abe.encoding import EncodingError
from noosphere.abe.envelope import MEDIA_TYPE, EnvelopeError, open_sealed, read_header, seal
from noosphere.abe.fame import NotAuthorized
from noosphere.abe.keys import AttributeKey, AuthorityPublicKey
from noosphere.errors import CryptoError
from noosphere.protocol.a2a import Message, Part

_PARTS = TypeAdapter(list[Part])


class SealedPartError(CryptoError):
    """A sealed part cannot be opened by this node; ``str`` is the reason for the requester."""


def seal_parts(
    authority: AuthorityPublicKey, policy: str, parts: Sequence[Part], message_id: str
) -> Part:
    """One part that only holders of keys satisfying ``policy`` can turn back into ``parts``."""
    payload = json.dumps([p.to_wire() for p in parts], separators=(",", ":")).encode("utf-8")
    return Part.of_bytes(
        seal(authority, policy, payload, message_id), filename=None, media_type=MEDIA_TYPE
    )


def is_sealed(part: Part) -> bool:
    return part.media_type == MEDIA_TYPE and part.raw is not None


def open_message(message: Message, keys: Sequence[AttributeKey]) -> Message:
    """``message`` with every sealed part replaced by the parts inside (in memory only)."""
    if not any(is_sealed(p) for p in message.parts):
        return message
    parts: list[Part] = []
    for part in message.parts:
        if not is_sealed(part):
            parts.append(part)
            continue
        parts.extend(_open_part(part.content_bytes or b"", keys, message.message_id))
    return message.model_copy(update={"parts": parts})


def _open_part(sealed: bytes, keys: Sequence[AttributeKey], message_id: str) -> list[Part]:
    try:
        header = read_header(sealed)
    except (EnvelopeError, EncodingError) as exc:
        raise SealedPartError(f"the sealed part is malformed: {exc}") from exc
    candidates = [k for k in keys if k.authority == header.authority]
    if not candidates:
        raise SealedPartError(
            f"this agent holds no attribute key of authority {header.authority} "
            f"(policy: {header.policy})"
        )
    same_epoch = [k for k in candidates if k.epoch == header.epoch]
    if not same_epoch:
        raise SealedPartError(
            f"this agent's keys are not from key epoch {header.epoch} of authority "
            f"{header.authority}"
        )
    for key in same_epoch:
        try:
            payload = open_sealed(key, sealed, task_id=message_id)
        except NotAuthorized:
            continue
        except (EnvelopeError, EncodingError) as exc:
            raise SealedPartError(f"the sealed part was rejected: {exc}") from exc
        try:
            return _PARTS.validate_json(payload)
        except ValidationError as exc:
            raise SealedPartError("the sealed part does not hold A2A parts") from exc
    held = sorted({a for k in same_epoch for a in k.attributes})
    raise SealedPartError(
        f"this agent's attributes ({', '.join(held)}) do not satisfy the policy {header.policy}"
    )
