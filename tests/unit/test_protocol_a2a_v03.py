"""A2A v0.3 wire compatibility (noosphere.protocol.a2a_v03): v0.3 params become params our v1.0
models accept, v1.0 results become objects the reference SDK's v0.3 types accept, and the SDK's
own v0.3 <-> v1.0 conversions agree with ours."""

from __future__ import annotations

import base64
import copy

import pytest
from a2a.compat.v0_3 import conversions
from a2a.compat.v0_3 import types as v03
from a2a.types import a2a_pb2 as pb2
from google.protobuf.json_format import MessageToDict, ParseDict
from hypothesis import given, settings
from hypothesis import strategies as st

from noosphere.protocol.a2a import (
    V03_METHOD_ALIASES,
    CancelTaskRequest,
    GetExtendedAgentCardRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTasksRequest,
    Message,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskPushConfigRef,
    TaskPushNotificationConfig,
    TaskState,
)
from noosphere.protocol.a2a_v03 import (
    V03TranslationError,
    is_v03_method,
    params_from_v03,
    result_to_v03,
    stream_event_to_v03,
)
from noosphere.protocol.card import AgentCard

FAST = settings(max_examples=200, deadline=None, database=None)

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n-bytes").decode()

V03_MESSAGE = {
    "kind": "message",
    "messageId": "m-1",
    "role": "user",
    "contextId": "ctx-1",
    "taskId": "t-1",
    "metadata": {"k": "v"},
    "extensions": ["https://ext.example/x"],
    "referenceTaskIds": ["t-0"],
    "parts": [
        {"kind": "text", "text": "hello", "metadata": {"lang": "en"}},
        {"kind": "file", "file": {"bytes": PNG, "name": "a.png", "mimeType": "image/png"}},
        {
            "kind": "file",
            "file": {"uri": "https://example.com/a.pdf", "mimeType": "application/pdf"},
        },
        {"kind": "data", "data": {"answer": 42, "nested": [1, {"x": None}]}},
    ],
}

V1_MESSAGE = {
    "messageId": "m-2",
    "role": "ROLE_AGENT",
    "contextId": "ctx-1",
    "taskId": "t-1",
    "parts": [
        {"text": "done", "mediaType": "text/plain"},
        {"raw": PNG, "filename": "b.png", "mediaType": "image/png"},
        {"url": "https://example.com/b.pdf", "filename": "b.pdf"},
        {"data": {"score": 0.5}, "mediaType": "application/json"},
        {"data": [1, 2, 3], "metadata": {"m": 1}},
    ],
    "metadata": {"agent": True},
}

V1_TASK = {
    "id": "t-1",
    "contextId": "ctx-1",
    "status": {
        "state": "TASK_STATE_INPUT_REQUIRED",
        "message": V1_MESSAGE,
        "timestamp": "2026-01-02T03:04:05.678Z",
    },
    "artifacts": [
        {
            "artifactId": "a-1",
            "name": "report",
            "description": "the report",
            "parts": [{"text": "body"}],
            "metadata": {"size": 4},
            "extensions": ["https://ext.example/x"],
        }
    ],
    "history": [
        {"messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": "hello"}]},
        V1_MESSAGE,
    ],
    "metadata": {"cost": "1"},
}

V1_PUSH_CONFIG = {
    "taskId": "t-1",
    "id": "cfg-1",
    "url": "https://hooks.example.com/a2a",
    "token": "tok",
    "authentication": {"scheme": "Bearer", "credentials": "secret"},
}


def _v03_dump(model) -> dict:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def _sdk_v1(pb_message) -> dict:
    """What the SDK's v1.0 proto JSON looks like for a converted v0.3 object."""
    return MessageToDict(pb_message)


# ---- method names ------------------------------------------------------------------------------


def test_every_alias_is_a_v03_method_and_v1_names_are_not():
    for alias, v1_name in V03_METHOD_ALIASES.items():
        assert is_v03_method(alias)
        assert not is_v03_method(v1_name)
    assert not is_v03_method("noosphere.status")
    assert not is_v03_method(None)  # type: ignore[arg-type]


