"""Discover (card endpoint): an agent card served over HTTP with the caching headers A2A 8.6
asks for. ``Cache-Control: max-age`` is the node's re-announce interval (a card is re-signed
that often, so a client asks again about when a new version exists), the ``ETag`` is a hash of
the exact bytes served, ``Last-Modified`` is the card's signing time, and a request whose
``If-None-Match`` names the current ETag gets ``304 Not Modified`` without a body."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from noosphere.protocol import AgentCard, CardError


def card_etag(body: bytes) -> str:
    """A strong ETag for the serialized card."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {c.strip().removeprefix("W/") for c in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


def _last_modified(card: dict[str, Any]) -> str | None:
    try:
        issued_ms = AgentCard.model_validate(card).noosphere().issued_at
    except (CardError, ValueError):  # a card without the extension: no date
        return None
    return format_datetime(datetime.fromtimestamp(issued_ms / 1000, UTC), usegmt=True)


def card_response(request: Request, card: dict[str, Any], max_age_s: int) -> Response:
    """The card as JSON with Cache-Control, ETag and Last-Modified; 304 when unchanged."""
    body = json.dumps(card, ensure_ascii=True, separators=(",", ":")).encode()
    etag = card_etag(body)
    headers = {"Cache-Control": f"public, max-age={max(1, max_age_s)}", "ETag": etag}
    last_modified = _last_modified(card)
    if last_modified is not None:
        headers["Last-Modified"] = last_modified
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
