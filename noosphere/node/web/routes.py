"""All six phases (web view): the routes the node serves beside JSON-RPC at its RPC address.

* ``GET /`` the page, ``GET /ui/<asset>`` its script, style and icon (kept in the package, read
  once; no other file is ever served).
* ``GET /ui/api/network`` and ``/ui/api/reputation``: public, like ``noosphere.peers`` and
  ``noosphere.cards.list`` (the peer graph, gossip health, why each agent has its reputation).
* ``GET /ui/api/events`` (Server-Sent Events), ``/ui/api/tasks/{id}`` and
  ``/ui/api/orchestrator``: the operator only (``Authorization: Bearer <HOME/rpc.token>``):
  tasks, submissions and escrows as they change, one task with its sealed parts opened where
  this node's keys can, and the orchestrator's pool.

The page reads everything else through the JSON-RPC API (``POST /``) and changes state only
through it, with the operator token. Requests another site's page makes are refused
(``Sec-Fetch-Site``/``Origin``), and no route answers with CORS headers."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import structlog
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from noosphere.abe.authority import AuthorityError, node_keys

from .views import (
    ScalingAgent,
    network_view,
    orchestrator_state,
    payment_view,
    reputation_view,
    submission_view,
    task_view,
)

log = structlog.get_logger("noosphere.web")

#: The assets, by URL name: (package file, content type).
ASSETS = {
    "app.js": ("app.js", "text/javascript; charset=utf-8"),
    "graph.js": ("graph.js", "text/javascript; charset=utf-8"),
    "style.css": ("style.css", "text/css; charset=utf-8"),
    "icon.svg": ("icon.svg", "image/svg+xml"),
}
INDEX = "index.html"
#: Event streams open at once (each polls the store twice a second); more are answered 503.
MAX_STREAMS = 8
#: How often a stream looks for changes, and how many rows it looks at.
STREAM_POLL_S = 0.5
STREAM_SUBMISSIONS = 50
STREAM_TASKS = 100
STREAM_PAYMENTS = 200
#: A stream sends a comment this often when nothing changes (proxies close idle streams).
STREAM_PING_S = 15.0


def _asset(name: str) -> bytes:
    return resources.files("noosphere.node.web").joinpath("static", name).read_bytes()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def cross_site(request: Request) -> bool:
    """Whether another site's page made this request: the browser says so in Sec-Fetch-Site,
    or an Origin header names another origin than the one asked."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    return origin.rstrip("/") != own


@dataclass(slots=True)
class _Access:
    operator: bool
    refusal: Response | None = None