def test_every_sdk_v03_method_is_aliased():
    import a2a.server.routes  # noqa: F401  (import order: the SDK's adapter module is circular)
    from a2a.compat.v0_3.jsonrpc_adapter import JSONRPC03Adapter

    assert set(JSONRPC03Adapter.METHOD_TO_MODEL) <= set(V03_METHOD_ALIASES)


def test_v03_alias_is_accepted_in_place_of_the_v1_name():
    assert params_from_v03("tasks/get", {"id": "t"}) == params_from_v03("GetTask", {"id": "t"})


def test_unknown_method_is_a_translation_error():
    with pytest.raises(V03TranslationError, match="method"):
        params_from_v03("tasks/explode", {})
    with pytest.raises(V03TranslationError, match="method"):
        result_to_v03("Nope", {})


# ---- message/send and message/stream params ----------------------------------------------------


@pytest.mark.parametrize("method", ["SendMessage", "SendStreamingMessage"])
def test_send_message_params_validate_and_match_the_sdk(method):
    params = {
        "message": V03_MESSAGE,
        "configuration": {
            "acceptedOutputModes": ["text/plain"],
            "blocking": False,
            "historyLength": 3,
            "pushNotificationConfig": {
                "url": "https://hooks.example.com/a2a",
                "id": "cfg-1",
                "token": "tok",
                "authentication": {"schemes": ["Bearer", "Basic"], "credentials": "secret"},
            },
        },
        "metadata": {"trace": "abc"},
    }
    out = params_from_v03(method, copy.deepcopy(params))
    request = SendMessageRequest.model_validate(out)
    assert request.configuration.return_immediately is True
    assert request.configuration.history_length == 3
    auth = request.configuration.task_push_notification_config.authentication
    assert (auth.scheme, auth.credentials) == ("Bearer", "secret")
    assert request.message.role == "ROLE_USER"
    assert request.message.parts[1].content_bytes == base64.b64decode(PNG)
    assert request.message.parts[2].url == "https://example.com/a.pdf"
    assert request.message.parts[3].data == {"answer": 42, "nested": [1, {"x": None}]}
    # the SDK converts the same v0.3 request to the same v1.0 proto JSON
    sdk = conversions.to_core_send_message_request(
        v03.SendMessageRequest(id=1, params=v03.MessageSendParams.model_validate(params))
    )
    assert out == _sdk_v1(sdk)


def test_blocking_defaults_to_true_and_history_zero_means_unlimited():
    out = params_from_v03(
        "message/send", {"message": V03_MESSAGE, "configuration": {"historyLength": 0}}
    )
    request = SendMessageRequest.model_validate(out)
    assert request.configuration.return_immediately is False
    assert request.configuration.history_length is None
    blocking = params_from_v03(
        "message/send", {"message": V03_MESSAGE, "configuration": {"blocking": True}}
    )
    assert blocking["configuration"]["returnImmediately"] is False


def test_minimal_message_without_kinds_is_accepted():
    out = params_from_v03(
        "message/send",
        {"message": {"messageId": "m", "role": "agent", "parts": [{"text": "hi"}, {"data": {}}]}},
    )
    message = SendMessageRequest.model_validate(out).message
    assert message.role == "ROLE_AGENT"
    assert message.text == "hi"
    assert message.parts[1].data == {}
    assert "configuration" not in out


def test_compat_wrapped_data_part_is_unwrapped():
    part = {"kind": "data", "data": {"value": [1, 2]}, "metadata": {"data_part_compat": True}}
    out = params_from_v03(
        "message/send", {"message": {"messageId": "m", "role": "user", "parts": [part]}}
    )
    assert out["message"]["parts"] == [{"data": [1, 2]}]


def test_unpadded_and_urlsafe_bytes_are_canonicalised():
    raw = bytes(range(250, 256)) + b"?>"
    urlsafe = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    part = {"kind": "file", "file": {"bytes": urlsafe}}
    out = params_from_v03(
        "message/send", {"message": {"messageId": "m", "role": "user", "parts": [part]}}
    )
    assert out["message"]["parts"][0]["raw"] == base64.b64encode(raw).decode()


