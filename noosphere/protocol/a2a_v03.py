"""Wire formats (Execute): wire compatibility with A2A v0.3 clients. A pure translator (no I/O)
between the v0.3 JSON-RPC shapes (``message/send``, ``tasks/get``, ``kind``-tagged objects,
lowercase states such as ``input-required``) and our A2A v1.0 wire models in :mod:`.a2a`.

The server keeps speaking v1.0 internally: :func:`params_from_v03` turns the params of an aliased
v0.3 method (see :data:`.a2a.V03_METHOD_ALIASES`) into the v1.0 params of the method it stands for,
:func:`result_to_v03` and :func:`stream_event_to_v03` turn v1.0 results and stream events back into
v0.3 shapes. Where the reference SDK (``a2a.compat.v0_3.conversions``) defines a behaviour we follow
it: absent ``blocking`` means blocking, ``historyLength`` 0 means "all", only the first
authentication scheme survives, non-object data parts travel as ``{"value": ...}`` flagged with
``data_part_compat`` in the part metadata, and a push config without an id uses the task id.

Everything is dict-in/dict-out. Malformed input raises :class:`V03TranslationError` with a one-line
reason naming the field (the server answers it with JSON-RPC -32602 Invalid params); nothing here
raises ``KeyError`` or ``TypeError`` on bad input."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from noosphere.errors import InvalidData

from .a2a import V03_METHOD_ALIASES, TaskState

__all__ = [
    "V03TranslationError",
    "is_v03_method",
    "params_from_v03",
    "result_to_v03",
    "stream_event_to_v03",
]

V03_PROTOCOL_VERSION = "0.3.0"

_ROLE_IN = {"user": "ROLE_USER", "agent": "ROLE_AGENT"}
_ROLE_OUT = {v: k for k, v in _ROLE_IN.items()}

_STATE_IN = {state.short: state.value for state in TaskState}
_STATE_OUT = {v: k for k, v in _STATE_IN.items()} | {"TASK_STATE_UNSPECIFIED": "unknown"}

#: States after which a v0.3 stream is over for this interaction (``final: true``).
_FINAL_STATES = frozenset(state.value for state in TaskState if state.terminal or state.interrupted)

#: Metadata flag the SDK puts on a data part whose v1.0 value was not an object.
_DATA_PART_COMPAT = "data_part_compat"


class V03TranslationError(InvalidData, ValueError):
    """A v0.3 (or v1.0) payload that cannot be translated; the message is one line."""


def is_v03_method(method: str) -> bool:
    """Whether ``method`` is an A2A v0.3 JSON-RPC method name we accept as an alias."""
    return isinstance(method, str) and method in V03_METHOD_ALIASES


# --- small typed accessors ---------------------------------------------------------------------


def _fail(path: str, reason: str) -> V03TranslationError:
    """The error for ``path``; control characters in client-chosen keys are escaped so the
    message stays one line."""
    shown = path.encode("unicode_escape").decode("ascii") if not path.isprintable() else path
    return V03TranslationError(f"{shown}: {reason}")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, f"expected an object, got {_type_name(value)}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(path, f"expected an array, got {_type_name(value)}")
    return value


def _req_str(obj: dict[str, Any], key: str, path: str) -> str:
    value = obj.get(key)
    if value is None:
        raise _fail(f"{path}.{key}", "required field is missing")
    if not isinstance(value, str):
        raise _fail(f"{path}.{key}", f"expected a string, got {_type_name(value)}")
    return value


def _opt_str(obj: dict[str, Any], key: str, path: str) -> str | None:
    """A string or None; empty strings count as absent (proto3 default)."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail(f"{path}.{key}", f"expected a string, got {_type_name(value)}")
    return value or None


def _opt_bool(obj: dict[str, Any], key: str, path: str) -> bool | None:
    value = obj.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise _fail(f"{path}.{key}", f"expected a boolean, got {_type_name(value)}")


