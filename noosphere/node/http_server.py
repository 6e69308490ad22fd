"""Execute and node API (transport security): the protections of the node's HTTP server against
clients that hold connections instead of using them (slowloris, slow bodies, slow readers).

* ``ConnectionGuard`` counts open connections per client (an IPv4 address or an IPv6 /64) and in
  all. At either cap, a new connection first makes room by closing the oldest *idle* one (waiting
  for or still receiving a request, or kept alive between requests) of that client, or of all;
  only if every connection is busy with a request is the new one refused. A request's headers
  must arrive within ``header_timeout_s`` and its body within ``body_timeout_s`` (deadlines, not
  idle timers: dripping a byte now and then does not extend them), a head is at most 32 KiB, and
  a client that stops reading its response for ``write_timeout_s`` is cut off.
* ``guarded_protocol`` wraps uvicorn's own HTTP protocol classes (httptools when installed, h11
  otherwise) with those rules; no HTTP parsing is done here.
* ``InFlightLimit`` (ASGI middleware) reads each request's whole body (bounded) before the
  request counts as in flight, and answers a JSON-RPC error with 503 beyond ``max_in_flight``
  requests. Idle and slow connections therefore never use up the limit, unlike uvicorn's
  ``limit_concurrency``, which counts connections.
* ``ensure_open_files`` raises the process's soft limit on open files to fit the caps.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import resource
from collections import Counter
from typing import Any

import h11
import structlog
from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge
from uvicorn.protocols.http.h11_impl import H11Protocol

from noosphere.protocol import ErrorCode, JsonRpcResponse, RpcError
from noosphere.protocol.wire_errors import json_rpc_error

from .metrics import NodeMetrics

try:  # uvicorn's faster parser, a pinned dependency; h11 is the fallback
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover
    HttpToolsProtocol = None  # type: ignore[assignment,misc]  # no class: the h11 fallback only

log = structlog.get_logger("noosphere.http")

FD_RESERVE = 512  # descriptors kept for libp2p, SQLite, logs and outgoing connections
MAX_HEAD_BYTES = 32 * 1024  # request line and headers (with the httptools parser)


def client_key(host: str | None) -> str:
    """Whom a connection counts against: the IPv4 address, or the IPv6 /64 (one subscriber's
    usual allocation), with IPv4-mapped IPv6 counted as its IPv4 address."""
    if not host:
        return "local"
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class ConnectionGuard:
    """Connection caps and deadlines shared by every connection of one server."""

    def __init__(
        self,
        *,
        max_connections: int,
        max_per_client: int,
        header_timeout_s: float,
        body_timeout_s: float,
        write_timeout_s: float,
        metrics: NodeMetrics | None = None,
    ) -> None:
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s
        self.write_timeout_s = write_timeout_s
        self._open: dict[_GuardedConnection, str] = {}  # connection -> client key
        self._idle: dict[_GuardedConnection, None] = {}  # oldest idle first
        self._idle_by_client: dict[str, dict[_GuardedConnection, None]] = {}
        self._per_client: Counter[str] = Counter()
        registry = metrics.registry if metrics is not None else None
        self.refused = PromCounter(
            "noosphere_http_connections_refused_total",
            "HTTP connections refused at accept, by cap (every connection was busy)",
            ["cap"],
            registry=registry,
        )
        self.closed = PromCounter(
            "noosphere_http_connections_closed_total",
            "HTTP connections the server closed, by reason",
            ["reason"],
            registry=registry,
        )
        self.open_gauge = Gauge(
            "noosphere_http_connections_open", "Open HTTP connections", registry=registry
        )
        self.open_gauge.set_function(lambda: len(self._open))

    def __len__(self) -> int:
        return len(self._open)

    def connections_of(self, client: str) -> int:
        return self._per_client[client]

    def admit(self, connection: _GuardedConnection, client: str) -> bool:
        """Register a new connection, closing the oldest idle one at a cap; False: refuse."""
        if self._per_client[client] >= self.max_per_client and not self._evict_oldest(
            self._idle_by_client.get(client)
        ):
            self.refused.labels(cap="per_client").inc()
            return False
        if len(self._open) >= self.max_connections and not self._evict_oldest(self._idle):
            self.refused.labels(cap="total").inc()
            return False
        self._open[connection] = client
        self._per_client[client] += 1
        self.mark_idle(connection)
        return True

    def mark_idle(self, connection: _GuardedConnection) -> None:
        """``connection`` waits for (or receives) a request: evictable, newest last."""
        client = self._open.get(connection)
        if client is None:
            return
        self.mark_busy(connection)  # re-inserted below: the idle order is "idle since"
        self._idle[connection] = None
        self._idle_by_client.setdefault(client, {})[connection] = None

    def mark_busy(self, connection: _GuardedConnection) -> None:
        client = self._open.get(connection)
        if client is None:
            return
        self._idle.pop(connection, None)
        by_client = self._idle_by_client.get(client)
        if by_client is not None:
            by_client.pop(connection, None)
            if not by_client:
                del self._idle_by_client[client]

    def release(self, connection: _GuardedConnection) -> None:
        self.mark_busy(connection)
        client = self._open.pop(connection, None)
        if client is not None:
            self._per_client[client] -= 1
            if not self._per_client[client]:
                del self._per_client[client]

    def _evict_oldest(self, idle: dict[_GuardedConnection, None] | None) -> bool:
        if not idle:
            return False
        victim = next(iter(idle))
        self.release(victim)
        victim.close_now("evicted")
        return True


class _GuardedConnection:
    """The rules of ``ConnectionGuard`` for one connection, mixed into a uvicorn protocol. The
    subclasses call ``_headers_done``, ``_message_done`` and ``_response_done`` as the request
    advances; timers are deadlines from the moment a phase starts."""

    guard: ConnectionGuard
    transport: asyncio.Transport
    client: tuple[str, int] | None
    loop: asyncio.AbstractEventLoop

    _timer: asyncio.TimerHandle | None = None
    _write_timer: asyncio.TimerHandle | None = None
    _requests_open = 0
    _admitted = False

    def _admit(self) -> bool:
        client = client_key(self.client[0] if self.client else None)
        self._admitted = self.guard.admit(self, client)
        if not self._admitted:
            self.transport.abort()
            return False
        self._deadline(self.guard.header_timeout_s, "header_timeout")
        return True

    def _deadline(self, seconds: float | None, reason: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = (
            None if seconds is None else self.loop.call_later(seconds, self.close_now, reason)
        )

    def _headers_done(self) -> None:
        if self._admitted:
            self._deadline(self.guard.body_timeout_s, "body_timeout")

    def _message_done(self) -> None:
        if self._admitted:
            self._deadline(None, "")
            self._requests_open += 1
            self.guard.mark_busy(self)

    def _response_done(self) -> None:
        if not self._admitted:
            return
        self._requests_open = max(0, self._requests_open - 1)
        if not self._requests_open:
            self.guard.mark_idle(self)
            self._deadline(self.guard.header_timeout_s, "header_timeout")

    def _writing_paused(self) -> None:
        if self._admitted and self._write_timer is None:
            self._write_timer = self.loop.call_later(
                self.guard.write_timeout_s, self.close_now, "write_timeout"
            )

    def _writing_resumed(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def close_now(self, reason: str) -> None:
        """Drop the connection at once (RST: no lingering socket); a running request sees a
        disconnect."""
        self.guard.closed.labels(reason=reason).inc()
        self.transport.abort()

    def _forget(self) -> None:
        self._deadline(None, "")
        self._writing_resumed()
        self.guard.release(self)


class GuardedH11Protocol(_GuardedConnection, H11Protocol):
    """uvicorn's h11 protocol under a ``ConnectionGuard`` (request progress read from h11's
    view of the client's state after each read)."""

    # uvicorn's protocols narrow BaseProtocol's BaseTransport to the asyncio.Transport

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._admit()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        super().connection_lost(exc)

    _phase = "head"  # head -> body -> busy (request complete) -> head

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_client()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start the next cycle and read a pipelined request
        self._phase = "head"
        self._response_done()
        self._follow_client()

    def _follow_client(self) -> None:
        state = self.conn.their_state
        if self._phase == "head" and state in (h11.SEND_BODY, h11.DONE, h11.MUST_CLOSE):
            self._phase = "body"
            self._headers_done()
        if self._phase == "body" and state in (h11.DONE, h11.MUST_CLOSE):
            self._phase = "busy"
            self._message_done()

    def pause_writing(self) -> None:
        super().pause_writing()
        self._writing_paused()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._writing_resumed()