# ---- the other request params ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "params", "model", "expected"),
    [
        (
            "tasks/get",
            {"id": "t", "historyLength": 2},
            GetTaskRequest,
            {"id": "t", "historyLength": 2},
        ),
        ("tasks/get", {"id": "t", "historyLength": 0}, GetTaskRequest, {"id": "t"}),
        ("tasks/cancel", {"id": "t", "metadata": {"why": "x"}}, CancelTaskRequest, None),
        ("tasks/resubscribe", {"id": "t", "metadata": {}}, SubscribeToTaskRequest, {"id": "t"}),
        (
            "tasks/pushNotificationConfig/get",
            {"id": "t", "pushNotificationConfigId": "c"},
            TaskPushConfigRef,
            {"taskId": "t", "id": "c"},
        ),
        (
            "tasks/pushNotificationConfig/get",
            {"id": "t"},
            TaskPushConfigRef,
            {"taskId": "t", "id": "t"},
        ),
        (
            "tasks/pushNotificationConfig/delete",
            {"id": "t", "pushNotificationConfigId": "c"},
            TaskPushConfigRef,
            {"taskId": "t", "id": "c"},
        ),
        (
            "tasks/pushNotificationConfig/list",
            {"id": "t"},
            ListTaskPushNotificationConfigsRequest,
            {"taskId": "t"},
        ),
        ("agent/getAuthenticatedExtendedCard", None, GetExtendedAgentCardRequest, {}),
        ("agent/getAuthenticatedExtendedCard", {}, GetExtendedAgentCardRequest, {}),
    ],
)
def test_task_params_validate(method, params, model, expected):
    out = params_from_v03(V03_METHOD_ALIASES[method], params)
    model.model_validate(out)
    if expected is not None:
        assert out == expected


@pytest.mark.parametrize(
    ("method", "v03_request", "sdk_convert"),
    [
        (
            "tasks/get",
            v03.GetTaskRequest(id=1, params=v03.TaskQueryParams(id="t", history_length=4)),
            conversions.to_core_get_task_request,
        ),
        (
            "tasks/cancel",
            v03.CancelTaskRequest(id=1, params=v03.TaskIdParams(id="t", metadata={"a": 1})),
            conversions.to_core_cancel_task_request,
        ),
        (
            "tasks/resubscribe",
            v03.TaskResubscriptionRequest(id=1, params=v03.TaskIdParams(id="t")),
            conversions.to_core_subscribe_to_task_request,
        ),
        (
            "tasks/pushNotificationConfig/delete",
            v03.DeleteTaskPushNotificationConfigRequest(
                id=1,
                params=v03.DeleteTaskPushNotificationConfigParams(
                    id="t", push_notification_config_id="c"
                ),
            ),
            conversions.to_core_delete_task_push_notification_config_request,
        ),
        (
            "tasks/pushNotificationConfig/list",
            v03.ListTaskPushNotificationConfigRequest(
                id=1, params=v03.ListTaskPushNotificationConfigParams(id="t")
            ),
            conversions.to_core_list_task_push_notification_config_request,
        ),
    ],
)
def test_task_params_match_the_sdk(method, v03_request, sdk_convert):
    params = _v03_dump(v03_request.params)
    assert params_from_v03(method, params) == _sdk_v1(sdk_convert(v03_request))


def test_set_push_config_params_validate_and_match_the_sdk():
    params = {
        "taskId": "t-1",
        "pushNotificationConfig": {
            "id": "cfg-1",
            "url": "https://hooks.example.com/a2a",
            "token": "tok",
            "authentication": {"schemes": ["Bearer"], "credentials": "secret"},
        },
    }
    out = params_from_v03("tasks/pushNotificationConfig/set", params)
    assert out == V1_PUSH_CONFIG
    TaskPushNotificationConfig.model_validate(out)
    sdk = conversions.to_core_create_task_push_notification_config_request(
        v03.SetTaskPushNotificationConfigRequest(
            id=1, params=v03.TaskPushNotificationConfig.model_validate(params)
        )
    )
    assert out == _sdk_v1(sdk)


def test_set_push_config_without_id_uses_the_task_id():
    params = {"taskId": "t-1", "pushNotificationConfig": {"url": "https://h.example/x"}}
    out = params_from_v03("CreateTaskPushNotificationConfig", params)
    assert out == {"taskId": "t-1", "id": "t-1", "url": "https://h.example/x"}


