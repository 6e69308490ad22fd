"""The agent card endpoint's caching headers (A2A 8.6): Cache-Control with max-age, an ETag of
the bytes served, Last-Modified from the signing time, and 304 on a matching If-None-Match."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from noosphere.agents.publish import NodeEndpoint, build_card
from noosphere.agents.spec import load_agent_spec
from noosphere.node.card_http import card_response
from noosphere.protocol import NodeKey

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

SPEC = load_agent_spec(Path(__file__).parents[2] / "examples" / "agents" / "calculator.yaml")
KEY = NodeKey.from_seed(b"c" * 32)
ISSUED_MS = 1_800_000_000_000  # 2027-01-15T08:00:00Z


def _card(seq: int) -> dict[str, Any]:
    endpoint = NodeEndpoint(rpc_url="http://127.0.0.1:7070", multiaddrs=[])
    card = build_card(SPEC, KEY, endpoint, seq=seq, issued_at_ms=ISSUED_MS, ttl_ms=60_000)
    return card.to_wire()


def _client(cards: list[dict[str, Any]]) -> TestClient:
    async def serve(request: Request) -> Response:
        return card_response(request, cards[-1], max_age_s=20)

    return TestClient(Starlette(routes=[Route("/card", serve)]))


def test_card_has_cache_control_etag_and_last_modified() -> None:
    response = _client([_card(1)]).get("/card")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=20"
    assert response.headers["etag"].startswith('"') and response.headers["etag"].endswith('"')
    assert response.headers["last-modified"] == "Fri, 15 Jan 2027 08:00:00 GMT"
    assert response.json() == _card(1)


def test_if_none_match_gets_304_until_the_card_changes() -> None:
    cards = [_card(1)]
    client = _client(cards)
    etag = client.get("/card").headers["etag"]
    unchanged = client.get("/card", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    listed = client.get("/card", headers={"If-None-Match": f'"other", W/{etag}'})
    assert listed.status_code == 304
    cards.append(_card(2))  # re-announced: a new sequence number, a new signature
    changed = client.get("/card", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
