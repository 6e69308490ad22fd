"""Execute and node API (transport): JSON-RPC 2.0 over HTTP POST ``/`` with starlette. Parses,
authenticates, validates and dispatches single and batch requests; streaming methods answer with
Server-Sent Events (one JSON-RPC response per event). A2A v0.3 method names are translated to
their v1.0 methods and back. Every failure becomes a JSON-RPC error object (parse error, invalid
request, unknown method, invalid params, unauthorized, rate limited, too large, internal), never
an HTTP 500."""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import BaseModel, ValidationError
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response

from noosphere.errors import RequestError
from noosphere.protocol import ErrorCode, JsonRpcRequest, JsonRpcResponse, RpcError
from noosphere.protocol.a2a import A2A_VERSION_HEADER, V03_METHOD_ALIASES
from noosphere.protocol.a2a_v03 import (
    V03TranslationError,
    params_from_v03,
    result_to_v03,
    stream_event_to_v03,
)
from noosphere.protocol.base import describe_validation_error
from noosphere.protocol.wire_errors import json_rpc_error

from .auth import AuthError, RateLimited, RequestAuthenticator
from .http_server import client_key
from .metrics import NodeMetrics

log = structlog.get_logger("noosphere.rpc")

SUPPORTED_A2A_VERSIONS = ("0.3", "1.0")
#: Deeper JSON is refused before parsing: the decoder recurses, and a library may have raised
#: the interpreter's recursion limit (web3 sets 100,000), so RecursionError is no guard.
MAX_JSON_DEPTH = 64


def nests_deeper_than(body: bytes, limit: int) -> bool:
    """Whether the JSON text opens more than ``limit`` arrays/objects at once (strings are
    skipped). Bodies with few brackets are answered by a C-speed count alone."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth, in_string, escaped = 0, False, False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who is calling: ``local`` (operator token), a peer id (signed request) or None
    (anonymous); ``client`` is the caller's address as connection limits count it."""

    principal: str | None = None
    a2a_version: str | None = None
    client: str | None = None