if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(_GuardedConnection, HttpToolsProtocol):
        """uvicorn's httptools protocol under a ``ConnectionGuard`` (parser callbacks)."""

        # uvicorn's protocols narrow BaseProtocol's BaseTransport to the asyncio.Transport

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._admit()

        def connection_lost(self, exc: Exception | None) -> None:
            self._forget()
            super().connection_lost(exc)

        # llhttp sets no limit on a request's head (h11's is 16 KiB): count it here
        _in_head = True
        _head_bytes = 0

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._in_head and self._admitted:  # the head is still not complete
                self._head_bytes += len(data)
                if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
                    self.close_now("header_too_large")

        def on_message_begin(self) -> None:
            self._in_head, self._head_bytes = True, 0
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._headers_done()
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._message_done()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._response_done()

        def pause_writing(self) -> None:
            super().pause_writing()
            self._writing_paused()

        def resume_writing(self) -> None:
            super().resume_writing()
            self._writing_resumed()


def guarded_protocol(guard: ConnectionGuard, parser: str = "auto") -> type[asyncio.Protocol]:
    """A uvicorn ``Config(http=...)`` protocol class bound to ``guard``: ``parser`` is "h11",
    "httptools" or "auto" (httptools when installed)."""
    if parser == "httptools" or (parser == "auto" and HttpToolsProtocol is not None):
        if HttpToolsProtocol is None:  # pragma: no cover
            raise ValueError("httptools is not installed")
        base: type[Any] = GuardedHttpToolsProtocol
    elif parser in ("h11", "auto"):
        base = GuardedH11Protocol
    else:
        raise ValueError(f"unknown HTTP parser {parser!r}")
    return type(base.__name__, (base,), {"guard": guard})