class WebView:
    """The view's handlers over one running ``Node``."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.streams = 0
        self._index = _asset(INDEX)
        self._assets = {url: (_asset(file), kind) for url, (file, kind) in ASSETS.items()}

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.index, methods=["GET", "HEAD"]),
            Route("/ui/api/network", self.network, methods=["GET"]),
            Route("/ui/api/reputation", self.reputation, methods=["GET"]),
            Route("/ui/api/events", self.events, methods=["GET"]),
            Route("/ui/api/tasks/{task_id}", self.task, methods=["GET"]),
            Route("/ui/api/orchestrator", self.orchestrator, methods=["GET"]),
            Route("/ui/{asset}", self.asset, methods=["GET", "HEAD"]),
        ]

    # ---- who asks --------------------------------------------------------------------------

    def access(self, request: Request) -> _Access:
        """Anonymous, the operator (its bearer token), or refused (another site, wrong token)."""
        if cross_site(request):
            return _Access(False, _error(403, "cross-site requests are refused"))
        authorization = request.headers.get("authorization")
        if authorization is None:
            return _Access(False)
        scheme, _, credentials = authorization.partition(" ")
        token = str(self.node.token).encode("ascii")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            credentials.strip().encode("ascii", "replace"), token
        ):
            return _Access(False, _error(401, "invalid operator token"))
        return _Access(True)

    def operator_only(self, request: Request) -> Response | None:
        access = self.access(request)
        if access.refusal is not None:
            return access.refusal
        if not access.operator:
            return _error(401, "the operator token is needed (Authorization: Bearer ...)")
        return None

    # ---- the page ----------------------------------------------------------------------------

    async def index(self, _request: Request) -> Response:
        return Response(
            self._index,
            media_type="text/html; charset=utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    async def asset(self, request: Request) -> Response:
        found = self._assets.get(request.path_params["asset"])
        if found is None:
            return _error(404, "no such file")
        body, kind = found
        return Response(body, media_type=kind, headers={"Cache-Control": "no-cache"})

    # ---- public reads ------------------------------------------------------------------------

    async def network(self, request: Request) -> Response:
        access = self.access(request)
        if access.refusal is not None:
            return access.refusal
        view = await network_view(self.node)
        return JSONResponse(view.to_wire())

    async def reputation(self, request: Request) -> Response:
        access = self.access(request)
        if access.refusal is not None:
            return access.refusal
        now = time.time_ns() // 1_000_000
        card_ids = list(self.node.store.card_versions(now_ms=now))
        return JSONResponse(reputation_view(self.node.feedback.trust, card_ids).to_wire())

    # ---- the operator's reads ----------------------------------------------------------------

    async def task(self, request: Request) -> Response:
        if (refusal := self.operator_only(request)) is not None:
            return refusal
        task_id = request.path_params["task_id"]
        row = self.node.store.get_task(task_id)
        if row is None:
            return _error(404, f"task {task_id[:64]} not found")
        try:
            keys = [key for key, _ in node_keys(self.node.home)]
        except AuthorityError as exc:
            log.warning("attribute keys unreadable", error=str(exc))
            keys = []
        payments = self.node.store.payments_for_task(task_id)
        view = await asyncio.to_thread(task_view, row, payments, keys)  # pairings take a while
        return JSONResponse(view)

    async def orchestrator(self, request: Request) -> Response:
        if (refusal := self.operator_only(request)) is not None:
            return refusal
        states = [
            orchestrator_state(agent).to_wire()
            for agent in self.node.agents.values()
            if isinstance(agent, ScalingAgent)
        ]
        return JSONResponse({"orchestrators": states})

    async def events(self, request: Request) -> Response:
        """Tasks, submissions and escrows: a ``snapshot`` event, then ``submission``, ``task``
        and ``payment`` events as rows change (each the row's full view)."""
        if (refusal := self.operator_only(request)) is not None:
            return refusal
        if self.streams >= MAX_STREAMS:
            return _error(503, f"{MAX_STREAMS} event streams are open; close one and retry")
        return EventSourceResponse(
            self._changes(), ping=STREAM_PING_S, headers={"Cache-Control": "no-store"}
        )

    async def _changes(self) -> AsyncIterator[dict[str, str]]:
        store = self.node.store
        seen_submissions: dict[str, int] = {}
        seen_payments: dict[str, tuple[int, str]] = {}
        seen_tasks: dict[str, int] = {}
        newest_task = 0
        first = True
        self.streams += 1  # counted once running: a stream never started holds no slot
        try:
            while True:  # the first round sends the snapshot even to a stopping node
                # the store is read on the event loop (its one thread); views are built off it
                submissions = [
                    s
                    for s in store.list_submissions(limit=STREAM_SUBMISSIONS)
                    if seen_submissions.get(s["id"]) != s["updatedAt"]
                ]
                payments = store.list_payments(limit=STREAM_PAYMENTS)
                changed_payments = [
                    p for p in payments if seen_payments.get(p.escrow_id) != (p.updated_at, p.state)
                ]
                # a second back: rows written in the same millisecond as the newest seen
                rows, _ = store.list_tasks(
                    updated_after=max(0, newest_task - 1000), limit=STREAM_TASKS
                )
                rows = [r for r in rows if seen_tasks.get(r.task_id) != r.updated_at]
                seen_submissions.update({s["id"]: s["updatedAt"] for s in submissions})
                seen_payments.update(
                    {p.escrow_id: (p.updated_at, p.state) for p in changed_payments}
                )
                seen_tasks.update({r.task_id: r.updated_at for r in rows})
                if rows:
                    newest_task = max(newest_task, *(r.updated_at for r in rows))
                    for task_id in [t for t, at in seen_tasks.items() if at < newest_task - 1000]:
                        del seen_tasks[task_id]  # older than any row the query returns
                by_task: dict[str, list[Any]] = {}
                for payment in payments:
                    by_task.setdefault(payment.task_id, []).append(payment)
                submission_views, task_views = await asyncio.to_thread(
                    _render_views, submissions, rows, by_task
                )
                payment_views = [payment_view(p) for p in changed_payments]
                if first:
                    first = False
                    snapshot = {
                        "submissions": submission_views,
                        "tasks": task_views,
                        "payments": payment_views,
                    }
                    yield _event("snapshot", snapshot)
                else:
                    for view in submission_views:
                        yield _event("submission", view)
                    for view in task_views:
                        yield _event("task", view)
                    for view in payment_views:
                        yield _event("payment", view)
                if self.node.stopping.is_set():
                    return  # the node shuts down: end the stream so the server can close
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.node.stopping.wait(), STREAM_POLL_S)
        finally:
            self.streams -= 1


def _render_views(
    submissions: list[dict[str, Any]], rows: list[Any], by_task: dict[str, list[Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The changed submissions and tasks as views, with their payments (run off the loop)."""
    return (
        [submission_view(x, by_task.get(x["id"], [])) for x in submissions],
        [task_view(x, by_task.get(x.task_id, [])) for x in rows],
    )


def _event(name: str, data: Any) -> dict[str, str]:
    return {"event": name, "data": json.dumps(data, ensure_ascii=True, separators=(",", ":"))}


def web_routes(node: Any) -> list[BaseRoute]:
    """The view's routes for one running node (``Node._rpc_app`` adds them)."""
    return WebView(node).routes()