def test_list_tasks_params_accept_v03_state_names():
    out = params_from_v03(
        "tasks/list",
        {
            "contextId": "ctx",
            "status": "input-required",
            "pageSize": 10,
            "pageToken": "p",
            "historyLength": 2,
            "includeArtifacts": True,
            "lastUpdatedAfter": 1_700_000_000_000,
        },
    )
    request = ListTasksRequest.model_validate(out)
    assert request.status is TaskState.INPUT_REQUIRED
    assert request.status_timestamp_after == "2023-11-14T22:13:20.000Z"
    assert params_from_v03("ListTasks", {"status": "TASK_STATE_WORKING"})["status"] == (
        "TASK_STATE_WORKING"
    )
    with pytest.raises(V03TranslationError, match=r"params\.status"):
        params_from_v03("ListTasks", {"status": "unknown"})


# ---- results -----------------------------------------------------------------------------------


def _sdk_task(v1_task: dict) -> dict:
    return _v03_dump(conversions.to_compat_task(ParseDict(v1_task, pb2.Task())))


def test_task_result_validates_as_v03_and_matches_the_sdk():
    Task.model_validate(V1_TASK)
    for method in ("GetTask", "CancelTask", "tasks/get", "tasks/cancel"):
        out = result_to_v03(method, copy.deepcopy(V1_TASK))
        task = v03.Task.model_validate(out)
        assert task.status.state is v03.TaskState.input_required
        assert out == _sdk_task(V1_TASK)
    assert out["status"]["message"]["parts"][4] == {
        "kind": "data",
        "data": {"value": [1, 2, 3]},
        "metadata": {"m": 1, "data_part_compat": True},
    }


def test_send_message_result_is_the_task_or_message_itself():
    task = result_to_v03("SendMessage", {"task": V1_TASK})
    assert v03.Task.model_validate(task).kind == "task"
    message = result_to_v03("message/send", {"message": V1_MESSAGE})
    assert v03.Message.model_validate(message).role is v03.Role.agent
    sdk = conversions.to_compat_send_message_response(
        ParseDict({"message": V1_MESSAGE}, pb2.SendMessageResponse())
    )
    assert message == _v03_dump(sdk.root.result)
    v03.SendMessageSuccessResponse(id=1, result=message)


def test_message_round_trip_through_v1_and_back():
    v1 = params_from_v03("SendMessage", {"message": V03_MESSAGE})["message"]
    Message.model_validate(v1)
    back = result_to_v03("SendMessage", {"message": v1})
    assert back == V03_MESSAGE


def test_every_state_round_trips():
    for state in TaskState:
        task = {"id": "t", "contextId": "c", "status": {"state": state.value}}
        out = result_to_v03("GetTask", task)
        assert out["status"]["state"] == state.short
        v03.Task.model_validate(out)
        listed = params_from_v03("ListTasks", {"status": state.short})
        assert listed["status"] == state.value
    unspecified = {"id": "t", "contextId": "c", "status": {"state": "TASK_STATE_UNSPECIFIED"}}
    assert result_to_v03("GetTask", unspecified)["status"]["state"] == "unknown"


def test_push_config_results_validate_and_match_the_sdk():
    out = result_to_v03("CreateTaskPushNotificationConfig", V1_PUSH_CONFIG)
    v03.TaskPushNotificationConfig.model_validate(out)
    sdk = conversions.to_compat_task_push_notification_config(
        ParseDict(V1_PUSH_CONFIG, pb2.TaskPushNotificationConfig())
    )
    assert out == _v03_dump(sdk)
    assert result_to_v03("tasks/pushNotificationConfig/get", V1_PUSH_CONFIG) == out
    # set -> v1 -> v0.3 gives back what the client sent
    assert params_from_v03("tasks/pushNotificationConfig/set", out) == V1_PUSH_CONFIG

    listed = result_to_v03(
        "ListTaskPushNotificationConfigs",
        {"configs": [V1_PUSH_CONFIG, {"taskId": "t-2", "url": "https://h.example/y"}]},
    )
    v03.ListTaskPushNotificationConfigSuccessResponse(id=1, result=listed)
    assert listed[0] == out
    assert result_to_v03("ListTaskPushNotificationConfigs", {}) == []
    assert result_to_v03("DeleteTaskPushNotificationConfig", {}) is None
    v03.DeleteTaskPushNotificationConfigSuccessResponse(id=1, result=None)