# ---- requests in flight ------------------------------------------------------------------------


def _jsonrpc_error(code: int, message: str) -> bytes:
    body = JsonRpcResponse(id=None, error=json_rpc_error(RpcError(code, message))).to_wire()
    return json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode()


class InFlightLimit:
    """ASGI middleware: a request counts as in flight once its whole body has arrived (at most
    ``max_body_bytes``); beyond ``max_in_flight`` it is answered 503 with a JSON-RPC error."""

    def __init__(
        self,
        app: Any,
        *,
        max_in_flight: int,
        max_body_bytes: int,
        metrics: NodeMetrics | None = None,
    ) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.max_body_bytes = max_body_bytes
        self.in_flight = 0
        registry = metrics.registry if metrics is not None else None
        self.shed = PromCounter(
            "noosphere_http_requests_shed_total",
            "Requests answered 503 because the in-flight limit was reached",
            registry=registry,
        )
        Gauge(
            "noosphere_http_requests_in_flight", "Requests being handled", registry=registry
        ).set_function(lambda: self.in_flight)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":  # gone, or closed for a slow body
                return
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                await self._too_large(send)
                return
            if not message.get("more_body", False):
                break
        if self.in_flight >= self.max_in_flight:
            self.shed.inc()
            await _answer(
                send,
                503,
                _jsonrpc_error(
                    ErrorCode.RATE_LIMITED,
                    f"server busy: {self.in_flight} requests in flight; retry shortly",
                ),
                [(b"retry-after", b"1")],
            )
            return
        self.in_flight += 1
        try:
            await self.app(scope, _replay(bytes(body), receive), send)
        finally:
            self.in_flight -= 1

    async def _too_large(self, send: Any) -> None:
        message = f"request body exceeds {self.max_body_bytes} bytes"
        body = _jsonrpc_error(ErrorCode.REQUEST_TOO_LARGE, message)
        await _answer(send, 413, body, [(b"connection", b"close")])


def _replay(body: bytes, receive: Any) -> Any:
    """A ``receive`` that hands the app the buffered body, then waits for the disconnect."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# ---- file descriptors --------------------------------------------------------------------------


def ensure_open_files(max_connections: int) -> int:
    """Raise the soft limit on open files (up to the hard limit) to fit ``max_connections`` plus
    a reserve; returns the connection cap the limit allows (``max_connections`` or less)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new_soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
            soft = new_soft
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open files limit", wanted=wanted, error=str(exc))
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return max_connections
    allowed = max(16, soft - FD_RESERVE)
    log.warning(
        "open files limit is low: fewer HTTP connections allowed",
        limit=soft,
        rpc_max_connections=allowed,
    )
    return allowed
