"""JSON-RPC 2.0 dispatcher over HTTP: request rules, error mapping, size limits and metrics."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.routing import Route
from structlog.testing import capture_logs

from noosphere.node.metrics import NodeMetrics
from noosphere.node.rpc import CallContext, JsonRpcDispatcher
from noosphere.protocol import RpcError

#: the A2A ErrorInfo detail every error without data of its own carries
INFO = {
    reason: [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": "a2a-protocol.org",
        }
    ]
    for reason in ("INVALID_REQUEST", "INTERNAL_ERROR")
}

with warnings.catch_warnings():  # starlette 1.x nags about httpx vs httpx2 on import
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

MAX_BODY = 4096
MAX_BATCH = 10


class EchoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str


class AddParams(BaseModel):
    a: int
    b: int = 0


class NoParams(BaseModel):
    pass


async def echo(params: EchoParams, _ctx: CallContext) -> str:
    return params.text


async def add(params: AddParams, _ctx: CallContext) -> int:
    return params.a + params.b


async def boom(_params: NoParams, _ctx: CallContext) -> None:
    raise RuntimeError("secret-internal-detail")


async def fail(_params: NoParams, _ctx: CallContext) -> None:
    raise RpcError(-32040, "nope")


def make_dispatcher(max_body_bytes: int = MAX_BODY) -> JsonRpcDispatcher:
    dispatcher = JsonRpcDispatcher(
        NodeMetrics(), max_body_bytes=max_body_bytes, max_batch=MAX_BATCH
    )
    dispatcher.register("echo", EchoParams, echo)
    dispatcher.register("add", AddParams, add)
    dispatcher.register("boom", NoParams, boom)
    dispatcher.register("fail", NoParams, fail)
    return dispatcher


def make_client(dispatcher: JsonRpcDispatcher) -> TestClient:
    app = Starlette(routes=[Route("/", dispatcher.handle_http, methods=["POST"])])
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module", autouse=True)
def quiet_logs() -> Iterator[None]:
    """Capture structlog output: rendering a rich traceback per failing call is slow and noisy."""
    with capture_logs():
        yield


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with make_client(make_dispatcher()) as test_client:
        yield test_client


def post_raw(client: TestClient, body: bytes | Iterator[bytes]) -> Any:
    return client.post("/", content=body, headers={"content-type": "application/json"})


def post(client: TestClient, payload: Any) -> Any:
    return post_raw(client, json.dumps(payload).encode())


def call(method: str, params: Any = None, id: Any = 1) -> dict[str, Any]:
    request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": id}
    if params is not None:
        request["params"] = params
    return request


def error_of(response: Any) -> dict[str, Any]:
    assert response.status_code == 200
    body = response.json()
    assert "result" not in body
    return body["error"]


def assert_response_object(obj: Any) -> None:
    """One JSON-RPC 2.0 response object: version, id, and exactly one of result/error."""
    assert isinstance(obj, dict)
    assert obj.get("jsonrpc") == "2.0"
    assert "id" in obj
    assert obj["id"] is None or isinstance(obj["id"], str | int)
    assert not isinstance(obj["id"], bool)
    assert ("result" in obj) != ("error" in obj)
    assert set(obj) <= {"jsonrpc", "id", "result", "error"}
    if "error" in obj:
        error = obj["error"]
        assert isinstance(error["code"], int) and not isinstance(error["code"], bool)
        assert isinstance(error["message"], str)


def assert_valid_http_answer(response: Any) -> Any:
    """Status is 200, 204 or 413 and any body is valid JSON-RPC 2.0; returns the parsed body."""
    assert response.status_code in (200, 204, 413), response.text
    if response.status_code == 204:
        assert response.content == b""
        return None
    body = response.json()
    if isinstance(body, list):
        assert body, "a batch answer is never an empty array"
        for obj in body:
            assert_response_object(obj)
    else:
        assert_response_object(body)
    if response.status_code == 413:
        assert body["error"]["code"] == -32041
    return body


def sample(dispatcher: JsonRpcDispatcher, name: str, labels: dict[str, str]) -> float:
    return dispatcher._metrics.registry.get_sample_value(name, labels) or 0.0


# ---- single calls ----------------------------------------------------------------------------


def test_valid_call_returns_result_with_same_id(client: TestClient) -> None:
    response = post(client, call("echo", {"text": "hello"}, id="abc"))
    assert response.status_code == 200
    assert response.json() == {"jsonrpc": "2.0", "id": "abc", "result": "hello"}


def test_params_by_name(client: TestClient) -> None:
    assert post(client, call("add", {"a": 2, "b": 3})).json()["result"] == 5


def test_params_by_position(client: TestClient) -> None:
    assert post(client, call("add", [2, 3])).json()["result"] == 5


def test_positional_params_may_omit_defaults(client: TestClient) -> None:
    assert post(client, call("add", [7])).json()["result"] == 7


def test_null_id_is_a_call_not_a_notification(client: TestClient) -> None:
    response = post(client, call("echo", {"text": "x"}, id=None))
    assert response.json() == {"jsonrpc": "2.0", "id": None, "result": "x"}


def test_notification_gets_204_and_no_body(client: TestClient) -> None:
    response = post(client, {"jsonrpc": "2.0", "method": "echo", "params": {"text": "x"}})
    assert response.status_code == 204
    assert response.content == b""


def test_notification_for_failing_method_still_gets_no_body(client: TestClient) -> None:
    response = post(client, {"jsonrpc": "2.0", "method": "boom"})
    assert response.status_code == 204
    assert response.content == b""


# ---- batches ---------------------------------------------------------------------------------


def test_batch_returns_only_non_notification_responses_in_order(client: TestClient) -> None:
    batch = [
        call("echo", {"text": "first"}, id=1),
        {"jsonrpc": "2.0", "method": "echo", "params": {"text": "ignored"}},
        42,
        call("add", [1, 1], id="two"),
        {"jsonrpc": "2.0", "method": "nope"},
        {"jsonrpc": "1.0", "method": "echo", "id": 9},
    ]
    response = post(client, batch)
    assert response.status_code == 200
    assert response.json() == [
        {"jsonrpc": "2.0", "id": 1, "result": "first"},
        {
            "jsonrpc": "2.0",
            "id": None,
            "error": {
                "code": -32600,
                "message": "Invalid Request",
                "data": INFO["INVALID_REQUEST"],
            },
        },
        {"jsonrpc": "2.0", "id": "two", "result": 2},
        {
            "jsonrpc": "2.0",
            "id": 9,
            "error": {
                "code": -32600,
                "message": "Invalid Request",
                "data": INFO["INVALID_REQUEST"],
            },
        },
    ]


def test_all_notification_batch_gets_204(client: TestClient) -> None:
    batch = [{"jsonrpc": "2.0", "method": "echo", "params": {"text": str(i)}} for i in range(3)]
    response = post(client, batch)
    assert response.status_code == 204
    assert response.content == b""


def test_empty_batch_is_invalid_request(client: TestClient) -> None:
    response = post(client, [])
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {
            "code": -32600,
            "message": "Invalid Request: empty batch",
            "data": INFO["INVALID_REQUEST"],
        },
    }


def test_batch_over_max_is_invalid_request(client: TestClient) -> None:
    batch = [call("echo", {"text": "x"}, id=i) for i in range(MAX_BATCH + 1)]
    error = error_of(post(client, batch))
    assert error["code"] == -32600
    assert str(MAX_BATCH) in error["message"]


def test_batch_of_exactly_max_is_answered(client: TestClient) -> None:
    batch = [call("echo", {"text": "x"}, id=i) for i in range(MAX_BATCH)]
    assert [r["id"] for r in post(client, batch).json()] == list(range(MAX_BATCH))


# ---- invalid requests ------------------------------------------------------------------------


def test_invalid_json_is_parse_error_with_null_id(client: TestClient) -> None:
    response = post_raw(client, b'{"jsonrpc": "2.0", "method": "echo", "id": 1')
    assert response.status_code == 200
    body = response.json()
    assert body["id"] is None
    assert body["error"]["code"] == -32700


def test_non_utf8_body_is_parse_error(client: TestClient) -> None:
    assert error_of(post_raw(client, b"\xff\xfe\xfd"))["code"] == -32700


@pytest.mark.parametrize("payload", [7, 1.5, "a string", None, True], ids=repr)
def test_non_object_request_is_invalid_request(client: TestClient, payload: Any) -> None:
    body = post(client, payload).json()
    assert body["id"] is None
    assert body["error"]["code"] == -32600


@pytest.mark.parametrize(
    "request_obj",
    [
        {"method": "echo", "id": 1},
        {"jsonrpc": "1.0", "method": "echo", "id": 1},
        {"jsonrpc": 2.0, "method": "echo", "id": 1},
        {"jsonrpc": "2.0", "method": 5, "id": 1},
        {"jsonrpc": "2.0", "method": None, "id": 1},
        {"jsonrpc": "2.0", "id": 1},
        {"jsonrpc": "2.0", "method": "echo", "params": "text", "id": 1},
        {"jsonrpc": "2.0", "method": "echo", "id": 1, "extra": True},
    ],
    ids=[
        "missing-jsonrpc",
        "wrong-version",
        "numeric-version",
        "numeric-method",
        "null-method",
        "missing-method",
        "string-params",
        "unknown-member",
    ],
)
def test_malformed_request_is_invalid_request_keeping_id(
    client: TestClient, request_obj: dict[str, Any]
) -> None:
    body = post(client, request_obj).json()
    assert body["id"] == 1
    assert body["error"]["code"] == -32600


@pytest.mark.parametrize("bad_id", [True, False, 1.5, [1], {"a": 1}], ids=repr)
def test_request_with_invalid_id_type_answers_with_null_id(client: TestClient, bad_id: Any) -> None:
    body = post(client, call("echo", {"text": "x"}, id=bad_id)).json()
    assert body["id"] is None
    assert body["error"]["code"] == -32600


def test_unknown_method_is_method_not_found(client: TestClient) -> None:
    error = error_of(post(client, call("no.such.method")))
    assert error["code"] == -32601
    assert "no.such.method" in error["message"]


# ---- invalid params and handler failures -----------------------------------------------------


def test_param_of_wrong_type_is_invalid_params_naming_field(client: TestClient) -> None:
    error = error_of(post(client, call("echo", {"text": 5})))
    assert error["code"] == -32602
    assert "text" in error["message"]


def test_missing_param_is_invalid_params_naming_field(client: TestClient) -> None:
    error = error_of(post(client, call("add", {"b": 1})))
    assert error["code"] == -32602
    assert error["message"].startswith("Invalid params: a:")


def test_unknown_param_is_invalid_params_when_model_forbids_extras(client: TestClient) -> None:
    error = error_of(post(client, call("echo", {"text": "x", "colour": "red"})))
    assert error["code"] == -32602
    assert "colour" in error["message"]


def test_too_many_positional_params_is_invalid_params(client: TestClient) -> None:
    error = error_of(post(client, call("add", [1, 2, 3])))
    assert error["code"] == -32602
    assert "positional" in error["message"]


def test_handler_exception_is_internal_error_without_traceback(client: TestClient) -> None:
    response = post(client, call("boom"))
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": 1,
        "error": {"code": -32603, "message": "Internal error", "data": INFO["INTERNAL_ERROR"]},
    }
    assert "secret-internal-detail" not in response.text
    assert "Traceback" not in response.text


def test_handler_exception_is_logged_on_the_server(client: TestClient) -> None:
    with capture_logs() as logs:
        post(client, call("boom"))
    assert [(e["event"], e["method"], e["log_level"]) for e in logs] == [
        ("rpc handler failed", "boom", "error")
    ]


def test_rpc_error_passes_code_and_message_through(client: TestClient) -> None:
    error = error_of(post(client, call("fail")))
    assert (error["code"], error["message"]) == (-32040, "nope")
    assert error["data"][0]["reason"] == "CARD_NOT_FOUND"  # noosphere's own ErrorInfo domain
    assert error["data"][0]["domain"] == "noosphere"


# ---- body size limit -------------------------------------------------------------------------


def oversized_call() -> bytes:
    return json.dumps(call("echo", {"text": "x" * MAX_BODY})).encode()


def test_body_over_limit_is_413_with_too_large_code(client: TestClient) -> None:
    response = post_raw(client, oversized_call())
    assert response.status_code == 413
    body = response.json()
    assert body["id"] is None
    assert body["error"]["code"] == -32041


def test_streamed_body_without_content_length_over_limit_is_413(client: TestClient) -> None:
    data = oversized_call()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(data), 512):
            yield data[start : start + 512]

    response = post_raw(client, chunks())
    assert response.request.headers.get("content-length") is None
    assert response.status_code == 413
    assert response.json()["error"]["code"] == -32041


def test_streamed_body_within_limit_is_served(client: TestClient) -> None:
    data = json.dumps(call("echo", {"text": "streamed"})).encode()
    response = post_raw(client, iter([data[:10], data[10:]]))
    assert response.json()["result"] == "streamed"


def test_body_of_exactly_the_limit_is_served(client: TestClient) -> None:
    data = json.dumps(call("echo", {"text": ""})).encode()
    padded = data[:-1] + b" " * (MAX_BODY - len(data)) + b"}"
    assert len(padded) == MAX_BODY
    assert post_raw(client, padded).json()["result"] == ""


# ---- metrics ---------------------------------------------------------------------------------


def test_rpc_metrics_count_calls_by_method_and_outcome() -> None:
    dispatcher = make_dispatcher()
    requests_total = "noosphere_rpc_requests_total"
    with make_client(dispatcher) as test_client:
        post(test_client, call("echo", {"text": "x"}))
        post(test_client, call("echo", {"text": "y"}))
        post(test_client, call("fail"))
        post(test_client, call("boom"))
        post(test_client, call("missing"))
    assert sample(dispatcher, requests_total, {"method": "echo", "outcome": "ok"}) == 2
    assert sample(dispatcher, requests_total, {"method": "fail", "outcome": "error"}) == 1
    assert sample(dispatcher, requests_total, {"method": "boom", "outcome": "internal_error"}) == 1
    assert sample(dispatcher, requests_total, {"method": "(unknown)", "outcome": "error"}) == 1
    latency_count = "noosphere_rpc_latency_seconds_count"
    assert sample(dispatcher, latency_count, {"method": "echo"}) == 2


def test_invalid_requests_are_not_counted_as_calls() -> None:
    dispatcher = make_dispatcher()
    with make_client(dispatcher) as test_client:
        post(test_client, {"jsonrpc": "2.0", "method": 5, "id": 1})
    assert (
        sample(
            dispatcher, "noosphere_rpc_requests_total", {"method": "(unknown)", "outcome": "error"}
        )
        == 0
    )


# ---- bugs: inputs that still produce HTTP 500 ------------------------------------------------


def test_deeply_nested_json_is_an_error_object_not_500(client: TestClient) -> None:
    response = post_raw(client, b"[" * 1500 + b"]" * 1500)
    assert response.status_code == 200
    assert response.json()["error"]["code"] in (-32700, -32600)


def test_huge_integer_literal_is_an_error_object_not_500() -> None:
    with make_client(make_dispatcher(max_body_bytes=1 << 20)) as test_client:
        body = b'{"jsonrpc": "2.0", "method": "echo", "id": ' + b"1" * 5000 + b"}"
        response = post_raw(test_client, body)
    assert response.status_code == 200
    assert response.json()["error"]["code"] in (-32700, -32600)


@pytest.mark.parametrize(
    "body",
    [
        b'{"jsonrpc": "2.0", "method": "echo", "params": {"text": "\\ud800"}, "id": 1}',
        b'{"jsonrpc": "2.0", "method": "\\ud800", "id": 1}',
        b'{"jsonrpc": "2.0", "method": "echo", "params": {"text": "x"}, "id": "\\ud800"}',
    ],
    ids=["in-result", "in-method-name", "in-id"],
)
def test_lone_surrogate_in_request_is_not_500(client: TestClient, body: bytes) -> None:
    assert_valid_http_answer(post_raw(client, body))


# ---- property-based --------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)

request_ids = st.none() | st.booleans() | st.integers() | st.text(max_size=10) | json_values
methods = st.sampled_from(["echo", "add", "boom", "fail"]) | st.text(max_size=12) | json_values
params = (
    st.fixed_dictionaries({"text": st.text(max_size=20)})
    | st.lists(st.integers(), max_size=3)
    | json_values
)


@st.composite
def request_dicts(draw: st.DrawFn) -> dict[str, Any]:
    request: dict[str, Any] = {"jsonrpc": "2.0", "method": draw(methods)}
    if draw(st.booleans()):
        request["params"] = draw(params)
    if draw(st.booleans()):
        request["id"] = draw(request_ids)
    return request


# The client fixture is module-scoped, so no function-scoped-fixture health check applies.
FUZZ = settings(max_examples=200, deadline=None)


@FUZZ
@given(payload=json_values)
def test_any_json_value_gets_a_valid_json_rpc_answer(client: TestClient, payload: Any) -> None:
    assert_valid_http_answer(post(client, payload))


@FUZZ
@given(data=st.binary(max_size=200))
def test_any_bytes_get_a_valid_json_rpc_answer(client: TestClient, data: bytes) -> None:
    assert_valid_http_answer(post_raw(client, data))


@FUZZ
@given(request=request_dicts())
def test_any_request_shaped_object_gets_a_matching_answer(
    client: TestClient, request: dict[str, Any]
) -> None:
    response = post(client, request)
    body = assert_valid_http_answer(response)
    if response.status_code == 413:
        return
    if "id" not in request:
        # a valid notification gets nothing; an invalid one gets an Invalid Request with null id
        if body is not None:
            assert body["id"] is None
            assert body["error"]["code"] == -32600
        return
    assert response.status_code == 200
    raw_id = request["id"]
    expected_id = raw_id if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
    assert body["id"] == expected_id


@FUZZ
@given(batch=st.lists(request_dicts() | json_values, min_size=1, max_size=MAX_BATCH))
def test_any_batch_gets_one_answer_per_non_notification(
    client: TestClient, batch: list[Any]
) -> None:
    response = post(client, batch)
    body = assert_valid_http_answer(response)
    if response.status_code == 413:
        return
    answered = [item for item in batch if not (isinstance(item, dict) and "id" not in item)]
    if body is None:
        assert not answered
    else:
        assert isinstance(body, list)
        assert len(answered) <= len(body) <= len(batch)


def test_nesting_is_bounded_whatever_the_recursion_limit(client: TestClient) -> None:
    """The bound does not rest on RecursionError (a library may raise the recursion limit)."""
    import sys

    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        response = post_raw(client, b"[" * 1500 + b"]" * 1500)
    finally:
        sys.setrecursionlimit(previous)
    assert response.json()["error"]["code"] == -32700
    assert "nests deeper" in response.json()["error"]["message"]
    # Brackets inside strings do not count.
    text = json.dumps(call("echo", {"text": "[" * 2000}))
    assert post_raw(client, text.encode()).json()["result"] == "[" * 2000
