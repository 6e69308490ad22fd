"""The error tree: every exception noosphere defines is a ``NoosphereError`` and is drawn in
``noosphere/errors.py``; every request error maps to the wire in one table (JSON-RPC code,
message, data with an A2A ErrorInfo, HTTP status)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

import noosphere
from noosphere import errors
from noosphere.errors import (
    CardNotFound,
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
from noosphere.protocol import ErrorCode, RpcError
from noosphere.protocol.wire_errors import (
    A2A_DOMAIN,
    ERROR_CODES,
    ERROR_INFO_TYPE,
    STRUCT_TYPE,
    WIRE_ERRORS,
    http_error,
    http_status,
    json_rpc_error,
)


def noosphere_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class defined in a noosphere module, by qualified name."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(noosphere.__path__, "noosphere."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == info.name:
                found[f"{info.name}.{value.__qualname__}"] = value
    return found


def test_every_exception_is_a_noosphere_error_and_drawn_in_the_tree() -> None:
    found = noosphere_exceptions()
    assert len(found) > 40
    outside = sorted(name for name, cls in found.items() if not issubclass(cls, NoosphereError))
    assert outside == []
    tree = errors.__doc__ or ""
    assert "\n    NoosphereError\n" in tree  # the root
    drawn = {"NoosphereError", *re.findall(r"[├└]── (\w+)", tree)}
    undrawn = sorted(name for name, cls in found.items() if cls.__name__ not in drawn)
    assert undrawn == []


def test_one_encoding_error() -> None:
    from noosphere.abe.encoding import EncodingError as AbeEncodingError
    from noosphere.protocol.canonical import EncodingError

    assert EncodingError is AbeEncodingError is errors.EncodingError


def test_leaves_keep_their_builtin_base() -> None:
    from noosphere.node.client import NodeUnreachable
    from noosphere.protocol.card import CardError

    assert issubclass(CardError, ValueError) and issubclass(NodeUnreachable, ConnectionError)
    assert issubclass(errors.LedgerError, RuntimeError)


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        (InvalidParams("Invalid params: x"), ErrorCode.INVALID_PARAMS, 400),
        (TaskNotFound("task t not found"), ErrorCode.TASK_NOT_FOUND, 404),
        (TaskNotCancelable("done"), ErrorCode.TASK_NOT_CANCELABLE, 409),
        (UnsupportedOperation("no"), ErrorCode.UNSUPPORTED_OPERATION, 400),
        (CardNotFound("no card"), ErrorCode.CARD_NOT_FOUND, 404),
        (Unauthorized("Unauthorized: who?"), ErrorCode.UNAUTHORIZED, 401),
        (ServerError("cannot read the ledger"), ErrorCode.INTERNAL_ERROR, 500),
        (RpcError(ErrorCode.METHOD_NOT_FOUND, "Method not found: x"), -32601, 404),
    ],
)
def test_a_request_error_on_the_wire(error: RequestError, code: int, status: int) -> None:
    wire = json_rpc_error(error)
    assert (wire.code, wire.message) == (code, str(error))
    (info,) = wire.data
    assert info["@type"] == ERROR_INFO_TYPE
    assert info["reason"] == ErrorCode(code).name
    assert http_status(error) == status


def test_a_subclass_takes_its_base_row() -> None:
    from noosphere.node.auth import AuthError

    assert json_rpc_error(AuthError("bad token")).code == ErrorCode.UNAUTHORIZED


def test_payment_required_keeps_its_terms_as_data() -> None:
    terms = {"price": "5", "payTo": "0xabc"}
    wire = json_rpc_error(PaymentRequired("Payment required: pay", terms))
    assert (wire.code, wire.data) == (ErrorCode.PAYMENT_REQUIRED, terms)
    assert http_status(PaymentRequired("x", terms)) == 402


def test_rate_limited_says_when_to_retry() -> None:
    wire = json_rpc_error(RateLimited("too many", retry_after_s=1.5))
    assert wire.code == ErrorCode.RATE_LIMITED
    assert wire.data[0]["metadata"] == {"retryAfterSeconds": "1.5"}
    assert wire.data[0]["domain"] == "noosphere"


def test_a_remote_error_keeps_its_code_and_data() -> None:
    received = RpcError(-32099, "their own error", {"why": "theirs"})
    wire = json_rpc_error(received)
    assert (wire.code, wire.message, wire.data) == (-32099, "their own error", {"why": "theirs"})
    assert http_status(received) == 500


def test_the_table_covers_every_code_and_error() -> None:
    assert set(WIRE_ERRORS) == {int(code) for code in ErrorCode}
    assert set(ERROR_CODES.values()) <= set(ErrorCode)


def test_http_json_errors_are_aip_193_with_error_info_first() -> None:
    status, body = http_error(TaskNotFound("task t not found"))
    assert status == 404
    assert body["error"]["code"] == 404 and body["error"]["status"] == "NOT_FOUND"
    assert body["error"]["message"] == "task t not found"
    (info,) = body["error"]["details"]
    assert info == {"@type": ERROR_INFO_TYPE, "reason": "TASK_NOT_FOUND", "domain": A2A_DOMAIN}
    terms = {"price": "5"}
    status, body = http_error(PaymentRequired("Payment required: pay", terms))
    assert status == 402
    info, extra = body["error"]["details"]
    assert info["reason"] == "PAYMENT_REQUIRED"
    assert extra == {"@type": STRUCT_TYPE, "value": terms}
    status, body = http_error(RateLimited("too many", retry_after_s=2))
    assert status == 429 and body["error"]["details"][0]["metadata"] == {"retryAfterSeconds": "2"}


@pytest.mark.parametrize(
    ("code", "status", "name"),
    [
        (ErrorCode.TASK_NOT_FOUND, 404, "NOT_FOUND"),
        (ErrorCode.TASK_NOT_CANCELABLE, 409, "FAILED_PRECONDITION"),
        (ErrorCode.PUSH_NOTIFICATION_NOT_SUPPORTED, 400, "UNIMPLEMENTED"),
        (ErrorCode.UNSUPPORTED_OPERATION, 400, "UNIMPLEMENTED"),
        (ErrorCode.CONTENT_TYPE_NOT_SUPPORTED, 415, "INVALID_ARGUMENT"),
        (ErrorCode.INVALID_AGENT_RESPONSE, 502, "INTERNAL"),
        (ErrorCode.EXTENDED_AGENT_CARD_NOT_CONFIGURED, 400, "FAILED_PRECONDITION"),
        (ErrorCode.EXTENSION_SUPPORT_REQUIRED, 400, "FAILED_PRECONDITION"),
        (ErrorCode.VERSION_NOT_SUPPORTED, 400, "UNIMPLEMENTED"),
    ],
)
def test_a2a_errors_take_the_spec_http_status(code: ErrorCode, status: int, name: str) -> None:
    """A2A v1.0 section 5.4, Error Code Mappings (HTTP status; gRPC status as error.status)."""
    assert (WIRE_ERRORS[code].http_status, WIRE_ERRORS[code].status) == (status, name)