def test_list_tasks_result_carries_v03_tasks():
    out = result_to_v03(
        "tasks/list", {"tasks": [V1_TASK], "nextPageToken": "n", "pageSize": 1, "totalSize": 3}
    )
    assert [v03.Task.model_validate(t).id for t in out["tasks"]] == ["t-1"]
    assert (out["nextPageToken"], out["pageSize"], out["totalSize"]) == ("n", 1, 3)


def _v1_card(**extra) -> dict:
    card = {
        "name": "Echo",
        "description": "echoes",
        "version": "1.2.3",
        "supportedInterfaces": [
            {
                "url": "https://a.example/rpc",
                "protocolBinding": "JSONRPC",
                "protocolVersion": "1.0",
            },
            {"url": "https://a.example/grpc", "protocolBinding": "GRPC", "protocolVersion": "1.0"},
        ],
        "provider": {"organization": "Org", "url": "https://org.example"},
        "capabilities": {
            "streaming": True,
            "pushNotifications": False,
            "extendedAgentCard": True,
            "extensions": [{"uri": "https://ext.example/x", "required": False}],
        },
        "securitySchemes": {
            "bearer": {"httpAuthSecurityScheme": {"scheme": "Bearer", "bearerFormat": "JWT"}},
            "key": {"apiKeySecurityScheme": {"location": "header", "name": "X-Key"}},
            "mtls": {"mtlsSecurityScheme": {"description": "client certs"}},
            "oidc": {"openIdConnectSecurityScheme": {"openIdConnectUrl": "https://o.example"}},
            "oauth": {
                "oauth2SecurityScheme": {
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": "https://o.example/token",
                            "scopes": {"read": "read things"},
                        }
                    }
                }
            },
        },
        "securityRequirements": [{"schemes": {"bearer": {"list": ["read"]}}}],
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [
            {
                "id": "echo",
                "name": "Echo",
                "description": "echo",
                "tags": ["t"],
                "examples": ["hi"],
                "securityRequirements": [{"schemes": {"key": {}}}],
            }
        ],
        "signatures": [{"protected": "e30", "signature": "sig"}],
        "iconUrl": "https://a.example/icon.png",
        "documentationUrl": "https://a.example/docs",
    }
    return card | extra


def test_extended_card_result_validates_as_v03_card():
    v1 = _v1_card()
    # our card model has no per-skill security requirements (the v1.0 proto has)
    plain_skills = [
        {k: v for k, v in s.items() if k != "securityRequirements"} for s in v1["skills"]
    ]
    AgentCard.model_validate(v1 | {"skills": plain_skills})
    out = result_to_v03("GetExtendedAgentCard", v1)
    card = v03.AgentCard.model_validate(out)
    assert card.url == "https://a.example/rpc"
    assert card.preferred_transport == "JSONRPC"
    assert card.protocol_version == "0.3.0"
    assert [i.transport for i in card.additional_interfaces] == ["GRPC"]
    assert card.supports_authenticated_extended_card is True
    assert card.security == [{"bearer": ["read"]}]
    assert card.skills[0].security == [{"key": []}]
    assert card.security_schemes["bearer"].root.bearer_format == "JWT"
    assert card.security_schemes["key"].root.in_ == v03.In.header
    # the same v1.0 card, converted by the SDK (which only accepts 0.x interfaces)
    legacy = _v1_card()
    for interface in legacy["supportedInterfaces"]:
        interface["protocolVersion"] = "0.3"
    sdk = _v03_dump(conversions.to_compat_agent_card(ParseDict(legacy, pb2.AgentCard())))
    ours = result_to_v03("agent/getAuthenticatedExtendedCard", legacy)
    assert ours | {"protocolVersion": sdk["protocolVersion"]} == sdk


# ---- stream events -----------------------------------------------------------------------------