def _opt_int(obj: dict[str, Any], key: str, path: str, *, minimum: int = 0) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"{path}.{key}", f"expected an integer, got {_type_name(value)}")
    if value < minimum:
        raise _fail(f"{path}.{key}", f"must be >= {minimum}")
    return value


def _opt_dict(obj: dict[str, Any], key: str, path: str) -> dict[str, Any] | None:
    value = obj.get(key)
    return None if value is None else _obj(value, f"{path}.{key}")


def _opt_str_list(obj: dict[str, Any], key: str, path: str) -> list[str] | None:
    """A list of strings, or None when absent or empty."""
    value = obj.get(key)
    if value is None:
        return None
    items = _list(value, f"{path}.{key}")
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise _fail(f"{path}.{key}[{i}]", f"expected a string, got {_type_name(item)}")
    return list(items) or None


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def _kind(obj: dict[str, Any], path: str, expected: str) -> None:
    kind = obj.get("kind", expected)
    if kind != expected:
        raise _fail(f"{path}.kind", f"expected {expected!r}")


def _canonical_base64(value: str, path: str) -> str:
    """Standard padded base64 for v0.3 ``file.bytes`` (tolerates missing padding, url-safe)."""
    compact = "".join(value.split())
    padded = compact + "=" * (-len(compact) % 4)
    for altchars in (None, b"-_"):
        try:
            raw = base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
        return base64.b64encode(raw).decode("ascii")
    raise _fail(path, "expected base64")


# --- v0.3 -> v1.0 (requests) -------------------------------------------------------------------


def _part_in(value: Any, path: str) -> dict[str, Any]:
    part = _obj(value, path)
    kind = part.get("kind")
    if kind is None:  # the v0.3 schema defaults ``kind``; infer it from the content
        kind = next((k for k in ("text", "file", "data") if k in part), None)
        if kind is None:
            raise _fail(path, "part has no kind and no text, file or data")
    metadata = _opt_dict(part, "metadata", path)
    out: dict[str, Any] = {}
    if kind == "text":
        out["text"] = _req_str(part, "text", path)
    elif kind == "file":
        file = _obj(part.get("file"), f"{path}.file")
        has_bytes, has_uri = file.get("bytes") is not None, file.get("uri") is not None
        if has_bytes == has_uri:
            raise _fail(f"{path}.file", "expected exactly one of bytes or uri")
        if has_bytes:
            raw = _req_str(file, "bytes", f"{path}.file")
            out["raw"] = _canonical_base64(raw, f"{path}.file.bytes")
        else:
            out["url"] = _req_str(file, "uri", f"{path}.file")
        _put(out, "filename", _opt_str(file, "name", f"{path}.file"))
        _put(out, "mediaType", _opt_str(file, "mimeType", f"{path}.file"))
    elif kind == "data":
        data = _obj(part.get("data"), f"{path}.data")
        if metadata is not None and _DATA_PART_COMPAT in metadata:
            metadata = {k: v for k, v in metadata.items() if k != _DATA_PART_COMPAT} or None
            if part["metadata"][_DATA_PART_COMPAT]:  # truthy, as in the SDK
                if data.get("value") is None:
                    raise _fail(f"{path}.data.value", "required by data_part_compat")
                data = data["value"]
        out["data"] = data
    else:
        raise _fail(f"{path}.kind", "expected 'text', 'file' or 'data'")
    _put(out, "metadata", metadata)
    return out


def _parts_in(obj: dict[str, Any], path: str) -> list[dict[str, Any]]:
    if obj.get("parts") is None:
        raise _fail(f"{path}.parts", "required field is missing")
    parts = _list(obj["parts"], f"{path}.parts")
    return [_part_in(p, f"{path}.parts[{i}]") for i, p in enumerate(parts)]


