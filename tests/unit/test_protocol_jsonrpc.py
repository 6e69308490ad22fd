"""JSON-RPC 2.0 request and response models (noosphere.protocol.jsonrpc)."""

from __future__ import annotations

import json

import pytest
from a2a.utils import errors as a2a_errors
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from noosphere.protocol import ErrorCode, JsonRpcRequest, JsonRpcResponse, RpcError

FAST = settings(max_examples=100, deadline=None, database=None)


def _request(**fields) -> dict:
    return {"jsonrpc": "2.0", "method": "noosphere.status"} | fields


# ---- valid requests ----------------------------------------------------------------------------


@pytest.mark.parametrize("request_id", [1, 0, -5, 2**40, "abc", ""])
def test_request_with_an_id_is_not_a_notification(request_id):
    request = JsonRpcRequest.model_validate(_request(id=request_id))
    assert request.id == request_id
    assert not request.is_notification


def test_request_without_an_id_is_a_notification():
    request = JsonRpcRequest.model_validate(_request())
    assert request.is_notification
    assert request.id is None


def test_request_with_a_null_id_is_not_a_notification():
    # JSON-RPC 2.0 section 4.1: a notification is a request without an "id" member.
    assert not JsonRpcRequest.model_validate(_request(id=None)).is_notification


@pytest.mark.parametrize("params", [{"limit": 10}, [1, 2, 3], {}, []])
def test_request_accepts_object_and_array_params(params):
    assert JsonRpcRequest.model_validate(_request(id=1, params=params)).params == params


def test_request_without_params_has_none():
    assert JsonRpcRequest.model_validate(_request(id=1)).params is None


def test_request_parses_from_json_text():
    text = '{"jsonrpc":"2.0","method":"message/send","params":{"a":1},"id":"r1"}'
    request = JsonRpcRequest.model_validate_json(text)
    assert (request.method, request.params, request.id) == ("message/send", {"a": 1}, "r1")


def test_notification_parses_from_json_text():
    assert JsonRpcRequest.model_validate_json('{"jsonrpc":"2.0","method":"ping"}').is_notification


# ---- invalid requests --------------------------------------------------------------------------


@pytest.mark.parametrize("request_id", [True, False], ids=["true", "false"])
def test_request_rejects_boolean_ids(request_id):
    with pytest.raises(ValidationError):
        JsonRpcRequest.model_validate(_request(id=request_id))


@pytest.mark.parametrize("request_id", [1.0, 1.5, float("nan")])
def test_request_rejects_float_ids(request_id):
    with pytest.raises(ValidationError):
        JsonRpcRequest.model_validate(_request(id=request_id))


@pytest.mark.parametrize("request_id", [[1], {"id": 1}])
def test_request_rejects_structured_ids(request_id):
    with pytest.raises(ValidationError):
        JsonRpcRequest.model_validate(_request(id=request_id))


@pytest.mark.parametrize("text_id", ["true", "1.0", "1e3"])
def test_request_rejects_boolean_and_float_ids_in_json_text(text_id):
    with pytest.raises(ValidationError):
        JsonRpcRequest.model_validate_json(f'{{"jsonrpc":"2.0","method":"m","id":{text_id}}}')


def test_request_rejects_missing_jsonrpc():
    with pytest.raises(ValidationError):
        JsonRpcRequest.model_validate({"method": "m", "id": 1})


@pytest.mark.parametrize("version", ["1.0", "2", 2.0, 2, None, "2.0 "])
def test_request_rejects_other_jsonrpc_versions(version):
    with pytest.raises(ValidationError):
        JsonRpcRequest.model_validate(_request(id=1, jsonrpc=version))


@pytest.mark.parametrize("method", [1, None, ["m"], b"m", True])
def test_request_rejects_non_string_methods(method):
    with pytest.raises(ValidationError):
        JsonRpcRequest.model_validate(_request(id=1, method=method))


def test_request_rejects_missing_method():
    with pytest.raises(ValidationError):
        JsonRpcRequest.model_validate({"jsonrpc": "2.0", "id": 1})


@pytest.mark.parametrize("params", ["a string", 42, True, 1.5])
def test_request_rejects_scalar_params(params):
    with pytest.raises(ValidationError):
        JsonRpcRequest.model_validate(_request(id=1, params=params))