def _stream_ok(event: dict):
    StreamResponse.model_validate(event)
    out = stream_event_to_v03(event)
    return v03.SendStreamingMessageSuccessResponse(id=1, result=out).result, out


@pytest.mark.parametrize(
    ("state", "final"),
    [
        ("TASK_STATE_SUBMITTED", False),
        ("TASK_STATE_WORKING", False),
        ("TASK_STATE_INPUT_REQUIRED", True),
        ("TASK_STATE_AUTH_REQUIRED", True),
        ("TASK_STATE_COMPLETED", True),
        ("TASK_STATE_FAILED", True),
        ("TASK_STATE_CANCELED", True),
        ("TASK_STATE_REJECTED", True),
    ],
)
def test_status_update_events(state, final):
    event = {
        "statusUpdate": {
            "taskId": "t",
            "contextId": "c",
            "status": {"state": state, "timestamp": "2026-01-01T00:00:00Z"},
            "metadata": {"seq": 1},
        }
    }
    model, out = _stream_ok(event)
    assert isinstance(model, v03.TaskStatusUpdateEvent)
    assert out["kind"] == "status-update"
    assert out["final"] is final
    sdk = _v03_dump(
        conversions.to_compat_stream_response(ParseDict(event, pb2.StreamResponse())).result
    )
    # the SDK only marks terminal states final; we also end the turn on input/auth-required
    assert out | {"final": sdk["final"]} == sdk


def test_artifact_task_and_message_events():
    artifact = {
        "artifactUpdate": {
            "taskId": "t",
            "contextId": "c",
            "artifact": V1_TASK["artifacts"][0],
            "append": True,
            "lastChunk": False,
        }
    }
    model, out = _stream_ok(artifact)
    assert isinstance(model, v03.TaskArtifactUpdateEvent)
    assert (out["kind"], out["append"], out["lastChunk"]) == ("artifact-update", True, False)
    sdk = conversions.to_compat_stream_response(ParseDict(artifact, pb2.StreamResponse()))
    assert out == _v03_dump(sdk.result)

    model, out = _stream_ok({"task": V1_TASK})
    assert isinstance(model, v03.Task)
    model, out = _stream_ok({"message": V1_MESSAGE})
    assert isinstance(model, v03.Message)
    assert result_to_v03("SendStreamingMessage", {"message": V1_MESSAGE}) == out
    assert result_to_v03("tasks/resubscribe", {"task": V1_TASK})["kind"] == "task"


# ---- errors ------------------------------------------------------------------------------------