def _message_in(value: Any, path: str) -> dict[str, Any]:
    message = _obj(value, path)
    _kind(message, path, "message")
    role = message.get("role")
    if role is None:
        raise _fail(f"{path}.role", "required field is missing")
    if not isinstance(role, str) or role not in _ROLE_IN:
        raise _fail(f"{path}.role", "expected 'user' or 'agent'")
    out: dict[str, Any] = {
        "messageId": _req_str(message, "messageId", path),
        "role": _ROLE_IN[role],
        "parts": _parts_in(message, path),
    }
    return _with_message_fields(out, message, path)


def _with_message_fields(out: dict[str, Any], message: dict[str, Any], path: str) -> dict[str, Any]:
    """Copy the optional Message fields, which have the same names and shapes in both versions."""
    _put(out, "contextId", _opt_str(message, "contextId", path))
    _put(out, "taskId", _opt_str(message, "taskId", path))
    _put(out, "metadata", _opt_dict(message, "metadata", path))
    _put(out, "extensions", _opt_str_list(message, "extensions", path))
    _put(out, "referenceTaskIds", _opt_str_list(message, "referenceTaskIds", path))
    return out


def _push_config_in(value: Any, path: str) -> dict[str, Any]:
    """v0.3 PushNotificationConfig -> the v1.0 TaskPushNotificationConfig fields (no taskId)."""
    config = _obj(value, path)
    out: dict[str, Any] = {"url": _req_str(config, "url", path)}
    _put(out, "id", _opt_str(config, "id", path))
    _put(out, "token", _opt_str(config, "token", path))
    auth = _opt_dict(config, "authentication", path)
    if auth is not None:
        apath = f"{path}.authentication"
        schemes = _opt_str_list(auth, "schemes", apath)
        if not schemes:
            raise _fail(f"{apath}.schemes", "expected at least one scheme")
        info = {"scheme": schemes[0]}  # v1.0 carries one scheme; the SDK keeps the first
        _put(info, "credentials", _opt_str(auth, "credentials", apath))
        out["authentication"] = info
    return out


def _send_message_in(params: dict[str, Any]) -> dict[str, Any]:
    if params.get("message") is None:
        raise _fail("params.message", "required field is missing")
    out: dict[str, Any] = {"message": _message_in(params["message"], "params.message")}
    config = _opt_dict(params, "configuration", "params")
    if config is not None:
        path = "params.configuration"
        conf: dict[str, Any] = {}
        _put(conf, "acceptedOutputModes", _opt_str_list(config, "acceptedOutputModes", path))
        blocking = _opt_bool(config, "blocking", path)
        if blocking is not None:  # absent: blocking, as in the SDK
            conf["returnImmediately"] = not blocking
        # v0.3 treats historyLength 0 as "no limit": leave it unset, as the SDK does
        _put(conf, "historyLength", _opt_int(config, "historyLength", path) or None)
        push = config.get("pushNotificationConfig")
        if push is not None:
            ppath = f"{path}.pushNotificationConfig"
            conf["taskPushNotificationConfig"] = _push_config_in(push, ppath)
        out["configuration"] = conf
    _put(out, "metadata", _opt_dict(params, "metadata", "params"))
    return out