Handler = Callable[[Any, CallContext], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Method:
    params: type[BaseModel]
    handler: Handler
    authenticated: bool = False  # refuse anonymous callers
    streaming: bool = False  # the handler returns an async iterator of events (SSE)


class JsonRpcDispatcher:
    """Method table plus the JSON-RPC 2.0 request/response rules."""

    def __init__(
        self,
        metrics: NodeMetrics,
        *,
        max_body_bytes: int,
        max_batch: int,
        authenticator: RequestAuthenticator | None = None,
        sse_ping_s: float = 15.0,
    ) -> None:
        self._methods: dict[str, Method] = {}
        self._metrics = metrics
        self._authenticator = authenticator
        self._sse_ping_s = sse_ping_s
        self.max_body_bytes = max_body_bytes
        self.max_batch = max_batch

    def register(
        self,
        name: str,
        params: type[BaseModel],
        handler: Handler,
        *,
        authenticated: bool = False,
        streaming: bool = False,
    ) -> None:
        self._methods[name] = Method(params, handler, authenticated, streaming)

    @property
    def method_names(self) -> list[str]:
        return sorted(self._methods)

    async def handle_http(self, request: Request) -> Response:
        body = await read_limited(request, self.max_body_bytes)
        if body is None:
            return _error_response(
                None,
                ErrorCode.REQUEST_TOO_LARGE,
                f"request body exceeds {self.max_body_bytes} bytes",
                413,
            )
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media and not (media.endswith("/json") or media.endswith("+json")):
            return _json(  # A2A 9.1: JSON-RPC requests are application/json
                _error(
                    None,
                    ErrorCode.CONTENT_TYPE_NOT_SUPPORTED,
                    f"JSON-RPC requests are application/json, not {media}",
                ).to_wire(),
                415,
            )
        try:
            ctx = self.context_for(request, body)
        except RequestError as exc:
            return self._refusal(exc)
        if nests_deeper_than(body, MAX_JSON_DEPTH):
            return _error_response(
                None,
                ErrorCode.PARSE_ERROR,
                f"Parse error: JSON nests deeper than {MAX_JSON_DEPTH} levels",
            )
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):  # bad JSON or UTF-8, huge ints
            return _error_response(
                None, ErrorCode.PARSE_ERROR, "Parse error: body is not valid JSON"
            )
        if isinstance(payload, dict) and self._is_streaming(payload.get("method")):
            return await self._handle_stream(payload, ctx)
        if isinstance(payload, list):
            if not payload:
                return _error_response(
                    None, ErrorCode.INVALID_REQUEST, "Invalid Request: empty batch"
                )
            if len(payload) > self.max_batch:
                return _error_response(
                    None,
                    ErrorCode.INVALID_REQUEST,
                    f"Invalid Request: batch over {self.max_batch} calls",
                )
            responses = [
                r for item in payload if (r := await self.handle_one(item, ctx)) is not None
            ]
            if not responses:
                return Response(status_code=204)
            return _json([r.to_wire() for r in responses])
        single = await self.handle_one(payload, ctx)
        if single is None:
            return Response(status_code=204)
        return _json(single.to_wire())

    def context_for(self, request: Request, body: bytes) -> CallContext:
        """Who calls (bearer token, peer signature, or nobody) with which A2A version, for
        both bindings; raises ``VersionNotSupported``, ``AuthError`` or ``RateLimited``."""
        version = request.headers.get(A2A_VERSION_HEADER)
        if version is not None and version.strip() not in SUPPORTED_A2A_VERSIONS:
            raise RpcError(
                ErrorCode.VERSION_NOT_SUPPORTED,
                f"A2A version {version.strip()!r} is not supported"
                f" (supported: {', '.join(SUPPORTED_A2A_VERSIONS)})",
            )
        try:
            principal = (
                self._authenticator.authenticate(
                    request.headers, request.method, request.url.path, body
                )
                if self._authenticator is not None
                else None
            )
        except AuthError as exc:
            self._metrics.rpc_auth_rejected.labels(reason="invalid").inc()
            raise AuthError(f"Unauthorized: {exc}") from exc
        except RateLimited:
            self._metrics.rpc_auth_rejected.labels(reason="rate_limited").inc()
            raise
        return CallContext(
            principal=principal,
            a2a_version=version,
            client=client_key(request.client.host if request.client else None),
        )

    def _refusal(self, error: RequestError) -> Response:
        """A request refused before dispatch, as a JSON-RPC error with its HTTP status."""
        wire = JsonRpcResponse(id=None, error=json_rpc_error(error)).to_wire()
        if isinstance(error, RateLimited):
            response = _json(wire, 429)
            response.headers["Retry-After"] = str(max(1, math.ceil(error.retry_after_s)))
            return response
        return _json(wire, 401 if isinstance(error, AuthError) else 200)

    def _is_streaming(self, name: Any) -> bool:
        if not isinstance(name, str):
            return False
        method = self._methods.get(V03_METHOD_ALIASES.get(name, name))
        return method is not None and method.streaming

    async def handle_one(
        self, item: Any, ctx: CallContext = CallContext()
    ) -> JsonRpcResponse | None:
        """One call; None for a valid notification."""
        request = _parse_request(item)
        if isinstance(request, JsonRpcResponse):
            return request
        started = time.perf_counter()
        outcome = "ok"
        try:
            if self._is_streaming(request.method):
                raise RpcError(
                    ErrorCode.INVALID_REQUEST,
                    f"Invalid Request: {request.method} streams; send it alone, not in a batch",
                )
            result = await self._call(request, ctx)
        except RequestError as exc:
            outcome = "error"
            response = JsonRpcResponse(id=request.id, error=json_rpc_error(exc))
        except Exception:
            outcome = "internal_error"
            log.exception("rpc handler failed", method=request.method)
            response = _error(request.id, ErrorCode.INTERNAL_ERROR, "Internal error")
        else:
            response = JsonRpcResponse(id=request.id, result=result)
        method_label = request.method if request.method in self._methods else "(unknown)"
        self._metrics.rpc_requests.labels(method=method_label, outcome=outcome).inc()
        self._metrics.rpc_latency.labels(method=method_label).observe(time.perf_counter() - started)
        return None if request.is_notification else response

    async def _handle_stream(self, item: dict[str, Any], ctx: CallContext) -> Response:
        """A streaming call: errors before the first event are a plain JSON-RPC response."""
        request = _parse_request(item)
        if isinstance(request, JsonRpcResponse):
            return _json(request.to_wire())
        try:
            events = await self._call(request, ctx)
        except RequestError as exc:
            self._metrics.rpc_requests.labels(method=request.method, outcome="error").inc()
            return _json(JsonRpcResponse(id=request.id, error=json_rpc_error(exc)).to_wire())
        self._metrics.rpc_requests.labels(method=request.method, outcome="ok").inc()
        v03 = request.method in V03_METHOD_ALIASES

        async def frames() -> AsyncIterator[dict[str, str]]:
            try:
                async for event in events:
                    wire = event.to_wire()
                    result = stream_event_to_v03(wire) if v03 else wire
                    response = JsonRpcResponse(id=request.id, result=result)
                    yield {"data": json.dumps(response.to_wire(), ensure_ascii=True)}
            except RequestError as exc:
                response = JsonRpcResponse(id=request.id, error=json_rpc_error(exc))
                yield {"data": json.dumps(response.to_wire(), ensure_ascii=True)}
            except Exception:
                log.exception("stream failed", method=request.method)
                response = _error(request.id, ErrorCode.INTERNAL_ERROR, "Internal error")
                yield {"data": json.dumps(response.to_wire(), ensure_ascii=True)}

        return EventSourceResponse(frames(), ping=self._sse_ping_s)

    async def _call(self, request: JsonRpcRequest, ctx: CallContext) -> Any:
        name = V03_METHOD_ALIASES.get(request.method, request.method)
        v03 = name != request.method
        method = self._method_for(name, request.method, ctx)
        params = request.params
        if v03:
            if not isinstance(params, dict | None):
                raise RpcError(ErrorCode.INVALID_PARAMS, "Invalid params: expected an object")
            try:
                params = params_from_v03(name, params or {})
            except V03TranslationError as exc:
                raise RpcError(ErrorCode.INVALID_PARAMS, f"Invalid params: {exc}") from exc
        if isinstance(params, list):
            names = list(method.params.model_fields)
            if len(params) > len(names):
                raise RpcError(
                    ErrorCode.INVALID_PARAMS, "Invalid params: too many positional params"
                )
            params = dict(zip(names, params, strict=False))
        wire = await self._run(method, params, ctx)
        return result_to_v03(name, wire) if v03 and not method.streaming else wire

    async def invoke(self, name: str, params: dict[str, Any], ctx: CallContext) -> Any:
        """Call method ``name`` as another binding (HTTP+JSON) does: the same checks and
        validation as a JSON-RPC call; a JSON-ready result, or the events of a stream."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await self._run(self._method_for(name, name, ctx), params, ctx)
        except RequestError:
            outcome = "error"
            raise
        finally:
            self._metrics.rpc_requests.labels(method=name, outcome=outcome).inc()
            self._metrics.rpc_latency.labels(method=name).observe(time.perf_counter() - started)

    def _method_for(self, name: str, called: str, ctx: CallContext) -> Method:
        method = self._methods.get(name)
        if method is None:
            raise RpcError(ErrorCode.METHOD_NOT_FOUND, f"Method not found: {called}")
        if method.authenticated and ctx.principal is None:
            self._metrics.rpc_auth_rejected.labels(reason="missing").inc()
            raise RpcError(
                ErrorCode.UNAUTHORIZED,
                f"Unauthorized: {called} needs the node's bearer token or a signed peer request",
            )
        return method

    async def _run(self, method: Method, params: Any, ctx: CallContext) -> Any:
        try:
            parsed = method.params.model_validate(params or {})
        except ValidationError as exc:
            raise RpcError(
                ErrorCode.INVALID_PARAMS, f"Invalid params: {describe_validation_error(exc)}"
            ) from exc
        result = await method.handler(parsed, ctx)
        return result if method.streaming else _to_json_ready(result)


def _to_json_ready(result: Any) -> Any:
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(result, list):
        return [_to_json_ready(r) for r in result]
    return result


def _parse_request(item: Any) -> JsonRpcRequest | JsonRpcResponse:
    """The request, or the Invalid Request error response for it."""
    try:
        return JsonRpcRequest.model_validate(item)
    except ValidationError:
        raw_id = item.get("id") if isinstance(item, dict) else None
        safe_id = raw_id if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
        return _error(safe_id, ErrorCode.INVALID_REQUEST, "Invalid Request")


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it is larger than ``limit`` (checked while streaming)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _error(request_id: Any, code: int, message: str) -> JsonRpcResponse:
    return JsonRpcResponse(id=request_id, error=json_rpc_error(RpcError(code, message)))


def _json(content: Any, status: int = 200) -> Response:
    """JSON with non-ASCII escaped, so any text a client sent (even a lone surrogate) serializes."""
    body = json.dumps(content, ensure_ascii=True, separators=(",", ":"))
    return Response(body, status_code=status, media_type="application/json")


def _error_response(request_id: Any, code: int, message: str, status: int = 200) -> Response:
    return _json(_error(request_id, code, message).to_wire(), status)