def _send(message) -> dict:
    return {"message": message}


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("message/send", [], "params"),
        ("message/send", {}, "params.message"),
        ("message/send", _send("hi"), "params.message"),
        ("message/send", _send({"role": "user", "parts": []}), "params.message.messageId"),
        ("message/send", _send({"messageId": 7, "role": "user", "parts": []}), "messageId"),
        ("message/send", _send({"messageId": "m", "parts": []}), "params.message.role"),
        ("message/send", _send({"messageId": "m", "role": "bot", "parts": []}), "role"),
        ("message/send", _send({"messageId": "m", "role": "user"}), "params.message.parts"),
        ("message/send", _send({"messageId": "m", "role": "user", "parts": {}}), "parts"),
        (
            "message/send",
            _send({"kind": "task", "messageId": "m", "role": "user", "parts": []}),
            "params.message.kind",
        ),
        (
            "message/send",
            _send({"messageId": "m", "role": "user", "parts": [{"kind": "video"}]}),
            r"parts\[0\]\.kind",
        ),
        (
            "message/send",
            _send({"messageId": "m", "role": "user", "parts": [{"kind": "text"}]}),
            r"parts\[0\]\.text",
        ),
        (
            "message/send",
            _send({"messageId": "m", "role": "user", "parts": [{"kind": "data", "data": [1]}]}),
            r"parts\[0\]\.data",
        ),
        (
            "message/send",
            _send({"messageId": "m", "role": "user", "parts": [{"kind": "file", "file": {}}]}),
            r"parts\[0\]\.file",
        ),
        (
            "message/send",
            _send(
                {
                    "messageId": "m",
                    "role": "user",
                    "parts": [{"kind": "file", "file": {"bytes": "!!not base64!!"}}],
                }
            ),
            r"file\.bytes",
        ),
        (
            "message/send",
            {**_send(V03_MESSAGE), "configuration": {"blocking": "yes"}},
            "configuration.blocking",
        ),
        (
            "message/send",
            {**_send(V03_MESSAGE), "configuration": {"historyLength": -1}},
            "configuration.historyLength",
        ),
        (
            "message/send",
            {
                **_send(V03_MESSAGE),
                "configuration": {
                    "pushNotificationConfig": {"url": "https://x", "authentication": {}}
                },
            },
            "authentication.schemes",
        ),
        ("tasks/get", {}, "params.id"),
        ("tasks/get", {"id": "t", "historyLength": True}, "params.historyLength"),
        ("tasks/cancel", {"id": "t", "metadata": "m"}, "params.metadata"),
        ("tasks/resubscribe", {"id": 1}, "params.id"),
        ("tasks/pushNotificationConfig/set", {"taskId": "t"}, "params.pushNotificationConfig"),
        (
            "tasks/pushNotificationConfig/set",
            {"taskId": "t", "pushNotificationConfig": {}},
            "pushNotificationConfig.url",
        ),
        ("tasks/pushNotificationConfig/delete", {"id": "t"}, "pushNotificationConfigId"),
        ("tasks/pushNotificationConfig/list", {}, "params.id"),
        ("tasks/list", {"pageSize": "10"}, "params.pageSize"),
    ],
)
def test_malformed_params_name_the_field(method, params, field):
    with pytest.raises(V03TranslationError, match=field) as caught:
        params_from_v03(V03_METHOD_ALIASES[method], params)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("method", "result", "field"),
    [
        ("SendMessage", {}, "result"),
        ("SendMessage", {"task": V1_TASK, "message": V1_MESSAGE}, "result"),
        ("GetTask", {"id": "t", "contextId": "c"}, "result.status"),
        ("GetTask", {"id": "t", "contextId": "c", "status": {"state": "done"}}, "state"),
        ("GetTask", {"id": "t", "status": {"state": "TASK_STATE_WORKING"}}, "contextId"),
        ("SendMessage", {"message": {**V1_MESSAGE, "role": "ROLE_X"}}, "role"),
        ("SendMessage", {"message": {**V1_MESSAGE, "parts": [{}]}}, r"parts\[0\]"),
        ("CreateTaskPushNotificationConfig", {"url": "https://x"}, "result.taskId"),
        ("ListTaskPushNotificationConfigs", {"configs": "x"}, "result.configs"),
        ("GetExtendedAgentCard", {"name": "n"}, "supportedInterfaces"),
    ],
)
def test_malformed_results_name_the_field(method, result, field):
    with pytest.raises(V03TranslationError, match=field):
        result_to_v03(method, result)


@pytest.mark.parametrize(
    "event",
    [
        None,
        {},
        {"task": V1_TASK, "message": V1_MESSAGE},
        {"statusUpdate": {"taskId": "t", "contextId": "c"}},
        {"artifactUpdate": {"taskId": "t", "contextId": "c"}},
        {"artifactUpdate": {"taskId": "t", "contextId": "c", "artifact": {}, "append": 1}},
    ],
)
def test_malformed_stream_events(event):
    with pytest.raises(V03TranslationError):
        stream_event_to_v03(event)


# ---- properties --------------------------------------------------------------------------------

KEYS = [
    "id", "kind", "message", "messageId", "role", "parts", "text", "file", "data", "bytes",
    "uri", "name", "mimeType", "metadata", "configuration", "blocking", "historyLength",
    "pushNotificationConfig", "url", "authentication", "schemes", "taskId", "contextId",
    "status", "state", "task", "statusUpdate", "artifactUpdate", "artifact", "artifactId",
    "raw", "configs", "pushNotificationConfigId", "value", "data_part_compat", "extensions",
    "supportedInterfaces", "capabilities", "skills", "securitySchemes", "description",
]  # fmt: skip
VALUES = [
    "user", "agent", "text", "file", "data", "message", "task", "ROLE_USER", "ROLE_AGENT",
    "TASK_STATE_WORKING", "TASK_STATE_COMPLETED", "completed", "input-required", "aGk=", "",
    "https://x.example",
]  # fmt: skip

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True)
    | st.sampled_from(VALUES)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=6)
    ),
    max_leaves=40,
)
v1_methods = st.sampled_from(sorted(set(V03_METHOD_ALIASES.values())))


