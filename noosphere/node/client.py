"""Node API (client): a small JSON-RPC 2.0 client over httpx, used by the CLI, the demo, the
benchmarks and the tests. Errors come back as ``RpcError`` (server said no) or
``NodeUnreachable`` (nothing answered)."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from noosphere.errors import ServiceError
from noosphere.protocol import RpcError
from noosphere.protocol.api import (
    CardArrival,
    CardEntry,
    NodeStatus,
    PeerEntry,
    RecruitParams,
    RecruitReply,
)

DEFAULT_RPC_URL = "http://127.0.0.1:7070"


class NodeUnreachable(ServiceError, ConnectionError):
    """No node answered at the URL."""


class NodeClient:
    def __init__(
        self,
        rpc_url: str = DEFAULT_RPC_URL,
        *,
        timeout: float = 10.0,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.rpc_url = rpc_url.rstrip("/")
        self._http = httpx.Client(timeout=timeout, auth=auth)
        self._ids = itertools.count(1)

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        request = {
            "jsonrpc": "2.0",
            "id": next(self._ids),
            "method": method,
            "params": params or {},
        }
        try:
            response = self._http.post(self.rpc_url + "/", json=request)
        except httpx.HTTPError as exc:
            raise NodeUnreachable(f"no noosphere node answered at {self.rpc_url} ({exc})") from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise NodeUnreachable(
                f"{self.rpc_url} answered HTTP {response.status_code} without JSON-RPC"
            ) from exc
        if "error" in body:
            error = body["error"]
            raise RpcError(error.get("code", 0), error.get("message", "error"), error.get("data"))
        return body.get("result")

    def status(self) -> NodeStatus:
        return NodeStatus.model_validate(self.call("noosphere.node.status"))

    def peers(self) -> list[PeerEntry]:
        return [PeerEntry.model_validate(p) for p in self.call("noosphere.peers")]

    def cards(self, *, full: bool = False, limit: int = 1000) -> list[CardEntry]:
        params = {"full": full, "limit": limit}
        return [CardEntry.model_validate(c) for c in self.call("noosphere.cards.list", params)]

    def card(self, card_id: str) -> CardEntry:
        return CardEntry.model_validate(self.call("noosphere.cards.get", {"id": card_id}))

    def arrivals(self, since: int = 0) -> list[CardArrival]:
        result = self.call("noosphere.cards.arrivals", {"since": since})
        return [CardArrival.model_validate(a) for a in result]

    def recruit(self, params: RecruitParams) -> RecruitReply:
        return RecruitReply.model_validate(self.call("noosphere.recruit", params.to_wire()))

    def metrics_text(self) -> str:
        try:
            return self._http.get(self.rpc_url + "/metrics").text
        except httpx.HTTPError as exc:
            raise NodeUnreachable(f"no noosphere node answered at {self.rpc_url} ({exc})") from exc