def _get_task_in(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": _req_str(params, "id", "params")}
    _put(out, "historyLength", _opt_int(params, "historyLength", "params") or None)
    return out


def _cancel_task_in(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": _req_str(params, "id", "params")}
    _put(out, "metadata", _opt_dict(params, "metadata", "params"))
    return out


def _subscribe_in(params: dict[str, Any]) -> dict[str, Any]:
    return {"id": _req_str(params, "id", "params")}


def _list_tasks_in(params: dict[str, Any]) -> dict[str, Any]:
    """``tasks/list`` is not part of v0.3 proper; accept the draft's camelCase params with
    v0.3 state names (v1.0 names pass too)."""
    out: dict[str, Any] = {}
    _put(out, "contextId", _opt_str(params, "contextId", "params"))
    status = _opt_str(params, "status", "params")
    if status is not None:
        if status in _STATE_IN:
            status = _STATE_IN[status]
        elif status not in _STATE_OUT or status == "TASK_STATE_UNSPECIFIED":
            raise _fail("params.status", "unknown task state")
        out["status"] = status
    _put(out, "pageSize", _opt_int(params, "pageSize", "params"))
    _put(out, "pageToken", _opt_str(params, "pageToken", "params"))
    _put(out, "historyLength", _opt_int(params, "historyLength", "params") or None)
    _put(out, "includeArtifacts", _opt_bool(params, "includeArtifacts", "params"))
    after = _opt_str(params, "statusTimestampAfter", "params")
    millis = _opt_int(params, "lastUpdatedAfter", "params")
    if after is None and millis is not None:
        try:
            moment = datetime.fromtimestamp(millis / 1000, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise _fail("params.lastUpdatedAfter", "timestamp out of range") from exc
        after = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    _put(out, "statusTimestampAfter", after)
    return out


def _set_push_config_in(params: dict[str, Any]) -> dict[str, Any]:
    task_id = _req_str(params, "taskId", "params")
    if params.get("pushNotificationConfig") is None:
        raise _fail("params.pushNotificationConfig", "required field is missing")
    config = _push_config_in(params["pushNotificationConfig"], "params.pushNotificationConfig")
    config.setdefault("id", task_id)  # the SDK's stores default a missing config id to the task id
    return {"taskId": task_id, **config}


def _get_push_config_in(params: dict[str, Any]) -> dict[str, Any]:
    task_id = _req_str(params, "id", "params")
    config_id = _opt_str(params, "pushNotificationConfigId", "params")
    return {"taskId": task_id, "id": config_id or task_id}


def _delete_push_config_in(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "taskId": _req_str(params, "id", "params"),
        "id": _req_str(params, "pushNotificationConfigId", "params"),
    }


def _list_push_configs_in(params: dict[str, Any]) -> dict[str, Any]:
    return {"taskId": _req_str(params, "id", "params")}


def _no_params_in(params: dict[str, Any]) -> dict[str, Any]:
    return {}


_PARAMS_IN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "SendMessage": _send_message_in,
    "SendStreamingMessage": _send_message_in,
    "GetTask": _get_task_in,
    "ListTasks": _list_tasks_in,
    "CancelTask": _cancel_task_in,
    "SubscribeToTask": _subscribe_in,
    "CreateTaskPushNotificationConfig": _set_push_config_in,
    "GetTaskPushNotificationConfig": _get_push_config_in,
    "ListTaskPushNotificationConfigs": _list_push_configs_in,
    "DeleteTaskPushNotificationConfig": _delete_push_config_in,
    "GetExtendedAgentCard": _no_params_in,
}


def _v1_name(method: Any) -> str:
    if not isinstance(method, str):
        raise V03TranslationError("method: expected a string")
    name = V03_METHOD_ALIASES.get(method, method)
    if name not in _PARAMS_IN:
        raise V03TranslationError(f"method: {method[:100]!r} has no v0.3 translation")
    return name


def params_from_v03(v1_method: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """The v1.0 params for ``v1_method`` (``SendMessage``; a v0.3 alias such as ``message/send``
    is accepted too) from the v0.3 ``params`` of the aliased method. Missing params (``None``)
    count as ``{}``."""
    name = _v1_name(v1_method)
    return _PARAMS_IN[name](_obj({} if params is None else params, "params"))


# --- v1.0 -> v0.3 (results) --------------------------------------------------------------------


def _part_out(value: Any, path: str) -> dict[str, Any]:
    part = _obj(value, path)
    present = [k for k in ("text", "raw", "url", "data") if part.get(k) is not None]
    if len(present) != 1:
        raise _fail(path, "expected exactly one of text, raw, url or data")
    metadata = _opt_dict(part, "metadata", path)
    out: dict[str, Any]
    if present[0] == "text":
        out = {"kind": "text", "text": _req_str(part, "text", path)}
    elif present[0] == "data":
        data = part["data"]
        if not isinstance(data, dict):  # v0.3 data is an object: wrap it the way the SDK does
            data = {"value": data}
            metadata = {**(metadata or {}), _DATA_PART_COMPAT: True}
        out = {"kind": "data", "data": data}
    else:
        if present[0] == "raw":
            file = {"bytes": _canonical_base64(_req_str(part, "raw", path), f"{path}.raw")}
        else:
            file = {"uri": _req_str(part, "url", path)}
        _put(file, "name", _opt_str(part, "filename", path))
        _put(file, "mimeType", _opt_str(part, "mediaType", path))
        out = {"kind": "file", "file": file}
    _put(out, "metadata", metadata)
    return out


def _parts_out(obj: dict[str, Any], path: str) -> list[dict[str, Any]]:
    parts = _list(obj.get("parts", []), f"{path}.parts")
    return [_part_out(p, f"{path}.parts[{i}]") for i, p in enumerate(parts)]


def _message_out(value: Any, path: str) -> dict[str, Any]:
    message = _obj(value, path)
    role = message.get("role")
    if not isinstance(role, str) or role not in _ROLE_OUT:
        raise _fail(f"{path}.role", "expected ROLE_USER or ROLE_AGENT")
    out: dict[str, Any] = {
        "kind": "message",
        "messageId": _req_str(message, "messageId", path),
        "role": _ROLE_OUT[role],
        "parts": _parts_out(message, path),
    }
    return _with_message_fields(out, message, path)


def _status_out(value: Any, path: str) -> dict[str, Any]:
    status = _obj(value, path)
    state = status.get("state")
    if not isinstance(state, str) or state not in _STATE_OUT:
        raise _fail(f"{path}.state", "unknown task state")
    out: dict[str, Any] = {"state": _STATE_OUT[state]}
    if status.get("message") is not None:
        out["message"] = _message_out(status["message"], f"{path}.message")
    _put(out, "timestamp", _opt_str(status, "timestamp", path))
    return out


def _artifact_out(value: Any, path: str) -> dict[str, Any]:
    artifact = _obj(value, path)
    out: dict[str, Any] = {
        "artifactId": _req_str(artifact, "artifactId", path),
        "parts": _parts_out(artifact, path),
    }
    _put(out, "name", _opt_str(artifact, "name", path))
    _put(out, "description", _opt_str(artifact, "description", path))
    _put(out, "metadata", _opt_dict(artifact, "metadata", path))
    _put(out, "extensions", _opt_str_list(artifact, "extensions", path))
    return out


def _items_out(obj: dict[str, Any], key: str, path: str, item: Callable[[Any, str], Any]) -> Any:
    if obj.get(key) is None:
        return None
    items = _list(obj[key], f"{path}.{key}")
    return [item(v, f"{path}.{key}[{i}]") for i, v in enumerate(items)] or None


def _task_out(value: Any, path: str) -> dict[str, Any]:
    task = _obj(value, path)
    if task.get("status") is None:
        raise _fail(f"{path}.status", "required field is missing")
    out: dict[str, Any] = {
        "kind": "task",
        "id": _req_str(task, "id", path),
        "contextId": _req_str(task, "contextId", path),
        "status": _status_out(task["status"], f"{path}.status"),
    }
    _put(out, "artifacts", _items_out(task, "artifacts", path, _artifact_out))
    _put(out, "history", _items_out(task, "history", path, _message_out))
    _put(out, "metadata", _opt_dict(task, "metadata", path))
    return out


def _push_config_out(value: Any, path: str) -> dict[str, Any]:
    config = _obj(value, path)
    inner: dict[str, Any] = {"url": _req_str(config, "url", path)}
    _put(inner, "id", _opt_str(config, "id", path))
    _put(inner, "token", _opt_str(config, "token", path))
    auth = _opt_dict(config, "authentication", path)
    if auth is not None:
        scheme = _opt_str(auth, "scheme", f"{path}.authentication")
        info: dict[str, Any] = {"schemes": [scheme] if scheme else []}
        _put(info, "credentials", _opt_str(auth, "credentials", f"{path}.authentication"))
        inner["authentication"] = info
    return {"taskId": _req_str(config, "taskId", path), "pushNotificationConfig": inner}


def _one_of(obj: dict[str, Any], keys: tuple[str, ...], path: str) -> str:
    present = [k for k in keys if obj.get(k) is not None]
    if len(present) != 1:
        raise _fail(path, f"expected exactly one of {', '.join(keys)}")
    return present[0]


def _send_message_out(result: Any) -> dict[str, Any]:
    response = _obj(result, "result")
    which = _one_of(response, ("task", "message"), "result")
    if which == "task":
        return _task_out(response["task"], "result.task")
    return _message_out(response["message"], "result.message")


def _list_tasks_out(result: Any) -> dict[str, Any]:
    response = _obj(result, "result")
    tasks = _list(response.get("tasks", []), "result.tasks")
    out: dict[str, Any] = {
        "tasks": [_task_out(t, f"result.tasks[{i}]") for i, t in enumerate(tasks)]
    }
    out["nextPageToken"] = _opt_str(response, "nextPageToken", "result") or ""
    out["pageSize"] = _opt_int(response, "pageSize", "result") or 0
    out["totalSize"] = _opt_int(response, "totalSize", "result") or 0
    return out


def _list_push_configs_out(result: Any) -> list[dict[str, Any]]:
    if isinstance(result, list):  # tolerate a bare list of configs
        configs = result
    else:
        configs = _list(_obj(result, "result").get("configs", []), "result.configs")
    return [_push_config_out(c, f"result.configs[{i}]") for i, c in enumerate(configs)]


def _security_scheme_out(value: Any, path: str) -> dict[str, Any]:
    scheme = _obj(value, path)
    if "type" in scheme:  # already v0.3 / OpenAPI shaped
        return scheme
    keys = (
        "apiKeySecurityScheme",
        "httpAuthSecurityScheme",
        "oauth2SecurityScheme",
        "openIdConnectSecurityScheme",
        "mtlsSecurityScheme",
    )
    which = _one_of(scheme, keys, path)
    body = _obj(scheme[which], f"{path}.{which}")
    bpath = f"{path}.{which}"
    out: dict[str, Any]
    if which == "apiKeySecurityScheme":
        out = {
            "type": "apiKey",
            "in": _req_str(body, "location", bpath),
            "name": _req_str(body, "name", bpath),
        }
    elif which == "httpAuthSecurityScheme":
        out = {"type": "http", "scheme": _req_str(body, "scheme", bpath)}
        _put(out, "bearerFormat", _opt_str(body, "bearerFormat", bpath))
    elif which == "oauth2SecurityScheme":
        flows = _obj(body.get("flows"), f"{bpath}.flows")
        kept = ("authorizationCode", "clientCredentials", "implicit", "password")
        # deviceCode has no v0.3 counterpart and is dropped, as in the SDK
        out = {"type": "oauth2", "flows": {k: v for k, v in flows.items() if k in kept}}
        _put(out, "oauth2MetadataUrl", _opt_str(body, "oauth2MetadataUrl", bpath))
    elif which == "openIdConnectSecurityScheme":
        out = {
            "type": "openIdConnect",
            "openIdConnectUrl": _req_str(body, "openIdConnectUrl", bpath),
        }
    else:
        out = {"type": "mutualTLS"}
    _put(out, "description", _opt_str(body, "description", bpath))
    return out


def _security_requirement_out(value: Any, path: str) -> dict[str, list[str]]:
    """v1.0 ``{"schemes": {name: {"list": [scopes]}}}`` -> v0.3 ``{name: [scopes]}``."""
    requirement = _obj(value, path)
    if "schemes" not in requirement:  # already v0.3 shaped
        return requirement
    schemes = _obj(requirement["schemes"], f"{path}.schemes")
    out: dict[str, list[str]] = {}
    for name, scopes in schemes.items():
        spath = f"{path}.schemes.{name}"
        out[name] = _opt_str_list(_obj(scopes, spath), "list", spath) or []
    return out


def _skill_out(value: Any, path: str) -> dict[str, Any]:
    skill = _obj(value, path)
    out: dict[str, Any] = {
        "id": _req_str(skill, "id", path),
        "name": _req_str(skill, "name", path),
        "description": _req_str(skill, "description", path),
        "tags": _opt_str_list(skill, "tags", path) or [],
    }
    _put(out, "examples", _opt_str_list(skill, "examples", path))
    _put(out, "inputModes", _opt_str_list(skill, "inputModes", path))
    _put(out, "outputModes", _opt_str_list(skill, "outputModes", path))
    requirements = skill.get("securityRequirements", skill.get("security"))
    if requirements:
        items = _list(requirements, f"{path}.securityRequirements")
        out["security"] = [
            _security_requirement_out(r, f"{path}.securityRequirements[{i}]")
            for i, r in enumerate(items)
        ]
    return out


def _card_out(result: Any) -> dict[str, Any]:
    """v1.0 AgentCard -> v0.3 AgentCard. The primary interface is the first one declaring a
    0.x protocol version or none; failing that the first one, since our JSON-RPC endpoint
    serves both versions."""
    card = _obj(result, "result")
    interfaces = _list(card.get("supportedInterfaces", []), "result.supportedInterfaces")
    if not interfaces:
        raise _fail("result.supportedInterfaces", "expected at least one interface")
    checked = [_obj(x, f"result.supportedInterfaces[{i}]") for i, x in enumerate(interfaces)]
    legacy = [x for x in checked if not str(x.get("protocolVersion") or "").startswith("1")]
    ordered = legacy + [x for x in checked if x not in legacy]
    primary, others = ordered[0], ordered[1:]
    ipath = "result.supportedInterfaces"
    out: dict[str, Any] = {
        "name": _req_str(card, "name", "result"),
        "description": _req_str(card, "description", "result"),
        "version": _req_str(card, "version", "result"),
        "url": _req_str(primary, "url", ipath),
        "preferredTransport": _opt_str(primary, "protocolBinding", ipath) or "JSONRPC",
        "protocolVersion": V03_PROTOCOL_VERSION,
        "defaultInputModes": _opt_str_list(card, "defaultInputModes", "result") or [],
        "defaultOutputModes": _opt_str_list(card, "defaultOutputModes", "result") or [],
        "skills": _items_out(card, "skills", "result", _skill_out) or [],
    }
    if others:
        out["additionalInterfaces"] = [
            {
                "url": _req_str(x, "url", ipath),
                "transport": _opt_str(x, "protocolBinding", ipath) or "JSONRPC",
            }
            for x in others
        ]
    caps = _opt_dict(card, "capabilities", "result") or {}
    cpath = "result.capabilities"
    capabilities: dict[str, Any] = {}
    _put(capabilities, "streaming", _opt_bool(caps, "streaming", cpath))
    _put(capabilities, "pushNotifications", _opt_bool(caps, "pushNotifications", cpath))
    if caps.get("extensions"):
        capabilities["extensions"] = [
            _obj(e, f"{cpath}.extensions[{i}]")
            for i, e in enumerate(_list(caps["extensions"], f"{cpath}.extensions"))
        ]
    out["capabilities"] = capabilities
    _put(out, "supportsAuthenticatedExtendedCard", _opt_bool(caps, "extendedAgentCard", cpath))
    provider = _opt_dict(card, "provider", "result")
    if provider is not None:
        out["provider"] = {
            "organization": _req_str(provider, "organization", "result.provider"),
            "url": _req_str(provider, "url", "result.provider"),
        }
    _put(out, "documentationUrl", _opt_str(card, "documentationUrl", "result"))
    _put(out, "iconUrl", _opt_str(card, "iconUrl", "result"))
    schemes = _opt_dict(card, "securitySchemes", "result")
    if schemes:
        out["securitySchemes"] = {
            name: _security_scheme_out(s, f"result.securitySchemes.{name}")
            for name, s in schemes.items()
        }
    _put(
        out,
        "security",
        _items_out(card, "securityRequirements", "result", _security_requirement_out),
    )
    if card.get("signatures"):
        signatures = _list(card["signatures"], "result.signatures")
        out["signatures"] = [_obj(s, f"result.signatures[{i}]") for i, s in enumerate(signatures)]
    return out


def stream_event_to_v03(event: dict[str, Any]) -> dict[str, Any]:
    """One v1.0 StreamResponse (exactly one of task, message, statusUpdate, artifactUpdate) as
    the v0.3 stream event: a Task or Message with ``kind``, or a ``status-update`` (``final``
    when the state ends the interaction: terminal, input-required or auth-required) or an
    ``artifact-update``."""
    response = _obj(event, "event")
    which = _one_of(response, ("task", "message", "statusUpdate", "artifactUpdate"), "event")
    path = f"event.{which}"
    if which == "task":
        return _task_out(response["task"], path)
    if which == "message":
        return _message_out(response["message"], path)
    body = _obj(response[which], path)
    out: dict[str, Any] = {
        "kind": "status-update" if which == "statusUpdate" else "artifact-update",
        "taskId": _req_str(body, "taskId", path),
        "contextId": _req_str(body, "contextId", path),
    }
    if which == "statusUpdate":
        if body.get("status") is None:
            raise _fail(f"{path}.status", "required field is missing")
        out["status"] = _status_out(body["status"], f"{path}.status")
        out["final"] = body["status"]["state"] in _FINAL_STATES
    else:
        if body.get("artifact") is None:
            raise _fail(f"{path}.artifact", "required field is missing")
        out["artifact"] = _artifact_out(body["artifact"], f"{path}.artifact")
        _put(out, "append", _opt_bool(body, "append", path))
        _put(out, "lastChunk", _opt_bool(body, "lastChunk", path))
    _put(out, "metadata", _opt_dict(body, "metadata", path))
    return out


def _delete_out(result: Any) -> None:
    return None


_RESULT_OUT: dict[str, Callable[[Any], Any]] = {
    "SendMessage": _send_message_out,
    "SendStreamingMessage": stream_event_to_v03,
    "SubscribeToTask": stream_event_to_v03,
    "GetTask": lambda result: _task_out(result, "result"),
    "CancelTask": lambda result: _task_out(result, "result"),
    "ListTasks": _list_tasks_out,
    "CreateTaskPushNotificationConfig": lambda result: _push_config_out(result, "result"),
    "GetTaskPushNotificationConfig": lambda result: _push_config_out(result, "result"),
    "ListTaskPushNotificationConfigs": _list_push_configs_out,
    "DeleteTaskPushNotificationConfig": _delete_out,
    "GetExtendedAgentCard": _card_out,
}


def result_to_v03(v1_method: str, result: Any) -> Any:
    """The v0.3 result for the v1.0 ``result`` (proto JSON) of ``v1_method`` (or its v0.3 alias):
    SendMessage yields the Task or Message itself, GetTask/CancelTask a Task, push config methods
    v0.3 TaskPushNotificationConfig objects (a list for list, ``None`` for delete), the extended
    card a v0.3 AgentCard; streaming methods translate like :func:`stream_event_to_v03`."""
    return _RESULT_OUT[_v1_name(v1_method)](result)
