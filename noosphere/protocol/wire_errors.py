"""Wire formats (errors): the one place a ``RequestError`` becomes what a caller reads.

One table row per kind of error: the JSON-RPC code, the HTTP status and ``google.rpc.Code`` name
of the HTTP+JSON binding (A2A v1.0 section 5.4), and the A2A ``google.rpc.ErrorInfo`` reason and
domain. The JSON-RPC error's data is the error's own data when it has some (the payment terms of
``PaymentRequired``, a remote node's data as received), else ``[ErrorInfo]`` as A2A v1.0 asks
(its metadata from the error, e.g. ``retryAfterSeconds``). The HTTP+JSON binding answers the
AIP-193 ``{"error": {code, status, message, details}}`` whose details always start with the
ErrorInfo (own data follows it, a JSON object wrapped as a ``google.protobuf.Struct``). A
``RpcError`` (an explicit code) finds its row by code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from noosphere.errors import (
    CardNotFound,
    ContentTypeNotSupported,
    ExtendedCardNotConfigured,
    InvalidParams,
    NoosphereError,
    PaymentRequired,
    RateLimited,
    RequestError,
    ServerError,
    TaskNotCancelable,
    TaskNotFound,
    Unauthorized,
    UnsupportedOperation,
)

from .jsonrpc import ErrorCode, JsonRpcError, RpcError

ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
A2A_DOMAIN = "a2a-protocol.org"
NOOSPHERE_DOMAIN = "noosphere"


@dataclass(frozen=True)
class WireError:
    """How one kind of error looks on the wire; the ErrorInfo reason is the code's name."""

    code: ErrorCode
    http_status: int
    status: str  # google.rpc.Code name (the HTTP+JSON binding's error.status)
    domain: str = A2A_DOMAIN

    @property
    def reason(self) -> str:
        return self.code.name


_ROWS = (
    # JSON-RPC 2.0 and A2A: HTTP status and google.rpc.Code as A2A v1.0 section 5.4 maps them
    WireError(ErrorCode.PARSE_ERROR, 400, "INVALID_ARGUMENT"),
    WireError(ErrorCode.INVALID_REQUEST, 400, "INVALID_ARGUMENT"),
    WireError(ErrorCode.METHOD_NOT_FOUND, 404, "NOT_FOUND"),
    WireError(ErrorCode.INVALID_PARAMS, 400, "INVALID_ARGUMENT"),
    WireError(ErrorCode.INTERNAL_ERROR, 500, "INTERNAL"),
    WireError(ErrorCode.TASK_NOT_FOUND, 404, "NOT_FOUND"),
    WireError(ErrorCode.TASK_NOT_CANCELABLE, 409, "FAILED_PRECONDITION"),
    WireError(ErrorCode.PUSH_NOTIFICATION_NOT_SUPPORTED, 400, "UNIMPLEMENTED"),
    WireError(ErrorCode.UNSUPPORTED_OPERATION, 400, "UNIMPLEMENTED"),
    WireError(ErrorCode.CONTENT_TYPE_NOT_SUPPORTED, 415, "INVALID_ARGUMENT"),
    WireError(ErrorCode.INVALID_AGENT_RESPONSE, 502, "INTERNAL"),
    WireError(ErrorCode.EXTENDED_AGENT_CARD_NOT_CONFIGURED, 400, "FAILED_PRECONDITION"),
    WireError(ErrorCode.EXTENSION_SUPPORT_REQUIRED, 400, "FAILED_PRECONDITION"),
    WireError(ErrorCode.VERSION_NOT_SUPPORTED, 400, "UNIMPLEMENTED"),
    # noosphere's own
    WireError(ErrorCode.CARD_NOT_FOUND, 404, "NOT_FOUND", NOOSPHERE_DOMAIN),
    WireError(ErrorCode.REQUEST_TOO_LARGE, 413, "RESOURCE_EXHAUSTED", NOOSPHERE_DOMAIN),
    WireError(ErrorCode.UNAUTHORIZED, 401, "UNAUTHENTICATED", NOOSPHERE_DOMAIN),
    WireError(ErrorCode.PAYMENT_REQUIRED, 402, "FAILED_PRECONDITION", NOOSPHERE_DOMAIN),
    WireError(ErrorCode.RATE_LIMITED, 429, "RESOURCE_EXHAUSTED", NOOSPHERE_DOMAIN),
)
#: JSON-RPC code -> its wire form
WIRE_ERRORS: dict[int, WireError] = {int(row.code): row for row in _ROWS}

