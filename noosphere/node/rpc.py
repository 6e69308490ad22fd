"""Execute and node API (transport): JSON-RPC 2.0 over HTTP POST ``/`` with starlette. Parses,
validates and dispatches single and batch requests; every failure becomes a JSON-RPC error
object (parse error, invalid request, unknown method, invalid params, too large, internal), never
an HTTP 500 or a traceback."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from noosphere.protocol import ErrorCode, JsonRpcRequest, JsonRpcResponse, RpcError
from noosphere.protocol.base import describe_validation_error

from .metrics import NodeMetrics

log = structlog.get_logger("noosphere.rpc")

Handler = Callable[[Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Method:
    params: type[BaseModel]
    handler: Handler


class JsonRpcDispatcher:
    """Method table plus the JSON-RPC 2.0 request/response rules."""

    def __init__(self, metrics: NodeMetrics, *, max_body_bytes: int, max_batch: int) -> None:
        self._methods: dict[str, Method] = {}
        self._metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.max_batch = max_batch

    def register(self, name: str, params: type[BaseModel], handler: Handler) -> None:
        self._methods[name] = Method(params, handler)

    @property
    def method_names(self) -> list[str]:
        return sorted(self._methods)

    async def handle_http(self, request: Request) -> Response:
        body = await _read_limited(request, self.max_body_bytes)
        if body is None:
            return _error_response(
                None,
                ErrorCode.REQUEST_TOO_LARGE,
                f"request body exceeds {self.max_body_bytes} bytes",
                413,
            )
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):  # bad JSON or UTF-8, huge ints, deep nesting
            return _error_response(
                None, ErrorCode.PARSE_ERROR, "Parse error: body is not valid JSON"
            )
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
            responses = [r for item in payload if (r := await self.handle_one(item)) is not None]
            if not responses:
                return Response(status_code=204)
            return _json([r.to_wire() for r in responses])
        response = await self.handle_one(payload)
        if response is None:
            return Response(status_code=204)
        return _json(response.to_wire())

    async def handle_one(self, item: Any) -> JsonRpcResponse | None:
        """One call; None for a valid notification."""
        try:
            request = JsonRpcRequest.model_validate(item)
        except ValidationError:
            raw_id = item.get("id") if isinstance(item, dict) else None
            safe_id = (
                raw_id if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
            )
            return _error(safe_id, ErrorCode.INVALID_REQUEST, "Invalid Request")
        started = time.perf_counter()
        outcome = "ok"
        try:
            result = await self._call(request)
        except RpcError as exc:
            outcome = "error"
            response = JsonRpcResponse(id=request.id, error=exc.to_error())
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

    async def _call(self, request: JsonRpcRequest) -> Any:
        method = self._methods.get(request.method)
        if method is None:
            raise RpcError(ErrorCode.METHOD_NOT_FOUND, f"Method not found: {request.method}")
        params = request.params
        if isinstance(params, list):
            names = list(method.params.model_fields)
            if len(params) > len(names):
                raise RpcError(
                    ErrorCode.INVALID_PARAMS, "Invalid params: too many positional params"
                )
            params = dict(zip(names, params, strict=False))
        try:
            parsed = method.params.model_validate(params or {})
        except ValidationError as exc:
            raise RpcError(
                ErrorCode.INVALID_PARAMS, f"Invalid params: {describe_validation_error(exc)}"
            ) from exc
        result = await method.handler(parsed)
        if isinstance(result, BaseModel):
            return result.model_dump(mode="json", by_alias=True, exclude_none=True)
        if isinstance(result, list):
            return [
                r.model_dump(mode="json", by_alias=True, exclude_none=True)
                if isinstance(r, BaseModel)
                else r
                for r in result
            ]
        return result


async def _read_limited(request: Request, limit: int) -> bytes | None:
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
    return JsonRpcResponse(id=request_id, error=RpcError(code, message).to_error())


def _json(content: Any, status: int = 200) -> Response:
    """JSON with non-ASCII escaped, so any text a client sent (even a lone surrogate) serializes."""
    body = json.dumps(content, ensure_ascii=True, separators=(",", ":"))
    return Response(body, status_code=status, media_type="application/json")


def _error_response(request_id: Any, code: int, message: str, status: int = 200) -> Response:
    return _json(_error(request_id, code, message).to_wire(), status)
