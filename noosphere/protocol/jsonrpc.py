"""Wire formats (Execute and the node API): JSON-RPC 2.0 envelopes and the error codes noosphere
uses: the JSON-RPC 2.0 set, the A2A error table, and the network's own ``noosphere.`` errors."""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr

from noosphere.errors import RequestError


class ErrorCode(IntEnum):
    # JSON-RPC 2.0
    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    # A2A
    TASK_NOT_FOUND = -32001
    TASK_NOT_CANCELABLE = -32002
    PUSH_NOTIFICATION_NOT_SUPPORTED = -32003
    UNSUPPORTED_OPERATION = -32004
    CONTENT_TYPE_NOT_SUPPORTED = -32005
    INVALID_AGENT_RESPONSE = -32006
    EXTENDED_AGENT_CARD_NOT_CONFIGURED = -32007
    EXTENSION_SUPPORT_REQUIRED = -32008
    VERSION_NOT_SUPPORTED = -32009
    # noosphere
    CARD_NOT_FOUND = -32040
    REQUEST_TOO_LARGE = -32041
    UNAUTHORIZED = -32042
    PAYMENT_REQUIRED = -32043
    RATE_LIMITED = -32044  # over a quota (signed requests per peer, requests in flight)


RequestId = StrictStr | StrictInt | None


class JsonRpcRequest(BaseModel):
    """A request or notification. ``id`` absent means notification (no response is sent)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jsonrpc: Literal["2.0"]
    method: StrictStr
    params: dict[str, Any] | list[Any] | None = None
    id: RequestId = None

    @property
    def is_notification(self) -> bool:
        return "id" not in self.model_fields_set


class JsonRpcError(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: int
    message: str
    data: Any | None = None


class JsonRpcResponse(BaseModel):
    model_config = ConfigDict(frozen=True)

    jsonrpc: Literal["2.0"] = "2.0"
    id: RequestId = None
    result: Any | None = None
    error: JsonRpcError | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"jsonrpc": "2.0", "id": self.id}
        if self.error is not None:
            wire["error"] = self.error.model_dump(exclude_none=True)
        else:
            wire["result"] = self.result
        return wire


class RpcError(RequestError):
    """A JSON-RPC error by its code: what the dispatcher answers for a bad envelope (parse
    error, invalid request, unknown method), and a remote node's error as a client received it.
    Domain code raises the domain errors of ``noosphere.errors`` instead."""

    def __init__(self, code: int, message: str, data: Any | None = None) -> None:
        super().__init__(message, data=data)
        self.code = code

    def to_error(self) -> JsonRpcError:
        """The error as received or given (no ErrorInfo added: see ``wire_errors``)."""
        return JsonRpcError(code=self.code, message=self.message, data=self.data)