#: domain error -> its code (a subclass not listed takes its nearest listed base's)
ERROR_CODES: dict[type[NoosphereError], ErrorCode] = {
    InvalidParams: ErrorCode.INVALID_PARAMS,
    Unauthorized: ErrorCode.UNAUTHORIZED,
    RateLimited: ErrorCode.RATE_LIMITED,
    PaymentRequired: ErrorCode.PAYMENT_REQUIRED,
    TaskNotFound: ErrorCode.TASK_NOT_FOUND,
    TaskNotCancelable: ErrorCode.TASK_NOT_CANCELABLE,
    UnsupportedOperation: ErrorCode.UNSUPPORTED_OPERATION,
    ContentTypeNotSupported: ErrorCode.CONTENT_TYPE_NOT_SUPPORTED,
    CardNotFound: ErrorCode.CARD_NOT_FOUND,
    ExtendedCardNotConfigured: ErrorCode.EXTENDED_AGENT_CARD_NOT_CONFIGURED,
    ServerError: ErrorCode.INTERNAL_ERROR,
}


def wire_form(error: RequestError) -> WireError:
    """The table row of ``error``; a code the table does not know answers HTTP 500."""
    if isinstance(error, RpcError):
        known = WIRE_ERRORS.get(error.code)
        if known is None:
            return WireError(ErrorCode.INTERNAL_ERROR, 500, "UNKNOWN", NOOSPHERE_DOMAIN)
        return known
    for cls in type(error).__mro__:
        if issubclass(cls, NoosphereError) and cls in ERROR_CODES:
            return WIRE_ERRORS[ERROR_CODES[cls]]
    return WIRE_ERRORS[ErrorCode.INTERNAL_ERROR]


def error_info(wire: WireError, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """The A2A ``google.rpc.ErrorInfo`` detail for ``wire``."""
    info: dict[str, Any] = {"@type": ERROR_INFO_TYPE, "reason": wire.reason, "domain": wire.domain}
    if metadata:
        info["metadata"] = metadata
    return info


def json_rpc_error(error: RequestError) -> JsonRpcError:
    """The JSON-RPC error object for ``error``: its code, its message, and its data (else the
    ErrorInfo detail)."""
    wire = wire_form(error)
    code = error.code if isinstance(error, RpcError) else int(wire.code)
    data = error.data if error.data is not None else [error_info(wire, error.metadata)]
    return JsonRpcError(code=code, message=error.message, data=data)


def http_status(error: RequestError) -> int:
    """The HTTP status of ``error`` in the HTTP+JSON binding."""
    return wire_form(error).http_status


STRUCT_TYPE = "type.googleapis.com/google.protobuf.Struct"


def http_error(error: RequestError) -> tuple[int, dict[str, Any]]:
    """The HTTP status and AIP-193 body of ``error`` in the HTTP+JSON binding."""
    wire = wire_form(error)
    details: list[Any] = [error_info(wire, error.metadata)]
    if isinstance(error.data, list):  # already details (a remote node's answer)
        has_info = any(
            isinstance(d, dict) and d.get("@type") == ERROR_INFO_TYPE for d in error.data
        )
        details = list(error.data) if has_info else details + list(error.data)
    elif isinstance(error.data, dict):
        details.append({"@type": STRUCT_TYPE, "value": error.data})
    elif error.data is not None:
        details.append({"@type": "type.googleapis.com/google.protobuf.Value", "value": error.data})
    body = {
        "error": {
            "code": wire.http_status,
            "status": wire.status,
            "message": error.message,
            "details": details,
        }
    }
    return wire.http_status, body
