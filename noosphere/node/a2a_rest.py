"""Execute (A2A HTTP+JSON binding): the A2A v1.0 REST binding beside JSON-RPC.

``POST /message:send``, ``POST /message:stream`` (SSE), ``GET /tasks``, ``GET /tasks/{id}``,
``POST /tasks/{id}:cancel``, ``POST|GET /tasks/{id}:subscribe`` (SSE), the push-notification
configs under ``/tasks/{id}/pushNotificationConfigs`` and ``GET /extendedAgentCard``, each also
under a ``/{tenant}`` prefix (the agent id; the card's interfaces carry it). A request becomes
the same method call as its JSON-RPC twin (``JsonRpcDispatcher.invoke``): the same credentials,
version check, validation, task manager, rate limits and metrics. Request bodies are JSON
(``application/json`` or ``application/a2a+json``; another type is 415), GET parameters are
camelCase query parameters. Errors are AIP-193 objects with the HTTP status of A2A section 5.4
(``wire_errors.http_error``); a stream that fails after its first event ends with an SSE event
named ``error`` carrying that object.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from noosphere.errors import ContentTypeNotSupported, InvalidParams, RateLimited, RequestError
from noosphere.protocol import ErrorCode, RpcError
from noosphere.protocol.a2a import StreamResponse, TaskState
from noosphere.protocol.wire_errors import http_error

from .rpc import MAX_JSON_DEPTH, JsonRpcDispatcher, nests_deeper_than, read_limited

log = structlog.get_logger("noosphere.rest")

JSON_TYPES = frozenset({"application/json", "application/a2a+json"})
#: Query parameters that are not strings (A2A 11.5: numbers in decimal, booleans lowercase).
_INT_QUERY = frozenset({"pageSize", "historyLength"})
_BOOL_QUERY = frozenset({"includeArtifacts"})
_TASK_VERBS = ("cancel", "subscribe")

#: Builds a method's params from the request: (request, JSON body or None) -> params.
ParamsBuilder = Callable[[Request, dict[str, Any] | None], dict[str, Any]]


def _json_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    body = json.dumps(content, ensure_ascii=True, separators=(",", ":"))
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def error_response(error: RequestError) -> Response:
    """The AIP-193 error response of ``error`` (with Retry-After when rate limited)."""
    status, body = http_error(error)
    headers = None
    if isinstance(error, RateLimited):
        headers = {"Retry-After": str(max(1, round(error.retry_after_s + 0.5)))}
    return _json_response(body, status, headers)


def _query(request: Request) -> dict[str, Any]:
    """Camel-case query parameters, typed (the last of repeated ones wins)."""
    params: dict[str, Any] = {}
    for name, value in request.query_params.items():
        if name in _INT_QUERY:
            try:
                params[name] = int(value)
            except ValueError:
                raise InvalidParams(f"Invalid params: {name} must be an integer") from None
        elif name in _BOOL_QUERY:
            if value not in ("true", "false"):
                raise InvalidParams(f"Invalid params: {name} must be true or false")
            params[name] = value == "true"
        elif name == "status":
            params[name] = _task_state(value)
        else:
            params[name] = value
    return params


def _task_state(value: str) -> str:
    """``TASK_STATE_WORKING`` or its short forms (``working``, ``input-required``)."""
    if value.startswith("TASK_STATE_"):
        return value
    name = "TASK_STATE_" + value.upper().replace("-", "_")
    return name if name in TaskState.__members__.values() else value


def _split_verb(ref: str) -> tuple[str, str | None]:
    """``abc:cancel`` -> (``abc``, ``cancel``); a task id without a verb -> (id, None)."""
    task_id, sep, verb = ref.rpartition(":")
    if sep and verb in _TASK_VERBS and task_id:
        return task_id, verb
    return ref, None


def _with_tenant(request: Request, params: dict[str, Any]) -> dict[str, Any]:
    tenant = request.path_params.get("tenant")
    return {**params, "tenant": tenant} if tenant else params


class RestBinding:
    """The HTTP+JSON routes over one dispatcher's A2A methods."""

    def __init__(
        self, dispatcher: JsonRpcDispatcher, *, max_body_bytes: int, sse_ping_s: float = 15.0
    ) -> None:
        self._dispatcher = dispatcher
        self._max_body_bytes = max_body_bytes
        self._sse_ping_s = sse_ping_s

    def routes(self) -> list[Route]:
        """The routes, first without and then with the ``/{tenant}`` prefix."""
        table: list[tuple[str, Any, list[str]]] = [
            ("/message:send", self._send, ["POST"]),
            ("/message:stream", self._stream, ["POST"]),
            ("/tasks", self._list_tasks, ["GET"]),
            ("/tasks/{ref}", self._task, ["GET", "POST"]),
            ("/tasks/{task_id}/pushNotificationConfigs", self._push_configs, ["GET", "POST"]),
            (
                "/tasks/{task_id}/pushNotificationConfigs/{config_id}",
                self._push_config,
                ["GET", "DELETE"],
            ),
            ("/extendedAgentCard", self._extended_card, ["GET"]),
        ]
        plain = [Route(path, endpoint, methods=methods) for path, endpoint, methods in table]
        tenant = [
            Route("/{tenant}" + path, endpoint, methods=methods)
            for path, endpoint, methods in table
        ]
        return plain + tenant

    # ---- endpoints -------------------------------------------------------------------------

    async def _send(self, request: Request) -> Response:
        return await self._serve(
            request, "SendMessage", lambda r, body: _with_tenant(r, body or {})
        )

    async def _stream(self, request: Request) -> Response:
        return await self._serve(
            request, "SendStreamingMessage", lambda r, body: _with_tenant(r, body or {})
        )

    async def _list_tasks(self, request: Request) -> Response:
        return await self._serve(request, "ListTasks", lambda r, _: _with_tenant(r, _query(r)))

    async def _task(self, request: Request) -> Response:
        task_id, verb = _split_verb(request.path_params["ref"])
        if verb is None and request.method == "GET":
            return await self._serve(
                request, "GetTask", lambda r, _: _with_tenant(r, {**_query(r), "id": task_id})
            )
        if verb == "cancel" and request.method == "POST":
            return await self._serve(
                request,
                "CancelTask",
                lambda r, body: _with_tenant(r, {**(body or {}), "id": task_id}),
            )
        if verb == "subscribe":  # POST in the spec's text (11.3.2), GET in its proto
            return await self._serve(
                request, "SubscribeToTask", lambda r, _: _with_tenant(r, {"id": task_id})
            )
        return error_response(
            RpcError(
                ErrorCode.METHOD_NOT_FOUND,
                f"no such operation: {request.method} {request.url.path}",
            )
        )

    async def _push_configs(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]
        if request.method == "POST":
            return await self._serve(
                request,
                "CreateTaskPushNotificationConfig",
                lambda r, body: _with_tenant(r, {**(body or {}), "taskId": task_id}),
            )
        return await self._serve(
            request,
            "ListTaskPushNotificationConfigs",
            lambda r, _: _with_tenant(r, {**_query(r), "taskId": task_id}),
        )

    async def _push_config(self, request: Request) -> Response:
        ref = {"taskId": request.path_params["task_id"], "id": request.path_params["config_id"]}
        name = (
            "DeleteTaskPushNotificationConfig"
            if request.method == "DELETE"
            else "GetTaskPushNotificationConfig"
        )
        return await self._serve(request, name, lambda r, _: _with_tenant(r, ref))

    async def _extended_card(self, request: Request) -> Response:
        return await self._serve(request, "GetExtendedAgentCard", lambda r, _: _with_tenant(r, {}))

    # ---- one call --------------------------------------------------------------------------

    async def _serve(self, request: Request, method: str, build: ParamsBuilder) -> Response:
        raw = await read_limited(request, self._max_body_bytes)
        if raw is None:
            return error_response(
                RpcError(
                    ErrorCode.REQUEST_TOO_LARGE,
                    f"request body exceeds {self._max_body_bytes} bytes",
                )
            )
        try:
            ctx = self._dispatcher.context_for(request, raw)
            params = build(request, self._body(request, raw))
            result = await self._dispatcher.invoke(method, params, ctx)
        except RequestError as exc:
            return error_response(exc)
        except Exception:
            log.exception("rest handler failed", method=method)
            return error_response(RpcError(ErrorCode.INTERNAL_ERROR, "Internal error"))
        if isinstance(result, AsyncIterator):
            return EventSourceResponse(_frames(result, method), ping=self._sse_ping_s)
        return _json_response(result if result is not None else {})

    @staticmethod
    def _body(request: Request, raw: bytes) -> dict[str, Any] | None:
        """The JSON object a POST carries (None when empty); 415 for another content type."""
        if not raw.strip():
            return None
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media not in JSON_TYPES:
            raise ContentTypeNotSupported(
                f"request bodies are application/json, not {media or 'untyped'}"
            )
        if nests_deeper_than(raw, MAX_JSON_DEPTH):
            raise RpcError(
                ErrorCode.PARSE_ERROR,
                f"Parse error: JSON nests deeper than {MAX_JSON_DEPTH} levels",
            )
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            raise RpcError(ErrorCode.PARSE_ERROR, "Parse error: body is not valid JSON") from None
        if not isinstance(body, dict):
            raise InvalidParams("Invalid params: the body must be a JSON object")
        return body


async def _frames(
    events: AsyncIterator[StreamResponse], method: str
) -> AsyncIterator[dict[str, str]]:
    """SSE frames: one StreamResponse per event; a failure ends the stream with an error event."""
    try:
        async for event in events:
            yield {"data": json.dumps(event.to_wire(), ensure_ascii=True)}
    except RequestError as exc:
        yield {"event": "error", "data": json.dumps(http_error(exc)[1], ensure_ascii=True)}
    except Exception:
        log.exception("stream failed", method=method)
        failure = RpcError(ErrorCode.INTERNAL_ERROR, "Internal error")
        yield {"event": "error", "data": json.dumps(http_error(failure)[1], ensure_ascii=True)}