def test_request_rejects_unknown_members():
    with pytest.raises(ValidationError):
        JsonRpcRequest.model_validate(_request(id=1, result=1))


def test_request_is_immutable():
    request = JsonRpcRequest.model_validate(_request(id=1))
    with pytest.raises(ValidationError):
        request.method = "other"


@FAST
@given(
    st.dictionaries(
        st.sampled_from(["jsonrpc", "method", "params", "id", "extra"]),
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    )
)
def test_request_validation_raises_only_validation_error(fields):
    try:
        request = JsonRpcRequest.model_validate(fields)
    except ValidationError:
        return
    assert request.jsonrpc == "2.0"
    assert isinstance(request.method, str)
    assert request.id is None or type(request.id) in (int, str)


# ---- responses and errors ----------------------------------------------------------------------


def test_success_response_wire_form_has_result_and_id():
    wire = JsonRpcResponse(id=3, result={"ok": True}).to_wire()
    assert wire == {"jsonrpc": "2.0", "id": 3, "result": {"ok": True}}


def test_success_response_with_null_result_still_carries_result():
    assert JsonRpcResponse(id="a").to_wire() == {"jsonrpc": "2.0", "id": "a", "result": None}


def test_error_response_wire_form_has_error_and_no_result():
    error = RpcError(ErrorCode.METHOD_NOT_FOUND, "no such method").to_error()
    wire = JsonRpcResponse(id=None, error=error).to_wire()
    assert wire == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32601, "message": "no such method"},
    }
    json.dumps(wire)


def test_rpc_error_keeps_code_message_and_data():
    error = RpcError(ErrorCode.CARD_NOT_FOUND, "unknown card", {"id": "x"})
    assert (error.code, error.message, error.data) == (-32040, "unknown card", {"id": "x"})
    assert error.to_error().model_dump(exclude_none=True) == {
        "code": -32040,
        "message": "unknown card",
        "data": {"id": "x"},
    }


def test_error_codes_follow_json_rpc_2_0():
    assert ErrorCode.PARSE_ERROR == -32700
    assert ErrorCode.INVALID_REQUEST == -32600
    assert ErrorCode.METHOD_NOT_FOUND == -32601
    assert ErrorCode.INVALID_PARAMS == -32602
    assert ErrorCode.INTERNAL_ERROR == -32603


@pytest.mark.parametrize(
    ("sdk_error", "code"),
    [
        (a2a_errors.TaskNotFoundError, ErrorCode.TASK_NOT_FOUND),
        (a2a_errors.TaskNotCancelableError, ErrorCode.TASK_NOT_CANCELABLE),
        (a2a_errors.PushNotificationNotSupportedError, ErrorCode.PUSH_NOTIFICATION_NOT_SUPPORTED),
        (a2a_errors.UnsupportedOperationError, ErrorCode.UNSUPPORTED_OPERATION),
        (a2a_errors.ContentTypeNotSupportedError, ErrorCode.CONTENT_TYPE_NOT_SUPPORTED),
        (a2a_errors.InvalidAgentResponseError, ErrorCode.INVALID_AGENT_RESPONSE),
        (
            a2a_errors.ExtendedAgentCardNotConfiguredError,
            ErrorCode.EXTENDED_AGENT_CARD_NOT_CONFIGURED,
        ),
        (a2a_errors.JSONParseError, ErrorCode.PARSE_ERROR),
        (a2a_errors.InvalidRequestError, ErrorCode.INVALID_REQUEST),
        (a2a_errors.MethodNotFoundError, ErrorCode.METHOD_NOT_FOUND),
        (a2a_errors.InvalidParamsError, ErrorCode.INVALID_PARAMS),
        (a2a_errors.InternalError, ErrorCode.INTERNAL_ERROR),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else v.name,
)
def test_error_codes_match_the_a2a_sdk(sdk_error, code):
    assert a2a_errors.JSON_RPC_ERROR_CODE_MAP[sdk_error] == code


def test_noosphere_error_codes_do_not_collide_with_a2a_codes():
    a2a_codes = set(a2a_errors.JSON_RPC_ERROR_CODE_MAP.values())
    ours = {ErrorCode.CARD_NOT_FOUND, ErrorCode.REQUEST_TOO_LARGE, ErrorCode.UNAUTHORIZED}
    assert not ours & a2a_codes


def test_error_codes_are_unique():
    assert len({code.value for code in ErrorCode}) == len(ErrorCode)