@FAST
@given(method=v1_methods, params=json_values)
def test_random_params_only_raise_translation_errors(method, params):
    try:
        params_from_v03(method, params)
    except V03TranslationError as exc:
        assert "\n" not in str(exc)


@FAST
@given(method=v1_methods, result=json_values)
def test_random_results_only_raise_translation_errors(method, result):
    try:
        result_to_v03(method, result)
    except V03TranslationError as exc:
        assert "\n" not in str(exc)


@FAST
@given(event=json_values)
def test_random_stream_events_only_raise_translation_errors(event):
    try:
        stream_event_to_v03(event)
    except V03TranslationError as exc:
        assert "\n" not in str(exc)


v03_parts = st.one_of(
    st.builds(lambda t: {"kind": "text", "text": t}, st.text(max_size=10)),
    st.builds(
        lambda b, n: {"kind": "file", "file": {"bytes": base64.b64encode(b).decode(), "name": n}},
        st.binary(max_size=16),
        st.text(min_size=1, max_size=5),
    ),
    st.builds(
        lambda d: {"kind": "data", "data": d},
        st.dictionaries(st.text(max_size=4), st.integers() | st.text(max_size=4), max_size=3),
    ),
)
v03_messages = st.builds(
    lambda mid, role, parts, ctx: {
        "kind": "message",
        "messageId": mid,
        "role": role,
        "parts": parts,
        **({"contextId": ctx} if ctx else {}),
    },
    st.text(min_size=1, max_size=12),
    st.sampled_from(["user", "agent"]),
    st.lists(v03_parts, min_size=1, max_size=4),
    st.text(max_size=6),
)


@FAST
@given(message=v03_messages)
def test_valid_v03_messages_translate_validate_and_round_trip(message):
    v1 = params_from_v03("SendMessage", {"message": message})
    SendMessageRequest.model_validate(v1)
    back = result_to_v03("SendMessage", v1)
    v03.Message.model_validate(back)
    assert back == message


def _paths(value, prefix=()):
    """Every path to a nested value of a JSON document."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _replace(document, path, new):
    if not path:
        return new
    copied = copy.deepcopy(document)
    target = copied
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copied


VALID_INPUTS = [
    ("params", "SendMessage", {"message": V03_MESSAGE, "configuration": {"blocking": True}}),
    ("params", "CreateTaskPushNotificationConfig", {
        "taskId": "t",
        "pushNotificationConfig": {"url": "https://h", "authentication": {"schemes": ["B"]}},
    }),
    ("params", "ListTasks", {"status": "working", "lastUpdatedAfter": 5}),
    ("result", "GetTask", V1_TASK),
    ("result", "SendMessage", {"message": V1_MESSAGE}),
    ("result", "GetTaskPushNotificationConfig", V1_PUSH_CONFIG),
    ("result", "ListTasks", {"tasks": [V1_TASK]}),
    ("result", "GetExtendedAgentCard", _v1_card()),
    ("event", "", {"artifactUpdate": {"taskId": "t", "contextId": "c", "artifact": {
        "artifactId": "a", "parts": [{"raw": PNG}]}}}),
    ("event", "", {"statusUpdate": {"taskId": "t", "contextId": "c", "status": {
        "state": "TASK_STATE_WORKING", "message": V1_MESSAGE}}}),
]  # fmt: skip


@FAST
@given(data=st.data(), case=st.sampled_from(VALID_INPUTS), new=json_values)
def test_mutated_valid_inputs_only_raise_translation_errors(data, case, new):
    kind, method, document = case
    path = data.draw(st.sampled_from(list(_paths(document))))
    mutated = _replace(document, path, new)
    try:
        if kind == "params":
            params_from_v03(method, mutated)
        elif kind == "result":
            result_to_v03(method, mutated)
        else:
            stream_event_to_v03(mutated)
    except V03TranslationError as exc:
        assert "\n" not in str(exc)
